/*
 * The PATH a user gives, whatever it is: a directory or a .object file goes
 * to the store reader on the real file system, a regular file that
 * libarchive recognises as an archive (by its content, whatever its name) to
 * the store reader on an archive image. Every command opens PATH here.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error_internal.h"
#include "store/store_internal.h"
#include "tokenfs/archive.h"

int tfs_store_open_archive(tfs_store **out, const char *path, const tfs_open_options *opts,
                           tfs_error *err)
{
	*out = NULL;
	tfs_fs *fs;
	int rc = tfs_archivefs_open(&fs, path, opts != NULL ? opts->archive_limits : NULL, err);
	if (rc != TFS_OK)
		return rc;
	rc = tfs_store_open_tree(out, fs, path, opts, err);
	if (rc != TFS_OK) {
		tfs_fs_free(fs);
		return rc;
	}
	(*out)->owned_fs = fs;
	return TFS_OK;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int tfs_store_open_path(tfs_store **out, const char *path, const tfs_open_options *opts,
                        tfs_error *err)
{
	*out = NULL;
	struct stat st;
	/* Directories, links and missing paths: the store reader says what
	 * they are. A directory stays a directory. */
	if (path == NULL || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return tfs_store_open(out, path, opts, err);
	int rc = tfs_store_open_archive(out, path, opts, err);
	/* A .object file is an object file unless it is an archive holding a
	 * token: zeros are an empty tar to libarchive, and a crash can leave
	 * an object file of zeros. */
	if (has_suffix(path, ".object") && (rc == TFS_E_FORMAT || rc == TFS_E_NOTFOUND))
		return tfs_store_open(out, path, opts, err);
	if (rc != TFS_E_FORMAT)
		return rc;
	char why[sizeof(err->what)];
	memcpy(why, err->what, sizeof(why)); /* err is rewritten below */
	tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
	              "not a token store: expected a tokendir, a token directory, a .object file "
	              "or a tar or zip archive (%s)", why);
	return tfs_error_where(err, "%s", path);
}
