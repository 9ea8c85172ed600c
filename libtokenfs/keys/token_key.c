/* Unlocking a token and decrypting its values: see tokenfs/keys.h. */
#include "tokenfs/keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/error_internal.h"
#include "crypto/aes_internal.h"
#include "keys/keys_internal.h"
#include "tokenfs/names.h"

struct tfs_token_key {
	uint8_t key[TFS_KEY_LEN];
	tfs_layout layout;
	/* Keyed once: re-keying AES for every value was a sixth of a
	 * decrypting dump. Makes a key usable by one thread at a time. */
	tfs_aes_ctx *aes;
};

static const char *role_name(tfs_pin_role role)
{
	return role == TFS_PIN_SO ? "SO" : "user";
}

/* Says what is there instead of a blob: nothing (a PIN never set), an
 * empty value, or an attribute of another kind (damage). */
static int no_blob(const tfs_token *tok, tfs_pin_role role, tfs_error *err)
{
	const tfs_object *meta = tfs_token_metadata(tok);
	const tfs_attr *a = meta != NULL ? tfs_object_find(meta, role == TFS_PIN_SO ? TFS_CKA_OS_SOPIN
	                                                                          : TFS_CKA_OS_USERPIN)
	                                 : NULL;
	if (a == NULL)
		tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET, "token '%s' has no %s PIN blob%s",
		              tfs_token_label(tok), role_name(role),
		              role == TFS_PIN_USER ? " (the user PIN was never set, or the token was "
		                                        "initialised again since)" : "");
	else if (tfs_attr_kind(a) != TFS_KIND_BYTES)
		tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		              "%s PIN blob of token '%s' is stored as a %s, not as a %d-byte string: "
		              "token.object is damaged", role_name(role), tfs_token_label(tok),
		              tfs_kind_name(tfs_attr_kind(a)), TFS_PIN_BLOB_LEN);
	else
		tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		              "%s PIN blob of token '%s' is empty (SoftHSM writes %d bytes): no PIN "
		              "opens it; token.object is damaged", role_name(role), tfs_token_label(tok),
		              TFS_PIN_BLOB_LEN);
	if (a == NULL)
		return tfs_error_where(err, "%s", tfs_token_path(tok));
	return tfs_error_where(err, "%s/token.object", tfs_token_path(tok));
}

int tfs_token_unlock(tfs_token_key **out, const tfs_token *tok, tfs_pin_role role,
                     const uint8_t *pin, size_t pin_len, tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	size_t blob_len;
	const uint8_t *blob = tfs_token_pin_blob(tok, role, &blob_len);
	if (blob == NULL)
		return no_blob(tok, role, err);
	tfs_token_key *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return tfs_nomem(err);
	int rc = tfs_pinblob_unwrap(k->key, &k->layout, blob, blob_len, pin, pin_len, err);
	if (rc == TFS_OK)
		rc = tfs_aes_ctx_new(&k->aes, k->key, err);
	if (rc != TFS_OK) {
		tfs_token_key_free(k);
		if (rc == TFS_E_WRONG_PIN)
			tfs_error_set(err, rc, TFS_NO_OFFSET, "wrong %s PIN for token '%s' (serial %s)",
			              role_name(role), tfs_token_label(tok), tfs_token_serial(tok));
		else if (rc == TFS_E_DAMAGED && err != NULL) {
			char what[sizeof(err->what)];
			memcpy(what, err->what, sizeof(what));
			tfs_error_set(err, rc, TFS_NO_OFFSET, "%s PIN blob of token '%s' is damaged: %s",
			              role_name(role), tfs_token_label(tok), what);
		}
		return tfs_error_where(err, "%s/token.object", tfs_token_path(tok));
	}
	*out = k;
	return TFS_OK;
}

void tfs_token_key_free(tfs_token_key *key)
{
	if (key == NULL)
		return;
	tfs_aes_ctx_free(key->aes);
	OPENSSL_cleanse(key, sizeof(*key));
	free(key);
}

int tfs_token_key_dup(tfs_token_key **out, const tfs_token_key *key, tfs_error *err)
{
	return tfs_token_key_from_bytes(out, key->key, key->layout, err);
}

tfs_layout tfs_token_key_layout(const tfs_token_key *key) { return key->layout; }
const uint8_t *tfs_token_key_bytes(const tfs_token_key *key) { return key->key; }

bool tfs_token_key_equal(const tfs_token_key *a, const tfs_token_key *b)
{
	return CRYPTO_memcmp(a->key, b->key, TFS_KEY_LEN) == 0;
}

int tfs_token_key_decrypt(const tfs_token_key *key, uint8_t **out, size_t *out_len,
                          tfs_layout *layout, const uint8_t *ct, size_t ct_len, tfs_error *err)
{
	return tfs_value_decrypt_ctx(out, out_len, layout, key->aes, ct, ct_len, err);
}

int tfs_token_key_from_bytes(tfs_token_key **out, const uint8_t key[TFS_KEY_LEN],
                             tfs_layout layout, tfs_error *err)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return tfs_nomem(err);
	memcpy((*out)->key, key, TFS_KEY_LEN);
	(*out)->layout = layout;
	int rc = tfs_aes_ctx_new(&(*out)->aes, key, err);
	if (rc != TFS_OK) {
		tfs_token_key_free(*out);
		*out = NULL;
	}
	return rc;
}
