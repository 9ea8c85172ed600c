/*
 * X.501 Names as RFC 4514 strings, byte for byte as OpenSSL 3 prints them
 * with `-nameopt RFC2253,-esc_msb` (OpenSSL's crypto/x509/x509_name.c
 * do_name_ex and crypto/asn1/a_strex.c do_buf, whose rules are restated
 * here):
 *  - attributes in reverse order of the encoding, the last RDN first;
 *    "," between RDNs and "+" between the attributes of one RDN (those are
 *    reversed too);
 *  - the attribute's OpenSSL short name, or its dotted OID when OpenSSL has
 *    none, in which case the value is always "#" + hex of its DER;
 *  - string values as text: one-byte types (PrintableString, IA5String,
 *    TeletexString, ...) read as Latin-1, BMPString as UCS-2,
 *    UniversalString as UCS-4, UTF8String as is, all output as UTF-8;
 *    values of any other type as "#" + hex DER;
 *  - a backslash before , + " \ < > ; anywhere, before "#" or a space as
 *    the first character, and before a space as the last (a one-character
 *    value counts as last only, so "#" alone stays bare); control
 *    characters (0x00-0x1f, 0x7f) as \XX.
 * Where OpenSSL would print bytes that are not valid UTF-8 (a UTF8String
 * that is not UTF-8, lone surrogates, code points past U+10FFFF), those
 * bytes are escaped \XX as plain RFC2253 (esc_msb) prints them.
 */
#include "core/utf8.h"
#include "der/der_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"

/* One character to print: a code point, or a byte to escape as \XX. */
typedef struct ch {
	uint32_t cp;
	bool raw;
} ch;

typedef struct chars {
	ch *v;
	size_t n, cap;
	bool failed;
} chars;

static void push(chars *c, uint32_t cp, bool raw)
{
	if (c->failed)
		return;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		ch *n = realloc(c->v, ncap * sizeof(*n));
		if (n == NULL) {
			c->failed = true;
			return;
		}
		c->v = n;
		c->cap = ncap;
	}
	c->v[c->n++] = (ch){cp, raw};
}

/* OpenSSL's UTF8_putc, which also encodes surrogates and values up to
 * 2^31 - 1 (5- and 6-byte forms); returns the byte count. */
static size_t utf8_put(uint8_t out[6], uint32_t v)
{
	if (v < 0x80) {
		out[0] = (uint8_t)v;
		return 1;
	}
	if (v < 0x800) {
		out[0] = (uint8_t)(0xc0 | (v >> 6));
		out[1] = (uint8_t)(0x80 | (v & 0x3f));
		return 2;
	}
	if (v < 0x10000) {
		out[0] = (uint8_t)(0xe0 | (v >> 12));
		out[1] = (uint8_t)(0x80 | ((v >> 6) & 0x3f));
		out[2] = (uint8_t)(0x80 | (v & 0x3f));
		return 3;
	}
	if (v < 0x200000) {
		out[0] = (uint8_t)(0xf0 | (v >> 18));
		out[1] = (uint8_t)(0x80 | ((v >> 12) & 0x3f));
		out[2] = (uint8_t)(0x80 | ((v >> 6) & 0x3f));
		out[3] = (uint8_t)(0x80 | (v & 0x3f));
		return 4;
	}
	if (v < 0x4000000) {
		out[0] = (uint8_t)(0xf8 | (v >> 24));
		out[1] = (uint8_t)(0x80 | ((v >> 18) & 0x3f));
		out[2] = (uint8_t)(0x80 | ((v >> 12) & 0x3f));
		out[3] = (uint8_t)(0x80 | ((v >> 6) & 0x3f));
		out[4] = (uint8_t)(0x80 | (v & 0x3f));
		return 5;
	}
	out[0] = (uint8_t)(0xfc | (v >> 30));
	out[1] = (uint8_t)(0x80 | ((v >> 24) & 0x3f));
	out[2] = (uint8_t)(0x80 | ((v >> 18) & 0x3f));
	out[3] = (uint8_t)(0x80 | ((v >> 12) & 0x3f));
	out[4] = (uint8_t)(0x80 | ((v >> 6) & 0x3f));
	out[5] = (uint8_t)(0x80 | (v & 0x3f));
	return 6;
}

/* A code point from UCS-2/UCS-4: valid ones as characters, the others as
 * the escaped bytes of OpenSSL's encoding of them. */
static void push_ucs(chars *c, uint32_t cp)
{
	if (cp < 0x110000 && (cp < 0xd800 || cp > 0xdfff)) {
		push(c, cp, false);
		return;
	}
	uint8_t b[6];
	size_t n = utf8_put(b, cp);
	for (size_t i = 0; i < n; i++)
		push(c, b[i], true);
}

/* The characters of a string value given its libtasn1 CHOICE alternative;
 * false when OpenSSL would not print it as text either. */
static bool decode_chars(chars *c, const char *alt, const uint8_t *s, size_t n)
{
	if (strcmp(alt, "utf8String") == 0) {
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			size_t k = tfs_utf8_decode(s + i, n - i, &cp);
			if (k == 0) {
				push(c, s[i], true);
				i++;
			} else {
				push(c, cp, false);
				i += k;
			}
		}
	} else if (strcmp(alt, "bmpString") == 0) {
		if (n % 2 != 0)
			return false;
		for (size_t i = 0; i < n; i += 2) {
			uint32_t u = (uint32_t)s[i] << 8 | s[i + 1];
			/* A surrogate pair is one character. */
			if (u >= 0xd800 && u <= 0xdbff && i + 3 < n) {
				uint32_t lo = (uint32_t)s[i + 2] << 8 | s[i + 3];
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					push(c, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00), false);
					i += 2;
					continue;
				}
			}
			push_ucs(c, u);
		}
	} else if (strcmp(alt, "universalString") == 0) {
		if (n % 4 != 0)
			return false;
		for (size_t i = 0; i < n; i += 4) {
			uint32_t u = (uint32_t)s[i] << 24 | (uint32_t)s[i + 1] << 16 |
			             (uint32_t)s[i + 2] << 8 | s[i + 3];
			if (u > 0x7fffffff)
				return false;
			push_ucs(c, u);
		}
	} else {
		for (size_t i = 0; i < n; i++)
			push(c, s[i], false);
	}
	return true;
}

static void put_escaped(tfs_strbuf *sb, const chars *c)
{
	for (size_t i = 0; i < c->n; i++) {
		uint32_t cp = c->v[i].cp;
		if (c->v[i].raw) {
			tfs_sb_printf(sb, "\\%02X", cp);
			continue;
		}
		if (cp >= 0x80) {
			uint8_t b[6];
			size_t k = utf8_put(b, cp);
			for (size_t j = 0; j < k; j++)
				tfs_sb_putc(sb, (char)b[j]);
			continue;
		}
		bool last = i + 1 == c->n, first = i == 0 && !last;
		if (strchr(",+\"\\<>;", (int)cp) != NULL && cp != 0)
			tfs_sb_putc(sb, '\\');
		else if ((first && (cp == ' ' || cp == '#')) || (last && cp == ' '))
			tfs_sb_putc(sb, '\\');
		else if (cp < 0x20 || cp == 0x7f) {
			tfs_sb_printf(sb, "\\%02X", cp);
			continue;
		}
		tfs_sb_putc(sb, (char)cp);
	}
}

/*
 * The AttributeString alternative of a plain string value: one primitive
 * universal string type with a short-form length that spans the value
 * exactly, which libtasn1 would decode to the same alternative and the same
 * content bytes. NULL for anything else (long lengths, times, other types),
 * which takes the libtasn1 path: decoding a tree per value was a third of
 * the cost of a certificate's names.
 */
static const char *plain_string_alt(const uint8_t *v, size_t n)
{
	if (n < 3 || v[1] >= 0x80 || (size_t)v[1] + 2 != n)
		return NULL;
	switch (v[0]) {
	case 0x0c: return "utf8String";
	case 0x12: return "numericString";
	case 0x13: return "printableString";
	case 0x14: return "teletexString";
	case 0x16: return "ia5String";
	case 0x1a: return "visibleString";
	case 0x1c: return "universalString";
	case 0x1e: return "bmpString";
	default: return NULL;
	}
}

/* Appends one attribute value. */
static int put_value(tfs_strbuf *sb, bool known, const uint8_t *v, size_t n, uint64_t base,
                     const char *what)
{
	asn1_node node = NULL;
	uint8_t *alt = NULL, *s = NULL;
	size_t alt_len = 0, s_len = 0;
	chars c = {0};
	tfs_error scratch;
	bool text = false;
	int rc = TFS_OK;
	const char *plain = known ? plain_string_alt(v, n) : NULL;

	if (plain != NULL) {
		text = decode_chars(&c, plain, v + 2, n - 2);
	} else if (known && tfs_der_decode(&node, "AttributeString", 0, v, n, base, what, &scratch) == TFS_OK &&
	    tfs_der_read(node, "", &alt, &alt_len) == ASN1_SUCCESS &&
	    tfs_der_read(node, (const char *)alt, &s, &s_len) == ASN1_SUCCESS) {
		/* libtasn1 counts the NUL it appends to a time. */
		if ((strcmp((const char *)alt, "utcTime") == 0 ||
		     strcmp((const char *)alt, "generalTime") == 0) && s_len > 0 && s[s_len - 1] == 0)
			s_len--;
		text = decode_chars(&c, (const char *)alt, s, s_len);
	}
	if (c.failed) {
		rc = TFS_E_NOMEM;
	} else if (text) {
		put_escaped(sb, &c);
	} else {
		tfs_sb_putc(sb, '#');
		tfs_sb_hex(sb, v, n, true, NULL);
	}
	free(c.v);
	tfs_der_buf_free(s, s_len);
	tfs_der_buf_free(alt, alt_len);
	tfs_der_free(&node);
	return rc;
}

/* libtasn1 drops an empty SET OF without a trace, so RFC 5280's
 * SIZE (1..MAX) for an RDN is checked on the bytes. */
static int check_rdns(const uint8_t *der, size_t start, size_t size, uint64_t base,
                      const char *what, tfs_error *err)
{
	tfs_der_tlv name, rdn;
	int rc = tfs_der_header(&name, der, start, start + size, base, what, err);
	size_t off = start + name.hdr_len, end = off + name.len;
	for (size_t i = 1; rc == TFS_OK && off < end; i++) {
		rc = tfs_der_header(&rdn, der, off, end, base, what, err);
		if (rc == TFS_OK && rdn.len == 0)
			rc = tfs_error_set(err, TFS_E_FORMAT, base + off,
			                   "%s: RDN %zu of the Name is an empty SET", what, i);
		off += rdn.hdr_len + rdn.len;
	}
	return rc;
}

typedef struct ava {
	char *oid;
	size_t oid_len;
	uint8_t *value;
	size_t value_len;
	uint64_t value_off;
	size_t rdn;
} ava;

int tfs_der_name_string(char **out, size_t *rdn_count, asn1_node node, const char *path,
                        const uint8_t *der, size_t len, uint64_t base, const char *what,
                        tfs_error *err)
{
	*out = NULL;
	ava *avas = NULL;
	size_t navas = 0, cap = 0;
	tfs_strbuf sb = {0};
	char p[256];
	int rc = TFS_OK;

	size_t start = 0, size = len;
	if (*path != '\0' && !tfs_der_extent(node, der, len, path, &start, &size)) {
		rc = tfs_error_set(err, TFS_E_FORMAT, base, "%s: the Name cannot be located", what);
		goto fail;
	}
	rc = check_rdns(der, start, size, base, what, err);
	if (rc != TFS_OK)
		goto fail;

	snprintf(p, sizeof(p), "%s%srdnSequence", path, *path ? "." : "");
	size_t nrdn = tfs_der_count(node, p);
	if (nrdn > TFS_DER_MAX_RDNS) {
		rc = tfs_error_set(err, TFS_E_LIMIT, tfs_der_offset(node, der, len, path, base),
		                   "%s: Name with %zu RDNs, more than %u", what, nrdn, TFS_DER_MAX_RDNS);
		goto fail;
	}
	for (size_t i = 1; i <= nrdn; i++) {
		snprintf(p, sizeof(p), "%s%srdnSequence.?%zu", path, *path ? "." : "", i);
		size_t k = tfs_der_count(node, p);
		if (k == 0 || k > TFS_DER_MAX_AVAS) {
			rc = tfs_error_set(err, k == 0 ? TFS_E_FORMAT : TFS_E_LIMIT,
			                   tfs_der_offset(node, der, len, p, base),
			                   k == 0 ? "%s: RDN %zu of the Name is an empty SET"
			                          : "%s: RDN %zu of the Name has more than 64 attributes",
			                   what, i);
			goto fail;
		}
		for (size_t j = 1; j <= k; j++) {
			if (navas == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				ava *n = realloc(avas, ncap * sizeof(*n));
				if (n == NULL)
					goto nomem;
				avas = n;
				cap = ncap;
			}
			ava *a = &avas[navas];
			memset(a, 0, sizeof(*a));
			a->rdn = i;
			navas++;
			snprintf(p, sizeof(p), "%s%srdnSequence.?%zu.?%zu.type", path, *path ? "." : "", i, j);
			int arc = tfs_der_read(node, p, (uint8_t **)&a->oid, &a->oid_len);
			if (arc == ASN1_SUCCESS) {
				snprintf(p, sizeof(p), "%s%srdnSequence.?%zu.?%zu.value", path, *path ? "." : "", i, j);
				arc = tfs_der_read(node, p, &a->value, &a->value_len);
			}
			if (arc == ASN1_MEM_ALLOC_ERROR)
				goto nomem;
			if (arc != ASN1_SUCCESS || a->value_len == 0) {
				rc = tfs_error_set(err, TFS_E_FORMAT, tfs_der_offset(node, der, len, p, base),
				                   "%s: attribute %zu of RDN %zu cannot be read", what, j, i);
				goto fail;
			}
			a->value_off = tfs_der_offset(node, der, len, p, base);
			if (a->value_off == TFS_NO_OFFSET)
				a->value_off = base;
		}
	}

	/* Reverse order, as RFC 4514 section 2.1 and OpenSSL's dn_rev. */
	tfs_sb_puts(&sb, "");
	for (size_t i = navas; i-- > 0;) {
		const ava *a = &avas[i];
		if (i + 1 < navas)
			tfs_sb_putc(&sb, avas[i + 1].rdn == a->rdn ? '+' : ',');
		const char *sn = tfs_der_oid_short_name(a->oid);
		tfs_sb_puts(&sb, sn != NULL ? sn : a->oid);
		tfs_sb_putc(&sb, '=');
		rc = put_value(&sb, sn != NULL, a->value, a->value_len, a->value_off, what);
		if (rc != TFS_OK)
			goto nomem;
	}
	*out = tfs_sb_take(&sb);
	if (*out == NULL)
		goto nomem;
	if (rdn_count != NULL)
		*rdn_count = nrdn;
	goto done;
nomem:
	rc = tfs_nomem(err);
fail:
	tfs_sb_free(&sb);
done:
	for (size_t i = 0; i < navas; i++) {
		tfs_der_buf_free(avas[i].oid, avas[i].oid_len);
		tfs_der_buf_free(avas[i].value, avas[i].value_len);
	}
	free(avas);
	return rc;
}
