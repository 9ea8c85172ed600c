/*
 * A SoftHSMv2 token store opened read-only: a tokendir holding several token
 * directories, a single token directory, or a single .object file.
 *
 * Opening scans directories and reads each token's token.object and
 * generation file; object files are read one at a time, on demand, with
 * tfs_token_load_object, so memory stays flat for large stores. Nothing is
 * ever created, modified or write-locked.
 *
 * Ownership: the store owns its tokens and findings; every pointer a getter
 * returns is borrowed and valid until tfs_store_free.
 */
#ifndef TOKENFS_STORE_H
#define TOKENFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/finding.h"
#include "tokenfs/fs.h"
#include "tokenfs/object.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfs_store tfs_store;
typedef struct tfs_token tfs_token;

typedef enum tfs_path_kind {
	TFS_PATH_TOKENDIR = 1,   /* a directory of token directories */
	TFS_PATH_TOKEN = 2,      /* one token directory (holds token.object) */
	TFS_PATH_OBJECT_FILE = 3 /* one .object file */
} tfs_path_kind;

typedef enum tfs_pin_role {
	TFS_PIN_SO = 0,
	TFS_PIN_USER = 1
} tfs_pin_role;

typedef struct tfs_open_options {
	/* How long to wait for a SoftHSM writer to release an object's lock
	 * before giving up with TFS_E_LOCKED; 0 means the default, 5000 ms. */
	unsigned lock_timeout_ms;
	/* Caps for a store read from an archive (tokenfs/archive.h); NULL: the
	 * defaults. */
	const struct tfs_archive_limits *archive_limits;
	/* For a writer: an I/O error reading a token's token.object or
	 * generation fails the open (TFS_E_IO, naming the file) instead of
	 * becoming a finding, so that nothing is written over a failing disk. */
	bool strict_io;
} tfs_open_options;

/*
 * Opens PATH on the real file system. opts may be NULL. Problems inside the
 * store (a damaged token.object, stray files) do not fail the open: they
 * become findings. Fails only when PATH itself cannot be read or is none of
 * the three kinds.
 */
int tfs_store_open(tfs_store **out, const char *path,
                   const tfs_open_options *opts, tfs_error *err);

/* Same, reading through fs (borrowed: it must outlive the store). */
int tfs_store_open_fs(tfs_store **out, tfs_fs *fs, const char *path,
                      const tfs_open_options *opts, tfs_error *err);

/*
 * Opens the store held in a tree image whose root fs names PREFIX and whose
 * entries it names PREFIX:member/path (an archive image, tokenfs/archive.h).
 * Token directories are found at any depth: every directory holding a
 * token.object is a token, and every directory holding a token is scanned
 * as a tokendir (each subdirectory a token candidate, as SoftHSM does). When
 * the root itself holds token.object, the store is that one token, at
 * "PREFIX:.". What fs noticed while it was built comes first among the
 * store's findings. fs is borrowed. TFS_E_NOTFOUND: no token directory.
 */
int tfs_store_open_tree(tfs_store **out, tfs_fs *fs, const char *prefix,
                        const tfs_open_options *opts, tfs_error *err);

void tfs_store_free(tfs_store *store);

/* Whether the store was read from an archive image: nothing in it can be
 * written, locked or sealed in place. */
bool tfs_store_is_archive(const tfs_store *store);

tfs_path_kind tfs_store_kind(const tfs_store *store);
const char *tfs_store_path(const tfs_store *store);
size_t tfs_store_token_count(const tfs_store *store);
const tfs_token *tfs_store_token(const tfs_store *store, size_t i);
size_t tfs_store_finding_count(const tfs_store *store);
/* What is left of the lock_timeout_ms budget after this store's reads
 * waited for writers (locks held, files in flux). Passing it on as the next
 * store's lock_timeout_ms (1 when 0 is left) makes one budget cover a run
 * over several stores. */
unsigned tfs_store_wait_left_ms(const tfs_store *store);
const tfs_finding *tfs_store_finding(const tfs_store *store, size_t i);

/* The token store finding i concerns, or NULL when it concerns the store as
 * a whole (a token directory that could not be listed, a stray entry). */
const tfs_token *tfs_store_finding_token(const tfs_store *store, size_t i);

/* The token directory's path and its last component. */
const char *tfs_token_path(const tfs_token *tok);
const char *tfs_token_dirname(const tfs_token *tok);
/* Parsed token.object, or NULL when missing or damaged (see findings). A
 * store opened on a single object file takes the token.object beside it
 * (the file's token directory), so that a PIN opens its values; NULL when
 * there is none (a lone copy), and a finding when it cannot be read. */
const tfs_object *tfs_token_metadata(const tfs_token *tok);
/* Label with SoftHSM's blank padding removed, and the 16-character serial;
 * "" when unknown. */
const char *tfs_token_label(const tfs_token *tok);
const char *tfs_token_serial(const tfs_token *tok);
/* The PKCS#11 slot ID SoftHSM 2.2+ gives this token: the serial's last 8 hex
 * digits as a number, AND 0x7FFFFFFF. False when the serial is not hex. */
bool tfs_token_slot_id(const tfs_token *tok, uint32_t *slot_id);
/* CKA_OS_TOKENFLAGS; false when absent. */
bool tfs_token_flags(const tfs_token *tok, uint64_t *flags);
/* The stored PIN blob for a role, or NULL when the token has none. */
const uint8_t *tfs_token_pin_blob(const tfs_token *tok, tfs_pin_role role, size_t *len);
/* The 8-byte `generation` file; false when absent or damaged. */
bool tfs_token_generation(const tfs_token *tok, uint64_t *generation);

/* The store findings that concern this token, in the store's order. */
size_t tfs_token_finding_count(const tfs_token *tok);
const tfs_finding *tfs_token_finding(const tfs_token *tok, size_t i);

size_t tfs_token_object_count(const tfs_token *tok);
/* The object's file name ("<uuid>.object"), its uuid (the stem) and path. */
const char *tfs_token_object_file(const tfs_token *tok, size_t i);
const char *tfs_token_object_uuid(const tfs_token *tok, size_t i);
const char *tfs_token_object_path(const tfs_token *tok, size_t i);
/* Whether the companion <uuid>.lock exists. */
bool tfs_token_object_has_lock(const tfs_token *tok, size_t i);

/*
 * Reads and parses object i under SoftHSM's read lock. On success the caller
 * owns *out (tfs_object_free). The error carries the file path in `where`.
 */
int tfs_token_load_object(tfs_object **out, const tfs_token *tok, size_t i,
                          tfs_error *err);

/*
 * Reads object i's raw bytes under the read lock, unparsed (for tools that
 * show damaged files as they are). Caller frees *data with free().
 */
int tfs_token_read_object(uint8_t **data, size_t *size, const tfs_token *tok,
                          size_t i, tfs_error *err);

/* Reads token.object's raw bytes under the read lock. TFS_E_NOTFOUND for a
 * store opened on a single object file: its files are that one file, even
 * when the token's metadata comes from the token.object beside it. Caller
 * frees *data with free(). */
int tfs_token_read_metadata(uint8_t **data, size_t *size, const tfs_token *tok,
                            tfs_error *err);

/*
 * A loader reads a token's objects ahead of the caller on a second thread
 * (when there are two CPUs and more than one object), so that reading and
 * parsing overlap with what the caller does with the objects before.
 * `which` lists the object indices wanted, in order (copied). Each
 * tfs_loader_next returns the next one in that order, with exactly what
 * tfs_token_load_object would return for it (*index says which object;
 * TFS_E_NOTFOUND with *out NULL also past the end). At most 64 objects and
 * 4 MiB of file bytes are held ahead (one object past the cap: a larger
 * object is still read, alone). While a loader lives, only it reads the
 * token's store (the run's --lock-timeout budget is the store's, spent by
 * the reader), and the store must outlive it. tfs_loader_free stops the
 * thread and frees what was not taken; it accepts NULL. It waits for the
 * object being read to finish, which may wait for a write lock out of
 * what is left of the budget. The reader blocks all signals; "one CPU"
 * means the CPUs the process may run on (sched_getaffinity). Do not fork
 * while a loader lives (the child has no reader thread).
 */
typedef struct tfs_loader tfs_loader;
int tfs_loader_new(tfs_loader **out, const tfs_token *tok, const size_t *which, size_t n,
                   tfs_error *err);
int tfs_loader_next(tfs_loader *ld, size_t *index, tfs_object **out, tfs_error *err);
void tfs_loader_free(tfs_loader *ld);

/*
 * A step of the caller's own per-object work, shared with the reader
 * thread: run() is called once for each object that loaded, and what it
 * returns comes back with the object from tfs_loader_next_result. The
 * reader runs it for objects ahead of the caller when it has loaded enough
 * of them; the caller runs it for its next object when nobody has. So
 * reading, this step and the caller's own in-order work (writing objects
 * out) share two cores, whichever of them costs most.
 *
 * run() gets the object read-only and may run on two threads at once, one
 * per `worker` (0: the caller's thread, 1: the reader's): state it changes
 * must be per worker (a tfs_token_key decrypts in one thread at a time: give
 * each worker its own, tfs_token_key_dup). It must not read the store, and
 * must not touch what the caller uses meanwhile. discard() frees a result
 * never taken (its object, not yet freed, is given too); without one, a
 * result never taken is dropped, so leave it NULL only when results own
 * nothing. The step is
 * copied; ctx must outlive the loader. Without the thread every run() is
 * the caller's, worker 0: the same results either way.
 */
typedef struct tfs_loader_step {
	void *(*run)(void *ctx, unsigned worker, size_t index, const tfs_object *obj);
	void (*discard)(void *ctx, void *result, const tfs_object *obj);
	void *ctx;
} tfs_loader_step;
int tfs_loader_new_with_step(tfs_loader **out, const tfs_token *tok, const size_t *which,
                             size_t n, const tfs_loader_step *step, tfs_error *err);
/* tfs_loader_next, and *result: what the step made of the object (NULL
 * when it did not load, or without a step). */
int tfs_loader_next_result(tfs_loader *ld, size_t *index, tfs_object **out, void **result,
                           tfs_error *err);

#ifdef __cplusplus
}
#endif
#endif
