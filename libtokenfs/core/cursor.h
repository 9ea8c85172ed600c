/*
 * The one bounded reader every parser in libtokenfs goes through. It reads
 * big-endian integers and byte ranges from a memory buffer and never reads
 * past its end: each read checks `n > remaining` first, and a failed read
 * leaves the position unchanged so the caller can report where the field
 * started.
 */
#ifndef TFS_CORE_CURSOR_H
#define TFS_CORE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tfs_cursor {
	const uint8_t *data;
	size_t size;
	size_t pos;
	uint64_t base; /* offset of data[0] in the file, for messages */
} tfs_cursor;

static inline void tfs_cursor_init(tfs_cursor *c, const uint8_t *data, size_t size)
{
	c->data = data;
	c->size = size;
	c->pos = 0;
	c->base = 0;
}

static inline size_t tfs_cursor_left(const tfs_cursor *c)
{
	return c->size - c->pos;
}

/* File offset of the current position. */
static inline uint64_t tfs_cursor_offset(const tfs_cursor *c)
{
	return c->base + c->pos;
}

static inline uint64_t tfs_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void tfs_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static inline bool tfs_cursor_u8(tfs_cursor *c, uint8_t *out)
{
	if (tfs_cursor_left(c) < 1)
		return false;
	*out = c->data[c->pos++];
	return true;
}

static inline bool tfs_cursor_u64(tfs_cursor *c, uint64_t *out)
{
	if (tfs_cursor_left(c) < 8)
		return false;
	*out = tfs_be64(c->data + c->pos);
	c->pos += 8;
	return true;
}

/* Borrows n bytes at the current position. n is a 64-bit file quantity:
 * it is compared with what is left before any narrowing. */
static inline bool tfs_cursor_bytes(tfs_cursor *c, uint64_t n, const uint8_t **out)
{
	if (n > tfs_cursor_left(c))
		return false;
	*out = c->data + c->pos;
	c->pos += (size_t)n;
	return true;
}

/* A sub-cursor over the next n bytes; the parent skips past them. */
static inline bool tfs_cursor_sub(tfs_cursor *c, uint64_t n, tfs_cursor *sub)
{
	const uint8_t *p;
	uint64_t off = tfs_cursor_offset(c);
	if (!tfs_cursor_bytes(c, n, &p))
		return false;
	sub->data = p;
	sub->size = (size_t)n;
	sub->pos = 0;
	sub->base = off;
	return true;
}

/* Overflow-checked size arithmetic: false when the result does not fit. */
static inline bool tfs_size_add(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

static inline bool tfs_size_mul(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

#endif
