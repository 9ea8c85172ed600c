/*
 * The read-ahead loader gives, object by object and in the order asked,
 * exactly what tfs_token_load_object gives: the same objects, the same
 * errors for damaged files, and it can be stopped early without leaks
 * (ASan in `make check`). A store of many small objects, damaged ones and
 * large ones (past the byte cap) runs the reader thread through its waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "tokenfs/names.h"
#include "tokenfs/object.h"
#include "tokenfs/store.h"

#define NOBJ 300
#define BIG (3u << 20) /* three of these pass the 4 MiB read-ahead cap */

static size_t make_token_object(uint8_t *b)
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

/* Object k: generation k + 1 and one byte string; every 37th is cut
 * short (a parse error); three in a row of every 50 are large, past the
 * read-ahead byte cap together (the reader then waits for the caller, who
 * waits for a batch: that must not deadlock). */
static tfs_fs *image(void)
{
	tfs_fs *fs;
	tfs_error err;
	uint8_t tobj[256];
	size_t tn = make_token_object(tobj);
	assert_int_equal(tfs_memfs_new(&fs, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/token.object", tobj, tn, 0600, &err), TFS_OK);
	uint8_t *obj = calloc(1, 32 + BIG);
	assert_non_null(obj);
	for (size_t k = 0; k < NOBJ; k++) {
		size_t vlen = k % 50 >= 7 && k % 50 <= 9 ? BIG : 16 + k % 5;
		tfs_put_be64(obj, k + 1);
		tfs_put_be64(obj + 8, 0x11); /* CKA_VALUE */
		tfs_put_be64(obj + 16, 3);
		tfs_put_be64(obj + 24, vlen);
		memset(obj + 32, (int)(k & 0xff), vlen);
		size_t size = 32 + vlen;
		if (k % 37 == 5)
			size -= 3; /* the value runs past the end */
		char p[96];
		snprintf(p, sizeof(p), "s/t1/%08zx-0000-4000-8000-000000000000.object", k);
		assert_int_equal(tfs_memfs_add_file(fs, p, obj, size, 0600, &err), TFS_OK);
	}
	free(obj);
	return fs;
}

/* Loads `which` through a loader and through tfs_token_load_object,
 * comparing each result; stops after `take` objects. */
static void compare(const tfs_token *tok, const size_t *which, size_t n, size_t take)
{
	tfs_loader *ld;
	tfs_error err;
	assert_int_equal(tfs_loader_new(&ld, tok, which, n, &err), TFS_OK);
	for (size_t k = 0; k < take; k++) {
		tfs_object *a = NULL, *b = NULL;
		tfs_error ea, eb;
		size_t index = SIZE_MAX;
		int ra = tfs_loader_next(ld, &index, &a, &ea);
		int rb = tfs_token_load_object(&b, tok, which[k], &eb);
		assert_int_equal(index, which[k]);
		assert_int_equal(ra, rb);
		if (rb == TFS_OK) {
			assert_int_equal(tfs_object_generation(a), which[k] + 1);
			assert_int_equal(tfs_object_generation(a), tfs_object_generation(b));
			assert_int_equal(tfs_object_attr_count(a), tfs_object_attr_count(b));
		} else {
			assert_null(a);
			assert_int_equal(which[k] % 37, 5);
			assert_string_equal(ea.what, eb.what);
			assert_string_equal(ea.where, eb.where);
		}
		tfs_object_free(a);
		tfs_object_free(b);
	}
	if (take == n) {
		tfs_object *o = NULL;
		size_t index;
		assert_int_equal(tfs_loader_next(ld, &index, &o, &err), TFS_E_NOTFOUND);
		assert_null(o);
	}
	tfs_loader_free(ld);
}

static void test_loader_matches_direct_loads(void **state)
{
	(void)state;
	tfs_fs *fs = image();
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open_fs(&s, fs, "s", NULL, &err), TFS_OK);
	const tfs_token *tok = tfs_store_token(s, 0);
	assert_int_equal(tfs_token_object_count(tok), NOBJ);
	size_t all[NOBJ], odd[NOBJ / 2];
	for (size_t i = 0; i < NOBJ; i++)
		all[i] = i;
	for (size_t i = 0; i < NOBJ / 2; i++)
		odd[i] = 2 * i + 1;
	compare(tok, all, NOBJ, NOBJ);        /* everything, in order */
	compare(tok, odd, NOBJ / 2, NOBJ / 2); /* a selection */
	compare(tok, all, NOBJ, 3);           /* stopped early: the rest is freed */
	compare(tok, all, NOBJ, 0);           /* never taken */
	compare(tok, all, 1, 1);              /* one object: no thread */
	compare(tok, all, 0, 0);              /* none */
	tfs_store_free(s);
	tfs_fs_free(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loader_matches_direct_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
