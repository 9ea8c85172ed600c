/*
 * What txn.c (transactions) and recover.c (recovery) share: the locked token
 * directory and the small POSIX steps both are made of. Every file is opened
 * relative to the token directory's descriptor with O_NOFOLLOW, so a symlink
 * swapped in anywhere cannot redirect a write.
 */
#ifndef TFS_TXN_INTERNAL_H
#define TFS_TXN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "crypto/digest_internal.h"
#include "tokenfs/txn.h"

/* A token directory held for writing. */
typedef struct tfs_locked_dir {
	char *path;         /* for messages */
	int fd;             /* the directory, O_RDONLY */
	int token_lock_fd;  /* token.lock under F_WRLCK, or -1 when there is none */
	unsigned lock_ms;   /* budget for waiting on locks, over the whole run */
	unsigned waited_ms; /* spent so far */
} tfs_locked_dir;

/* Opens and locks path (flock against other tokenfs writers, F_WRLCK on
 * token.lock against SoftHSM), and checks it is writable. */
int tfs_locked_dir_open(tfs_locked_dir *d, const char *path, const tfs_txn_options *opts,
                        tfs_error *err);
void tfs_locked_dir_close(tfs_locked_dir *d);

/* An error about file `name` of the directory: "<dir>/<name>: step: errno". */
int tfs_txn_errno(tfs_error *err, const tfs_locked_dir *d, const char *name, const char *step);

/* Takes an fcntl write lock on fd, waiting from d's budget. */
int tfs_txn_wrlock(tfs_locked_dir *d, int fd, const char *name, tfs_error *err);

/* Opens an existing regular file of the directory for writing (never
 * creating it) and write-locks it. *fd is -1 and TFS_OK when the file does
 * not exist and missing_ok. */
int tfs_txn_open_locked(tfs_locked_dir *d, const char *name, bool missing_ok, int *fd,
                        tfs_error *err);

/* Reads a whole regular file (at most TFS_MAX_OBJECT_SIZE bytes) from fd. */
int tfs_txn_read_fd(const tfs_locked_dir *d, int fd, const char *name, uint8_t **data,
                    size_t *size, tfs_error *err);

/* fsync of the directory itself: makes creations, renames and unlinks durable. */
int tfs_txn_sync_dir(const tfs_locked_dir *d, tfs_error *err);

/* "<name>.tokenfs-new" into buf; false when it does not fit. */
bool tfs_txn_staged_name(char *buf, size_t size, const char *name);

/*
 * The seal step (change/seal_step.c) reads token.lock under a read lock of
 * its own, which the transaction's write lock refuses even in this process
 * (open-file-description locks). Around it the transaction lets go of
 * token.lock alone and keeps the directory's flock, so no other tokenfs
 * writer can change the token between a commit and its re-seal. Retaking
 * waits from the run's lock budget.
 */
void tfs_txn_release_token_lock(tfs_txn *t);
int tfs_txn_retake_token_lock(tfs_txn *t, tfs_error *err);

/* Runs recovery in a locked directory (see tfs_txn_recover). */
int tfs_txn_recover_locked(tfs_locked_dir *d, tfs_recovery *what, tfs_error *err);

#endif
