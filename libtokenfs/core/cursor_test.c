/* The bounded cursor: reads stop at the end, failed reads do not move. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/cursor.h"

static void test_be64_reads_big_endian(void **state)
{
	(void)state;
	const uint8_t b[9] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff};
	tfs_cursor c;
	tfs_cursor_init(&c, b, sizeof(b));
	uint64_t v;
	assert_true(tfs_cursor_u64(&c, &v));
	assert_int_equal(v, 0x0102030405060708ull);
	assert_int_equal(tfs_cursor_left(&c), 1);
	/* Only one byte left: a u64 read fails and does not move. */
	assert_false(tfs_cursor_u64(&c, &v));
	assert_int_equal(c.pos, 8);
	uint8_t u;
	assert_true(tfs_cursor_u8(&c, &u));
	assert_int_equal(u, 0xff);
	assert_false(tfs_cursor_u8(&c, &u));
}

static void test_bytes_rejects_huge_lengths(void **state)
{
	(void)state;
	const uint8_t b[4] = {1, 2, 3, 4};
	tfs_cursor c;
	tfs_cursor_init(&c, b, sizeof(b));
	const uint8_t *p = NULL;
	assert_false(tfs_cursor_bytes(&c, UINT64_MAX, &p));
	assert_false(tfs_cursor_bytes(&c, 5, &p));
	assert_int_equal(c.pos, 0);
	assert_true(tfs_cursor_bytes(&c, 4, &p));
	assert_ptr_equal(p, b);
	assert_true(tfs_cursor_bytes(&c, 0, &p));
	assert_false(tfs_cursor_bytes(&c, 1, &p));
}

static void test_sub_cursor_keeps_file_offsets(void **state)
{
	(void)state;
	uint8_t b[24] = {0};
	tfs_put_be64(b + 8, 42);
	tfs_cursor c, sub;
	tfs_cursor_init(&c, b, sizeof(b));
	uint64_t v;
	assert_true(tfs_cursor_u64(&c, &v));
	assert_true(tfs_cursor_sub(&c, 10, &sub));
	assert_int_equal(tfs_cursor_offset(&sub), 8);
	assert_true(tfs_cursor_u64(&sub, &v));
	assert_int_equal(v, 42);
	assert_int_equal(tfs_cursor_offset(&sub), 16);
	assert_false(tfs_cursor_u64(&sub, &v)); /* 2 bytes left in the sub range */
	assert_int_equal(tfs_cursor_offset(&c), 18);
	assert_false(tfs_cursor_sub(&c, 7, &sub));
}

static void test_size_helpers_detect_overflow(void **state)
{
	(void)state;
	size_t r;
	assert_true(tfs_size_add(1, 2, &r));
	assert_int_equal(r, 3);
	assert_false(tfs_size_add(SIZE_MAX, 1, &r));
	assert_false(tfs_size_mul(SIZE_MAX / 2 + 1, 2, &r));
	assert_true(tfs_size_mul(8, 3, &r));
	assert_int_equal(r, 24);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_be64_reads_big_endian),
		cmocka_unit_test(test_bytes_rejects_huge_lengths),
		cmocka_unit_test(test_sub_cursor_keeps_file_offsets),
		cmocka_unit_test(test_size_helpers_detect_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
