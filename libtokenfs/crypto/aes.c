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
#include <pthread.h>
#include <stdlib.h>
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

/*
 * The two ciphers, fetched once: EVP_aes_256_gcm() and friends make
 * OpenSSL 3 look the implementation up again on every EVP_CipherInit_ex,
 * which cost more than the AES itself for a store's short values.
 */
static EVP_CIPHER *fetched_gcm, *fetched_cbc;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
	fetched_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	fetched_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	ERR_clear_error();
}

static const EVP_CIPHER *cipher_gcm(void)
{
	pthread_once(&fetch_once, fetch_ciphers);
	return fetched_gcm != NULL ? fetched_gcm : EVP_aes_256_gcm();
}

static const EVP_CIPHER *cipher_cbc(void)
{
	pthread_once(&fetch_once, fetch_ciphers);
	return fetched_cbc != NULL ? fetched_cbc : EVP_aes_256_cbc();
}

/* A GCM context keyed (key schedule and hash key computed); iv may be NULL
 * when every message sets its own (gcm_decrypt_keyed). */
static int gcm_init(EVP_CIPHER_CTX **out, int enc, const uint8_t key[TFS_KEY_LEN],
                    const uint8_t *iv, tfs_error *err)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return tfs_nomem(err);
	/* The IV length must be set before the IV: the default is 12 bytes. */
	if (EVP_CipherInit_ex(ctx, cipher_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TFS_IV_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return ossl_fail(err, "AES-256-GCM setup");
	}
	*out = ctx;
	return TFS_OK;
}

/* A CBC decryption context keyed, EVP padding off (see the top). */
static int cbc_dec_init(EVP_CIPHER_CTX **out, const uint8_t key[TFS_KEY_LEN], tfs_error *err)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return tfs_nomem(err);
	if (EVP_DecryptInit_ex(ctx, cipher_cbc(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return ossl_fail(err, "AES-256-CBC setup");
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

/* One GCM message on a keyed decryption context: only the IV is set, so
 * the key schedule is reused. */
static int gcm_decrypt_keyed(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t iv[TFS_IV_LEN],
                             const uint8_t *in, size_t len, const uint8_t tag[TFS_TAG_LEN],
                             tfs_error *err)
{
	int rc = check_len(len, err);
	if (rc != TFS_OK)
		return rc;
	/* SET_TAG takes a non-const pointer. */
	uint8_t t[TFS_TAG_LEN];
	memcpy(t, tag, sizeof(t));
	int n = 0, fin = 0;
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
	    (len > 0 && EVP_DecryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
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
	if ((rc = gcm_init(&ctx, 0, key, NULL, err)) != TFS_OK)
		return rc;
	rc = gcm_decrypt_keyed(ctx, out, iv, in, len, tag, err);
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
	if (EVP_EncryptInit_ex(ctx, cipher_cbc(), NULL, key, iv) != 1 ||
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

/* One CBC message on a keyed decryption context (padding off). */
static int cbc_decrypt_keyed(EVP_CIPHER_CTX *ctx, uint8_t *out, size_t *pt_len,
                             const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                             tfs_error *err)
{
	int n = 0, fin = 0, rc = TFS_OK;
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
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
	return rc;
}

static int cbc_check_len(size_t len, tfs_error *err)
{
	if (len == 0 || len % 16 != 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "CBC ciphertext of %zu bytes is not a non-zero multiple of 16", len);
	return check_len(len, err);
}

int tfs_aes_cbc_decrypt(uint8_t *out, size_t *pt_len, const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        tfs_error *err)
{
	*pt_len = 0;
	int rc = cbc_check_len(len, err);
	if (rc != TFS_OK)
		return rc;
	EVP_CIPHER_CTX *ctx = NULL;
	if ((rc = cbc_dec_init(&ctx, key, err)) != TFS_OK)
		return rc;
	rc = cbc_decrypt_keyed(ctx, out, pt_len, iv, in, len, err);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* ---- keyed decryption contexts, one per token key ---- */

struct tfs_aes_ctx {
	uint8_t key[TFS_KEY_LEN];
	EVP_CIPHER_CTX *gcm; /* keyed at first use */
	EVP_CIPHER_CTX *cbc;
};

int tfs_aes_ctx_new(tfs_aes_ctx **out, const uint8_t key[TFS_KEY_LEN], tfs_error *err)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return tfs_nomem(err);
	memcpy((*out)->key, key, TFS_KEY_LEN);
	return TFS_OK;
}

void tfs_aes_ctx_free(tfs_aes_ctx *c)
{
	if (c == NULL)
		return;
	/* EVP_CIPHER_CTX_free cleanses the key schedules. */
	EVP_CIPHER_CTX_free(c->gcm);
	EVP_CIPHER_CTX_free(c->cbc);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

int tfs_aes_ctx_gcm_decrypt(tfs_aes_ctx *c, uint8_t *out, const uint8_t iv[TFS_IV_LEN],
                            const uint8_t *in, size_t len, const uint8_t tag[TFS_TAG_LEN],
                            tfs_error *err)
{
	int rc;
	if (c->gcm == NULL && (rc = gcm_init(&c->gcm, 0, c->key, NULL, err)) != TFS_OK)
		return rc;
	return gcm_decrypt_keyed(c->gcm, out, iv, in, len, tag, err);
}

int tfs_aes_ctx_cbc_decrypt(tfs_aes_ctx *c, uint8_t *out, size_t *pt_len,
                            const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                            tfs_error *err)
{
	*pt_len = 0;
	int rc = cbc_check_len(len, err);
	if (rc != TFS_OK)
		return rc;
	if (c->cbc == NULL && (rc = cbc_dec_init(&c->cbc, c->key, err)) != TFS_OK)
		return rc;
	return cbc_decrypt_keyed(c->cbc, out, pt_len, iv, in, len, err);
}
