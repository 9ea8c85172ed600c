/*
 * The token directory held for writing, and the POSIX steps transactions and
 * recovery are built from. Waiting for locks is bounded by one budget for the
 * whole run: a SoftHSM that holds a lock is a clear error, never a hang.
 */
#include "txn/txn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "core/error_internal.h"
#include "tokenfs/object.h"

#define DEFAULT_LOCK_MS 5000u
#define LOCK_STEP_MS 10u

int tfs_txn_errno(tfs_error *err, const tfs_locked_dir *d, const char *name, const char *step)
{
	int e = errno;
	tfs_error_set(err, e == ENOMEM ? TFS_E_NOMEM : TFS_E_IO, TFS_NO_OFFSET, "%s: %s", step,
	              strerror(e));
	if (name != NULL)
		return tfs_error_where(err, "%s/%s", d->path, name);
	return tfs_error_where(err, "%s", d->path);
}

static void sleep_step(tfs_locked_dir *d)
{
	struct timespec ts = {0, (long)LOCK_STEP_MS * 1000000L};
	nanosleep(&ts, NULL);
	d->waited_ms += LOCK_STEP_MS;
}

static int locked_error(tfs_error *err, const tfs_locked_dir *d, const char *name, long pid)
{
	if (pid > 0)
		tfs_error_set(err, TFS_E_LOCKED, TFS_NO_OFFSET, "locked by another process (pid %ld) "
		              "for more than %u ms; stop SoftHSM and its users, or retry", pid, d->lock_ms);
	else
		tfs_error_set(err, TFS_E_LOCKED, TFS_NO_OFFSET, "locked by another process or tokenfs "
		              "writer for more than %u ms; stop SoftHSM and its users, or retry", d->lock_ms);
	return tfs_error_where(err, "%s/%s", d->path, name);
}

/*
 * Open-file-description locks: they conflict with SoftHSM's classic fcntl
 * locks, but belong to our descriptor, not to the process, so a reader in
 * this process that opens and closes the same file (a seal check, a hard
 * link) cannot silently release them, as it would a classic lock.
 */
int tfs_txn_wrlock(tfs_locked_dir *d, int fd, const char *name, tfs_error *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	for (;;) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return TFS_OK;
		if (errno != EACCES && errno != EAGAIN)
			return tfs_txn_errno(err, d, name, "taking the write lock");
		if (d->waited_ms >= d->lock_ms)
			break;
		sleep_step(d);
	}
	struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	long pid = (fcntl(fd, F_OFD_GETLK, &who) == 0 && who.l_type != F_UNLCK) ? (long)who.l_pid : -1;
	return locked_error(err, d, name, pid);
}

int tfs_txn_open_locked(tfs_locked_dir *d, const char *name, bool missing_ok, int *fd,
                        tfs_error *err)
{
	*fd = -1;
	/* O_NONBLOCK: a FIFO swapped in cannot block the open; checked below. */
	int f = openat(d->fd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (f < 0) {
		if (errno == ENOENT && missing_ok)
			return TFS_OK;
		if (errno == ELOOP) {
			tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "a symbolic link; not followed");
			return tfs_error_where(err, "%s/%s", d->path, name);
		}
		return tfs_txn_errno(err, d, name, "opening for writing");
	}
	struct stat st;
	int rc = TFS_OK;
	if (fstat(f, &st) != 0)
		rc = tfs_txn_errno(err, d, name, "fstat");
	else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		/* SoftHSM never makes hard links; one could alias a file we
		 * hold locked or reach outside the token. */
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s; refusing to write through it",
		              S_ISREG(st.st_mode) ? "hard-linked to another name" : "not a regular file");
		rc = tfs_error_where(err, "%s/%s", d->path, name);
	} else
		rc = tfs_txn_wrlock(d, f, name, err);
	if (rc != TFS_OK) {
		close(f);
		return rc;
	}
	*fd = f;
	return TFS_OK;
}

int tfs_txn_read_fd(const tfs_locked_dir *d, int fd, const char *name, uint8_t **data,
                    size_t *size, tfs_error *err)
{
	*data = NULL;
	*size = 0;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return tfs_txn_errno(err, d, name, "fstat");
	if ((uint64_t)st.st_size > TFS_MAX_OBJECT_SIZE) {
		tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET, "file of %lld bytes exceeds the %u-byte cap",
		              (long long)st.st_size, TFS_MAX_OBJECT_SIZE);
		return tfs_error_where(err, "%s/%s", d->path, name);
	}
	size_t want = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(want ? want : 1);
	if (buf == NULL)
		return tfs_nomem(err);
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return tfs_txn_errno(err, d, name, "reading");
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*data = buf;
	*size = got;
	return TFS_OK;
}

int tfs_txn_sync_dir(const tfs_locked_dir *d, tfs_error *err)
{
	if (fsync(d->fd) != 0)
		return tfs_txn_errno(err, d, NULL, "fsync of the token directory");
	return TFS_OK;
}

bool tfs_txn_staged_name(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s%s", name, TFS_TXN_STAGED_SUFFIX);
	return n > 0 && (size_t)n < size;
}

/* flock keeps two tokenfs writers apart even where token.lock is missing. */
static int flock_dir(tfs_locked_dir *d, tfs_error *err)
{
	for (;;) {
		if (flock(d->fd, LOCK_EX | LOCK_NB) == 0)
			return TFS_OK;
		if (errno != EWOULDBLOCK)
			return tfs_txn_errno(err, d, NULL, "locking the token directory");
		if (d->waited_ms >= d->lock_ms)
			return locked_error(err, d, ".", -1);
		sleep_step(d);
	}
}

int tfs_locked_dir_open(tfs_locked_dir *d, const char *path, const tfs_txn_options *opts,
                        tfs_error *err)
{
	memset(d, 0, sizeof(*d));
	d->fd = d->token_lock_fd = -1;
	d->lock_ms = (opts != NULL && opts->lock_timeout_ms > 0) ? opts->lock_timeout_ms
	                                                         : DEFAULT_LOCK_MS;
	d->path = strdup(path);
	if (d->path == NULL)
		return tfs_nomem(err);
	d->fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;
	if (d->fd < 0)
		rc = tfs_txn_errno(err, d, NULL, "opening the token directory");
	else if (faccessat(d->fd, ".", W_OK, AT_EACCESS) != 0)
		rc = tfs_txn_errno(err, d, NULL, "the token directory is not writable");
	else if ((rc = flock_dir(d, err)) == TFS_OK)
		rc = tfs_txn_open_locked(d, "token.lock", true, &d->token_lock_fd, err);
	if (rc != TFS_OK)
		tfs_locked_dir_close(d);
	return rc;
}

void tfs_locked_dir_close(tfs_locked_dir *d)
{
	if (d->token_lock_fd >= 0)
		close(d->token_lock_fd);
	if (d->fd >= 0)
		close(d->fd); /* releases the flock */
	free(d->path);
	d->path = NULL;
	d->fd = d->token_lock_fd = -1;
}
