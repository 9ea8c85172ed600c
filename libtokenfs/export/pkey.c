/*
 * OpenSSL keys from PKCS#11 attributes (export_internal.h). Every key is
 * built with EVP_PKEY_fromdata from the components the object stores, so
 * OpenSSL checks and encodes them; where SoftHSM stores no public half (EC
 * and DSA private keys) it is computed here with OpenSSL's arithmetic, so
 * that the PKCS#8 file carries it and it can be compared with the token's
 * public key.
 */
#include "export/export_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <p11-kit/pkcs11.h>

#include "der/der_internal.h"
#include "tokenfs/names.h"

#ifndef CKK_EC_EDWARDS
#define CKK_EC_EDWARDS 0x40UL
#endif
#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY 0x41UL
#endif

/* What building one key needs. */
typedef struct build {
	const tfs_xobj *o;
	OSSL_PARAM_BLD *bld;
	BN_CTX *bn;
	char *why;
	size_t why_size;
	int rc; /* the first failure */
} build;

__attribute__((format(printf, 3, 4))) static int fail(build *b, int rc, const char *fmt, ...)
{
	if (b->rc == TFS_OK) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(b->why, b->why_size, fmt, ap);
		va_end(ap);
		b->rc = rc;
	}
	return b->rc;
}

/* A required byte string; NULL (and b->rc set) when absent or locked. */
static const uint8_t *need(build *b, uint64_t type, size_t *len)
{
	bool locked = false;
	const uint8_t *v = tfs_xobj_bytes(b->o, type, len, &locked);
	const char *name = tfs_name(TFS_NS_CKA, type);
	if (v == NULL && locked)
		fail(b, TFS_E_INVALID, "%s is encrypted and no PIN unlocked it", name);
	else if (v == NULL || *len == 0)
		fail(b, TFS_E_FORMAT, "%s is missing", name);
	return v != NULL && *len > 0 ? v : NULL;
}

/* A big-endian number into secure memory (private components are secret). */
static BIGNUM *number(build *b, uint64_t type)
{
	size_t len;
	const uint8_t *v = need(b, type, &len);
	if (v == NULL)
		return NULL;
	/* 16384 bits, SoftHSM's largest RSA modulus: bounds the work a hostile
	 * value can cause (a DSA g^x mod p, an RSA key check). */
	if (len > 2048) {
		fail(b, TFS_E_FORMAT, "%s is too long", tfs_name(TFS_NS_CKA, type));
		return NULL;
	}
	BIGNUM *n = BN_secure_new();
	if (n == NULL || BN_bin2bn(v, (int)len, n) == NULL) {
		BN_clear_free(n);
		fail(b, TFS_E_NOMEM, "%s", "out of memory");
		return NULL;
	}
	return n;
}

static void push_bn(build *b, const char *key, BIGNUM *n)
{
	if (n != NULL && !OSSL_PARAM_BLD_push_BN(b->bld, key, n))
		fail(b, TFS_E_NOMEM, "%s", "out of memory");
}

/* Runs EVP_PKEY_fromdata for algorithm `alg` with what b collected. */
static int from_data(build *b, EVP_PKEY **out, const char *alg, int selection)
{
	if (b->rc != TFS_OK)
		return b->rc;
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b->bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
	ERR_set_mark();
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, selection, params) != 1 || *out == NULL)
		fail(b, TFS_E_FORMAT, "OpenSSL rejects the components as a %s key", alg);
	ERR_pop_to_mark();
	EVP_PKEY_CTX_free(ctx);
	/* OSSL_PARAM_free clears only the secure part (the BIGNUMs); an
	 * EdDSA private key is an octet string in the other. */
	for (OSSL_PARAM *q = params; q != NULL && q->key != NULL; q++)
		if (q->data != NULL)
			OPENSSL_cleanse(q->data, q->data_size);
	OSSL_PARAM_free(params);
	return b->rc;
}

static int rsa_key(build *b, EVP_PKEY **out, bool priv, char *desc, size_t desc_size)
{
	static const struct {
		uint64_t type;
		const char *param;
	} comps[] = {
		{CKA_MODULUS, OSSL_PKEY_PARAM_RSA_N},
		{CKA_PUBLIC_EXPONENT, OSSL_PKEY_PARAM_RSA_E},
		{CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D},
		{CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1},
		{CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2},
		{CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1},
		{CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2},
		{CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
	};
	BIGNUM *bn[8] = {0};
	size_t n = priv ? 8 : 2;
	for (size_t i = 0; i < n; i++)
		push_bn(b, comps[i].param, bn[i] = number(b, comps[i].type));
	int rc = from_data(b, out, "RSA", priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY);
	if (rc == TFS_OK)
		snprintf(desc, desc_size, "RSA %d", EVP_PKEY_get_bits(*out));
	for (size_t i = 0; i < n; i++)
		BN_clear_free(bn[i]);
	return rc;
}

/* The DER OCTET STRING PKCS#11 wraps a point in; some writers store the
 * bare point, which is taken as it is. */
static const uint8_t *unwrap_octets(const uint8_t *p, size_t *len)
{
	if (*len >= 2 && p[0] == 0x04 && p[1] < 0x80 && (size_t)p[1] + 2 == *len) {
		*len -= 2;
		return p + 2;
	}
	if (*len >= 3 && p[0] == 0x04 && p[1] == 0x81 && (size_t)p[2] + 3 == *len) {
		*len -= 3;
		return p + 3;
	}
	if (*len >= 4 && p[0] == 0x04 && p[1] == 0x82 && ((size_t)p[2] << 8 | p[3]) + 4 == *len) {
		*len -= 4;
		return p + 4;
	}
	return p;
}

/* The curve of CKA_EC_PARAMS: a named curve OpenSSL knows, or an Edwards /
 * Montgomery curve (ecx set to OpenSSL's algorithm name). */
static int curve(build *b, tfs_curve_info *ci, const char **ecx)
{
	size_t len;
	const uint8_t *params = need(b, CKA_EC_PARAMS, &len);
	*ecx = NULL;
	if (params == NULL)
		return b->rc;
	tfs_error err;
	if (tfs_der_curve_info(ci, params, len, 0, "CKA_EC_PARAMS", &err) != TFS_OK)
		return fail(b, TFS_E_FORMAT, "CKA_EC_PARAMS: %s", err.what);
	static const char *const ecx_names[][2] = {
		{"Ed25519", "ED25519"}, {"Ed448", "ED448"}, {"X25519", "X25519"}, {"X448", "X448"}};
	for (size_t i = 0; i < 4; i++)
		if (ci->name != NULL && strcmp(ci->name, ecx_names[i][0]) == 0)
			*ecx = ecx_names[i][1];
	if (*ecx == NULL && (ci->openssl_name == NULL || ci->oid[0] == '\0'))
		return fail(b, TFS_E_NOTFOUND, "EC key on %s: only named curves have a standard file",
		            ci->name != NULL ? ci->name : "an unknown curve");
	return TFS_OK;
}

/* Q = d*G on the named curve, uncompressed, into buf. */
static size_t ec_public_point(build *b, const char *curve_name, const BIGNUM *d, uint8_t *buf,
                              size_t size)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(OBJ_sn2nid(curve_name));
	EC_POINT *q = g != NULL ? EC_POINT_new(g) : NULL;
	size_t n = 0;
	if (q != NULL && EC_POINT_mul(g, q, d, NULL, NULL, b->bn) == 1)
		n = EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, buf, size, b->bn);
	if (n == 0)
		fail(b, TFS_E_FORMAT, "the public point on %s could not be computed", curve_name);
	EC_POINT_free(q);
	EC_GROUP_free(g);
	return n;
}

static int ec_key(build *b, EVP_PKEY **out, bool priv, char *desc, size_t desc_size)
{
	tfs_curve_info ci;
	const char *ecx;
	if (curve(b, &ci, &ecx) != TFS_OK)
		return b->rc;
	if (ecx != NULL && b->o->key_type == CKK_EC)
		return fail(b, TFS_E_FORMAT, "a CKK_EC key on %s", ci.name);
	size_t len;
	uint8_t point[160];
	BIGNUM *d = NULL;
	if (ecx != NULL) {
		/* EdDSA and Montgomery keys are raw octets (SoftHSM may wrap them
		 * in an OCTET STRING); OpenSSL derives the public half itself. */
		const uint8_t *v = need(b, priv ? CKA_VALUE : CKA_EC_POINT, &len);
		if (v != NULL) {
			/* A bare key can look like an OCTET STRING header (04 1e ...):
			 * the reading with the algorithm's key length wins. */
			size_t want = strcmp(ecx, "ED448") == 0 ? 57 : strcmp(ecx, "X448") == 0 ? 56 : 32;
			size_t inner = len;
			const uint8_t *u = unwrap_octets(v, &inner);
			if (inner == want || len != want) {
				v = u;
				len = inner;
			}
			if (!OSSL_PARAM_BLD_push_octet_string(
			        b->bld, priv ? OSSL_PKEY_PARAM_PRIV_KEY : OSSL_PKEY_PARAM_PUB_KEY, v, len))
				fail(b, TFS_E_NOMEM, "%s", "out of memory");
		}
		snprintf(desc, desc_size, "%s", ci.name);
		return from_data(b, out, ecx, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY);
	}
	if (!OSSL_PARAM_BLD_push_utf8_string(b->bld, OSSL_PKEY_PARAM_GROUP_NAME, ci.openssl_name, 0))
		fail(b, TFS_E_NOMEM, "%s", "out of memory");
	if (priv) {
		d = number(b, CKA_VALUE);
		push_bn(b, OSSL_PKEY_PARAM_PRIV_KEY, d);
		len = d != NULL && b->rc == TFS_OK ? ec_public_point(b, ci.openssl_name, d, point, sizeof(point))
		                                  : 0;
		if (len > 0 && !OSSL_PARAM_BLD_push_octet_string(b->bld, OSSL_PKEY_PARAM_PUB_KEY, point, len))
			fail(b, TFS_E_NOMEM, "%s", "out of memory");
	} else {
		const uint8_t *v = need(b, CKA_EC_POINT, &len);
		if (v != NULL) {
			v = unwrap_octets(v, &len);
			if (!OSSL_PARAM_BLD_push_octet_string(b->bld, OSSL_PKEY_PARAM_PUB_KEY, v, len))
				fail(b, TFS_E_NOMEM, "%s", "out of memory");
		}
	}
	snprintf(desc, desc_size, "EC %s", ci.name != NULL && strcmp(ci.name, "unknown") != 0
	                                       ? ci.name : ci.openssl_name);
	int rc = from_data(b, out, "EC", priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY);
	BN_clear_free(d);
	return rc;
}

static int dsa_key(build *b, EVP_PKEY **out, bool priv, char *desc, size_t desc_size)
{
	BIGNUM *p = number(b, CKA_PRIME), *q = number(b, CKA_SUBPRIME), *g = number(b, CKA_BASE);
	BIGNUM *x = NULL, *y = NULL;
	if (priv) {
		/* y = g^x mod p: SoftHSM keeps only x in the private object. */
		x = number(b, CKA_VALUE);
		y = BN_new();
		if (x != NULL && p != NULL && g != NULL && y != NULL)
			BN_set_flags(x, BN_FLG_CONSTTIME);
		if (x == NULL || p == NULL || g == NULL || y == NULL || BN_is_zero(p) ||
		    BN_mod_exp(y, g, x, p, b->bn) != 1)
			fail(b, TFS_E_FORMAT, "%s", "the DSA public value could not be computed");
		push_bn(b, OSSL_PKEY_PARAM_PRIV_KEY, x);
	} else {
		y = number(b, CKA_VALUE);
	}
	push_bn(b, OSSL_PKEY_PARAM_FFC_P, p);
	push_bn(b, OSSL_PKEY_PARAM_FFC_Q, q);
	push_bn(b, OSSL_PKEY_PARAM_FFC_G, g);
	push_bn(b, OSSL_PKEY_PARAM_PUB_KEY, y);
	int rc = from_data(b, out, "DSA", priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY);
	if (rc == TFS_OK)
		snprintf(desc, desc_size, "DSA %d", EVP_PKEY_get_bits(*out));
	BN_free(p);
	BN_free(q);
	BN_free(g);
	BN_clear_free(x);
	BN_free(y);
	return rc;
}

static int make_key(EVP_PKEY **out, const tfs_xobj *o, bool priv, char *desc, size_t desc_size,
                    char *why, size_t why_size)
{
	*out = NULL;
	desc[0] = why[0] = '\0';
	build b = {.o = o, .why = why, .why_size = why_size, .bld = OSSL_PARAM_BLD_new(),
	           .bn = BN_CTX_secure_new()};
	if (b.bld == NULL || b.bn == NULL) {
		fail(&b, TFS_E_NOMEM, "%s", "out of memory");
	} else {
		switch (o->key_type) {
		case CKK_RSA: rsa_key(&b, out, priv, desc, desc_size); break;
		case CKK_EC:
		case CKK_EC_EDWARDS:
		case CKK_EC_MONTGOMERY: ec_key(&b, out, priv, desc, desc_size); break;
		case CKK_DSA: dsa_key(&b, out, priv, desc, desc_size); break;
		default: {
			const char *name = tfs_name(TFS_NS_CKK, o->key_type);
			char hex[32];
			snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)o->key_type);
			snprintf(desc, desc_size, "%s", name != NULL ? name + 4 : hex);
			fail(&b, TFS_E_NOTFOUND, "key type %s has no standard key file",
			     name != NULL ? name : hex);
		}
		}
	}
	if (b.rc != TFS_OK) {
		EVP_PKEY_free(*out);
		*out = NULL;
	}
	OSSL_PARAM_BLD_free(b.bld);
	BN_CTX_free(b.bn);
	return b.rc;
}

int tfs_xkey_private(EVP_PKEY **out, const tfs_xobj *o, char *desc, size_t desc_size, char *why,
                     size_t why_size)
{
	return make_key(out, o, true, desc, desc_size, why, why_size);
}

int tfs_xkey_public(EVP_PKEY **out, const tfs_xobj *o, char *desc, size_t desc_size, char *why,
                    size_t why_size)
{
	return make_key(out, o, false, desc, desc_size, why, why_size);
}
