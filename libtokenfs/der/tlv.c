/*
 * The structural DER scan every decoder runs before libtasn1: one bounded
 * walk over identifier and length octets with explicit offsets. libtasn1
 * decodes structure well but reports where it failed only as an element
 * name, and it accepts some BER; this scan rejects, with the byte offset,
 * what is not DER or does not fit:
 *  - a length past the end of its enclosing element or of the input
 *    (TFS_E_TRUNCATED: a cut value and an oversized length look the same);
 *  - indefinite lengths, non-minimal lengths and tag numbers, constructed
 *    encodings of primitive universal types (all BER-only);
 *  - nesting deeper than TFS_DECODE_MAX_DEPTH and more than
 *    TFS_DER_MAX_ELEMENTS elements (work caps);
 *  - bytes after the top-level element.
 * Primitive contents (OCTET STRING, BIT STRING) are not entered.
 */
#include "der/der_internal.h"

#include <inttypes.h>
#include <stdio.h>

#include "core/error_internal.h"

static const char *const universal[31] = {
	[0] = "end-of-contents", [1] = "BOOLEAN", [2] = "INTEGER", [3] = "BIT STRING",
	[4] = "OCTET STRING", [5] = "NULL", [6] = "OBJECT IDENTIFIER",
	[7] = "ObjectDescriptor", [8] = "EXTERNAL", [9] = "REAL", [10] = "ENUMERATED",
	[11] = "EMBEDDED PDV", [12] = "UTF8String", [13] = "RELATIVE-OID",
	[16] = "SEQUENCE", [17] = "SET", [18] = "NumericString",
	[19] = "PrintableString", [20] = "TeletexString", [21] = "VideotexString",
	[22] = "IA5String", [23] = "UTCTime", [24] = "GeneralizedTime",
	[25] = "GraphicString", [26] = "VisibleString", [27] = "GeneralString",
	[28] = "UniversalString", [29] = "CHARACTER STRING", [30] = "BMPString",
};

const char *tfs_der_ident_name(uint8_t ident, char buf[32])
{
	unsigned cls = TFS_DER_CLASS(ident), tag = ident & 0x1f;
	if (tag == 0x1f) {
		snprintf(buf, 32, "high-numbered tag (0x%02x)", ident);
		return buf;
	}
	if (cls == 0 && universal[tag] != NULL)
		return universal[tag];
	static const char *const prefix[4] = {"UNIVERSAL ", "APPLICATION ", "", "PRIVATE "};
	snprintf(buf, 32, "[%s%u]", prefix[cls], tag);
	return buf;
}

/* Universal types whose DER encoding is always primitive. */
static bool primitive_only(uint32_t tag)
{
	return (tag >= 1 && tag <= 10) || tag == 12 || tag == 13 || (tag >= 18 && tag <= 30);
}

int tfs_der_header(tfs_der_tlv *t, const uint8_t *der, size_t off, size_t end,
                   uint64_t base, const char *what, tfs_error *err)
{
	char nb[32];
	size_t p = off;
	if (p >= end)
		return tfs_error_set(err, TFS_E_TRUNCATED, base + p,
		                     "%s: DER element cut short: no identifier octet", what);
	t->off = off;
	t->ident = der[p++];
	t->constructed = (t->ident & 0x20) != 0;
	t->tag = t->ident & 0x1f;
	if (t->tag == 0x1f) {
		/* High-tag-number form: base-128, no leading 0x80, at most 4 octets. */
		uint32_t tag = 0;
		for (int i = 0;; i++) {
			if (p >= end)
				return tfs_error_set(err, TFS_E_TRUNCATED, base + p,
				                     "%s: DER element cut short inside its tag number", what);
			uint8_t b = der[p++];
			if (i == 0 && b == 0x80)
				return tfs_error_set(err, TFS_E_FORMAT, base + p - 1,
				                     "%s: tag number with a leading 0x80 octet (not DER)", what);
			if (i == 4)
				return tfs_error_set(err, TFS_E_FORMAT, base + off,
				                     "%s: tag number longer than 4 octets", what);
			tag = (tag << 7) | (b & 0x7f);
			if ((b & 0x80) == 0)
				break;
		}
		if (tag < 31)
			return tfs_error_set(err, TFS_E_FORMAT, base + off,
			                     "%s: tag number %" PRIu32 " in the long form (not DER)", what, tag);
		t->tag = tag;
	}
	const char *name = tfs_der_ident_name(t->ident, nb);
	size_t len_off = p;
	if (p >= end)
		return tfs_error_set(err, TFS_E_TRUNCATED, base + p,
		                     "%s: %s at offset %" PRIu64 " cut short: no length octet",
		                     what, name, base + off);
	uint8_t l0 = der[p++];
	uint64_t len = l0;
	if (l0 == 0x80)
		return tfs_error_set(err, TFS_E_FORMAT, base + len_off,
		                     "%s: %s with an indefinite length (BER, not DER)", what, name);
	if (l0 == 0xff)
		return tfs_error_set(err, TFS_E_FORMAT, base + len_off,
		                     "%s: %s with the reserved length octet 0xff", what, name);
	if (l0 > 0x80) {
		unsigned n = l0 & 0x7f;
		if (n > 8)
			return tfs_error_set(err, TFS_E_FORMAT, base + len_off,
			                     "%s: %s with a %u-octet length field", what, name, n);
		if (n > end - p)
			return tfs_error_set(err, TFS_E_TRUNCATED, base + len_off,
			                     "%s: %s cut short inside its %u length octets", what, name, n);
		if (der[p] == 0)
			return tfs_error_set(err, TFS_E_FORMAT, base + len_off,
			                     "%s: %s length with a leading zero octet (not DER)", what, name);
		len = 0;
		for (unsigned i = 0; i < n; i++)
			len = (len << 8) | der[p++];
		if (len < 0x80)
			return tfs_error_set(err, TFS_E_FORMAT, base + len_off,
			                     "%s: %s length %" PRIu64 " in the long form (not DER)",
			                     what, name, len);
	}
	if (len > end - p)
		return tfs_error_set(err, TFS_E_TRUNCATED, base + len_off,
		                     "%s: length %" PRIu64 " of the %s at offset %" PRIu64
		                     " exceeds the %zu bytes left", what, len, name, base + off, end - p);
	t->hdr_len = p - off;
	t->len = (size_t)len;
	return TFS_OK;
}

typedef struct scan {
	const uint8_t *der;
	uint64_t base;
	const char *what;
	size_t elements;
	tfs_error *err;
} scan;

static int check_one(scan *s, const tfs_der_tlv *t);

/* The elements filling der[off..end), at nesting depth `depth`. */
static int scan_range(scan *s, size_t off, size_t end, unsigned depth)
{
	while (off < end) {
		tfs_der_tlv t;
		int rc = tfs_der_header(&t, s->der, off, end, s->base, s->what, s->err);
		if (rc != TFS_OK)
			return rc;
		if (depth > TFS_DECODE_MAX_DEPTH)
			return tfs_error_set(s->err, TFS_E_LIMIT, s->base + off,
			                     "%s: DER elements nested deeper than %u levels",
			                     s->what, TFS_DECODE_MAX_DEPTH);
		rc = check_one(s, &t);
		if (rc != TFS_OK)
			return rc;
		if (t.constructed) {
			rc = scan_range(s, off + t.hdr_len, off + t.hdr_len + t.len, depth + 1);
			if (rc != TFS_OK)
				return rc;
		}
		off += t.hdr_len + t.len;
	}
	return TFS_OK;
}

static int check_one(scan *s, const tfs_der_tlv *t)
{
	char nb[32];
	if (++s->elements > TFS_DER_MAX_ELEMENTS)
		return tfs_error_set(s->err, TFS_E_LIMIT, s->base + t->off,
		                     "%s: more than %u DER elements", s->what, TFS_DER_MAX_ELEMENTS);
	if (TFS_DER_CLASS(t->ident) != 0)
		return TFS_OK;
	if (t->tag == 0)
		return tfs_error_set(s->err, TFS_E_FORMAT, s->base + t->off,
		                     "%s: end-of-contents octets outside an indefinite length", s->what);
	if (t->constructed && primitive_only(t->tag))
		return tfs_error_set(s->err, TFS_E_FORMAT, s->base + t->off,
		                     "%s: constructed %s (BER, not DER)", s->what,
		                     tfs_der_ident_name(t->ident & 0xdf, nb));
	if (!t->constructed && (t->tag == 16 || t->tag == 17))
		return tfs_error_set(s->err, TFS_E_FORMAT, s->base + t->off,
		                     "%s: primitive %s", s->what, tfs_der_ident_name(t->ident | 0x20, nb));
	return TFS_OK;
}

int tfs_der_scan(const uint8_t *der, size_t len, uint64_t base, const char *what,
                 tfs_error *err)
{
	scan s = {.der = der, .base = base, .what = what, .err = err};
	tfs_der_tlv t;
	int rc = tfs_der_header(&t, der, 0, len, base, what, err);
	if (rc != TFS_OK)
		return rc;
	/* Trailing bytes first: they say the value is not one element at all. */
	size_t used = t.hdr_len + t.len;
	if (used < len)
		return tfs_error_set(err, TFS_E_FORMAT, base + used,
		                     "%s: %zu bytes after the end of the %s that starts at offset %" PRIu64,
		                     what, len - used, tfs_der_ident_name(t.ident, (char[32]){0}), base);
	rc = check_one(&s, &t);
	if (rc != TFS_OK || !t.constructed)
		return rc;
	return scan_range(&s, t.hdr_len, used, 2);
}
