/*
 * Shared by the fuzz_der_* targets: what every decoder result must satisfy,
 * whatever the input. A violation aborts, so libFuzzer keeps the input.
 *  - success: a result with a kind and a summary; every field named, its
 *    value valid UTF-8 (names escape what is not), INTEGER fields decimal
 *    and within int64_t, BOOLEAN fields "true" or "false";
 *  - failure: no result, one of the documented statuses, a message.
 */
#ifndef FUZZ_DER_CHECK_H
#define FUZZ_DER_CHECK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfs/decode.h"

static bool fuzz_utf8(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (*s) {
		size_t k;
		unsigned v;
		if (*s < 0x80) {
			s++;
			continue;
		} else if (*s >= 0xc2 && *s <= 0xdf) {
			k = 1, v = *s & 0x1f;
		} else if (*s >= 0xe0 && *s <= 0xef) {
			k = 2, v = *s & 0x0f;
		} else if (*s >= 0xf0 && *s <= 0xf4) {
			k = 3, v = *s & 0x07;
		} else {
			return false;
		}
		for (size_t i = 1; i <= k; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			v = v << 6 | (s[i] & 0x3fu);
		}
		if ((k == 2 && v < 0x800) || (k == 3 && (v < 0x10000 || v > 0x10ffff)) ||
		    (v >= 0xd800 && v <= 0xdfff))
			return false;
		s += k + 1;
	}
	return true;
}

static void fuzz_der_check(int rc, tfs_decoded *d, const tfs_error *err)
{
	if (rc != TFS_OK) {
		if (d != NULL || err->what[0] == '\0')
			abort();
		if (rc != TFS_E_FORMAT && rc != TFS_E_TRUNCATED && rc != TFS_E_LIMIT &&
		    rc != TFS_E_NOTFOUND && rc != TFS_E_NOMEM)
			abort();
		return;
	}
	if (d == NULL || tfs_decoded_kind(d) == NULL || !fuzz_utf8(tfs_decoded_summary(d)))
		abort();
	for (size_t i = 0; i < tfs_decoded_count(d); i++) {
		const char *name = tfs_decoded_name(d, i), *value = tfs_decoded_value(d, i);
		if (name == NULL || value == NULL || !fuzz_utf8(value))
			abort();
		int64_t n;
		switch (tfs_decoded_type_of(d, i)) {
		case TFS_DECODED_STRING:
			break;
		case TFS_DECODED_INTEGER: {
			char *end;
			errno = 0;
			long long v = strtoll(value, &end, 10);
			if (errno != 0 || *end != '\0' || end == value || !tfs_decoded_int(d, i, &n) ||
			    n != v)
				abort();
			break;
		}
		case TFS_DECODED_BOOLEAN:
			if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
				abort();
			break;
		default:
			abort();
		}
	}
	if (tfs_decoded_name(d, tfs_decoded_count(d)) != NULL)
		abort();
	tfs_decoded_free(d);
}

/* One decoder over the input, checked. */
#define FUZZ_DER_TARGET(fn)                                                   \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);         \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)          \
	{                                                                     \
		tfs_decoded *d = NULL;                                        \
		tfs_error err;                                                \
		tfs_error_clear(&err);                                        \
		int rc = fn(&d, data, size, &err);                            \
		fuzz_der_check(rc, d, &err);                                  \
		return 0;                                                     \
	}

#endif
