/*
 * AES-256 building blocks shared by the PIN-blob and attribute-value code.
 * They know nothing about SoftHSM's layouts: the callers split IV,
 * ciphertext and tag and decide what a mismatch means.
 *
 * Decrypt functions return TFS_OK, TFS_AES_MISMATCH when the bytes do not
 * authenticate (GCM tag) or unpad (CBC), or a negative tfs_status when
 * OpenSSL itself fails (err is then set). A mismatch is an expected outcome,
 * so it sets no error text and leaves nothing on OpenSSL's error queue.
 */
#ifndef TFS_CRYPTO_AES_INTERNAL_H
#define TFS_CRYPTO_AES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/crypto.h"

#define TFS_AES_MISMATCH 1

/* Largest plaintext or ciphertext handled: EVP counts in int, and no
 * attribute can be larger than an object file anyway. */
#define TFS_CRYPTO_MAX_LEN (1u << 30)

/* AES-256-GCM, 16-byte IV, empty AAD, 16-byte tag; out gets len bytes.
 * On a mismatch out is wiped. */
int tfs_aes_gcm_encrypt(uint8_t *out, uint8_t tag[TFS_TAG_LEN], const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        tfs_error *err);
int tfs_aes_gcm_decrypt(uint8_t *out, const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        const uint8_t tag[TFS_TAG_LEN], tfs_error *err);

/* AES-256-CBC with PKCS#7 padding: out gets tfs_cbc_padded_len(len) bytes. */
int tfs_aes_cbc_encrypt(uint8_t *out, const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        tfs_error *err);
/* AES-256-CBC decryption of len bytes (a non-zero multiple of 16) into out,
 * then a constant-time PKCS#7 check; *pt_len is the unpadded length. On a
 * mismatch out is wiped. */
int tfs_aes_cbc_decrypt(uint8_t *out, size_t *pt_len, const uint8_t key[TFS_KEY_LEN],
                        const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                        tfs_error *err);

/*
 * Decryption contexts keyed once for many values under one key (a token
 * key): each value then only sets its IV, reusing the key schedule. Not for
 * use by two threads at once. tfs_aes_ctx_free wipes the key copy and the
 * schedules; it accepts NULL. Results as tfs_aes_gcm_decrypt and
 * tfs_aes_cbc_decrypt.
 */
typedef struct tfs_aes_ctx tfs_aes_ctx;
int tfs_aes_ctx_new(tfs_aes_ctx **out, const uint8_t key[TFS_KEY_LEN], tfs_error *err);
void tfs_aes_ctx_free(tfs_aes_ctx *c);
int tfs_aes_ctx_gcm_decrypt(tfs_aes_ctx *c, uint8_t *out, const uint8_t iv[TFS_IV_LEN],
                            const uint8_t *in, size_t len, const uint8_t tag[TFS_TAG_LEN],
                            tfs_error *err);
int tfs_aes_ctx_cbc_decrypt(tfs_aes_ctx *c, uint8_t *out, size_t *pt_len,
                            const uint8_t iv[TFS_IV_LEN], const uint8_t *in, size_t len,
                            tfs_error *err);

/* tfs_value_decrypt (tokenfs/crypto.h) on a keyed context. */
int tfs_value_decrypt_ctx(uint8_t **out, size_t *out_len, tfs_layout *layout, tfs_aes_ctx *c,
                          const uint8_t *ct, size_t ct_len, tfs_error *err);

/* Length of a CBC ciphertext of len plaintext bytes: PKCS#7 always adds
 * 1 to 16 bytes. */
static inline size_t tfs_cbc_padded_len(size_t len)
{
	return (len / 16 + 1) * 16;
}

#endif
