/* Shared test helpers: see testutil.h. */
#include "testutil/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <cmocka.h>
#include <string.h>

#include "core/cursor.h"
#include "tokenfs/names.h"

uint8_t *tu_read_stream(FILE *f, size_t *len)
{
	uint8_t *buf = NULL;
	size_t size = 0, cap = 0, got;
	do {
		if (size == cap) {
			cap = cap ? 2 * cap : 4096;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + size, 1, cap - size, f);
		size += got;
	} while (got > 0);
	assert_false(ferror(f));
	*len = size;
	return buf;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	uint8_t *buf = tu_read_stream(f, len);
	fclose(f);
	return buf;
}

char *tu_data_path(const char *rel)
{
	const char *base = getenv("TFS_TESTDATA");
	if (base == NULL)
		fail_msg("TFS_TESTDATA is not set (ctest sets it)");
	char *p = NULL;
	if (asprintf(&p, "%s/%s", base, rel) < 0)
		fail_msg("out of memory");
	return p;
}

size_t tu_token_object(uint8_t *b)
{
	size_t n = 0;
	tfs_put_be64(b + n, 3); n += 8;
	tfs_put_be64(b + n, TFS_CKA_OS_TOKENLABEL); tfs_put_be64(b + n + 8, 3); tfs_put_be64(b + n + 16, 32); n += 24;
	memcpy(b + n, "demo                            ", 32); n += 32;
	tfs_put_be64(b + n, TFS_CKA_OS_TOKENSERIAL); tfs_put_be64(b + n + 8, 3); tfs_put_be64(b + n + 16, 16); n += 24;
	memcpy(b + n, "8c0efa5f3e83204c", 16); n += 16;
	tfs_put_be64(b + n, TFS_CKA_OS_TOKENFLAGS); tfs_put_be64(b + n + 8, 2); tfs_put_be64(b + n + 16, 0x42d); n += 24;
	return n;
}
