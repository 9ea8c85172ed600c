/*
 * PIN blobs: the token key wrapped under a PIN's master key (docs/format.md,
 * "Keys and encryption"). Both layouts are 72 bytes:
 *
 *   CBC: salt[8] IV[16] AES-256-CBC-PKCS#7(mk, IV, "RJR" || key[32])    (48)
 *   GCM: salt[8] IV[16] AES-256-GCM(mk, IV, key[32]) (32) tag[16]
 *
 * Telling a wrong PIN from a damaged blob. A wrong PIN gives a master key
 * unrelated to the blob, so GCM's tag fails and CBC decrypts to noise whose
 * padding is invalid (or, about 1 time in 256, valid by chance with a length
 * other than 35). Only one outcome is evidence of damage rather than of a
 * wrong PIN: CBC padding valid, plaintext exactly 35 bytes, and no "RJR"
 * magic; or padding valid and the magic there with any other length (the
 * PIN is right, the content is not a token key). Noise lands there with probability 2^-104, while a PIN that is
 * right does so whenever the IV's first 3 bytes or the first ciphertext
 * block were changed. Everything else that fails is reported as a wrong
 * PIN, including damage that no check can tell from one:
 *  - a GCM blob with any changed byte (the tag fails, as for a wrong PIN);
 *  - a changed salt (it feeds the KDF) or a changed padding block;
 *  - and, undetectably here, a change in IV bytes 3..15 or in the second
 *    ciphertext block of a CBC blob: the key unwraps "successfully" with
 *    some bytes altered; only the values it then fails to decrypt show it.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "core/error_internal.h"
#include "crypto/aes_internal.h"
#include "tokenfs/crypto.h"

#define MAGIC "RJR"
#define MAGIC_LEN 3
#define CBC_PT_LEN (MAGIC_LEN + TFS_KEY_LEN)          /* 35 */
#define CBC_CT_LEN (TFS_PIN_BLOB_LEN - TFS_SALT_LEN - TFS_IV_LEN) /* 48 */

_Static_assert(TFS_SALT_LEN + TFS_IV_LEN + TFS_KEY_LEN + TFS_TAG_LEN == TFS_PIN_BLOB_LEN,
               "GCM blob layout");
_Static_assert(CBC_CT_LEN == (CBC_PT_LEN / 16 + 1) * 16, "CBC blob layout");

int tfs_pinblob_unwrap(uint8_t token_key[TFS_KEY_LEN], tfs_layout *layout,
                       const uint8_t *blob, size_t blob_len,
                       const uint8_t *pin, size_t pin_len, tfs_error *err)
{
	/* Whatever fails, the caller is left with zeros, not a stale key. */
	OPENSSL_cleanse(token_key, TFS_KEY_LEN);
	if (layout != NULL)
		*layout = TFS_LAYOUT_NONE;
	if (blob == NULL && blob_len > 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "PIN blob pointer is NULL");
	if (blob_len != TFS_PIN_BLOB_LEN)
		return tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		                     "PIN blob is %zu bytes; SoftHSM writes exactly %d "
		                     "(salt 8, IV 16, wrapped key 48)", blob_len, TFS_PIN_BLOB_LEN);

	const uint8_t *salt = blob;
	const uint8_t *iv = blob + TFS_SALT_LEN;
	const uint8_t *body = iv + TFS_IV_LEN;
	uint8_t mk[TFS_KEY_LEN];
	uint8_t pt[CBC_CT_LEN];
	size_t pt_len = 0;
	tfs_layout found = TFS_LAYOUT_NONE;

	int rc = tfs_kdf(mk, pin, pin_len, salt, err);
	if (rc != TFS_OK)
		goto fail;

	rc = tfs_aes_gcm_decrypt(pt, mk, iv, body, TFS_KEY_LEN, body + TFS_KEY_LEN, err);
	if (rc == TFS_OK) {
		found = TFS_LAYOUT_GCM;
		memcpy(token_key, pt, TFS_KEY_LEN);
		goto done;
	}
	if (rc != TFS_AES_MISMATCH)
		goto fail;

	rc = tfs_aes_cbc_decrypt(pt, &pt_len, mk, iv, body, CBC_CT_LEN, err);
	if (rc < 0)
		goto fail;
	if (rc != TFS_AES_MISMATCH && pt_len != CBC_PT_LEN && pt_len >= MAGIC_LEN &&
	    CRYPTO_memcmp(pt, MAGIC, MAGIC_LEN) == 0) {
		/* Valid padding and the magic: the PIN is right (noise does this
		 * with probability 2^-32), but what it wraps is no token key. */
		rc = tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		                   "PIN blob damaged: the PIN opens it (valid padding, magic "
		                   "\"RJR\") but it holds %zu bytes instead of %d (the magic and "
		                   "a 32-byte token key)", pt_len, CBC_PT_LEN);
		goto fail;
	}
	if (rc == TFS_AES_MISMATCH || pt_len != CBC_PT_LEN) {
		rc = tfs_error_set(err, TFS_E_WRONG_PIN, TFS_NO_OFFSET,
		                   "wrong PIN: under it the blob's GCM tag and CBC padding both "
		                   "fail (a damaged salt, GCM blob or CBC padding block looks the same)");
		goto fail;
	}
	if (CRYPTO_memcmp(pt, MAGIC, MAGIC_LEN) != 0) {
		/* The first 3 plaintext bytes are the magic, never key bytes. */
		rc = tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		                   "PIN blob damaged: CBC padding is valid but the magic reads "
		                   "%02x%02x%02x instead of 524a52 (\"RJR\"): its IV or first "
		                   "ciphertext block was altered", pt[0], pt[1], pt[2]);
		goto fail;
	}
	found = TFS_LAYOUT_CBC;
	memcpy(token_key, pt + MAGIC_LEN, TFS_KEY_LEN);
	goto done;

fail:
	OPENSSL_cleanse(token_key, TFS_KEY_LEN);
done:
	OPENSSL_cleanse(mk, sizeof(mk));
	OPENSSL_cleanse(pt, sizeof(pt));
	if (rc == TFS_OK && layout != NULL)
		*layout = found;
	return rc;
}

int tfs_pinblob_wrap(uint8_t blob[TFS_PIN_BLOB_LEN], tfs_layout layout,
                     const uint8_t token_key[TFS_KEY_LEN],
                     const uint8_t *pin, size_t pin_len, tfs_error *err)
{
	if (layout != TFS_LAYOUT_CBC && layout != TFS_LAYOUT_GCM)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "cannot wrap a PIN blob in layout %d: use cbc or gcm", (int)layout);

	uint8_t mk[TFS_KEY_LEN];
	uint8_t pt[CBC_PT_LEN];
	uint8_t *salt = blob;
	uint8_t *iv = blob + TFS_SALT_LEN;
	uint8_t *body = iv + TFS_IV_LEN;
	int rc;

	/* Fresh salt and IV for every wrap: reusing either with the same PIN
	 * would repeat the master key or the keystream. */
	if (RAND_bytes(blob, TFS_SALT_LEN + TFS_IV_LEN) != 1) {
		ERR_clear_error();
		rc = tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET,
		                   "OpenSSL RAND_bytes failed to make a salt and IV");
		goto fail;
	}
	rc = tfs_kdf(mk, pin, pin_len, salt, err);
	if (rc != TFS_OK)
		goto fail;
	if (layout == TFS_LAYOUT_GCM) {
		rc = tfs_aes_gcm_encrypt(body, body + TFS_KEY_LEN, mk, iv, token_key, TFS_KEY_LEN, err);
	} else {
		memcpy(pt, MAGIC, MAGIC_LEN);
		memcpy(pt + MAGIC_LEN, token_key, TFS_KEY_LEN);
		rc = tfs_aes_cbc_encrypt(body, mk, iv, pt, CBC_PT_LEN, err);
	}
	if (rc != TFS_OK)
		goto fail;
	goto done;

fail:
	OPENSSL_cleanse(blob, TFS_PIN_BLOB_LEN);
done:
	OPENSSL_cleanse(mk, sizeof(mk));
	OPENSSL_cleanse(pt, sizeof(pt));
	return rc;
}
