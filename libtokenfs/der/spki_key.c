/*
 * A SubjectPublicKeyInfo's key as bytes, for checks that compare keys
 * rather than print them (verify's certificate and CKA_PUBLIC_KEY_INFO
 * checks): the algorithm, the parameters' DER and the subjectPublicKey
 * BIT STRING, all borrowed from the decoded input, and an RSAPublicKey's
 * modulus and exponent. Nothing is copied, so nothing is left to wipe.
 */
#include "der/der_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/error_internal.h"

/* The content of the element at `name`: its header skipped. */
static bool content_of(asn1_node node, const uint8_t *der, size_t len, const char *name,
                       size_t *start, size_t *size, tfs_der_tlv *t)
{
	size_t s, n;
	if (!tfs_der_extent(node, der, len, name, &s, &n) ||
	    tfs_der_header(t, der, s, s + n, 0, "", NULL) != TFS_OK || t->hdr_len > n)
		return false;
	*start = s + t->hdr_len;
	*size = n - t->hdr_len;
	return true;
}

int tfs_der_spki_key_get(tfs_der_spki_key *k, asn1_node node, const char *path,
                         const uint8_t *der, size_t len)
{
	char p[160];
	const char *dot = *path ? "." : "";
	memset(k, 0, sizeof(*k));

	snprintf(p, sizeof(p), "%s%salgorithm.algorithm", path, dot);
	int olen = (int)sizeof(k->oid);
	int rc = asn1_read_value(node, p, k->oid, &olen);
	if (rc != ASN1_SUCCESS)
		return rc == ASN1_MEM_ALLOC_ERROR ? TFS_E_NOMEM : TFS_E_FORMAT;
	k->oid[sizeof(k->oid) - 1] = '\0';

	snprintf(p, sizeof(p), "%s%salgorithm", path, dot);
	if (!tfs_der_extent(node, der, len, p, &k->alg_start, &k->alg_len))
		return TFS_E_FORMAT;

	/* Absent OPTIONAL parameters leave no element to find; present ones
	 * are one whole element inside the AlgorithmIdentifier. */
	size_t s, n;
	snprintf(p, sizeof(p), "%s%salgorithm.parameters", path, dot);
	if (tfs_der_extent(node, der, len, p, &s, &n)) {
		if (s <= k->alg_start || s + n > k->alg_start + k->alg_len)
			return TFS_E_FORMAT;
		k->params = der + s;
		k->params_len = n;
	}

	/* The BIT STRING: an unused-bits octet, then the key's octets. */
	tfs_der_tlv t;
	snprintf(p, sizeof(p), "%s%ssubjectPublicKey", path, dot);
	if (!tfs_der_extent(node, der, len, p, &k->bits_start, &k->bits_len) ||
	    !content_of(node, der, len, p, &s, &n, &t) || t.ident != 0x03 || n < 1)
		return TFS_E_FORMAT;
	k->unused_bits = der[s];
	k->key = der + s + 1;
	k->key_len = n - 1;
	return TFS_OK;
}

/* One INTEGER of an RSAPublicKey: minimal, positive, not zero. */
static int rsa_integer(asn1_node node, const uint8_t *key, size_t key_len, const char *name,
                       const uint8_t **out, size_t *out_len)
{
	size_t s, n;
	tfs_der_tlv t;
	if (!content_of(node, key, key_len, name, &s, &n, &t) || t.ident != 0x02 ||
	    tfs_der_integer_check(key + s, n, 0, "", NULL) != TFS_OK || (key[s] & 0x80) != 0)
		return TFS_E_FORMAT;
	/* Minimal: a leading 0x00 only stands before a high bit. */
	if (key[s] == 0x00) {
		s++;
		n--;
	}
	if (n == 0)
		return TFS_E_FORMAT; /* zero */
	*out = key + s;
	*out_len = n;
	return TFS_OK;
}

int tfs_der_rsa_public(const uint8_t *key, size_t key_len, const uint8_t **n, size_t *n_len,
                       const uint8_t **e, size_t *e_len)
{
	asn1_node node = NULL;
	if (key_len == 0)
		return TFS_E_FORMAT;
	int rc = tfs_der_decode(&node, "RSAPublicKey", 0x30, key, key_len, 0, "RSAPublicKey", NULL);
	if (rc == TFS_OK)
		rc = rsa_integer(node, key, key_len, "modulus", n, n_len);
	if (rc == TFS_OK)
		rc = rsa_integer(node, key, key_len, "publicExponent", e, e_len);
	tfs_der_free(&node);
	/* A cut value (TFS_E_TRUNCATED) is no RSAPublicKey either. */
	return rc == TFS_OK || rc == TFS_E_NOMEM ? rc : TFS_E_FORMAT;
}
