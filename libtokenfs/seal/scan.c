/*
 * The token directory as the seal sees it: every entry, read through the
 * store's own file-system interface and SoftHSM's read locks, except the
 * seal itself. And the one file read outside that interface: the seal.
 */
#include "seal/seal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error_internal.h"
#include "store/store_internal.h"

bool tfs_seal_is_object_file(const char *name)
{
	size_t n = strlen(name);
	return n > 7 && strcmp(name + n - 7, ".object") == 0;
}

const char *tfs_seal_ent_type_name(tfs_ent_type t)
{
	switch (t) {
	case TFS_ENT_FILE: return "file";
	case TFS_ENT_DIR: return "directory";
	case TFS_ENT_SYMLINK: return "symlink";
	case TFS_ENT_OTHER: return "other";
	}
	return "other";
}

/* The name of the seal inside the token directory, or NULL when the seal
 * lives elsewhere. Compared by real path, so "./x/../tok" is the same. */
static char *seal_name_in_dir(const char *seal_path, const char *dir)
{
	char *copy = strdup(seal_path), *copy2 = strdup(seal_path);
	char *name = NULL, real_dir[PATH_MAX], real_seal_dir[PATH_MAX];
	if (copy != NULL && copy2 != NULL && realpath(dir, real_dir) != NULL &&
	    realpath(dirname(copy), real_seal_dir) != NULL && strcmp(real_dir, real_seal_dir) == 0)
		name = strdup(basename(copy2));
	free(copy);
	free(copy2);
	return name;
}

int tfs_seal_dir_list(tfs_seal_dir *out, const tfs_vtoken *vt, const char *seal_path,
                      tfs_error *err)
{
	memset(out, 0, sizeof(*out));
	tfs_fs *fs = vt->store->fs;
	out->path = strdup(tfs_token_path(vt->tok));
	if (out->path == NULL)
		return tfs_nomem(err);
	tfs_stat st;
	int rc = fs->ops->stat(fs, out->path, &st, err);
	if (rc != TFS_OK)
		return rc;
	out->mode = st.mode;
	rc = fs->ops->list(fs, out->path, NULL, &out->ents, &out->count, err);
	if (rc != TFS_OK)
		return rc;
	/* Inside an archive the token directory is no path on disk: a seal
	 * file on disk is never one of its members, and nothing is resolved. */
	char *own = seal_path != NULL && !vt->store->tree ? seal_name_in_dir(seal_path, out->path)
	                                                  : NULL;
	size_t kept = 0;
	for (size_t i = 0; i < out->count; i++) {
		const char *name = out->ents[i].name;
		if (strcmp(name, TFS_SEAL_DEFAULT_NAME) == 0 || (own != NULL && strcmp(name, own) == 0)) {
			free(out->ents[i].name);
			continue;
		}
		out->ents[kept++] = out->ents[i];
	}
	out->count = kept;
	free(own);
	return TFS_OK;
}

void tfs_seal_dir_free(tfs_seal_dir *d)
{
	tfs_dirents_free(d->ents, d->count);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

int tfs_seal_dir_read(const tfs_vtoken *vt, const tfs_seal_dir *d, const char *name,
                      uint8_t **data, size_t *size, tfs_error *err)
{
	char *path = NULL;
	if (asprintf(&path, "%s/%s", d->path, name) < 0)
		return tfs_nomem(err);
	const tfs_store *s = vt->store;
	int rc = tfs_store_read_settled(s, path, tfs_store_file_role(name), data, size, NULL, err);
	free(path);
	return rc;
}

int tfs_seal_read_file(const char *path, size_t cap, uint8_t **data, size_t *size,
                       tfs_error *err)
{
	*data = NULL;
	*size = 0;
	/* O_NONBLOCK: a FIFO put where the seal should be must not hang us;
	 * the S_ISREG check below then refuses it. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s",
		              errno == ELOOP ? "a symbolic link; not followed" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return tfs_error_where(err, "%s", path);
	}
	int rc = TFS_OK;
	uint8_t *buf = NULL;
	if (!S_ISREG(st.st_mode)) {
		rc = tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "not a regular file");
	} else if ((uint64_t)st.st_size > cap) {
		rc = tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
		                   "%lld bytes exceed the %zu-byte cap of a seal",
		                   (long long)st.st_size, cap);
	} else if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = tfs_nomem(err);
	} else {
		size_t want = (size_t)st.st_size, got = 0;
		while (got < want) {
			ssize_t r = read(fd, buf + got, want - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = tfs_error_set(err, TFS_E_IO, got, "%s", strerror(errno));
				break;
			}
			if (r == 0)
				break;
			got += (size_t)r;
		}
		*size = got;
	}
	close(fd);
	if (rc != TFS_OK) {
		free(buf);
		*size = 0;
		if (rc != TFS_E_NOMEM)
			tfs_error_where(err, "%s", path);
		return rc;
	}
	*data = buf;
	return TFS_OK;
}
