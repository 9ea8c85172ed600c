/*
 * UTF-8 by RFC 3629 (no overlong forms, no surrogates, nothing past
 * U+10FFFF): the one rule the DER name renderer and the tools' output
 * sanitizer both follow.
 */
#ifndef TFS_CORE_UTF8_H
#define TFS_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence at p (at most n bytes) with its code point
 * in *cp, or 0 when the bytes there are not valid UTF-8. */
static inline size_t tfs_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t b = p[0];
	size_t len;
	uint32_t v, min;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if (b >= 0xc2 && b <= 0xdf) {
		len = 2, v = b & 0x1f, min = 0x80;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3, v = b & 0x0f, min = 0x800;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4, v = b & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

#endif
