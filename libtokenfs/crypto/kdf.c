/*
 * SoftHSM's PIN-to-master-key derivation (SecureDataManager::pbeDeriveKey):
 *
 *   H = SHA-256(salt || PIN); then H = SHA-256(H), 1499 + salt[7] more times
 *
 * so 1500 to 1755 hashes in all. It is weak by today's standards (no memory
 * hardness, few rounds) but it is what every existing token uses.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/error_internal.h"
#include "tokenfs/crypto.h"

#define KDF_BASE_ROUNDS 1500u

int tfs_kdf(uint8_t out[TFS_KEY_LEN], const uint8_t *pin, size_t pin_len,
            const uint8_t salt[TFS_SALT_LEN], tfs_error *err)
{
	if (pin == NULL && pin_len > 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "KDF called with a NULL PIN of non-zero length");
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return tfs_nomem(err);

	int rc = TFS_OK;
	uint8_t h[TFS_KEY_LEN];
	unsigned int hl = 0;
	unsigned rounds = KDF_BASE_ROUNDS + salt[TFS_SALT_LEN - 1];
	const EVP_MD *md = EVP_sha256();

	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, salt, TFS_SALT_LEN) != 1 ||
	    (pin_len > 0 && EVP_DigestUpdate(ctx, pin, pin_len) != 1) ||
	    EVP_DigestFinal_ex(ctx, h, &hl) != 1)
		goto fail;
	for (unsigned i = 1; i < rounds; i++) {
		if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		    EVP_DigestUpdate(ctx, h, sizeof(h)) != 1 ||
		    EVP_DigestFinal_ex(ctx, h, &hl) != 1)
			goto fail;
	}
	memcpy(out, h, TFS_KEY_LEN);
	goto done;

fail:
	ERR_clear_error();
	OPENSSL_cleanse(out, TFS_KEY_LEN);
	rc = tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET,
	                   "OpenSSL SHA-256 failed while deriving the master key");
done:
	OPENSSL_cleanse(h, sizeof(h));
	EVP_MD_CTX_free(ctx); /* frees the digest state, which held H */
	return rc;
}
