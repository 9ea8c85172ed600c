/*
 * A re-implementation of what softhsm2-dump-file 2.6.1 prints, written from
 * a reading of its behaviour (src/bin/dump/ in SoftHSMv2) and checked byte for
 * byte against the installed binary by render_softhsm_test.c. The tool reads
 * with stdio; here a bounded cursor stands in for the FILE: every failed read
 * of the tool restores the position (fsetpos), and so does a failed cursor
 * read. Comments marked "quirk" name behaviour that looks wrong but is what
 * the tool does.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>
#include <tokenfs/keys.h>
#include <tokenfs/names.h>
#include <tokenfs/object.h>

#include "core/cursor.h"
#include "tokenfs/text.h"
#include "tokenfs/softhsm_dump.h"

enum { KIND_BOOL = 1, KIND_ULONG = 2, KIND_BYTES = 3, KIND_MAP = 4, KIND_MECHS = 5 };

/* The tool refuses top-level lengths above 1 GiB - 1. */
#define MAX_BYTES 0x3fffffffu

#define VENDOR_BIT 0x80000000u

/* Top-level lines print names in 48 columns, map entries in 47 and an extra
 * space after the 8 hex bytes of each number. */
static int width(bool in_map)
{
	return in_map ? 47 : 48;
}

static void put_ulong(FILE *out, uint64_t v, bool in_map)
{
	for (int shift = 56; shift >= 0; shift -= 8)
		fprintf(out, "%02x ", (unsigned)(v >> shift) & 0xffu);
	if (in_map)
		fputc(' ', out);
}

static const char *vendor_prefix(tfs_name_space ns)
{
	switch (ns) {
	case TFS_NS_CKA: return "CKA_VENDOR_DEFINED";
	case TFS_NS_CKO: return "CKO_VENDOR_DEFINED";
	case TFS_NS_CKK: return "CKK_VENDOR_DEFINED";
	case TFS_NS_CKC: return "CKC_VENDOR_DEFINED";
	case TFS_NS_CKM: return "CKM_VENDOR_DEFINED";
	case TFS_NS_CKH: return "CKH_VENDOR_DEFINED";
	default: return "unknown";
	}
}

/* A name from the tool's tables, cut to `w` characters ("%.*s"); otherwise
 * "CKx_VENDOR_DEFINED | 0x..." (bit 31 cleared, any higher bits kept: quirk,
 * mechanisms reach this with all 64 bits) or "unknown 0x...". */
static void put_name(FILE *out, tfs_name_space ns, uint64_t v, int w)
{
	const char *name = tfs_name_softhsm(ns, v);

	if (name != NULL)
		fprintf(out, "%.*s", w, name);
	else if (v & VENDOR_BIT)
		fprintf(out, "%s | 0x%" PRIx64, vendor_prefix(ns), v & ~(uint64_t)VENDOR_BIT);
	else
		fprintf(out, "unknown 0x%" PRIx64, v);
}

/* The "type" line of an attribute or map entry. */
static void put_type(FILE *out, uint64_t type, bool in_map)
{
	put_ulong(out, type, in_map);
	if (type > UINT32_MAX) {
		fputs("overflow attribute type\n", out);
		return;
	}
	put_name(out, TFS_NS_CKA, type, width(in_map));
	fputc('\n', out);
}

static void put_kind(FILE *out, uint64_t kind, bool in_map)
{
	static const char *const text[] = {
		[KIND_BOOL] = "boolean attribute",
		[KIND_ULONG] = "unsigned long attribute",
		[KIND_BYTES] = "byte string attribute",
		[KIND_MAP] = "attribute map attribute",
		[KIND_MECHS] = "mechanism set attribute",
	};

	put_ulong(out, kind, in_map);
	fprintf(out, "%s\n", kind >= KIND_BOOL && kind <= KIND_MECHS
	                         ? text[kind] : "unknown attribute format");
}

/* Any non-zero byte reads as true; only 0xff is a proper TRUE. */
static void put_bool(FILE *out, uint8_t v, bool in_map)
{
	fprintf(out, "%02x                      %s%s\n", v, in_map ? " " : "",
	        v == 0 ? "FALSE" : v == 0xff ? "TRUE" : "(invalid) TRUE");
}

/* A ulong value after its hex bytes. Quirk: the CK_UNAVAILABLE_INFORMATION
 * test looks at the low 32 bits only and comes before everything else; the
 * switch on the attribute type uses all 64 bits. */
static void put_ulong_value(FILE *out, uint64_t type, uint64_t v, bool in_map)
{
	static const struct {
		uint32_t type;
		tfs_name_space ns;
		const char *overflow;
	} named[] = {
		{ 0x000, TFS_NS_CKO, "overflow object class" },      /* CKA_CLASS */
		{ 0x080, TFS_NS_CKC, "overflow certificate type" },  /* CKA_CERTIFICATE_TYPE */
		{ 0x100, TFS_NS_CKK, "overflow key type" },          /* CKA_KEY_TYPE */
		{ 0x166, TFS_NS_CKM, "overflow mechanism type" },    /* CKA_KEY_GEN_MECHANISM */
		{ 0x300, TFS_NS_CKH, "overflow hw feature type" },   /* CKA_HW_FEATURE_TYPE */
	};

	put_ulong(out, v, in_map);
	if ((uint32_t)v == UINT32_MAX) {
		fputs("CK_UNAVAILABLE_INFORMATION\n", out);
		return;
	}
	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
		if (type != named[i].type)
			continue;
		if (v > UINT32_MAX)
			fputs(named[i].overflow, out);
		else
			put_name(out, named[i].ns, v, width(in_map));
		fputc('\n', out);
		return;
	}
	fprintf(out, "CK_ULONG %" PRIu64 "(0x%" PRIx64 ")\n", v, v);
}

/* Rows of 8 bytes: hex, then the printable ones between < > (isgraph in the
 * C locale, which the tool never leaves), the last row padded. */
static void put_bytes(FILE *out, const uint8_t *p, size_t n, bool in_map)
{
	for (size_t row = 0; row < n; row += 8) {
		size_t len = n - row < 8 ? n - row : 8;

		for (size_t j = 0; j < 8; j++) {
			if (j < len)
				fprintf(out, "%02x ", p[row + j]);
			else
				fputs("   ", out);
		}
		fputs(in_map ? " <" : "<", out);
		for (size_t j = 0; j < 8; j++) {
			uint8_t ch = j < len ? p[row + j] : ' ';

			fputc(j >= len || (ch >= 0x21 && ch <= 0x7e) ? ch : '.', out);
		}
		fputs(">\n", out);
	}
}

static void put_bytes_attr(FILE *out, const uint8_t *p, uint64_t n, bool in_map)
{
	put_ulong(out, n, in_map);
	fprintf(out, "(length %" PRIu64 ")\n", n);
	put_bytes(out, p, (size_t)n, in_map);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Quirk: inside a map the tool keeps a mechanism set in a std::set, so its
 * members come out sorted and without duplicates, and the length it prints
 * is that of the set, not the count stored in the file. */
static void put_mech_set(FILE *out, const uint8_t *p, size_t count)
{
	uint64_t *m = calloc(count ? count : 1, sizeof *m);
	size_t n = 0;

	if (m == NULL)
		return; /* the tool would die of bad_alloc before flushing */
	for (size_t i = 0; i < count; i++)
		m[i] = tfs_be64(p + 8 * i);
	qsort(m, count, sizeof *m, cmp_u64);
	for (size_t i = 0; i < count; i++)
		if (n == 0 || m[i] != m[n - 1])
			m[n++] = m[i];
	put_ulong(out, n, true);
	fprintf(out, "(length %zu)\n", n);
	for (size_t i = 0; i < n; i++) {
		put_ulong(out, m[i], true);
		put_name(out, TFS_NS_CKM, m[i], 47);
		fputc('\n', out);
	}
	free(m);
}

/*
 * The entries of a map of `len` bytes, following the tool's length
 * accounting step by step (the remaining length is checked before each field,
 * and `count * 8` for a mechanism set wraps in 64 bits as it does there).
 * The tool parses the whole map before printing any of it, so this runs
 * twice: with out == NULL to decide, then with out to print. Returns false on
 * anything the tool rejects, including an entry that is itself a map.
 */
static bool map_walk(FILE *out, tfs_cursor *c, uint64_t len)
{
	while (len != 0) {
		uint64_t type, kind, v, n;
		uint8_t b;
		const uint8_t *p;

		if (len < 8 || !tfs_cursor_u64(c, &type))
			return false;
		len -= 8;
		if (len < 8 || !tfs_cursor_u64(c, &kind))
			return false;
		len -= 8;
		if (out != NULL) {
			put_type(out, type, true);
			put_kind(out, kind, true);
		}
		switch (kind) {
		case KIND_BOOL:
			if (len < 1 || !tfs_cursor_u8(c, &b))
				return false;
			len -= 1;
			if (out != NULL)
				put_bool(out, b, true);
			break;
		case KIND_ULONG:
			if (len < 8 || !tfs_cursor_u64(c, &v))
				return false;
			len -= 8;
			if (out != NULL)
				put_ulong_value(out, type, v, true);
			break;
		case KIND_BYTES:
			if (len < 8 || !tfs_cursor_u64(c, &n))
				return false;
			len -= 8;
			if (len < n || !tfs_cursor_bytes(c, n, &p))
				return false;
			len -= n;
			if (out != NULL)
				put_bytes_attr(out, p, n, true);
			break;
		case KIND_MECHS:
			if (len < 8 || !tfs_cursor_u64(c, &n))
				return false;
			len -= 8;
			if (len < n * 8) /* quirk: may wrap; then the reads fail */
				return false;
			p = c->data + c->pos;
			for (uint64_t i = 0; i < n; i++)
				if (!tfs_cursor_u64(c, &v))
					return false;
			len -= n * 8;
			if (out != NULL)
				put_mech_set(out, p, (size_t)n);
			break;
		default:
			return false;
		}
	}
	return true;
}

/*
 * The tool's error exit: up to 8 bytes from the current position, in hex.
 * Quirk: the line ends (with "...") only when a 9th byte exists; with 8 or
 * fewer bytes left the output stops without a newline, and at the end of the
 * file nothing at all is printed.
 */
static void corrupt(FILE *out, const tfs_cursor *c)
{
	size_t left = tfs_cursor_left(c);
	size_t n = left < 8 ? left : 8;

	for (size_t i = 0; i < n; i++)
		fprintf(out, i ? " %02x" : "%02x", c->data[c->pos + i]);
	if (left > 8)
		fputs("...\n", out);
}

/* One top-level attribute after its type; false once the tool stops. */
static bool dump_value(FILE *out, tfs_cursor *c, uint64_t type)
{
	uint64_t kind, v, n;
	uint8_t b;
	const uint8_t *p;

	if (!tfs_cursor_u64(c, &kind))
		goto corrupt;
	put_kind(out, kind, false);
	switch (kind) {
	case KIND_BOOL:
		if (!tfs_cursor_u8(c, &b))
			goto corrupt;
		put_bool(out, b, false);
		return true;
	case KIND_ULONG:
		if (!tfs_cursor_u64(c, &v))
			goto corrupt;
		put_ulong_value(out, type, v, false);
		return true;
	case KIND_BYTES:
	case KIND_MAP:
	case KIND_MECHS:
		break;
	default:
		goto corrupt;
	}

	if (!tfs_cursor_u64(c, &n))
		goto corrupt;
	put_ulong(out, n, false);
	if (n > MAX_BYTES) {
		/* Quirk: ends the dump without showing what follows. */
		fputs("overflow length...\n", out);
		return false;
	}
	fprintf(out, "(length %" PRIu64 ")\n", n);

	if (kind == KIND_BYTES) {
		if (!tfs_cursor_bytes(c, n, &p))
			goto corrupt; /* from the first data byte */
		put_bytes(out, p, (size_t)n, false);
	} else if (kind == KIND_MAP) {
		/* On failure the tool seeks back to the first entry and shows
		 * the bytes from there, wherever the map went wrong. */
		tfs_cursor probe = *c;

		if (!map_walk(NULL, &probe, n))
			goto corrupt;
		map_walk(out, c, n);
	} else {
		/* At top level: members in file order, duplicates kept, each
		 * printed as soon as it is read. */
		for (uint64_t i = 0; i < n; i++) {
			if (!tfs_cursor_u64(c, &v))
				goto corrupt;
			put_ulong(out, v, false);
			put_name(out, TFS_NS_CKM, v, 48);
			fputc('\n', out);
		}
	}
	return true;

corrupt:
	corrupt(out, c);
	return false;
}

void tfs_softhsm_dump(FILE *out, const char *path, const uint8_t *data, size_t size)
{
	tfs_cursor c;
	uint64_t v;

	/* The one departure from the tool: a file name reaches the terminal
	 * escaped (escape.h), as in every other format; names SoftHSM makes
	 * come out unchanged. */
	size_t plen = strlen(path);
	char *safe = malloc(TFS_ESCAPE_SIZE(plen));
	if (safe != NULL)
		tfs_escape(safe, TFS_ESCAPE_SIZE(plen), (const uint8_t *)path, plen, TFS_ESC_TERMINAL);
	fprintf(out, "Dump of object file \"%s\"\n", safe != NULL ? safe : "(out of memory)");
	free(safe);
	tfs_cursor_init(&c, data, size);

	/* Quirk: the tool prints "empty file" only if EOF is set after the
	 * failed read, but its fsetpos() back has just cleared it. An empty
	 * file thus prints nothing more, a short one its bytes. */
	if (!tfs_cursor_u64(&c, &v)) {
		corrupt(out, &c);
		return;
	}
	put_ulong(out, v, false);
	fprintf(out, "generation %" PRIu64 "\n", v);

	/* Quirk: the tool loops while (!feof()), but a read that succeeds never
	 * sets EOF, so the loop only ends on a failed read of the next type:
	 * after the last attribute corrupt() then shows the 1 to 7 bytes of
	 * trailing garbage, or nothing. 8 or more garbage bytes are a type. */
	for (;;) {
		if (!tfs_cursor_u64(&c, &v)) {
			corrupt(out, &c);
			return;
		}
		put_type(out, v, false);
		if (!dump_value(out, &c, v))
			return;
	}
}

/* Whether a material type appears in what the tool would walk of a file
 * that does not parse: conservative, the class is not trusted, and a
 * material type whose length cannot be read counts (the tool then shows the
 * bytes where it stopped, which may be the key's). */
static bool scan_material(tfs_cursor *c, bool in_map, uint64_t len)
{
	uint64_t type, kind, n, v;
	uint8_t b;
	const uint8_t *p;
	size_t end = in_map ? c->pos + (size_t)(len < tfs_cursor_left(c) ? len : tfs_cursor_left(c))
	                    : c->size;
	while (c->pos < end) {
		if (!tfs_cursor_u64(c, &type))
			return false;
		bool material = tfs_is_key_material(CKO_SECRET_KEY, type);
		if (!tfs_cursor_u64(c, &kind))
			return material;
		switch (kind) {
		case KIND_BOOL:
			if (!tfs_cursor_u8(c, &b))
				return false;
			break;
		case KIND_ULONG:
			if (!tfs_cursor_u64(c, &v))
				return false;
			break;
		case KIND_BYTES:
			if (!tfs_cursor_u64(c, &n))
				return material;
			if (material && n > 0)
				return true;
			if (!tfs_cursor_bytes(c, n, &p))
				return false;
			break;
		case KIND_MAP:
			if (in_map || !tfs_cursor_u64(c, &n))
				return material;
			if (scan_material(c, true, n))
				return true;
			break;
		case KIND_MECHS:
			if (!tfs_cursor_u64(c, &n) || n > tfs_cursor_left(c) / 8 ||
			    !tfs_cursor_bytes(c, n * 8, &p))
				return false;
			break;
		default:
			return material;
		}
	}
	return false;
}

bool tfs_softhsm_shows_key_material(const uint8_t *data, size_t size)
{
	tfs_object *obj;
	if (tfs_object_parse(&obj, data, size, NULL) == TFS_OK) {
		bool any = false;
		for (size_t k = 0; k < tfs_object_attr_count(obj) && !any; k++) {
			const tfs_attr *a = tfs_object_attr(obj, k);
			size_t n = 0;
			if (tfs_attr_kind(a) == TFS_KIND_BYTES)
				any = tfs_attr_bytes(a, &n) != NULL && n > 0 &&
				      tfs_object_attr_is_key_material(obj, a);
			for (size_t i = 0; tfs_attr_kind(a) == TFS_KIND_MAP && i < tfs_attr_map_count(a) && !any; i++) {
				const tfs_attr *e = tfs_attr_map_entry(a, i);
				any = tfs_attr_kind(e) == TFS_KIND_BYTES && tfs_attr_bytes(e, &n) != NULL &&
				      n > 0 && tfs_is_key_material(CKO_SECRET_KEY, tfs_attr_type(e));
			}
		}
		tfs_object_free(obj);
		return any;
	}
	tfs_cursor c;
	uint64_t generation;
	tfs_cursor_init(&c, data, size);
	return tfs_cursor_u64(&c, &generation) && scan_material(&c, false, 0);
}
