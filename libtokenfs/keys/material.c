/*
 * What is key material, and how to name a key without showing it.
 */
#include "tokenfs/keys.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <p11-kit/pkcs11.h>

#include "core/error_internal.h"
#include "crypto/digest_internal.h"
#include "tokenfs/object.h"

/* PKCS#11 3.2 (ML-DSA/ML-KEM seeds); older headers, such as Debian 12's
 * p11-kit, do not have it yet. */
#ifndef CKA_SEED
#define CKA_SEED 0x637UL
#endif

bool tfs_is_key_material(uint64_t object_class, uint64_t attr_type)
{
	if (object_class != CKO_SECRET_KEY && object_class != CKO_PRIVATE_KEY)
		return false;
	switch (attr_type) {
	case CKA_VALUE: /* secret keys; EC, EdDSA, DSA, DH private values */
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
	case CKA_SEED:
		return true;
	default:
		return false;
	}
}

static bool is_material_type(uint64_t type)
{
	return tfs_is_key_material(CKO_SECRET_KEY, type);
}

bool tfs_object_attr_is_key_material(const tfs_object *obj, const tfs_attr *a)
{
	if (!is_material_type(tfs_attr_type(a)))
		return false;
	bool has_class = false;
	for (size_t i = 0; i < tfs_object_attr_count(obj); i++) {
		const tfs_attr *x = tfs_object_attr(obj, i);
		uint64_t t = tfs_attr_type(x);
		if (t == CKA_KEY_TYPE || t == CKA_SENSITIVE || t == CKA_EXTRACTABLE)
			return true;
		if (t != CKA_CLASS)
			continue;
		has_class = true;
		uint64_t cls = tfs_attr_kind(x) == TFS_KIND_ULONG ? tfs_attr_ulong(x) : UINT64_MAX;
		if (cls != CKO_DATA && cls != CKO_CERTIFICATE && cls != CKO_PUBLIC_KEY)
			return true; /* a key class, or one we do not know */
	}
	return !has_class;
}

static const EVP_CIPHER *kcv_cipher(uint64_t key_type, size_t len, size_t *block)
{
	*block = 16;
	if (key_type == CKK_AES) {
		switch (len) {
		case 16: return EVP_aes_128_ecb();
		case 24: return EVP_aes_192_ecb();
		case 32: return EVP_aes_256_ecb();
		default: return NULL;
		}
	}
	*block = 8;
	if (key_type == CKK_DES3 && len == 24)
		return EVP_des_ede3_ecb();
	if (key_type == CKK_DES2 && len == 16)
		return EVP_des_ede_ecb();
	return NULL;
}

int tfs_key_check_value(uint8_t kcv[3], uint64_t key_type, const uint8_t *value, size_t len,
                        tfs_error *err)
{
	size_t block;
	const EVP_CIPHER *cipher = kcv_cipher(key_type, len, &block);
	if (cipher == NULL)
		return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET,
		                     "no key check value for key type 0x%llx of %zu bytes",
		                     (unsigned long long)key_type, len);
	static const uint8_t zero[16] = {0};
	uint8_t ct[32];
	int n = 0, rc = TFS_E_CRYPTO;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx != NULL && EVP_EncryptInit_ex(ctx, cipher, NULL, value, NULL) == 1 &&
	    EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	    EVP_EncryptUpdate(ctx, ct, &n, zero, (int)block) == 1 && n == (int)block) {
		memcpy(kcv, ct, 3);
		rc = TFS_OK;
	}
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(ct, sizeof(ct));
	if (rc != TFS_OK)
		return tfs_error_set(err, rc, TFS_NO_OFFSET, "key check value: OpenSSL failed");
	return TFS_OK;
}

int tfs_key_fingerprint(char out[TFS_FINGERPRINT_LEN], uint64_t key_type, uint64_t attr_type,
                        const uint8_t *value, size_t len, tfs_error *err)
{
	uint8_t kcv[3];
	if (attr_type == CKA_VALUE && tfs_key_check_value(kcv, key_type, value, len, NULL) == TFS_OK) {
		snprintf(out, TFS_FINGERPRINT_LEN, "kcv:%02x%02x%02x", kcv[0], kcv[1], kcv[2]);
		return TFS_OK;
	}
	uint8_t md[TFS_SHA256_LEN];
	int rc = tfs_sha256(md, value, len, err);
	if (rc != TFS_OK)
		return rc;
	/* "sha256:" and 8 bytes in hex, by hand (a snprintf a byte cost more
	 * than the hash of a short key). */
	static const char digits[] = "0123456789abcdef";
	_Static_assert(TFS_FINGERPRINT_LEN >= 7 + 16 + 1, "fingerprint fits");
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 8; i++) {
		out[7 + 2 * i] = digits[md[i] >> 4];
		out[8 + 2 * i] = digits[md[i] & 15];
	}
	out[7 + 16] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
	return TFS_OK;
}
