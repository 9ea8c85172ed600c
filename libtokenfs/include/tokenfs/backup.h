/*
 * Backups of a live store: one archive (tar, tar.gz, tar.xz, tar.zst or
 * zip, by the file name's extension) holding, for every token, one state
 * SoftHSM really had. SoftHSM 2.6.1 rewrites object files in place and
 * releases its lock before the bytes land (docs/format.md), so a token is
 * read whole, under SoftHSM's read locks, again and again until two
 * consecutive reads agree byte for byte; a token that never settles is a
 * clear error, never a torn archive. With a PIN each token's seal (the
 * `verify-integrity --seal` manifest, docs/seal.md) of exactly the archived
 * bytes goes into the archive as <token dir>/tokenfs.seal.
 *
 * The archive is written to a temporary file created 0600 beside the
 * target, fsync'd, and renamed into place; an existing file is replaced only
 * with `force`.
 */
#ifndef TOKENFS_BACKUP_H
#define TOKENFS_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tfs_archive_format {
	TFS_ARCHIVE_TAR = 1,
	TFS_ARCHIVE_TAR_GZ,
	TFS_ARCHIVE_TAR_XZ,
	TFS_ARCHIVE_TAR_ZST,
	TFS_ARCHIVE_ZIP
} tfs_archive_format;

/* The format a file name asks for (.tar, .tar.gz/.tgz, .tar.xz/.txz,
 * .tar.zst/.tzst, .zip); false for any other name. */
bool tfs_archive_format_of(const char *path, tfs_archive_format *out);
/* "tar.gz" and so on. */
const char *tfs_archive_format_name(tfs_archive_format f);

typedef struct tfs_backup_options {
	const char *out;          /* the archive to write */
	bool force;               /* replace an existing file */
	bool dry_run;             /* read everything, write nothing */
	const uint8_t *user_pin;  /* either PIN (or both) adds a seal per token */
	size_t user_pin_len;
	const uint8_t *so_pin;
	size_t so_pin_len;
	/* Whole reads of a token before giving up on one that never settles;
	 * 0: the default, 100 (25 ms apart: a few seconds in all). */
	unsigned max_reads;
	/* Which tokens of the store to archive; NULL: all. */
	bool (*select)(void *ctx, const tfs_token *tok);
	/* Called after every file read; may be NULL. */
	void (*progress)(void *ctx, const char *label, size_t done, size_t total);
	void *ctx;
	/* Each token's own PINs (may be NULL: user_pin and so_pin for every
	 * token): called once per token before it is sealed, with the PINs
	 * above in *user_pin and *so_pin to keep or replace (NULL: none; a
	 * token given none is archived without a seal). The PINs stay the
	 * caller's. */
	void (*pins)(void *ctx, const tfs_token *tok, const uint8_t **user_pin, size_t *user_pin_len,
	             const uint8_t **so_pin, size_t *so_pin_len);
} tfs_backup_options;

/* A file archived as it is although it does not parse (torn or cut short):
 * it stayed the same over several reads, so it is what the store holds. */
typedef struct tfs_backup_damage {
	char *file;          /* its name in the token directory */
	char *defect;        /* why it does not parse: "offset N: what" */
} tfs_backup_damage;

/* What one token contributed. Strings are owned by the result. */
typedef struct tfs_backup_token {
	char *dir;           /* the token directory's name (its path in the archive) */
	char *label;
	char *serial;
	size_t objects;      /* *.object files other than token.object */
	size_t files;        /* regular files archived (the seal included) */
	uint64_t bytes;      /* of those files */
	unsigned reads;      /* whole reads it took to see the same state twice */
	bool sealed;
	uint64_t generation; /* of the `generation` file; has_generation false when absent */
	bool has_generation;
	size_t skipped;      /* entries that are not regular files: left out */
	/* Object files archived although they do not parse; the backup is
	 * whole (it holds what the store holds) but not a healthy state. */
	tfs_backup_damage *damaged;
	size_t ndamaged;
	/* No PIN, and the token directory held a tokenfs.seal: it is archived
	 * as it was, not checked against the archived bytes. */
	bool old_seal_unchecked;
	/* A PIN was given for the token but is wrong: it is archived without
	 * a seal, and this says why ("wrong user PIN for token ..."); else NULL. */
	char *seal_error;
} tfs_backup_token;

typedef struct tfs_backup_result {
	tfs_archive_format format;
	tfs_backup_token *tokens;
	size_t ntokens;
	size_t objects, files;
	uint64_t bytes;           /* file bytes archived, before compression */
	uint64_t archive_bytes;   /* size of the archive written; 0 for a dry run */
} tfs_backup_result;

/*
 * Backs up the tokens of store (opened on the real file system) into
 * opts->out. Fills *result (free with tfs_backup_result_free, also after an
 * error). Errors: TFS_E_INVALID for an unknown extension, an existing
 * file without force, or an archive whose directory is (below) the store's
 * path or a token directory (checked before anything is read),
 * TFS_E_LOCKED when a token changed on every read (the message names it and
 * the number of reads), TFS_E_IO when the archive cannot be written (no
 * file is left behind), TFS_E_LOCKED from a stuck SoftHSM writer. TFS_OK
 * with tokens[i].ndamaged > 0: archived, but those files do not parse.
 */
int tfs_backup(tfs_backup_result *result, const tfs_store *store, const tfs_backup_options *opts,
               tfs_error *err);
void tfs_backup_result_free(tfs_backup_result *result);

#ifdef __cplusplus
}
#endif
#endif
