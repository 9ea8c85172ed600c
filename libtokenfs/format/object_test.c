/*
 * The object parser on hand-built bytes (every kind, every error path) and
 * on the real SoftHSM fixtures (exact round trip). The malformed fixtures in
 * testdata/malformed are checked against their MANIFEST by the CLI tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "testutil/testutil.h"
#include "tokenfs/object.h"

/* A small builder for object bytes. */
typedef struct buf {
	uint8_t b[4096];
	size_t n;
} buf;

static void u64(buf *x, uint64_t v)
{
	tfs_put_be64(x->b + x->n, v);
	x->n += 8;
}

static void raw(buf *x, const void *p, size_t n)
{
	memcpy(x->b + x->n, p, n);
	x->n += n;
}

/* generation 7; CKA_CLASS ulong 3; CKA_TOKEN bool 0xff; CKA_LABEL "key";
 * CKA_WRAP_TEMPLATE map {CKA_ENCRYPT bool 0x01, CKA_ID bytes "x"};
 * CKA_ALLOWED_MECHANISMS {0x1082, 0x1087}. */
static void build_full(buf *x)
{
	x->n = 0;
	u64(x, 7);
	u64(x, 0x0); u64(x, 2); u64(x, 3);
	u64(x, 0x1); u64(x, 1); raw(x, "\xff", 1);
	u64(x, 0x3); u64(x, 3); u64(x, 3); raw(x, "key", 3);
	u64(x, 0x40000211); u64(x, 4); u64(x, 17 + 25);
	u64(x, 0x104); u64(x, 1); raw(x, "\x01", 1);
	u64(x, 0x102); u64(x, 3); u64(x, 1); raw(x, "x", 1);
	u64(x, 0x40000600); u64(x, 5); u64(x, 2); u64(x, 0x1082); u64(x, 0x1087);
}

static void test_parses_every_kind(void **state)
{
	(void)state;
	buf x;
	build_full(&x);
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, x.b, x.n, &err), TFS_OK);
	assert_int_equal(tfs_object_generation(obj), 7);
	assert_int_equal(tfs_object_attr_count(obj), 5);
	assert_int_equal(tfs_attr_ulong(tfs_object_find(obj, 0)), 3);
	const tfs_attr *tok = tfs_object_find(obj, 1);
	assert_true(tfs_attr_bool(tok));
	assert_int_equal(tfs_attr_bool_raw(tok), 0xff);
	assert_int_equal(tfs_attr_offset(tok), 8 + 24);
	size_t len;
	const uint8_t *p = tfs_attr_bytes(tfs_object_find(obj, 3), &len);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "key", 3);
	const tfs_attr *map = tfs_object_find(obj, 0x40000211);
	assert_int_equal(tfs_attr_kind(map), TFS_KIND_MAP);
	assert_int_equal(tfs_attr_map_count(map), 2);
	assert_int_equal(tfs_attr_bool_raw(tfs_attr_map_entry(map, 0)), 1);
	assert_int_equal(tfs_attr_type(tfs_attr_map_entry(map, 1)), 0x102);
	const tfs_attr *m = tfs_object_find(obj, 0x40000600);
	assert_int_equal(tfs_attr_mech_count(m), 2);
	assert_int_equal(tfs_attr_mech(m, 1), 0x1087);
	assert_null(tfs_object_find(obj, 0x11));
	assert_int_equal(tfs_object_duplicate_count(obj), 0);

	uint8_t *out;
	size_t out_n;
	assert_int_equal(tfs_object_serialize(obj, &out, &out_n, &err), TFS_OK);
	assert_int_equal(out_n, x.n);
	assert_memory_equal(out, x.b, x.n);
	free(out);
	tfs_object_free(obj);
}

static void expect_error(const buf *x, int code, uint64_t offset, const char *needle)
{
	tfs_object *obj = NULL;
	tfs_error err;
	int rc = tfs_object_parse(&obj, x->b, x->n, &err);
	if (rc != code || err.offset != offset || strstr(err.what, needle) == NULL)
		fail_msg("want %d at %llu containing '%s'; got %d at %llu: %s", code,
		         (unsigned long long)offset, needle, rc, (unsigned long long)err.offset,
		         err.what);
	assert_null(obj);
}

static void test_truncation_at_every_byte_fails_cleanly(void **state)
{
	(void)state;
	buf x;
	build_full(&x);
	/* Attribute boundaries are the only cut points that parse. */
	const size_t ok_cuts[] = {8, 32, 49, 76, 142};
	for (size_t cut = 0; cut < x.n; cut++) {
		tfs_object *obj = NULL;
		tfs_error err;
		int rc = tfs_object_parse(&obj, x.b, cut, &err);
		bool boundary = false;
		for (size_t k = 0; k < sizeof(ok_cuts) / sizeof(ok_cuts[0]); k++)
			boundary |= ok_cuts[k] == cut;
		if (boundary) {
			assert_int_equal(rc, TFS_OK);
			tfs_object_free(obj);
		} else {
			assert_int_not_equal(rc, TFS_OK);
			assert_true(err.offset <= cut);
			assert_null(obj);
		}
	}
}

static void test_error_offsets_name_the_field(void **state)
{
	(void)state;
	buf x = {.n = 0};
	expect_error(&x, TFS_E_EMPTY, 0, "empty object file");
	u64(&x, 1);
	x.n = 5;
	expect_error(&x, TFS_E_TRUNCATED, 0, "generation counter: 5 of 8");

	/* byte-string length near 2^64 */
	x.n = 0;
	u64(&x, 1); u64(&x, 3); u64(&x, 3); u64(&x, 0xFFFFFFFFFFFFFFF0ull); raw(&x, "abc", 3);
	expect_error(&x, TFS_E_TRUNCATED, 24, "byte-string length 18446744073709551600 of CKA_LABEL exceeds the 3 bytes left in the file");

	/* mechanism count near 2^64: count*8 would wrap to a small number */
	x.n = 0;
	u64(&x, 1); u64(&x, 0x40000600); u64(&x, 5); u64(&x, 0x2000000000000001ull); u64(&x, 0x1082);
	expect_error(&x, TFS_E_TRUNCATED, 24, "mechanism count 2305843009213693953");

	/* unknown kind */
	x.n = 0;
	u64(&x, 1); u64(&x, 0); u64(&x, 7); u64(&x, 3);
	expect_error(&x, TFS_E_FORMAT, 16, "unknown attribute kind 7 for CKA_CLASS");

	/* map one byte too long: the map swallows a byte of nothing */
	x.n = 0;
	u64(&x, 1); u64(&x, 0x40000211); u64(&x, 4); u64(&x, 18);
	u64(&x, 0x104); u64(&x, 1); raw(&x, "\x01\x00", 2);
	expect_error(&x, TFS_E_FORMAT, 24, "attribute map length 18 of CKA_WRAP_TEMPLATE does not match its entries: the type of a further entry at offset 49 needs 8 bytes, 1 are left");

	/* map one byte too short: the last entry's value runs past the map */
	x.n = 0;
	u64(&x, 1); u64(&x, 0x40000211); u64(&x, 4); u64(&x, 16);
	u64(&x, 0x104); u64(&x, 1); raw(&x, "\x01", 1);
	expect_error(&x, TFS_E_FORMAT, 24, "attribute map length 16 of CKA_WRAP_TEMPLATE does not match its entries: the bool value of entry CKA_ENCRYPT at offset 48 needs 1 bytes, 0 are left");

	/* nested map */
	x.n = 0;
	u64(&x, 1); u64(&x, 0x40000211); u64(&x, 4); u64(&x, 24);
	u64(&x, 0x40000212); u64(&x, 4); u64(&x, 0);
	expect_error(&x, TFS_E_FORMAT, 40, "nested inside an attribute map");

	/* trailing garbage shorter than an attribute type */
	x.n = 0;
	u64(&x, 1); u64(&x, 1); u64(&x, 1); raw(&x, "\x00" "abc", 4);
	expect_error(&x, TFS_E_TRUNCATED, 25, "3 bytes after the last attribute are too few");
}

static void test_duplicates_last_one_wins(void **state)
{
	(void)state;
	buf x = {.n = 0};
	u64(&x, 1);
	u64(&x, 3); u64(&x, 3); u64(&x, 1); raw(&x, "a", 1);
	u64(&x, 0); u64(&x, 2); u64(&x, 4);
	u64(&x, 3); u64(&x, 3); u64(&x, 1); raw(&x, "b", 1);
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, x.b, x.n, &err), TFS_OK);
	assert_int_equal(tfs_object_duplicate_count(obj), 1);
	assert_true(tfs_attr_is_shadowed(tfs_object_attr(obj, 0)));
	assert_false(tfs_attr_is_shadowed(tfs_object_attr(obj, 2)));
	size_t len;
	assert_memory_equal(tfs_attr_bytes(tfs_object_find(obj, 3), &len), "b", 1);
	tfs_object_free(obj);
}

static void test_generation_only_is_an_object_without_attributes(void **state)
{
	(void)state;
	buf x = {.n = 0};
	u64(&x, 9);
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, x.b, x.n, &err), TFS_OK);
	assert_int_equal(tfs_object_attr_count(obj), 0);
	assert_int_equal(tfs_object_generation(obj), 9);
	tfs_object_free(obj);
}

/* Round trip on every .object of the real SoftHSM store. */
static void test_round_trip_every_fixture(void **state)
{
	(void)state;
	const char *td = getenv("TFS_TESTDATA");
	assert_non_null(td);
	char root[4096];
	snprintf(root, sizeof(root), "%s/store", td);
	DIR *d = opendir(root);
	assert_non_null(d);
	int files = 0;
	struct dirent *t;
	while ((t = readdir(d)) != NULL) {
		if (t->d_name[0] == '.')
			continue;
		char tdir[4600];
		snprintf(tdir, sizeof(tdir), "%s/%s", root, t->d_name);
		DIR *d2 = opendir(tdir);
		if (d2 == NULL)
			continue;
		struct dirent *e;
		while ((e = readdir(d2)) != NULL) {
			size_t l = strlen(e->d_name);
			if (l < 8 || strcmp(e->d_name + l - 7, ".object") != 0)
				continue;
			char p[5000];
			snprintf(p, sizeof(p), "%s/%s", tdir, e->d_name);
			size_t n;
			uint8_t *b = tu_read_file(p, &n);
			tfs_object *obj;
			tfs_error err;
			if (tfs_object_parse(&obj, b, n, &err) != TFS_OK)
				fail_msg("%s: offset %llu: %s", p, (unsigned long long)err.offset, err.what);
			uint8_t *out;
			size_t out_n;
			assert_int_equal(tfs_object_serialize(obj, &out, &out_n, &err), TFS_OK);
			assert_int_equal(out_n, n);
			assert_memory_equal(out, b, n);
			free(out);
			free(b);
			tfs_object_free(obj);
			files++;
		}
		closedir(d2);
	}
	closedir(d);
	/* Two tokens with a dozen objects between them, plus token.object each. */
	assert_true(files >= 14);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parses_every_kind),
		cmocka_unit_test(test_truncation_at_every_byte_fails_cleanly),
		cmocka_unit_test(test_error_offsets_name_the_field),
		cmocka_unit_test(test_duplicates_last_one_wins),
		cmocka_unit_test(test_generation_only_is_an_object_without_attributes),
		cmocka_unit_test(test_round_trip_every_fixture),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
