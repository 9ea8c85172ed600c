/*
 * X.509 certificates (RFC 5280 section 4.1): the fields an auditor reads,
 * each as OpenSSL prints it (see tokenfs/decode.h for the list). The public
 * key is read leniently: a certificate whose key cannot be parsed is still
 * shown, with public_key_error saying why.
 */
#include "der/der_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/error_internal.h"

static bool digits(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static unsigned num(const uint8_t *s, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

static unsigned days_in(unsigned y, unsigned m)
{
	static const unsigned d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : d[m - 1];
}

/*
 * RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY) and
 * GeneralizedTime YYYYMMDDHHMMSSZ, always in UTC with seconds and no
 * fraction. Anything else is reported, not guessed at.
 */
static int iso_time(char out[32], asn1_node node, const uint8_t *der, size_t len,
                    const char *field, tfs_error *err)
{
	char p[96];
	uint8_t *alt = NULL, *s = NULL;
	size_t alt_len, n = 0;
	int rc = TFS_OK;
	snprintf(p, sizeof(p), "tbsCertificate.validity.%s", field);
	uint64_t off = tfs_der_offset(node, der, len, p, 0);
	if (tfs_der_read(node, p, &alt, &alt_len) != ASN1_SUCCESS) {
		rc = tfs_nomem(err);
		goto done;
	}
	bool utc = strcmp((const char *)alt, "utcTime") == 0;
	snprintf(p, sizeof(p), "tbsCertificate.validity.%s.%s", field, (const char *)alt);
	if (tfs_der_read(node, p, &s, &n) != ASN1_SUCCESS) {
		rc = tfs_nomem(err);
		goto done;
	}
	/* libtasn1 counts the NUL it appends to a time. */
	if (n > 0 && s[n - 1] == '\0')
		n--;
	size_t yl = utc ? 2 : 4;
	unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
	bool ok = n == yl + 11 && digits(s, yl + 10) && s[yl + 10] == 'Z';
	if (ok) {
		y = num(s, yl);
		if (utc)
			y += y < 50 ? 2000 : 1900;
		mo = num(s + yl, 2), d = num(s + yl + 2, 2), h = num(s + yl + 4, 2);
		mi = num(s + yl + 6, 2), sec = num(s + yl + 8, 2);
		ok = mo >= 1 && mo <= 12 && d >= 1 && d <= days_in(y, mo) && h < 24 && mi < 60 &&
		     sec < 60;
	}
	if (!ok) {
		char shown[40];
		size_t k = 0;
		for (size_t i = 0; i < n && k + 1 < sizeof(shown); i++)
			shown[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
		shown[k] = '\0';
		rc = tfs_error_set(err, TFS_E_FORMAT, off,
		                   "X.509 certificate: %s %s \"%s\" is not a valid %s", field,
		                   utc ? "UTCTime" : "GeneralizedTime", shown,
		                   utc ? "YYMMDDHHMMSSZ" : "YYYYMMDDHHMMSSZ");
		goto done;
	}
	snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02uZ", y, mo, d, h, mi, sec);
done:
	free(alt);
	free(s);
	return rc;
}

static int fingerprint(tfs_decoded *d, const uint8_t *der, size_t len, tfs_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	if (EVP_Digest(der, len, md, &md_len, EVP_sha256(), NULL) != 1)
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "SHA-256 failed in OpenSSL");
	tfs_strbuf sb = {0};
	tfs_sb_hex(&sb, md, md_len, true, ":");
	char *s = tfs_sb_take(&sb);
	if (s == NULL)
		return tfs_nomem(err);
	int rc = tfs_decoded_add(d, "sha256_fingerprint", TFS_DECODED_STRING, s, err);
	free(s);
	return rc;
}

static int extensions(tfs_decoded *d, asn1_node node, const uint8_t *der, size_t len,
                      tfs_error *err)
{
	size_t n = tfs_der_count(node, "tbsCertificate.extensions");
	if (n == 0)
		return TFS_OK;
	if (n > TFS_DER_MAX_EXTENSIONS)
		return tfs_error_set(err, TFS_E_LIMIT,
		                     tfs_der_offset(node, der, len, "tbsCertificate.extensions", 0),
		                     "X.509 certificate: more than %u extensions", TFS_DER_MAX_EXTENSIONS);
	tfs_strbuf sb = {0};
	int rc = TFS_OK;
	for (size_t i = 1; i <= n && rc == TFS_OK; i++) {
		char p[96], name[128];
		uint8_t *oid = NULL, *crit = NULL;
		size_t oid_len, crit_len;
		snprintf(p, sizeof(p), "tbsCertificate.extensions.?%zu.extnID", i);
		if (tfs_der_read(node, p, &oid, &oid_len) != ASN1_SUCCESS) {
			rc = tfs_nomem(err);
			break;
		}
		snprintf(p, sizeof(p), "tbsCertificate.extensions.?%zu.critical", i);
		/* Absent means the DEFAULT, FALSE; libtasn1 returns "TRUE"/"FALSE". */
		bool critical = tfs_der_read(node, p, &crit, &crit_len) == ASN1_SUCCESS &&
		                strcmp((const char *)crit, "TRUE") == 0;
		tfs_der_oid_long_name((const char *)oid, name, sizeof(name));
		tfs_sb_printf(&sb, "%s%s%s", i > 1 ? ", " : "", name, critical ? " (critical)" : "");
		free(oid);
		free(crit);
	}
	char *s = tfs_sb_take(&sb);
	if (rc == TFS_OK)
		rc = s == NULL ? tfs_nomem(err) : tfs_decoded_add(d, "extensions", TFS_DECODED_STRING, s, err);
	free(s);
	return rc;
}

int tfs_decode_certificate(tfs_decoded **out, const uint8_t *der, size_t len, tfs_error *err)
{
	*out = NULL;
	const char *what = "X.509 certificate";
	asn1_node node = NULL;
	tfs_decoded *d = NULL;
	uint8_t *ver = NULL, *serial = NULL, *sig = NULL;
	size_t ver_len = 0, serial_len, sig_len;
	char *hex = NULL, *dec = NULL, *issuer = NULL, *subject = NULL;
	char sig_name[128], nb[32], na[32], key_summary[256] = "";
	int rc = tfs_der_check_input(der, len, what, err);
	if (rc == TFS_OK)
		rc = tfs_der_decode(&node, "Certificate", 0x30, der, len, 0, what, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_new(&d, "certificate", err);
	if (rc != TFS_OK)
		goto fail;

	/* version [0] Version DEFAULT v1: absent means v1. */
	unsigned version = 1;
	rc = tfs_der_read(node, "tbsCertificate.version", &ver, &ver_len);
	if (rc == ASN1_MEM_ALLOC_ERROR)
		goto nomem;
	if (rc == ASN1_SUCCESS && ver_len > 0) {
		if (ver_len != 1 || ver[0] > 2) {
			rc = tfs_error_set(err, TFS_E_FORMAT,
			                   tfs_der_offset(node, der, len, "tbsCertificate.version", 0),
			                   "%s: version is not v1, v2 or v3", what);
			goto fail;
		}
		version = ver[0] + 1u;
	}
	if (tfs_der_read(node, "tbsCertificate.serialNumber", &serial, &serial_len) != ASN1_SUCCESS ||
	    tfs_der_read(node, "signatureAlgorithm.algorithm", &sig, &sig_len) != ASN1_SUCCESS)
		goto nomem;
	rc = tfs_der_integer_text(serial, serial_len, &hex, &dec,
	                          tfs_der_offset(node, der, len, "tbsCertificate.serialNumber", 0),
	                          "X.509 certificate serial number", err);
	if (rc != TFS_OK)
		goto fail;
	tfs_der_oid_long_name((const char *)sig, sig_name, sizeof(sig_name));
	size_t rdns;
	rc = tfs_der_name_string(&issuer, &rdns, node, "tbsCertificate.issuer", der, len, 0,
	                         "X.509 certificate issuer", err);
	if (rc == TFS_OK)
		rc = tfs_der_name_string(&subject, &rdns, node, "tbsCertificate.subject", der, len, 0,
		                         "X.509 certificate subject", err);
	if (rc == TFS_OK)
		rc = iso_time(nb, node, der, len, "notBefore", err);
	if (rc == TFS_OK)
		rc = iso_time(na, node, der, len, "notAfter", err);
	if (rc != TFS_OK)
		goto fail;
	size_t is, in, ss, sn;
	bool self_issued = tfs_der_extent(node, der, len, "tbsCertificate.issuer", &is, &in) &&
	                   tfs_der_extent(node, der, len, "tbsCertificate.subject", &ss, &sn) &&
	                   in == sn && memcmp(der + is, der + ss, in) == 0;

	rc = tfs_decoded_add_int(d, "version", version, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "serial", TFS_DECODED_STRING, hex, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add_decimal(d, "serial_decimal", dec, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "signature_algorithm", TFS_DECODED_STRING, sig_name, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "signature_algorithm_oid", TFS_DECODED_STRING, (const char *)sig, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "issuer", TFS_DECODED_STRING, issuer, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "subject", TFS_DECODED_STRING, subject, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add_bool(d, "self_issued", self_issued, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "not_before", TFS_DECODED_STRING, nb, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "not_after", TFS_DECODED_STRING, na, err);
	if (rc == TFS_OK)
		rc = tfs_der_spki_fields(d, &tfs_spki_names_cert, node, "tbsCertificate.subjectPublicKeyInfo",
		                         der, len, true, key_summary, sizeof(key_summary), err);
	if (rc == TFS_OK)
		rc = extensions(d, node, der, len, err);
	if (rc == TFS_OK)
		rc = fingerprint(d, der, len, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_set_summary(d, err, "X.509 v%u certificate for %s%s, %s, valid %s to %s, serial %s",
		                             version, *subject ? subject : "(empty name)",
		                             self_issued ? " (self-issued)" : "", key_summary, nb, na, hex);
	if (rc != TFS_OK)
		goto fail;
	*out = d;
	d = NULL;
	goto done;
nomem:
	rc = tfs_nomem(err);
fail:
	tfs_decoded_free(d);
done:
	tfs_der_free(&node);
	free(ver);
	free(serial);
	free(sig);
	free(hex);
	free(dec);
	free(issuer);
	free(subject);
	return rc;
}
