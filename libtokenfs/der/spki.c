/*
 * SubjectPublicKeyInfo (RFC 5280 4.1.2.7): the algorithm and the size of
 * the key, as OpenSSL reports them (`openssl pkey -pubin -text`):
 *   RSA, RSA-PSS  modulus bits and the public exponent (RFC 8017 A.1.1)
 *   EC            the curve from the parameters (RFC 5480), its degree
 *   Ed25519 ...   fixed sizes (RFC 8410): the key must have its length
 *   DSA           bits of p from the parameters (RFC 3279 2.3.2)
 * Other algorithms are named, without a size.
 */
#include "der/der_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"

#define OID_RSA "1.2.840.113549.1.1.1"
#define OID_RSA_PSS "1.2.840.113549.1.1.10"
#define OID_EC "1.2.840.10045.2.1"
#define OID_DSA "1.2.840.10040.4.1"

const tfs_spki_names tfs_spki_names_bare = {
	"type", "algorithm", "algorithm_oid", "bits", "exponent", "curve",
	"curve_openssl", "curve_oid", "error",
};

const tfs_spki_names tfs_spki_names_cert = {
	"public_key_type", "public_key_algorithm", "public_key_algorithm_oid",
	"public_key_bits", "public_key_exponent", "public_key_curve",
	"public_key_curve_openssl", "public_key_curve_oid", "public_key_error",
};

/* What the key adds, gathered before any field is added so that a damaged
 * key adds nothing but the error. */
typedef struct details {
	size_t bits;
	char *exponent;
	tfs_curve_info curve;
	bool has_curve;
} details;

/* Offset of the content of the element at `name` (after its header and,
 * for a BIT STRING, the unused-bits octet). */
static bool content_at(asn1_node node, const uint8_t *der, size_t len, const char *name,
                       size_t extra, uint64_t *off)
{
	size_t start, size;
	tfs_der_tlv t;
	if (!tfs_der_extent(node, der, len, name, &start, &size) ||
	    tfs_der_header(&t, der, start, start + size, 0, "", NULL) != TFS_OK)
		return false;
	*off = start + t.hdr_len + extra;
	return true;
}

static int rsa_key(details *k, const uint8_t *key, size_t key_len, uint64_t key_off,
                   const char *what, tfs_error *err)
{
	asn1_node node = NULL;
	uint8_t *mod = NULL, *exp = NULL;
	size_t mod_len = 0, exp_len = 0;
	char *hex = NULL;
	int rc = tfs_der_decode(&node, "RSAPublicKey", 0x30, key, key_len, key_off, what, err);
	if (rc != TFS_OK)
		return rc;
	if (tfs_der_read(node, "modulus", &mod, &mod_len) != ASN1_SUCCESS ||
	    tfs_der_read(node, "publicExponent", &exp, &exp_len) != ASN1_SUCCESS) {
		rc = tfs_nomem(err);
		goto done;
	}
	uint64_t mod_off = tfs_der_offset(node, key, key_len, "modulus", key_off);
	uint64_t exp_off = tfs_der_offset(node, key, key_len, "publicExponent", key_off);
	if (mod_len == 0 || (mod[0] & 0x80) != 0) {
		rc = tfs_error_set(err, TFS_E_FORMAT, mod_off, "%s: RSA modulus is not positive", what);
		goto done;
	}
	rc = tfs_der_integer_check(mod, mod_len, mod_off, what, err);
	if (rc != TFS_OK)
		goto done;
	k->bits = tfs_der_bit_length(mod, mod_len);
	if (exp_len == 0 || (exp[0] & 0x80) != 0) {
		rc = tfs_error_set(err, TFS_E_FORMAT, exp_off, "%s: RSA public exponent is not positive",
		                   what);
		goto done;
	}
	rc = tfs_der_integer_text(exp, exp_len, &hex, &k->exponent, exp_off, what, err);
done:
	free(hex);
	tfs_der_buf_free(mod, mod_len);
	tfs_der_buf_free(exp, exp_len);
	tfs_der_free(&node);
	return rc;
}

static int dsa_key(details *k, const uint8_t *params, size_t params_len, uint64_t params_off,
                   const uint8_t *key, size_t key_len, uint64_t key_off, const char *what,
                   tfs_error *err)
{
	asn1_node node = NULL;
	uint8_t *p = NULL;
	size_t p_len = 0;
	int rc = tfs_der_decode(&node, "DSAPublicKey", 0x02, key, key_len, key_off, what, err);
	tfs_der_free(&node);
	if (rc != TFS_OK || params == NULL)
		return rc;
	rc = tfs_der_decode(&node, "DssParms", 0x30, params, params_len, params_off, what, err);
	if (rc != TFS_OK)
		return rc;
	if (tfs_der_read(node, "p", &p, &p_len) != ASN1_SUCCESS)
		rc = tfs_nomem(err);
	else if (p_len == 0 || (p[0] & 0x80) != 0)
		rc = tfs_error_set(err, TFS_E_FORMAT, params_off, "%s: DSA prime p is not positive", what);
	else
		k->bits = tfs_der_bit_length(p, p_len);
	tfs_der_buf_free(p, p_len);
	tfs_der_free(&node);
	return rc;
}

int tfs_der_spki_fields(tfs_decoded *d, const tfs_spki_names *names, asn1_node node,
                        const char *path, const uint8_t *der, size_t len, bool lenient,
                        char *summary, size_t summary_size, tfs_error *err)
{
	char p[128], alg_name[128];
	uint8_t *oid = NULL, *params = NULL, *key = NULL;
	size_t oid_len = 0, params_len = 0, key_len = 0;
	unsigned unused;
	uint64_t params_off = 0, key_off = 0;
	details k = {0};
	const char *type = "unknown";
	const tfs_ecx_info *x = NULL;
	const char *what = strcmp(path, "") == 0 ? "SubjectPublicKeyInfo" : "certificate public key";
	int rc;

	snprintf(p, sizeof(p), "%s%salgorithm.algorithm", path, *path ? "." : "");
	if (tfs_der_read(node, p, &oid, &oid_len) != ASN1_SUCCESS) {
		rc = tfs_nomem(err);
		goto done;
	}
	snprintf(p, sizeof(p), "%s%salgorithm.parameters", path, *path ? "." : "");
	rc = tfs_der_read(node, p, &params, &params_len);
	if (rc == ASN1_MEM_ALLOC_ERROR) {
		rc = tfs_nomem(err);
		goto done;
	}
	if (rc != ASN1_SUCCESS || params_len == 0) {
		tfs_der_buf_free(params, params_len);
		params = NULL;
		params_len = 0;
	} else {
		size_t start, size;
		params_off = tfs_der_extent(node, der, len, p, &start, &size) ? start : 0;
	}
	snprintf(p, sizeof(p), "%s%ssubjectPublicKey", path, *path ? "." : "");
	if (tfs_der_read_bits(node, p, &key, &key_len, &unused) != ASN1_SUCCESS) {
		rc = tfs_nomem(err);
		goto done;
	}
	if (!content_at(node, der, len, p, 1, &key_off))
		key_off = 0;

	const char *o = (const char *)oid;
	tfs_der_oid_long_name(o, alg_name, sizeof(alg_name));
	x = tfs_der_ecx_by_oid(o);
	if (strcmp(o, OID_RSA) == 0)
		type = "RSA";
	else if (strcmp(o, OID_RSA_PSS) == 0)
		type = "RSA-PSS";
	else if (strcmp(o, OID_EC) == 0)
		type = "EC";
	else if (strcmp(o, OID_DSA) == 0)
		type = "DSA";
	else if (x != NULL)
		type = x->name;

	rc = tfs_decoded_add(d, names->type, TFS_DECODED_STRING, type, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, names->algorithm, TFS_DECODED_STRING, alg_name, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, names->algorithm_oid, TFS_DECODED_STRING, o, err);
	if (rc != TFS_OK)
		goto done;

	/* Details of the key; errors here may be lenient. */
	tfs_error key_err;
	tfs_error_clear(&key_err);
	tfs_error *kerr = lenient ? &key_err : err;
	if (unused != 0) {
		rc = tfs_error_set(kerr, TFS_E_FORMAT, key_off > 0 ? key_off - 1 : 0,
		                   "%s: public key BIT STRING with %u unused bits", what, unused);
	} else if (strcmp(type, "RSA") == 0 || strcmp(type, "RSA-PSS") == 0) {
		rc = rsa_key(&k, key, key_len, key_off, what, kerr);
	} else if (strcmp(type, "EC") == 0) {
		if (params == NULL)
			rc = tfs_error_set(kerr, TFS_E_FORMAT, key_off,
			                   "%s: EC public key without curve parameters", what);
		else
			rc = tfs_der_curve_info(&k.curve, params, params_len, params_off, what, kerr);
		k.has_curve = rc == TFS_OK;
		k.bits = k.curve.key_bits;
	} else if (x != NULL) {
		if (params != NULL)
			rc = tfs_error_set(kerr, TFS_E_FORMAT, params_off,
			                   "%s: %s key with algorithm parameters (RFC 8410: absent)", what,
			                   x->name);
		else if (key_len != x->key_len)
			rc = tfs_error_set(kerr, TFS_E_FORMAT, key_off,
			                   "%s: %s public key of %zu bytes, not %u", what, x->name, key_len,
			                   x->key_len);
		k.bits = x->key_bits;
	} else if (strcmp(type, "DSA") == 0) {
		rc = dsa_key(&k, params, params_len, params_off, key, key_len, key_off, what, kerr);
	}

	if (rc == TFS_E_NOMEM && lenient)
		rc = tfs_nomem(err);
	if (rc == TFS_E_NOMEM || (rc != TFS_OK && !lenient))
		goto done;
	if (rc != TFS_OK) {
		rc = tfs_decoded_add(d, names->error, TFS_DECODED_STRING, key_err.what, err);
		snprintf(summary, summary_size, "%s key (unreadable)", type);
		goto done;
	}
	if (k.bits != 0)
		rc = tfs_decoded_add_int(d, names->bits, (int64_t)k.bits, err);
	if (rc == TFS_OK && k.exponent != NULL)
		rc = tfs_decoded_add_decimal(d, names->exponent, k.exponent, err);
	if (rc == TFS_OK && k.has_curve) {
		rc = tfs_decoded_add(d, names->curve, TFS_DECODED_STRING, k.curve.name, err);
		if (rc == TFS_OK && k.curve.openssl_name != NULL)
			rc = tfs_decoded_add(d, names->curve_openssl, TFS_DECODED_STRING,
			                     k.curve.openssl_name, err);
		if (rc == TFS_OK && k.curve.oid[0] != '\0')
			rc = tfs_decoded_add(d, names->curve_oid, TFS_DECODED_STRING, k.curve.oid, err);
	}
	if (strcmp(type, "unknown") == 0)
		snprintf(summary, summary_size, "%s key", alg_name);
	else if (k.has_curve && k.curve.openssl_name != NULL &&
	         strcmp(k.curve.openssl_name, k.curve.name) != 0)
		snprintf(summary, summary_size, "EC %s (%s) key", k.curve.name, k.curve.openssl_name);
	else if (k.has_curve && k.bits != 0 && strcmp(k.curve.encoding, "ecParameters") == 0)
		snprintf(summary, summary_size, "EC %zu-bit key, explicit parameters", k.bits);
	else if (k.has_curve)
		snprintf(summary, summary_size, "EC %s key", k.curve.name);
	else if (k.exponent != NULL)
		snprintf(summary, summary_size, "%s %zu-bit key, e=%s", type, k.bits, k.exponent);
	else if (k.bits != 0 && x == NULL)
		snprintf(summary, summary_size, "%s %zu-bit key", type, k.bits);
	else
		snprintf(summary, summary_size, "%s key", type);
done:
	free(k.exponent);
	tfs_der_buf_free(oid, oid_len);
	tfs_der_buf_free(params, params_len);
	tfs_der_buf_free(key, key_len);
	return rc;
}

int tfs_decode_public_key_info(tfs_decoded **out, const uint8_t *der, size_t len,
                               tfs_error *err)
{
	*out = NULL;
	const char *what = "SubjectPublicKeyInfo";
	asn1_node node = NULL;
	tfs_decoded *d = NULL;
	char summary[256] = "";
	int rc = tfs_der_check_input(der, len, what, err);
	if (rc == TFS_OK)
		rc = tfs_der_decode(&node, "SubjectPublicKeyInfo", 0x30, der, len, 0, what, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_new(&d, "public_key_info", err);
	if (rc == TFS_OK)
		rc = tfs_der_spki_fields(d, &tfs_spki_names_bare, node, "", der, len, false, summary,
		                         sizeof(summary), err);
	if (rc == TFS_OK)
		rc = tfs_decoded_set_summary(d, err, "%s", summary);
	tfs_der_free(&node);
	if (rc != TFS_OK) {
		tfs_decoded_free(d);
		return rc;
	}
	*out = d;
	return TFS_OK;
}
