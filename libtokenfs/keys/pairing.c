/*
 * Object summaries and key pairing (tokenfs/pairing.h): the one model of
 * which keys and certificates of a token belong together, used by dump,
 * export and verify-integrity. Parts pair when they share a CKA_ID and
 * their public key is the same: RSA by modulus and public exponent, EC by
 * point (an EC private key's point is d*G, derived here from its value).
 * Public keys are kept as SHA-256 digests so that a token of many objects
 * costs a few hundred bytes per key, whatever the key sizes.
 */
#include "tokenfs/pairing.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "tokenfs/names.h"
#include "tokenfs/text.h"

/* Bytes of a label a summary shows. */
#define SHOW_LABEL 128

#define NO_KIND UINT64_MAX

typedef struct part {
	size_t seq;          /* order of arrival */
	size_t index;        /* the caller's references (tfs_pair_check) */
	uint64_t id_offset;
	const char *uuid;
	uint64_t cls, key_type;
	char id[80];         /* hex, cut: for display and ordering */
	uint8_t id_hash[32]; /* SHA-256 of the whole CKA_ID: groups */
	size_t id_len;
	uint64_t kind;       /* CKK_RSA or CKK_EC as the key material says, or NO_KIND */
	uint8_t key[32];     /* SHA-256 of the modulus or the point */
	bool has_key;
	uint32_t bits;       /* RSA: of the modulus */
	uint8_t exp[32];     /* RSA: SHA-256 of the public exponent */
	bool has_exp;
	uint8_t curve[32];   /* SHA-256 of CKA_EC_PARAMS (a certificate's: of its SPKI's) */
	bool has_curve;
	char curve_name[32];
	char size[48];       /* "RSA 2048", "EC prime256v1" */
	char *defect;        /* owned: the caller found the key invalid */
} part;

struct tfs_pairing {
	part *parts;
	size_t n, cap;
	tfs_key_pair *keys;
	size_t nkeys;
	tfs_pair_check *checks;
	size_t nchecks;
	/* The last curve a point was derived or decompressed on: tokens use
	 * one or two curves, and decoding the parameters for each key costs. */
	uint8_t group_hash[32];
	EC_GROUP *group;
	BN_CTX *bn;
};

tfs_pairing *tfs_pairing_new(void)
{
	return calloc(1, sizeof(tfs_pairing));
}

void tfs_pairing_free(tfs_pairing *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->parts[i].defect);
	free(p->parts);
	free(p->keys);
	free(p->checks);
	EC_GROUP_free(p->group);
	BN_CTX_free(p->bn);
	free(p);
}

static void sha256(uint8_t out[32], const uint8_t *p, size_t n)
{
	unsigned int len = 32;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

/* Leading zero bytes do not change a number: every encoding agrees. */
static const uint8_t *strip(const uint8_t *n, size_t *len)
{
	while (*len > 0 && n[0] == 0)
		n++, (*len)--;
	return n;
}

static void modulus_key(part *pt, const uint8_t *n, size_t len)
{
	n = strip(n, &len);
	sha256(pt->key, n, len);
	pt->has_key = true;
	pt->kind = CKK_RSA;
	pt->bits = len == 0 ? 0 : (uint32_t)(len - 1) * 8;
	for (unsigned top = len > 0 ? n[0] : 0; top != 0; top >>= 1)
		pt->bits++;
	snprintf(pt->size, sizeof(pt->size), "RSA %zu", len * 8);
}

static void exponent_key(part *pt, const uint8_t *e, size_t len)
{
	e = strip(e, &len);
	sha256(pt->exp, e, len);
	pt->has_exp = true;
}

/* The curve of CKA_EC_PARAMS, decoded once per curve (see struct). */
static EC_GROUP *group_of(tfs_pairing *p, const part *pt, const uint8_t *params, size_t len)
{
	if (p == NULL || !pt->has_curve)
		return NULL;
	if (p->group != NULL && memcmp(p->group_hash, pt->curve, 32) == 0)
		return p->group;
	const unsigned char *q = params;
	EC_GROUP *g = d2i_ECPKParameters(NULL, &q, (long)len);
	if (g == NULL)
		return NULL;
	EC_GROUP_free(p->group);
	p->group = g;
	memcpy(p->group_hash, pt->curve, 32);
	return g;
}

/* The uncompressed encoding of a point on g, hashed as the key. */
static bool hash_point(tfs_pairing *p, part *pt, EC_GROUP *g, const EC_POINT *q)
{
	unsigned char *buf = NULL;
	size_t len = EC_POINT_point2buf(g, q, POINT_CONVERSION_UNCOMPRESSED, &buf, p->bn);
	if (len > 1) {
		sha256(pt->key, buf, len);
		pt->has_key = true;
		pt->kind = CKK_EC;
	}
	OPENSSL_free(buf);
	return len > 1;
}

/* CKA_EC_POINT is a DER OCTET STRING around the point; some writers store
 * the bare point, or compress it (decompressed here when the curve is
 * known, so that it compares with d*G and with certificates). */
static void point_key(tfs_pairing *p, part *pt, const uint8_t *q, size_t len, EC_GROUP *g)
{
	/* g is only ever set with p (group_of). */
	if (len >= 2 && q[0] == 0x04 && q[1] < 0x80 && (size_t)q[1] + 2 == len)
		q += 2, len -= 2;
	else if (len >= 3 && q[0] == 0x04 && q[1] == 0x81 && (size_t)q[2] + 3 == len)
		q += 3, len -= 3;
	if (len > 0 && (q[0] == 0x02 || q[0] == 0x03) && g != NULL &&
	    (p->bn != NULL || (p->bn = BN_CTX_new()) != NULL)) {
		EC_POINT *pt_ = EC_POINT_new(g);
		bool ok = pt_ != NULL && EC_POINT_oct2point(g, pt_, q, len, p->bn) == 1 &&
		          hash_point(p, pt, g, pt_);
		EC_POINT_free(pt_);
		ERR_clear_error();
		if (ok)
			return;
	}
	sha256(pt->key, q, len);
	pt->has_key = true;
	pt->kind = CKK_EC;
}

/* An EC private key's public point d*G. */
static void derive_point(tfs_pairing *p, part *pt, EC_GROUP *g, const uint8_t *d, size_t len)
{
	if (g == NULL || (p->bn == NULL && (p->bn = BN_CTX_new()) == NULL))
		return;
	BIGNUM *k = BN_secure_new();
	EC_POINT *q = EC_POINT_new(g);
	if (k != NULL && q != NULL && BN_bin2bn(d, (int)len, k) != NULL && !BN_is_zero(k) &&
	    BN_cmp(k, EC_GROUP_get0_order(g)) < 0 && EC_POINT_mul(g, q, k, NULL, NULL, p->bn) == 1)
		(void)hash_point(p, pt, g, q);
	BN_clear_free(k);
	EC_POINT_free(q);
	ERR_clear_error();
}

/*
 * The SubjectPublicKeyInfo inside a certificate: Certificate > TBSCertificate
 * > [0] version?, serial, signature, issuer, validity, subject, SPKI. Walking
 * the TLV headers is a small fraction of what a full d2i_X509 costs (which
 * was a third of dump's time on a store with many certificates).
 */
static const unsigned char *find_spki(const unsigned char *der, size_t len, long *spki_len)
{
	const unsigned char *p = der;
	long l;
	int tag, cls;
	/* Certificate, then TBSCertificate: step inside both. */
	for (int depth = 0; depth < 2; depth++)
		if ((ASN1_get_object(&p, &l, &tag, &cls, (long)(der + len - p)) & 0x80) ||
		    tag != V_ASN1_SEQUENCE)
			return NULL;
	const unsigned char *end = p + l;
	for (int field = 0; p < end; field++) {
		const unsigned char *start = p;
		if (ASN1_get_object(&p, &l, &tag, &cls, (long)(end - p)) & 0x80)
			return NULL;
		bool version = field == 0 && cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0;
		if (version)
			field--; /* optional: does not count */
		if (field == 5) {
			*spki_len = (long)(p - start) + l;
			return start;
		}
		p += l;
	}
	return NULL;
}

/* Reads one TLV header at *p within end; false when malformed. */
static bool tlv(const unsigned char **p, const unsigned char *end, int want_tag, long *len)
{
	int tag, cls;
	if (*p >= end || (ASN1_get_object(p, len, &tag, &cls, (long)(end - *p)) & 0x80))
		return false;
	return tag == want_tag && cls == V_ASN1_UNIVERSAL;
}

/*
 * A certificate's public key, in the form key objects store it: the RSA
 * modulus and exponent, or the EC point and the curve's parameters. Read
 * from the SPKI's TLV headers; OpenSSL 3's d2i_PUBKEY goes through its
 * provider decoders and cost about a million instructions per certificate.
 */
static void cert_key(tfs_pairing *p, part *pt, const uint8_t *der, size_t len)
{
	static const unsigned char rsa_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
	static const unsigned char ec_oid[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
	long spki_len = 0, l, alg_len, oid_len, bits_len;
	const unsigned char *q = find_spki(der, len, &spki_len);
	if (q == NULL)
		return;
	const unsigned char *end = q + spki_len;
	if (!tlv(&q, end, V_ASN1_SEQUENCE, &l) || !tlv(&q, end, V_ASN1_SEQUENCE, &alg_len))
		return;
	const unsigned char *alg_end = q + alg_len, *oid = q;
	if (!tlv(&oid, alg_end, V_ASN1_OBJECT, &oid_len))
		return;
	const unsigned char *params = oid + oid_len;
	q = alg_end;
	if (!tlv(&q, end, V_ASN1_BIT_STRING, &bits_len) || bits_len < 2 || q[0] != 0)
		return;
	const unsigned char *key = q + 1, *key_end = q + bits_len;
	if (oid_len == (long)sizeof(ec_oid) && memcmp(oid, ec_oid, sizeof(ec_oid)) == 0) {
		if (params < alg_end) { /* the curve, as CKA_EC_PARAMS holds it */
			sha256(pt->curve, params, (size_t)(alg_end - params));
			pt->has_curve = true;
		}
		bool compressed = key < key_end && (key[0] & 0xfe) == 0x02;
		point_key(p, pt, key, (size_t)(key_end - key),
		          compressed ? group_of(p, pt, params, (size_t)(alg_end - params)) : NULL);
	} else if (oid_len == (long)sizeof(rsa_oid) && memcmp(oid, rsa_oid, sizeof(rsa_oid)) == 0) {
		long n_len, e_len;
		if (tlv(&key, key_end, V_ASN1_SEQUENCE, &l) && tlv(&key, key_end, V_ASN1_INTEGER, &n_len) &&
		    n_len > 0 && n_len <= key_end - key) {
			modulus_key(pt, key, (size_t)n_len);
			key += n_len;
			if (tlv(&key, key_end, V_ASN1_INTEGER, &e_len) && e_len > 0 && e_len <= key_end - key)
				exponent_key(pt, key, (size_t)e_len);
		}
	}
}

static const char *class_word(uint64_t cls)
{
	switch (cls) {
	case CKO_DATA: return "data object";
	case CKO_CERTIFICATE: return "certificate";
	case CKO_PUBLIC_KEY: return "public key";
	case CKO_PRIVATE_KEY: return "private key";
	case CKO_SECRET_KEY: return "secret key";
	default: return "object";
	}
}

static uint64_t ulong_of(const tfs_object *obj, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : UINT64_MAX;
}

void tfs_pair_input_from_object(tfs_pair_input *in, const char *uuid, const tfs_object *obj,
                                tfs_pair_bytes_fn bytes, void *ctx)
{
	*in = (tfs_pair_input){.uuid = uuid, .object_class = ulong_of(obj, CKA_CLASS),
	                       .key_type = ulong_of(obj, CKA_KEY_TYPE),
	                       .value_len = ulong_of(obj, CKA_VALUE_LEN), .id_offset = UINT64_MAX};
	const tfs_attr *id = tfs_object_find(obj, CKA_ID);
	if (id != NULL)
		in->id_offset = tfs_attr_offset(id);
	in->id = bytes(ctx, CKA_ID, &in->id_len);
	in->label = bytes(ctx, CKA_LABEL, &in->label_len);
	if (in->object_class == CKO_CERTIFICATE) {
		in->cert = bytes(ctx, CKA_VALUE, &in->cert_len);
		return;
	}
	if (in->object_class != CKO_PUBLIC_KEY && in->object_class != CKO_PRIVATE_KEY)
		return;
	in->modulus = bytes(ctx, CKA_MODULUS, &in->modulus_len);
	in->exponent = bytes(ctx, CKA_PUBLIC_EXPONENT, &in->exponent_len);
	in->ec_params = bytes(ctx, CKA_EC_PARAMS, &in->ec_params_len);
	in->ec_point = bytes(ctx, CKA_EC_POINT, &in->ec_point_len);
	if (in->object_class == CKO_PRIVATE_KEY && in->key_type == CKK_EC)
		in->ec_value = bytes(ctx, CKA_VALUE, &in->ec_value_len);
}

/* "private key RSA 2048 'label' id 01": the label as dump's attribute
 * line shows it, text escaped (tokenfs/text.h) or hex, cut at SHOW_LABEL
 * bytes. */
static void summarise(const part *pt, const tfs_pair_input *in, char *buf, size_t size)
{
	size_t len = in->label_len;
	const uint8_t *label = in->label;
	char lab[TFS_ESCAPE_SIZE(SHOW_LABEL) + 16] = "(encrypted label)";
	size_t shown = label != NULL ? tfs_text_cut(label, len, SHOW_LABEL) : 0;
	if (label != NULL && (len == 0 || tfs_text_is_plain(label, len))) {
		lab[0] = '\'';
		size_t k = 1 + tfs_escape(lab + 1, sizeof(lab) - 5, label, shown, TFS_ESC_TERMINAL);
		snprintf(lab + k, sizeof(lab) - k, "%s'", shown < len ? "..." : "");
	} else if (label != NULL) {
		int k = snprintf(lab, sizeof(lab), "label ");
		for (size_t i = 0; i < shown; i++)
			k += snprintf(lab + k, sizeof(lab) - (size_t)k, "%02x", label[i]);
		snprintf(lab + k, sizeof(lab) - (size_t)k, "%s", shown < len ? "..." : "");
	}
	snprintf(buf, size, "%s%s%s %s%s%s", class_word(pt->cls), pt->size[0] ? " " : "", pt->size,
	         lab, pt->id[0] ? " id " : "", pt->id);
}

int tfs_pairing_add(tfs_pairing *p, const tfs_pair_input *in, char *buf, size_t size)
{
	part pt = {.uuid = in->uuid, .cls = in->object_class, .key_type = in->key_type,
	           .index = in->index, .id_offset = in->id_offset, .kind = NO_KIND};
	bool keyed = in->id != NULL && in->id_len > 0 &&
	             (pt.cls == CKO_PRIVATE_KEY || pt.cls == CKO_PUBLIC_KEY ||
	              pt.cls == CKO_CERTIFICATE);
	if (in->id != NULL) {
		for (size_t i = 0; i < in->id_len && 2 * i + 2 < sizeof(pt.id); i++)
			snprintf(pt.id + 2 * i, 3, "%02x", in->id[i]);
		sha256(pt.id_hash, in->id, in->id_len);
		pt.id_len = in->id_len;
	}
	if (in->modulus != NULL && in->modulus_len > 0)
		modulus_key(&pt, in->modulus, in->modulus_len);
	if (in->exponent != NULL && in->exponent_len > 0)
		exponent_key(&pt, in->exponent, in->exponent_len);
	EC_GROUP *g = NULL;
	if (in->ec_params != NULL && in->ec_params_len > 0) {
		sha256(pt.curve, in->ec_params, in->ec_params_len);
		pt.has_curve = true;
		pt.kind = CKK_EC;
		snprintf(pt.curve_name, sizeof(pt.curve_name), "%s",
		         in->curve_name != NULL ? in->curve_name : "curve");
		snprintf(pt.size, sizeof(pt.size), "EC %s", pt.curve_name);
	}
	/* Curves are decoded only for what pairing compares, never for a
	 * summary alone. */
	/* A private key's own value decides its point, over any CKA_EC_POINT
	 * stored beside it (SoftHSM stores none), as verify's checks decide. */
	bool derive = keyed && p != NULL && pt.cls == CKO_PRIVATE_KEY && in->ec_value != NULL &&
	              in->ec_value_len > 0;
	/* Bare or wrapped: over-approximated, decoding a curve once is cheap. */
	bool compressed = keyed && in->ec_point != NULL && in->ec_point_len > 2 &&
	                  ((in->ec_point[0] & 0xfe) == 0x02 || (in->ec_point[2] & 0xfe) == 0x02);
	if (derive || compressed)
		g = group_of(p, &pt, in->ec_params, in->ec_params_len);
	if (derive)
		derive_point(p, &pt, g, in->ec_value, in->ec_value_len);
	else if (in->ec_point != NULL && in->ec_point_len > 0)
		point_key(p, &pt, in->ec_point, in->ec_point_len, compressed ? g : NULL);
	if (pt.cls == CKO_SECRET_KEY) {
		const char *kt = tfs_name(TFS_NS_CKK, pt.key_type);
		if (in->value_len != UINT64_MAX)
			snprintf(pt.size, sizeof(pt.size), "%s %llu-bit", kt ? kt + 4 : "key",
			         (unsigned long long)in->value_len * 8);
	}
	if (pt.cls == CKO_CERTIFICATE && in->cert != NULL && keyed)
		cert_key(p, &pt, in->cert, in->cert_len);
	if (buf != NULL && size > 0)
		summarise(&pt, in, buf, size);

	if (p == NULL || !keyed)
		return 0;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		part *np = realloc(p->parts, ncap * sizeof(*np));
		if (np == NULL)
			return -1; /* for dump pairing is a convenience; the dump goes on */
		p->parts = np;
		p->cap = ncap;
	}
	if (in->defect != NULL && (pt.defect = strdup(in->defect)) == NULL)
		return -1;
	pt.seq = p->n;
	p->parts[p->n++] = pt;
	return 0;
}

static const char *key_type_name(uint64_t type)
{
	const char *n = tfs_name(TFS_NS_CKK, type);
	return n != NULL ? n : "unknown";
}

/*
 * Whether a and b hold the same public key: 1 yes, 0 no (why says how they
 * differ), -1 cannot tell (one of them is not known).
 */
static int compare(const part *a, const part *b, char *why, size_t size)
{
	if (a->key_type != UINT64_MAX && b->key_type != UINT64_MAX && a->key_type != b->key_type) {
		snprintf(why, size, "CKA_KEY_TYPE is %s, the other's %s", key_type_name(a->key_type),
		         key_type_name(b->key_type));
		return 0;
	}
	if ((!a->has_key && a->defect == NULL) || (!b->has_key && b->defect == NULL))
		return -1;
	const part *bad = a->defect != NULL ? a : b->defect != NULL ? b : NULL;
	if (bad != NULL) {
		snprintf(why, size, "%s", bad->defect);
		return 0;
	}
	if (a->kind != b->kind) {
		snprintf(why, size, "one is a %s key, the other a %s key", key_type_name(a->kind),
		         key_type_name(b->kind));
		return 0;
	}
	if (a->kind == CKK_RSA) {
		if (a->bits != b->bits)
			snprintf(why, size, "the moduli differ (%u and %u bits)", a->bits, b->bits);
		else if (memcmp(a->key, b->key, 32) != 0)
			snprintf(why, size, "the moduli differ");
		else if (a->has_exp && b->has_exp && memcmp(a->exp, b->exp, 32) != 0)
			snprintf(why, size, "the public exponents differ");
		else
			return 1;
		return 0;
	}
	/* SoftHSM copies CKA_EC_PARAMS from one template into both halves of
	 * a pair: the same curve is the same bytes. */
	if (a->has_curve && b->has_curve && memcmp(a->curve, b->curve, 32) != 0) {
		bool cert = a->cls == CKO_CERTIFICATE || b->cls == CKO_CERTIFICATE;
		if (cert)
			snprintf(why, size, "they are on different curves");
		else
			snprintf(why, size, "their CKA_EC_PARAMS differ (%s and %s)", a->curve_name,
			         b->curve_name);
		return 0;
	}
	if (memcmp(a->key, b->key, 32) != 0) {
		snprintf(why, size, "the public points differ");
		return 0;
	}
	return 1;
}

/* Whether two parts belong to one key for the listing: the same key, or,
 * when that cannot be told (an EC private key without its value), the same
 * curve. */
static bool agree(const part *a, const part *b)
{
	char why[160];
	int c = compare(a, b, why, sizeof(why));
	if (c >= 0)
		return c == 1;
	return a->defect == NULL && b->defect == NULL && a->has_curve && b->has_curve &&
	       memcmp(a->curve, b->curve, 32) == 0 &&
	       !(a->has_key && b->has_key && memcmp(a->key, b->key, 32) != 0);
}

static int by_id(const void *x, const void *y)
{
	const part *a = x, *b = y;
	int c = strcmp(a->id, b->id);
	if (c == 0 && a->id_len != b->id_len)
		c = a->id_len < b->id_len ? -1 : 1;
	if (c == 0)
		c = memcmp(a->id_hash, b->id_hash, 32);
	/* Ties keep the order objects were read in (file-name order). */
	return c != 0 ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static bool same_id(const part *a, const part *b)
{
	return a->id_len == b->id_len && memcmp(a->id_hash, b->id_hash, 32) == 0;
}

/* Pairs the parts of one CKA_ID (parts[0..n)), appending keys to p. */
static void pair_group(tfs_pairing *p, const part *parts, size_t n, bool *used)
{
	/* Each key is anchored at a private key, else a public key, else a
	 * certificate; its parts join when their key agrees. */
	static const uint64_t order[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE};
	for (size_t o = 0; o < 3; o++) {
		for (size_t i = 0; i < n; i++) {
			if (used[i] || parts[i].cls != order[o])
				continue;
			tfs_key_pair *k = &p->keys[p->nkeys++];
			const part *anchor = &parts[i];
			used[i] = true;
			snprintf(k->id, sizeof(k->id), "%s", anchor->id);
			snprintf(k->summary, sizeof(k->summary), "%s", anchor->size);
			const part *pub = anchor->cls == CKO_PUBLIC_KEY ? anchor : NULL;
			*(anchor->cls == CKO_PRIVATE_KEY ? &k->private_uuid
			  : anchor->cls == CKO_PUBLIC_KEY ? &k->public_uuid : &k->cert_uuid) = anchor->uuid;
			for (size_t j = 0; j < n && k->public_uuid == NULL; j++) {
				if (!used[j] && parts[j].cls == CKO_PUBLIC_KEY && agree(anchor, &parts[j])) {
					k->public_uuid = parts[j].uuid;
					pub = &parts[j];
					used[j] = true;
				}
			}
			/* An EC private key without its value has no point: the
			 * certificate must agree with the public key. */
			for (size_t j = 0; j < n && k->cert_uuid == NULL; j++) {
				if (!used[j] && parts[j].cls == CKO_CERTIFICATE &&
				    agree(pub != NULL ? pub : anchor, &parts[j])) {
					k->cert_uuid = parts[j].uuid;
					used[j] = true;
				}
			}
		}
	}
}

/* Sorts by CKA_ID once, so that pairing stays linear in the number of
 * objects after the sort: each object meets only those of its ID. */
static void sort_parts(tfs_pairing *p)
{
	if (p->n > 1)
		qsort(p->parts, p->n, sizeof(*p->parts), by_id);
}

static size_t group_end(const tfs_pairing *p, size_t g)
{
	size_t end = g + 1;
	while (end < p->n && same_id(&p->parts[end], &p->parts[g]))
		end++;
	return end;
}

const tfs_key_pair *tfs_pairing_keys(tfs_pairing *p, size_t *count)
{
	free(p->keys);
	p->keys = calloc(p->n + 1, sizeof(*p->keys));
	p->nkeys = 0;
	bool *used = calloc(p->n + 1, sizeof(*used));
	if (p->keys == NULL || used == NULL) {
		free(used);
		*count = 0;
		return NULL;
	}
	sort_parts(p);
	for (size_t g = 0, end; g < p->n; g = end) {
		end = group_end(p, g);
		pair_group(p, p->parts + g, end - g, used + g);
	}
	free(used);
	*count = p->nkeys;
	return p->keys;
}

/* parts[i] (a private key or a certificate) against the keys of its group. */
static void check_one(tfs_pair_check *out, const part *parts, size_t n, size_t i)
{
	const part *o = &parts[i], *other = NULL;
	bool cert = o->cls == CKO_CERTIFICATE, matched = false;
	char buf[160];
	*out = (tfs_pair_check){.uuid = o->uuid, .object_class = o->cls, .index = o->index,
	                        .id_offset = o->id_offset};
	for (size_t j = 0; j < n; j++) {
		const part *k = &parts[j];
		if (k->cls != CKO_PUBLIC_KEY && !(cert && k->cls == CKO_PRIVATE_KEY))
			continue;
		int c = compare(o, k, buf, sizeof(buf));
		matched = matched || c == 1;
		/* Name a public key rather than a private one when both differ. */
		if (c == 0 && (other == NULL || (other->cls != CKO_PUBLIC_KEY &&
		                                 k->cls == CKO_PUBLIC_KEY))) {
			other = k;
			snprintf(out->why, sizeof(out->why), "%s", buf);
		}
	}
	if (matched) {
		out->verdict = TFS_PAIR_MATCH;
		out->why[0] = '\0';
	} else if (other != NULL) {
		out->verdict = TFS_PAIR_MISMATCH;
		out->other_uuid = other->uuid;
		out->other_class = other->cls;
	}
}

const tfs_pair_check *tfs_pairing_checks(tfs_pairing *p, size_t *count)
{
	free(p->checks);
	p->nchecks = 0;
	p->checks = calloc(p->n + 1, sizeof(*p->checks));
	if (p->checks == NULL) {
		*count = 0;
		return NULL;
	}
	sort_parts(p);
	for (size_t g = 0, end; g < p->n; g = end) {
		end = group_end(p, g);
		for (size_t i = g; i < end; i++)
			if (p->parts[i].cls == CKO_PRIVATE_KEY || p->parts[i].cls == CKO_CERTIFICATE)
				check_one(&p->checks[p->nchecks++], p->parts + g, end - g, i - g);
	}
	*count = p->nchecks;
	return p->checks;
}
