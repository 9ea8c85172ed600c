/*
 * Writing the archive: libarchive streams tar (pax), gzip, xz, zstd and zip
 * into the atomic writer's temporary file (store/fs_write.c: created 0600
 * beside the target, key files inside whatever the umask), which is
 * fsync'd and renamed into place only when whole, so a crash or a full disk
 * never leaves a half archive under the backup's name. Without force the
 * rename refuses to replace a file, so even a file that appeared meanwhile
 * is kept; with force a symbolic link or other non-file at the name is
 * refused, and a replaced archive keeps its owner.
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
	tfs_atomic file;
	char *path;
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
                         bool force, tfs_error *err)
{
	*out = NULL;
	tfs_archive_out *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return tfs_nomem(err);
	o->file.fd = -1;
	if ((o->path = strdup(path)) == NULL) {
		free(o);
		return tfs_nomem(err);
	}
	int rc = tfs_atomic_begin(&o->file, path, 0600, force, err);
	if (rc == TFS_OK && (o->a = archive_write_new()) == NULL)
		rc = tfs_nomem(err);
	else if (rc == TFS_OK && (rc = set_format(o, f, err)) == TFS_OK &&
	         archive_write_open_fd(o->a, o->file.fd) != ARCHIVE_OK)
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

int tfs_archive_out_commit(tfs_archive_out *o, uint64_t *size, tfs_error *err)
{
	int rc = TFS_OK;
	struct stat st;
	if (archive_write_close(o->a) != ARCHIVE_OK)
		rc = lib_err(o, "finishing the archive", err);
	else if (fstat(o->file.fd, &st) != 0)
		rc = io_err(err, o->path, "fstat");
	if (rc == TFS_OK) {
		*size = (uint64_t)st.st_size;
		/* fsync, rename (never over a file without force), fsync of the
		 * directory; a new archive whose directory fsync fails is
		 * removed again, so exit 2 always means no new archive. */
		rc = tfs_atomic_commit(&o->file, err);
		if (rc == TFS_E_INVALID) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "exists (created while the backup ran); --force replaces it");
			tfs_error_where(err, "%s", o->path);
		}
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
	tfs_atomic_abort(&o->file); /* after a commit: nothing left to remove */
	free(o->path);
	free(o);
}
