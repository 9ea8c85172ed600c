/* Changing how values and PIN blobs are encrypted: see tokenfs/keys.h and
 * keys/keys_internal.h. */
#include "keys/keys_internal.h"

#include <openssl/crypto.h>

#include "core/error_internal.h"
#include "tokenfs/names.h"

int tfs_object_reencrypt_values(tfs_object *obj, const tfs_token_key *from,
                                const uint8_t to_key[TFS_KEY_LEN], tfs_layout layout,
                                bool keep_in_layout, tfs_error *err)
{
	for (size_t i = 0; i < tfs_object_attr_count(obj); i++) {
		const tfs_attr *a = tfs_object_attr(obj, i);
		if (!tfs_object_attr_encrypted(obj, a))
			continue;
		size_t ct_len, pt_len = 0, out_len = 0;
		const uint8_t *ct = tfs_attr_bytes(a, &ct_len);
		uint8_t *pt = NULL, *out = NULL;
		uint64_t off = tfs_attr_value_offset(a);
		tfs_layout now = TFS_LAYOUT_NONE;
		int rc = tfs_token_key_decrypt(from, &pt, &pt_len, &now, ct, ct_len, err);
		tfs_layout target = layout != TFS_LAYOUT_NONE ? layout : now;
		bool keep = rc == TFS_OK && keep_in_layout && now == target;
		if (rc == TFS_OK && !keep)
			rc = tfs_value_encrypt(&out, &out_len, target, to_key, pt, pt_len, err);
		if (rc == TFS_OK && !keep)
			rc = tfs_object_set_bytes(obj, i, out, out_len, err);
		tfs_secure_free(pt, pt_len);
		tfs_secure_free(out, out_len);
		if (rc != TFS_OK) {
			err->offset = off;
			return rc;
		}
	}
	return TFS_OK;
}

int tfs_object_reencrypt(tfs_object *obj, const tfs_token_key *from,
                         const uint8_t to_key[TFS_KEY_LEN], tfs_layout layout, tfs_error *err)
{
	return tfs_object_reencrypt_values(obj, from, to_key, layout, false, err);
}

static int mismatch(tfs_error *err, const tfs_attr *a, const char *what)
{
	const char *name = tfs_name(TFS_NS_CKA, tfs_attr_type(a));
	return tfs_error_set(err, TFS_E_DAMAGED, tfs_attr_offset(a), "rewritten %s %s; nothing "
	                     "was written", name ? name : "attribute", what);
}

/* One encrypted value of before against its counterpart in after. */
static int check_value(const tfs_attr *b, const tfs_token_key *before_key, const tfs_attr *a,
                       const tfs_token_key *after_key, tfs_layout layout, tfs_error *err)
{
	size_t blen, alen, p1len = 0, p2len = 0;
	const uint8_t *bct = tfs_attr_bytes(b, &blen), *act = tfs_attr_bytes(a, &alen);
	uint8_t *p1 = NULL, *p2 = NULL;
	tfs_layout got = TFS_LAYOUT_NONE, was = TFS_LAYOUT_NONE;
	int rc = tfs_token_key_decrypt(before_key, &p1, &p1len, &was, bct, blen, err);
	if (rc == TFS_OK && tfs_token_key_decrypt(after_key, &p2, &p2len, &got, act, alen, NULL) != TFS_OK)
		rc = mismatch(err, a, "does not decrypt");
	else if (rc == TFS_OK && got != (layout != TFS_LAYOUT_NONE ? layout : was))
		rc = mismatch(err, a, "is in the wrong layout");
	else if (rc == TFS_OK && (p1len != p2len || CRYPTO_memcmp(p1, p2, p1len) != 0))
		rc = mismatch(err, a, "decrypts to a different plaintext");
	tfs_secure_free(p1, p1len);
	tfs_secure_free(p2, p2len);
	return rc;
}

/* Values that are not encrypted: the same as before. */
static bool same_plain(const tfs_attr *b, const tfs_attr *a)
{
	switch (tfs_attr_kind(b)) {
	case TFS_KIND_BOOL:
		return tfs_attr_bool_raw(b) == tfs_attr_bool_raw(a);
	case TFS_KIND_ULONG:
		return tfs_attr_ulong(b) == tfs_attr_ulong(a);
	case TFS_KIND_BYTES: {
		size_t bl, al;
		const uint8_t *bp = tfs_attr_bytes(b, &bl), *ap = tfs_attr_bytes(a, &al);
		return bl == al && (bl == 0 || CRYPTO_memcmp(bp, ap, bl) == 0);
	}
	case TFS_KIND_MECHS:
		if (tfs_attr_mech_count(b) != tfs_attr_mech_count(a))
			return false;
		for (size_t i = 0; i < tfs_attr_mech_count(b); i++)
			if (tfs_attr_mech(b, i) != tfs_attr_mech(a, i))
				return false;
		return true;
	case TFS_KIND_MAP:
		if (tfs_attr_map_count(b) != tfs_attr_map_count(a))
			return false;
		for (size_t i = 0; i < tfs_attr_map_count(b); i++) {
			const tfs_attr *be = tfs_attr_map_entry(b, i), *ae = tfs_attr_map_entry(a, i);
			if (tfs_attr_type(be) != tfs_attr_type(ae) || tfs_attr_kind(be) != tfs_attr_kind(ae) ||
			    !same_plain(be, ae))
				return false;
		}
		return true;
	}
	return false;
}

int tfs_object_check_reencrypted(const tfs_object *before, const tfs_token_key *before_key,
                                 const uint8_t *after, size_t after_len,
                                 const uint8_t after_key[TFS_KEY_LEN], tfs_layout layout,
                                 tfs_error *err)
{
	tfs_object *ao;
	int rc = tfs_object_parse(&ao, after, after_len, err);
	if (rc != TFS_OK)
		return tfs_error_set(err, TFS_E_DAMAGED, err->offset, "rewritten object does not "
		                     "parse back (%s); nothing was written", err->what);
	tfs_token_key *ak = NULL;
	rc = tfs_token_key_from_bytes(&ak, after_key, layout, err);
	if (rc == TFS_OK && tfs_object_attr_count(ao) != tfs_object_attr_count(before))
		rc = tfs_error_set(err, TFS_E_DAMAGED, 0, "rewritten object has %zu attributes, not %zu; "
		                   "nothing was written", tfs_object_attr_count(ao),
		                   tfs_object_attr_count(before));
	for (size_t i = 0; rc == TFS_OK && i < tfs_object_attr_count(before); i++) {
		const tfs_attr *b = tfs_object_attr(before, i), *a = tfs_object_attr(ao, i);
		if (tfs_attr_type(b) != tfs_attr_type(a) || tfs_attr_kind(b) != tfs_attr_kind(a))
			rc = mismatch(err, a, "has another type or kind");
		else if (tfs_object_attr_encrypted(before, b) != tfs_object_attr_encrypted(ao, a))
			rc = mismatch(err, a, "changed whether it is encrypted");
		else if (tfs_object_attr_encrypted(before, b))
			rc = check_value(b, before_key, a, ak, layout, err);
		else if (!same_plain(b, a))
			rc = mismatch(err, a, "changed its plaintext value");
	}
	tfs_token_key_free(ak);
	tfs_object_free(ao);
	return rc;
}

int tfs_metadata_set_pin_blob(tfs_object *meta, tfs_pin_role role,
                              const uint8_t blob[TFS_PIN_BLOB_LEN], tfs_error *err)
{
	return tfs_object_put_bytes(meta, role == TFS_PIN_SO ? TFS_CKA_OS_SOPIN : TFS_CKA_OS_USERPIN,
	                            blob, TFS_PIN_BLOB_LEN, err);
}
