/*
 * Helpers for the decoder tests: fixture files, temporary files, and the
 * openssl command, whose reading of the same bytes the tests compare with.
 * Every helper fails the running cmocka test on an I/O error.
 */
#ifndef TFS_DER_TESTUTIL_H
#define TFS_DER_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/decode.h"

/* $TFS_TESTDATA/rel, malloc'd. */
char *dt_path(const char *rel);
/* The whole file, malloc'd (at least one byte allocated). */
uint8_t *dt_read(const char *path, size_t *len);
/* Writes bytes to a new temporary file; returns its path (unlink + free). */
char *dt_write_temp(const uint8_t *p, size_t n);
void dt_remove_temp(char *path);
/* Runs a shell command (stderr discarded); returns its stdout, malloc'd,
 * or NULL when it exits non-zero. */
char *dt_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The rest of the first line that starts with prefix after optional
 * blanks, malloc'd, or NULL. */
char *dt_after(const char *text, const char *prefix);
/* Sorted names in dir that start with prefix and end with suffix. */
char **dt_list(const char *dir, const char *prefix, const char *suffix, size_t *n);
void dt_free_list(char **names, size_t n);
bool dt_utf8_valid(const char *s);
/* "Nov 22 05:39:53 2026 GMT" (openssl x509 -dates) to ISO 8601. */
void dt_openssl_date_iso(const char *in, char out[32]);
/* Lower-case hex of bytes, malloc'd. */
char *dt_hex(const uint8_t *p, size_t n);
/* Hex digits only, lower-cased: "04:AB:\n cd" -> "04abcd", malloc'd. */
char *dt_hex_digits(const char *s);
/* Asserts a decoded field equals want (want NULL: the field is absent). */
void dt_expect(const tfs_decoded *d, const char *name, const char *want, const char *what);

#endif
