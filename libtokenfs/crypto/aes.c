/*
 * AES-256-GCM and AES-256-CBC through OpenSSL's EVP interface, in the exact
 * shapes SoftHSM uses: 16-byte IVs, empty AAD, 16-byte tags, PKCS#7.
 *
 * CBC decryption runs with EVP padding off and checks the padding here in
 * constant time: EVP's own check branches on the padding bytes and leaves a
 * "bad decrypt" error on the queue for what is, for us, an expected answer
 * (every wrong PIN ends there).
 */
#include "crypto/aes_internal.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/error_internal.h"

_Static_assert(TFS_CRYPTO_MAX_LEN + 32u <= INT_MAX, "EVP lengths are int");

/* An OpenSSL failure that no input should cause: name the step and the
 * library's reason, then clear the queue so it cannot leak into later calls. */
static int ossl_fail(tfs_error *err, const char *step)
{
	char reason[256] = "no reason given";
	unsigned long e = ERR_peek_last_error();
	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET,
	                     "OpenSSL failed in %s: %s", step, reason);
}

static int check_len(size_t len, tfs_error *err)
{
	if (len > TFS_CRYPTO_MAX_LEN)
		return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
		                     "%zu bytes to encrypt or decrypt exceed the %u-byte limit",
		                     len, TFS_CRYPTO_MAX_LEN);
	return TFS_OK;
}

/* A GCM context keyed for one message. */
static int gcm_init(EVP_CIPHER_CTX **out, int enc, const uint8_t key[TFS_KEY_LEN],
                    const uint8_t iv[TFS_IV_LEN], tfs_error *err)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return tfs_nomem(err);
	/* The IV length must be set before the IV: the default is 12 bytes. */
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TFS_IV_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return ossl_fail(err, "AES-256-GCM setup");
	}
	*out = ctx;
	return TFS_OK;
}

int tfs_aes_gcm_encrypt(uint8_t *out, uint8_t tag[TFS_TAG_LEN], const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        tfs_error *err)
{
	int rc = check_len(len, err);
	if (rc != TFS_OK)
		return rc;
	EVP_CIPHER_CTX *ctx = NULL;
	if ((rc = gcm_init(&ctx, 1, key, iv, err)) != TFS_OK)
		return rc;
	int n = 0, fin = 0;
	if ((len > 0 && EVP_EncryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TFS_TAG_LEN, tag) != 1) {
		rc = ossl_fail(err, "AES-256-GCM encryption");
		OPENSSL_cleanse(out, len);
	}
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int tfs_aes_gcm_decrypt(uint8_t *out, const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        const uint8_t tag[TFS_TAG_LEN], tfs_error *err)
{
	int rc = check_len(len, err);
	if (rc != TFS_OK)
		return rc;
	EVP_CIPHER_CTX *ctx = NULL;
	if ((rc = gcm_init(&ctx, 0, key, iv, err)) != TFS_OK)
		return rc;
	/* SET_TAG takes a non-const pointer. */
	uint8_t t[TFS_TAG_LEN];
	memcpy(t, tag, sizeof(t));
	int n = 0, fin = 0;
	if ((len > 0 && EVP_DecryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TFS_TAG_LEN, t) != 1) {
		rc = ossl_fail(err, "AES-256-GCM decryption");
		goto done;
	}
	/* Final compares the tag in constant time; a mismatch is an answer,
	 * not a failure, so keep it off the error queue. */
	ERR_set_mark();
	if (EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1)
		rc = TFS_AES_MISMATCH;
	ERR_pop_to_mark();
done:
	if (rc != TFS_OK)
		OPENSSL_cleanse(out, len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int tfs_aes_cbc_encrypt(uint8_t *out, const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        tfs_error *err)
{
	int rc = check_len(len, err);
	if (rc != TFS_OK)
		return rc;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return tfs_nomem(err);
	/* EVP pads with PKCS#7 by default. */
	int n = 0, fin = 0;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
	    (len > 0 && EVP_EncryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1 ||
	    (size_t)n + (size_t)fin != tfs_cbc_padded_len(len)) {
		rc = ossl_fail(err, "AES-256-CBC encryption");
		OPENSSL_cleanse(out, tfs_cbc_padded_len(len));
	}
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* All-ones when a < b, else zero; a and b below 2^31. */
static unsigned ct_lt_mask(unsigned a, unsigned b)
{
	return 0u - ((a - b) >> (sizeof(unsigned) * CHAR_BIT - 1));
}

static unsigned ct_eq_mask(unsigned a, unsigned b)
{
	return ct_lt_mask(a ^ b, 1);
}

/*
 * PKCS#7 for 16-byte blocks: the last byte p is 1..16 and the last p bytes
 * all equal p. Reads the whole last block whatever p is, so the time does
 * not depend on the (secret-derived) padding bytes.
 */
static bool pkcs7_unpad(const uint8_t *buf, size_t len, size_t *pt_len)
{
	const uint8_t *last = buf + len - 16;
	unsigned p = last[15];
	unsigned good = ~ct_eq_mask(p, 0) & ct_lt_mask(p, 17);
	for (unsigned i = 0; i < 16; i++) {
		unsigned in_pad = ct_lt_mask(i, p);
		good &= ~in_pad | ct_eq_mask(last[15 - i], p);
	}
	*pt_len = len - (p & good & 0xffu);
	return (good & 1u) != 0;
}

int tfs_aes_cbc_decrypt(uint8_t *out, size_t *pt_len, const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        tfs_error *err)
{
	*pt_len = 0;
	if (len == 0 || len % 16 != 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "CBC ciphertext of %zu bytes is not a non-zero multiple of 16", len);
	int rc = check_len(len, err);
	if (rc != TFS_OK)
		return rc;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return tfs_nomem(err);
	int n = 0, fin = 0;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n, in, (int)len) != 1 ||
	    EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1 ||
	    (size_t)n + (size_t)fin != len) {
		rc = ossl_fail(err, "AES-256-CBC decryption");
		goto done;
	}
	if (!pkcs7_unpad(out, len, pt_len)) {
		*pt_len = 0;
		rc = TFS_AES_MISMATCH;
	}
done:
	if (rc != TFS_OK)
		OPENSSL_cleanse(out, len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}
