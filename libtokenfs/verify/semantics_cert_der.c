/*
 * Reading a certificate or a SubjectPublicKeyInfo for the checks without
 * OpenSSL's X.509 parser. d2i_X509 and d2i_X509_PUBKEY decode the public
 * key into an EVP_PKEY through OpenSSL 3's decoder framework, and on a
 * store of many certificates that is most of verify's time; the checks
 * need only bytes: the names and serial number as encoded, RSA n and e,
 * EC parameters and point.
 *
 * The verdict must stay OpenSSL's: a value is read here only when
 * d2i_X509 (d2i_X509_PUBKEY) would read it too, and then to the same
 * parts. libtasn1 with the structural scan (der/) is stricter than OpenSSL
 * about the encoding (DER only) but laxer about some contents (attribute
 * strings of a Name, ANY parameters, INTEGER padding, times), so each part
 * is also handed to OpenSSL's decoder of that part, which is cheap for all
 * but the key. Anything else, or a key OpenSSL might read differently
 * (RSA-PSS, unused bits, odd RSA integers), is left to the caller's
 * OpenSSL path: TFS_E_FORMAT here never is a finding.
 */
#include "verify/semantics_internal.h"

#include <limits.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <p11-kit/pkcs11.h>

#include "der/der_internal.h"

/* OpenSSL's RSA key limit (OPENSSL_RSA_MAX_MODULUS_BITS): larger keys are
 * left to OpenSSL, whatever it makes of them. */
#define RSA_MAX_BITS 16384u

/* Whether OpenSSL's decoder of `it` takes der[start..start+size) whole. */
static bool openssl_reads(const ASN1_ITEM *it, const uint8_t *der, size_t start, size_t size)
{
	const unsigned char *p = der + start;
	ASN1_VALUE *v = size <= LONG_MAX ? ASN1_item_d2i(NULL, &p, (long)size, it) : NULL;
	bool ok = v != NULL && p == der + start + size;
	ASN1_item_free(v, it);
	ERR_clear_error();
	return ok;
}

/* The extent of `name`, inside its EXPLICIT tag `ident` when it has one. */
static bool extent_in(asn1_node node, const uint8_t *der, size_t len, const char *name,
                      uint8_t ident, size_t *start, size_t *size)
{
	tfs_der_tlv t;
	if (!tfs_der_extent(node, der, len, name, start, size))
		return false;
	if (der[*start] != ident)
		return true;
	if (tfs_der_header(&t, der, *start, *start + *size, 0, "", NULL) != TFS_OK ||
	    t.hdr_len + t.len != *size)
		return false;
	*start += t.hdr_len;
	*size = t.len;
	return true;
}

static bool present(asn1_node node, const char *name)
{
	int n = 0;
	int rc = asn1_read_value(node, name, NULL, &n);
	return rc == ASN1_SUCCESS || rc == ASN1_MEM_ERROR;
}

/* An element OpenSSL reads with `it`, located or not (false). */
static bool part_ok(asn1_node node, const uint8_t *der, size_t len, const char *name,
                    const ASN1_ITEM *it)
{
	size_t s, n;
	return tfs_der_extent(node, der, len, name, &s, &n) && openssl_reads(it, der, s, n);
}

/*
 * The key as tfs_sem_x509_pub (semantics_cert.c) would set it from
 * OpenSSL's X509_PUBKEY: RSA and EC compared, other algorithms unknown.
 * TFS_E_FORMAT when OpenSSL's reading could differ.
 */
static int key_pub(tfs_sem_pub *out, const tfs_der_spki_key *k)
{
	/* The algorithm as OpenSSL names it (OBJ_obj2nid there), so that no
	 * OID it reads as RSA, RSA-PSS or EC is taken for another. */
	int nid = OBJ_txt2nid(k->oid);
	ERR_clear_error();
	bool rsa = nid == NID_rsaEncryption, ec = nid == NID_X9_62_id_ecPublicKey;
	if (nid == NID_rsassaPss)
		return TFS_E_FORMAT; /* its parameters are OpenSSL's to read */
	if (!rsa && !ec)
		return TFS_OK;
	/* OpenSSL masks unused bits off the key octets. */
	if (k->unused_bits != 0)
		return TFS_E_FORMAT;
	if (ec) {
		/* OpenSSL re-encodes the parameters it decoded: the same DER for
		 * a named curve (OID) and explicit parameters (SEQUENCE). */
		if (k->params != NULL && k->params[0] != 0x06 && k->params[0] != 0x30)
			return TFS_E_FORMAT;
		EC_GROUP *group = k->params != NULL ? tfs_sem_ec_group(k->params, k->params_len)
		                                    : NULL;
		ERR_clear_error();
		if (group == NULL)
			return TFS_OK;
		return tfs_sem_ec_pub_from_octets(out, group, k->key, k->key_len,
		                                  "the SubjectPublicKeyInfo's EC point");
	}
	static const uint8_t null_der[2] = {0x05, 0x00};
	if (k->params != NULL &&
	    (k->params_len != sizeof(null_der) || memcmp(k->params, null_der, 2) != 0))
		return TFS_E_FORMAT;
	const uint8_t *n, *e;
	size_t n_len, e_len;
	int rc = tfs_der_rsa_public(k->key, k->key_len, &n, &n_len, &e, &e_len);
	if (rc != TFS_OK)
		return rc;
	if (tfs_der_bit_length(n, n_len) > RSA_MAX_BITS)
		return TFS_E_FORMAT;
	out->n = BN_bin2bn(n, (int)n_len, NULL);
	out->e = BN_bin2bn(e, (int)e_len, NULL);
	if (out->n == NULL || out->e == NULL) {
		tfs_sem_pub_clear(out);
		return TFS_E_NOMEM;
	}
	out->state = TFS_SEM_KNOWN;
	out->key_type = CKK_RSA;
	return TFS_OK;
}

/* The SubjectPublicKeyInfo at `path`, with OpenSSL's X509_PUBKEY parts. */
static int spki_pub(tfs_sem_pub *out, asn1_node node, const char *path, const uint8_t *der,
                    size_t len)
{
	tfs_der_spki_key k;
	int rc = tfs_der_spki_key_get(&k, node, path, der, len);
	if (rc != TFS_OK)
		return rc;
	if (!openssl_reads(ASN1_ITEM_rptr(X509_ALGOR), der, k.alg_start, k.alg_len) ||
	    !openssl_reads(ASN1_ITEM_rptr(ASN1_BIT_STRING), der, k.bits_start, k.bits_len))
		return TFS_E_FORMAT;
	return key_pub(out, &k);
}

/* The version OpenSSL accepts: absent (v1) or a valid INTEGER 0..2. */
static bool version_ok(asn1_node node, const uint8_t *der, size_t len)
{
	size_t s, n;
	if (!present(node, "tbsCertificate.version"))
		return true;
	if (!extent_in(node, der, len, "tbsCertificate.version", 0xa0, &s, &n) || der[s] != 0x02)
		return false;
	const unsigned char *p = der + s;
	ASN1_INTEGER *v = d2i_ASN1_INTEGER(NULL, &p, (long)n);
	long ver = v != NULL && p == der + s + n ? ASN1_INTEGER_get(v) : -1;
	ASN1_INTEGER_free(v);
	ERR_clear_error();
	return ver >= 0 && ver <= 2;
}

/* Everything of TBSCertificate and Certificate but the key, part by part. */
static bool parts_ok(asn1_node node, const uint8_t *der, size_t len, tfs_sem_cert_parts *c)
{
	size_t s, n;
	if (!version_ok(node, der, len) ||
	    present(node, "tbsCertificate.issuerUniqueID") ||
	    present(node, "tbsCertificate.subjectUniqueID"))
		return false;
	if (!part_ok(node, der, len, "tbsCertificate.signature", ASN1_ITEM_rptr(X509_ALGOR)) ||
	    !part_ok(node, der, len, "tbsCertificate.validity", ASN1_ITEM_rptr(X509_VAL)) ||
	    !part_ok(node, der, len, "signatureAlgorithm", ASN1_ITEM_rptr(X509_ALGOR)) ||
	    !part_ok(node, der, len, "signature", ASN1_ITEM_rptr(ASN1_BIT_STRING)))
		return false;
	/* After the key (unique IDs were declined above) only extensions
	 * may follow, non-empty, read by OpenSSL, and ending the TBS:
	 * libtasn1 takes forms OpenSSL does not (an empty [3] followed by
	 * more bytes), and d2i_X509 judges those. */
	size_t ts, tn, ks, kn, es, en;
	if (!tfs_der_extent(node, der, len, "tbsCertificate", &ts, &tn) ||
	    !tfs_der_extent(node, der, len, "tbsCertificate.subjectPublicKeyInfo", &ks, &kn))
		return false;
	if (ks + kn != ts + tn &&
	    (tfs_der_count(node, "tbsCertificate.extensions") == 0 ||
	     !tfs_der_extent(node, der, len, "tbsCertificate.extensions", &es, &en) ||
	     es != ks + kn || es + en != ts + tn ||
	     !extent_in(node, der, len, "tbsCertificate.extensions", 0xa3, &s, &n) ||
	     !openssl_reads(ASN1_ITEM_rptr(X509_EXTENSIONS), der, s, n)))
		return false;

	/* The parts the checks compare, as OpenSSL keeps them: a Name's
	 * bytes as received, the serial number re-encoded (the same DER
	 * when it is minimal, which OpenSSL requires). */
	tfs_der_tlv t;
	if (!tfs_der_extent(node, der, len, "tbsCertificate.subject", &s, &n) ||
	    !openssl_reads(ASN1_ITEM_rptr(X509_NAME), der, s, n))
		return false;
	c->subject = der + s;
	c->subject_len = n;
	if (!tfs_der_extent(node, der, len, "tbsCertificate.issuer", &s, &n) ||
	    !openssl_reads(ASN1_ITEM_rptr(X509_NAME), der, s, n))
		return false;
	c->issuer = der + s;
	c->issuer_len = n;
	if (!tfs_der_extent(node, der, len, "tbsCertificate.serialNumber", &s, &n) ||
	    tfs_der_header(&t, der, s, s + n, 0, "", NULL) != TFS_OK || t.ident != 0x02 ||
	    tfs_der_integer_check(der + s + t.hdr_len, t.len, 0, "", NULL) != TFS_OK ||
	    !openssl_reads(ASN1_ITEM_rptr(ASN1_INTEGER), der, s, n))
		return false;
	c->serial = der + s;
	c->serial_len = n;
	return true;
}

int tfs_sem_cert_parts_read(tfs_sem_cert_parts *c, tfs_sem_pub *pub, const uint8_t *der,
                            size_t len)
{
	asn1_node node = NULL;
	tfs_sem_pub tmp = {0};
	memset(c, 0, sizeof(*c));
	int rc = tfs_der_decode(&node, "Certificate", 0x30, der, len, 0, "X.509 certificate", NULL);
	if (rc == TFS_OK && !parts_ok(node, der, len, c))
		rc = TFS_E_FORMAT;
	if (rc == TFS_OK)
		rc = spki_pub(&tmp, node, "tbsCertificate.subjectPublicKeyInfo", der, len);
	tfs_der_free(&node);
	if (rc != TFS_OK) {
		tfs_sem_pub_clear(&tmp);
		return rc == TFS_E_NOMEM ? rc : TFS_E_FORMAT;
	}
	tfs_sem_pub_clear(pub);
	*pub = tmp;
	return TFS_OK;
}

int tfs_sem_spki_pub_der(tfs_sem_pub *out, const uint8_t *der, size_t len)
{
	asn1_node node = NULL;
	tfs_sem_pub tmp = {0};
	int rc = tfs_der_decode(&node, "SubjectPublicKeyInfo", 0x30, der, len, 0,
	                        "SubjectPublicKeyInfo", NULL);
	if (rc == TFS_OK)
		rc = spki_pub(&tmp, node, "", der, len);
	tfs_der_free(&node);
	if (rc != TFS_OK) {
		tfs_sem_pub_clear(&tmp);
		return rc == TFS_E_NOMEM ? rc : TFS_E_FORMAT;
	}
	tfs_sem_pub_clear(out);
	*out = tmp;
	return TFS_OK;
}
