/*
 * Test-only reader of the known-answer vectors in $TFS_TESTDATA/crypto/
 * (made by scripts/make-crypto-vectors.py). One record a line:
 *
 *   <kind> name=<text> <field>=<hex> ...
 *
 * Blank lines and lines starting with '#' are skipped. Failures to find or
 * parse the file fail the calling cmocka test.
 */
#ifndef TFS_CRYPTO_TESTVEC_H
#define TFS_CRYPTO_TESTVEC_H

#include <stddef.h>
#include <stdint.h>

#define TV_MAX_FIELDS 12

typedef struct tv_record {
	char *line;                 /* owned; the fields point into it */
	const char *kind;
	size_t nfields;
	const char *key[TV_MAX_FIELDS];
	const char *val[TV_MAX_FIELDS];
} tv_record;

/* Reads every record of crypto/<file>; returns the count (at least 1). */
size_t tv_load(const char *file, tv_record **out);
void tv_free(tv_record *recs, size_t n);

/* The text of a field, or NULL when the record lacks it. */
const char *tv_get(const tv_record *r, const char *key);
/* A hex field decoded into a new buffer (at least 1 byte); fails the test
 * when the field is missing or not hex. Free with free(). */
uint8_t *tv_hex(const tv_record *r, const char *key, size_t *len);

/* $TFS_TESTDATA/<rel>, in a static buffer. */
const char *tv_path(const char *rel);

#endif
