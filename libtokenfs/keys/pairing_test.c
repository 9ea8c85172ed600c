/*
 * The one pairing model (tokenfs/pairing.h) on crafted inputs, with keys
 * made by OpenSSL: what dump lists as keys and what verify-integrity
 * reports as mismatches (tfs_pairing_checks) come from the same
 * comparison, so every case checks both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <p11-kit/pkcs11.h>

#include "tokenfs/pairing.h"

static const uint8_t P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

typedef struct ec_key {
	uint8_t d[32];
	uint8_t point[2 + 65];  /* DER OCTET STRING around the uncompressed point */
	uint8_t compressed[33];
} ec_key;

static void make_ec(ec_key *k)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(pkey);
	BIGNUM *d = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
	assert_int_equal(BN_bn2binpad(d, k->d, 32), 32);
	size_t len = 0;
	k->point[0] = 0x04;
	k->point[1] = 65;
	assert_int_equal(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, k->point + 2,
	                                                 65, &len), 1);
	assert_int_equal(len, 65);
	k->compressed[0] = (uint8_t)(0x02 | (k->point[2 + 64] & 1));
	memcpy(k->compressed + 1, k->point + 3, 32);
	BN_clear_free(d);
	EVP_PKEY_free(pkey);
}

static tfs_pair_input ec_private(const char *uuid, const uint8_t *id, size_t id_len, const ec_key *k)
{
	return (tfs_pair_input){.uuid = uuid, .object_class = CKO_PRIVATE_KEY, .key_type = CKK_EC,
	                        .value_len = UINT64_MAX, .id = id, .id_len = id_len,
	                        .ec_params = P256, .ec_params_len = sizeof(P256),
	                        .ec_value = k != NULL ? k->d : NULL, .ec_value_len = k ? 32 : 0};
}

static tfs_pair_input ec_public(const char *uuid, const uint8_t *id, size_t id_len,
                                const uint8_t *point, size_t point_len)
{
	return (tfs_pair_input){.uuid = uuid, .object_class = CKO_PUBLIC_KEY, .key_type = CKK_EC,
	                        .value_len = UINT64_MAX, .id = id, .id_len = id_len,
	                        .ec_params = P256, .ec_params_len = sizeof(P256),
	                        .ec_point = point, .ec_point_len = point_len};
}

/* Whether the keys list priv and pub as one key. */
static bool paired(tfs_pairing *p, const char *priv, const char *pub)
{
	size_t n;
	const tfs_key_pair *k = tfs_pairing_keys(p, &n);
	assert_non_null(k);
	for (size_t i = 0; i < n; i++)
		if (k[i].private_uuid != NULL && strcmp(k[i].private_uuid, priv) == 0)
			return k[i].public_uuid != NULL && strcmp(k[i].public_uuid, pub) == 0;
	return false;
}

static const tfs_pair_check *check_of(tfs_pairing *p, const char *uuid)
{
	size_t n;
	const tfs_pair_check *c = tfs_pairing_checks(p, &n);
	assert_non_null(c);
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].uuid, uuid) == 0)
			return &c[i];
	fail_msg("no check of %s", uuid);
	return NULL;
}

static void add(tfs_pairing *p, tfs_pair_input in)
{
	char buf[256];
	assert_int_equal(tfs_pairing_add(p, &in, buf, sizeof(buf)), 0);
}

/* d*G is derived: the private key pairs with its own public key in either
 * point encoding, and with another key's public key not at all, though
 * curve and CKA_ID agree (dump used to pair those by curve alone). */
static void test_ec_private_key_by_its_point(void **state)
{
	(void)state;
	ec_key a, b;
	make_ec(&a);
	make_ec(&b);
	static const uint8_t id[] = {1};
	for (int form = 0; form < 3; form++) {
		tfs_pairing *p = tfs_pairing_new();
		assert_non_null(p);
		add(p, ec_private("priv", id, 1, &a));
		if (form == 0)
			add(p, ec_public("pub", id, 1, a.point, sizeof(a.point)));
		else if (form == 1)
			add(p, ec_public("pub", id, 1, a.compressed, sizeof(a.compressed)));
		else
			add(p, ec_public("pub", id, 1, b.point, sizeof(b.point)));
		const tfs_pair_check *c = check_of(p, "priv");
		if (form < 2) {
			assert_true(paired(p, "priv", "pub"));
			assert_int_equal(c->verdict, TFS_PAIR_MATCH);
		} else {
			assert_false(paired(p, "priv", "pub"));
			assert_int_equal(c->verdict, TFS_PAIR_MISMATCH);
			assert_string_equal(c->other_uuid, "pub");
			assert_string_equal(c->why, "the public points differ");
		}
		tfs_pairing_free(p);
	}
}

/* Without its value (no PIN) an EC private key is listed with the public
 * key of its ID and curve, and is neither a match nor a mismatch. */
static void test_ec_private_key_without_value(void **state)
{
	(void)state;
	ec_key a;
	make_ec(&a);
	static const uint8_t id[] = {2};
	tfs_pairing *p = tfs_pairing_new();
	add(p, ec_private("priv", id, 1, NULL));
	add(p, ec_public("pub", id, 1, a.point, sizeof(a.point)));
	assert_true(paired(p, "priv", "pub"));
	assert_int_equal(check_of(p, "priv")->verdict, TFS_PAIR_UNKNOWN);
	tfs_pairing_free(p);
}

/* IDs are compared whole: 40-byte IDs that differ in the last byte (past
 * what the hex shown holds) are two keys. */
static void test_long_ids_compared_whole(void **state)
{
	(void)state;
	ec_key a;
	make_ec(&a);
	uint8_t id1[40], id2[40];
	memset(id1, 0xaa, sizeof(id1));
	memset(id2, 0xaa, sizeof(id2));
	id2[39] = 0xab;
	tfs_pairing *p = tfs_pairing_new();
	add(p, ec_private("priv", id1, sizeof(id1), NULL));
	add(p, ec_public("pub", id2, sizeof(id2), a.point, sizeof(a.point)));
	assert_false(paired(p, "priv", "pub"));
	size_t n;
	assert_non_null(tfs_pairing_keys(p, &n));
	assert_int_equal(n, 2);
	assert_int_equal(check_of(p, "priv")->verdict, TFS_PAIR_UNKNOWN);
	tfs_pairing_free(p);
}

/* RSA: modulus and public exponent; a defect the caller found is the
 * mismatch's reason; differing key types say so. */
static void test_rsa_and_reasons(void **state)
{
	(void)state;
	uint8_t n[256], e3[] = {3}, e65537[] = {1, 0, 1};
	memset(n, 0xc5, sizeof(n));
	static const uint8_t id[] = {3};
	tfs_pair_input priv = {.uuid = "priv", .object_class = CKO_PRIVATE_KEY, .key_type = CKK_RSA,
	                       .value_len = UINT64_MAX, .id = id, .id_len = 1, .modulus = n,
	                       .modulus_len = sizeof(n), .exponent = e3, .exponent_len = 1};
	tfs_pair_input pub = priv;
	pub.uuid = "pub";
	pub.object_class = CKO_PUBLIC_KEY;
	pub.exponent = e65537;
	pub.exponent_len = 3;

	tfs_pairing *p = tfs_pairing_new();
	add(p, priv);
	add(p, pub);
	assert_false(paired(p, "priv", "pub"));
	assert_string_equal(check_of(p, "priv")->why, "the public exponents differ");
	tfs_pairing_free(p);

	/* A leading zero byte is the same modulus. */
	uint8_t n0[257] = {0};
	memcpy(n0 + 1, n, sizeof(n));
	pub.exponent = e3;
	pub.exponent_len = 1;
	pub.modulus = n0;
	pub.modulus_len = sizeof(n0);
	p = tfs_pairing_new();
	add(p, priv);
	add(p, pub);
	assert_true(paired(p, "priv", "pub"));
	assert_int_equal(check_of(p, "priv")->verdict, TFS_PAIR_MATCH);
	tfs_pairing_free(p);

	pub.defect = "CKA_MODULUS is even";
	p = tfs_pairing_new();
	add(p, priv);
	add(p, pub);
	assert_false(paired(p, "priv", "pub"));
	assert_string_equal(check_of(p, "priv")->why, "CKA_MODULUS is even");
	tfs_pairing_free(p);

	ec_key a;
	make_ec(&a);
	p = tfs_pairing_new();
	add(p, priv);
	add(p, ec_public("pub", id, 1, a.point, sizeof(a.point)));
	assert_string_equal(check_of(p, "priv")->why, "CKA_KEY_TYPE is CKK_RSA, the other's CKK_EC");
	tfs_pairing_free(p);
}

/* Matching one is enough: a stray public key reusing the ID does not make
 * a pair wrong, and the right one is listed. */
static void test_stray_public_key(void **state)
{
	(void)state;
	ec_key a, b;
	make_ec(&a);
	make_ec(&b);
	static const uint8_t id[] = {4};
	tfs_pairing *p = tfs_pairing_new();
	add(p, ec_public("stray", id, 1, b.point, sizeof(b.point)));
	add(p, ec_private("priv", id, 1, &a));
	add(p, ec_public("pub", id, 1, a.point, sizeof(a.point)));
	assert_true(paired(p, "priv", "pub"));
	assert_int_equal(check_of(p, "priv")->verdict, TFS_PAIR_MATCH);
	tfs_pairing_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ec_private_key_by_its_point),
		cmocka_unit_test(test_ec_private_key_without_value),
		cmocka_unit_test(test_long_ids_compared_whole),
		cmocka_unit_test(test_rsa_and_reasons),
		cmocka_unit_test(test_stray_public_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
