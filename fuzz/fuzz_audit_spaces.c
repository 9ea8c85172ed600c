/*
 * libFuzzer target: pin-audit's candidate spaces from user input. Byte 0
 * selects what the rest is: even, a mask (up to the first NUL) with
 * --min-len/--max-len from bytes 1 and 2; odd, a wordlist with min/max from
 * bytes 1 and 2. Parsing must never crash or read outside its input; a
 * space that parses must produce, at its first, last and a middle index, a
 * candidate of its stated length (digits and masks) within
 * TFS_AUDIT_PIN_MAX, whose bytes come from the input (wordlist) or the
 * mask's charsets; the index past the end gives none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfs/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void probe(const tfs_audit_spaces *s, uint64_t index, const uint8_t *data, size_t size)
{
	uint8_t buf[TFS_AUDIT_PIN_MAX];
	size_t len = 0, sp = 0;
	if (!tfs_audit_spaces_candidate(s, index, buf, &len, &sp))
		abort();
	if (len > TFS_AUDIT_PIN_MAX || sp >= tfs_audit_space_count(s))
		abort();
	tfs_audit_kind k = tfs_audit_space_kind(s, sp);
	if ((k == TFS_AUDIT_MASK || k == TFS_AUDIT_DIGITS) && len != tfs_audit_space_length(s, sp))
		abort();
	if (k == TFS_AUDIT_WORDLIST && len > 0 && memmem(data, size, buf, len) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	tfs_audit_spaces *s;
	tfs_error err;
	if (tfs_audit_spaces_new(&s, &err) != TFS_OK)
		abort();
	size_t lo = data[1], hi = data[2];
	const uint8_t *body = data + 3;
	size_t n = size - 3;
	int rc;
	if (data[0] % 2 == 0) {
		char mask[600];
		size_t m = n < sizeof(mask) - 1 ? n : sizeof(mask) - 1;
		memcpy(mask, body, m);
		mask[m] = '\0';
		double size_f;
		int rs = tfs_audit_mask_size(&size_f, mask, &err);
		rc = tfs_audit_spaces_add_mask(s, mask, lo % 8, hi % 8 ? hi % 8 : 0, &err);
		if (rs != TFS_OK && rc == TFS_OK)
			abort();
	} else {
		rc = tfs_audit_spaces_add_wordlist(s, body, n, lo % 16, hi, &err);
	}
	if (rc != TFS_OK) {
		if (err.what[0] == '\0' || strchr(err.what, '\n') != NULL)
			abort();
		tfs_audit_spaces_free(s);
		return 0;
	}
	uint64_t total = tfs_audit_spaces_total(s);
	if (total == 0)
		abort();
	probe(s, 0, body, n);
	probe(s, total / 2, body, n);
	probe(s, total - 1, body, n);
	uint8_t buf[TFS_AUDIT_PIN_MAX];
	size_t len, sp;
	if (total < UINT64_MAX && tfs_audit_spaces_candidate(s, total, buf, &len, &sp))
		abort();
	tfs_audit_spaces_free(s);
	return 0;
}
