/*
 * Exposure and tamper signs, no PIN needed: keys anyone who can read the
 * files has, key policies worth knowing, and flag combinations the PKCS#11
 * API can never produce (so someone edited the file).
 */
#include "verify/verify_internal.h"

#include <p11-kit/pkcs11.h>

#define ADD(...)                                              \
	do {                                                  \
		if (tfs_vfinding(vt, __VA_ARGS__) != TFS_OK)  \
			return TFS_E_NOMEM;                   \
	} while (0)

static bool is_key(const tfs_vobject *o)
{
	return o->cls == CKO_SECRET_KEY || o->cls == CKO_PRIVATE_KEY;
}

/* The key material of a key stored in plaintext, fingerprinted. */
static int check_plaintext_key(tfs_vtoken *vt, const tfs_vobject *o)
{
	if (tfs_object_is_private(o->obj))
		return TFS_OK;
	static const CK_ATTRIBUTE_TYPE material[] = {CKA_VALUE, CKA_PRIVATE_EXPONENT};
	for (size_t i = 0; i < sizeof(material) / sizeof(material[0]); i++) {
		size_t len;
		const uint8_t *p = tfs_vobject_bytes(o, material[i], &len);
		if (p == NULL || len == 0)
			continue;
		char fp[TFS_FINGERPRINT_LEN] = "(no fingerprint)";
		tfs_error e;
		(void)tfs_key_fingerprint(fp, o->key_type, material[i], p, len, &e);
		ADD("key.plaintext", TFS_SEV_WARNING, o, material[i],
		    "%s key stored in plaintext (CKA_PRIVATE false): anyone who can read this file "
		    "has the key (%s)", o->cls == CKO_SECRET_KEY ? "secret" : "private", fp);
		return TFS_OK;
	}
	return TFS_OK;
}

static int check_key(tfs_vtoken *vt, const tfs_vobject *o)
{
	bool sensitive = false, extractable = false, always = false, never = false;
	bool has_s = tfs_vobject_bool(o, CKA_SENSITIVE, &sensitive);
	bool has_e = tfs_vobject_bool(o, CKA_EXTRACTABLE, &extractable);
	(void)tfs_vobject_bool(o, CKA_ALWAYS_SENSITIVE, &always);
	(void)tfs_vobject_bool(o, CKA_NEVER_EXTRACTABLE, &never);
	int rc = check_plaintext_key(vt, o);
	if (rc != TFS_OK)
		return rc;
	/* PKCS#11 only ever turns CKA_SENSITIVE on and CKA_EXTRACTABLE off, and
	 * clears ALWAYS_SENSITIVE / NEVER_EXTRACTABLE for good when a key was
	 * ever otherwise. These pairs cannot come from the API. */
	if (always && has_s && !sensitive)
		ADD("key.tamper-sign", TFS_SEV_ERROR, o, CKA_SENSITIVE,
		    "CKA_ALWAYS_SENSITIVE is true but CKA_SENSITIVE is false: no PKCS#11 call can "
		    "produce this; the file was edited");
	if (never && has_e && extractable)
		ADD("key.tamper-sign", TFS_SEV_ERROR, o, CKA_EXTRACTABLE,
		    "CKA_NEVER_EXTRACTABLE is true but CKA_EXTRACTABLE is true: no PKCS#11 call can "
		    "produce this; the file was edited");
	if (has_s && !sensitive)
		ADD("key.not-sensitive", TFS_SEV_INFO, o, CKA_SENSITIVE,
		    "CKA_SENSITIVE is false: PKCS#11 returns the key material to any logged-in user");
	if (has_e && extractable)
		ADD("key.extractable", TFS_SEV_INFO, o, CKA_EXTRACTABLE,
		    "CKA_EXTRACTABLE is true: the key can be wrapped out of the token");
	return TFS_OK;
}

int tfs_check_exposure_object(tfs_vtoken *vt, const tfs_vobject *o)
{
	if (o->obj == NULL || !is_key(o))
		return TFS_OK;
	return check_key(vt, o);
}
