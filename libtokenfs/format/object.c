/*
 * Object file parser and serializer. Grammar (docs/format.md):
 *
 *   file      = generation:u64 attribute*
 *   attribute = type:u64 kind:u64 value
 *   value     = bool: 1 byte | ulong: u64 | bytes: len:u64 data[len]
 *             | map: len:u64 entry* (filling len exactly, no nesting)
 *             | mechs: count:u64 u64[count]
 *
 * Every read goes through the bounded cursor; every length is compared with
 * the bytes that remain before it is used. Error offsets point at the first
 * byte of the field that is wrong or cut short.
 */
#include "format/object_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/cursor.h"
#include "core/error_internal.h"
#include "tokenfs/names.h"

/* "CKA_LABEL" or "0x80001234", for messages. */
static const char *attr_label(uint64_t type, char buf[24])
{
	const char *n = tfs_name(TFS_NS_CKA, type);
	if (n != NULL)
		return n;
	snprintf(buf, 24, "0x%" PRIx64, type);
	return buf;
}

/*
 * Where a value is read: at top level the bound is the file; inside an
 * attribute map it is the map's declared length, so running out of bytes
 * there means that length is wrong, and the error points at it.
 */
typedef struct scope {
	const tfs_attr *map; /* NULL at top level */
	uint64_t map_len;
} scope;

static int out_of_bytes(tfs_error *err, const tfs_cursor *c, const scope *sc,
                        const char *field, uint64_t type, uint64_t need)
{
	char nb[24], mb[24];
	if (sc->map == NULL)
		return tfs_error_set(err, TFS_E_TRUNCATED, tfs_cursor_offset(c),
		                     "file ends inside the %s of %s: %zu of %" PRIu64 " bytes present",
		                     field, attr_label(type, nb), tfs_cursor_left(c), need);
	/* An entry whose type could not be read has no name yet. */
	char entry[48] = "a further entry";
	if (strcmp(field, "type") != 0)
		snprintf(entry, sizeof(entry), "entry %s", attr_label(type, nb));
	return tfs_error_set(err, TFS_E_FORMAT, sc->map->value_offset - 8,
	                     "attribute map length %" PRIu64 " of %s does not match its entries: "
	                     "the %s of %s at offset %" PRIu64 " needs %" PRIu64 " bytes, %zu are left",
	                     sc->map_len, attr_label(sc->map->type, mb), field, entry,
	                     tfs_cursor_offset(c), need, tfs_cursor_left(c));
}

/*
 * Parses the value of one attribute (or map entry) whose type and kind have
 * been read. `kind_off` is where the kind field started, for the
 * unknown-kind message.
 */
static int parse_value(tfs_attr *a, tfs_cursor *c, uint64_t kind, uint64_t kind_off,
                       const scope *sc, tfs_error *err);

static int parse_map(tfs_attr *a, tfs_cursor *c, uint64_t len, tfs_error *err)
{
	tfs_cursor sub;
	if (!tfs_cursor_sub(c, len, &sub)) {
		char nb[24];
		return tfs_error_set(err, TFS_E_TRUNCATED, tfs_cursor_offset(c) - 8,
		                     "attribute map length %" PRIu64 " of %s exceeds the %zu bytes left in the file",
		                     len, attr_label(a->type, nb), tfs_cursor_left(c));
	}
	const scope sc = {.map = a, .map_len = len};
	size_t cap = 0;
	while (tfs_cursor_left(&sub) > 0) {
		if (a->v.map.count == TFS_MAX_MAP_ENTRIES)
			return tfs_error_set(err, TFS_E_LIMIT, tfs_cursor_offset(&sub),
			                     "attribute map has more than %u entries", TFS_MAX_MAP_ENTRIES);
		if (a->v.map.count == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			tfs_attr *n = realloc(a->v.map.entries, ncap * sizeof(*n));
			if (n == NULL)
				return tfs_nomem(err);
			a->v.map.entries = n;
			cap = ncap;
		}
		tfs_attr *e = &a->v.map.entries[a->v.map.count];
		memset(e, 0, sizeof(*e));
		e->offset = tfs_cursor_offset(&sub);
		uint64_t kind;
		if (!tfs_cursor_u64(&sub, &e->type))
			return out_of_bytes(err, &sub, &sc, "type", e->type, 8);
		uint64_t kind_off = tfs_cursor_offset(&sub);
		if (!tfs_cursor_u64(&sub, &kind))
			return out_of_bytes(err, &sub, &sc, "kind", e->type, 8);
		/* Count the entry before parsing its value so a failure frees it. */
		a->v.map.count++;
		int rc = parse_value(e, &sub, kind, kind_off, &sc, err);
		if (rc != TFS_OK)
			return rc;
	}
	return TFS_OK;
}

static int parse_value(tfs_attr *a, tfs_cursor *c, uint64_t kind, uint64_t kind_off,
                       const scope *sc, tfs_error *err)
{
	char nb[24];
	uint64_t len;

	switch (kind) {
	case TFS_KIND_BOOL:
		a->kind = TFS_KIND_BOOL;
		a->value_offset = tfs_cursor_offset(c);
		if (!tfs_cursor_u8(c, &a->v.b))
			return out_of_bytes(err, c, sc, "bool value", a->type, 1);
		return TFS_OK;
	case TFS_KIND_ULONG:
		a->kind = TFS_KIND_ULONG;
		a->value_offset = tfs_cursor_offset(c);
		if (!tfs_cursor_u64(c, &a->v.ul))
			return out_of_bytes(err, c, sc, "ulong value", a->type, 8);
		return TFS_OK;
	case TFS_KIND_BYTES:
		a->kind = TFS_KIND_BYTES;
		if (!tfs_cursor_u64(c, &len))
			return out_of_bytes(err, c, sc, "byte-string length", a->type, 8);
		a->value_offset = tfs_cursor_offset(c);
		if (len > tfs_cursor_left(c))
			return sc->map != NULL
			       ? out_of_bytes(err, c, sc, "byte string", a->type, len)
			       : tfs_error_set(err, TFS_E_TRUNCATED, a->value_offset - 8,
			                       "byte-string length %" PRIu64 " of %s exceeds the %zu bytes left in the file",
			                       len, attr_label(a->type, nb), tfs_cursor_left(c));
		(void)tfs_cursor_bytes(c, len, &a->v.bytes.p);
		a->v.bytes.len = (size_t)len;
		return TFS_OK;
	case TFS_KIND_MAP:
		if (sc->map != NULL)
			return tfs_error_set(err, TFS_E_FORMAT, kind_off,
			                     "attribute map nested inside an attribute map (entry %s); "
			                     "SoftHSM does not nest maps", attr_label(a->type, nb));
		a->kind = TFS_KIND_MAP;
		if (!tfs_cursor_u64(c, &len))
			return out_of_bytes(err, c, sc, "attribute-map length", a->type, 8);
		a->value_offset = tfs_cursor_offset(c);
		return parse_map(a, c, len, err);
	case TFS_KIND_MECHS:
		a->kind = TFS_KIND_MECHS;
		if (!tfs_cursor_u64(c, &len))
			return out_of_bytes(err, c, sc, "mechanism count", a->type, 8);
		a->value_offset = tfs_cursor_offset(c);
		/* count * 8 may overflow: compare the count with what is left / 8. */
		if (len > tfs_cursor_left(c) / 8)
			return sc->map != NULL
			       ? out_of_bytes(err, c, sc, "mechanism list", a->type,
			                      len > UINT64_MAX / 8 ? UINT64_MAX : len * 8)
			       : tfs_error_set(err, TFS_E_TRUNCATED, a->value_offset - 8,
			                       "mechanism count %" PRIu64 " of %s needs more than the %zu bytes left in the file",
			                       len, attr_label(a->type, nb), tfs_cursor_left(c));
		(void)tfs_cursor_bytes(c, len * 8, &a->v.mechs.p);
		a->v.mechs.count = (size_t)len;
		return TFS_OK;
	default:
		return tfs_error_set(err, TFS_E_FORMAT, kind_off,
		                     "unknown attribute kind %" PRIu64 " for %s; SoftHSM rejects the whole object",
		                     kind, attr_label(a->type, nb));
	}
}

static void free_attrs(tfs_attr *attrs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (attrs[i].kind == TFS_KIND_MAP)
			free(attrs[i].v.map.entries);
	free(attrs);
}

void tfs_object_free(tfs_object *obj)
{
	if (obj == NULL)
		return;
	for (size_t i = 0; i < obj->nowned; i++) {
		OPENSSL_cleanse(obj->owned[i].p, obj->owned[i].len);
		free(obj->owned[i].p);
	}
	free(obj->owned);
	free_attrs(obj->attrs, obj->count);
	/* The file's bytes: a value stored in the clear may be key material
	 * (a secret key with CKA_PRIVATE false). */
	OPENSSL_cleanse(obj->data, obj->size);
	free(obj->data);
	free(obj);
}

static void mark_shadowed(tfs_object *obj)
{
	for (size_t i = 0; i < obj->count; i++) {
		for (size_t j = i + 1; j < obj->count; j++) {
			if (obj->attrs[j].type == obj->attrs[i].type) {
				obj->attrs[i].shadowed = true;
				obj->duplicates++;
				break;
			}
		}
	}
}

static int parse_attrs(tfs_object *obj, tfs_cursor *c, tfs_error *err)
{
	const scope top = {.map = NULL};
	size_t cap = 0;
	while (tfs_cursor_left(c) > 0) {
		if (obj->count == TFS_MAX_ATTRS)
			return tfs_error_set(err, TFS_E_LIMIT, tfs_cursor_offset(c),
			                     "object has more than %u attributes", TFS_MAX_ATTRS);
		if (obj->count == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			tfs_attr *n = realloc(obj->attrs, ncap * sizeof(*n));
			if (n == NULL)
				return tfs_nomem(err);
			obj->attrs = n;
			cap = ncap;
		}
		tfs_attr *a = &obj->attrs[obj->count];
		memset(a, 0, sizeof(*a));
		a->offset = tfs_cursor_offset(c);
		if (!tfs_cursor_u64(c, &a->type))
			return tfs_error_set(err, TFS_E_TRUNCATED, a->offset,
			                     "%zu bytes after the last attribute are too few for an "
			                     "attribute type (8 bytes): the file is cut short or has trailing garbage",
			                     tfs_cursor_left(c));
		uint64_t kind, kind_off = tfs_cursor_offset(c);
		if (!tfs_cursor_u64(c, &kind))
			return out_of_bytes(err, c, &top, "kind", a->type, 8);
		obj->count++;
		int rc = parse_value(a, c, kind, kind_off, &top, err);
		if (rc != TFS_OK)
			return rc;
	}
	return TFS_OK;
}

int tfs_object_parse_owned(tfs_object **out, uint8_t *data, size_t size, tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	if (size == 0) {
		free(data);
		return tfs_error_set(err, TFS_E_EMPTY, 0,
		                     "empty object file (SoftHSM skips it; a crash during a write leaves one)");
	}
	if (size > TFS_MAX_OBJECT_SIZE) {
		OPENSSL_cleanse(data, size);
		free(data);
		return tfs_error_set(err, TFS_E_LIMIT, 0, "object file of %zu bytes exceeds the %u-byte cap",
		                     size, TFS_MAX_OBJECT_SIZE);
	}
	tfs_object *obj = calloc(1, sizeof(*obj));
	if (obj == NULL) {
		OPENSSL_cleanse(data, size);
		free(data);
		return tfs_nomem(err);
	}
	obj->data = data;
	obj->size = size;

	tfs_cursor c;
	tfs_cursor_init(&c, data, size);
	int rc;
	if (!tfs_cursor_u64(&c, &obj->generation)) {
		rc = tfs_error_set(err, TFS_E_TRUNCATED, 0,
		                   "file ends inside the generation counter: %zu of 8 bytes present", size);
		goto fail;
	}
	rc = parse_attrs(obj, &c, err);
	if (rc != TFS_OK)
		goto fail;
	mark_shadowed(obj);
	*out = obj;
	return TFS_OK;
fail:
	tfs_object_free(obj);
	return rc;
}

int tfs_object_parse(tfs_object **out, const uint8_t *data, size_t size, tfs_error *err)
{
	/* Keep at least one byte allocated so malloc(0) never yields NULL. */
	uint8_t *copy = malloc(size ? size : 1);
	if (copy == NULL) {
		*out = NULL;
		return tfs_nomem(err);
	}
	if (size)
		memcpy(copy, data, size);
	return tfs_object_parse_owned(out, copy, size, err);
}

/* ---- serializer ---- */

static size_t value_size(const tfs_attr *a)
{
	switch (a->kind) {
	case TFS_KIND_BOOL: return 1;
	case TFS_KIND_ULONG: return 8;
	case TFS_KIND_BYTES: return 8 + a->v.bytes.len;
	case TFS_KIND_MECHS: return 8 + 8 * a->v.mechs.count;
	case TFS_KIND_MAP: {
		size_t n = 8;
		for (size_t i = 0; i < a->v.map.count; i++)
			n += 16 + value_size(&a->v.map.entries[i]);
		return n;
	}
	}
	return 0;
}

static uint8_t *write_attr(uint8_t *p, const tfs_attr *a)
{
	tfs_put_be64(p, a->type);
	tfs_put_be64(p + 8, (uint64_t)a->kind);
	p += 16;
	switch (a->kind) {
	case TFS_KIND_BOOL:
		*p++ = a->v.b;
		break;
	case TFS_KIND_ULONG:
		tfs_put_be64(p, a->v.ul);
		p += 8;
		break;
	case TFS_KIND_BYTES:
		tfs_put_be64(p, a->v.bytes.len);
		if (a->v.bytes.len)
			memcpy(p + 8, a->v.bytes.p, a->v.bytes.len);
		p += 8 + a->v.bytes.len;
		break;
	case TFS_KIND_MECHS:
		tfs_put_be64(p, a->v.mechs.count);
		p += 8;
		for (size_t i = 0; i < a->v.mechs.count; i++, p += 8)
			tfs_put_be64(p, tfs_be64(a->v.mechs.p + 8 * i));
		break;
	case TFS_KIND_MAP:
		tfs_put_be64(p, value_size(a) - 8);
		p += 8;
		for (size_t i = 0; i < a->v.map.count; i++)
			p = write_attr(p, &a->v.map.entries[i]);
		break;
	}
	return p;
}

int tfs_object_serialize(const tfs_object *obj, uint8_t **out, size_t *size, tfs_error *err)
{
	*out = NULL;
	*size = 0;
	/* Parsed sizes are bounded by the caps, but tfs_object_set_bytes can
	 * grow values: add with overflow checks. */
	size_t total = 8;
	for (size_t i = 0; i < obj->count; i++)
		if (!tfs_size_add(total, 16, &total) ||
		    !tfs_size_add(total, value_size(&obj->attrs[i]), &total) ||
		    total > TFS_MAX_OBJECT_SIZE)
			return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
			                     "object would exceed the %u-byte cap", TFS_MAX_OBJECT_SIZE);
	uint8_t *buf = malloc(total);
	if (buf == NULL)
		return tfs_nomem(err);
	tfs_put_be64(buf, obj->generation);
	uint8_t *p = buf + 8;
	for (size_t i = 0; i < obj->count; i++)
		p = write_attr(p, &obj->attrs[i]);
	*out = buf;
	*size = total;
	return TFS_OK;
}

/* ---- mutation ---- */

int tfs_object_set_bytes(tfs_object *obj, size_t i, const uint8_t *data, size_t len,
                         tfs_error *err)
{
	if (i >= obj->count || obj->attrs[i].kind != TFS_KIND_BYTES)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "attribute %zu is not a top-level byte string", i);
	if (len > TFS_MAX_OBJECT_SIZE)
		return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
		                     "a value of %zu bytes exceeds the %u-byte object cap", len,
		                     TFS_MAX_OBJECT_SIZE);
	struct owned_value *p = realloc(obj->owned, (obj->nowned + 1) * sizeof(*p));
	if (p == NULL)
		return tfs_nomem(err);
	obj->owned = p;
	uint8_t *copy = malloc(len ? len : 1);
	if (copy == NULL)
		return tfs_nomem(err);
	if (len)
		memcpy(copy, data, len);
	obj->owned[obj->nowned++] = (struct owned_value){copy, len};
	obj->attrs[i].v.bytes.p = copy;
	obj->attrs[i].v.bytes.len = len;
	return TFS_OK;
}

int tfs_object_set_ulong(tfs_object *obj, size_t i, uint64_t value, tfs_error *err)
{
	if (i >= obj->count || obj->attrs[i].kind != TFS_KIND_ULONG)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "attribute %zu is not a top-level ulong", i);
	obj->attrs[i].v.ul = value;
	return TFS_OK;
}

int tfs_object_insert_bytes(tfs_object *obj, uint64_t type, const uint8_t *data, size_t len,
                            tfs_error *err)
{
	if (obj->count >= TFS_MAX_ATTRS)
		return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET, "object already has %u attributes",
		                     TFS_MAX_ATTRS);
	tfs_attr *p = realloc(obj->attrs, (obj->count + 1) * sizeof(*p));
	if (p == NULL)
		return tfs_nomem(err);
	obj->attrs = p;
	/* SoftHSM writes attributes in ascending type order. */
	size_t at = obj->count;
	while (at > 0 && obj->attrs[at - 1].type > type)
		at--;
	memmove(&obj->attrs[at + 1], &obj->attrs[at], (obj->count - at) * sizeof(*p));
	memset(&obj->attrs[at], 0, sizeof(*p));
	obj->attrs[at].type = type;
	obj->attrs[at].kind = TFS_KIND_BYTES;
	obj->count++;
	int rc = tfs_object_set_bytes(obj, at, data, len, err);
	if (rc != TFS_OK) {
		memmove(&obj->attrs[at], &obj->attrs[at + 1], (obj->count - at - 1) * sizeof(*p));
		obj->count--;
	}
	return rc;
}

int tfs_object_put_bytes(tfs_object *obj, uint64_t type, const uint8_t *data, size_t len,
                         tfs_error *err)
{
	bool found = false;
	for (size_t i = 0; i < obj->count; i++) {
		if (obj->attrs[i].type != type)
			continue;
		found = true;
		int rc = tfs_object_set_bytes(obj, i, data, len, err);
		if (rc != TFS_OK)
			return rc;
	}
	return found ? TFS_OK : tfs_object_insert_bytes(obj, type, data, len, err);
}

void tfs_object_set_generation(tfs_object *obj, uint64_t generation)
{
	obj->generation = generation;
}

/* ---- accessors ---- */

uint64_t tfs_object_generation(const tfs_object *obj) { return obj->generation; }
size_t tfs_object_attr_count(const tfs_object *obj) { return obj->count; }
size_t tfs_object_duplicate_count(const tfs_object *obj) { return obj->duplicates; }

const tfs_attr *tfs_object_attr(const tfs_object *obj, size_t i)
{
	return i < obj->count ? &obj->attrs[i] : NULL;
}

const tfs_attr *tfs_object_find(const tfs_object *obj, uint64_t type)
{
	for (size_t i = obj->count; i-- > 0;)
		if (obj->attrs[i].type == type)
			return &obj->attrs[i];
	return NULL;
}

uint64_t tfs_attr_type(const tfs_attr *a) { return a->type; }
tfs_kind tfs_attr_kind(const tfs_attr *a) { return a->kind; }
uint64_t tfs_attr_offset(const tfs_attr *a) { return a->offset; }
uint64_t tfs_attr_value_offset(const tfs_attr *a) { return a->value_offset; }
bool tfs_attr_is_shadowed(const tfs_attr *a) { return a->shadowed; }
bool tfs_attr_bool(const tfs_attr *a) { return a->kind == TFS_KIND_BOOL && a->v.b != 0; }
uint8_t tfs_attr_bool_raw(const tfs_attr *a) { return a->kind == TFS_KIND_BOOL ? a->v.b : 0; }
uint64_t tfs_attr_ulong(const tfs_attr *a) { return a->kind == TFS_KIND_ULONG ? a->v.ul : 0; }

const uint8_t *tfs_attr_bytes(const tfs_attr *a, size_t *len)
{
	if (a->kind != TFS_KIND_BYTES) {
		*len = 0;
		return NULL;
	}
	*len = a->v.bytes.len;
	return a->v.bytes.p;
}

size_t tfs_attr_map_count(const tfs_attr *a)
{
	return a->kind == TFS_KIND_MAP ? a->v.map.count : 0;
}

const tfs_attr *tfs_attr_map_entry(const tfs_attr *a, size_t i)
{
	return i < tfs_attr_map_count(a) ? &a->v.map.entries[i] : NULL;
}

size_t tfs_attr_mech_count(const tfs_attr *a)
{
	return a->kind == TFS_KIND_MECHS ? a->v.mechs.count : 0;
}

uint64_t tfs_attr_mech(const tfs_attr *a, size_t i)
{
	return i < tfs_attr_mech_count(a) ? tfs_be64(a->v.mechs.p + 8 * i) : 0;
}

bool tfs_object_is_private(const tfs_object *obj)
{
	const tfs_attr *a = tfs_object_find(obj, 0x2 /* CKA_PRIVATE */);
	return a == NULL || tfs_attr_bool(a);
}

bool tfs_object_attr_encrypted(const tfs_object *obj, const tfs_attr *attr)
{
	/* Map entries live in their own arrays: top-level means in obj->attrs. */
	bool top = attr >= obj->attrs && attr < obj->attrs + obj->count;
	return top && attr->kind == TFS_KIND_BYTES && attr->v.bytes.len > 0 &&
	       tfs_object_is_private(obj);
}

const char *tfs_kind_name(tfs_kind kind)
{
	switch (kind) {
	case TFS_KIND_BOOL: return "bool";
	case TFS_KIND_ULONG: return "ulong";
	case TFS_KIND_BYTES: return "bytes";
	case TFS_KIND_MAP: return "map";
	case TFS_KIND_MECHS: return "mechanisms";
	}
	return "unknown";
}
