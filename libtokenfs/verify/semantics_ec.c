/*
 * EC keys: the curve named by CKA_EC_PARAMS, the public point of a public
 * key object, and the point d·G a private key implies. Comparing points on
 * the curve (not their bytes) makes compressed and uncompressed encodings of
 * one key equal.
 */
#include "verify/semantics_internal.h"

#include <limits.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include <p11-kit/pkcs11.h>

EC_GROUP *tfs_sem_ec_group(const uint8_t *der, size_t len)
{
	if (len == 0 || len > LONG_MAX)
		return NULL;
	const unsigned char *p = der;
	EC_GROUP *g = d2i_ECPKParameters(NULL, &p, (long)len);
	if (g == NULL || p != der + len) {
		/* A curve OpenSSL does not know, or not ECParameters at all: either
		 * way nothing can be compared. */
		EC_GROUP_free(g);
		ERR_clear_error();
		return NULL;
	}
	return g;
}

const char *tfs_sem_ec_curve_name(const EC_GROUP *g)
{
	int nid = EC_GROUP_get_curve_name(g);
	const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
	return sn != NULL ? sn : "an explicit curve";
}

/* The point at p, or NULL when the octets are no point on g. The point at
 * infinity decodes but is no public key. */
static EC_POINT *decode_point(const EC_GROUP *g, const uint8_t *p, size_t len)
{
	EC_POINT *pt = EC_POINT_new(g);
	if (pt != NULL && EC_POINT_oct2point(g, pt, p, len, NULL) == 1 &&
	    !EC_POINT_is_at_infinity(g, pt))
		return pt;
	EC_POINT_free(pt);
	ERR_clear_error();
	return NULL;
}

int tfs_sem_ec_pub_from_octets(tfs_sem_pub *out, EC_GROUP *group, const uint8_t *p, size_t len,
                               const char *what)
{
	EC_POINT *pt = decode_point(group, p, len);
	if (pt == NULL) {
		int rc = tfs_sem_pub_invalid(out, CKK_EC, "%s is not a point on %s", what,
		                             tfs_sem_ec_curve_name(group));
		EC_GROUP_free(group);
		return rc;
	}
	out->state = TFS_SEM_KNOWN;
	out->key_type = CKK_EC;
	out->group = group;
	out->point = pt;
	return TFS_OK;
}

/*
 * CKA_EC_POINT is by PKCS #11 a DER OCTET STRING wrapping the point; some
 * writers store the bare point. Try the wrapper first and take it only when
 * it spans the whole value and holds a point.
 */
static int public_point(tfs_sem_pub *out, EC_GROUP *group, const uint8_t *p, size_t len)
{
	EC_POINT *pt = NULL;
	const unsigned char *q = p;
	ASN1_OCTET_STRING *os = len <= LONG_MAX ? d2i_ASN1_OCTET_STRING(NULL, &q, (long)len) : NULL;
	if (os != NULL && q == p + len)
		pt = decode_point(group, ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os));
	ASN1_OCTET_STRING_free(os);
	ERR_clear_error();
	if (pt == NULL)
		return tfs_sem_ec_pub_from_octets(out, group, p, len, "CKA_EC_POINT");
	out->state = TFS_SEM_KNOWN;
	out->key_type = CKK_EC;
	out->group = group;
	out->point = pt;
	return TFS_OK;
}

/* Q = d·G. A scalar outside [1, order-1] is no private key of the curve. */
static int private_point(tfs_sem_pub *out, EC_GROUP *group, const uint8_t *p, size_t len,
                         BN_CTX *bn)
{
	int rc = TFS_E_NOMEM;
	EC_POINT *pt = NULL;
	BIGNUM *d = BN_secure_new();
	if (d == NULL || (len <= INT32_MAX && BN_bin2bn(p, (int)len, d) == NULL))
		goto fail;
	if (len > INT32_MAX || BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(group)) >= 0) {
		rc = tfs_sem_pub_invalid(out, CKK_EC,
		                         "CKA_VALUE is not a private key of %s (0 or not below the "
		                         "curve's order)", tfs_sem_ec_curve_name(group));
		goto fail;
	}
	if ((pt = EC_POINT_new(group)) == NULL || !EC_POINT_mul(group, pt, d, NULL, NULL, bn))
		goto fail;
	out->state = TFS_SEM_KNOWN;
	out->key_type = CKK_EC;
	out->group = group;
	out->point = pt;
	group = NULL;
	pt = NULL;
	rc = TFS_OK;
fail:
	BN_clear_free(d);
	EC_POINT_free(pt);
	EC_GROUP_free(group);
	return rc;
}

int tfs_sem_ec_pub(tfs_sem_pub *out, const tfs_vobject *o, BN_CTX *bn)
{
	size_t plen, len;
	const uint8_t *params = tfs_vobject_bytes(o, CKA_EC_PARAMS, &plen);
	uint64_t key_attr = o->cls == CKO_PRIVATE_KEY ? CKA_VALUE : CKA_EC_POINT;
	const uint8_t *key = tfs_vobject_bytes(o, key_attr, &len);
	if (params == NULL || plen == 0 || key == NULL || len == 0)
		return TFS_OK;
	EC_GROUP *group = tfs_sem_ec_group(params, plen);
	if (group == NULL)
		return TFS_OK;
	out->params = params;
	out->params_len = plen;
	if (o->cls == CKO_PRIVATE_KEY)
		return private_point(out, group, key, len, bn);
	return public_point(out, group, key, len);
}
