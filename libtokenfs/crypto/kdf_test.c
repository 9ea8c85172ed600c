/* SoftHSM's KDF against vectors from Python's hashlib. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/testvec.h"
#include "tokenfs/crypto.h"

static void test_kdf_vectors(void **state)
{
	(void)state;
	tv_record *v;
	size_t n = tv_load("kdf.vec", &v);
	bool saw_1500 = false, saw_1755 = false, saw_empty = false, saw_255 = false;
	for (size_t i = 0; i < n; i++) {
		size_t pin_len, salt_len, key_len;
		uint8_t *pin = tv_hex(&v[i], "pin", &pin_len);
		uint8_t *salt = tv_hex(&v[i], "salt", &salt_len);
		uint8_t *want = tv_hex(&v[i], "key", &key_len);
		assert_int_equal(salt_len, TFS_SALT_LEN);
		assert_int_equal(key_len, TFS_KEY_LEN);
		saw_1500 |= salt[7] == 0x00;
		saw_1755 |= salt[7] == 0xff;
		saw_empty |= pin_len == 0;
		saw_255 |= pin_len == 255;

		uint8_t got[TFS_KEY_LEN];
		tfs_error err;
		assert_int_equal(tfs_kdf(got, pin, pin_len, salt, &err), TFS_OK);
		if (memcmp(got, want, TFS_KEY_LEN) != 0)
			fail_msg("KDF vector %s: master key differs", tv_get(&v[i], "name"));
		free(pin);
		free(salt);
		free(want);
	}
	assert_true(saw_1500 && saw_1755 && saw_empty && saw_255);
	tv_free(v, n);
}

static void test_kdf_empty_pin_may_be_null(void **state)
{
	(void)state;
	const uint8_t salt[TFS_SALT_LEN] = {1, 2, 3, 4, 5, 6, 7, 0};
	uint8_t a[TFS_KEY_LEN], b[TFS_KEY_LEN];
	const uint8_t nothing[1] = {0};
	tfs_error err;
	assert_int_equal(tfs_kdf(a, NULL, 0, salt, &err), TFS_OK);
	assert_int_equal(tfs_kdf(b, nothing, 0, salt, &err), TFS_OK);
	assert_memory_equal(a, b, TFS_KEY_LEN);
	assert_int_equal(tfs_kdf(a, NULL, 3, salt, &err), TFS_E_INVALID);
}

/* salt[7] sets the round count: one more round is one more SHA-256. */
static void test_kdf_salt7_counts_rounds(void **state)
{
	(void)state;
	uint8_t s0[TFS_SALT_LEN] = {9, 9, 9, 9, 9, 9, 9, 0};
	uint8_t s1[TFS_SALT_LEN] = {9, 9, 9, 9, 9, 9, 9, 1};
	uint8_t a[TFS_KEY_LEN], b[TFS_KEY_LEN];
	tfs_error err;
	assert_int_equal(tfs_kdf(a, (const uint8_t *)"pin", 3, s0, &err), TFS_OK);
	assert_int_equal(tfs_kdf(b, (const uint8_t *)"pin", 3, s1, &err), TFS_OK);
	assert_memory_not_equal(a, b, TFS_KEY_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kdf_vectors),
		cmocka_unit_test(test_kdf_empty_pin_may_be_null),
		cmocka_unit_test(test_kdf_salt7_counts_rounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
