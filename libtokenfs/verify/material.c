/*
 * Key material that is there but holds nothing usable: an empty modulus,
 * point or value, EC parameters that do not decode (the decoder dump uses
 * decides), and what a creation cut short leaves (CKA_TOKEN still at its
 * default false). SoftHSM loads such objects and fails only when the key is
 * used, so a store that holds them would otherwise "verify".
 *
 * An empty byte string is stored empty even in a private object, so most of
 * this needs no PIN; EC parameters of a private key need one to be decoded.
 */
#include "verify/verify_internal.h"

#include <p11-kit/pkcs11.h>

#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY 0x41UL /* PKCS#11 3.0; older p11-kit headers lack it */
#endif

#include "tokenfs/decode.h"

#define ADD(...)                                              \
	do {                                                  \
		if (tfs_vfinding(vt, __VA_ARGS__) != TFS_OK)  \
			return TFS_E_NOMEM;                   \
	} while (0)

/* The attributes that carry a key of this class and type (PKCS#11 3.0,
 * section 2); those SoftHSM keeps for key types it supports. */
size_t tfs_key_material_attrs(const tfs_vobject *o, uint64_t out[4])
{
	size_t n = 0;
	bool priv = o->cls == CKO_PRIVATE_KEY;
	if (o->cls == CKO_SECRET_KEY) {
		out[n++] = CKA_VALUE;
		return n;
	}
	if (!priv && o->cls != CKO_PUBLIC_KEY)
		return 0;
	switch (o->key_type) {
	case CKK_RSA:
		out[n++] = CKA_MODULUS;
		out[n++] = priv ? CKA_PRIVATE_EXPONENT : CKA_PUBLIC_EXPONENT;
		break;
	case CKK_EC:
	case CKK_EC_EDWARDS:
	case CKK_EC_MONTGOMERY:
		out[n++] = CKA_EC_PARAMS;
		out[n++] = priv ? CKA_VALUE : CKA_EC_POINT;
		break;
	case CKK_DSA:
		out[n++] = CKA_SUBPRIME;
		/* fall through */
	case CKK_DH:
		out[n++] = CKA_PRIME;
		out[n++] = CKA_BASE;
		out[n++] = CKA_VALUE;
		break;
	default:
		break;
	}
	return n;
}

/* What the same decoder dump uses says of the EC parameters; a curve it
 * parses but nobody knows is no damage. */
static int check_ec_params(tfs_vtoken *vt, const tfs_vobject *o)
{
	size_t len;
	const uint8_t *p = tfs_vobject_bytes(o, CKA_EC_PARAMS, &len);
	if (p == NULL || len == 0)
		return TFS_OK;
	tfs_decoded *d = NULL;
	tfs_error e;
	int rc = tfs_decode_attribute(&d, CKA_EC_PARAMS, o->cls, o->key_type, p, len, &e);
	tfs_decoded_free(d);
	if (rc == TFS_E_NOMEM)
		return rc;
	if (rc == TFS_OK || rc == TFS_E_NOTFOUND)
		return TFS_OK;
	ADD("key.ec-params-invalid", TFS_SEV_ERROR, o, CKA_EC_PARAMS,
	    "CKA_EC_PARAMS of %zu bytes names no curve: %s; the key cannot be used", len, e.what);
	return TFS_OK;
}

static int check_key(tfs_vtoken *vt, const tfs_vobject *o)
{
	uint64_t want[4];
	size_t n = tfs_key_material_attrs(o, want);
	char nb[24];
	bool token = true;
	(void)tfs_vobject_bool(o, CKA_TOKEN, &token);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const uint8_t *p = tfs_vobject_bytes(o, want[i], &len);
		if (p == NULL || len > 0)
			continue; /* absent (structure reports it), unknown, or present */
		if (!token) {
			/* Reported once below, as what it most likely is. */
			ADD("object.creation-leftover", TFS_SEV_WARNING, o, want[i],
			    "CKA_TOKEN is false and %s is empty: the state in the middle of a key "
			    "generation or object creation that never finished (SoftHSM writes the "
			    "template's defaults first); SoftHSM lists it, but it holds no key",
			    tfs_vattr_name(want[i], nb));
			return TFS_OK;
		}
		ADD("key.material-empty", TFS_SEV_ERROR, o, want[i],
		    "%s is empty: the object holds no usable key (damaged, or the value was "
		    "erased)", tfs_vattr_name(want[i], nb));
	}
	if (!token && tfs_vobject_attr(o, CKA_TOKEN) != NULL)
		ADD("object.creation-leftover", TFS_SEV_WARNING, o, CKA_TOKEN,
		    "CKA_TOKEN is false in a token object file: SoftHSM keeps session objects "
		    "in memory, so this is a creation that never finished (the template's "
		    "defaults are written first)");
	if (o->key_type == CKK_EC || o->key_type == CKK_EC_EDWARDS ||
	    o->key_type == CKK_EC_MONTGOMERY) {
		size_t len;
		const uint8_t *p = tfs_vobject_bytes(o, CKA_EC_PARAMS, &len);
		if (p != NULL && len > 0)
			return check_ec_params(vt, o);
	}
	return TFS_OK;
}

int tfs_check_material_object(tfs_vtoken *vt, const tfs_vobject *o)
{
	if (o->obj == NULL || tfs_object_attr_count(o->obj) == 0)
		return TFS_OK; /* structure reports these */
	int rc = check_key(vt, o);
	return rc == TFS_OK ? tfs_check_key_length(vt, o) : rc;
}
