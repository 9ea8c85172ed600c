/*
 * The cheapest conclusive test of a candidate master key against a blob.
 *
 * CBC: the plaintext is "RJR" || key[32], 35 bytes, so its last 16-byte
 * block is 3 key bytes and 13 bytes of PKCS#7 padding 0x0d. Decrypting only
 * that block (one AES block, XOR the previous ciphertext block) and finding
 * all 13 padding bytes right happens by chance once in 2^104 wrong keys; a
 * hit is then confirmed by the full unwrap (tfs_pinblob_unwrap).
 * GCM: the tag over the 32-byte wrapped key, which is conclusive itself.
 *
 * The layout is not known before the PIN is (both are 72 bytes), so every
 * key is tested both ways; both are a few hundred nanoseconds next to the
 * KDF's 1500+ compressions. The contexts are made once per thread and only
 * re-keyed per candidate.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "audit/audit_internal.h"
#include "core/error_internal.h"

#define CBC_PAD 13 /* 48-byte ciphertext of a 35-byte plaintext */

struct audit_checker {
	EVP_CIPHER_CTX *ecb, *gcm;
	uint8_t blob[TFS_PIN_BLOB_LEN];
};

void audit_checker_free(audit_checker *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->ecb);
	EVP_CIPHER_CTX_free(c->gcm);
	free(c);
}

int audit_checker_new(audit_checker **out, const uint8_t blob[TFS_PIN_BLOB_LEN], tfs_error *err)
{
	*out = NULL;
	audit_checker *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return tfs_nomem(err);
	memcpy(c->blob, blob, TFS_PIN_BLOB_LEN);
	c->ecb = EVP_CIPHER_CTX_new();
	c->gcm = EVP_CIPHER_CTX_new();
	if (c->ecb == NULL || c->gcm == NULL ||
	    EVP_DecryptInit_ex(c->ecb, EVP_aes_256_ecb(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c->ecb, 0) != 1 ||
	    EVP_DecryptInit_ex(c->gcm, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->gcm, EVP_CTRL_GCM_SET_IVLEN, TFS_IV_LEN, NULL) != 1) {
		ERR_clear_error();
		audit_checker_free(c);
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET,
		                     "OpenSSL could not set up AES-256-ECB and AES-256-GCM");
	}
	*out = c;
	return TFS_OK;
}

static bool cbc_last_block(audit_checker *c, const uint8_t mk[TFS_KEY_LEN])
{
	const uint8_t *ct = c->blob + TFS_SALT_LEN + TFS_IV_LEN; /* 3 blocks */
	uint8_t p[16];
	int n = 0;
	if (EVP_DecryptInit_ex(c->ecb, NULL, NULL, mk, NULL) != 1 ||
	    EVP_DecryptUpdate(c->ecb, p, &n, ct + 32, 16) != 1 || n != 16) {
		ERR_clear_error();
		return false;
	}
	unsigned bad = 0;
	for (int i = 16 - CBC_PAD; i < 16; i++)
		bad |= (unsigned)(p[i] ^ ct[16 + i] ^ CBC_PAD);
	OPENSSL_cleanse(p, sizeof(p));
	return bad == 0;
}

static bool gcm_tag(audit_checker *c, const uint8_t mk[TFS_KEY_LEN])
{
	const uint8_t *iv = c->blob + TFS_SALT_LEN;
	const uint8_t *ct = iv + TFS_IV_LEN;
	uint8_t pt[TFS_KEY_LEN];
	int n = 0, fin = 0;
	bool ok = EVP_DecryptInit_ex(c->gcm, NULL, NULL, mk, iv) == 1 &&
	          EVP_DecryptUpdate(c->gcm, pt, &n, ct, TFS_KEY_LEN) == 1 &&
	          EVP_CIPHER_CTX_ctrl(c->gcm, EVP_CTRL_GCM_SET_TAG, TFS_TAG_LEN,
	                              (void *)(ct + TFS_KEY_LEN)) == 1 &&
	          EVP_DecryptFinal_ex(c->gcm, pt + n, &fin) == 1;
	if (!ok)
		ERR_clear_error();
	OPENSSL_cleanse(pt, sizeof(pt));
	return ok;
}

tfs_layout audit_check(audit_checker *c, const uint8_t mk[TFS_KEY_LEN])
{
	if (cbc_last_block(c, mk))
		return TFS_LAYOUT_CBC;
	if (gcm_tag(c, mk))
		return TFS_LAYOUT_GCM;
	return TFS_LAYOUT_NONE;
}
