/*
 * Unlocking the real SoftHSM 2.6.1 tokens of testdata/store, decrypting every
 * private value, and key check values compared with the CKA_CHECK_VALUE that
 * SoftHSM itself computed and stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfs/keys.h"
#include "tokenfs/store.h"

#define CKA_CLASS 0x0
#define CKA_VALUE 0x11
#define CKA_KEY_TYPE 0x100
#define CKA_CHECK_VALUE 0x90
#define CKO_SECRET_KEY 4
#define CKO_PRIVATE_KEY 3
#define CKK_AES 0x1f

static const struct {
	const char *label, *so, *user;
} pins[] = {
	{"demo", "so-secret-1", "user-pin-1"},
	{"second", "so-secret-2", "user-pin-2"},
};

static tfs_store *open_fixture(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/store", getenv("TFS_TESTDATA"));
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, path, NULL, &err), TFS_OK);
	return s;
}

static const char *pin_for(const tfs_token *tok, tfs_pin_role role)
{
	for (size_t i = 0; i < 2; i++)
		if (strcmp(pins[i].label, tfs_token_label(tok)) == 0)
			return role == TFS_PIN_SO ? pins[i].so : pins[i].user;
	fail_msg("unknown fixture token %s", tfs_token_label(tok));
	return NULL;
}

static tfs_token_key *unlock(const tfs_token *tok, tfs_pin_role role)
{
	const char *pin = pin_for(tok, role);
	tfs_token_key *k;
	tfs_error err;
	int rc = tfs_token_unlock(&k, tok, role, (const uint8_t *)pin, strlen(pin), &err);
	if (rc != TFS_OK)
		fail_msg("%s: %s", tfs_token_label(tok), err.what);
	return k;
}

static void test_both_pins_unwrap_the_same_cbc_key(void **state)
{
	(void)state;
	tfs_store *s = open_fixture();
	for (size_t t = 0; t < tfs_store_token_count(s); t++) {
		const tfs_token *tok = tfs_store_token(s, t);
		tfs_token_key *so = unlock(tok, TFS_PIN_SO), *user = unlock(tok, TFS_PIN_USER);
		assert_true(tfs_token_key_equal(so, user));
		assert_int_equal(tfs_token_key_layout(so), TFS_LAYOUT_CBC);
		assert_int_equal(tfs_token_key_layout(user), TFS_LAYOUT_CBC);
		tfs_token_key_free(so);
		tfs_token_key_free(user);
	}
	tfs_store_free(s);
}

static void test_wrong_pin_names_role_token_and_serial(void **state)
{
	(void)state;
	tfs_store *s = open_fixture();
	const tfs_token *tok = tfs_store_token(s, 0);
	tfs_token_key *k = NULL;
	tfs_error err;
	const char *bad = "not-the-pin";
	assert_int_equal(tfs_token_unlock(&k, tok, TFS_PIN_USER, (const uint8_t *)bad, strlen(bad), &err),
	                 TFS_E_WRONG_PIN);
	assert_null(k);
	char want[256];
	snprintf(want, sizeof(want), "wrong user PIN for token '%s' (serial %s)", tfs_token_label(tok),
	         tfs_token_serial(tok));
	assert_string_equal(err.what, want);
	assert_null(strstr(err.what, bad));
	/* The SO PIN is not the user PIN. */
	const char *so = pin_for(tok, TFS_PIN_SO);
	assert_int_equal(tfs_token_unlock(&k, tok, TFS_PIN_USER, (const uint8_t *)so, strlen(so), &err),
	                 TFS_E_WRONG_PIN);
	assert_non_null(strstr(err.what, "wrong user PIN"));
	tfs_store_free(s);
}

/* Every encrypted value of every private object decrypts; the KCV of every
 * AES key, private or not, equals the CKA_CHECK_VALUE SoftHSM stored. */
static void test_every_value_decrypts_and_kcvs_match_softhsm(void **state)
{
	(void)state;
	tfs_store *s = open_fixture();
	size_t decrypted = 0, kcvs = 0;
	for (size_t t = 0; t < tfs_store_token_count(s); t++) {
		const tfs_token *tok = tfs_store_token(s, t);
		tfs_token_key *key = unlock(tok, TFS_PIN_USER);
		for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
			tfs_object *obj;
			tfs_error err;
			assert_int_equal(tfs_token_load_object(&obj, tok, i, &err), TFS_OK);
			uint8_t *value = NULL, *check = NULL;
			size_t value_len = 0, check_len = 0;
			for (size_t k = 0; k < tfs_object_attr_count(obj); k++) {
				const tfs_attr *a = tfs_object_attr(obj, k);
				size_t n;
				const uint8_t *p = tfs_attr_bytes(a, &n);
				uint8_t *pt;
				size_t pt_len;
				if (tfs_object_attr_encrypted(obj, a)) {
					tfs_layout layout;
					if (tfs_token_key_decrypt(key, &pt, &pt_len, &layout, p, n, &err) != TFS_OK)
						fail_msg("%s attr 0x%llx: %s", tfs_token_object_file(tok, i),
						         (unsigned long long)tfs_attr_type(a), err.what);
					assert_int_equal(layout, TFS_LAYOUT_CBC);
					decrypted++;
				} else if (tfs_attr_kind(a) == TFS_KIND_BYTES) {
					pt = malloc(n ? n : 1);
					memcpy(pt, p, n);
					pt_len = n;
				} else {
					continue;
				}
				if (tfs_attr_type(a) == CKA_VALUE)
					value = pt, value_len = pt_len;
				else if (tfs_attr_type(a) == CKA_CHECK_VALUE)
					check = pt, check_len = pt_len;
				else
					tfs_secure_free(pt, pt_len);
			}
			const tfs_attr *cls = tfs_object_find(obj, CKA_CLASS);
			const tfs_attr *kt = tfs_object_find(obj, CKA_KEY_TYPE);
			if (tfs_attr_ulong(cls) == CKO_SECRET_KEY && tfs_attr_ulong(kt) == CKK_AES) {
				assert_non_null(value);
				assert_int_equal(check_len, 3);
				uint8_t kcv[3];
				assert_int_equal(tfs_key_check_value(kcv, CKK_AES, value, value_len, &err), TFS_OK);
				assert_memory_equal(kcv, check, 3);
				char fp[TFS_FINGERPRINT_LEN], want[16];
				assert_int_equal(tfs_key_fingerprint(fp, CKK_AES, CKA_VALUE, value, value_len, &err), TFS_OK);
				snprintf(want, sizeof(want), "kcv:%02x%02x%02x", check[0], check[1], check[2]);
				assert_string_equal(fp, want);
				assert_true(tfs_is_key_material(CKO_SECRET_KEY, CKA_VALUE));
				kcvs++;
			}
			tfs_secure_free(value, value_len);
			tfs_secure_free(check, check_len);
			tfs_object_free(obj);
		}
		tfs_token_key_free(key);
	}
	/* demo: 3 AES keys (one of them public); second: 1 (public). Dozens of
	 * encrypted values in all (testdata/store-inventory.tsv). */
	assert_int_equal(kcvs, 4);
	assert_true(decrypted >= 40);
	tfs_store_free(s);
}

static void test_key_material_rules(void **state)
{
	(void)state;
	assert_true(tfs_is_key_material(CKO_PRIVATE_KEY, 0x123)); /* CKA_PRIVATE_EXPONENT */
	assert_true(tfs_is_key_material(CKO_PRIVATE_KEY, CKA_VALUE)); /* EC private value */
	assert_false(tfs_is_key_material(CKO_PRIVATE_KEY, 0x120)); /* CKA_MODULUS is public */
	assert_false(tfs_is_key_material(1 /* CKO_CERTIFICATE */, CKA_VALUE));
	assert_false(tfs_is_key_material(0 /* CKO_DATA */, CKA_VALUE));
	char fp[TFS_FINGERPRINT_LEN];
	tfs_error err;
	/* Not an AES key: SHA-256("abc") starts ba7816bf8f01cfea. */
	assert_int_equal(tfs_key_fingerprint(fp, 0 /* CKK_RSA */, 0x123, (const uint8_t *)"abc", 3, &err), TFS_OK);
	assert_string_equal(fp, "sha256:ba7816bf8f01cfea");
}

/* An object built from (type, kind, ulong or bytes) triples. */
static tfs_object *build(const uint64_t (*attrs)[2], size_t n)
{
	uint8_t b[1024];
	size_t len = 0;
	for (int i = 7; i >= 0; i--)
		b[len++] = (uint8_t)(i == 0);
	for (size_t k = 0; k < n; k++) {
		uint64_t words[3] = {attrs[k][0], attrs[k][1] == 0 ? 2 : 3, attrs[k][1] == 0 ? 0 : 4};
		for (size_t w = 0; w < 3; w++)
			for (int i = 7; i >= 0; i--)
				b[len++] = (uint8_t)(words[w] >> (8 * i));
		if (attrs[k][1] != 0)
			for (int i = 0; i < 4; i++)
				b[len++] = 0xAA;
	}
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, b, len, &err), TFS_OK);
	return obj;
}

/* The class in a file is plaintext anyone with write access can change:
 * redaction must not trust it (a review found CKA_CLASS appended as
 * CKO_DATA to a secret key un-redacted its value). */
static void test_key_material_fails_closed(void **state)
{
	(void)state;
	/* {type, 0 = ulong 0 / 1 = 4-byte string}; CKO_DATA is 0. */
	static const struct {
		uint64_t attrs[4][2];
		size_t n;
		bool secret;
	} cases[] = {
		{{{0, 0}, {CKA_VALUE, 1}}, 2, false},                     /* a data object */
		{{{CKA_VALUE, 1}}, 1, true},                              /* no class at all */
		{{{0, 0}, {CKA_VALUE, 1}, {CKA_KEY_TYPE, 0}}, 3, true},   /* data, but a key type */
		{{{0, 0}, {CKA_VALUE, 1}, {0x103 /* CKA_SENSITIVE */, 0}}, 3, true},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		tfs_object *obj = build(cases[c].attrs, cases[c].n);
		const tfs_attr *v = tfs_object_find(obj, CKA_VALUE);
		assert_int_equal(tfs_object_attr_is_key_material(obj, v), cases[c].secret);
		tfs_object_free(obj);
	}
	/* A secret key whose CKA_CLASS is repeated as CKO_DATA stays secret. */
	uint8_t b[256];
	size_t len = 0;
	const uint64_t words[] = {1, CKA_CLASS, 2, CKO_SECRET_KEY, CKA_VALUE, 3, 4, 0, 2, 0};
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		for (int i = 7; i >= 0; i--)
			b[len++] = (uint8_t)(words[w] >> (8 * i));
		if (w == 6)
			for (int i = 0; i < 4; i++)
				b[len++] = 0xAA;
	}
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, b, len, &err), TFS_OK);
	assert_int_equal(tfs_attr_ulong(tfs_object_find(obj, CKA_CLASS)), 0); /* SoftHSM's view: data */
	assert_true(tfs_object_attr_is_key_material(obj, tfs_object_find(obj, CKA_VALUE)));
	tfs_object_free(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_pins_unwrap_the_same_cbc_key),
		cmocka_unit_test(test_wrong_pin_names_role_token_and_serial),
		cmocka_unit_test(test_every_value_decrypts_and_kcvs_match_softhsm),
		cmocka_unit_test(test_key_material_rules),
		cmocka_unit_test(test_key_material_fails_closed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
