/*
 * libFuzzer target: the token-directory reader, fed an in-memory directory
 * image through the same store code that reads real disks.
 *
 * Input: an image in fuzz_memstore.h's format; scripts/make-fuzz-seeds.py
 * writes real SoftHSM token directories in this form as seeds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_memstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	tfs_fs *fs = fuzz_memstore(data, size);
	tfs_error err;
	tfs_store *store = NULL;
	if (fs != NULL && tfs_store_open_fs(&store, fs, "s", NULL, &err) == TFS_OK) {
		walk(store);
		tfs_store_free(store);
	}
	tfs_fs_free(fs);
	return 0;
}
