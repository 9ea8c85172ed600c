/*
 * What no openssl command can check: the attribute dispatcher, CK_DATE,
 * caps and arguments, the getters, concurrent first use (pthread_once),
 * the choice between a DER-wrapped and a bare EC point, PKCS#11 curve
 * names, and the Names OpenSSL refuses to load (tokenfs shows them by the
 * rules of tokenfs/decode.h, written out here by hand).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "der/der_internal.h"
#include "der/der_testutil.h"
#include "tokenfs/decode.h"

static tfs_decoded *must(int (*fn)(tfs_decoded **, const uint8_t *, size_t, tfs_error *),
                         const void *p, size_t n)
{
	tfs_decoded *d = NULL;
	tfs_error err;
	if (fn(&d, p, n, &err) != TFS_OK)
		fail_msg("decode failed: %s", err.what);
	return d;
}

static tfs_decoded *must_file(int (*fn)(tfs_decoded **, const uint8_t *, size_t, tfs_error *),
                              const char *rel)
{
	char *path = dt_path(rel);
	size_t len;
	uint8_t *der = dt_read(path, &len);
	tfs_decoded *d = must(fn, der, len);
	free(der);
	free(path);
	return d;
}

static void expect_fail(int (*fn)(tfs_decoded **, const uint8_t *, size_t, tfs_error *),
                        const void *p, size_t n, int code, uint64_t off, const char *text)
{
	tfs_decoded *d = (tfs_decoded *)1;
	tfs_error err;
	tfs_error_clear(&err);
	int rc = fn(&d, p, n, &err);
	if (rc != code || err.offset != off || strstr(err.what, text) == NULL)
		fail_msg("got %d at %llu \"%s\"; expected %d at %llu \"...%s...\"", rc,
		         (unsigned long long)err.offset, err.what, code, (unsigned long long)off, text);
	assert_null(d);
}

/* ---- the dispatcher ---- */

static void test_dispatch(void **state)
{
	(void)state;
	static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	static const uint8_t serial[] = {0x02, 0x02, 0x10, 0x01};
	static const uint8_t name[] = {0x30, 0x00};
	static const uint8_t mod[] = {0x00, 0xc1, 0x02};
	static const struct {
		uint64_t type, cls, sub;
		const void *v;
		size_t len;
		const char *kind;
	} cases[] = {
		{0x180, 2, 3, oid_p256, sizeof(oid_p256), "ec_params"},
		{0x101, 1, 0, name, sizeof(name), "name"},
		{0x81, 1, 0, name, sizeof(name), "name"},
		{0x101, 3, 0, name, sizeof(name), "name"},
		{0x82, 1, 0, serial, sizeof(serial), "integer"},
		{0x120, 2, 0, mod, sizeof(mod), "modulus"},
		{0x110, 2, 0, "20260131", 8, "date"},
		{0x111, 4, 0x1f, "20261231", 8, "date"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tfs_decoded *d = NULL;
		tfs_error err;
		assert_int_equal(tfs_decode_attribute(&d, cases[i].type, cases[i].cls, cases[i].sub,
		                                      cases[i].v, cases[i].len, &err), TFS_OK);
		assert_string_equal(tfs_decoded_kind(d), cases[i].kind);
		tfs_decoded_free(d);
		/* Empty: nothing to decode. */
		d = (tfs_decoded *)1;
		assert_int_equal(tfs_decode_attribute(&d, cases[i].type, cases[i].cls, cases[i].sub,
		                                      cases[i].v, 0, &err), TFS_E_NOTFOUND);
		assert_null(d);
	}

	/* CKA_VALUE is a certificate only for CKO_CERTIFICATE + CKC_X_509. */
	char *path = dt_path("certs/imported-rsa-cert.der");
	size_t len;
	uint8_t *cert = dt_read(path, &len);
	tfs_decoded *d = NULL;
	tfs_error err;
	assert_int_equal(tfs_decode_attribute(&d, 0x11, 1, 0, cert, len, &err), TFS_OK);
	assert_string_equal(tfs_decoded_kind(d), "certificate");
	tfs_decoded_free(d);
	assert_int_equal(tfs_decode_attribute(&d, 0x11, 1, 1, cert, len, &err), TFS_E_NOTFOUND);
	assert_int_equal(tfs_decode_attribute(&d, 0x11, 0, TFS_DECODE_NO_TYPE, cert, len, &err),
	                 TFS_E_NOTFOUND);
	assert_int_equal(tfs_decode_attribute(&d, 0x11, 4, 0x1f, cert, len, &err), TFS_E_NOTFOUND);
	/* CKA_LABEL, CKA_ID, CKA_PUBLIC_EXPONENT: no decoder. */
	assert_int_equal(tfs_decode_attribute(&d, 0x3, 1, 0, cert, len, &err), TFS_E_NOTFOUND);
	assert_int_equal(tfs_decode_attribute(&d, 0x102, 1, 0, cert, len, &err), TFS_E_NOTFOUND);
	assert_int_equal(tfs_decode_attribute(&d, 0x122, 2, 0, mod, sizeof(mod), &err), TFS_E_NOTFOUND);
	assert_null(d);
	free(cert);
	free(path);
}

/* ---- EC points: key-type hints and the DER-or-bare choice ---- */

static void test_ec_point_choice(void **state)
{
	(void)state;
	uint8_t raw[57], wrapped[59];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(0x10 + i);
	wrapped[0] = 0x04;
	wrapped[1] = 32;
	memcpy(wrapped + 2, raw, 32);
	static const struct {
		uint64_t key_type;
		size_t len;
		bool wrap;
		const char *curve;
	} cases[] = {
		{0x40, 32, true, "Ed25519"}, {0x41, 32, false, "X25519"},
		{0x40, 57, false, "Ed448"},  {0x41, 56, false, "X448"},
		{TFS_DECODE_NO_TYPE, 32, true, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tfs_decoded *d = NULL;
		tfs_error err;
		const uint8_t *v = cases[i].wrap ? wrapped : raw;
		size_t n = cases[i].wrap ? cases[i].len + 2 : cases[i].len;
		if (tfs_decode_attribute(&d, 0x181, 2, cases[i].key_type, v, n, &err) != TFS_OK)
			fail_msg("case %zu: %s", i, err.what);
		const char *curve = tfs_decoded_get(d, "curve");
		if (cases[i].curve == NULL)
			assert_null(curve);
		else
			assert_string_equal(curve, cases[i].curve);
		assert_string_equal(tfs_decoded_get(d, "form"), "raw");
		assert_string_equal(tfs_decoded_get(d, "der_wrapped"), cases[i].wrap ? "true" : "false");
		tfs_decoded_free(d);
	}
	/* A CKK_EC key holds no raw 32-byte key. */
	tfs_decoded *d = NULL;
	tfs_error err;
	assert_int_equal(tfs_decode_attribute(&d, 0x181, 2, 3, raw, 32, &err), TFS_E_FORMAT);

	/* A bare uncompressed P-256 point whose second byte is 63 parses as a
	 * DER OCTET STRING of a 31-byte-coordinate "point": the standard
	 * coordinate length of the bare reading wins. */
	uint8_t p256[65];
	p256[0] = 0x04;
	p256[1] = 63;
	p256[2] = 0x04;
	for (size_t i = 3; i < sizeof(p256); i++)
		p256[i] = (uint8_t)i;
	d = must(tfs_decode_ec_point, p256, sizeof(p256));
	assert_string_equal(tfs_decoded_get(d, "der_wrapped"), "false");
	assert_string_equal(tfs_decoded_get(d, "field_bits"), "256");
	assert_string_equal(tfs_decoded_get(d, "length"), "65");
	tfs_decoded_free(d);
	/* A hybrid point (0x06) of P-384, bare. */
	uint8_t hybrid[97] = {0x06};
	d = must(tfs_decode_ec_point, hybrid, sizeof(hybrid));
	assert_string_equal(tfs_decoded_get(d, "form"), "hybrid");
	assert_string_equal(tfs_decoded_get(d, "field_bits"), "384");
	tfs_decoded_free(d);
}

/* ---- curves OpenSSL has no EC group for ---- */

static void test_curve_names(void **state)
{
	(void)state;
	static const struct {
		const char *file, *encoding, *curve;
		const char *bits;
	} cases[] = {
		{"der/ecparams-oid-ed25519.der", "namedCurve", "Ed25519", "255"},
		{"der/ecparams-oid-x448.der", "namedCurve", "X448", "448"},
		{"der/ecparams-name-edwards25519.der", "curveName", "Ed25519", "255"},
		{"der/ecparams-name-edwards448.der", "curveName", "Ed448", "448"},
		{"der/ecparams-name-curve25519.der", "curveName", "X25519", "255"},
		{"der/ecparams-name-curve448.der", "curveName", "X448", "448"},
		/* PKCS#11 3.0 names no Weierstrass curve this way. */
		{"der/ecparams-name-secp256r1.der", "curveName", "unknown", NULL},
		{"der/ecparams-implicitlyca.der", "implicitlyCA", "implicitlyCA", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tfs_decoded *d = must_file(tfs_decode_ec_params, cases[i].file);
		assert_string_equal(tfs_decoded_get(d, "encoding"), cases[i].encoding);
		assert_string_equal(tfs_decoded_get(d, "curve"), cases[i].curve);
		const char *bits = tfs_decoded_get(d, "field_bits");
		if (cases[i].bits == NULL)
			assert_null(bits);
		else
			assert_string_equal(bits, cases[i].bits);
		assert_true(strlen(tfs_decoded_summary(d)) > 0);
		tfs_decoded_free(d);
	}
}

/* ---- Names OpenSSL will not load ---- */

static void test_names_openssl_refuses(void **state)
{
	(void)state;
	/* Reverse order; INTEGER 42, OCTET STRING 78ff, BOOLEAN TRUE and
	 * GeneralString are no text types: "#" + their DER; VisibleString and
	 * UTCTime are (one byte a character). */
	tfs_decoded *d = must_file(tfs_decode_name, "der/name-name-nonstring-subject.der");
	assert_string_equal(tfs_decoded_get(d, "name"),
	                    "pseudonym=260101000000Z,title=Mr. X,L=#1B0767656E6572616C,"
	                    "OU=#0101FF,O=#040278FF,CN=#02012A");
	assert_string_equal(tfs_decoded_get(d, "rdn_count"), "6");
	tfs_decoded_free(d);
	/* "bad " C3 "( lone " FF " overlong " C0 AF " end": each byte that
	 * is not part of valid UTF-8 as \XX, as plain RFC2253 prints it. */
	d = must_file(tfs_decode_name, "der/name-name-invalid-utf8-subject.der");
	assert_string_equal(tfs_decoded_get(d, "name"), "CN=bad \\C3( lone \\FF overlong \\C0\\AF end");
	tfs_decoded_free(d);
	d = must_file(tfs_decode_certificate, "der/cert-name-invalid-utf8.der");
	assert_string_equal(tfs_decoded_get(d, "subject"), "CN=bad \\C3( lone \\FF overlong \\C0\\AF end");
	assert_string_equal(tfs_decoded_get(d, "self_issued"), "true");
	tfs_decoded_free(d);
}

/* The damaged key inside a certificate: the rest is still decoded. */
static void test_cert_bad_key(void **state)
{
	(void)state;
	tfs_decoded *d = must_file(tfs_decode_certificate, "der/cert-badkey.der");
	assert_string_equal(tfs_decoded_get(d, "public_key_type"), "RSA");
	assert_non_null(strstr(tfs_decoded_get(d, "public_key_error"), "RSAPublicKey"));
	assert_null(tfs_decoded_get(d, "public_key_bits"));
	assert_non_null(strstr(tfs_decoded_summary(d), "unreadable"));
	tfs_decoded_free(d);
}

/* ---- CK_DATE and the raw modulus ---- */

static void test_date(void **state)
{
	(void)state;
	tfs_decoded *d = must(tfs_decode_date, "20261122", 8);
	assert_string_equal(tfs_decoded_get(d, "date"), "2026-11-22");
	assert_string_equal(tfs_decoded_summary(d), "2026-11-22");
	tfs_decoded_free(d);
	d = must(tfs_decode_date, "20240229", 8);
	assert_string_equal(tfs_decoded_get(d, "date"), "2024-02-29");
	tfs_decoded_free(d);
	d = must(tfs_decode_date, "20000229", 8);
	tfs_decoded_free(d);
	expect_fail(tfs_decode_date, "20230229", 8, TFS_E_FORMAT, 6, "day 29 is not 01 to 28");
	expect_fail(tfs_decode_date, "19000229", 8, TFS_E_FORMAT, 6, "day 29");
	expect_fail(tfs_decode_date, "20261301", 8, TFS_E_FORMAT, 4, "month 13");
	expect_fail(tfs_decode_date, "20260100", 8, TFS_E_FORMAT, 6, "day 00");
	expect_fail(tfs_decode_date, "2026-1-2", 8, TFS_E_FORMAT, 4, "byte 0x2d is not an ASCII digit");
	expect_fail(tfs_decode_date, "        ", 8, TFS_E_FORMAT, 0, "byte 0x20");
	expect_fail(tfs_decode_date, "2026112", 7, TFS_E_FORMAT, 0, "7 bytes; 8 (YYYYMMDD) expected");
	expect_fail(tfs_decode_date, "", 0, TFS_E_NOTFOUND, TFS_NO_OFFSET, "empty");
}

static void test_modulus(void **state)
{
	(void)state;
	static const struct {
		uint8_t v[4];
		size_t n;
		const char *bits;
	} cases[] = {
		{{0x00, 0x00, 0x01}, 3, "1"},
		{{0x80}, 1, "8"},
		{{0x00, 0x7f, 0xff}, 3, "15"},
		{{0x00, 0x00}, 2, "0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tfs_decoded *d = must(tfs_decode_modulus_bits, cases[i].v, cases[i].n);
		assert_string_equal(tfs_decoded_get(d, "bits"), cases[i].bits);
		tfs_decoded_free(d);
	}
}

/* ---- arguments, caps, getters ---- */

static void test_arguments(void **state)
{
	(void)state;
	int (*const all[])(tfs_decoded **, const uint8_t *, size_t, tfs_error *) = {
		tfs_decode_certificate, tfs_decode_name, tfs_decode_integer,
		tfs_decode_public_key_info, tfs_decode_ec_params, tfs_decode_ec_point,
		tfs_decode_modulus_bits, tfs_decode_date,
	};
	size_t big = TFS_DECODE_MAX_SIZE + 1;
	uint8_t *huge = calloc(1, big);
	assert_non_null(huge);
	huge[0] = 0x30;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		expect_fail(all[i], "\x30", 0, TFS_E_NOTFOUND, TFS_NO_OFFSET, "empty");
		expect_fail(all[i], NULL, 4, TFS_E_INVALID, TFS_NO_OFFSET, "NULL");
		expect_fail(all[i], huge, big, TFS_E_LIMIT, TFS_NO_OFFSET, "more than");
	}
	free(huge);
	/* A NULL error pointer is allowed. */
	tfs_decoded *d = (tfs_decoded *)1;
	assert_int_equal(tfs_decode_integer(&d, (const uint8_t *)"\x05\x00", 2, NULL), TFS_E_FORMAT);
	assert_null(d);
	tfs_decoded_free(NULL);
}

static void test_getters(void **state)
{
	(void)state;
	tfs_decoded *d = must_file(tfs_decode_integer, "der/int-18446744073709551616.der");
	assert_string_equal(tfs_decoded_kind(d), "integer");
	assert_int_equal(tfs_decoded_count(d), 2);
	assert_string_equal(tfs_decoded_name(d, 0), "hex");
	assert_int_equal(tfs_decoded_type_of(d, 0), TFS_DECODED_STRING);
	/* 2^64 does not fit in int64_t: a string. */
	assert_int_equal(tfs_decoded_type_of(d, 1), TFS_DECODED_STRING);
	int64_t v = 0;
	assert_false(tfs_decoded_int(d, 1, &v));
	assert_null(tfs_decoded_name(d, 2));
	assert_null(tfs_decoded_value(d, 2));
	assert_int_equal(tfs_decoded_type_of(d, 2), 0);
	assert_null(tfs_decoded_get(d, "nope"));
	tfs_decoded_free(d);
	d = must_file(tfs_decode_integer, "der/int--9223372036854775808.der");
	assert_true(tfs_decoded_int(d, 1, &v));
	assert_true(v == INT64_MIN);
	tfs_decoded_free(d);
}

/* ---- first use from several threads at once ---- */

static const uint8_t *thread_cert;
static size_t thread_cert_len;

static void *decode_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		tfs_decoded *d = NULL;
		tfs_error err;
		if (tfs_decode_certificate(&d, thread_cert, thread_cert_len, &err) != TFS_OK)
			return (void *)1;
		tfs_decoded_free(d);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	char *path = dt_path("der/cert-rsa3072-utf8.der");
	uint8_t *cert = dt_read(path, &thread_cert_len);
	thread_cert = cert;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, decode_many, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
	free(cert);
	free(path);
}

/* ---- a key as bytes (spki_key.c) ---- */

static void expect_rsa(const uint8_t *key, size_t len, int rc, const uint8_t *n, size_t n_len,
                       const uint8_t *e, size_t e_len)
{
	const uint8_t *gn = NULL, *ge = NULL;
	size_t gn_len = 0, ge_len = 0;
	assert_int_equal(tfs_der_rsa_public(key, len, &gn, &gn_len, &ge, &ge_len), rc);
	if (rc != TFS_OK)
		return;
	assert_int_equal(gn_len, n_len);
	assert_memory_equal(gn, n, n_len);
	assert_int_equal(ge_len, e_len);
	assert_memory_equal(ge, e, e_len);
	/* Borrowed: inside the input. */
	assert_true(gn > key && gn + gn_len <= key + len);
}

static void test_rsa_public(void **state)
{
	(void)state;
	static const uint8_t ok[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03};
	static const uint8_t high[] = {0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x03};
	static const uint8_t padded[] = {0x30, 0x07, 0x02, 0x02, 0x00, 0x05, 0x02, 0x01, 0x03};
	static const uint8_t negative[] = {0x30, 0x06, 0x02, 0x01, 0x85, 0x02, 0x01, 0x03};
	static const uint8_t zero[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x00};
	static const uint8_t trailing[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03, 0x00};
	static const uint8_t one_int[] = {0x30, 0x03, 0x02, 0x01, 0x05};
	static const uint8_t ber_len[] = {0x30, 0x81, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03};
	expect_rsa(ok, sizeof(ok), TFS_OK, (const uint8_t *)"\x05", 1, (const uint8_t *)"\x03", 1);
	expect_rsa(high, sizeof(high), TFS_OK, (const uint8_t *)"\x80", 1, (const uint8_t *)"\x03",
	           1);
	expect_rsa(padded, sizeof(padded), TFS_E_FORMAT, NULL, 0, NULL, 0);
	expect_rsa(negative, sizeof(negative), TFS_E_FORMAT, NULL, 0, NULL, 0);
	expect_rsa(zero, sizeof(zero), TFS_E_FORMAT, NULL, 0, NULL, 0);
	expect_rsa(trailing, sizeof(trailing), TFS_E_FORMAT, NULL, 0, NULL, 0);
	expect_rsa(one_int, sizeof(one_int), TFS_E_FORMAT, NULL, 0, NULL, 0);
	expect_rsa(ber_len, sizeof(ber_len), TFS_E_FORMAT, NULL, 0, NULL, 0);
	expect_rsa(ok, sizeof(ok) - 1, TFS_E_FORMAT, NULL, 0, NULL, 0);
	expect_rsa(ok, 0, TFS_E_FORMAT, NULL, 0, NULL, 0);
}

static void test_spki_key(void **state)
{
	(void)state;
	/* EC on prime256v1, a 3-byte "point"; Ed25519 without parameters. */
	static const uint8_t ec[] = {
		0x30, 0x1a, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
		0x03, 0x03, 0x00, 0x04, 0x01};
	static const uint8_t ed[] = {0x30, 0x0a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
	                             0x03, 0x01, 0x00};
	asn1_node node = NULL;
	tfs_der_spki_key k;
	assert_int_equal(tfs_der_decode(&node, "SubjectPublicKeyInfo", 0x30, ec, sizeof(ec), 0,
	                                "t", NULL), TFS_OK);
	assert_int_equal(tfs_der_spki_key_get(&k, node, "", ec, sizeof(ec)), TFS_OK);
	assert_string_equal(k.oid, "1.2.840.10045.2.1");
	assert_int_equal(k.alg_start, 2);
	assert_int_equal(k.alg_len, 21);
	assert_ptr_equal(k.params, ec + 13);
	assert_int_equal(k.params_len, 10);
	assert_int_equal(k.bits_start, 23);
	assert_int_equal(k.bits_len, 5);
	assert_int_equal(k.unused_bits, 0);
	assert_ptr_equal(k.key, ec + 26);
	assert_int_equal(k.key_len, 2);
	tfs_der_free(&node);

	assert_int_equal(tfs_der_decode(&node, "SubjectPublicKeyInfo", 0x30, ed, sizeof(ed), 0,
	                                "t", NULL), TFS_OK);
	assert_int_equal(tfs_der_spki_key_get(&k, node, "", ed, sizeof(ed)), TFS_OK);
	assert_string_equal(k.oid, "1.3.101.112");
	assert_null(k.params);
	assert_int_equal(k.params_len, 0);
	assert_int_equal(k.key_len, 0);
	tfs_der_free(&node);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First, so that the module is loaded from four threads at once. */
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_ec_point_choice),
		cmocka_unit_test(test_curve_names),
		cmocka_unit_test(test_names_openssl_refuses),
		cmocka_unit_test(test_cert_bad_key),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_modulus),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_rsa_public),
		cmocka_unit_test(test_spki_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
