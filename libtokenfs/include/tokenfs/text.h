/*
 * Text read from a store, made safe to show: the one escaping rule of every
 * renderer of tokenfs (text, JSON, softhsm, messages) and of any caller.
 * Bytes read from a store are untrusted: a label or file name must not move
 * the cursor, retitle the window, ring the bell or reorder what follows it
 * on screen. So C0 and C1 controls, DEL and bytes that are not UTF-8 become
 * \xNN, and the bidirectional controls (U+202A-U+202E, U+2066-U+2069,
 * U+200E, U+200F, U+061C) become \uXXXX, in every output format.
 */
#ifndef TOKENFS_TEXT_H
#define TOKENFS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tfs_escape_mode {
	TFS_ESC_TERMINAL, /* text for a terminal: controls, bidi and invalid UTF-8 escaped */
	TFS_ESC_JSON      /* text for a JSON writer: JSON escapes C0 itself, so
	                   * only invalid UTF-8 (\xNN), DEL, C1 and bidi controls
	                   * (\uXXXX) are escaped here */
} tfs_escape_mode;

/* Copies the n bytes at p into out (size > 0) under mode's rule, always
 * terminated, cut at a whole character to fit. Returns the length written. */
size_t tfs_escape(char *out, size_t size, const uint8_t *p, size_t n, tfs_escape_mode mode);

/* The size tfs_escape needs for n bytes never to cut. */
#define TFS_ESCAPE_SIZE(n) (6 * (n) + 1)

/* Whether the n bytes at p are text a reader can see as such: valid UTF-8
 * without C0, DEL or C1 control characters (NUL included). Bidi controls
 * do not make bytes binary; tfs_escape shows them escaped. */
bool tfs_text_is_plain(const uint8_t *p, size_t n);

/* How many of the n bytes at p to show when at most max fit: max, moved
 * back to the start of a UTF-8 character so that none is cut in two. */
size_t tfs_text_cut(const uint8_t *p, size_t n, size_t max);

#ifdef __cplusplus
}
#endif
#endif
