/*
 * libFuzzer target: an archive read into memory and opened as a store, the
 * way `tokenfs dump|verify-integrity backup.tar.gz` does. libarchive's own
 * parsers are fuzzed upstream; this exercises what tokenfs does with what
 * they return: member paths (normalised, '..' and absolute refused),
 * duplicates, implicit parents, links and special files, damage mid-stream,
 * the caps, the search for token directories at any depth, and the store
 * reader and structure checks on the result.
 *
 * Input: the archive's bytes (tar, gzip/xz/zstd/bzip2-compressed tar, zip).
 * scripts/make-fuzz-seeds.py writes real SoftHSM tokens in these forms.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tokenfs/archive.h"
#include "tokenfs/store.h"
#include "tokenfs/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const tfs_store *store)
{
	for (size_t f = 0; f < tfs_store_finding_count(store); f++)
		(void)tfs_finding_message(tfs_store_finding(store, f));
	tfs_report *rep = NULL;
	tfs_error err;
	if (tfs_report_new(&rep, &err) != TFS_OK)
		return;
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
			tfs_object *obj = NULL;
			if (tfs_token_load_object(&obj, tok, i, &err) == TFS_OK)
				(void)tfs_object_duplicate_count(obj);
			tfs_object_free(obj);
		}
		/* No PIN: structure, permissions, exposure, as on a disk. */
		tfs_verify_summary s;
		(void)tfs_verify_token(rep, &s, store, tok, NULL, &err);
	}
	tfs_report_free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small caps so that a bomb costs the fuzzer milliseconds, and so the
	 * cap paths themselves are reached. */
	const tfs_archive_limits lim = {.max_total_bytes = 4u << 20, .max_members = 2048,
	                                .max_member_bytes = 1u << 20};
	tfs_fs *fs;
	tfs_error err;
	if (tfs_archivefs_open_memory(&fs, "a.tar", data, size, &lim, &err) != TFS_OK)
		return 0;
	tfs_store *store = NULL;
	if (tfs_store_open_tree(&store, fs, "a.tar", NULL, &err) == TFS_OK) {
		walk(store);
		tfs_store_free(store);
	}
	tfs_fs_free(fs);
	return 0;
}
