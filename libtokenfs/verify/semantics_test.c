/*
 * The semantic checks on the real SoftHSM 2.6.1 tokens of testdata/store:
 * clean, they give no finding (SoftHSM's own check values, its RSA and EC
 * key pairs, the imported certificate and its keys); tampered, each defect
 * gives exactly its code on the right object. Tampering replaces a decrypted
 * value in the loaded model, or for ulongs patches a copy of the token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil/testutil.h"
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "verify/semantics_internal.h"

/* Objects of testdata/store-inventory.tsv. */
#define RSA_GEN_PUB "ace730d6-e555-7824-9527-5ab284f86b8c"
#define RSA_GEN_PRIV "96cf7e73-ba03-823c-ddd1-2bfa04ade725"
#define EC_PUB "3a94e0af-879c-7821-285a-e11b60007960"
#define EC_PRIV "a363862d-34a2-aa46-0f2c-d5a8dff2b4ff"
#define AES256 "026925d1-43b3-9b39-2a5f-9bd1c8e7bcea"
#define GENERIC "537ce682-4700-c1cd-1839-970182065837"
#define AES128_PLAIN "ca4ee17d-5f67-dfc0-21da-9179d47c3894"
#define IMP_PRIV "007a13f3-04cd-4e62-281a-50ba0aca0012"
#define IMP_PUB "434d6d32-8ef0-cbd2-4ecd-c757f2764e72"
#define IMP_CERT "46b43c79-1588-0c3c-b5b2-a1d459ca5226"
#define P384_PRIV "bde45e1f-20e6-8501-df56-60d915720a8e"

enum { MAX_TAMPER = 8 };

typedef struct fixture {
	tfs_store *store;
	tfs_token_key *key;
	tfs_findings findings;
	tfs_verify_summary summary;
	tfs_vtoken vt;
	tfs_sem_stats stats;
	struct {
		tfs_vvalue *v, saved;
	} tampered[MAX_TAMPER];
	size_t ntampered;
	uint8_t buf[MAX_TAMPER][2048]; /* tampered bytes live here */
} fixture;

static char *fixture_path(const char *rel)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", getenv("TFS_TESTDATA"), rel) > 0);
	return p;
}

/* Loads the token `label` of the store at path into the model, as verify.c
 * does; pin NULL: without a PIN. */
static fixture *load_at(const char *path, const char *label, const char *pin)
{
	fixture *f = calloc(1, sizeof(*f));
	tfs_error err;
	assert_non_null(f);
	assert_int_equal(tfs_store_open(&f->store, path, NULL, &err), TFS_OK);
	const tfs_token *tok = NULL;
	for (size_t t = 0; t < tfs_store_token_count(f->store); t++)
		if (strcmp(tfs_token_label(tfs_store_token(f->store, t)), label) == 0)
			tok = tfs_store_token(f->store, t);
	assert_non_null(tok);
	if (pin != NULL)
		assert_int_equal(tfs_token_unlock(&f->key, tok, TFS_PIN_USER, (const uint8_t *)pin,
		                                  strlen(pin), &err), TFS_OK);
	f->vt.findings = &f->findings;
	f->vt.summary = &f->summary;
	assert_int_equal(tfs_vtoken_load(&f->vt, f->store, tok, f->key, &err), TFS_OK);
	assert_int_equal(f->findings.count, 0);
	return f;
}

static fixture *load(const char *label, const char *pin)
{
	char *path = fixture_path("store");
	fixture *f = load_at(path, label, pin);
	free(path);
	return f;
}

static void unload(fixture *f)
{
	while (f->ntampered > 0) {
		f->ntampered--;
		*f->tampered[f->ntampered].v = f->tampered[f->ntampered].saved;
	}
	tfs_vtoken_free(&f->vt);
	tfs_findings_free(&f->findings);
	tfs_token_key_free(f->key);
	tfs_store_free(f->store);
	free(f);
}

static tfs_vobject *obj(fixture *f, const char *uuid)
{
	for (size_t i = 0; i < f->vt.nobjs; i++)
		if (strcmp(f->vt.objs[i].uuid, uuid) == 0)
			return &f->vt.objs[i];
	fail_msg("no object %s", uuid);
	return NULL;
}

static tfs_vvalue *value_of(tfs_vobject *o, uint64_t type)
{
	for (size_t k = tfs_object_attr_count(o->obj); k-- > 0;)
		if (tfs_attr_type(tfs_object_attr(o->obj, k)) == type)
			return &o->values[k];
	fail_msg("object %s has no attribute 0x%llx", o->uuid, (unsigned long long)type);
	return NULL;
}

/* The plaintext of an attribute, which the clean fixture must know. */
static const uint8_t *known(fixture *f, const char *uuid, uint64_t type, size_t *len)
{
	const uint8_t *p = tfs_vobject_bytes(obj(f, uuid), type, len);
	assert_non_null(p);
	return p;
}

/* Makes the model see `len` bytes at p (NULL: an unknown value) as the
 * attribute's plaintext; unload restores the original. */
static void set_value(fixture *f, const char *uuid, uint64_t type, const uint8_t *p, size_t len)
{
	assert_true(f->ntampered < MAX_TAMPER && len <= sizeof(f->buf[0]));
	tfs_vvalue *v = value_of(obj(f, uuid), type);
	f->tampered[f->ntampered].v = v;
	f->tampered[f->ntampered].saved = *v;
	uint8_t *copy = f->buf[f->ntampered++];
	if (p != NULL)
		memcpy(copy, p, len);
	v->p = p != NULL ? copy : NULL;
	v->len = p != NULL ? len : 0;
	v->owned = false;
	v->encrypted = p == NULL || v->encrypted;
}

/* A copy of the attribute's value with byte i (from the end when negative)
 * changed by delta. */
static void bump(fixture *f, const char *uuid, uint64_t type, long i, int delta)
{
	size_t len;
	const uint8_t *p = known(f, uuid, type, &len);
	uint8_t tmp[2048];
	assert_true(len <= sizeof(tmp));
	memcpy(tmp, p, len);
	size_t at = i < 0 ? len - (size_t)-i : (size_t)i;
	tmp[at] = (uint8_t)(tmp[at] + delta);
	set_value(f, uuid, type, tmp, len);
}

static void run(fixture *f)
{
	assert_int_equal(tfs_sem_run(&f->vt, &f->stats), TFS_OK);
}

static void assert_clean(fixture *f)
{
	for (size_t i = 0; i < f->findings.count; i++)
		print_message("unexpected: %s %s: %s\n", tfs_finding_code(&f->findings.items[i]),
		              tfs_finding_object(&f->findings.items[i]),
		              tfs_finding_message(&f->findings.items[i]));
	assert_int_equal(f->findings.count, 0);
}

/* Exactly one finding: code, severity error, on object uuid at attr
 * (TFS_VNO_ATTR: none), its message containing `text`. */
static void assert_only(fixture *f, const char *code, const char *uuid, uint64_t attr,
                        const char *text)
{
	if (f->findings.count != 1)
		assert_clean(f); /* prints them, then fails */
	const tfs_finding *x = &f->findings.items[0];
	uint64_t at;
	print_message("  %s: %s\n", tfs_finding_code(x), tfs_finding_message(x));
	assert_string_equal(tfs_finding_code(x), code);
	assert_int_equal(tfs_finding_severity(x), TFS_SEV_ERROR);
	assert_string_equal(tfs_finding_object(x), uuid);
	if (attr == TFS_VNO_ATTR) {
		assert_false(tfs_finding_attribute(x, &at));
	} else {
		assert_true(tfs_finding_attribute(x, &at));
		assert_int_equal(at, attr);
	}
	assert_non_null(strstr(tfs_finding_message(x), text));
}

/* ---- clean tokens ---- */

static void test_clean_demo_with_pin(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	run(f);
	assert_clean(f);
	/* 4 secret keys (AES x3, generic secret) and the certificate. */
	assert_int_equal(f->stats.check_values, 5);
	assert_int_equal(f->stats.value_lens, 4);
	assert_int_equal(f->stats.rsa_private, 2);
	assert_int_equal(f->stats.pairs, 3); /* RSA 01, EC 02, RSA 06 */
	assert_int_equal(f->stats.certs, 1);
	/* An RSA certificate openssl req made: read without d2i_X509. */
	assert_int_equal(f->stats.certs_without_x509, 1);
	assert_int_equal(f->stats.cert_keys, 1);
	assert_int_equal(f->stats.spkis, 0); /* SoftHSM left every one empty */
	unload(f);
}

static void test_clean_second_with_pin(void **state)
{
	(void)state;
	fixture *f = load("second", "user-pin-2");
	run(f);
	assert_clean(f);
	assert_int_equal(f->stats.pairs, 1); /* EC P-384 */
	assert_int_equal(f->stats.check_values, 1);
	unload(f);
}

/* Without a PIN the public parts are still checked and nothing encrypted
 * is taken for a mismatch. */
static void test_clean_demo_without_pin(void **state)
{
	(void)state;
	fixture *f = load("demo", NULL);
	run(f);
	assert_clean(f);
	assert_int_equal(f->stats.check_values, 2); /* aes128-public-plaintext, the certificate */
	assert_int_equal(f->stats.rsa_private, 0);
	assert_int_equal(f->stats.pairs, 0);
	assert_int_equal(f->stats.certs, 1);
	assert_int_equal(f->stats.cert_keys, 1); /* with the public key object 06 */
	unload(f);
}

/* ---- check values and lengths ---- */

static void test_aes_check_value_mismatch(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	set_value(f, AES256, CKA_CHECK_VALUE, (const uint8_t *)"\x01\x02\x03", 3);
	run(f);
	assert_only(f, "key.check-value-mismatch", AES256, CKA_CHECK_VALUE,
	            "CKA_CHECK_VALUE is 010203 but the key's check value is 22b92b");
	unload(f);
}

/* SoftHSM's generic-secret check value is SHA-1(CKA_VALUE)[0..3]: aae2d5. */
static void test_generic_secret_check_value_mismatch(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	bump(f, GENERIC, CKA_CHECK_VALUE, -1, 1);
	run(f);
	assert_only(f, "key.check-value-mismatch", GENERIC, CKA_CHECK_VALUE,
	            "CKA_CHECK_VALUE is aae2d6 but the key's check value is aae2d5 (SHA-1");
	unload(f);
}

static void test_altered_plaintext_key_without_pin(void **state)
{
	(void)state;
	fixture *f = load("demo", NULL);
	bump(f, AES128_PLAIN, CKA_VALUE, 0, 1);
	run(f);
	assert_only(f, "key.check-value-mismatch", AES128_PLAIN, CKA_CHECK_VALUE, "is c6a13b");
	unload(f);
}

static void test_empty_or_unknown_check_value_is_no_mismatch(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	set_value(f, AES256, CKA_CHECK_VALUE, (const uint8_t *)"", 0);
	/* As if the key had not decrypted: its wrong check value cannot be told. */
	set_value(f, GENERIC, CKA_VALUE, NULL, 0);
	set_value(f, GENERIC, CKA_CHECK_VALUE, (const uint8_t *)"\0\0\0", 3);
	run(f);
	assert_clean(f);
	assert_int_equal(f->stats.check_values, 3);
	unload(f);
}

/* CKA_VALUE_LEN is a ulong, so the tamper goes into a copy of the token. */
static void copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		char *src, *dst;
		assert_true(asprintf(&src, "%s/%s", from, e->d_name) > 0);
		assert_true(asprintf(&dst, "%s/%s", to, e->d_name) > 0);
		FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
		assert_true(in != NULL && out != NULL);
		char buf[4096];
		for (size_t n; (n = fread(buf, 1, sizeof(buf), in)) > 0;)
			assert_int_equal(fwrite(buf, 1, n, out), n);
		fclose(in);
		assert_int_equal(fclose(out), 0);
		free(src);
		free(dst);
	}
	closedir(d);
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		char *p;
		assert_true(asprintf(&p, "%s/%s", dir, e->d_name) > 0);
		assert_int_equal(unlink(p), 0);
		free(p);
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
}

static void test_value_len_mismatch(void **state)
{
	(void)state;
	fixture *clean = load("demo", NULL);
	const tfs_attr *a = tfs_vobject_attr(obj(clean, AES256), CKA_VALUE_LEN);
	assert_non_null(a);
	off_t at = (off_t)tfs_attr_value_offset(a);
	char *from = strdup(obj(clean, AES256)->path);
	*strrchr(from, '/') = '\0';
	unload(clean);

	char dir[] = "/tmp/tfs-semantics-XXXXXX";
	assert_non_null(mkdtemp(dir));
	copy_dir(from, dir);
	char *file;
	assert_true(asprintf(&file, "%s/%s.object", dir, AES256) > 0);
	int fd = open(file, O_WRONLY);
	assert_true(fd >= 0);
	static const uint8_t sixteen[8] = {0, 0, 0, 0, 0, 0, 0, 16};
	assert_int_equal(pwrite(fd, sixteen, 8, at), 8);
	assert_int_equal(close(fd), 0);

	fixture *f = load_at(dir, "demo", "user-pin-1");
	run(f);
	assert_only(f, "key.value-len-mismatch", AES256, CKA_VALUE_LEN,
	            "CKA_VALUE_LEN is 16 but CKA_VALUE holds 32 bytes");
	unload(f);
	remove_dir(dir);
	free(file);
	free(from);
}

/* ---- RSA ---- */

static void test_rsa_prime_changed(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	bump(f, IMP_PRIV, CKA_PRIME_1, -1, 2);
	run(f);
	assert_only(f, "rsa.inconsistent", IMP_PRIV, TFS_VNO_ATTR,
	            "n != p*q; e*d != 1 mod lcm(p-1, q-1); exponent1 != d mod (p-1); "
	            "coefficient != q^-1 mod p");
	unload(f);
}

static void test_rsa_crt_values_changed(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	bump(f, RSA_GEN_PRIV, CKA_EXPONENT_2, -1, 1);
	bump(f, RSA_GEN_PRIV, CKA_COEFFICIENT, 0, 1);
	run(f);
	assert_only(f, "rsa.inconsistent", RSA_GEN_PRIV, TFS_VNO_ATTR,
	            "components do not belong together: exponent2 != d mod (q-1); "
	            "coefficient != q^-1 mod p;");
	unload(f);
}

static void test_rsa_private_key_of_another_pair(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	set_value(f, IMP_PRIV, CKA_ID, (const uint8_t *)"\x01", 1);
	run(f);
	assert_only(f, "key.pair-mismatch", IMP_PRIV, CKA_ID,
	            "not the key of public key " RSA_GEN_PUB ", which has the same CKA_ID: "
	            "the moduli differ");
	assert_int_equal(f->stats.pairs, 2); /* 01 still pairs with its own; so does EC 02 */
	assert_int_equal(f->stats.cert_keys, 1);
	unload(f);
}

/* ---- EC ---- */

static void test_ec_private_key_changed(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	uint8_t one[32] = {0};
	one[31] = 1; /* d = 1: Q = G */
	set_value(f, EC_PRIV, CKA_VALUE, one, sizeof(one));
	run(f);
	assert_only(f, "key.pair-mismatch", EC_PRIV, CKA_ID, "the public points differ");
	unload(f);
}

/* The second token's P-384 private key, moved into demo's EC pair. */
static void test_ec_private_key_of_another_curve(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1"), *g = load("second", "user-pin-2");
	size_t len, plen;
	const uint8_t *d = known(g, P384_PRIV, CKA_VALUE, &len);
	const uint8_t *params = known(g, P384_PRIV, CKA_EC_PARAMS, &plen);
	set_value(f, EC_PRIV, CKA_VALUE, d, len);
	set_value(f, EC_PRIV, CKA_EC_PARAMS, params, plen);
	run(f);
	assert_only(f, "key.pair-mismatch", EC_PRIV, CKA_ID, "their CKA_EC_PARAMS differ");
	unload(f);
	unload(g);
}

static void test_ec_point_raw_or_wrapped(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	size_t len;
	const uint8_t *p = known(f, EC_PUB, CKA_EC_POINT, &len);
	assert_int_equal(len, 67); /* 04 41 || 04 X Y */
	set_value(f, EC_PUB, CKA_EC_POINT, p + 2, len - 2);
	run(f);
	assert_clean(f);
	assert_int_equal(f->stats.pairs, 3);
	unload(f);
}

static void test_ec_point_off_curve(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	bump(f, EC_PUB, CKA_EC_POINT, -1, 1);
	run(f);
	assert_only(f, "key.pair-mismatch", EC_PRIV, CKA_ID,
	            "CKA_EC_POINT is not a point on prime256v1");
	unload(f);
}

/* ---- certificates ---- */

static void set_name(fixture *f, uint64_t type, const char *cn)
{
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	assert_non_null(name);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	                                            (const unsigned char *)"tokenfs", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)cn, -1, -1, 0), 1);
	int len = i2d_X509_NAME(name, &der);
	assert_true(len > 0);
	set_value(f, IMP_CERT, type, der, (size_t)len);
	OPENSSL_free(der);
	X509_NAME_free(name);
}

static void test_cert_subject_differs(void **state)
{
	(void)state;
	for (int with_pin = 0; with_pin < 2; with_pin++) {
		fixture *f = load("demo", with_pin ? "user-pin-1" : NULL);
		set_name(f, CKA_SUBJECT, "someone else");
		run(f);
		assert_only(f, "cert.attribute-mismatch", IMP_CERT, CKA_SUBJECT,
		            "CKA_SUBJECT is \"/O=tokenfs/CN=someone else\" but the certificate's "
		            "subject is \"/O=tokenfs/CN=tokenfs test certificate\"");
		unload(f);
	}
}

/* The same text in another string type is another DER Name. */
static void test_cert_issuer_encoded_differently(void **state)
{
	(void)state;
	fixture *f = load("demo", NULL);
	size_t len;
	uint8_t tmp[256];
	const uint8_t *p = known(f, IMP_CERT, CKA_ISSUER, &len);
	memcpy(tmp, p, len);
	assert_int_equal(tmp[11], 0x0c); /* O's UTF8String */
	tmp[11] = 0x13;                  /* ... as a PrintableString */
	set_value(f, IMP_CERT, CKA_ISSUER, tmp, len);
	run(f);
	assert_only(f, "cert.attribute-mismatch", IMP_CERT, CKA_ISSUER,
	            "(same text, different encoding)");
	unload(f);
}

static void test_cert_serial_differs(void **state)
{
	(void)state;
	fixture *f = load("demo", NULL);
	set_value(f, IMP_CERT, CKA_SERIAL_NUMBER, (const uint8_t *)"\x02\x02\x10\x02", 4);
	run(f);
	assert_only(f, "cert.attribute-mismatch", IMP_CERT, CKA_SERIAL_NUMBER,
	            "CKA_SERIAL_NUMBER is 02021002 but the certificate's serial number is 02021001");
	unload(f);
}

static void test_cert_check_value_differs(void **state)
{
	(void)state;
	fixture *f = load("demo", NULL);
	set_value(f, IMP_CERT, CKA_CHECK_VALUE, (const uint8_t *)"\x8c\x80\xec", 3);
	run(f);
	assert_only(f, "cert.check-value-mismatch", IMP_CERT, CKA_CHECK_VALUE,
	            "is 8c80ec but the certificate's check value is 8c80eb");
	unload(f);
}

static void test_cert_paired_with_another_key(void **state)
{
	(void)state;
	for (int with_pin = 0; with_pin < 2; with_pin++) {
		fixture *f = load("demo", with_pin ? "user-pin-1" : NULL);
		set_value(f, IMP_CERT, CKA_ID, (const uint8_t *)"\x01", 1);
		run(f);
		assert_only(f, "cert.key-mismatch", IMP_CERT, CKA_ID, "the moduli differ");
		assert_int_equal(f->stats.pairs, with_pin ? 3 : 0);
		unload(f);
	}
}

static void test_cert_malformed(void **state)
{
	(void)state;
	fixture *f = load("demo", NULL);
	size_t len;
	const uint8_t *p = known(f, IMP_CERT, CKA_VALUE, &len);
	set_value(f, IMP_CERT, CKA_VALUE, p, len - 1);
	run(f);
	assert_only(f, "cert.malformed", IMP_CERT, CKA_VALUE, "is not a DER X.509 certificate");
	unload(f);

	f = load("demo", NULL);
	uint8_t tmp[1024];
	p = known(f, IMP_CERT, CKA_VALUE, &len);
	memcpy(tmp, p, len);
	tmp[len] = 0;
	set_value(f, IMP_CERT, CKA_VALUE, tmp, len + 1);
	run(f);
	assert_only(f, "cert.malformed", IMP_CERT, CKA_VALUE, "has bytes after");
	unload(f);
}

/* ---- CKA_PUBLIC_KEY_INFO ---- */

static uint8_t *read_file(const char *rel, size_t *len)
{
	char *path = fixture_path(rel);
	uint8_t *buf = tu_read_file(path, len);
	free(path);
	return buf;
}

/* An SPKI of the demo EC key, built by OpenSSL from its public point: the
 * point compressed or not, the curve named or explicit. */
static int ec_spki(fixture *f, const char *form, const char *encoding, unsigned char **der)
{
	size_t len;
	const uint8_t *point = known(f, EC_PUB, CKA_EC_POINT, &len);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(point + 2), len - 2),
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
		                                 (char *)form, 0),
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, (char *)encoding, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	int n = i2d_PUBKEY(pkey, der);
	assert_true(n > 0);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return n;
}

static void test_public_key_info_matches(void **state)
{
	(void)state;
	fixture *f = load("demo", "user-pin-1");
	size_t len;
	uint8_t *rsa = read_file("certs/imported-rsa-pub.der", &len);
	set_value(f, IMP_PUB, CKA_PUBLIC_KEY_INFO, rsa, len);
	set_value(f, IMP_PRIV, CKA_PUBLIC_KEY_INFO, rsa, len);
	set_value(f, IMP_CERT, CKA_PUBLIC_KEY_INFO, rsa, len);
	unsigned char *full = NULL, *compressed = NULL, *explicit = NULL;
	int n = ec_spki(f, "uncompressed", "named_curve", &full);
	int m = ec_spki(f, "compressed", "named_curve", &compressed);
	int x = ec_spki(f, "uncompressed", "explicit", &explicit);
	assert_true(m < n && n < x);
	set_value(f, EC_PUB, CKA_PUBLIC_KEY_INFO, full, (size_t)n);
	set_value(f, EC_PRIV, CKA_PUBLIC_KEY_INFO, compressed, (size_t)m);
	run(f);
	assert_clean(f);
	assert_int_equal(f->stats.spkis, 5);
	unload(f);

	f = load("demo", NULL);
	set_value(f, EC_PUB, CKA_PUBLIC_KEY_INFO, explicit, (size_t)x);
	run(f);
	assert_clean(f);
	assert_int_equal(f->stats.spkis, 1);
	OPENSSL_free(full);
	OPENSSL_free(compressed);
	OPENSSL_free(explicit);
	free(rsa);
	unload(f);
}

static void test_public_key_info_of_another_key(void **state)
{
	(void)state;
	fixture *f = load("demo", NULL);
	size_t len;
	uint8_t *rsa = read_file("certs/imported-rsa-pub.der", &len);
	set_value(f, RSA_GEN_PUB, CKA_PUBLIC_KEY_INFO, rsa, len);
	run(f);
	assert_only(f, "key.public-key-info-mismatch", RSA_GEN_PUB, CKA_PUBLIC_KEY_INFO,
	            "the moduli differ");
	unload(f);

	f = load("demo", "user-pin-1");
	set_value(f, EC_PRIV, CKA_PUBLIC_KEY_INFO, rsa, len);
	run(f);
	assert_only(f, "key.public-key-info-mismatch", EC_PRIV, CKA_PUBLIC_KEY_INFO,
	            "one is a CKK_EC key, the other a CKK_RSA key");
	unload(f);

	f = load("demo", NULL);
	set_value(f, IMP_PUB, CKA_PUBLIC_KEY_INFO, rsa, len - 1);
	run(f);
	assert_only(f, "key.public-key-info-mismatch", IMP_PUB, CKA_PUBLIC_KEY_INFO,
	            "is not one DER SubjectPublicKeyInfo");
	unload(f);
	free(rsa);
}

/* Hostile values in every attribute the checks read: never a crash, a
 * leak (sanitizer build) or an error; findings are whatever they are. */
static void test_garbage_is_handled(void **state)
{
	(void)state;
	static const struct {
		const char *uuid;
		uint64_t type;
	} targets[] = {
		{EC_PUB, CKA_EC_POINT},       {EC_PUB, CKA_EC_PARAMS},   {EC_PRIV, CKA_VALUE},
		{EC_PRIV, CKA_EC_PARAMS},     {IMP_PRIV, CKA_PRIME_1},   {IMP_PRIV, CKA_PRIME_2},
		{IMP_PRIV, CKA_MODULUS},      {IMP_PUB, CKA_MODULUS},    {IMP_CERT, CKA_VALUE},
		{IMP_CERT, CKA_SUBJECT},      {IMP_CERT, CKA_ISSUER},    {IMP_CERT, CKA_SERIAL_NUMBER},
		{IMP_PUB, CKA_PUBLIC_KEY_INFO}, {EC_PRIV, CKA_PUBLIC_KEY_INFO}, {AES256, CKA_VALUE},
		{GENERIC, CKA_CHECK_VALUE},   {IMP_CERT, CKA_ID},        {EC_PRIV, CKA_ID},
	};
	static uint8_t ff[600], big_ec[97];
	memset(ff, 0xff, sizeof(ff));
	memcpy(big_ec, "\x04", 1);
	const struct {
		const uint8_t *p;
		size_t len;
	} garbage[] = {
		{(const uint8_t *)"", 0},         {(const uint8_t *)"\0", 1},
		{(const uint8_t *)"\x04\x00", 2}, {(const uint8_t *)"\x30\x80\x00\x00", 4},
		{(const uint8_t *)"\x06\x03\x2b\x81\x04", 5}, {ff, sizeof(ff)}, {big_ec, sizeof(big_ec)},
	};
	for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++)
		for (size_t g = 0; g < sizeof(garbage) / sizeof(garbage[0]); g++) {
			fixture *f = load("demo", "user-pin-1");
			set_value(f, targets[t].uuid, targets[t].type, garbage[g].p, garbage[g].len);
			run(f);
			unload(f);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_demo_with_pin),
		cmocka_unit_test(test_clean_second_with_pin),
		cmocka_unit_test(test_clean_demo_without_pin),
		cmocka_unit_test(test_aes_check_value_mismatch),
		cmocka_unit_test(test_generic_secret_check_value_mismatch),
		cmocka_unit_test(test_altered_plaintext_key_without_pin),
		cmocka_unit_test(test_empty_or_unknown_check_value_is_no_mismatch),
		cmocka_unit_test(test_value_len_mismatch),
		cmocka_unit_test(test_rsa_prime_changed),
		cmocka_unit_test(test_rsa_crt_values_changed),
		cmocka_unit_test(test_rsa_private_key_of_another_pair),
		cmocka_unit_test(test_ec_private_key_changed),
		cmocka_unit_test(test_ec_private_key_of_another_curve),
		cmocka_unit_test(test_ec_point_raw_or_wrapped),
		cmocka_unit_test(test_ec_point_off_curve),
		cmocka_unit_test(test_cert_subject_differs),
		cmocka_unit_test(test_cert_issuer_encoded_differently),
		cmocka_unit_test(test_cert_serial_differs),
		cmocka_unit_test(test_cert_check_value_differs),
		cmocka_unit_test(test_cert_paired_with_another_key),
		cmocka_unit_test(test_cert_malformed),
		cmocka_unit_test(test_public_key_info_matches),
		cmocka_unit_test(test_public_key_info_of_another_key),
		cmocka_unit_test(test_garbage_is_handled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
