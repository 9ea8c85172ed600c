/*
 * Where a store's bytes come from. libtokenfs reads stores through a small
 * file-system interface with two implementations: the real file system
 * (read-only, O_NOFOLLOW, SoftHSM's fcntl read locks; tfs_store_open uses it)
 * and an in-memory image built with the functions below, which tests and
 * fuzzers feed through exactly the same store reader.
 */
#ifndef TOKENFS_FS_H
#define TOKENFS_FS_H

#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfs_fs tfs_fs;

/* A new, empty in-memory file system. Free with tfs_fs_free. */
int tfs_memfs_new(tfs_fs **out, tfs_error *err);

/*
 * Adds entries to an in-memory file system. Paths are relative, '/'-separated
 * ("store/token1/token.object"); missing parent directories are created with
 * mode 0700. Data is copied. Adding a path twice fails with TFS_E_INVALID.
 */
int tfs_memfs_add_dir(tfs_fs *fs, const char *path, uint32_t mode, tfs_error *err);
int tfs_memfs_add_file(tfs_fs *fs, const char *path, const uint8_t *data,
                       size_t size, uint32_t mode, tfs_error *err);
int tfs_memfs_add_symlink(tfs_fs *fs, const char *path, tfs_error *err);

/*
 * Replaces the file at path with data, atomically and durably: a temporary
 * file in the same directory created with `mode`, written and fsync'd, then
 * renamed over path, then the directory fsync'd. A crash leaves either the
 * old or the new file, never a torn one. With tfs_write_file_new below, the
 * only way libtokenfs writes files.
 */
int tfs_write_file_atomic(const char *path, const uint8_t *data, size_t size,
                          uint32_t mode, tfs_error *err);

/*
 * Creates path with data, as tfs_write_file_atomic does, but never replaces
 * an existing file: the temporary file (created O_EXCL, `mode`) is moved
 * into place with renameat2(RENAME_NOREPLACE), or link() where the file
 * system lacks it. TFS_E_INVALID when path exists; nothing is changed then.
 */
int tfs_write_file_new(const char *path, const uint8_t *data, size_t size,
                       uint32_t mode, tfs_error *err);

/* Frees a file system. Accepts NULL. Stores opened on it must be freed first. */
void tfs_fs_free(tfs_fs *fs);

#ifdef __cplusplus
}
#endif
#endif
