/*
 * SoftHSM object files (<uuid>.object and token.object): a generation
 * counter and a list of typed attributes, all integers 8-byte big-endian.
 * See docs/format.md.
 *
 * tfs_object_parse reads from memory only; it never does I/O. A parsed
 * object keeps its own copy of the bytes, and every tfs_attr pointer and
 * byte pointer it hands out is borrowed from it: valid until
 * tfs_object_free.
 */
#ifndef TOKENFS_OBJECT_H
#define TOKENFS_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfs_object tfs_object;
typedef struct tfs_attr tfs_attr;

/* The on-disk value kinds. */
typedef enum tfs_kind {
	TFS_KIND_BOOL = 1,
	TFS_KIND_ULONG = 2,
	TFS_KIND_BYTES = 3,
	TFS_KIND_MAP = 4,   /* attribute map (CKA_*_TEMPLATE); entries do not nest */
	TFS_KIND_MECHS = 5  /* mechanism set (CKA_ALLOWED_MECHANISMS) */
} tfs_kind;

/* Caps that bound the work done on hostile input. */
#define TFS_MAX_OBJECT_SIZE  (64u * 1024 * 1024) /* bytes in one object file */
#define TFS_MAX_ATTRS        4096u               /* attributes in one object */
#define TFS_MAX_MAP_ENTRIES  1024u               /* entries in one attribute map */

/*
 * Parses one object file held in memory. On success *out is a new object the
 * caller frees with tfs_object_free. A zero-byte input gives TFS_E_EMPTY (a
 * file SoftHSM skips); an input holding only the 8-byte generation parses to
 * an object with no attributes. Input that ends before its structure does
 * (a field cut short, a length or count beyond the end: what a torn write
 * leaves) gives TFS_E_TRUNCATED; other damage TFS_E_FORMAT or TFS_E_LIMIT;
 * err->offset is at the first byte that is wrong.
 */
int tfs_object_parse(tfs_object **out, const uint8_t *data, size_t size,
                     tfs_error *err);

/* Frees an object and everything borrowed from it. Accepts NULL. */
void tfs_object_free(tfs_object *obj);

/*
 * Writes the object back in SoftHSM's encoding. For a parsed, unmodified
 * object the bytes equal the parsed input exactly. *out is malloc'd; the
 * caller frees it.
 */
int tfs_object_serialize(const tfs_object *obj, uint8_t **out, size_t *size,
                         tfs_error *err);

/*
 * Replaces the value of top-level attribute i, which must be a byte string,
 * with a copy of len bytes. Pointers previously returned for that value
 * become invalid. Replaced values are wiped when the object is freed.
 */
int tfs_object_set_bytes(tfs_object *obj, size_t i, const uint8_t *data, size_t len,
                         tfs_error *err);

/* Replaces the value of top-level attribute i, which must be a ulong. */
int tfs_object_set_ulong(tfs_object *obj, size_t i, uint64_t value, tfs_error *err);

/*
 * Adds a top-level byte-string attribute of this type, in SoftHSM's ascending
 * type order (after any attribute of the same type). Every tfs_attr pointer
 * previously returned for obj becomes invalid.
 */
int tfs_object_insert_bytes(tfs_object *obj, uint64_t type, const uint8_t *data, size_t len,
                            tfs_error *err);

/*
 * Sets every top-level attribute of this type to a copy of the bytes, or
 * inserts one (tfs_object_insert_bytes) where there is none. Every copy:
 * SoftHSM reads the last of a repeated attribute, and a shadowed copy left
 * as it was (an old PIN blob, say) would still be in the file.
 */
int tfs_object_put_bytes(tfs_object *obj, uint64_t type, const uint8_t *data, size_t len,
                         tfs_error *err);

/* Sets the generation counter written by tfs_object_serialize. */
void tfs_object_set_generation(tfs_object *obj, uint64_t generation);

uint64_t tfs_object_generation(const tfs_object *obj);
size_t tfs_object_attr_count(const tfs_object *obj);
/* The i-th attribute in file order; NULL when i is out of range. */
const tfs_attr *tfs_object_attr(const tfs_object *obj, size_t i);
/*
 * The attribute of this type that SoftHSM would use: the last one in the
 * file when the type repeats. NULL when absent.
 */
const tfs_attr *tfs_object_find(const tfs_object *obj, uint64_t type);
/* Number of attributes hidden by a later attribute of the same type. */
size_t tfs_object_duplicate_count(const tfs_object *obj);

uint64_t tfs_attr_type(const tfs_attr *attr);
tfs_kind tfs_attr_kind(const tfs_attr *attr);
/* Offset of the attribute's type field from the start of the file. */
uint64_t tfs_attr_offset(const tfs_attr *attr);
/* Offset of the value (after type, kind and any length or count field). */
uint64_t tfs_attr_value_offset(const tfs_attr *attr);
/* True when a later top-level attribute has the same type. */
bool tfs_attr_is_shadowed(const tfs_attr *attr);

/* Bool: any non-zero byte reads as true; _raw gives the byte as stored. */
bool tfs_attr_bool(const tfs_attr *attr);
uint8_t tfs_attr_bool_raw(const tfs_attr *attr);
uint64_t tfs_attr_ulong(const tfs_attr *attr);
/* Byte string: returns the bytes (borrowed) and stores the length in *len. */
const uint8_t *tfs_attr_bytes(const tfs_attr *attr, size_t *len);
/* Attribute map entries, in file order. */
size_t tfs_attr_map_count(const tfs_attr *attr);
const tfs_attr *tfs_attr_map_entry(const tfs_attr *attr, size_t i);
/* Mechanism set members, in file order (SoftHSM writes them ascending). */
size_t tfs_attr_mech_count(const tfs_attr *attr);
uint64_t tfs_attr_mech(const tfs_attr *attr, size_t i);

/*
 * CKA_PRIVATE as SoftHSM reads it: true when absent. Meaningful for object
 * files, not for token.object.
 */
bool tfs_object_is_private(const tfs_object *obj);

/*
 * Whether SoftHSM stores this attribute's value encrypted under the token
 * key: a non-empty top-level byte string of a private object. Bools, ulongs,
 * mechanism sets and map entries are always plaintext.
 */
bool tfs_object_attr_encrypted(const tfs_object *obj, const tfs_attr *attr);

/* The short kind name used in JSON: "bool", "ulong", "bytes", "map", "mechanisms". */
const char *tfs_kind_name(tfs_kind kind);

#ifdef __cplusplus
}
#endif
#endif
