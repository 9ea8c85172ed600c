/* The parsed object's layout, shared by the parser, the serializer and the
 * store layer. Values point into the object's own copy of the file. */
#ifndef TFS_FORMAT_OBJECT_INTERNAL_H
#define TFS_FORMAT_OBJECT_INTERNAL_H

#include "tokenfs/object.h"

struct tfs_attr {
	uint64_t type;
	uint64_t offset;       /* of the type field, from the start of the file */
	uint64_t value_offset; /* of the value bytes, after any length field */
	tfs_kind kind;
	bool shadowed;         /* a later top-level attribute has the same type */
	union {
		uint8_t b;
		uint64_t ul;
		struct { const uint8_t *p; size_t len; } bytes;
		struct { const uint8_t *p; size_t count; } mechs; /* raw be64 members */
		struct { tfs_attr *entries; size_t count; } map;
	} v;
};

struct tfs_object {
	uint8_t *data;   /* owned copy of the file */
	size_t size;
	uint64_t generation;
	tfs_attr *attrs;
	size_t count;
	size_t duplicates;
	/* Values set by tfs_object_set_bytes, owned and wiped on free. */
	struct owned_value { uint8_t *p; size_t len; } *owned;
	size_t nowned;
};

/* Like tfs_object_parse, but takes ownership of a malloc'd buffer (freed on
 * failure too), so readers of large stores copy each file once. */
int tfs_object_parse_owned(tfs_object **out, uint8_t *data, size_t size,
                           tfs_error *err);

#endif
