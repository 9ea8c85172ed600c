/*
 * X.509 certificates and SubjectPublicKeyInfos. PKCS #11 stores a
 * certificate's subject, issuer and serial number next to its DER (and
 * SoftHSM a check value of it), and applications search by those copies: a
 * copy that differs from the certificate makes it be found as something it
 * is not. The key inside is compared with the key objects of the same
 * CKA_ID by the driver (semantics.c).
 */
#include "verify/semantics_internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include <p11-kit/pkcs11.h>

static int rsa_from_pkey(tfs_sem_pub *out, const X509_PUBKEY *xpk)
{
	EVP_PKEY *pkey = X509_PUBKEY_get0(xpk); /* borrowed */
	if (pkey == NULL) {
		ERR_clear_error();
		return tfs_sem_pub_invalid(out, CKK_RSA, "the RSA key in the SubjectPublicKeyInfo "
		                           "does not decode");
	}
	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &out->n) != 1 ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &out->e) != 1) {
		ERR_clear_error();
		tfs_sem_pub_clear(out);
		return TFS_OK;
	}
	out->state = TFS_SEM_KNOWN;
	out->key_type = CKK_RSA;
	return TFS_OK;
}

/* The algorithm's parameters are the DER ECParameters, as in CKA_EC_PARAMS. */
static int ec_from_param(tfs_sem_pub *out, const X509_ALGOR *alg, const uint8_t *pk, int pklen)
{
	unsigned char *der = NULL;
	int len = alg->parameter != NULL ? i2d_ASN1_TYPE(alg->parameter, &der) : -1;
	EC_GROUP *group = len > 0 ? tfs_sem_ec_group(der, (size_t)len) : NULL;
	OPENSSL_free(der);
	ERR_clear_error();
	if (group == NULL || pklen < 0)
		return TFS_OK;
	return tfs_sem_ec_pub_from_octets(out, group, pk, (size_t)pklen,
	                                  "the SubjectPublicKeyInfo's EC point");
}

/* RSA and EC keys are compared; other algorithms stay unknown. */
int tfs_sem_x509_pub(tfs_sem_pub *out, const X509_PUBKEY *xpk)
{
	ASN1_OBJECT *oid;
	const unsigned char *pk;
	int pklen;
	X509_ALGOR *alg;
	if (xpk == NULL || X509_PUBKEY_get0_param(&oid, &pk, &pklen, &alg, xpk) != 1)
		return TFS_OK;
	switch (OBJ_obj2nid(oid)) {
	case NID_rsaEncryption:
	case NID_rsassaPss:
		return rsa_from_pkey(out, xpk);
	case NID_X9_62_id_ecPublicKey:
		return ec_from_param(out, alg, pk, pklen);
	default:
		return TFS_OK;
	}
}

int tfs_sem_spki_pub(tfs_sem_pub *out, const uint8_t *der, size_t len)
{
	/* Without OpenSSL's key decoding when it would read the SPKI alike. */
	int rc = tfs_sem_spki_pub_der(out, der, len);
	if (rc != TFS_E_FORMAT)
		return rc;
	const unsigned char *p = der;
	X509_PUBKEY *xpk = len <= LONG_MAX ? d2i_X509_PUBKEY(NULL, &p, (long)len) : NULL;
	if (xpk == NULL || p != der + len)
		rc = tfs_sem_pub_invalid(out, UINT64_MAX, "CKA_PUBLIC_KEY_INFO is not one DER "
		                         "SubjectPublicKeyInfo");
	else
		rc = tfs_sem_x509_pub(out, xpk);
	X509_PUBKEY_free(xpk);
	ERR_clear_error();
	return rc;
}

/* A DER Name as text for a message, or a note that it is none. */
static void name_text(char *out, int size, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509_NAME *name = len <= LONG_MAX ? d2i_X509_NAME(NULL, &p, (long)len) : NULL;
	if (name == NULL || p != der + len || X509_NAME_oneline(name, out, size) == NULL)
		snprintf(out, (size_t)size, "<%zu bytes that are not one DER Name>", len);
	X509_NAME_free(name);
	ERR_clear_error();
}

/* A stored Name against the certificate's, both DER. */
static int check_name(tfs_sem *s, const tfs_vobject *o, uint64_t type, const char *what,
                      const unsigned char *der, size_t dlen)
{
	size_t len;
	const uint8_t *stored = tfs_vobject_bytes(o, type, &len);
	if (stored == NULL || len == 0)
		return TFS_OK;
	if (len == dlen && memcmp(stored, der, len) == 0)
		return TFS_OK;
	char a[256], b[256], buf[24];
	name_text(a, sizeof(a), stored, len);
	name_text(b, sizeof(b), der, dlen);
	return tfs_vfinding(s->vt, "cert.attribute-mismatch", TFS_SEV_ERROR, o, type,
	                    "%s is \"%s\" but the certificate's %s is \"%s\"%s",
	                    tfs_vattr_name(type, buf), a, what, b,
	                    strcmp(a, b) == 0 ? " (same text, different encoding)" : "");
}

static int check_x509_name(tfs_sem *s, const tfs_vobject *o, uint64_t type, const char *what,
                           const X509_NAME *name)
{
	const unsigned char *der;
	size_t dlen;
	if (X509_NAME_get0_der(name, &der, &dlen) != 1)
		return TFS_OK;
	return check_name(s, o, type, what, der, dlen);
}

/* The stored serial number against the certificate's, both DER INTEGERs. */
static int check_serial(tfs_sem *s, const tfs_vobject *o, const uint8_t *der, size_t dlen)
{
	size_t len;
	const uint8_t *stored = tfs_vobject_bytes(o, CKA_SERIAL_NUMBER, &len);
	if (stored == NULL || len == 0)
		return TFS_OK;
	if (len == dlen && memcmp(stored, der, len) == 0)
		return TFS_OK;
	char a[80], b[80];
	return tfs_vfinding(s->vt, "cert.attribute-mismatch", TFS_SEV_ERROR, o, CKA_SERIAL_NUMBER,
	                    "CKA_SERIAL_NUMBER is %s but the certificate's serial number is %s "
	                    "(both DER INTEGERs)", tfs_sem_hex(a, sizeof(a), stored, len),
	                    tfs_sem_hex(b, sizeof(b), der, dlen));
}

static int check_x509_serial(tfs_sem *s, const tfs_vobject *o, const X509 *x)
{
	size_t len;
	const uint8_t *stored = tfs_vobject_bytes(o, CKA_SERIAL_NUMBER, &len);
	if (stored == NULL || len == 0)
		return TFS_OK;
	unsigned char *der = NULL;
	int dlen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
	if (dlen <= 0)
		return TFS_E_NOMEM;
	int rc = check_serial(s, o, der, (size_t)dlen);
	OPENSSL_free(der);
	return rc;
}

/* SoftHSM sets a certificate's CKA_CHECK_VALUE to the first 3 bytes of the
 * SHA-1 of its CKA_VALUE whenever the value is written. */
static int check_value(tfs_sem *s, const tfs_vobject *o, const uint8_t *value, size_t len)
{
	size_t clen;
	const uint8_t *stored = tfs_vobject_bytes(o, CKA_CHECK_VALUE, &clen);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	if (stored == NULL || clen == 0)
		return TFS_OK;
	if (EVP_Digest(value, len, md, &mdlen, EVP_sha1(), NULL) != 1)
		return TFS_E_NOMEM;
	s->stats->check_values++;
	if (clen == 3 && memcmp(stored, md, 3) == 0)
		return TFS_OK;
	char a[80];
	return tfs_vfinding(s->vt, "cert.check-value-mismatch", TFS_SEV_ERROR, o, CKA_CHECK_VALUE,
	                    "CKA_CHECK_VALUE is %s but the certificate's check value is "
	                    "%02x%02x%02x (SHA-1 of CKA_VALUE, first 3 bytes)",
	                    tfs_sem_hex(a, sizeof(a), stored, clen), md[0], md[1], md[2]);
}

/* The certificate as d2i_X509 reads it: the judge of every value the
 * reader without it (semantics_cert_der.c) leaves alone. */
static int check_cert_openssl(tfs_sem *s, const tfs_vobject *o, const uint8_t *value,
                              size_t len, tfs_sem_pub *pub)
{
	const unsigned char *p = value;
	X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
	ERR_clear_error();
	if (x == NULL || p != value + len) {
		int rc = tfs_vfinding(s->vt, "cert.malformed", TFS_SEV_ERROR, o, CKA_VALUE,
		                      x == NULL ? "CKA_VALUE (%zu bytes) is not a DER X.509 certificate"
		                                : "CKA_VALUE (%zu bytes) has bytes after its DER "
		                                  "X.509 certificate", len);
		X509_free(x);
		return rc;
	}
	s->stats->certs++;
	int rc = check_x509_name(s, o, CKA_SUBJECT, "subject", X509_get_subject_name(x));
	if (rc == TFS_OK)
		rc = check_x509_name(s, o, CKA_ISSUER, "issuer", X509_get_issuer_name(x));
	if (rc == TFS_OK)
		rc = check_x509_serial(s, o, x);
	if (rc == TFS_OK)
		rc = check_value(s, o, value, len);
	if (rc == TFS_OK)
		rc = tfs_sem_x509_pub(pub, X509_get_X509_PUBKEY(x));
	X509_free(x);
	return rc;
}

int tfs_sem_check_cert(tfs_sem *s, const tfs_vobject *o, tfs_sem_pub *pub)
{
	size_t len;
	const uint8_t *value = tfs_vobject_bytes(o, CKA_VALUE, &len);
	if (o->cert_type != CKC_X_509 || value == NULL || len == 0)
		return TFS_OK;
	tfs_sem_cert_parts c;
	int rc = tfs_sem_cert_parts_read(&c, pub, value, len);
	if (rc == TFS_E_FORMAT)
		return check_cert_openssl(s, o, value, len, pub);
	if (rc != TFS_OK)
		return rc;
	/* The same checks, in the same order, as on OpenSSL's reading. */
	s->stats->certs++;
	s->stats->certs_without_x509++;
	rc = check_name(s, o, CKA_SUBJECT, "subject", c.subject, c.subject_len);
	if (rc == TFS_OK)
		rc = check_name(s, o, CKA_ISSUER, "issuer", c.issuer, c.issuer_len);
	if (rc == TFS_OK)
		rc = check_serial(s, o, c.serial, c.serial_len);
	if (rc == TFS_OK)
		rc = check_value(s, o, value, len);
	return rc;
}
