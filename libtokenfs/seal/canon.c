/*
 * The bytes a seal's MAC covers, and the MAC itself. The canonical text is
 * computed from the parsed JSON tree, never from the file's own text, so a
 * seal can be re-indented or have its keys reordered and still verify,
 * while any change of a value breaks it.
 */
#include "seal/seal_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/error_internal.h"

void tfs_seal_hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool tfs_seal_unhex_exact(uint8_t *out, size_t cap, const char *hex, size_t hex_len)
{
	if (hex_len / 2 != cap || hex_len % 2 != 0)
		return false;
	for (size_t i = 0; i < cap; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* ---- growable text ---- */

void tfs_seal_sb_add(tfs_seal_strbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (n >= SIZE_MAX / 2 - b->len) {
		b->failed = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void tfs_seal_sb_printf(tfs_seal_strbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		tfs_seal_sb_add(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (big == NULL) {
		b->failed = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	tfs_seal_sb_add(b, big, (size_t)n);
	free(big);
}

/* ---- canonical JSON ---- */

/* '"' and '\\' escaped, bytes below 0x20 as \u00xx, everything else as is. */
static void canon_string(tfs_seal_strbuf *b, const char *s, size_t n)
{
	tfs_seal_sb_add(b, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		tfs_seal_sb_add(b, s + run, i - run);
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			tfs_seal_sb_add(b, esc, 2);
		} else {
			tfs_seal_sb_printf(b, "\\u%04x", c);
		}
		run = i + 1;
	}
	tfs_seal_sb_add(b, s + run, n - run);
	tfs_seal_sb_add(b, "\"", 1);
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int canon_value(tfs_seal_strbuf *b, json_object *v, bool top, tfs_error *err)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		tfs_seal_sb_add(b, "null", 4);
		return TFS_OK;
	case json_type_boolean:
		if (json_object_get_boolean(v))
			tfs_seal_sb_add(b, "true", 4);
		else
			tfs_seal_sb_add(b, "false", 5);
		return TFS_OK;
	case json_type_int: {
		/* json-c keeps integers above INT64_MAX as uint64 and clamps the
		 * int64 getter there. */
		int64_t i = json_object_get_int64(v);
		if (i == INT64_MAX)
			tfs_seal_sb_printf(b, "%" PRIu64, json_object_get_uint64(v));
		else
			tfs_seal_sb_printf(b, "%" PRId64, i);
		return TFS_OK;
	}
	case json_type_double:
		return tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET,
		                     "a fractional number; a seal holds only integers");
	case json_type_string:
		canon_string(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
		return TFS_OK;
	case json_type_array: {
		size_t n = json_object_array_length(v);
		tfs_seal_sb_add(b, "[", 1);
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				tfs_seal_sb_add(b, ",", 1);
			int rc = canon_value(b, json_object_array_get_idx(v, i), false, err);
			if (rc != TFS_OK)
				return rc;
		}
		tfs_seal_sb_add(b, "]", 1);
		return TFS_OK;
	}
	case json_type_object: {
		size_t n = (size_t)json_object_object_length(v), k = 0;
		const char **keys = calloc(n + 1, sizeof(*keys));
		if (keys == NULL)
			return tfs_nomem(err);
		json_object_object_foreach(v, key, val) {
			(void)val;
			if (!(top && strcmp(key, "mac") == 0) && k < n)
				keys[k++] = key;
		}
		qsort(keys, k, sizeof(*keys), cmp_keys);
		int rc = TFS_OK;
		tfs_seal_sb_add(b, "{", 1);
		for (size_t i = 0; i < k && rc == TFS_OK; i++) {
			if (i > 0)
				tfs_seal_sb_add(b, ",", 1);
			canon_string(b, keys[i], strlen(keys[i]));
			tfs_seal_sb_add(b, ":", 1);
			rc = canon_value(b, json_object_object_get(v, keys[i]), false, err);
		}
		tfs_seal_sb_add(b, "}", 1);
		free(keys);
		return rc;
	}
	}
	return tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET, "unknown JSON value type");
}

int tfs_seal_canonical(char **out, size_t *len, json_object *root, tfs_error *err)
{
	*out = NULL;
	*len = 0;
	tfs_seal_strbuf b = {0};
	int rc = canon_value(&b, root, true, err);
	if (rc == TFS_OK && b.failed)
		rc = tfs_nomem(err);
	if (rc != TFS_OK) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*len = b.len;
	return TFS_OK;
}

/* ---- HKDF and HMAC ---- */

int tfs_seal_hkdf(uint8_t *out, size_t out_len, const uint8_t *ikm, size_t ikm_len,
                  const uint8_t *salt, size_t salt_len, const uint8_t *info, size_t info_len,
                  tfs_error *err)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len),
		OSSL_PARAM_construct_end(),
	};
	int ok = ctx != NULL && EVP_KDF_derive(ctx, out, out_len, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (!ok) {
		OPENSSL_cleanse(out, out_len);
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "HKDF-SHA256 failed");
	}
	return TFS_OK;
}

int tfs_seal_hmac(uint8_t out[TFS_SEAL_MAC_LEN], const uint8_t *key, size_t key_len,
                  const uint8_t *msg, size_t msg_len, tfs_error *err)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t n = 0;
	int ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
	         EVP_MAC_update(ctx, msg, msg_len) == 1 &&
	         EVP_MAC_final(ctx, out, &n, TFS_SEAL_MAC_LEN) == 1 && n == TFS_SEAL_MAC_LEN;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	if (!ok)
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "HMAC-SHA256 failed");
	return TFS_OK;
}

int tfs_seal_mac(uint8_t out[TFS_SEAL_MAC_LEN], const tfs_token_key *key,
                 const uint8_t salt[TFS_SEAL_SALT_LEN], const char *text, size_t len,
                 tfs_error *err)
{
	uint8_t k[32];
	static const char info[] = TFS_SEAL_INFO;
	int rc = tfs_seal_hkdf(k, sizeof(k), tfs_token_key_bytes(key), TFS_KEY_LEN, salt,
	                       TFS_SEAL_SALT_LEN, (const uint8_t *)info, sizeof(info) - 1, err);
	if (rc == TFS_OK)
		rc = tfs_seal_hmac(out, k, sizeof(k), (const uint8_t *)text, len, err);
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}
