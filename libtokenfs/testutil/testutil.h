/*
 * What the unit tests share: reading fixture files whole, and naming them
 * under $TFS_TESTDATA. Failures end the running cmocka test.
 */
#ifndef TFS_TESTUTIL_H
#define TFS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The whole contents of a stream or a file; free() the result. At least
 * one byte is allocated, so the result is never NULL. */
uint8_t *tu_read_stream(FILE *f, size_t *len);
uint8_t *tu_read_file(const char *path, size_t *len);

/* "$TFS_TESTDATA/rel"; free() the result. */
char *tu_data_path(const char *rel);

/* A token.object with label "demo", serial "8c0efa5f3e83204c" and flags
 * 0x42d, for images built in memory; b holds at least 256 bytes. Returns
 * its length. */
size_t tu_token_object(uint8_t *b);

#endif
