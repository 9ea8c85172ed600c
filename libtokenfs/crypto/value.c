/*
 * Encrypted attribute values (docs/format.md, "Keys and encryption"):
 *
 *   CBC: IV[16] || AES-256-CBC-PKCS#7(tokenKey, IV, plaintext)   16 + 16k, k >= 1
 *   GCM: IV[16] || AES-256-GCM(tokenKey, IV, plaintext) || tag[16]  32 + n
 *
 * Nothing in the bytes names the layout, so decryption tries GCM, whose tag
 * match is conclusive (a forgery by chance is 2^-128), then CBC.
 *
 * CBC has no integrity check: only the padding is verified. A wrong key or
 * a damaged value decrypts to noise whose padding is valid with probability
 * about 1/256 (a last byte of 0x01, or 0x02 0x02, ...), and then "succeeds"
 * with garbage plaintext. That is a property of SoftHSM's format that no
 * reader can remove; callers that check a key against many values (verify)
 * should count failures rather than trust one success.
 *
 * The fallback is unconditional, also for values that were written as GCM:
 * a GCM value whose tag fails (damaged, or a wrong key) is tried as CBC
 * too, and when its length fits CBC (plaintext a multiple of 16 bytes) it
 * is accepted as CBC garbage with the same ~1/256 probability. The API
 * cannot know which layout a store uses, and a store may be mixed after an
 * interrupted migration, so it reports what fits: a caller that knows a
 * value should be GCM (for instance, every other value of the token is)
 * must treat a CBC result for it as damage. *layout is there for that.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "core/error_internal.h"
#include "crypto/aes_internal.h"
#include "tokenfs/crypto.h"

/* Shortest encrypted value in either layout: IV + tag, or IV + one block. */
#define MIN_CT_LEN (TFS_IV_LEN + 16)

int tfs_value_decrypt(uint8_t **out, size_t *out_len, tfs_layout *layout,
                      const uint8_t key[TFS_KEY_LEN],
                      const uint8_t *ct, size_t ct_len, tfs_error *err)
{
	*out = NULL;
	*out_len = 0;
	if (layout != NULL)
		*layout = TFS_LAYOUT_NONE;
	tfs_aes_ctx *c = NULL;
	int rc = tfs_aes_ctx_new(&c, key, err);
	if (rc == TFS_OK)
		rc = tfs_value_decrypt_ctx(out, out_len, layout, c, ct, ct_len, err);
	tfs_aes_ctx_free(c);
	return rc;
}

/*
 * GCM is tried first on every value, also in a token whose values are all
 * CBC: CBC's padding check is not conclusive (about 1 in 256 GCM values of
 * a mixed store would pass as CBC noise, and migrate would then re-encrypt
 * noise), the GCM tag is. With the contexts keyed once per token key, the
 * failing GCM attempt costs about as much as the CBC decryption itself.
 */
int tfs_value_decrypt_ctx(uint8_t **out, size_t *out_len, tfs_layout *layout, tfs_aes_ctx *c,
                          const uint8_t *ct, size_t ct_len, tfs_error *err)
{
	*out = NULL;
	*out_len = 0;
	if (layout != NULL)
		*layout = TFS_LAYOUT_NONE;
	if (ct == NULL && ct_len > 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "value pointer is NULL");
	if (ct_len < MIN_CT_LEN)
		return tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		                     "encrypted value is %zu bytes; either layout needs at least %d "
		                     "(IV and tag, or IV and one CBC block)", ct_len, MIN_CT_LEN);
	if (ct_len > TFS_CRYPTO_MAX_LEN)
		return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
		                     "encrypted value of %zu bytes exceeds the %u-byte limit",
		                     ct_len, TFS_CRYPTO_MAX_LEN);

	/* Large enough for either: GCM writes ct_len - 32, CBC ct_len - 16. */
	size_t cap = ct_len - TFS_IV_LEN;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return tfs_nomem(err);
	const uint8_t *iv = ct;
	size_t pt_len = ct_len - TFS_IV_LEN - TFS_TAG_LEN;
	bool cbc_fits = (ct_len - TFS_IV_LEN) % 16 == 0;
	tfs_layout found = TFS_LAYOUT_GCM;

	int rc = tfs_aes_ctx_gcm_decrypt(c, buf, iv, ct + TFS_IV_LEN, pt_len,
	                                 ct + ct_len - TFS_TAG_LEN, err);
	if (rc == TFS_AES_MISMATCH && cbc_fits) {
		found = TFS_LAYOUT_CBC;
		rc = tfs_aes_ctx_cbc_decrypt(c, buf, &pt_len, iv, ct + TFS_IV_LEN,
		                             ct_len - TFS_IV_LEN, err);
	}
	if (rc == TFS_AES_MISMATCH && cbc_fits)
		rc = tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		                   "encrypted value of %zu bytes fits neither layout: GCM tag "
		                   "and CBC padding both fail (wrong token key, or damaged value)",
		                   ct_len);
	else if (rc == TFS_AES_MISMATCH)
		rc = tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		                   "encrypted value of %zu bytes fails its GCM tag and cannot be "
		                   "CBC (%zu bytes after the IV is not a multiple of 16): wrong "
		                   "token key, or damaged value", ct_len, ct_len - TFS_IV_LEN);
	if (rc != TFS_OK) {
		tfs_secure_free(buf, cap);
		return rc;
	}
	/* Wipe what lies past the plaintext (CBC padding), so that the
	 * caller's tfs_secure_free(*out, *out_len) leaves nothing behind. */
	OPENSSL_cleanse(buf + pt_len, cap - pt_len);
	*out = buf;
	*out_len = pt_len;
	if (layout != NULL)
		*layout = found;
	return TFS_OK;
}

int tfs_value_encrypt(uint8_t **out, size_t *out_len, tfs_layout layout,
                      const uint8_t key[TFS_KEY_LEN],
                      const uint8_t *pt, size_t pt_len, tfs_error *err)
{
	*out = NULL;
	*out_len = 0;
	if (layout != TFS_LAYOUT_CBC && layout != TFS_LAYOUT_GCM)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "cannot encrypt a value in layout %d: use cbc or gcm", (int)layout);
	if (pt == NULL && pt_len > 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "plaintext pointer is NULL");
	if (pt_len > TFS_CRYPTO_MAX_LEN)
		return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
		                     "value of %zu bytes exceeds the %u-byte limit",
		                     pt_len, TFS_CRYPTO_MAX_LEN);

	size_t size = TFS_IV_LEN + (layout == TFS_LAYOUT_GCM ? pt_len + TFS_TAG_LEN
	                                                     : tfs_cbc_padded_len(pt_len));
	uint8_t *buf = malloc(size);
	if (buf == NULL)
		return tfs_nomem(err);
	int rc;
	if (RAND_bytes(buf, TFS_IV_LEN) != 1) {
		ERR_clear_error();
		rc = tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET,
		                   "OpenSSL RAND_bytes failed to make an IV");
	} else if (layout == TFS_LAYOUT_GCM) {
		rc = tfs_aes_gcm_encrypt(buf + TFS_IV_LEN, buf + size - TFS_TAG_LEN, key, buf,
		                         pt, pt_len, err);
	} else {
		rc = tfs_aes_cbc_encrypt(buf + TFS_IV_LEN, key, buf, pt, pt_len, err);
	}
	if (rc != TFS_OK) {
		tfs_secure_free(buf, size);
		return rc;
	}
	*out = buf;
	*out_len = size;
	return TFS_OK;
}
