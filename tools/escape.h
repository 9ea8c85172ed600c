/*
 * The one escaping rule of every renderer (text, JSON, softhsm, messages).
 * Bytes read from a store are untrusted: a label or file name must not move
 * the cursor, retitle the window, ring the bell or reorder what follows it
 * on screen. So C0 and C1 controls, DEL and bytes that are not UTF-8 become
 * \xNN, and the bidirectional controls (U+202A-U+202E, U+2066-U+2069,
 * U+200E, U+200F, U+061C) become \uXXXX, in every output format.
 */
#ifndef TFS_TOOLS_ESCAPE_H
#define TFS_TOOLS_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum esc_mode {
	ESC_TERMINAL, /* text for a terminal: controls, bidi and invalid UTF-8 escaped */
	ESC_JSON      /* text for json-c or jw: JSON escapes C0 itself, so only
	               * invalid UTF-8 (\xNN), DEL, C1 and bidi controls (\uXXXX)
	               * are escaped here */
} esc_mode;

/* Copies the n bytes at p into out (size > 0) under mode's rule, always
 * terminated, cut at a whole character to fit. Returns the length written. */
size_t esc_bytes(char *out, size_t size, const uint8_t *p, size_t n, esc_mode mode);

/* The size esc_bytes needs for n bytes never to cut. */
#define ESC_SIZE(n) (6 * (n) + 1)

/* Whether the n bytes at p are text a reader can see as such: valid UTF-8
 * without C0, DEL or C1 control characters (NUL included). Bidi controls
 * do not make bytes binary; esc_bytes shows them escaped. */
bool esc_is_text(const uint8_t *p, size_t n);

/* How many of the n bytes at p to show when at most max fit: max, moved
 * back to the start of a UTF-8 character so that none is cut in two. */
size_t esc_cut(const uint8_t *p, size_t n, size_t max);

#endif
