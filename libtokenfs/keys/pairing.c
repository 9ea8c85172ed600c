/*
 * Object summaries and key pairing (tokenfs/pairing.h). Parts pair when
 * they share a CKA_ID and their public key agrees: RSA by modulus (private
 * and public objects both store it, certificates carry it), EC public keys
 * and certificates by point, EC private keys by curve (they store no point;
 * verify-integrity proves d*G = Q).
 */
#include "tokenfs/pairing.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/asn1.h>
#include <p11-kit/pkcs11.h>

#include "tokenfs/names.h"
#include "tokenfs/text.h"

/* Bytes of a label a summary shows. */
#define SHOW_LABEL 128

typedef struct part {
	size_t seq;          /* order of arrival */
	const char *uuid;
	uint64_t cls, key_type;
	char id[80];
	uint8_t key[32];   /* SHA-256 of the modulus or the point */
	bool has_key;
	uint8_t curve[32]; /* SHA-256 of CKA_EC_PARAMS */
	bool has_curve;
	char size[48];     /* "RSA 2048", "EC prime256v1" */
} part;

struct tfs_pairing {
	part *parts;
	size_t n, cap;
	tfs_key_pair *keys;
	size_t nkeys;
};

tfs_pairing *tfs_pairing_new(void)
{
	return calloc(1, sizeof(tfs_pairing));
}

void tfs_pairing_free(tfs_pairing *p)
{
	if (p == NULL)
		return;
	free(p->parts);
	free(p->keys);
	free(p);
}

static void sha256(uint8_t out[32], const uint8_t *p, size_t n)
{
	unsigned int len = 32;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

/* Hash of an RSA modulus without leading zero bytes, so that every
 * encoding of the same number agrees. */
static void modulus_key(part *pt, const uint8_t *n, size_t len)
{
	while (len > 0 && n[0] == 0)
		n++, len--;
	sha256(pt->key, n, len);
	pt->has_key = true;
	snprintf(pt->size, sizeof(pt->size), "RSA %zu", len * 8);
}

/* CKA_EC_POINT is a DER OCTET STRING around the point; some writers store
 * the bare point. */
static void point_key(part *pt, const uint8_t *p, size_t len)
{
	if (len >= 2 && p[0] == 0x04 && p[1] < 0x80 && (size_t)p[1] + 2 == len)
		p += 2, len -= 2;
	else if (len >= 3 && p[0] == 0x04 && p[1] == 0x81 && (size_t)p[2] + 3 == len)
		p += 3, len -= 3;
	sha256(pt->key, p, len);
	pt->has_key = true;
}

/* The curve, named from the caller's decoding (decoding it again here cost
 * dump as much as the whole of the rest of pairing). */
static void curve_of(part *pt, const uint8_t *params, size_t len, const char *name)
{
	sha256(pt->curve, params, len);
	pt->has_curve = true;
	snprintf(pt->size, sizeof(pt->size), "EC %s", name != NULL ? name : "curve");
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
 * modulus, or the EC point. Read from the SPKI's TLV headers; OpenSSL 3's
 * d2i_PUBKEY goes through its provider decoders and cost about a million
 * instructions per certificate.
 */
static void cert_key(part *pt, const uint8_t *der, size_t len)
{
	static const unsigned char rsa_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
	static const unsigned char ec_oid[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
	long spki_len = 0, l, alg_len, oid_len, bits_len;
	const unsigned char *p = find_spki(der, len, &spki_len);
	if (p == NULL)
		return;
	const unsigned char *end = p + spki_len;
	if (!tlv(&p, end, V_ASN1_SEQUENCE, &l) || !tlv(&p, end, V_ASN1_SEQUENCE, &alg_len))
		return;
	const unsigned char *alg_end = p + alg_len, *oid = p;
	if (!tlv(&oid, alg_end, V_ASN1_OBJECT, &oid_len))
		return;
	p = alg_end;
	if (!tlv(&p, end, V_ASN1_BIT_STRING, &bits_len) || bits_len < 2 || p[0] != 0)
		return;
	const unsigned char *key = p + 1, *key_end = p + bits_len;
	if (oid_len == (long)sizeof(ec_oid) && memcmp(oid, ec_oid, sizeof(ec_oid)) == 0) {
		sha256(pt->key, key, (size_t)(key_end - key));
		pt->has_key = true;
	} else if (oid_len == (long)sizeof(rsa_oid) && memcmp(oid, rsa_oid, sizeof(rsa_oid)) == 0) {
		long n_len;
		if (tlv(&key, key_end, V_ASN1_SEQUENCE, &l) && tlv(&key, key_end, V_ASN1_INTEGER, &n_len) &&
		    n_len > 0 && n_len <= key_end - key)
			modulus_key(pt, key, (size_t)n_len);
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

void tfs_pairing_add(tfs_pairing *p, const tfs_pair_input *in, char *buf, size_t size)
{
	part pt = {.uuid = in->uuid, .cls = in->object_class, .key_type = in->key_type};
	if (in->id != NULL)
		for (size_t i = 0; i < in->id_len && 2 * i + 2 < sizeof(pt.id); i++)
			snprintf(pt.id + 2 * i, 3, "%02x", in->id[i]);
	if (in->modulus != NULL && in->modulus_len > 0)
		modulus_key(&pt, in->modulus, in->modulus_len);
	if (in->ec_params != NULL && in->ec_params_len > 0)
		curve_of(&pt, in->ec_params, in->ec_params_len, in->curve_name);
	if (in->ec_point != NULL && in->ec_point_len > 0)
		point_key(&pt, in->ec_point, in->ec_point_len);
	if (pt.cls == CKO_SECRET_KEY) {
		const char *kt = tfs_name(TFS_NS_CKK, pt.key_type);
		if (in->value_len != UINT64_MAX)
			snprintf(pt.size, sizeof(pt.size), "%s %llu-bit", kt ? kt + 4 : "key",
			         (unsigned long long)in->value_len * 8);
	}
	if (pt.cls == CKO_CERTIFICATE && in->cert != NULL)
		cert_key(&pt, in->cert, in->cert_len);

	/* "private key RSA 2048 'label' id 01": the label as dump's attribute
	 * line shows it, text escaped (tokenfs/text.h) or hex, cut at
	 * SHOW_LABEL bytes. */
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
	snprintf(buf, size, "%s%s%s %s%s%s", class_word(pt.cls), pt.size[0] ? " " : "", pt.size, lab,
	         pt.id[0] ? " id " : "", pt.id);

	if (p == NULL || pt.id[0] == '\0' || (pt.cls != CKO_PRIVATE_KEY && pt.cls != CKO_PUBLIC_KEY &&
	                         pt.cls != CKO_CERTIFICATE))
		return;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		part *np = realloc(p->parts, ncap * sizeof(*np));
		if (np == NULL)
			return; /* pairing is a convenience; the dump goes on */
		p->parts = np;
		p->cap = ncap;
	}
	pt.seq = p->n;
	p->parts[p->n++] = pt;
}

/* Whether two parts hold the same public key, as far as they can tell. */
static bool agree(const part *a, const part *b)
{
	if (a->has_key && b->has_key)
		return memcmp(a->key, b->key, 32) == 0;
	if (a->has_curve && b->has_curve)
		return memcmp(a->curve, b->curve, 32) == 0;
	return false;
}

static int by_id(const void *a, const void *b)
{
	const part *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	/* Ties keep the order objects were read in (file-name order). */
	return c != 0 ? c : (x->seq > y->seq) - (x->seq < y->seq);
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
			/* An EC private key has no point: the certificate must agree
			 * with the public key. */
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

/* Sorting by CKA_ID first keeps pairing linear in the number of objects
 * (after the sort): every object is compared only with those of its ID. */
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
	if (p->n > 1)
		qsort(p->parts, p->n, sizeof(*p->parts), by_id);
	for (size_t g = 0, end; g < p->n; g = end) {
		for (end = g + 1; end < p->n && strcmp(p->parts[end].id, p->parts[g].id) == 0; end++)
			;
		pair_group(p, p->parts + g, end - g, used + g);
	}
	free(used);
	*count = p->nkeys;
	return p->keys;
}
