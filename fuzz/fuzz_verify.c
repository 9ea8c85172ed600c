/*
 * libFuzzer target: every check of verify-integrity over an in-memory store
 * (fuzz_memstore.h's image), with a fixed user PIN: "user-pin-1", the PIN of
 * testdata/store's demo token, so the seeds made from it reach the checks
 * that decrypt (values, keys, pairs, certificates). Each token is verified
 * as `verify-integrity --user-pin` would; a wrong PIN is retried without.
 *
 * Invariants: no crash or leak; every finding has a code, a severity and a
 * one-line message; an error return says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_memstore.h"
#include "tokenfs/finding.h"
#include "tokenfs/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t PIN[] = "user-pin-1";

static void check_report(const tfs_report *rep)
{
	for (size_t i = 0; i < tfs_report_finding_count(rep); i++) {
		const tfs_finding *f = tfs_report_finding(rep, i);
		const char *msg = tfs_finding_message(f);
		if (tfs_finding_code(f) == NULL || tfs_finding_code(f)[0] == '\0' || msg == NULL ||
		    strchr(msg, '\n') != NULL || tfs_severity_name(tfs_finding_severity(f)) == NULL)
			abort();
	}
}

static void verify(const tfs_store *store, const tfs_token *tok, const tfs_verify_options *o)
{
	tfs_report *rep;
	tfs_verify_summary sum;
	tfs_error err;
	if (tfs_report_new(&rep, &err) != TFS_OK)
		return;
	int rc = tfs_verify_token(rep, &sum, store, tok, o, &err);
	if (rc != TFS_OK && err.what[0] == '\0')
		abort();
	check_report(rep);
	tfs_report_free(rep);
	if (rc == TFS_E_WRONG_PIN && o->user_pin != NULL) {
		tfs_verify_options none = {0};
		verify(store, tok, &none);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tfs_fs *fs = fuzz_memstore(data, size);
	tfs_store *store = NULL;
	tfs_error err;
	if (fs != NULL && tfs_store_open_fs(&store, fs, "s", NULL, &err) == TFS_OK) {
		tfs_verify_options o = {.user_pin = PIN, .user_pin_len = sizeof(PIN) - 1};
		for (size_t t = 0; t < tfs_store_token_count(store); t++)
			verify(store, tfs_store_token(store, t), &o);
		tfs_store_free(store);
	}
	tfs_fs_free(fs);
	return 0;
}
