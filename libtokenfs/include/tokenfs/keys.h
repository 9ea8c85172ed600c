/*
 * A token's key, unlocked with a PIN, and what it opens: the encrypted
 * attribute values of private objects. Also the rules for what counts as key
 * material, and fingerprints that identify a key without revealing it.
 *
 * Secrets: a tfs_token_key holds the 32-byte token key and wipes it in
 * tfs_token_key_free. Decrypted values are freed with tfs_secure_free.
 */
#ifndef TOKENFS_KEYS_H
#define TOKENFS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/crypto.h"
#include "tokenfs/error.h"
#include "tokenfs/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfs_token_key tfs_token_key;

/*
 * Unwraps tok's token key from the PIN blob of `role` with `pin`. Errors:
 * TFS_E_WRONG_PIN ("wrong user PIN for token 'demo' (serial ...)"),
 * TFS_E_NOTFOUND when the token has no blob for that role, TFS_E_DAMAGED
 * when the blob is malformed. The PIN is neither kept nor ever put in a
 * message. On success the caller owns *out (tfs_token_key_free).
 */
int tfs_token_unlock(tfs_token_key **out, const tfs_token *tok, tfs_pin_role role,
                     const uint8_t *pin, size_t pin_len, tfs_error *err);

/* Wipes and frees. Accepts NULL. */
void tfs_token_key_free(tfs_token_key *key);

/* A copy of key with AES contexts of its own, for a second thread (one key
 * decrypts in one thread at a time: tfs_token_key_decrypt). */
int tfs_token_key_dup(tfs_token_key **out, const tfs_token_key *key, tfs_error *err);

/* The layout of the PIN blob the key was unwrapped from. */
tfs_layout tfs_token_key_layout(const tfs_token_key *key);

/* The 32 key bytes (borrowed; for an explicit export such as --reveal). */
const uint8_t *tfs_token_key_bytes(const tfs_token_key *key);

/* Whether two unlocked keys are the same token key (constant time). */
bool tfs_token_key_equal(const tfs_token_key *a, const tfs_token_key *b);

/*
 * Decrypts one stored attribute value (tfs_value_decrypt with this key).
 * *out is freed with tfs_secure_free(*out, *out_len). The key keeps AES
 * contexts keyed once for all its values, so one key must not decrypt in
 * two threads at once.
 */
int tfs_token_key_decrypt(const tfs_token_key *key, uint8_t **out, size_t *out_len,
                          tfs_layout *layout, const uint8_t *ct, size_t ct_len,
                          tfs_error *err);

/*
 * Re-encrypts every encrypted value of obj (tfs_object_attr_encrypted):
 * decrypts it with `from` and encrypts it with to_key in `layout`, fresh IV
 * each. The tool for changing a store's layout or rotating its token key.
 * Stops at the first value that does not decrypt (TFS_E_DAMAGED; the error
 * names the attribute's offset) and then leaves obj partly re-encrypted:
 * callers write nothing in that case.
 */
int tfs_object_reencrypt(tfs_object *obj, const tfs_token_key *from,
                         const uint8_t to_key[TFS_KEY_LEN], tfs_layout layout,
                         tfs_error *err);

/* Sets the SO or user PIN blob of a parsed token.object (tfs_object_put_bytes:
 * every copy of a repeated blob, or a new attribute where the token has none,
 * as C_InitPIN adds a user PIN never set). */
int tfs_metadata_set_pin_blob(tfs_object *meta, tfs_pin_role role,
                              const uint8_t blob[TFS_PIN_BLOB_LEN], tfs_error *err);

/*
 * Whether an attribute of an object of this class holds secret key material
 * (CKA_VALUE of secret and private keys, the RSA private components, seeds).
 * Such values are redacted unless the user asks to reveal them.
 */
bool tfs_is_key_material(uint64_t object_class, uint64_t attr_type);

/*
 * Whether attribute a of obj must be treated as secret key material. Fails
 * closed: the class in a file is unauthenticated plaintext, so a
 * key-material attribute type is secret unless nothing in the object says
 * key: no key class in any CKA_CLASS (repeats included), no CKA_KEY_TYPE,
 * CKA_SENSITIVE or CKA_EXTRACTABLE, and a CKA_CLASS that names a non-key
 * class. Use this, not tfs_is_key_material, for anything read from a store.
 */
bool tfs_object_attr_is_key_material(const tfs_object *obj, const tfs_attr *a);

/*
 * A fingerprint that identifies key material without revealing it:
 * "kcv:1a2b3c" (the key check value: the first 3 bytes of the encryption of
 * a zero block) for AES and triple-DES keys, otherwise "sha256:" and the
 * first 8 bytes of the value's SHA-256, in hex. Writes a NUL-terminated
 * string of at most TFS_FINGERPRINT_LEN bytes.
 */
#define TFS_FINGERPRINT_LEN 32
int tfs_key_fingerprint(char out[TFS_FINGERPRINT_LEN], uint64_t key_type,
                        uint64_t attr_type, const uint8_t *value, size_t len,
                        tfs_error *err);

/* The key check value SoftHSM stores in CKA_CHECK_VALUE for AES and
 * triple-DES keys: 3 bytes. TFS_E_NOTFOUND for other key types. */
int tfs_key_check_value(uint8_t kcv[3], uint64_t key_type, const uint8_t *value,
                        size_t len, tfs_error *err);

#ifdef __cplusplus
}
#endif
#endif
