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

void tfs_sem_pub_clear(tfs_sem_pub *k)
{
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

/* An object of a class that pairs by CKA_ID, with a known, non-empty ID. */
typedef struct id_ref {
	const uint8_t *id;
	size_t len;
	size_t obj;
} id_ref;

static int id_order(const void *x, const void *y)
{
	const id_ref *a = x, *b = y;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	int c = memcmp(a->id, b->id, a->len);
	if (c != 0)
		return c;
	return a->obj < b->obj ? -1 : a->obj > b->obj;
}

/* Different key types are different keys even when neither key is known. */
static int key_cmp(const tfs_vobject *a, const tfs_sem_pub *pa, const tfs_vobject *b,
                   const tfs_sem_pub *pb, BN_CTX *bn, char *why, size_t size)
{
	if (a->key_type != UINT64_MAX && b->key_type != UINT64_MAX && a->key_type != b->key_type) {
		snprintf(why, size, "CKA_KEY_TYPE is %s, the other's %s", key_type_name(a->key_type),
		         key_type_name(b->key_type));
		return 0;
	}
	return tfs_sem_pub_cmp(pa, pb, bn, why, size);
}

/*
 * g[0..n) share one CKA_ID; g[i] is a private key (matched with the public
 * keys) or a certificate (matched with every key). Matching one is enough:
 * a stray object that reuses an ID does not make the pair wrong.
 */
static int match(tfs_sem *s, const tfs_sem_pub *pubs, const id_ref *g, size_t n, size_t i)
{
	const tfs_vobject *objs = s->vt->objs, *o = &objs[g[i].obj], *other = NULL;
	bool cert = o->cls == CKO_CERTIFICATE, matched = false;
	char why[160] = "", buf[160];
	for (size_t j = 0; j < n; j++) {
		const tfs_vobject *k = &objs[g[j].obj];
		if (k->cls != CKO_PUBLIC_KEY && !(cert && k->cls == CKO_PRIVATE_KEY))
			continue;
		int c = key_cmp(o, &pubs[g[i].obj], k, &pubs[g[j].obj], s->bn, buf, sizeof(buf));
		matched = matched || c == 1;
		/* Name a public key rather than a private one when both differ. */
		if (c == 0 && (other == NULL || (other->cls != CKO_PUBLIC_KEY &&
		                                 k->cls == CKO_PUBLIC_KEY))) {
			other = k;
			snprintf(why, sizeof(why), "%s", buf);
		}
	}
	if (matched) {
		if (cert)
			s->stats->cert_keys++;
		else
			s->stats->pairs++;
		return TFS_OK;
	}
	if (other == NULL)
		return TFS_OK;
	if (cert)
		return tfs_vfinding(s->vt, "cert.key-mismatch", TFS_SEV_ERROR, o, CKA_ID,
		                    "the certificate's key is not the key of %s %s, which has the same "
		                    "CKA_ID: %s", other->cls == CKO_PUBLIC_KEY ? "public key" : "private key",
		                    other->uuid, why);
	return tfs_vfinding(s->vt, "key.pair-mismatch", TFS_SEV_ERROR, o, CKA_ID,
	                    "the private key is not the key of public key %s, which has the same "
	                    "CKA_ID: %s", other->uuid, why);
}

/* Groups keys and certificates by CKA_ID (sorted, so large tokens stay
 * linear-logarithmic) and matches within each group. */
static int check_pairs(tfs_sem *s, const tfs_sem_pub *pubs)
{
	tfs_vtoken *vt = s->vt;
	id_ref *refs = calloc(vt->nobjs + 1, sizeof(*refs));
	if (refs == NULL)
		return TFS_E_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < vt->nobjs; i++) {
		const tfs_vobject *o = &vt->objs[i];
		size_t len;
		if (o->obj == NULL || (o->cls != CKO_PUBLIC_KEY && o->cls != CKO_PRIVATE_KEY &&
		                       o->cls != CKO_CERTIFICATE))
			continue;
		const uint8_t *id = tfs_vobject_bytes(o, CKA_ID, &len);
		if (id != NULL && len > 0) /* an empty ID pairs with nothing */
			refs[n++] = (id_ref){.id = id, .len = len, .obj = i};
	}
	qsort(refs, n, sizeof(*refs), id_order);
	int rc = TFS_OK;
	for (size_t lo = 0, hi; lo < n && rc == TFS_OK; lo = hi) {
		for (hi = lo + 1; hi < n && refs[hi].len == refs[lo].len &&
		                  memcmp(refs[hi].id, refs[lo].id, refs[lo].len) == 0;)
			hi++;
		for (size_t i = lo; i < hi && rc == TFS_OK; i++) {
			uint64_t cls = vt->objs[refs[i].obj].cls;
			if (cls == CKO_PRIVATE_KEY || cls == CKO_CERTIFICATE)
				rc = match(s, pubs, refs + lo, hi - lo, i - lo);
		}
	}
	free(refs);
	return rc;
}

int tfs_sem_run(tfs_vtoken *vt, tfs_sem_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	tfs_sem s = {.vt = vt, .bn = BN_CTX_secure_new(), .stats = stats};
	tfs_sem_pub *pubs = calloc(vt->nobjs + 1, sizeof(*pubs));
	int rc = TFS_E_NOMEM;
	if (s.bn == NULL || pubs == NULL)
		goto done;
	rc = TFS_OK;
	for (size_t i = 0; i < vt->nobjs && rc == TFS_OK; i++)
		if (vt->objs[i].obj != NULL)
			rc = check_object(&s, &vt->objs[i], &pubs[i]);
	if (rc == TFS_OK)
		rc = check_pairs(&s, pubs);
done:
	for (size_t i = 0; pubs != NULL && i < vt->nobjs; i++)
		tfs_sem_pub_clear(&pubs[i]);
	free(pubs);
	BN_CTX_free(s.bn); /* wipes its temporaries */
	ERR_clear_error();
	return rc;
}

int tfs_check_semantics(tfs_vtoken *vt)
{
	tfs_sem_stats stats;
	return tfs_sem_run(vt, &stats);
}
