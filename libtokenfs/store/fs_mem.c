/*
 * In-memory file system images: a flat list of entries with full relative
 * paths. Small and linear on purpose; it serves tests and fuzzers, whose
 * images hold tens of entries, through the same store reader as real disks.
 */
#include "store/fs_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"

typedef struct mem_entry {
	char *path;
	tfs_stat st;
	uint8_t *data;
} mem_entry;

typedef struct mem_fs {
	tfs_fs base; /* first: a mem_fs is a tfs_fs */
	mem_entry *ents;
	size_t count;
	size_t cap;
} mem_fs;

static const mem_entry *find(const mem_fs *m, const char *path)
{
	for (size_t i = 0; i < m->count; i++)
		if (strcmp(m->ents[i].path, path) == 0)
			return &m->ents[i];
	return NULL;
}

static int mem_stat(tfs_fs *fs, const char *path, tfs_stat *st, tfs_error *err)
{
	const mem_entry *e = find((mem_fs *)fs, path);
	if (e == NULL) {
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "No such file or directory");
		return tfs_error_where(err, "%s", path);
	}
	*st = e->st;
	return TFS_OK;
}

/* The entry's name when its parent directory is exactly dir, else NULL. */
static const char *child_name(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (strncmp(path, dir, n) != 0 || path[n] != '/')
		return NULL;
	const char *name = path + n + 1;
	return strchr(name, '/') == NULL ? name : NULL;
}

static int cmp_dirent(const void *a, const void *b)
{
	return strcmp(((const tfs_dirent *)a)->name, ((const tfs_dirent *)b)->name);
}

static int mem_list(tfs_fs *fs, const char *dir, tfs_list_full full, tfs_dirent **out,
                    size_t *count, tfs_error *err)
{
	(void)full; /* every entry's stat is at hand */
	mem_fs *m = (mem_fs *)fs;
	*out = NULL;
	*count = 0;
	const mem_entry *d = find(m, dir);
	if (d == NULL || d->st.type != TFS_ENT_DIR) {
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "not a directory");
		return tfs_error_where(err, "%s", dir);
	}
	tfs_dirent *ents = calloc(m->count ? m->count : 1, sizeof(*ents));
	if (ents == NULL)
		return tfs_nomem(err);
	size_t n = 0;
	for (size_t i = 0; i < m->count; i++) {
		const char *name = child_name(m->ents[i].path, dir);
		if (name == NULL)
			continue;
		ents[n].name = strdup(name);
		if (ents[n].name == NULL) {
			tfs_dirents_free(ents, n);
			return tfs_nomem(err);
		}
		ents[n++].st = m->ents[i].st;
	}
	if (n > 1)
		qsort(ents, n, sizeof(*ents), cmp_dirent);
	*out = ents;
	*count = n;
	return TFS_OK;
}

static int mem_read(tfs_fs *fs, const char *path, unsigned *lock_ms, uint8_t **data,
                    size_t *size, tfs_error *err)
{
	(void)lock_ms; /* nobody else can hold a lock on an image */
	*data = NULL;
	*size = 0;
	const mem_entry *e = find((mem_fs *)fs, path);
	const char *why = e == NULL ? "No such file or directory"
	                : e->st.type == TFS_ENT_SYMLINK ? "a symbolic link; not followed"
	                : e->st.type != TFS_ENT_FILE ? "not a regular file" : NULL;
	if (why != NULL) {
		tfs_error_set(err, e == NULL ? TFS_E_NOTFOUND : TFS_E_IO, TFS_NO_OFFSET, "%s", why);
		return tfs_error_where(err, "%s", path);
	}
	return tfs_fs_copy_out(data, size, e->data, (size_t)e->st.size, err);
}

static void mem_destroy(tfs_fs *fs)
{
	mem_fs *m = (mem_fs *)fs;
	for (size_t i = 0; i < m->count; i++) {
		free(m->ents[i].path);
		free(m->ents[i].data);
	}
	free(m->ents);
	free(m);
}

static const struct tfs_fs_ops mem_ops = {
	.stat = mem_stat,
	.list = mem_list,
	.read = mem_read,
	.destroy = mem_destroy,
};

int tfs_memfs_new(tfs_fs **out, tfs_error *err)
{
	mem_fs *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return tfs_nomem(err);
	m->base.ops = &mem_ops;
	*out = &m->base;
	return TFS_OK;
}

static int add_entry(mem_fs *m, const char *path, tfs_ent_type type, uint32_t mode,
                     const uint8_t *data, size_t size, tfs_error *err);

/* Creates every missing ancestor of path as a 0700 directory. */
static int add_parents(mem_fs *m, const char *path, tfs_error *err)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return TFS_OK;
	char *parent = strndup(path, (size_t)(slash - path));
	if (parent == NULL)
		return tfs_nomem(err);
	int rc = TFS_OK;
	const mem_entry *e = find(m, parent);
	if (e == NULL)
		rc = add_entry(m, parent, TFS_ENT_DIR, 0700, NULL, 0, err);
	else if (e->st.type != TFS_ENT_DIR)
		rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "%s: parent is not a directory", path);
	free(parent);
	return rc;
}

static int add_entry(mem_fs *m, const char *path, tfs_ent_type type, uint32_t mode,
                     const uint8_t *data, size_t size, tfs_error *err)
{
	if (path[0] == '\0' || path[0] == '/' || path[strlen(path) - 1] == '/' ||
	    strstr(path, "//") != NULL)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "'%s': image paths are relative, '/'-separated, non-empty", path);
	if (find(m, path) != NULL)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "%s: added twice", path);
	int rc = add_parents(m, path, err);
	if (rc != TFS_OK)
		return rc;
	if (m->count == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 16;
		mem_entry *p = realloc(m->ents, ncap * sizeof(*p));
		if (p == NULL)
			return tfs_nomem(err);
		m->ents = p;
		m->cap = ncap;
	}
	mem_entry *e = &m->ents[m->count];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	e->data = malloc(size ? size : 1);
	if (e->path == NULL || e->data == NULL) {
		free(e->path);
		free(e->data);
		return tfs_nomem(err);
	}
	if (size)
		memcpy(e->data, data, size);
	e->st.type = type;
	e->st.size = size;
	e->st.mode = mode & 07777;
	e->st.nlink = 1;
	m->count++;
	return TFS_OK;
}

/* The public adders take any tfs_fs; only in-memory ones can grow. */
static int add_checked(tfs_fs *fs, const char *path, tfs_ent_type type, uint32_t mode,
                       const uint8_t *data, size_t size, tfs_error *err)
{
	if (fs == NULL || fs->ops != &mem_ops || path == NULL)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "entries can only be added to an in-memory file system");
	return add_entry((mem_fs *)fs, path, type, mode, data, size, err);
}

int tfs_memfs_add_dir(tfs_fs *fs, const char *path, uint32_t mode, tfs_error *err)
{
	return add_checked(fs, path, TFS_ENT_DIR, mode, NULL, 0, err);
}

int tfs_memfs_add_file(tfs_fs *fs, const char *path, const uint8_t *data, size_t size,
                       uint32_t mode, tfs_error *err)
{
	return add_checked(fs, path, TFS_ENT_FILE, mode, data, size, err);
}

int tfs_memfs_add_symlink(tfs_fs *fs, const char *path, tfs_error *err)
{
	return add_checked(fs, path, TFS_ENT_SYMLINK, 0777, NULL, 0, err);
}

int tfs_fs_copy_out(uint8_t **data, size_t *size, const uint8_t *src, size_t n, tfs_error *err)
{
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return tfs_nomem(err);
	if (n)
		memcpy(buf, src, n);
	*data = buf;
	*size = n;
	return TFS_OK;
}
