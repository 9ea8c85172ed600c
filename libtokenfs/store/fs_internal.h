/*
 * The file-system interface the store reader goes through. Three
 * implementations: fs_posix.c (the real, read-only file system), fs_mem.c
 * (in-memory images for tests and fuzzers) and archive/archive_fs.c (an
 * archive read into memory).
 */
#ifndef TFS_STORE_FS_INTERNAL_H
#define TFS_STORE_FS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/fs.h"

struct tfs_findings;

typedef enum tfs_ent_type {
	TFS_ENT_FILE,
	TFS_ENT_DIR,
	TFS_ENT_SYMLINK,
	TFS_ENT_OTHER /* fifo, socket, device */
} tfs_ent_type;

/* What lstat tells, reduced to what the store reports. An entry listed for
 * its type only (see tfs_list_full) has only `type` set, the rest zero. */
typedef struct tfs_stat {
	tfs_ent_type type;
	uint64_t size;
	uint32_t mode; /* permission bits */
	uint32_t uid;
	uint32_t gid;
	int64_t mtime_sec;
	uint64_t nlink; /* hard links; SoftHSM never makes a second one */
} tfs_stat;

typedef struct tfs_dirent {
	char *name;
	tfs_stat st;
} tfs_dirent;

/* Which entries of a listing need their whole stat; the others may come
 * with their type alone, which the directory itself tells (d_type) without
 * a stat per entry. NULL: every entry. */
typedef bool (*tfs_list_full)(const char *name);

struct tfs_fs_ops {
	/* lstat(path): symlinks are reported as links, never followed. */
	int (*stat)(tfs_fs *fs, const char *path, tfs_stat *st, tfs_error *err);
	/* Every entry of a directory except . and .., sorted by name. An
	 * implementation that knows every entry's stat anyway ignores full. */
	int (*list)(tfs_fs *fs, const char *dir, tfs_list_full full, tfs_dirent **out,
	            size_t *count, tfs_error *err);
	/* A whole regular file, under an fcntl read lock unless lock_ms is
	 * NULL. *lock_ms is how long the read may wait for a writer; what it
	 * waited is taken off it, so one budget can cover many reads. A file
	 * that is not there is TFS_E_NOTFOUND. *data is malloc'd. */
	int (*read)(tfs_fs *fs, const char *path, unsigned *lock_ms, uint8_t **data,
	            size_t *size, tfs_error *err);
	void (*destroy)(tfs_fs *fs);
	/* Optional (NULL: none): what the file system itself noticed while it
	 * was built (an archive's damage, links, unsafe member paths). */
	const struct tfs_findings *(*findings)(tfs_fs *fs);
};

struct tfs_fs {
	const struct tfs_fs_ops *ops;
};

/* The process-wide real file system (a static instance; never freed). */
tfs_fs *tfs_fs_posix(void);

void tfs_dirents_free(tfs_dirent *ents, size_t count);

/* Frees what a read returned, wiped first: an object file may hold key
 * material in the clear (a secret key with CKA_PRIVATE false is stored so).
 * Accepts NULL. */
void tfs_file_bytes_free(uint8_t *data, size_t size);

/* A read of an in-memory file (fs_mem, archive images): a new buffer with a
 * copy of the n bytes at src (at least 1 byte allocated). */
int tfs_fs_copy_out(uint8_t **data, size_t *size, const uint8_t *src, size_t n, tfs_error *err);

/*
 * tfs_write_file_atomic in steps, for what is written as it is made (a
 * seal): a temporary file beside path, opened read-write (a writer may read
 * back what it wrote through fd), then commit (fsync, rename over path,
 * fsync of the directory) or abort (unlink). Both release a.
 */
typedef struct tfs_atomic {
	int fd;
	bool replace; /* false: never overwrite (tfs_write_file_new, a backup without --force) */
	char *path, *tmp, *dir;
} tfs_atomic;

/* replace false: commit never overwrites a file at path (it fails,
 * TFS_E_INVALID, "exists"). */
int tfs_atomic_begin(tfs_atomic *a, const char *path, uint32_t mode, bool replace,
                     tfs_error *err);
int tfs_atomic_write(tfs_atomic *a, const uint8_t *data, size_t size, tfs_error *err);
int tfs_atomic_commit(tfs_atomic *a, tfs_error *err);
void tfs_atomic_abort(tfs_atomic *a);

/*
 * Renames tmp to path only when path does not exist: renameat2's
 * RENAME_NOREPLACE, or link() and unlink(tmp) where the file system has no
 * such rename (EINVAL, ENOSYS). 0, or -1 with errno (EEXIST: path exists;
 * it is never touched). fs_write.c.
 */
int tfs_rename_noreplace(const char *tmp, const char *path);

/* fsync of a directory, so that names made or removed in it survive a
 * crash. 0, or -1 with errno. fs_write.c; export uses it too. */
int tfs_fsync_dir(const char *dir);

#endif
