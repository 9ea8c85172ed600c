/*
 * CKA_EC_PARAMS and CKA_EC_POINT.
 *
 * EC parameters (RFC 3279 2.3.5, RFC 5480 2.1.1, PKCS#11 3.0 2.3.3) are a
 * named curve OID, explicit domain parameters, the NULL of implicitlyCA, or
 * (PKCS#11 3.0, Edwards and Montgomery keys) a PrintableString curve name.
 * Curve names and sizes come from OpenSSL (NIST name, short name, degree),
 * the Edwards/Montgomery ones from oid.c.
 *
 * A point is an X9.62 octet string (0x04 X Y uncompressed, 0x02/0x03 X
 * compressed, 0x06/0x07 X Y hybrid) or, for Edwards and Montgomery keys, the
 * raw 32/56/57-byte key. PKCS#11 stores it inside a DER OCTET STRING; some
 * tools store it bare. Both readings are tried; see classify() and
 * tfs_der_ec_point for how a value that fits both is read.
 */
#include "der/der_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "core/error_internal.h"

#define CKK_EC 0x3u
#define CKK_EC_EDWARDS 0x40u
#define CKK_EC_MONTGOMERY 0x41u

#define OID_PRIME_FIELD "1.2.840.10045.1.1"
#define OID_CHAR2_FIELD "1.2.840.10045.1.2"

/* Named curve: our Edwards/Montgomery table, else OpenSSL's. */
/* The curves keys are made on in practice, so that naming one does not
 * build an EC_GROUP (which was a tenth of a dump of a store of EC keys).
 * Others still go through OpenSSL below; der_test checks both paths
 * against OpenSSL's own reading. */
static const struct {
	const char *oid, *name;
	unsigned bits;
} common_curves[] = {
	{"1.2.840.10045.3.1.7", "P-256", 256},
	{"1.3.132.0.34", "P-384", 384},
	{"1.3.132.0.35", "P-521", 521},
	{"1.3.132.0.33", "P-224", 224},
	{"1.2.840.10045.3.1.1", "P-192", 192},
};

static void named_curve(tfs_curve_info *ci)
{
	ci->openssl_name = tfs_der_oid_short_name(ci->oid);
	const tfs_ecx_info *x = tfs_der_ecx_by_oid(ci->oid);
	if (x != NULL) {
		ci->name = x->name;
		ci->field_bits = x->field_bits;
		ci->key_bits = x->key_bits;
		return;
	}
	for (size_t i = 0; i < sizeof(common_curves) / sizeof(common_curves[0]); i++) {
		if (strcmp(ci->oid, common_curves[i].oid) == 0) {
			ci->name = common_curves[i].name;
			ci->field_bits = ci->key_bits = common_curves[i].bits;
			return;
		}
	}
	ci->name = "unknown";
	if (ci->openssl_name == NULL)
		return;
	int nid = OBJ_sn2nid(ci->openssl_name);
	ERR_set_mark();
	EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
	ERR_pop_to_mark();
	if (g == NULL)
		return; /* an OID OpenSSL knows, but not as a curve */
	ci->field_bits = (unsigned)EC_GROUP_get_degree(g);
	ci->key_bits = ci->field_bits;
	EC_GROUP_free(g);
	const char *nist = EC_curve_nid2nist(nid);
	ci->name = nist != NULL ? nist : ci->openssl_name;
}

static bool printable_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr(" '()+,-./:=?", c) != NULL;
}

static int curve_name(tfs_curve_info *ci, const uint8_t *s, size_t n, uint64_t off,
                      const char *what, tfs_error *err)
{
	if (n == 0 || n >= sizeof(ci->curve_name))
		return tfs_error_set(err, TFS_E_FORMAT, off,
		                     "%s: curve name of %zu characters (1 to %zu expected)", what, n,
		                     sizeof(ci->curve_name) - 1);
	for (size_t i = 0; i < n; i++)
		if (!printable_char(s[i]) || s[i] == 0)
			return tfs_error_set(err, TFS_E_FORMAT, off,
			                     "%s: curve name holds byte 0x%02x, not a PrintableString character",
			                     what, s[i]);
	memcpy(ci->curve_name, s, n);
	ci->curve_name[n] = '\0';
	const tfs_ecx_info *x = tfs_der_ecx_by_p11_name(ci->curve_name);
	ci->name = x != NULL ? x->name : "unknown";
	if (x != NULL) {
		ci->field_bits = x->field_bits;
		ci->key_bits = x->key_bits;
	}
	return TFS_OK;
}

/* The field size of explicit parameters: bits of the prime p, or m. */
static int explicit_params(tfs_curve_info *ci, asn1_node node, const uint8_t *der, size_t len,
                           uint64_t base, const char *what, tfs_error *err)
{
	uint8_t *ftype = NULL, *fparams = NULL, *m = NULL;
	size_t ftype_len, fparams_len, m_len, start, size;
	asn1_node sub = NULL;
	int rc = TFS_OK;

	ci->name = "explicit parameters";
	if (tfs_der_read(node, "ecParameters.fieldID.fieldType", &ftype, &ftype_len) != ASN1_SUCCESS ||
	    tfs_der_read(node, "ecParameters.fieldID.parameters", &fparams, &fparams_len) != ASN1_SUCCESS ||
	    !tfs_der_extent(node, der, len, "ecParameters.fieldID.parameters", &start, &size)) {
		rc = tfs_error_set(err, TFS_E_FORMAT, base, "%s: the fieldID cannot be read", what);
		goto done;
	}
	const char *ft = (const char *)ftype;
	bool prime = strcmp(ft, OID_PRIME_FIELD) == 0, char2 = strcmp(ft, OID_CHAR2_FIELD) == 0;
	ci->field_type = prime ? "prime-field" : char2 ? "characteristic-two-field" : "unknown";
	if (!prime && !char2)
		goto done;
	rc = tfs_der_decode(&sub, prime ? "PrimeP" : "CharacteristicTwo", prime ? 0x02 : 0x30,
	                    fparams, fparams_len, base + start, what, err);
	if (rc != TFS_OK)
		goto done;
	if (tfs_der_read(sub, prime ? "" : "m", &m, &m_len) != ASN1_SUCCESS) {
		rc = tfs_nomem(err);
		goto done;
	}
	if (m_len == 0 || (m[0] & 0x80) != 0) {
		rc = tfs_error_set(err, TFS_E_FORMAT, base + start, "%s: the field %s is not positive",
		                   what, prime ? "prime" : "degree m");
		goto done;
	}
	if (prime) {
		ci->field_bits = (unsigned)tfs_der_bit_length(m, m_len);
	} else {
		/* m is a degree, a small number; larger ones are no real curve. */
		uint64_t v = 0;
		for (size_t i = 0; i < m_len && v <= 0xffffff; i++)
			v = v << 8 | m[i];
		if (v > 0xffff) {
			rc = tfs_error_set(err, TFS_E_FORMAT, base + start,
			                   "%s: characteristic-two field degree too large", what);
			goto done;
		}
		ci->field_bits = (unsigned)v;
	}
	ci->key_bits = ci->field_bits;
done:
	tfs_der_free(&sub);
	free(ftype);
	free(fparams);
	free(m);
	return rc;
}

int tfs_der_curve_info(tfs_curve_info *ci, const uint8_t *der, size_t len, uint64_t base,
                       const char *what, tfs_error *err)
{
	memset(ci, 0, sizeof(*ci));
	asn1_node node = NULL;
	uint8_t *alt = NULL, *v = NULL;
	size_t alt_len, v_len;
	/* A CHOICE: libtasn1 says only "not valid DER" when none fits. */
	if (len > 0 && der[0] != 0x06 && der[0] != 0x30 && der[0] != 0x05 && der[0] != 0x13) {
		char nb[32];
		return tfs_error_set(err, TFS_E_FORMAT, base,
		                     "%s: expected OBJECT IDENTIFIER (namedCurve), SEQUENCE (ecParameters), "
		                     "NULL (implicitlyCA) or PrintableString (curve name) at the start, "
		                     "found %s (0x%02x)", what, tfs_der_ident_name(der[0], nb), der[0]);
	}
	int rc = tfs_der_decode(&node, "EcParamsP11", 0, der, len, base, what, err);
	if (rc != TFS_OK)
		return rc;
	if (tfs_der_read(node, "", &alt, &alt_len) != ASN1_SUCCESS) {
		rc = tfs_nomem(err);
		goto done;
	}
	const char *a = (const char *)alt;
	if (strcmp(a, "namedCurve") == 0) {
		ci->encoding = "namedCurve";
		if (tfs_der_read(node, "namedCurve", &v, &v_len) != ASN1_SUCCESS) {
			rc = tfs_nomem(err);
			goto done;
		}
		snprintf(ci->oid, sizeof(ci->oid), "%s", (const char *)v);
		if (strlen((const char *)v) >= sizeof(ci->oid)) {
			rc = tfs_error_set(err, TFS_E_LIMIT, base, "%s: curve OID longer than %zu characters",
			                   what, sizeof(ci->oid) - 1);
			goto done;
		}
		named_curve(ci);
	} else if (strcmp(a, "curveName") == 0) {
		ci->encoding = "curveName";
		if (tfs_der_read(node, "curveName", &v, &v_len) != ASN1_SUCCESS) {
			rc = tfs_nomem(err);
			goto done;
		}
		rc = curve_name(ci, v, v_len, base, what, err);
	} else if (strcmp(a, "implicitlyCA") == 0) {
		ci->encoding = "implicitlyCA";
		ci->name = "implicitlyCA";
	} else {
		ci->encoding = "ecParameters";
		rc = explicit_params(ci, node, der, len, base, what, err);
	}
done:
	free(alt);
	free(v);
	tfs_der_free(&node);
	return rc;
}

int tfs_decode_ec_params(tfs_decoded **out, const uint8_t *der, size_t len, tfs_error *err)
{
	*out = NULL;
	const char *what = "EC parameters";
	tfs_curve_info ci;
	tfs_decoded *d = NULL;
	int rc = tfs_der_check_input(der, len, what, err);
	if (rc == TFS_OK)
		rc = tfs_der_curve_info(&ci, der, len, 0, what, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_new(&d, "ec_params", err);
	if (rc != TFS_OK)
		return rc;
	rc = tfs_decoded_add(d, "encoding", TFS_DECODED_STRING, ci.encoding, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "curve", TFS_DECODED_STRING, ci.name, err);
	if (rc == TFS_OK && ci.openssl_name != NULL)
		rc = tfs_decoded_add(d, "curve_openssl", TFS_DECODED_STRING, ci.openssl_name, err);
	if (rc == TFS_OK && ci.oid[0] != '\0')
		rc = tfs_decoded_add(d, "oid", TFS_DECODED_STRING, ci.oid, err);
	if (rc == TFS_OK && ci.curve_name[0] != '\0')
		rc = tfs_decoded_add(d, "curve_name", TFS_DECODED_STRING, ci.curve_name, err);
	if (rc == TFS_OK && ci.field_type != NULL)
		rc = tfs_decoded_add(d, "field_type", TFS_DECODED_STRING, ci.field_type, err);
	if (rc == TFS_OK && ci.field_bits != 0)
		rc = tfs_decoded_add_int(d, "field_bits", ci.field_bits, err);
	if (rc != TFS_OK)
		goto fail;

	if (strcmp(ci.encoding, "namedCurve") == 0) {
		if (strcmp(ci.name, "unknown") == 0)
			rc = tfs_decoded_set_summary(d, err, "unknown curve %s%s%s%s", ci.oid,
			                             ci.openssl_name ? " (" : "",
			                             ci.openssl_name ? ci.openssl_name : "",
			                             ci.openssl_name ? ")" : "");
		else if (ci.openssl_name != NULL && strcmp(ci.openssl_name, ci.name) != 0)
			rc = tfs_decoded_set_summary(d, err, "%s (%s, %s)", ci.name, ci.openssl_name, ci.oid);
		else
			rc = tfs_decoded_set_summary(d, err, "%s (%s)", ci.name, ci.oid);
	} else if (strcmp(ci.encoding, "curveName") == 0) {
		rc = tfs_decoded_set_summary(d, err, "%s (PKCS#11 curve name \"%s\")",
		                             strcmp(ci.name, "unknown") == 0 ? "unknown curve" : ci.name,
		                             ci.curve_name);
	} else if (strcmp(ci.encoding, "implicitlyCA") == 0) {
		rc = tfs_decoded_set_summary(d, err, "implicitlyCA: parameters inherited from the issuer");
	} else if (ci.field_bits != 0) {
		rc = tfs_decoded_set_summary(d, err, "explicit parameters, %u-bit %s", ci.field_bits,
		                             ci.field_type);
	} else {
		rc = tfs_decoded_set_summary(d, err, "explicit parameters, %s", ci.field_type);
	}
	if (rc != TFS_OK)
		goto fail;
	*out = d;
	return TFS_OK;
fail:
	tfs_decoded_free(d);
	return rc;
}

/* ---- points ---- */

typedef struct point {
	const char *form;
	const char *curve;   /* known only from the key type */
	unsigned field_bits;
	bool standard;       /* a coordinate length some standard curve has */
} point;

/* Coordinate bytes -> field bits of the standard curves of that size. */
static const struct {
	unsigned bytes, bits;
} coords[] = {
	{20, 160}, {21, 163}, {24, 192}, {28, 224}, {32, 256}, {36, 283},
	{40, 320}, {48, 384}, {52, 409}, {64, 512}, {66, 521}, {72, 571},
};

static void coord_bits(point *pt, size_t n)
{
	pt->standard = false;
	pt->field_bits = (unsigned)(n * 8);
	for (size_t i = 0; i < sizeof(coords) / sizeof(coords[0]); i++)
		if (coords[i].bytes == n) {
			pt->field_bits = coords[i].bits;
			pt->standard = true;
		}
}

/* Reads the form of a bare point; false when p is none. */
static bool classify(const uint8_t *p, size_t n, uint64_t key_type, point *pt)
{
	memset(pt, 0, sizeof(*pt));
	if (n == 0 || n > 4096)
		return false;
	/* Raw Edwards/Montgomery keys: no form byte. Their lengths are no
	 * X9.62 length of a standard curve, so they cannot be mistaken. */
	if (key_type != CKK_EC && (n == 32 || n == 56 || n == 57)) {
		pt->form = "raw";
		pt->field_bits = n == 32 ? 255 : 448;
		pt->standard = true;
		if (key_type == CKK_EC_EDWARDS && n != 56)
			pt->curve = n == 32 ? "Ed25519" : "Ed448";
		else if (key_type == CKK_EC_MONTGOMERY && n != 57)
			pt->curve = n == 32 ? "X25519" : "X448";
		return true;
	}
	if (key_type == CKK_EC_EDWARDS || key_type == CKK_EC_MONTGOMERY)
		return false;
	switch (p[0]) {
	case 0x04:
	case 0x06:
	case 0x07:
		if (n < 3 || n % 2 == 0)
			return false;
		pt->form = p[0] == 0x04 ? "uncompressed" : "hybrid";
		coord_bits(pt, (n - 1) / 2);
		return true;
	case 0x02:
	case 0x03:
		if (n < 2)
			return false;
		pt->form = "compressed";
		coord_bits(pt, n - 1);
		return true;
	default:
		return false;
	}
}

static int point_result(tfs_decoded **out, const uint8_t *p, size_t n, bool wrapped,
                        const point *pt, tfs_error *err)
{
	tfs_decoded *d = NULL;
	tfs_strbuf sb = {0};
	int rc = tfs_decoded_new(&d, "ec_point", err);
	if (rc != TFS_OK)
		return rc;
	tfs_sb_hex(&sb, p, n, false, NULL);
	char *hex = tfs_sb_take(&sb);
	rc = tfs_decoded_add_bool(d, "der_wrapped", wrapped, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "form", TFS_DECODED_STRING, pt->form, err);
	if (rc == TFS_OK && pt->curve != NULL)
		rc = tfs_decoded_add(d, "curve", TFS_DECODED_STRING, pt->curve, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add_int(d, "field_bits", pt->field_bits, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add_int(d, "length", (int64_t)n, err);
	if (rc == TFS_OK)
		rc = hex == NULL ? tfs_nomem(err) : tfs_decoded_add(d, "point", TFS_DECODED_STRING, hex, err);
	if (rc == TFS_OK) {
		const char *how = wrapped ? "in a DER OCTET STRING" : "bare (no DER OCTET STRING)";
		if (strcmp(pt->form, "raw") == 0)
			rc = tfs_decoded_set_summary(d, err, "raw %zu-byte %s key, %s", n,
			                             pt->curve ? pt->curve : "Edwards/Montgomery", how);
		else
			rc = tfs_decoded_set_summary(d, err, "%s point, %u-bit field, %s", pt->form,
			                             pt->field_bits, how);
	}
	free(hex);
	if (rc != TFS_OK) {
		tfs_decoded_free(d);
		return rc;
	}
	*out = d;
	return TFS_OK;
}

int tfs_der_ec_point(tfs_decoded **out, const uint8_t *der, size_t len, uint64_t key_type,
                     tfs_error *err)
{
	*out = NULL;
	const char *what = "EC point";
	int rc = tfs_der_check_input(der, len, what, err);
	if (rc != TFS_OK)
		return rc;

	asn1_node node = NULL;
	uint8_t *inner = NULL;
	size_t inner_len = 0;
	tfs_error der_err;
	tfs_error_clear(&der_err);
	point in_der, bare;
	bool der_ok = false, der_form = false;
	if (der[0] == 0x04) {
		rc = tfs_der_decode(&node, "ECPoint", 0x04, der, len, 0, what, &der_err);
		if (rc == TFS_OK) {
			if (tfs_der_read(node, "", &inner, &inner_len) != ASN1_SUCCESS) {
				tfs_der_free(&node);
				return tfs_nomem(err);
			}
			der_ok = true;
			der_form = classify(inner, inner_len, key_type, &in_der);
		} else if (rc == TFS_E_NOMEM) {
			return tfs_nomem(err);
		}
		tfs_der_free(&node);
	}
	bool bare_ok = classify(der, len, key_type, &bare) && bare.standard;

	/* A bare uncompressed point also starts with 0x04; it parses as DER
	 * only when its second byte happens to equal the rest's length. Then
	 * the standard coordinate length decides. */
	if (der_form && (!bare_ok || in_der.standard))
		rc = point_result(out, inner, inner_len, true, &in_der, err);
	else if (bare_ok)
		rc = point_result(out, der, len, false, &bare, err);
	else if (der_ok)
		rc = tfs_error_set(err, TFS_E_FORMAT, len - inner_len,
		                   "%s: the OCTET STRING holds %zu bytes starting 0x%02x, not an EC point "
		                   "(form byte 02, 03, 04, 06 or 07, or a 32/56/57-byte raw key)",
		                   what, inner_len, inner_len ? inner[0] : 0);
	else if (der[0] == 0x04)
		rc = tfs_error_set(err, der_err.code, der_err.offset, "%s, and not a bare point of a standard size",
		                   der_err.what);
	else
		rc = tfs_error_set(err, TFS_E_FORMAT, 0,
		                   "%s: neither a DER OCTET STRING (tag 0x04) nor a bare point of a standard "
		                   "size: %zu bytes starting 0x%02x", what, len, der[0]);
	free(inner);
	return rc;
}

int tfs_decode_ec_point(tfs_decoded **out, const uint8_t *der, size_t len, tfs_error *err)
{
	return tfs_der_ec_point(out, der, len, TFS_DECODE_NO_TYPE, err);
}
