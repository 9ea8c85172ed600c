/*
 * PIN blobs: vectors made with hashlib and openssl enc (CBC) or the Python
 * GCM of scripts/make-crypto-vectors.py, wrap/unwrap round trips, and what
 * every single-bit change of a blob does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/testvec.h"
#include "tokenfs/crypto.h"

static const uint8_t zero_key[TFS_KEY_LEN];

static int expect_code(const char *s)
{
	if (strcmp(s, "ok") == 0)
		return TFS_OK;
	if (strcmp(s, "wrong_pin") == 0)
		return TFS_E_WRONG_PIN;
	if (strcmp(s, "damaged") == 0)
		return TFS_E_DAMAGED;
	fail_msg("unknown expect=%s", s);
	return 1;
}

static tfs_layout layout_of(const char *s)
{
	return strcmp(s, "gcm") == 0 ? TFS_LAYOUT_GCM : TFS_LAYOUT_CBC;
}

/* The message must not quote the PIN or any key bytes. */
static void assert_no_secret(const tfs_error *err, const uint8_t *pin, size_t pin_len,
                             const uint8_t *key)
{
	size_t n = strlen(err->what);
	for (size_t i = 0; pin_len >= 4 && i + pin_len <= n; i++)
		if (memcmp(err->what + i, pin, pin_len) == 0)
			fail_msg("error message quotes the PIN: %s", err->what);
	if (key == NULL)
		return;
	/* Any 4 consecutive key bytes, in hex, would be a leak. */
	char hex[2 * TFS_KEY_LEN + 1];
	for (size_t i = 0; i < TFS_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	for (size_t i = 0; i + 8 <= 2 * TFS_KEY_LEN; i += 2) {
		char part[9];
		memcpy(part, hex + i, 8);
		part[8] = '\0';
		if (strstr(err->what, part) != NULL)
			fail_msg("error message quotes key bytes: %s", err->what);
	}
}

static void test_pinblob_vectors(void **state)
{
	(void)state;
	tv_record *v;
	size_t n = tv_load("pinblob.vec", &v);
	size_t ok = 0, wrong = 0, damaged = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = tv_get(&v[i], "name");
		size_t pin_len, blob_len, key_len = 0;
		uint8_t *pin = tv_hex(&v[i], "pin", &pin_len);
		uint8_t *blob = tv_hex(&v[i], "blob", &blob_len);
		int want = expect_code(tv_get(&v[i], "expect"));

		uint8_t key[TFS_KEY_LEN];
		memset(key, 0xaa, sizeof(key));
		tfs_layout layout = TFS_LAYOUT_GCM;
		tfs_error err;
		tfs_error_clear(&err);
		int rc = tfs_pinblob_unwrap(key, &layout, blob, blob_len, pin, pin_len, &err);
		if (rc != want)
			fail_msg("vector %s: got %s, want %s (%s)", name, tfs_status_name(rc),
			         tfs_status_name(want), err.what);
		if (want == TFS_OK) {
			uint8_t *wkey = tv_hex(&v[i], "key", &key_len);
			assert_int_equal(key_len, TFS_KEY_LEN);
			if (memcmp(key, wkey, TFS_KEY_LEN) != 0)
				fail_msg("vector %s: token key differs", name);
			assert_int_equal(layout, layout_of(tv_get(&v[i], "layout")));
			free(wkey);
			ok++;
		} else {
			/* A failed unwrap leaves no partial key behind. */
			assert_memory_equal(key, zero_key, TFS_KEY_LEN);
			assert_int_equal(layout, TFS_LAYOUT_NONE);
			assert_int_equal(err.code, rc);
			assert_true(err.what[0] != '\0' && strchr(err.what, '\n') == NULL);
			assert_no_secret(&err, pin, pin_len, NULL);
			if (rc == TFS_E_WRONG_PIN)
				wrong++;
			else
				damaged++;
		}
		free(pin);
		free(blob);
	}
	assert_true(ok >= 8 && wrong >= 4 && damaged >= 4);
	tv_free(v, n);
}

static void test_wrap_unwrap_round_trip(void **state)
{
	(void)state;
	const tfs_layout layouts[] = {TFS_LAYOUT_CBC, TFS_LAYOUT_GCM};
	const char *pins[] = {"", "1", "user-pin-1", "\xff\xfe non-ascii \x01"};
	uint8_t tk[TFS_KEY_LEN];
	for (size_t i = 0; i < TFS_KEY_LEN; i++)
		tk[i] = (uint8_t)(i * 7 + 3);
	for (size_t l = 0; l < 2; l++) {
		for (size_t p = 0; p < 4; p++) {
			const uint8_t *pin = (const uint8_t *)pins[p];
			size_t pin_len = strlen(pins[p]);
			uint8_t a[TFS_PIN_BLOB_LEN], b[TFS_PIN_BLOB_LEN], key[TFS_KEY_LEN];
			tfs_layout got;
			tfs_error err;
			assert_int_equal(tfs_pinblob_wrap(a, layouts[l], tk, pin, pin_len, &err), TFS_OK);
			assert_int_equal(tfs_pinblob_wrap(b, layouts[l], tk, pin, pin_len, &err), TFS_OK);
			/* Fresh salt and IV each time. */
			assert_memory_not_equal(a, b, TFS_SALT_LEN + TFS_IV_LEN);
			assert_int_equal(tfs_pinblob_unwrap(key, &got, a, sizeof(a), pin, pin_len, &err),
			                 TFS_OK);
			assert_int_equal(got, layouts[l]);
			assert_memory_equal(key, tk, TFS_KEY_LEN);
			assert_int_equal(tfs_pinblob_unwrap(key, &got, a, sizeof(a),
			                                    (const uint8_t *)"nope", 4, &err),
			                 TFS_E_WRONG_PIN);
		}
	}
	uint8_t blob[TFS_PIN_BLOB_LEN];
	tfs_error err;
	assert_int_equal(tfs_pinblob_wrap(blob, TFS_LAYOUT_NONE, tk, NULL, 0, &err), TFS_E_INVALID);
}

/* The vector blob named `name`, and its PIN. */
static void load_blob(const char *name, uint8_t blob[TFS_PIN_BLOB_LEN], uint8_t **pin,
                      size_t *pin_len, uint8_t key[TFS_KEY_LEN])
{
	tv_record *v;
	size_t n = tv_load("pinblob.vec", &v);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tv_get(&v[i], "name"), name) != 0)
			continue;
		size_t len;
		uint8_t *b = tv_hex(&v[i], "blob", &len);
		assert_int_equal(len, TFS_PIN_BLOB_LEN);
		memcpy(blob, b, TFS_PIN_BLOB_LEN);
		free(b);
		b = tv_hex(&v[i], "key", &len);
		memcpy(key, b, TFS_KEY_LEN);
		free(b);
		*pin = tv_hex(&v[i], "pin", pin_len);
		tv_free(v, n);
		return;
	}
	fail_msg("no vector %s", name);
}

/*
 * GCM: every single-bit change anywhere in the blob (salt, IV, ciphertext,
 * tag) must fail, and fail as a wrong PIN: a tag mismatch carries no other
 * evidence.
 */
static void test_gcm_blob_every_bit_flip_fails(void **state)
{
	(void)state;
	uint8_t blob[TFS_PIN_BLOB_LEN], tk[TFS_KEY_LEN], key[TFS_KEY_LEN];
	uint8_t *pin;
	size_t pin_len;
	load_blob("gcm-1byte", blob, &pin, &pin_len, tk);
	for (size_t bit = 0; bit < 8 * TFS_PIN_BLOB_LEN; bit++) {
		blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		tfs_layout got;
		tfs_error err;
		int rc = tfs_pinblob_unwrap(key, &got, blob, sizeof(blob), pin, pin_len, &err);
		if (rc != TFS_E_WRONG_PIN)
			fail_msg("GCM blob, bit %zu flipped: got %s", bit, tfs_status_name(rc));
		blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(pin);
}

/*
 * CBC: what each single-bit change does, by region. This pins down the
 * limits documented in pinblob.c: CBC has no integrity, so some changes
 * unwrap "successfully" to a different key.
 */
static void test_cbc_blob_bit_flips_by_region(void **state)
{
	(void)state;
	uint8_t blob[TFS_PIN_BLOB_LEN], tk[TFS_KEY_LEN], key[TFS_KEY_LEN];
	uint8_t *pin;
	size_t pin_len;
	load_blob("cbc-1byte", blob, &pin, &pin_len, tk);
	for (size_t bit = 0; bit < 8 * TFS_PIN_BLOB_LEN; bit++) {
		size_t byte = bit / 8;
		blob[byte] ^= (uint8_t)(1u << (bit % 8));
		tfs_layout got;
		tfs_error err;
		int rc = tfs_pinblob_unwrap(key, &got, blob, sizeof(blob), pin, pin_len, &err);
		int want;
		if (byte < 8)
			want = TFS_E_WRONG_PIN;  /* salt: another master key */
		else if (byte < 8 + 3)
			want = TFS_E_DAMAGED;    /* IV over the magic */
		else if (byte < 24)
			want = TFS_OK;           /* IV over key bytes 0..12: undetectable */
		else if (byte < 40)
			want = TFS_E_DAMAGED;    /* block 1 scrambled: magic lost */
		else if (byte < 43)
			want = TFS_OK;           /* flips key bytes 29..31: undetectable */
		else
			want = TFS_E_WRONG_PIN;  /* flips or scrambles the padding */
		if (rc != want)
			fail_msg("CBC blob, bit %zu flipped: got %s, want %s", bit,
			         tfs_status_name(rc), tfs_status_name(want));
		if (rc != TFS_OK)
			assert_no_secret(&err, pin, pin_len, tk);
		if (rc == TFS_OK) {
			assert_int_equal(got, TFS_LAYOUT_CBC);
			assert_memory_not_equal(key, tk, TFS_KEY_LEN);
		}
		blob[byte] ^= (uint8_t)(1u << (bit % 8));
	}
	free(pin);
}

static void test_unwrap_bad_lengths(void **state)
{
	(void)state;
	uint8_t blob[TFS_PIN_BLOB_LEN + 1] = {0};
	uint8_t key[TFS_KEY_LEN];
	tfs_layout got;
	tfs_error err;
	for (size_t len = 0; len <= sizeof(blob); len++) {
		if (len == TFS_PIN_BLOB_LEN)
			continue;
		assert_int_equal(tfs_pinblob_unwrap(key, &got, blob, len, NULL, 0, &err),
		                 TFS_E_DAMAGED);
		assert_true(strstr(err.what, "72") != NULL);
	}
	assert_int_equal(tfs_pinblob_unwrap(key, &got, NULL, 72, NULL, 0, &err), TFS_E_INVALID);
}

static void test_layout_names(void **state)
{
	(void)state;
	assert_string_equal(tfs_layout_name(TFS_LAYOUT_CBC), "cbc");
	assert_string_equal(tfs_layout_name(TFS_LAYOUT_GCM), "gcm");
	assert_string_equal(tfs_layout_name(TFS_LAYOUT_NONE), "none");
	assert_string_equal(tfs_layout_name((tfs_layout)42), "none");
	tfs_secure_free(NULL, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pinblob_vectors),
		cmocka_unit_test(test_wrap_unwrap_round_trip),
		cmocka_unit_test(test_gcm_blob_every_bit_flip_fails),
		cmocka_unit_test(test_cbc_blob_bit_flips_by_region),
		cmocka_unit_test(test_unwrap_bad_lengths),
		cmocka_unit_test(test_layout_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
