/* The store model shared by store.c (scanning) and token.c (getters and
 * object loading). */
#ifndef TFS_STORE_INTERNAL_H
#define TFS_STORE_INTERNAL_H

#include "findings/findings_internal.h"
#include "store/fs_internal.h"
#include "tokenfs/store.h"

typedef struct tfs_obj_entry {
	char *file; /* "<uuid>.object" */
	char *uuid; /* the stem */
	char *path;
	bool has_lock;
} tfs_obj_entry;

struct tfs_token {
	const tfs_store *store;
	char *path;
	const char *dirname; /* points into path */
	tfs_object *meta;    /* token.object, NULL when missing or damaged */
	char label[33];
	char serial[17];
	bool has_generation;
	uint64_t generation;
	tfs_obj_entry *objs;
	size_t nobjs;
	size_t *findings; /* indices of its store findings, see owners.c */
	size_t nfindings;
};

/* What a run may still spend waiting for writers (locks and files in
 * flux); shared by every read of the store, mutable behind a const store. */
typedef struct tfs_store_wait {
	unsigned left_ms;
} tfs_store_wait;

struct tfs_store {
	tfs_fs *fs;
	tfs_fs *owned_fs; /* freed with the store (an archive image), or NULL */
	bool tree;        /* opened with tfs_store_open_tree */
	bool strict_io;   /* tfs_open_options.strict_io */
	tfs_path_kind kind;
	char *path;
	unsigned lock_ms;
	tfs_store_wait *wait;
	tfs_token *tokens;
	size_t ntokens, tokens_cap;
	size_t tokens_like; /* token directories with anything SoftHSM puts there */
	tfs_findings findings;
	size_t *finding_owner; /* per finding: its token's index, or SIZE_MAX */
};

/* Works out which token each finding concerns (owners.c); once, after the scan. */
int tfs_store_assign_findings(tfs_store *store, tfs_error *err);

/* Whether a listing (sorted by name) has an entry of this name and type. */
bool tfs_dirents_have(const tfs_dirent *ents, size_t n, const char *name, tfs_ent_type t);

/* pending.c: what an interrupted transaction left (see there). Adds the
 * findings; *overlay: a committed journal, so staged files stand in for
 * their targets. */
int tfs_pending_scan(tfs_store *store, const char *tokpath, const tfs_dirent *ents, size_t n,
                     bool *overlay, tfs_error *err);
/* Whether a name is the engine's (journal, its temporary file, staged). */
bool tfs_pending_is_txn_file(const char *name);
/* "<tokpath>/<name>", or its staged copy under an overlay; free(). */
char *tfs_pending_path(const char *tokpath, const char *name, const tfs_dirent *ents, size_t n,
                       bool overlay);

/* What a file is to settle.c: how it tells a write in flux. */
typedef enum tfs_file_role {
	TFS_FILE_OBJECT,     /* <uuid>.object */
	TFS_FILE_TOKEN,      /* token.object */
	TFS_FILE_GENERATION, /* generation */
	TFS_FILE_PLAIN       /* anything else: read once */
} tfs_file_role;

/*
 * Reads path (under the read lock, out of the store's wait budget), again
 * and again while it looks like a write in flux, until it does not or two
 * reads agree (settle.c). *data (malloc'd) and *size are what stayed; with
 * parsed non-NULL, *parsed is its parse (or NULL: it does not parse). A
 * file gone since it was listed is TFS_E_NOTFOUND.
 */
int tfs_store_read_settled(const tfs_store *s, const char *path, tfs_file_role role,
                           uint8_t **data, size_t *size, tfs_object **parsed, tfs_error *err);

/*
 * A listing races a live SoftHSM too: it creates and unlinks an object and
 * its .lock one after the other. When dir changed in the last moments,
 * pauses once (out of the budget) and returns true: the caller then checks
 * what looked wrong again with tfs_store_file_exists and reports only what
 * stayed. False: the directory is at rest (or no budget is left).
 */
bool tfs_store_settle_listing(const tfs_store *s, const char *dir);
bool tfs_store_file_exists(const tfs_store *s, const char *path);

/* The role of a file of a token directory, by its name. */
tfs_file_role tfs_store_file_role(const char *name);

/* Whether these bytes look like a file of this role caught mid-write (empty,
 * torn, or a SoftHSM object still being built): the rule the settling reader
 * above and backup's snapshot share. */
bool tfs_store_file_unfinished(tfs_file_role role, const uint8_t *data, size_t size);

/* Reads token metadata (label, serial) out of a parsed token.object. */
void tfs_token_take_metadata(tfs_token *tok, tfs_object *meta);

#endif
