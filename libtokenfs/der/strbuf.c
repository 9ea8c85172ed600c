/* A growing NUL-terminated string for the decoders' text. An allocation
 * failure is sticky: later appends do nothing and tfs_sb_take gives NULL, so
 * callers check once at the end. */
#include "der/der_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(tfs_strbuf *sb, size_t extra)
{
	if (sb->failed)
		return false;
	size_t need;
	if (__builtin_add_overflow(sb->len, extra + 1, &need)) {
		sb->failed = true;
		return false;
	}
	if (need <= sb->cap)
		return true;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < need) {
		if (__builtin_mul_overflow(cap, 2, &cap)) {
			sb->failed = true;
			return false;
		}
	}
	char *n = realloc(sb->s, cap);
	if (n == NULL) {
		sb->failed = true;
		return false;
	}
	sb->s = n;
	sb->cap = cap;
	return true;
}

void tfs_sb_putc(tfs_strbuf *sb, char c)
{
	if (!reserve(sb, 1))
		return;
	sb->s[sb->len++] = c;
	sb->s[sb->len] = '\0';
}

void tfs_sb_puts(tfs_strbuf *sb, const char *s)
{
	size_t n = strlen(s);
	if (!reserve(sb, n))
		return;
	memcpy(sb->s + sb->len, s, n + 1);
	sb->len += n;
}

void tfs_sb_printf(tfs_strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->failed = true;
		return;
	}
	tfs_sb_puts(sb, s);
	free(s);
}

void tfs_sb_hex(tfs_strbuf *sb, const uint8_t *p, size_t n, bool upper, const char *sep)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t seplen = sep ? strlen(sep) : 0;
	size_t each = 2 + seplen, total;
	if (__builtin_mul_overflow(n, each, &total) || !reserve(sb, total))
		return;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && seplen > 0) {
			memcpy(sb->s + sb->len, sep, seplen);
			sb->len += seplen;
		}
		sb->s[sb->len++] = digits[p[i] >> 4];
		sb->s[sb->len++] = digits[p[i] & 15];
	}
	sb->s[sb->len] = '\0';
}

char *tfs_sb_take(tfs_strbuf *sb)
{
	if (sb->failed) {
		tfs_sb_free(sb);
		return NULL;
	}
	if (sb->s == NULL && !reserve(sb, 0))
		return NULL;
	char *s = sb->s;
	sb->s = NULL;
	sb->len = sb->cap = 0;
	return s;
}

void tfs_sb_free(tfs_strbuf *sb)
{
	free(sb->s);
	sb->s = NULL;
	sb->len = sb->cap = 0;
	sb->failed = false;
}
