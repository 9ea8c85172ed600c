/*
 * SoftHSM's key hierarchy: PIN -> master key (iterated SHA-256 over a salt)
 * -> token key (wrapped in a 72-byte PIN blob) -> attribute values. Two
 * layouts exist for both wrapping steps: AES-256-CBC with PKCS#7 padding
 * (every SoftHSM release) and AES-256-GCM (SoftHSMv2 pull request #627).
 * See docs/format.md, "Keys and encryption".
 *
 * Secrets: every function here wipes its own temporaries. Buffers a function
 * hands out that hold secrets are freed with tfs_secure_free.
 */
#ifndef TOKENFS_CRYPTO_H
#define TOKENFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFS_KEY_LEN 32       /* AES-256 master and token keys */
#define TFS_SALT_LEN 8
#define TFS_IV_LEN 16
#define TFS_TAG_LEN 16
#define TFS_PIN_BLOB_LEN 72

typedef enum tfs_layout {
	TFS_LAYOUT_NONE = 0,
	TFS_LAYOUT_CBC = 1,
	TFS_LAYOUT_GCM = 2
} tfs_layout;

/* "cbc", "gcm" or "none". */
const char *tfs_layout_name(tfs_layout layout);

/*
 * SoftHSM's KDF: H = SHA-256(salt || PIN), then H = SHA-256(H) another
 * 1499 + salt[7] times. Writes the 32-byte master key to out.
 */
int tfs_kdf(uint8_t out[TFS_KEY_LEN], const uint8_t *pin, size_t pin_len,
            const uint8_t salt[TFS_SALT_LEN], tfs_error *err);

/*
 * Unwraps a PIN blob with a PIN. GCM is tried first (a tag match is
 * conclusive), then CBC (valid padding and the "RJR" magic). On success
 * writes the token key and the layout found. TFS_E_WRONG_PIN when the PIN
 * does not fit; TFS_E_DAMAGED when the blob decrypts but is malformed (right
 * padding, wrong magic) or has the wrong length.
 */
int tfs_pinblob_unwrap(uint8_t token_key[TFS_KEY_LEN], tfs_layout *layout,
                       const uint8_t *blob, size_t blob_len,
                       const uint8_t *pin, size_t pin_len, tfs_error *err);

/* Wraps a token key under a PIN with fresh random salt and IV. */
int tfs_pinblob_wrap(uint8_t blob[TFS_PIN_BLOB_LEN], tfs_layout layout,
                     const uint8_t token_key[TFS_KEY_LEN],
                     const uint8_t *pin, size_t pin_len, tfs_error *err);

/*
 * Decrypts one attribute value with the token key: GCM first (tag), then CBC
 * (padding). *out is a new buffer of *out_len bytes (at least 1 byte is
 * allocated even for empty plaintext); free it with tfs_secure_free.
 * TFS_E_DAMAGED when neither layout fits.
 */
int tfs_value_decrypt(uint8_t **out, size_t *out_len, tfs_layout *layout,
                      const uint8_t key[TFS_KEY_LEN],
                      const uint8_t *ct, size_t ct_len, tfs_error *err);

/* Encrypts one attribute value with a fresh random IV in the given layout. */
int tfs_value_encrypt(uint8_t **out, size_t *out_len, tfs_layout layout,
                      const uint8_t key[TFS_KEY_LEN],
                      const uint8_t *pt, size_t pt_len, tfs_error *err);

/* Wipes len bytes at p with OPENSSL_cleanse, then frees p. Accepts NULL. */
void tfs_secure_free(void *p, size_t len);

/*
 * Keeps this process's secrets out of core dumps and away from other
 * processes of the same user: RLIMIT_CORE 0 and PR_SET_DUMPABLE 0 (which also
 * makes /proc/PID/mem and ptrace root-only). Call it before reading any PIN
 * or key; a program that links libtokenfs decides for itself, so the library
 * never calls it on its own. TFS_E_IO when the kernel refuses.
 */
int tfs_protect_process(tfs_error *err);

#ifdef __cplusplus
}
#endif
#endif
