/*
 * Writing the archive: libarchive streams tar (pax), gzip, xz, zstd and zip
 * into a temporary file created 0600 beside the target (key files inside,
 * whatever the umask), which is fsync'd and renamed into place only when
 * whole, so a crash or a full disk never leaves a half archive under the
 * backup's name. Without force the rename refuses to replace a file
 * (tfs_rename_noreplace: RENAME_NOREPLACE, or link() where the file system
 * lacks it), so even a file that appeared meanwhile is kept.
 */
#include "backup/backup_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error_internal.h"

struct tfs_archive_out {
	struct archive *a;
	int fd;
	char *path;
	char *tmp;
	char *dir;
};

static const struct {
	const char *ext;
	tfs_archive_format f;
} exts[] = {
	{".tar", TFS_ARCHIVE_TAR},        {".tar.gz", TFS_ARCHIVE_TAR_GZ},
	{".tgz", TFS_ARCHIVE_TAR_GZ},     {".tar.xz", TFS_ARCHIVE_TAR_XZ},
	{".txz", TFS_ARCHIVE_TAR_XZ},     {".tar.zst", TFS_ARCHIVE_TAR_ZST},
	{".tzst", TFS_ARCHIVE_TAR_ZST},   {".zip", TFS_ARCHIVE_ZIP},
};

bool tfs_archive_format_of(const char *path, tfs_archive_format *out)
{
	size_t n = strlen(path);
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t k = strlen(exts[i].ext);
		if (n > k && strcmp(path + n - k, exts[i].ext) == 0 && path[n - k - 1] != '/') {
			*out = exts[i].f;
			return true;
		}
	}
	return false;
}

const char *tfs_archive_format_name(tfs_archive_format f)
{
	switch (f) {
	case TFS_ARCHIVE_TAR: return "tar";
	case TFS_ARCHIVE_TAR_GZ: return "tar.gz";
	case TFS_ARCHIVE_TAR_XZ: return "tar.xz";
	case TFS_ARCHIVE_TAR_ZST: return "tar.zst";
	case TFS_ARCHIVE_ZIP: return "zip";
	}
	return "?";
}

static int io_err(tfs_error *err, const char *path, const char *step)
{
	tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s: %s", step, strerror(errno));
	return tfs_error_where(err, "%s", path);
}

/* libarchive's text ("Write error") with the system's reason (a full disk,
 * a quota, an I/O error) when it kept one. */
static int lib_err(tfs_archive_out *o, const char *step, tfs_error *err)
{
	const char *msg = archive_error_string(o->a);
	int e = archive_errno(o->a);
	if (msg == NULL)
		msg = "libarchive failed";
	if (e > 0 && strstr(msg, strerror(e)) == NULL)
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s: %s: %s", step, msg, strerror(e));
	else
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s: %s", step, msg);
	return tfs_error_where(err, "%s", o->path);
}

static int set_format(tfs_archive_out *o, tfs_archive_format f, tfs_error *err)
{
	struct archive *a = o->a;
	int r = f == TFS_ARCHIVE_ZIP ? archive_write_set_format_zip(a)
	                             : archive_write_set_format_pax_restricted(a);
	if (r == ARCHIVE_OK) {
		switch (f) {
		case TFS_ARCHIVE_TAR_GZ: r = archive_write_add_filter_gzip(a); break;
		case TFS_ARCHIVE_TAR_XZ: r = archive_write_add_filter_xz(a); break;
		case TFS_ARCHIVE_TAR_ZST: r = archive_write_add_filter_zstd(a); break;
		default: break;
		}
	}
	/* No padding of the last block: the archive ends where its data does. */
	if (r == ARCHIVE_OK)
		r = archive_write_set_bytes_in_last_block(a, 1);
	return r == ARCHIVE_OK ? TFS_OK : lib_err(o, "setting up the archive format", err);
}

int tfs_archive_out_open(tfs_archive_out **out, const char *path, tfs_archive_format f,
                         tfs_error *err)
{
	*out = NULL;
	tfs_archive_out *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return tfs_nomem(err);
	o->fd = -1;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if ((o->path = strdup(path)) == NULL ||
	    (o->dir = slash == NULL ? strdup(".")
	                            : slash == path ? strdup("/")
	                                            : strndup(path, (size_t)(slash - path))) == NULL ||
	    asprintf(&o->tmp, "%s/.%s.tokenfs-XXXXXX", o->dir, base) < 0) {
		o->tmp = NULL;
		tfs_archive_out_abort(o);
		return tfs_nomem(err);
	}
	/* mkostemp creates the file 0600: key files never sit in a readable one. */
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int rc = io_err(err, path, "creating a temporary file beside it");
		free(o->tmp);
		o->tmp = NULL;
		tfs_archive_out_abort(o);
		return rc;
	}
	int rc = TFS_OK;
	if ((o->a = archive_write_new()) == NULL)
		rc = tfs_nomem(err);
	else if ((rc = set_format(o, f, err)) == TFS_OK &&
	         archive_write_open_fd(o->a, o->fd) != ARCHIVE_OK)
		rc = lib_err(o, "opening the archive", err);
	if (rc != TFS_OK) {
		tfs_archive_out_abort(o);
		return rc;
	}
	*out = o;
	return TFS_OK;
}

static int write_entry(tfs_archive_out *o, const char *name, const tfs_stat *st, bool dir,
                       const uint8_t *data, size_t size, tfs_error *err)
{
	struct archive_entry *e = archive_entry_new();
	if (e == NULL)
		return tfs_nomem(err);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, (mode_t)(st->mode & 07777));
	archive_entry_set_uid(e, st->uid);
	archive_entry_set_gid(e, st->gid);
	archive_entry_set_mtime(e, (time_t)st->mtime_sec, 0);
	archive_entry_set_size(e, dir ? 0 : (la_int64_t)size);
	int rc = TFS_OK;
	if (archive_write_header(o->a, e) != ARCHIVE_OK)
		rc = lib_err(o, name, err);
	else if (!dir && size > 0 && archive_write_data(o->a, data, size) != (la_ssize_t)size)
		rc = lib_err(o, name, err);
	archive_entry_free(e);
	return rc;
}

int tfs_archive_out_dir(tfs_archive_out *a, const char *name, const tfs_stat *st, tfs_error *err)
{
	return write_entry(a, name, st, true, NULL, 0, err);
}

int tfs_archive_out_file(tfs_archive_out *a, const char *name, const tfs_stat *st,
                         const uint8_t *data, size_t size, tfs_error *err)
{
	return write_entry(a, name, st, false, data, size, err);
}

int tfs_archive_out_commit(tfs_archive_out *o, bool force, uint64_t *size, tfs_error *err)
{
	int rc = TFS_OK;
	if (archive_write_close(o->a) != ARCHIVE_OK)
		rc = lib_err(o, "finishing the archive", err);
	struct stat st;
	if (rc == TFS_OK && fsync(o->fd) != 0)
		rc = io_err(err, o->path, "fsync");
	if (rc == TFS_OK && fstat(o->fd, &st) != 0)
		rc = io_err(err, o->path, "fstat");
	if (rc == TFS_OK) {
		*size = (uint64_t)st.st_size;
		int r = force ? rename(o->tmp, o->path)
		              : tfs_rename_noreplace(o->tmp, o->path);
		if (r != 0 && errno == EEXIST) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "exists (created while the backup ran); --force replaces it");
			rc = tfs_error_where(err, "%s", o->path);
		} else if (r != 0)
			rc = io_err(err, o->path, "renaming into place");
	}
	if (rc != TFS_OK) {
		tfs_archive_out_abort(o);
		return rc;
	}
	free(o->tmp);
	o->tmp = NULL; /* renamed: nothing to remove */
	/* The archive is whole on disk, but its name is durable only once the
	 * directory is. When that fails the backup is not done (exit 2), and
	 * the name must say the same thing as the exit: a new archive (no
	 * --force, so nothing was there before) is removed, which loses nothing;
	 * under --force the old archive is already gone, so the new one stays,
	 * and the message says it may not survive a crash. */
	if (tfs_fsync_dir(o->dir) != 0) {
		rc = io_err(err, o->path, "fsync of the directory");
		size_t n = strlen(err->what);
		if (!force) {
			unlink(o->path);
			(void)tfs_fsync_dir(o->dir);
		}
		snprintf(err->what + n, sizeof(err->what) - n, "%s",
		         force ? "; the archive is in place but may not survive a crash: run sync and "
		                 "check it, or back up again"
		               : "; the new archive was removed: nothing was written");
	}
	tfs_archive_out_abort(o);
	return rc;
}

void tfs_archive_out_abort(tfs_archive_out *o)
{
	if (o == NULL)
		return;
	if (o->a != NULL) {
		/* After a failed write libarchive's free skips the close, and so
		 * its output buffer: close first (it may fail again; the file is
		 * removed anyway). */
		archive_write_close(o->a);
		archive_write_free(o->a);
	}
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp != NULL)
		unlink(o->tmp);
	free(o->tmp);
	free(o->dir);
	free(o->path);
	free(o);
}
