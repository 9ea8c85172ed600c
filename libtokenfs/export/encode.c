/*
 * The files export writes, encoded by OpenSSL (export_internal.h): PKCS#8
 * and SubjectPublicKeyInfo through OSSL_ENCODER, certificates as PEM,
 * PKCS#12 through PKCS12_add_key_ex and friends with OpenSSL 3's defaults
 * (AES-256-CBC, PBKDF2 with HMAC-SHA-256, a SHA-256 MAC), and secret keys.
 * Buffers that hold key material in the clear are marked secret and wiped.
 */
#include "export/export_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "core/error_internal.h"
#include "core/utf8.h"

void tfs_xbuf_free(tfs_xbuf *b)
{
	if (b == NULL)
		return;
	if (b->secret && b->p != NULL)
		OPENSSL_cleanse(b->p, b->len);
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

/* Takes OpenSSL's buffer into b (a malloc'd copy), wiping the original. */
static int take(tfs_xbuf *b, unsigned char *data, size_t len, bool secret, tfs_error *err)
{
	b->p = malloc(len + 1);
	b->len = len;
	b->secret = secret;
	if (b->p != NULL)
		memcpy(b->p, data, len);
	OPENSSL_clear_free(data, len);
	return b->p != NULL ? TFS_OK : tfs_nomem(err);
}

static int encode(tfs_xbuf *out, EVP_PKEY *pkey, int selection, const char *type,
                  const char *structure, const uint8_t *pass, size_t pass_len, tfs_error *err)
{
	memset(out, 0, sizeof(*out));
	OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, type, structure, NULL);
	unsigned char *data = NULL;
	size_t len = 0;
	int ok = ctx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0;
	if (ok && pass != NULL)
		ok = OSSL_ENCODER_CTX_set_cipher(ctx, "AES-256-CBC", NULL) == 1 &&
		     OSSL_ENCODER_CTX_set_passphrase(ctx, pass, pass_len) == 1;
	ok = ok && OSSL_ENCODER_to_data(ctx, &data, &len) == 1;
	OSSL_ENCODER_CTX_free(ctx);
	if (!ok) {
		unsigned long e = ERR_peek_last_error();
		char msg[256] = "no reason given";
		if (e != 0)
			ERR_error_string_n(e, msg, sizeof(msg));
		ERR_clear_error();
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "OpenSSL could not encode the %s %s: %s",
		                     EVP_PKEY_get0_type_name(pkey), structure, msg);
	}
	bool secret = (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && pass == NULL;
	return take(out, data, len, secret, err);
}

int tfs_xenc_private_pem(tfs_xbuf *out, EVP_PKEY *pkey, const uint8_t *pass, size_t pass_len,
                         tfs_error *err)
{
	return encode(out, pkey, EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo", pass, pass_len, err);
}

int tfs_xenc_public(tfs_xbuf *out, EVP_PKEY *pkey, bool pem, tfs_error *err)
{
	return encode(out, pkey, EVP_PKEY_PUBLIC_KEY, pem ? "PEM" : "DER", "SubjectPublicKeyInfo",
	              NULL, 0, err);
}

int tfs_xenc_cert_pem(tfs_xbuf *out, const uint8_t *der, size_t len, tfs_error *err)
{
	memset(out, 0, sizeof(*out));
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	if (bio == NULL || len > INT32_MAX ||
	    PEM_write_bio(bio, PEM_STRING_X509, "", der, (long)len) <= 0 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0) {
		BIO_free(bio);
		ERR_clear_error();
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "OpenSSL could not write PEM");
	}
	out->p = malloc((size_t)n);
	out->len = (size_t)n;
	if (out->p != NULL)
		memcpy(out->p, data, (size_t)n);
	BIO_free(bio);
	return out->p != NULL ? TFS_OK : tfs_nomem(err);
}

/* RFC 4648 base64url without padding (RFC 7517 keys). */
static size_t base64url(char *out, const uint8_t *p, size_t len)
{
	size_t n = (size_t)EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	for (size_t i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	return n;
}

int tfs_xenc_secret(tfs_xbuf *out, tfs_secret_format fmt, const uint8_t *key, size_t len,
                    const char *kid, tfs_error *err)
{
	memset(out, 0, sizeof(*out));
	out->secret = true;
	if (len > 1u << 20)
		return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET, "secret key of %zu bytes", len);
	if (fmt == TFS_SECRET_RAW) {
		out->p = malloc(len + 1);
		if (out->p == NULL)
			return tfs_nomem(err);
		memcpy(out->p, key, len);
		out->len = len;
		return TFS_OK;
	}
	if (fmt == TFS_SECRET_HEX) {
		out->p = malloc(2 * len + 2);
		if (out->p == NULL)
			return tfs_nomem(err);
		for (size_t i = 0; i < len; i++)
			snprintf((char *)out->p + 2 * i, 3, "%02x", key[i]);
		out->p[2 * len] = '\n';
		out->len = 2 * len + 1;
		return TFS_OK;
	}
	/* JWK: the label is escaped by json-c; the key is assembled in a buffer
	 * of our own so that no copy of it is left in json-c's. */
	json_object *k = json_object_new_string(kid != NULL ? kid : "");
	const char *kid_json = k != NULL ? json_object_to_json_string_ext(k, JSON_C_TO_STRING_PLAIN |
	                                                                       JSON_C_TO_STRING_NOSLASHESCAPE)
	                                 : NULL;
	size_t b64 = 4 * ((len + 2) / 3) + 1;
	size_t size = b64 + (kid_json != NULL ? strlen(kid_json) : 0) + 64;
	char *enc = malloc(b64);
	out->p = malloc(size);
	int rc = TFS_OK;
	if (kid_json == NULL || enc == NULL || out->p == NULL) {
		rc = tfs_nomem(err);
	} else {
		base64url(enc, key, len);
		int n = snprintf((char *)out->p, size, "{\"kty\":\"oct\",%s%s%s\"k\":\"%s\"}\n",
		                 kid != NULL && kid[0] ? "\"kid\":" : "", kid != NULL && kid[0] ? kid_json : "",
		                 kid != NULL && kid[0] ? "," : "", enc);
		out->len = n > 0 ? (size_t)n : 0;
	}
	if (enc != NULL)
		OPENSSL_cleanse(enc, b64);
	free(enc);
	json_object_put(k);
	if (rc != TFS_OK)
		tfs_xbuf_free(out);
	return rc;
}

void tfs_xenc_sha256(char out[72], const uint8_t *p, size_t len)
{
	uint8_t md[32];
	unsigned int n = 0;
	int o = snprintf(out, 72, "sha256:");
	if (EVP_Digest(p, len, md, &n, EVP_sha256(), NULL) != 1) {
		out[0] = '\0';
		return;
	}
	for (unsigned i = 0; i < n; i++)
		o += snprintf(out + o, 72 - (size_t)o, "%02x", md[i]);
}

/* ---- PKCS#12 ---- */

struct tfs_xp12 {
	STACK_OF(PKCS12_SAFEBAG) *certs, *keys;
	size_t count;
};

int tfs_xp12_new(tfs_xp12 **out, tfs_error *err)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? TFS_OK : tfs_nomem(err);
}

void tfs_xp12_free(tfs_xp12 *p)
{
	if (p == NULL)
		return;
	sk_PKCS12_SAFEBAG_pop_free(p->certs, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(p->keys, PKCS12_SAFEBAG_free);
	free(p);
}

size_t tfs_xp12_count(const tfs_xp12 *p)
{
	return p->count;
}

static int p12_fail(tfs_error *err, const char *what)
{
	ERR_clear_error();
	return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "PKCS#12: OpenSSL could not %s", what);
}

/* A label is untrusted bytes; friendlyName is a BMPString made from UTF-8. */
static bool valid_utf8(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	uint32_t cp;
	for (size_t n = strlen(s), i = 0, len; i < n; i += len)
		if ((len = tfs_utf8_decode(p + i, n - i, &cp)) == 0 || cp == 0)
			return false;
	return true;
}

int tfs_xp12_add(tfs_xp12 *p, EVP_PKEY *pkey, X509 *cert, const char *name, const char *pass,
                 tfs_error *err)
{
	/* localKeyID ties the key to its certificate: the SHA-1 of the
	 * certificate as OpenSSL's own PKCS12_create uses, or of the public key
	 * when there is no certificate. */
	unsigned char id[EVP_MAX_MD_SIZE];
	unsigned int id_len = 0;
	unsigned char *spki = NULL;
	int spki_len;
	if (cert != NULL) {
		if (X509_digest(cert, EVP_sha1(), id, &id_len) != 1)
			return p12_fail(err, "hash the certificate");
	} else {
		if ((spki_len = i2d_PUBKEY(pkey, &spki)) <= 0 ||
		    EVP_Digest(spki, (size_t)spki_len, id, &id_len, EVP_sha1(), NULL) != 1) {
			OPENSSL_free(spki);
			return p12_fail(err, "hash the public key");
		}
		OPENSSL_free(spki);
	}
	/* A label that is not UTF-8 (or too long for a friendlyName) gives no
	 * name rather than no bundle. */
	int nlen = valid_utf8(name) && strlen(name) < 256 ? (int)strlen(name) : 0;
	PKCS12_SAFEBAG *bag;
	if (cert != NULL) {
		if ((bag = PKCS12_add_cert(&p->certs, cert)) == NULL ||
		    (nlen > 0 && PKCS12_add_friendlyname_utf8(bag, name, nlen) != 1) ||
		    PKCS12_add_localkeyid(bag, id, (int)id_len) != 1)
			return p12_fail(err, "add the certificate");
	}
	bag = PKCS12_add_key_ex(&p->keys, pkey, 0, PKCS12_DEFAULT_ITER, NID_aes_256_cbc, pass, NULL,
	                        NULL);
	if (bag == NULL || (nlen > 0 && PKCS12_add_friendlyname_utf8(bag, name, nlen) != 1) ||
	    PKCS12_add_localkeyid(bag, id, (int)id_len) != 1)
		return p12_fail(err, "add the key");
	p->count++;
	return TFS_OK;
}

int tfs_xp12_finish(tfs_xp12 *p, tfs_xbuf *out, const char *pass, tfs_error *err)
{
	memset(out, 0, sizeof(*out));
	STACK_OF(PKCS7) *safes = NULL;
	PKCS12 *p12 = NULL;
	unsigned char *der = NULL;
	int len = 0, rc = TFS_OK;
	if ((p->certs != NULL &&
	     PKCS12_add_safe_ex(&safes, p->certs, NID_aes_256_cbc, PKCS12_DEFAULT_ITER, pass, NULL,
	                        NULL) != 1) ||
	    PKCS12_add_safe_ex(&safes, p->keys, -1, 0, NULL, NULL, NULL) != 1 ||
	    (p12 = PKCS12_add_safes_ex(safes, 0, NULL, NULL)) == NULL ||
	    PKCS12_set_mac(p12, pass, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha256()) != 1 ||
	    (len = i2d_PKCS12(p12, &der)) <= 0)
		rc = p12_fail(err, "assemble the bundle");
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
	if (rc == TFS_OK)
		rc = take(out, der, (size_t)len, false, err);
	return rc;
}
