/*
 * The write engine: every change libtokenfs makes to a token directory is one
 * transaction over the files that change, with these guarantees (the protocol
 * and the reasoning are in docs/writes.md):
 *
 *  - nothing is lost: new contents go to staged files "<name>.tokenfs-new",
 *    which are flushed to disk before a journal ("tokenfs.journal") naming
 *    them is renamed into place; that rename is the commit point;
 *  - old or new: recovery (tfs_txn_recover, and the start of every
 *    transaction) rolls a committed journal forward and removes staged files
 *    that were never committed, so each token ends wholly as before or wholly
 *    as after; recovery never needs a PIN;
 *  - durability: nothing is reported done before it is on disk;
 *  - SoftHSM's rules: files are read and replaced under SoftHSM's own fcntl
 *    write locks, every rewritten object and token.object gets generation + 1,
 *    the token's `generation` file (where it exists) is increased, and each
 *    file keeps its owner, group and mode. Files that do not change are never
 *    opened for writing.
 *
 * None of this makes it safe to write while SoftHSM runs (it writes back a
 * stale cached copy): check tfs_softhsm_users first.
 */
#ifndef TOKENFS_TXN_H
#define TOKENFS_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/object.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Names the engine uses inside a token directory; SoftHSM ignores them (none
 * ends in ".object" and none is a directory). */
#define TFS_TXN_JOURNAL "tokenfs.journal"
#define TFS_TXN_JOURNAL_TMP "tokenfs.journal.tmp"
#define TFS_TXN_STAGED_SUFFIX ".tokenfs-new"

typedef enum tfs_recovery {
	TFS_RECOVERY_NONE = 0,      /* nothing was pending */
	TFS_RECOVERY_ROLLED_BACK,   /* staged files of an uncommitted transaction removed */
	TFS_RECOVERY_ROLLED_FORWARD /* a committed transaction finished */
} tfs_recovery;

/* "none", "rolled-back", "rolled-forward". */
const char *tfs_recovery_name(tfs_recovery r);

typedef struct tfs_txn_options {
	/* How long to wait for a lock held by another process before failing
	 * with TFS_E_LOCKED; 0 means 5000 ms. One budget for the whole run. */
	unsigned lock_timeout_ms;
} tfs_txn_options;

/*
 * Finishes or undoes whatever an interrupted transaction left in token_dir,
 * under the same locks a transaction takes. *what says which. Errors:
 * TFS_E_DAMAGED when a journal is present but cannot be trusted (it does not
 * parse, or a staged file or target does not have the content the journal
 * names): nothing is changed then and a person must look; TFS_E_IO,
 * TFS_E_LOCKED.
 */
int tfs_txn_recover(tfs_recovery *what, const char *token_dir,
                    const tfs_txn_options *opts, tfs_error *err);

/* What a transaction wrote. */
typedef struct tfs_txn_stats {
	size_t files_written;   /* staged files (each changed file once) */
	uint64_t bytes_written; /* their bytes */
	uint64_t journal_bytes; /* the journal's bytes */
	tfs_recovery recovered; /* what recovery at the start did */
	bool committed;         /* the commit point was passed: the change holds,
	                           finished now or by recovery */
} tfs_txn_stats;

typedef struct tfs_txn tfs_txn;

/*
 * Starts a transaction on token_dir: takes the token's locks (an flock on the
 * directory against other tokenfs writers, SoftHSM's F_WRLCK on token.lock),
 * runs recovery, and checks the directory is writable. Writes nothing else.
 * On success the caller owns *out and ends it with tfs_txn_commit or
 * tfs_txn_abort, then tfs_txn_free.
 */
int tfs_txn_begin(tfs_txn **out, const char *token_dir, const tfs_txn_options *opts,
                  tfs_error *err);

/*
 * Reads the current bytes of file `name` (a plain name in the token
 * directory) under SoftHSM's write lock on it and on its "<stem>.lock"
 * companion, and remembers its identity so a later change by someone else is
 * detected before commit. Caller frees *data with free().
 */
int tfs_txn_read(tfs_txn *txn, const char *name, uint8_t **data, size_t *size,
                 tfs_error *err);

/*
 * Stages new contents for a file read with tfs_txn_read: written to
 * "<name>.tokenfs-new" with the file's owner, group and mode, and read back.
 * Each file may be staged once. Nothing is visible to SoftHSM yet.
 */
int tfs_txn_stage(tfs_txn *txn, const char *name, const uint8_t *data, size_t size,
                  tfs_error *err);

/* A check of a file's new bytes before they are staged; a non-zero return
 * (with err set) stops the transaction before anything is committed. */
typedef int (*tfs_txn_check_fn)(void *ctx, const uint8_t *data, size_t size, tfs_error *err);

/*
 * Stages an object file (a <uuid>.object or token.object read with
 * tfs_txn_read): sets obj's generation to the file's generation + 1, as
 * SoftHSM needs to notice the change, serializes it, runs check (may be
 * NULL) on the exact bytes, and stages them.
 */
int tfs_txn_stage_object(tfs_txn *txn, const char *name, tfs_object *obj,
                         tfs_txn_check_fn check, void *ctx, tfs_error *err);

/* What recovery did when the transaction began. */
tfs_recovery tfs_txn_recovered(const tfs_txn *txn);

/* Number of files staged so far. */
size_t tfs_txn_staged_count(const tfs_txn *txn);

/*
 * Commits: when anything was staged, stages the token's `generation` file + 1
 * (if the file exists), flushes every staged file, checks no target changed
 * since it was read, writes and renames the journal (the commit point),
 * replaces the targets and removes the journal. A failure before the commit
 * point undoes the staging (the token is as before); after it the token is
 * committed and recovery finishes it, and the error says so. Committing an
 * empty transaction writes nothing. stats may be NULL.
 */
int tfs_txn_commit(tfs_txn *txn, tfs_txn_stats *stats, tfs_error *err);

/* Removes what was staged; the token is as before. */
void tfs_txn_abort(tfs_txn *txn);

/* Aborts if neither commit nor abort ran, releases the locks, frees. NULL ok. */
void tfs_txn_free(tfs_txn *txn);

/*
 * Processes that have SoftHSM (libsofthsm2.so) mapped, found through
 * /proc/<pid>/maps; the calling process is left out. *out is an array of
 * *count entries the caller frees with tfs_softhsm_users_free.
 * *unreadable counts processes whose maps could not be read (another user's,
 * without privilege).
 */
typedef struct tfs_process {
	long pid;
	char comm[64]; /* the command name, from /proc/<pid>/comm */
} tfs_process;

int tfs_softhsm_users(tfs_process **out, size_t *count, size_t *unreadable, tfs_error *err);
void tfs_softhsm_users_free(tfs_process *list);

#ifdef __cplusplus
}
#endif
#endif
