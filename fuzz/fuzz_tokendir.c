/*
 * libFuzzer target: the token-directory reader, fed an in-memory directory
 * image through the same store code that reads real disks.
 *
 * Input: a sequence of records, each
 *   type:u8 (0 dir, 1 file, 2 symlink)  path_len:u8  path[path_len]
 *   and for files: data_len:u16 (big-endian)  data[data_len]
 * Paths are taken relative to the image root "s" (the store path opened).
 * scripts/make-fuzz-seeds.py writes real SoftHSM token directories in this
 * form as seeds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "tokenfs/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

static void walk(const tfs_store *store)
{
	for (size_t f = 0; f < tfs_store_finding_count(store); f++)
		(void)tfs_finding_message(tfs_store_finding(store, f));
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		uint32_t slot;
		uint64_t v;
		size_t n;
		(void)tfs_token_slot_id(tok, &slot);
		(void)tfs_token_flags(tok, &v);
		(void)tfs_token_generation(tok, &v);
		(void)tfs_token_pin_blob(tok, TFS_PIN_SO, &n);
		for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
			tfs_object *obj = NULL;
			tfs_error err;
			if (tfs_token_load_object(&obj, tok, i, &err) == TFS_OK)
				(void)tfs_object_duplicate_count(obj);
			tfs_object_free(obj);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tfs_fs *fs;
	tfs_error err;
	if (tfs_memfs_new(&fs, &err) != TFS_OK)
		return 0;
	(void)tfs_memfs_add_dir(fs, "s", 0700, &err);
	tfs_cursor c;
	tfs_cursor_init(&c, data, size);
	add_records(fs, &c);
	tfs_store *store = NULL;
	if (tfs_store_open_fs(&store, fs, "s", NULL, &err) == TFS_OK) {
		walk(store);
		tfs_store_free(store);
	}
	tfs_fs_free(fs);
	return 0;
}
