/* Streaming JSON writer: see json_writer.h. */
#include "json_writer.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

void jw_init(jw *w, FILE *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
}

/* The comma before a value, unless it follows its key or opens a container. */
static void value_sep(jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0 && !w->first[w->depth])
		putc(',', w->out);
	if (w->depth > 0)
		w->first[w->depth] = false;
}

static void open_container(jw *w, char c)
{
	value_sep(w);
	putc(c, w->out);
	if (w->depth + 1 < (int)(sizeof(w->first) / sizeof(w->first[0])))
		w->depth++;
	w->first[w->depth] = true;
}

void jw_object(jw *w) { open_container(w, '{'); }
void jw_array(jw *w) { open_container(w, '['); }

void jw_end_object(jw *w)
{
	putc('}', w->out);
	w->depth--;
}

void jw_end_array(jw *w)
{
	putc(']', w->out);
	w->depth--;
}

/* json-c's escaping: the two-character escapes, \u00xx (lowercase) for
 * other control characters, everything else as is ('/' too: NOSLASHESCAPE). */
static void put_escaped(FILE *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	putc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\b': fputs("\\b", out); break;
		case '\f': fputs("\\f", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20) {
				fputs("\\u00", out);
				putc(hex[*p >> 4], out);
				putc(hex[*p & 15], out);
			} else {
				putc(*p, out);
			}
		}
	}
	putc('"', out);
}

void jw_key(jw *w, const char *key)
{
	value_sep(w);
	put_escaped(w->out, key);
	putc(':', w->out);
	w->after_key = true;
}

void jw_string(jw *w, const char *s)
{
	value_sep(w);
	put_escaped(w->out, s);
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
	char buf[512];
	value_sep(w);
	putc('"', w->out);
	while (n > 0) {
		size_t k = n < sizeof(buf) / 2 ? n : sizeof(buf) / 2;
		for (size_t i = 0; i < k; i++) {
			buf[2 * i] = digits[p[i] >> 4];
			buf[2 * i + 1] = digits[p[i] & 15];
		}
		fwrite(buf, 1, 2 * k, w->out);
		p += k;
		n -= k;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	putc('"', w->out);
}

void jw_u64(jw *w, uint64_t v)
{
	value_sep(w);
	fprintf(w->out, "%" PRIu64, v);
}

void jw_i64(jw *w, int64_t v)
{
	value_sep(w);
	fprintf(w->out, "%" PRId64, v);
}

void jw_bool(jw *w, bool v)
{
	value_sep(w);
	fputs(v ? "true" : "false", w->out);
}

void jw_null(jw *w)
{
	value_sep(w);
	fputs("null", w->out);
}
