/* Streaming JSON writer: see json_writer.h. */
#include "json_writer.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

void jw_init(jw *w, FILE *out)
{
	w->out = out;
	w->depth = 0;
	memset(w->first, 0, sizeof(w->first));
	w->after_key = false;
	w->len = 0;
}

void jw_flush(jw *w)
{
	if (w->len == 0)
		return;
	fwrite_unlocked(w->buf, 1, w->len, w->out);
	OPENSSL_cleanse(w->buf, w->len);
	w->len = 0;
}

static inline void put_bytes(jw *w, const char *p, size_t n)
{
	if (n > JW_BUF - w->len) {
		jw_flush(w);
		if (n > JW_BUF) {
			fwrite_unlocked(p, 1, n, w->out);
			return;
		}
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static inline void put_char(jw *w, char c)
{
	if (w->len == JW_BUF)
		jw_flush(w);
	w->buf[w->len++] = c;
}

#define PUT_LIT(w, s) put_bytes((w), (s), sizeof(s) - 1)

/* The comma before a value, unless it follows its key or opens a container. */
static void value_sep(jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0 && !w->first[w->depth])
		put_char(w, ',');
	if (w->depth > 0)
		w->first[w->depth] = false;
}

static void open_container(jw *w, char c)
{
	value_sep(w);
	put_char(w, c);
	if (w->depth + 1 < (int)(sizeof(w->first) / sizeof(w->first[0])))
		w->depth++;
	w->first[w->depth] = true;
}

void jw_object(jw *w) { open_container(w, '{'); }
void jw_array(jw *w) { open_container(w, '['); }

void jw_end_object(jw *w)
{
	put_char(w, '}');
	w->depth--;
}

void jw_end_array(jw *w)
{
	put_char(w, ']');
	w->depth--;
}

/* json-c's escaping: the two-character escapes, \u00xx (lowercase) for
 * other control characters, everything else as is ('/' too: NOSLASHESCAPE).
 * Runs of plain characters are copied at once. */
static void put_escaped(jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put_char(w, '"');
	const unsigned char *p = (const unsigned char *)s;
	for (;;) {
		/* Plain characters go straight into the buffer: most keys and
		 * values have nothing to escape. */
		char *o = w->buf + w->len, *end = w->buf + JW_BUF;
		while (o < end && *p >= 0x20 && *p != '"' && *p != '\\')
			*o++ = (char)*p++;
		w->len = (size_t)(o - w->buf);
		if (o == end) {
			jw_flush(w);
			continue;
		}
		unsigned char c = *p++;
		switch (c) {
		case '\0': put_char(w, '"'); return;
		case '"': PUT_LIT(w, "\\\""); break;
		case '\\': PUT_LIT(w, "\\\\"); break;
		case '\b': PUT_LIT(w, "\\b"); break;
		case '\f': PUT_LIT(w, "\\f"); break;
		case '\n': PUT_LIT(w, "\\n"); break;
		case '\r': PUT_LIT(w, "\\r"); break;
		case '\t': PUT_LIT(w, "\\t"); break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put_bytes(w, u, sizeof(u));
		}
		}
	}
}

/* A key that needs no escaping and fits the buffer ("type", "name", ...:
 * all of dump's) in one pass; false leaves the buffer as it was. */
static bool put_plain_key(jw *w, const char *key)
{
	size_t room = JW_BUF - w->len;
	if (room < 3)
		return false;
	char *o = w->buf + w->len, *end = o + room - 2;
	*o++ = '"';
	const unsigned char *p = (const unsigned char *)key;
	while (o < end && *p >= 0x20 && *p != '"' && *p != '\\')
		*o++ = (char)*p++;
	if (*p != '\0')
		return false;
	*o++ = '"';
	*o++ = ':';
	w->len = (size_t)(o - w->buf);
	return true;
}

void jw_key(jw *w, const char *key)
{
	value_sep(w);
	if (!put_plain_key(w, key)) {
		put_escaped(w, key);
		put_char(w, ':');
	}
	w->after_key = true;
}

void jw_string(jw *w, const char *s)
{
	value_sep(w);
	put_escaped(w, s);
}

void jw_text(jw *w, const char *s)
{
	if (s == NULL) {
		jw_null(w);
		return;
	}
	char *u = cli_utf8(s);
	jw_string(w, u != NULL ? u : "");
	free(u);
}

void jw_hex(jw *w, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	value_sep(w);
	put_char(w, '"');
	while (n > 0) {
		if (w->len + 2 > JW_BUF)
			jw_flush(w);
		size_t k = (JW_BUF - w->len) / 2;
		if (k > n)
			k = n;
		char *o = w->buf + w->len;
		for (size_t i = 0; i < k; i++) {
			o[2 * i] = digits[p[i] >> 4];
			o[2 * i + 1] = digits[p[i] & 15];
		}
		w->len += 2 * k;
		p += k;
		n -= k;
	}
	put_char(w, '"');
}

void jw_u64(jw *w, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	value_sep(w);
	put_bytes(w, d + i, sizeof(d) - i);
}

void jw_i64(jw *w, int64_t v)
{
	if (v >= 0) {
		jw_u64(w, (uint64_t)v);
		return;
	}
	value_sep(w);
	put_char(w, '-');
	w->after_key = true; /* no separator between the sign and the digits */
	jw_u64(w, 0 - (uint64_t)v);
}

void jw_bool(jw *w, bool v)
{
	value_sep(w);
	if (v)
		PUT_LIT(w, "true");
	else
		PUT_LIT(w, "false");
}

void jw_null(jw *w)
{
	value_sep(w);
	PUT_LIT(w, "null");
}
