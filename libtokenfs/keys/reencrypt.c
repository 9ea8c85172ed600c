/* Changing how values and PIN blobs are encrypted: see tokenfs/keys.h. */
#include "tokenfs/keys.h"

#include "core/error_internal.h"
#include "tokenfs/names.h"

int tfs_object_reencrypt(tfs_object *obj, const tfs_token_key *from,
                         const uint8_t to_key[TFS_KEY_LEN], tfs_layout layout, tfs_error *err)
{
	for (size_t i = 0; i < tfs_object_attr_count(obj); i++) {
		const tfs_attr *a = tfs_object_attr(obj, i);
		if (!tfs_object_attr_encrypted(obj, a))
			continue;
		size_t ct_len, pt_len = 0, out_len = 0;
		const uint8_t *ct = tfs_attr_bytes(a, &ct_len);
		uint8_t *pt = NULL, *out = NULL;
		uint64_t off = tfs_attr_value_offset(a);
		int rc = tfs_token_key_decrypt(from, &pt, &pt_len, NULL, ct, ct_len, err);
		if (rc == TFS_OK)
			rc = tfs_value_encrypt(&out, &out_len, layout, to_key, pt, pt_len, err);
		if (rc == TFS_OK)
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

int tfs_metadata_set_pin_blob(tfs_object *meta, tfs_pin_role role,
                              const uint8_t blob[TFS_PIN_BLOB_LEN], tfs_error *err)
{
	uint64_t type = role == TFS_PIN_SO ? TFS_CKA_OS_SOPIN : TFS_CKA_OS_USERPIN;
	for (size_t i = tfs_object_attr_count(meta); i-- > 0;)
		if (tfs_attr_type(tfs_object_attr(meta, i)) == type)
			return tfs_object_set_bytes(meta, i, blob, TFS_PIN_BLOB_LEN, err);
	return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET,
	                     "token.object has no %s PIN blob to replace", role == TFS_PIN_SO ? "SO" : "user");
}
