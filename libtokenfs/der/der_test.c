/*
 * Every decoded field against OpenSSL's reading of the same bytes: the
 * openssl command run now (x509, pkey, ec/ecparam, rsa, asn1parse), and
 * OpenSSL's library where no command prints a value (dotted OIDs,
 * EVP_PKEY_get_bits). Inputs: testdata/certs, testdata/der
 * (scripts/make-der-fixtures.sh) and the public objects of the SoftHSM
 * store in testdata/store.
 *
 * Names are compared with `-nameopt RFC2253,-esc_msb`, the output
 * tokenfs/decode.h promises to equal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "der/der_testutil.h"
#include "tokenfs/decode.h"
#include "tokenfs/store.h"

#define NAMEOPT "RFC2253,-esc_msb"

/* Decodes and fails the test with the error when it does not succeed. */
static tfs_decoded *must(int (*fn)(tfs_decoded **, const uint8_t *, size_t, tfs_error *),
                         const uint8_t *p, size_t n, const char *what)
{
	tfs_decoded *d = NULL;
	tfs_error err;
	tfs_error_clear(&err);
	if (fn(&d, p, n, &err) != TFS_OK) {
		char m[1200];
		fail_msg("%s: %s", what, tfs_error_format(&err, m, sizeof(m)));
	}
	assert_non_null(d);
	return d;
}

static void expect_int(const tfs_decoded *d, const char *name, long long want, const char *what)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", want);
	dt_expect(d, name, buf, what);
	for (size_t i = 0; i < tfs_decoded_count(d); i++)
		if (strcmp(tfs_decoded_name(d, i), name) == 0)
			assert_int_equal(tfs_decoded_type_of(d, i), TFS_DECODED_INTEGER);
}

/* The decimal of an openssl hex integer ("-81", "1001"). */
static char *hex_to_dec(const char *hex)
{
	BIGNUM *bn = NULL;
	assert_true(BN_hex2bn(&bn, hex) > 0);
	char *s = BN_bn2dec(bn);
	char *r = strdup(s);
	OPENSSL_free(s);
	BN_free(bn);
	return r;
}

/* A field whose value must fit in int64_t exactly when typed INTEGER. */
static void expect_decimal(const tfs_decoded *d, const char *name, const char *dec,
                           const char *what)
{
	dt_expect(d, name, dec, what);
	errno = 0;
	char *end;
	(void)strtoll(dec, &end, 10);
	bool fits = errno == 0 && *end == '\0';
	for (size_t i = 0; i < tfs_decoded_count(d); i++)
		if (strcmp(tfs_decoded_name(d, i), name) == 0)
			assert_int_equal(tfs_decoded_type_of(d, i),
			                 fits ? TFS_DECODED_INTEGER : TFS_DECODED_STRING);
}

/* "Public-Key: (2048 bit)" anywhere in openssl -text output; -1 if none. */
static long text_bits(const char *text)
{
	const char *p = strstr(text, "Public-Key: (");
	if (p == NULL)
		p = strstr(text, "EC-Parameters: (");
	if (p == NULL)
		return -1;
	return strtol(strchr(p, '(') + 1, NULL, 10);
}

/* The first word after "prefix", up to a blank. */
static char *text_word(const char *text, const char *prefix)
{
	char *s = dt_after(text, prefix);
	if (s != NULL)
		s[strcspn(s, " ")] = '\0';
	return s;
}

static char *obj_dotted(const ASN1_OBJECT *o)
{
	char buf[256];
	assert_true(OBJ_obj2txt(buf, sizeof(buf), o, 1) > 0);
	return strdup(buf);
}

static char *obj_name(const ASN1_OBJECT *o)
{
	char buf[256];
	assert_true(OBJ_obj2txt(buf, sizeof(buf), o, 0) > 0);
	return strdup(buf);
}

/* The "pub:" block of openssl -text output as hex digits, or NULL. */
static char *text_pub(const char *text)
{
	const char *p = strstr(text, "pub:\n");
	if (p == NULL)
		return NULL;
	p += 5;
	size_t n = 0;
	/* The block is the following lines indented by four blanks. */
	while (strncmp(p + n, "    ", 4) == 0) {
		const char *e = strchr(p + n, '\n');
		n = e ? (size_t)(e - p) + 1 : strlen(p);
	}
	char *block = strndup(p, n);
	char *hex = dt_hex_digits(block);
	free(block);
	return hex;
}

/* ---- EC points ---- */

/* A point: decoded bare and inside a DER OCTET STRING, both must give the
 * same point, with the form its first byte says and field_bits. */
static void check_point(const uint8_t *pt, size_t n, const char *openssl_pub, long bits,
                        const char *what)
{
	char *hex = dt_hex(pt, n);
	if (openssl_pub != NULL && strcmp(hex, openssl_pub) != 0)
		fail_msg("%s: public point %s, openssl pub: %s", what, hex, openssl_pub);
	uint8_t *wrapped = malloc(n + 4);
	assert_non_null(wrapped);
	size_t h = 0;
	wrapped[h++] = 0x04;
	if (n < 128) {
		wrapped[h++] = (uint8_t)n;
	} else {
		wrapped[h++] = 0x81;
		wrapped[h++] = (uint8_t)n;
	}
	memcpy(wrapped + h, pt, n);
	for (int w = 0; w < 2; w++) {
		tfs_decoded *d = w ? must(tfs_decode_ec_point, wrapped, h + n, what)
		                   : must(tfs_decode_ec_point, pt, n, what);
		dt_expect(d, "point", hex, what);
		dt_expect(d, "der_wrapped", w ? "true" : "false", what);
		const char *form = pt[0] == 0x04 ? "uncompressed" : (pt[0] == 0x02 || pt[0] == 0x03)
		                   ? "compressed" : NULL;
		if (n == 32 || n == 56 || n == 57)
			form = "raw";
		dt_expect(d, "form", form, what);
		if (bits > 0)
			expect_int(d, "field_bits", bits, what);
		tfs_decoded_free(d);
	}
	free(wrapped);
	free(hex);
}

/* ---- public keys ---- */

static void check_spki_bytes(const uint8_t *der, size_t len, const char *what)
{
	char *path = dt_write_temp(der, len);
	tfs_decoded *d = must(tfs_decode_public_key_info, der, len, what);
	char *text = dt_run("openssl pkey -pubin -inform DER -in '%s' -noout -text", path);
	if (text == NULL)
		fail_msg("%s: openssl pkey cannot read it", what);

	/* OpenSSL's library: algorithm OID and name, key size, the key bits. */
	const unsigned char *p = der;
	X509_PUBKEY *xpk = d2i_X509_PUBKEY(NULL, &p, (long)len);
	assert_non_null(xpk);
	ASN1_OBJECT *alg;
	const unsigned char *pk;
	int pk_len;
	assert_true(X509_PUBKEY_get0_param(&alg, &pk, &pk_len, NULL, xpk) == 1);
	char *dotted = obj_dotted(alg), *name = obj_name(alg);
	dt_expect(d, "algorithm_oid", dotted, what);
	dt_expect(d, "algorithm", name, what);
	EVP_PKEY *pkey = X509_PUBKEY_get0(xpk);
	assert_non_null(pkey);
	expect_int(d, "bits", EVP_PKEY_get_bits(pkey), what);

	long bits = text_bits(text);
	if (bits > 0)
		expect_int(d, "bits", bits, what);
	char *exp = text_word(text, "Exponent: ");
	dt_expect(d, "exponent", exp, what);
	char *oid = dt_after(text, "ASN1 OID: "), *nist = dt_after(text, "NIST CURVE: ");
	dt_expect(d, "curve_openssl", oid, what);
	if (nist != NULL)
		dt_expect(d, "curve", nist, what);
	else if (oid != NULL)
		dt_expect(d, "curve", oid, what);
	else if (strstr(text, "Field Type: ") != NULL)
		dt_expect(d, "curve", "explicit parameters", what);
	/* "ED25519 Public-Key:", "RSA-PSS Public-Key: (2048 bit)" name the type. */
	const char *type = tfs_decoded_get(d, "type");
	if (strstr(text, " Public-Key:") != NULL && strncmp(text, "Public-Key", 10) != 0) {
		char *first = strndup(text, strcspn(text, " "));
		if (strcasecmp(first, type) != 0)
			fail_msg("%s: type %s, openssl %s", what, type, first);
		free(first);
	}

	if (strcmp(type, "RSA") == 0) {
		/* The same modulus, as CKA_MODULUS holds it (raw, here with two
		 * leading zero bytes), must give the same size. */
		char *m = dt_run("openssl rsa -pubin -inform DER -in '%s' -noout -modulus", path);
		assert_non_null(m);
		char *mhex = dt_hex_digits(strchr(m, '=') + 1);
		size_t mlen = strlen(mhex) / 2 + 2;
		uint8_t *mod = calloc(1, mlen);
		for (size_t i = 0; i < mlen - 2; i++)
			sscanf(mhex + 2 * i, "%2hhx", &mod[i + 2]);
		tfs_decoded *md = must(tfs_decode_modulus_bits, mod, mlen, what);
		expect_int(md, "bits", bits, what);
		tfs_decoded_free(md);
		free(mod);
		free(mhex);
		free(m);
	}
	if (strcmp(type, "EC") == 0 || strncmp(type, "Ed", 2) == 0 || type[0] == 'X') {
		char *pub = text_pub(text);
		check_point(pk, (size_t)pk_len, pub, strcmp(type, "EC") == 0 ? bits : -1, what);
		free(pub);
	}
	free(oid);
	free(nist);
	free(exp);
	free(dotted);
	free(name);
	X509_PUBKEY_free(xpk);
	free(text);
	tfs_decoded_free(d);
	dt_remove_temp(path);
}

/* ---- certificates ---- */

static char *join_extensions(const char *text)
{
	const char *p = strstr(text, "X509v3 extensions:\n");
	if (p == NULL)
		return NULL;
	p = strchr(p, '\n') + 1;
	char *out = calloc(1, strlen(text) + 1);
	assert_non_null(out);
	/* Extension headers are indented 12 blanks; their values more. */
	for (const char *line = p; strncmp(line, "            ", 12) == 0;) {
		const char *e = strchr(line, '\n');
		size_t len = e ? (size_t)(e - line) : strlen(line);
		if (line[12] != ' ') {
			char *l = strndup(line + 12, len - 12);
			char *colon = strrchr(l, ':');
			assert_non_null(colon);
			bool critical = strcmp(colon, ": critical") == 0;
			*colon = '\0';
			if (*out)
				strcat(out, ", ");
			strcat(out, l);
			if (critical)
				strcat(out, " (critical)");
			free(l);
		}
		if (e == NULL)
			break;
		line = e + 1;
	}
	return out;
}

static void check_name_bytes(const uint8_t *der, size_t len, const char *want, const char *what)
{
	tfs_decoded *d = must(tfs_decode_name, der, len, what);
	dt_expect(d, "name", want, what);
	tfs_decoded_free(d);
}

/* The name as openssl prints it. When the -esc_msb output is not UTF-8,
 * tokenfs escapes the bad bytes \XX as plain RFC2253 does. */
static char *openssl_name(const char *path, const char *which)
{
	char *o = dt_run("openssl x509 -inform DER -in '%s' -noout -%s -nameopt " NAMEOPT, path, which);
	assert_non_null(o);
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%s=", which);
	char *v = dt_after(o, prefix);
	free(o);
	assert_non_null(v);
	if (!dt_utf8_valid(v)) {
		free(v);
		o = dt_run("openssl x509 -inform DER -in '%s' -noout -%s -nameopt RFC2253", path, which);
		v = dt_after(o, prefix);
		free(o);
	}
	return v;
}

static void check_cert_file(const char *path, const char *what)
{
	size_t len;
	uint8_t *der = dt_read(path, &len);
	tfs_decoded *d = must(tfs_decode_certificate, der, len, what);

	char *o = dt_run("openssl x509 -inform DER -in '%s' -noout -serial -dates -fingerprint -sha256",
	                 path);
	if (o == NULL)
		fail_msg("%s: openssl x509 cannot read it", what);
	char *subject = openssl_name(path, "subject"), *issuer = openssl_name(path, "issuer");
	char *serial = dt_after(o, "serial="), *nb = dt_after(o, "notBefore="),
	     *na = dt_after(o, "notAfter="), *fp = dt_after(o, "sha256 Fingerprint=");
	assert_non_null(serial);
	assert_non_null(fp);
	char nb_iso[32], na_iso[32];
	dt_openssl_date_iso(nb, nb_iso);
	dt_openssl_date_iso(na, na_iso);
	dt_expect(d, "subject", subject, what);
	dt_expect(d, "issuer", issuer, what);
	dt_expect(d, "serial", serial, what);
	char *dec = hex_to_dec(serial);
	expect_decimal(d, "serial_decimal", dec, what);
	dt_expect(d, "not_before", nb_iso, what);
	dt_expect(d, "not_after", na_iso, what);
	dt_expect(d, "sha256_fingerprint", fp, what);

	char *text = dt_run("openssl x509 -inform DER -in '%s' -noout -text", path);
	assert_non_null(text);
	char *ver = dt_after(text, "Version: ");
	expect_int(d, "version", strtol(ver, NULL, 10), what);
	char *sig = dt_after(text, "Signature Algorithm: ");
	dt_expect(d, "signature_algorithm", sig, what);
	char *pka = dt_after(text, "Public Key Algorithm: ");
	dt_expect(d, "public_key_algorithm", pka, what);
	long bits = text_bits(text);
	if (bits > 0)
		expect_int(d, "public_key_bits", bits, what);
	char *exp = text_word(text, "Exponent: ");
	dt_expect(d, "public_key_exponent", exp, what);
	char *oid = dt_after(text, "ASN1 OID: "), *nist = dt_after(text, "NIST CURVE: ");
	dt_expect(d, "public_key_curve_openssl", oid, what);
	if (nist != NULL)
		dt_expect(d, "public_key_curve", nist, what);
	char *ext = join_extensions(text);
	dt_expect(d, "extensions", ext, what);

	/* OpenSSL's library: dotted OIDs, key size, and the parts alone. */
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	assert_non_null(x);
	const X509_ALGOR *salg;
	X509_get0_signature(NULL, &salg, x);
	const ASN1_OBJECT *sobj;
	X509_ALGOR_get0(&sobj, NULL, NULL, salg);
	char *sdot = obj_dotted(sobj);
	dt_expect(d, "signature_algorithm_oid", sdot, what);
	ASN1_OBJECT *kobj;
	X509_PUBKEY_get0_param(&kobj, NULL, NULL, NULL, X509_get_X509_PUBKEY(x));
	char *kdot = obj_dotted(kobj);
	dt_expect(d, "public_key_algorithm_oid", kdot, what);
	EVP_PKEY *pkey = X509_get0_pubkey(x);
	if (pkey != NULL)
		expect_int(d, "public_key_bits", EVP_PKEY_get_bits(pkey), what);
	else
		assert_non_null(tfs_decoded_get(d, "public_key_error"));

	unsigned char *sn = NULL, *in = NULL, *ser = NULL, *spki = NULL;
	int sn_len = i2d_X509_NAME(X509_get_subject_name(x), &sn);
	int in_len = i2d_X509_NAME(X509_get_issuer_name(x), &in);
	dt_expect(d, "self_issued",
	          sn_len == in_len && memcmp(sn, in, (size_t)sn_len) == 0 ? "true" : "false", what);
	check_name_bytes(sn, (size_t)sn_len, subject, what);
	check_name_bytes(in, (size_t)in_len, issuer, what);
	int ser_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &ser);
	tfs_decoded *sd = must(tfs_decode_integer, ser, (size_t)ser_len, what);
	dt_expect(sd, "hex", serial, what);
	expect_decimal(sd, "decimal", dec, what);
	tfs_decoded_free(sd);
	if (pkey != NULL) {
		int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
		check_spki_bytes(spki, (size_t)spki_len, what);
	}

	OPENSSL_free(sn);
	OPENSSL_free(in);
	OPENSSL_free(ser);
	OPENSSL_free(spki);
	X509_free(x);
	free(sdot);
	free(kdot);
	free(ext);
	free(oid);
	free(nist);
	free(exp);
	free(pka);
	free(sig);
	free(ver);
	free(text);
	free(dec);
	free(serial);
	free(nb);
	free(na);
	free(fp);
	free(subject);
	free(issuer);
	free(o);
	tfs_decoded_free(d);
	free(der);
}

/* Certificates OpenSSL refuses to load (a Name with an INTEGER value, a
 * UTF8String that is not UTF-8): der_units_test covers them. */
static bool openssl_refuses(const char *name)
{
	return strcmp(name, "cert-name-nonstring.der") == 0 ||
	       strcmp(name, "cert-name-invalid-utf8.der") == 0;
}

static void test_certificates(void **state)
{
	(void)state;
	char *path = dt_path("certs/imported-rsa-cert.der");
	check_cert_file(path, path);
	free(path);
	char *dir = dt_path("der");
	size_t n, done = 0;
	char **names = dt_list(dir, "cert-", ".der", &n);
	for (size_t i = 0; i < n; i++) {
		if (openssl_refuses(names[i]))
			continue;
		assert_true(asprintf(&path, "%s/%s", dir, names[i]) > 0);
		check_cert_file(path, names[i]);
		free(path);
		done++;
	}
	assert_true(done >= 8);
	dt_free_list(names, n);
	free(dir);
}

static void test_public_keys(void **state)
{
	(void)state;
	char *path = dt_path("certs/imported-rsa-pub.der");
	size_t len;
	uint8_t *der = dt_read(path, &len);
	check_spki_bytes(der, len, path);
	free(der);
	free(path);
	char *dir = dt_path("der");
	size_t n;
	char **names = dt_list(dir, "spki-", ".der", &n);
	assert_true(n >= 15);
	for (size_t i = 0; i < n; i++) {
		assert_true(asprintf(&path, "%s/%s", dir, names[i]) > 0);
		der = dt_read(path, &len);
		check_spki_bytes(der, len, names[i]);
		free(der);
		free(path);
	}
	dt_free_list(names, n);
	free(dir);
}

/* ---- EC parameters ---- */

static void check_ec_params(const uint8_t *der, size_t len, const char *path, const char *what)
{
	tfs_decoded *d = must(tfs_decode_ec_params, der, len, what);
	char *asn = dt_run("openssl asn1parse -inform DER -in '%s'", path);
	assert_non_null(asn);
	asn[strcspn(asn, "\n")] = '\0'; /* the top-level element */
	if (strstr(asn, "OBJECT") != NULL) {
		dt_expect(d, "encoding", "namedCurve", what);
		const unsigned char *p = der;
		ASN1_OBJECT *o = d2i_ASN1_OBJECT(NULL, &p, (long)len);
		assert_non_null(o);
		char *dotted = obj_dotted(o);
		dt_expect(d, "oid", dotted, what);
		dt_expect(d, "curve_openssl", OBJ_nid2sn(OBJ_obj2nid(o)), what);
		free(dotted);
		ASN1_OBJECT_free(o);
	} else if (strstr(asn, "PRINTABLESTRING")) {
		dt_expect(d, "encoding", "curveName", what);
		char *v = strchr(strstr(asn, "PRINTABLESTRING"), ':') + 1;
		v[strcspn(v, "\n")] = '\0';
		dt_expect(d, "curve_name", v, what);
	} else if (strstr(asn, "NULL")) {
		dt_expect(d, "encoding", "implicitlyCA", what);
	} else {
		dt_expect(d, "encoding", "ecParameters", what);
	}
	/* Weierstrass curves, named or explicit: openssl ecparam reads them. */
	char *text = dt_run("openssl ecparam -inform DER -in '%s' -noout -text", path);
	if (text != NULL) {
		expect_int(d, "field_bits", text_bits(text), what);
		char *oid = dt_after(text, "ASN1 OID: "), *nist = dt_after(text, "NIST CURVE: ");
		char *ft = dt_after(text, "Field Type: ");
		dt_expect(d, "curve_openssl", oid, what);
		dt_expect(d, "curve", nist ? nist : oid ? oid : "explicit parameters", what);
		dt_expect(d, "field_type", ft, what);
		free(oid);
		free(nist);
		free(ft);
		free(text);
	} else {
		/* Only the Edwards/Montgomery OIDs, names and implicitlyCA are
		 * not EC groups to OpenSSL. */
		const char *curve = tfs_decoded_get(d, "curve");
		assert_true(strcmp(curve, "implicitlyCA") == 0 || strcmp(curve, "unknown") == 0 ||
		            strncmp(curve, "Ed", 2) == 0 || curve[0] == 'X');
	}
	free(asn);
	tfs_decoded_free(d);
}

static void test_ec_params(void **state)
{
	(void)state;
	char *dir = dt_path("der");
	size_t n;
	char **names = dt_list(dir, "ecparams-", ".der", &n);
	assert_true(n >= 15);
	for (size_t i = 0; i < n; i++) {
		char *path;
		size_t len;
		assert_true(asprintf(&path, "%s/%s", dir, names[i]) > 0);
		uint8_t *der = dt_read(path, &len);
		check_ec_params(der, len, path, names[i]);
		free(der);
		free(path);
	}
	dt_free_list(names, n);
	free(dir);
}

/* ---- EC points: ecpoint-<k>-der.der / ecpoint-<k>-bare.bin against the
 * "pub:" openssl prints for spki-<k>.der ---- */

static void test_ec_points(void **state)
{
	(void)state;
	char *dir = dt_path("der");
	size_t n;
	char **names = dt_list(dir, "ecpoint-", "", &n);
	assert_true(n >= 8);
	for (size_t i = 0; i < n; i++) {
		bool wrapped = strstr(names[i], "-der.der") != NULL;
		char *key = strdup(names[i] + strlen("ecpoint-"));
		*strrchr(key, '-') = '\0';
		char *path, *spki;
		size_t len;
		assert_true(asprintf(&path, "%s/%s", dir, names[i]) > 0);
		assert_true(asprintf(&spki, "%s/spki-%s.der", dir, key) > 0);
		uint8_t *v = dt_read(path, &len);
		tfs_decoded *d = must(tfs_decode_ec_point, v, len, names[i]);
		char *text = dt_run("openssl pkey -pubin -inform DER -in '%s' -noout -text", spki);
		assert_non_null(text);
		char *pub = text_pub(text);
		dt_expect(d, "point", pub, names[i]);
		dt_expect(d, "der_wrapped", wrapped ? "true" : "false", names[i]);
		if (strncmp(key, "ec-", 3) == 0) {
			expect_int(d, "field_bits", text_bits(text), names[i]);
			dt_expect(d, "form", pub[1] == '4' ? "uncompressed" : "compressed", names[i]);
		} else {
			dt_expect(d, "form", "raw", names[i]);
		}
		if (wrapped) {
			char *asn = dt_run("openssl asn1parse -inform DER -in '%s'", path);
			char *dump = dt_hex_digits(strstr(asn, "[HEX DUMP]:") + 11);
			dt_expect(d, "point", dump, names[i]);
			free(dump);
			free(asn);
		}
		free(pub);
		free(text);
		tfs_decoded_free(d);
		free(v);
		free(spki);
		free(path);
		free(key);
	}
	dt_free_list(names, n);
	free(dir);
}

/* ---- INTEGERs and Names cut out of certificates ---- */

static void test_integers(void **state)
{
	(void)state;
	char *dir = dt_path("der");
	size_t n;
	char **names = dt_list(dir, "int-", ".der", &n);
	assert_true(n >= 15);
	for (size_t i = 0; i < n; i++) {
		char *path;
		size_t len;
		assert_true(asprintf(&path, "%s/%s", dir, names[i]) > 0);
		uint8_t *der = dt_read(path, &len);
		tfs_decoded *d = must(tfs_decode_integer, der, len, names[i]);
		char *asn = dt_run("openssl asn1parse -inform DER -in '%s'", path);
		char *hex = strchr(strstr(asn, "INTEGER"), ':') + 1;
		hex[strcspn(hex, "\n")] = '\0';
		dt_expect(d, "hex", hex, names[i]);
		char *dec = hex_to_dec(hex);
		expect_decimal(d, "decimal", dec, names[i]);
		free(dec);
		free(asn);
		tfs_decoded_free(d);
		free(der);
		free(path);
	}
	dt_free_list(names, n);
	free(dir);
}

static void test_names(void **state)
{
	(void)state;
	char *dir = dt_path("der");
	size_t n, done = 0;
	char **names = dt_list(dir, "name-", ".der", &n);
	for (size_t i = 0; i < n; i++) {
		/* name-<c>-subject.der comes from cert-<c>.der */
		char *c = strdup(names[i] + 5), *which = strrchr(c, '-');
		*which++ = '\0';
		*strrchr(which, '.') = '\0';
		char *cert, *path;
		assert_true(asprintf(&cert, "cert-%s.der", c) > 0);
		if (!openssl_refuses(cert)) {
			char *cpath;
			size_t len;
			assert_true(asprintf(&cpath, "%s/%s", dir, cert) > 0);
			assert_true(asprintf(&path, "%s/%s", dir, names[i]) > 0);
			char *want = openssl_name(cpath, which);
			uint8_t *der = dt_read(path, &len);
			check_name_bytes(der, len, want, names[i]);
			free(der);
			free(want);
			free(path);
			free(cpath);
			done++;
		}
		free(cert);
		free(c);
	}
	assert_true(done >= 7);
	dt_free_list(names, n);
	free(dir);
}

/* ---- the public objects of the SoftHSM store ---- */

#define CKA_CLASS 0x0u
#define CKA_VALUE 0x11u
#define CKA_CERTIFICATE_TYPE 0x80u
#define CKA_ISSUER 0x81u
#define CKA_SERIAL_NUMBER 0x82u
#define CKA_KEY_TYPE 0x100u
#define CKA_SUBJECT 0x101u
#define CKA_MODULUS 0x120u
#define CKA_PUBLIC_EXPONENT 0x122u
#define CKA_EC_PARAMS 0x180u
#define CKA_EC_POINT 0x181u

static uint64_t ulong_attr(const tfs_object *obj, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : TFS_DECODE_NO_TYPE;
}

static const uint8_t *bytes_attr(const tfs_object *obj, uint64_t type, size_t *len)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	assert_non_null(a);
	return tfs_attr_bytes(a, len);
}

/* DER length octets + INTEGER of an unsigned big-endian number. */
static size_t der_uint(uint8_t *out, const uint8_t *p, size_t n)
{
	size_t k = 0, body = n + ((p[0] & 0x80) ? 1 : 0);
	out[k++] = 0x02;
	if (body < 128) {
		out[k++] = (uint8_t)body;
	} else {
		out[k++] = 0x82;
		out[k++] = (uint8_t)(body >> 8);
		out[k++] = (uint8_t)body;
	}
	if (p[0] & 0x80)
		out[k++] = 0;
	memcpy(out + k, p, n);
	return k + n;
}

static void check_store_attr(const tfs_object *obj, uint64_t type, const tfs_decoded *d,
                             const uint8_t *v, size_t len, const char *what)
{
	char *path = dt_write_temp(v, len);
	size_t clen;
	if (type == CKA_VALUE) {
		check_cert_file(path, what);
	} else if (type == CKA_SUBJECT || type == CKA_ISSUER) {
		const uint8_t *cert = bytes_attr(obj, CKA_VALUE, &clen);
		char *cpath = dt_write_temp(cert, clen);
		char *want = openssl_name(cpath, type == CKA_SUBJECT ? "subject" : "issuer");
		dt_expect(d, "name", want, what);
		free(want);
		dt_remove_temp(cpath);
	} else if (type == CKA_SERIAL_NUMBER) {
		char *asn = dt_run("openssl asn1parse -inform DER -in '%s'", path);
		char *hex = strchr(strstr(asn, "INTEGER"), ':') + 1;
		hex[strcspn(hex, "\n")] = '\0';
		dt_expect(d, "hex", hex, what);
		free(asn);
	} else if (type == CKA_EC_PARAMS) {
		check_ec_params(v, len, path, what);
	} else if (type == CKA_EC_POINT) {
		char *asn = dt_run("openssl asn1parse -inform DER -in '%s'", path);
		char *dump = dt_hex_digits(strstr(asn, "[HEX DUMP]:") + 11);
		dt_expect(d, "point", dump, what);
		dt_expect(d, "der_wrapped", "true", what);
		const uint8_t *params = bytes_attr(obj, CKA_EC_PARAMS, &clen);
		char *ppath = dt_write_temp(params, clen);
		char *text = dt_run("openssl ecparam -inform DER -in '%s' -noout -text", ppath);
		expect_int(d, "field_bits", text_bits(text), what);
		free(text);
		dt_remove_temp(ppath);
		free(dump);
		free(asn);
	} else if (type == CKA_MODULUS) {
		/* RSAPublicKey from CKA_MODULUS and CKA_PUBLIC_EXPONENT. */
		size_t elen, k = 4;
		const uint8_t *e = bytes_attr(obj, CKA_PUBLIC_EXPONENT, &elen);
		uint8_t *der = malloc(len + elen + 16);
		k += der_uint(der + k, v, len);
		k += der_uint(der + k, e, elen);
		der[0] = 0x30, der[1] = 0x82, der[2] = (uint8_t)((k - 4) >> 8), der[3] = (uint8_t)(k - 4);
		char *rpath = dt_write_temp(der, k);
		char *text = dt_run("openssl rsa -RSAPublicKey_in -inform DER -in '%s' -noout -text", rpath);
		assert_non_null(text);
		expect_int(d, "bits", text_bits(text), what);
		free(text);
		dt_remove_temp(rpath);
		free(der);
	}
	dt_remove_temp(path);
}

static void test_store_objects(void **state)
{
	(void)state;
	char *root = dt_path("store");
	tfs_store *store;
	tfs_error err;
	assert_int_equal(tfs_store_open(&store, root, NULL, &err), TFS_OK);
	size_t decoded[0x200] = {0}, empty = 0;
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
			tfs_object *obj;
			assert_int_equal(tfs_token_load_object(&obj, tok, i, &err), TFS_OK);
			/* Private objects' values are encrypted. */
			if (tfs_object_is_private(obj)) {
				tfs_object_free(obj);
				continue;
			}
			uint64_t cls = ulong_attr(obj, CKA_CLASS);
			uint64_t sub = ulong_attr(obj, cls == 1 ? CKA_CERTIFICATE_TYPE : CKA_KEY_TYPE);
			for (size_t a = 0; a < tfs_object_attr_count(obj); a++) {
				const tfs_attr *at = tfs_object_attr(obj, a);
				if (tfs_attr_kind(at) != TFS_KIND_BYTES)
					continue;
				size_t len;
				const uint8_t *v = tfs_attr_bytes(at, &len);
				uint64_t type = tfs_attr_type(at);
				tfs_decoded *d = NULL;
				int rc = tfs_decode_attribute(&d, type, cls, sub, v, len, &err);
				if (rc == TFS_E_NOTFOUND) {
					assert_null(d);
					empty += len == 0;
					continue;
				}
				char what[160];
				snprintf(what, sizeof(what), "%s attribute 0x%llx",
				         tfs_token_object_file(tok, i), (unsigned long long)type);
				if (rc != TFS_OK)
					fail_msg("%s: %s", what, err.what);
				check_store_attr(obj, type, d, v, len, what);
				if (type < 0x200)
					decoded[type]++;
				tfs_decoded_free(d);
			}
			tfs_object_free(obj);
		}
	}
	/* testdata/README.md: one certificate with its names and serial, the
	 * P-256 and P-384 public keys, two RSA public keys. */
	assert_int_equal(decoded[CKA_VALUE], 1);
	assert_int_equal(decoded[CKA_SUBJECT], 1);
	assert_int_equal(decoded[CKA_ISSUER], 1);
	assert_int_equal(decoded[CKA_SERIAL_NUMBER], 1);
	assert_int_equal(decoded[CKA_EC_PARAMS], 2);
	assert_int_equal(decoded[CKA_EC_POINT], 2);
	assert_int_equal(decoded[CKA_MODULUS], 2);
	assert_true(empty > 0);
	tfs_store_free(store);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certificates),
		cmocka_unit_test(test_public_keys),
		cmocka_unit_test(test_ec_params),
		cmocka_unit_test(test_ec_points),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_store_objects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
