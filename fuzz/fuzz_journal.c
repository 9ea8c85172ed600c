/*
 * libFuzzer target: the journal parser (txn/journal.h), which recovery runs
 * over whatever a crash left. For every input that parses, the entries must
 * name only files a transaction may replace, each once, and encoding them
 * must give back exactly the input; for every input that does not, the
 * parser must fail as truncated, malformed or damaged, with a one-line
 * message, and hand back nothing.
 *
 * A random mutation almost never keeps the trailing SHA-256 right, so the
 * entries of a mutated journal would reach the success path only through
 * the seeds. Each input is therefore parsed a second time with its last 32
 * bytes replaced by the check sum of the bytes before them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "txn/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failure(int rc, const tfs_journal_entry *e, size_t n, const tfs_error *err,
                          size_t size)
{
	if ((rc != TFS_E_TRUNCATED && rc != TFS_E_FORMAT && rc != TFS_E_DAMAGED) || e != NULL ||
	    n != 0 || err->code != rc || err->what[0] == '\0' || strchr(err->what, '\n') != NULL ||
	    (err->offset != TFS_NO_OFFSET && err->offset > size))
		abort();
}

static void check_success(const tfs_journal_entry *e, size_t n, const uint8_t *data, size_t size)
{
	if (e == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(e[i].name, sizeof(e[i].name));
		if (len == sizeof(e[i].name) || !tfs_journal_name_ok(e[i].name, len))
			abort();
		/* each file at most once (n is small: an entry takes 89 bytes or more) */
		for (size_t j = 0; j < i; j++)
			if (strcmp(e[i].name, e[j].name) == 0)
				abort();
	}
	uint8_t *out = NULL;
	size_t out_size = 0;
	tfs_error err;
	if (tfs_journal_encode(&out, &out_size, e, n, &err) != TFS_OK)
		abort(); /* whatever parses must encode */
	if (out_size != size || memcmp(out, data, size) != 0)
		abort(); /* the round trip must be exact */
	free(out);
}

static tfs_journal_entry sentinel; /* what the parser must overwrite with NULL */

static void one(const uint8_t *data, size_t size)
{
	tfs_journal_entry *e = &sentinel;
	size_t n = (size_t)-1;
	tfs_error err;
	int rc = tfs_journal_parse(&e, &n, data, size, &err);
	if (rc == TFS_OK)
		check_success(e, n, data, size);
	else
		check_failure(rc, e, n, &err, size);
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	if (size < TFS_SHA256_LEN)
		return 0;
	uint8_t *fixed = malloc(size);
	if (fixed == NULL)
		return 0;
	size_t body = size - TFS_SHA256_LEN;
	memcpy(fixed, data, body);
	if (tfs_sha256(fixed + body, fixed, body, NULL) != TFS_OK)
		abort();
	one(fixed, size);
	free(fixed);
	return 0;
}
