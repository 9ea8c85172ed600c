/*
 * A streaming JSON writer for dump's per-object output: a 20,000-object
 * store is written without building a json-c tree per object, which was
 * half of a decrypting dump's time. Output is byte-identical to json-c's
 * JSON_C_TO_STRING_PLAIN | NOSLASHESCAPE for the same values (tested by the
 * golden files), so the document stays one format.
 */
#ifndef TFS_TOOLS_JSON_WRITER_H
#define TFS_TOOLS_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Output is staged in buf and handed to stdio in large writes: a putc or
 * fprintf per character and number was half of a decrypting dump's time.
 * The buffer may hold decrypted values: it is wiped on every flush. */
#define JW_BUF 16384

typedef struct jw {
	FILE *out;
	int depth;
	bool first[32]; /* per open container: nothing written in it yet */
	bool after_key;
	size_t len;     /* bytes staged in buf */
	char buf[JW_BUF];
} jw;

void jw_init(jw *w, FILE *out);
/* Hands what is staged to out and wipes it; call before writing to out
 * directly and when done (jw_init's caller owns that duty). */
void jw_flush(jw *w);
void jw_object(jw *w);
void jw_array(jw *w);
void jw_end_object(jw *w);
void jw_end_array(jw *w);
void jw_key(jw *w, const char *key);
/* A string that is valid UTF-8 (names, fixed texts). */
void jw_string(jw *w, const char *s);
/* Untrusted text (from a store): invalid UTF-8 becomes \xNN first. NULL: null. */
void jw_text(jw *w, const char *s);
/* Bytes as a lowercase hex string; the staging buffer is wiped, as the
 * bytes may be decrypted values. */
void jw_hex(jw *w, const uint8_t *p, size_t n);
void jw_u64(jw *w, uint64_t v);
void jw_i64(jw *w, int64_t v);
void jw_bool(jw *w, bool v);
void jw_null(jw *w);

#endif
