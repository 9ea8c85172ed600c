/*
 * The in-memory store image of the store fuzzers (fuzz_tokendir,
 * fuzz_verify, fuzz_render): a sequence of records, each
 *   type:u8 (0 dir, 1 file, 2 symlink)  path_len:u8  path[path_len]
 *   and for files: data_len:u16 (big-endian)  data[data_len]
 * Paths are taken relative to the image root "s" (the store path opened).
 */
#ifndef TFS_FUZZ_MEMSTORE_H
#define TFS_FUZZ_MEMSTORE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "tokenfs/fs.h"
#include "tokenfs/store.h"

static void add_records(tfs_fs *fs, tfs_cursor *c)
{
	tfs_error err;
	uint8_t type, plen;
	while (tfs_cursor_u8(c, &type) && tfs_cursor_u8(c, &plen)) {
		const uint8_t *p;
		if (!tfs_cursor_bytes(c, plen, &p))
			return;
		char path[300] = "s/";
		memcpy(path + 2, p, plen);
		path[2 + plen] = '\0';
		if (strlen(path) != 2u + plen)
			continue; /* an embedded NUL: not a path */
		if (type % 3 == 1) {
			uint8_t hi, lo;
			const uint8_t *d;
			if (!tfs_cursor_u8(c, &hi) || !tfs_cursor_u8(c, &lo))
				return;
			size_t dlen = (size_t)hi << 8 | lo;
			if (!tfs_cursor_bytes(c, dlen, &d))
				return;
			(void)tfs_memfs_add_file(fs, path, d, dlen, 0600, &err);
		} else if (type % 3 == 0) {
			(void)tfs_memfs_add_dir(fs, path, 0700, &err);
		} else {
			(void)tfs_memfs_add_symlink(fs, path, &err);
		}
	}
}

/* The image as a file system holding directory "s"; NULL when out of
 * memory. Free with tfs_fs_free. */
static inline tfs_fs *fuzz_memstore(const uint8_t *data, size_t size)
{
	tfs_fs *fs;
	tfs_error err;
	if (tfs_memfs_new(&fs, &err) != TFS_OK)
		return NULL;
	(void)tfs_memfs_add_dir(fs, "s", 0700, &err);
	tfs_cursor c;
	tfs_cursor_init(&c, data, size);
	add_records(fs, &c);
	return fs;
}

#endif
