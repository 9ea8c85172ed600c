/*
 * Semantic checks: whether what a token says about its keys is true. A
 * secret key's CKA_CHECK_VALUE and CKA_VALUE_LEN against its value; an RSA
 * private key's components against each other; each private key against the
 * public key of its CKA_ID, and each certificate against its own attribute
 * copies and the keys of its CKA_ID; CKA_PUBLIC_KEY_INFO against the key.
 *
 * Only plaintext the model knows is used: a value that is encrypted and was
 * not decrypted is never a mismatch, its checks just do not run. So without
 * a PIN the public parts (certificates, public key objects, plaintext secret
 * keys) are still checked, and with one everything is.
 */
#include "verify/semantics_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <p11-kit/pkcs11.h>

#include "tokenfs/names.h"
#include "tokenfs/pairing.h"

void tfs_sem_pub_clear(tfs_sem_pub *k)
{
	free(k->params_copy);
	BN_free(k->n);
	BN_free(k->e);
	EC_POINT_free(k->point);
	EC_GROUP_free(k->group);
	memset(k, 0, sizeof(*k));
}

int tfs_sem_pub_invalid(tfs_sem_pub *k, uint64_t key_type, const char *fmt, ...)
{
	tfs_sem_pub_clear(k);
	k->state = TFS_SEM_INVALID;
	k->key_type = key_type;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(k->why, sizeof(k->why), fmt, ap);
	va_end(ap);
	return TFS_OK;
}

const char *tfs_sem_hex(char *out, size_t size, const uint8_t *p, size_t len)
{
	size_t shown = len <= (size - 1) / 2 ? len : (size - 4) / 2;
	for (size_t i = 0; i < shown; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
	out[2 * shown] = '\0';
	if (shown < len)
		strcat(out, "...");
	return out;
}

static const char *key_type_name(uint64_t type)
{
	const char *n = tfs_name(TFS_NS_CKK, type);
	return n != NULL ? n : "unknown";
}

int tfs_sem_pub_cmp(const tfs_sem_pub *a, const tfs_sem_pub *b, BN_CTX *bn, char *why,
                    size_t why_size)
{
	if (a->state == TFS_SEM_UNKNOWN || b->state == TFS_SEM_UNKNOWN)
		return -1;
	const tfs_sem_pub *bad = a->state == TFS_SEM_INVALID ? a
	                       : b->state == TFS_SEM_INVALID ? b : NULL;
	if (bad != NULL) {
		snprintf(why, why_size, "%s", bad->why);
		return 0;
	}
	if (a->key_type != b->key_type) {
		snprintf(why, why_size, "one is a %s key, the other a %s key",
		         key_type_name(a->key_type), key_type_name(b->key_type));
		return 0;
	}
	if (a->key_type == CKK_RSA) {
		if (BN_num_bits(a->n) != BN_num_bits(b->n))
			snprintf(why, why_size, "the moduli differ (%d and %d bits)", BN_num_bits(a->n),
			         BN_num_bits(b->n));
		else if (BN_cmp(a->n, b->n) != 0)
			snprintf(why, why_size, "the moduli differ");
		else if (BN_cmp(a->e, b->e) != 0)
			snprintf(why, why_size, "the public exponents differ");
		else
			return 1;
		return 0;
	}
	/* Same key, same curve, same encoding of the curve: SoftHSM copies
	 * CKA_EC_PARAMS from one template into both halves of a pair. */
	if (a->params != NULL && b->params != NULL &&
	    (a->params_len != b->params_len || memcmp(a->params, b->params, a->params_len) != 0)) {
		snprintf(why, why_size, "their CKA_EC_PARAMS differ (%s and %s)",
		         tfs_sem_ec_curve_name(a->group), tfs_sem_ec_curve_name(b->group));
		return 0;
	}
	int g = EC_GROUP_cmp(a->group, b->group, bn);
	if (g != 0) {
		ERR_clear_error();
		if (g < 0)
			return -1;
		snprintf(why, why_size, "they are on different curves (%s and %s)",
		         tfs_sem_ec_curve_name(a->group), tfs_sem_ec_curve_name(b->group));
		return 0;
	}
	/* On one curve the uncompressed encoding is canonical; EC_POINT_cmp
	 * would refuse points of a named and an explicit form of the curve. */
	unsigned char *pa = NULL, *pb = NULL;
	size_t la = EC_POINT_point2buf(a->group, a->point, POINT_CONVERSION_UNCOMPRESSED, &pa, bn);
	size_t lb = EC_POINT_point2buf(b->group, b->point, POINT_CONVERSION_UNCOMPRESSED, &pb, bn);
	int same = la == 0 || lb == 0 ? -1 : la == lb && memcmp(pa, pb, la) == 0;
	OPENSSL_free(pa);
	OPENSSL_free(pb);
	ERR_clear_error();
	if (same == 0)
		snprintf(why, why_size, "the public points differ");
	return same;
}

/* PKCS #11 has the creator state the key's length. SoftHSM 2.6.1 writes it
 * on C_GenerateKey and from the template of C_CreateObject, but a key made
 * by C_UnwrapKey keeps the default 0 beside its value (SoftHSM refuses
 * CKA_VALUE_LEN in an unwrap template): 0 means "not recorded", not "empty". */
static int check_value_len(tfs_sem *s, const tfs_vobject *o)
{
	uint64_t want;
	size_t len;
	const uint8_t *v = tfs_vobject_bytes(o, CKA_VALUE, &len);
	if (v == NULL || !tfs_vobject_ulong(o, CKA_VALUE_LEN, &want) || want == 0)
		return TFS_OK;
	s->stats->value_lens++;
	if (want == len)
		return TFS_OK;
	return tfs_vfinding(s->vt, "key.value-len-mismatch", TFS_SEV_ERROR, o, CKA_VALUE_LEN,
	                    "CKA_VALUE_LEN is %llu but CKA_VALUE holds %zu bytes",
	                    (unsigned long long)want, len);
}

/*
 * What SoftHSM 2.6.1 stores as a secret key's CKA_CHECK_VALUE: for AES and
 * triple-DES keys the first 3 bytes of a zero block encrypted with the key;
 * for generic secrets and HMAC keys the first 3 bytes of the SHA-1 of the
 * key (its SymmetricKey::getKeyCheckValue). False for what it does not
 * compute (GOST) or OpenSSL 3 cannot without its legacy provider (single DES).
 */
static bool secret_kcv(uint8_t kcv[3], const char **how, uint64_t key_type, const uint8_t *v,
                       size_t len)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	bool ok;
	switch (key_type) {
	case CKK_AES:
	case CKK_DES2:
	case CKK_DES3:
		*how = "a zero block encrypted with the key, first 3 bytes";
		return tfs_key_check_value(kcv, key_type, v, len, NULL) == TFS_OK;
	case CKK_GENERIC_SECRET:
	case CKK_MD5_HMAC:
	case CKK_SHA_1_HMAC:
	case CKK_SHA224_HMAC:
	case CKK_SHA256_HMAC:
	case CKK_SHA384_HMAC:
	case CKK_SHA512_HMAC:
		*how = "SHA-1 of CKA_VALUE, first 3 bytes";
		ok = EVP_Digest(v, len, md, &mdlen, EVP_sha1(), NULL) == 1;
		if (ok)
			memcpy(kcv, md, 3);
		OPENSSL_cleanse(md, sizeof(md)); /* the whole digest says more than 3 bytes */
		return ok;
	default:
		return false;
	}
}

static int check_kcv(tfs_sem *s, const tfs_vobject *o)
{
	size_t clen, len;
	const uint8_t *stored = tfs_vobject_bytes(o, CKA_CHECK_VALUE, &clen);
	const uint8_t *v = tfs_vobject_bytes(o, CKA_VALUE, &len);
	uint8_t kcv[3];
	const char *how;
	/* An empty check value is legal: the creator may ask for none. */
	if (stored == NULL || clen == 0 || v == NULL || len == 0 ||
	    !secret_kcv(kcv, &how, o->key_type, v, len))
		return TFS_OK;
	s->stats->check_values++;
	if (clen == 3 && memcmp(stored, kcv, 3) == 0)
		return TFS_OK;
	char hex[80];
	return tfs_vfinding(s->vt, "key.check-value-mismatch", TFS_SEV_ERROR, o, CKA_CHECK_VALUE,
	                    "CKA_CHECK_VALUE is %s but the key's check value is %02x%02x%02x (%s): "
	                    "the key or its check value was altered",
	                    tfs_sem_hex(hex, sizeof(hex), stored, clen), kcv[0], kcv[1], kcv[2],
	                    how);
}

/* CKA_PUBLIC_KEY_INFO, when set, must describe the object's own key. */
static int check_spki(tfs_sem *s, const tfs_vobject *o, const tfs_sem_pub *pub)
{
	size_t len;
	const uint8_t *der = tfs_vobject_bytes(o, CKA_PUBLIC_KEY_INFO, &len);
	/* SoftHSM 2.6.1 leaves it empty on the keys it generates and imports. */
	if (der == NULL || len == 0 || pub->state == TFS_SEM_UNKNOWN)
		return TFS_OK;
	tfs_sem_pub spki = {0};
	char why[160];
	int rc = tfs_sem_spki_pub(&spki, der, len);
	int c = rc == TFS_OK ? tfs_sem_pub_cmp(pub, &spki, s->bn, why, sizeof(why)) : -1;
	if (c >= 0)
		s->stats->spkis++;
	if (c == 0)
		rc = tfs_vfinding(s->vt, "key.public-key-info-mismatch", TFS_SEV_ERROR, o,
		                  CKA_PUBLIC_KEY_INFO,
		                  "CKA_PUBLIC_KEY_INFO does not describe the object's own key: %s", why);
	tfs_sem_pub_clear(&spki);
	return rc;
}

/* The checks of one object; *pub becomes the public key it holds or implies. */
static int check_object(tfs_sem *s, const tfs_vobject *o, tfs_sem_pub *pub)
{
	int rc = TFS_OK;
	switch (o->cls) {
	case CKO_SECRET_KEY:
		rc = check_value_len(s, o);
		return rc == TFS_OK ? check_kcv(s, o) : rc;
	case CKO_PUBLIC_KEY:
	case CKO_PRIVATE_KEY:
		if (o->key_type == CKK_RSA)
			rc = tfs_sem_rsa_pub(pub, o);
		else if (o->key_type == CKK_EC)
			rc = tfs_sem_ec_pub(pub, o, s->bn);
		if (rc == TFS_OK && o->cls == CKO_PRIVATE_KEY && o->key_type == CKK_RSA)
			rc = tfs_sem_rsa_check_private(s, o);
		return rc == TFS_OK ? check_spki(s, o, pub) : rc;
	case CKO_CERTIFICATE:
		rc = tfs_sem_check_cert(s, o, pub);
		return rc == TFS_OK ? check_spki(s, o, pub) : rc;
	default:
		return TFS_OK;
	}
}

static const uint8_t *vobject_bytes(void *ctx, uint64_t type, size_t *len)
{
	return tfs_vobject_bytes(ctx, type, len);
}

/*
 * Hands o to the token's one pairing model (tokenfs/pairing.h), with what
 * the checks above learnt of its key: a key found invalid is a defect that
 * every comparison reports, and an EC private key's d*G (computed for its
 * own checks) saves pairing a second derivation.
 */
static int pair(tfs_sem *s, const tfs_vobject *o, const tfs_sem_pub *pub)
{
	tfs_pair_input in;
	tfs_pair_input_from_object(&in, o->uuid, o->obj, vobject_bytes, (void *)o);
	in.index = o->index;
	if (pub->state == TFS_SEM_INVALID)
		in.defect = pub->why;
	if (pub->group != NULL)
		in.curve_name = tfs_sem_ec_curve_name(pub->group);
	unsigned char *pt = NULL, wrapped[3 + 255];
	if (o->cls == CKO_PRIVATE_KEY && pub->state == TFS_SEM_KNOWN && pub->point != NULL) {
		/* As CKA_EC_POINT holds it: a DER OCTET STRING around the point. */
		size_t len = EC_POINT_point2buf(pub->group, pub->point, POINT_CONVERSION_UNCOMPRESSED,
		                                &pt, s->bn);
		size_t hdr = len < 0x80 ? 2 : 3;
		if (len > 0 && len <= 255) {
			wrapped[0] = 0x04;
			wrapped[1] = len < 0x80 ? (unsigned char)len : 0x81;
			wrapped[2] = (unsigned char)len;
			memcpy(wrapped + hdr, pt, len);
			in.ec_point = wrapped;
			in.ec_point_len = hdr + len;
			in.ec_value = NULL;
			in.ec_value_len = 0;
		}
	}
	int rc = tfs_pairing_add(s->pairs, &in, NULL, 0) == 0 ? TFS_OK : TFS_E_NOMEM;
	OPENSSL_free(pt);
	return rc;
}

static int pair_finding(tfs_sem *s, const tfs_pair_check *c, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int pair_finding(tfs_sem *s, const tfs_pair_check *c, const char *code, const char *fmt, ...)
{
	const tfs_token *tok = s->vt->tok;
	tfs_location loc = {.path = tfs_token_object_path(tok, c->index), .offset = c->id_offset,
	                    .object = tfs_token_object_uuid(tok, c->index), .has_attr = true,
	                    .attr = CKA_ID};
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return tfs_findings_addl(s->vt->findings, code, TFS_SEV_ERROR, &loc, "%s", msg);
}

/* Each private key against the public keys of its CKA_ID, each certificate
 * against every key of its CKA_ID, as the pairing model decides. */
static int check_pairs(tfs_sem *s)
{
	size_t n = 0;
	const tfs_pair_check *checks = tfs_pairing_checks(s->pairs, &n);
	if (checks == NULL)
		return TFS_E_NOMEM;
	int rc = TFS_OK;
	for (size_t i = 0; i < n && rc == TFS_OK; i++) {
		const tfs_pair_check *c = &checks[i];
		bool cert = c->object_class == CKO_CERTIFICATE;
		if (c->verdict == TFS_PAIR_MATCH) {
			if (cert)
				s->stats->cert_keys++;
			else
				s->stats->pairs++;
		} else if (c->verdict == TFS_PAIR_MISMATCH && cert) {
			rc = pair_finding(s, c, "cert.key-mismatch",
			                  "the certificate's key is not the key of %s %s, which has the "
			                  "same CKA_ID: %s",
			                  c->other_class == CKO_PUBLIC_KEY ? "public key" : "private key",
			                  c->other_uuid, c->why);
		} else if (c->verdict == TFS_PAIR_MISMATCH) {
			rc = pair_finding(s, c, "key.pair-mismatch",
			                  "the private key is not the key of public key %s, which has the "
			                  "same CKA_ID: %s", c->other_uuid, c->why);
		}
	}
	return rc;
}

int tfs_sem_begin(tfs_sem *s, tfs_vtoken *vt, tfs_sem_stats *stats)
{
	memset(s, 0, sizeof(*s));
	s->vt = vt;
	s->stats = stats != NULL ? stats : &s->own_stats;
	memset(s->stats, 0, sizeof(*s->stats));
	s->bn = BN_CTX_secure_new();
	s->pairs = tfs_pairing_new();
	return s->bn != NULL && s->pairs != NULL ? TFS_OK : TFS_E_NOMEM;
}

int tfs_sem_object(tfs_sem *s, const tfs_vobject *o)
{
	if (o->obj == NULL)
		return TFS_OK;
	tfs_sem_pub pub = {0};
	int rc = check_object(s, o, &pub);
	if (rc == TFS_OK)
		rc = pair(s, o, &pub);
	tfs_sem_pub_clear(&pub);
	ERR_clear_error();
	return rc;
}

void tfs_sem_free(tfs_sem *s)
{
	tfs_pairing_free(s->pairs);
	s->pairs = NULL;
	BN_CTX_free(s->bn); /* wipes its temporaries */
	s->bn = NULL;
	ERR_clear_error();
}

int tfs_sem_end(tfs_sem *s)
{
	int rc = check_pairs(s);
	tfs_sem_free(s);
	return rc;
}

int tfs_sem_run(tfs_vtoken *vt, tfs_sem_stats *stats)
{
	tfs_sem s;
	int rc = tfs_sem_begin(&s, vt, stats);
	for (size_t i = 0; i < vt->nobjs && rc == TFS_OK; i++)
		rc = tfs_sem_object(&s, &vt->objs[i]);
	if (rc == TFS_OK)
		return tfs_sem_end(&s);
	tfs_sem_free(&s);
	return rc;
}
