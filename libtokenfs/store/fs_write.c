/*
 * The one place libtokenfs writes files. SoftHSM itself rewrites objects in
 * place without fsync, so a crash can tear them; tokenfs never does: it
 * writes a temporary file beside the target, fsyncs it, renames it over the
 * target and fsyncs the directory, so the target is always whole, old or new.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error_internal.h"
#include "store/fs_internal.h"
#include "tokenfs/fs.h"

static int fail_errno(tfs_error *err, const char *path, const char *step)
{
	tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s: %s", step, strerror(errno));
	return tfs_error_where(err, "%s", path);
}

/* Adds to an error's text what became of the file. */
static void append(tfs_error *err, const char *text)
{
	size_t n = strlen(err->what);
	snprintf(err->what + n, sizeof(err->what) - n, "%s", text);
}

static int write_all(int fd, const uint8_t *data, size_t size)
{
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO; /* no progress and no reason: do not report a stale errno */
		if (n <= 0)
			return -1;
		data += n;
		size -= (size_t)n;
	}
	return 0;
}

int tfs_rename_noreplace(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOSYS) {
		/* link() fails with EEXIST just as the rename would. */
		if (link(tmp, path) != 0)
			return -1;
		/* Two names would leave the file hard-linked, which the store
		 * reader refuses: undo the link (path is ours, made just now)
		 * and fail as the rename would have. */
		if (unlink(tmp) != 0) {
			int e = errno;
			unlink(path);
			errno = e;
			return -1;
		}
		return 0;
	}
	return -1;
}

int tfs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc == 0 ? 0 : -1;
}

/* Moves the finished temporary file to path. Without replace, an existing
 * path is never touched (tfs_rename_noreplace). */
static int place(const char *tmp, const char *path, bool replace, tfs_error *err)
{
	if (replace)
		return rename(tmp, path) == 0 ? TFS_OK : fail_errno(err, path, "renaming into place");
	if (tfs_rename_noreplace(tmp, path) == 0)
		return TFS_OK;
	if (errno == EEXIST) {
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "exists; refusing to overwrite it");
		return tfs_error_where(err, "%s", path);
	}
	return fail_errno(err, path, "moving into place");
}

/* With replace false, commit never touches an existing path (place()) and
 * begin keeps no owner of an old file, as there is none to keep. */
static int begin(tfs_atomic *a, const char *path, uint32_t mode, bool replace, tfs_error *err)
{
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	a->replace = replace;
	size_t plen = path != NULL ? strlen(path) : 0;
	if (plen == 0 || path[plen - 1] == '/')
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "'%s' is not a file path", path != NULL ? path : "");
	/* Room for "." when path has no directory part. */
	char *dir = malloc(plen + 2), *tmp = NULL;
	if (dir == NULL)
		return tfs_nomem(err);
	memcpy(dir, path, plen + 1);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	/* A dot-name SoftHSM ignores (it is not *.object) while it exists. */
	const char *base = slash ? strrchr(path, '/') + 1 : path;
	if (asprintf(&tmp, "%s/.%s.tokenfs-XXXXXX", dir, base) < 0 || (a->path = strdup(path)) == NULL) {
		free(tmp);
		free(dir);
		return tfs_nomem(err);
	}
	a->dir = dir;
	a->tmp = tmp;
	int rc = TFS_OK, fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = fail_errno(err, path, "creating a temporary file");
		tfs_atomic_abort(a);
		return rc;
	}
	a->fd = fd;
	/* A replaced file keeps its owner: SoftHSM, running as its own user,
	 * must still read what root rewrote for it. The owner is the file's
	 * own, never a symlink's target's (lstat): a link planted at the name
	 * would otherwise hand the new file to whoever owns what it points at.
	 * rename() would replace the link, not write through it, but a link or
	 * a FIFO where a file belongs was not put there by tokenfs: refuse. */
	struct stat old;
	bool had = false;
	if (replace) {
		had = lstat(path, &old) == 0;
		if (!had && errno != ENOENT)
			rc = fail_errno(err, path, "looking at the file to replace");
		else if (had && !S_ISREG(old.st_mode)) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "%s; refusing to replace it",
			              S_ISLNK(old.st_mode) ? "a symbolic link, not followed"
			                                   : "not a regular file");
			rc = tfs_error_where(err, "%s", path);
		}
	}
	if (rc == TFS_OK && had && fchown(fd, old.st_uid, old.st_gid) != 0)
		rc = fail_errno(err, path, "keeping the owner");
	else if (rc == TFS_OK && fchmod(fd, (mode_t)(mode & 07777)) != 0)
		rc = fail_errno(err, path, "setting the mode");
	if (rc != TFS_OK)
		tfs_atomic_abort(a);
	return rc;
}

int tfs_atomic_write(tfs_atomic *a, const uint8_t *data, size_t size, tfs_error *err)
{
	if (write_all(a->fd, data, size) != 0)
		return fail_errno(err, a->path, "writing");
	return TFS_OK;
}

void tfs_atomic_abort(tfs_atomic *a)
{
	if (a->fd >= 0) {
		close(a->fd);
		unlink(a->tmp);
	}
	free(a->tmp);
	free(a->dir);
	free(a->path);
	memset(a, 0, sizeof(*a));
	a->fd = -1;
}

int tfs_atomic_commit(tfs_atomic *a, tfs_error *err)
{
	int rc = TFS_OK, fd = a->fd;
	if (fsync(fd) != 0)
		rc = fail_errno(err, a->path, "fsync");
	a->fd = -1;
	if (close(fd) != 0 && rc == TFS_OK)
		rc = fail_errno(err, a->path, "closing");
	if (rc == TFS_OK)
		rc = place(a->tmp, a->path, a->replace, err);
	if (rc != TFS_OK) {
		unlink(a->tmp);
		goto out;
	}
	if (tfs_fsync_dir(a->dir) != 0) {
		rc = fail_errno(err, a->path, "fsync of the directory");
		if (!a->replace) {
			/* A new name that may not survive a crash is not a file
			 * written: without replace nothing was there before, so
			 * removing it loses nothing, and an error means no file (a
			 * caller that rolls back, like export, never learns of a
			 * file this call made and then failed on). */
			unlink(a->path);
			(void)tfs_fsync_dir(a->dir);
			append(err, "; the new file was removed");
		} else {
			append(err, "; the new contents are in place but may not survive a crash: run "
			            "sync and check them");
		}
	}
out:
	tfs_atomic_abort(a);
	return rc;
}

int tfs_atomic_begin(tfs_atomic *a, const char *path, uint32_t mode, bool replace,
                     tfs_error *err)
{
	return begin(a, path, mode, replace, err);
}

static int write_file(const char *path, const uint8_t *data, size_t size, uint32_t mode,
                      bool replace, tfs_error *err)
{
	tfs_atomic a;
	int rc = begin(&a, path, mode, replace, err);
	if (rc != TFS_OK)
		return rc;
	if ((rc = tfs_atomic_write(&a, data, size, err)) != TFS_OK) {
		tfs_atomic_abort(&a);
		return rc;
	}
	return tfs_atomic_commit(&a, err);
}

int tfs_write_file_atomic(const char *path, const uint8_t *data, size_t size, uint32_t mode,
                          tfs_error *err)
{
	return write_file(path, data, size, mode, true, err);
}

int tfs_write_file_new(const char *path, const uint8_t *data, size_t size, uint32_t mode,
                       tfs_error *err)
{
	return write_file(path, data, size, mode, false, err);
}
