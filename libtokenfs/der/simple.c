/*
 * The small decoders: Name, INTEGER (CKA_SERIAL_NUMBER), the raw modulus
 * and CK_DATE, and tfs_decode_attribute, which picks a decoder for a
 * PKCS#11 attribute.
 */
#include "der/der_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"

/* PKCS#11 constants (p11-kit's pkcs11.h has them; the names module checks
 * its tables against it, these few are spelled out to keep this file
 * free of that header). */
#define CKA_VALUE 0x11u
#define CKA_ISSUER 0x81u
#define CKA_SERIAL_NUMBER 0x82u
#define CKA_SUBJECT 0x101u
#define CKA_START_DATE 0x110u
#define CKA_END_DATE 0x111u
#define CKA_MODULUS 0x120u
#define CKA_PUBLIC_KEY_INFO 0x129u
#define CKA_EC_PARAMS 0x180u
#define CKA_EC_POINT 0x181u
#define CKO_CERTIFICATE 0x1u
#define CKC_X_509 0x0u

int tfs_decode_name(tfs_decoded **out, const uint8_t *der, size_t len, tfs_error *err)
{
	*out = NULL;
	const char *what = "Name";
	asn1_node node = NULL;
	tfs_decoded *d = NULL;
	char *s = NULL;
	size_t rdns = 0;
	int rc = tfs_der_check_input(der, len, what, err);
	if (rc == TFS_OK)
		rc = tfs_der_decode(&node, "Name", 0x30, der, len, 0, what, err);
	if (rc == TFS_OK)
		rc = tfs_der_name_string(&s, &rdns, node, "", der, len, 0, what, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_new(&d, "name", err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "name", TFS_DECODED_STRING, s, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add_int(d, "rdn_count", (int64_t)rdns, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_set_summary(d, err, "%s", *s ? s : "(empty name)");
	tfs_der_free(&node);
	free(s);
	if (rc != TFS_OK) {
		tfs_decoded_free(d);
		return rc;
	}
	*out = d;
	return TFS_OK;
}

int tfs_decode_integer(tfs_decoded **out, const uint8_t *der, size_t len, tfs_error *err)
{
	*out = NULL;
	const char *what = "INTEGER";
	asn1_node node = NULL;
	tfs_decoded *d = NULL;
	uint8_t *v = NULL;
	size_t n = 0;
	char *hex = NULL, *dec = NULL;
	int rc = tfs_der_check_input(der, len, what, err);
	if (rc == TFS_OK)
		rc = tfs_der_decode(&node, "SerialNumber", 0x02, der, len, 0, what, err);
	if (rc == TFS_OK && tfs_der_read(node, "", &v, &n) != ASN1_SUCCESS)
		rc = tfs_nomem(err);
	if (rc == TFS_OK)
		rc = tfs_der_integer_text(v, n, &hex, &dec, 0, what, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_new(&d, "integer", err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add(d, "hex", TFS_DECODED_STRING, hex, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add_decimal(d, "decimal", dec, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_set_summary(d, err, "%s (hex %s)", dec, hex);
	tfs_der_free(&node);
	tfs_der_buf_free(v, n);
	free(hex);
	free(dec);
	if (rc != TFS_OK) {
		tfs_decoded_free(d);
		return rc;
	}
	*out = d;
	return TFS_OK;
}

int tfs_decode_modulus_bits(tfs_decoded **out, const uint8_t *value, size_t len,
                            tfs_error *err)
{
	*out = NULL;
	tfs_decoded *d = NULL;
	int rc = tfs_der_check_input(value, len, "modulus", err);
	if (rc != TFS_OK)
		return rc;
	size_t bits = tfs_der_bit_length(value, len);
	rc = tfs_decoded_new(&d, "modulus", err);
	if (rc == TFS_OK)
		rc = tfs_decoded_add_int(d, "bits", (int64_t)bits, err);
	if (rc == TFS_OK)
		rc = tfs_decoded_set_summary(d, err, "%zu-bit modulus", bits);
	if (rc != TFS_OK) {
		tfs_decoded_free(d);
		return rc;
	}
	*out = d;
	return TFS_OK;
}

/* CK_DATE (PKCS#11 3.0 section 3.3): char year[4], month[2], day[2]. */
int tfs_decode_date(tfs_decoded **out, const uint8_t *value, size_t len, tfs_error *err)
{
	*out = NULL;
	tfs_decoded *d = NULL;
	int rc = tfs_der_check_input(value, len, "CK_DATE", err);
	if (rc != TFS_OK)
		return rc;
	if (len != 8)
		return tfs_error_set(err, TFS_E_FORMAT, 0, "CK_DATE of %zu bytes; 8 (YYYYMMDD) expected",
		                     len);
	for (size_t i = 0; i < 8; i++)
		if (value[i] < '0' || value[i] > '9')
			return tfs_error_set(err, TFS_E_FORMAT, i,
			                     "CK_DATE byte 0x%02x is not an ASCII digit (YYYYMMDD)", value[i]);
	unsigned y = 0, m, day;
	for (size_t i = 0; i < 4; i++)
		y = y * 10 + (unsigned)(value[i] - '0');
	m = (unsigned)(value[4] - '0') * 10 + (unsigned)(value[5] - '0');
	day = (unsigned)(value[6] - '0') * 10 + (unsigned)(value[7] - '0');
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (m < 1 || m > 12)
		return tfs_error_set(err, TFS_E_FORMAT, 4, "CK_DATE month %02u is not 01 to 12", m);
	unsigned last = m == 2 && leap ? 29 : mdays[m - 1];
	if (day < 1 || day > last)
		return tfs_error_set(err, TFS_E_FORMAT, 6, "CK_DATE day %02u is not 01 to %02u for %04u-%02u",
		                     day, last, y, m);
	rc = tfs_decoded_new(&d, "date", err);
	if (rc == TFS_OK)
		rc = tfs_decoded_addf(d, "date", TFS_DECODED_STRING, err, "%04u-%02u-%02u", y, m, day);
	if (rc == TFS_OK)
		rc = tfs_decoded_set_summary(d, err, "%04u-%02u-%02u", y, m, day);
	if (rc != TFS_OK) {
		tfs_decoded_free(d);
		return rc;
	}
	*out = d;
	return TFS_OK;
}

int tfs_decode_attribute(tfs_decoded **out, uint64_t cka_type, uint64_t object_class,
                         uint64_t cert_or_key_type, const uint8_t *value, size_t len,
                         tfs_error *err)
{
	*out = NULL;
	/* Callers format the whole error: an unset `where` must be empty, not
	 * whatever their stack held (dump printed stack bytes there). */
	tfs_error_clear(err);
	int (*decode)(tfs_decoded **, const uint8_t *, size_t, tfs_error *) = NULL;
	switch (cka_type) {
	case CKA_VALUE:
		if (object_class == CKO_CERTIFICATE && cert_or_key_type == CKC_X_509)
			decode = tfs_decode_certificate;
		break;
	case CKA_SUBJECT:
	case CKA_ISSUER:
		decode = tfs_decode_name;
		break;
	case CKA_SERIAL_NUMBER:
		decode = tfs_decode_integer;
		break;
	case CKA_PUBLIC_KEY_INFO:
		decode = tfs_decode_public_key_info;
		break;
	case CKA_EC_PARAMS:
		decode = tfs_decode_ec_params;
		break;
	case CKA_EC_POINT:
		if (len == 0)
			break;
		return tfs_der_ec_point(out, value, len, cert_or_key_type, err);
	case CKA_MODULUS:
		decode = tfs_decode_modulus_bits;
		break;
	case CKA_START_DATE:
	case CKA_END_DATE:
		decode = tfs_decode_date;
		break;
	default:
		break;
	}
	if (decode == NULL || len == 0)
		return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET,
		                     len == 0 ? "empty value: nothing to decode"
		                              : "no decoder for this attribute");
	return decode(out, value, len, err);
}
