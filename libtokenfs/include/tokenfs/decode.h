/*
 * Decoding of PKCS#11 attribute values that hold DER (certificates, names,
 * EC parameters and points, public keys, serial numbers) and of the few
 * plain binary ones an auditor wants in words (RSA modulus size, CK_DATE).
 *
 * A decoder reads bytes from memory only. Its result, a tfs_decoded, is an
 * ordered list of named fields plus a one-line summary; field names are
 * stable, lower-case ASCII identifiers ("subject", "not_after", ...) fit for
 * JSON keys. Each field's value is text, tagged with how it may be emitted:
 *
 *   TFS_DECODED_STRING   any UTF-8 text
 *   TFS_DECODED_INTEGER  a decimal integer that fits in int64_t
 *   TFS_DECODED_BOOLEAN  "true" or "false"
 *
 * Numbers that do not fit in 64 bits (a 20-byte serial number) are strings.
 *
 * Names (subject, issuer, CKA_SUBJECT, CKA_ISSUER) are RFC 4514 strings that
 * equal, byte for byte, what OpenSSL 3 prints with
 * `openssl x509 -noout -subject -nameopt RFC2253,-esc_msb`: last RDN first,
 * OpenSSL's short attribute names (CN, O, emailAddress; dotted OID when
 * unknown), ",+\"\\<>;" and leading "#"/space and trailing space escaped with
 * a backslash, control characters as \XX, non-ASCII text as raw UTF-8, and
 * values of non-string types or unknown attributes as "#" + hex DER. Bytes
 * that cannot be shown as valid UTF-8 (a UTF8String that is not UTF-8, a
 * lone surrogate) are escaped \XX as plain RFC2253 (with esc_msb) prints
 * them.
 *
 * Errors: TFS_E_NOTFOUND for an empty value (nothing to decode);
 * TFS_E_TRUNCATED when a DER length runs past the bytes there are (a cut
 * value and an oversized length look the same), err->offset at that length;
 * TFS_E_FORMAT for bytes that are not what the attribute must hold, with
 * err->offset at the element that is wrong where it is known (libtasn1
 * names the element of a structural mismatch by its path instead) and a
 * message naming the defect; TFS_E_LIMIT for input beyond the caps below;
 * TFS_E_INVALID for a NULL value with a non-zero length; TFS_E_NOMEM.
 */
#ifndef TOKENFS_DECODE_H
#define TOKENFS_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caps that bound the work done on hostile input. */
#define TFS_DECODE_MAX_SIZE   (1u << 20) /* bytes in one value */
#define TFS_DECODE_MAX_DEPTH  32u        /* nested DER elements */

/* cert_or_key_type for objects that have neither (CKO_DATA, ...). */
#define TFS_DECODE_NO_TYPE UINT64_MAX

typedef struct tfs_decoded tfs_decoded;

typedef enum tfs_decoded_type {
	TFS_DECODED_STRING = 1,
	TFS_DECODED_INTEGER = 2,
	TFS_DECODED_BOOLEAN = 3
} tfs_decoded_type;

/*
 * X.509 certificate (CKA_VALUE of CKO_CERTIFICATE, CKC_X_509). Fields:
 * version, serial (hex as `openssl x509 -serial` prints it), serial_decimal,
 * signature_algorithm (OpenSSL's name, as in `openssl x509 -text`),
 * signature_algorithm_oid, issuer, subject, self_issued (issuer and subject
 * byte-identical), not_before, not_after (ISO 8601 UTC,
 * "2026-11-22T05:17:11Z"), public_key_type ("RSA", "EC", "Ed25519", ...),
 * public_key_algorithm, public_key_algorithm_oid, public_key_bits, and where
 * they apply public_key_exponent, public_key_curve, public_key_curve_openssl,
 * public_key_curve_oid; public_key_error when the key inside is damaged (the
 * rest is still decoded); extensions (names, ", "-separated, " (critical)"
 * marked) when present; sha256_fingerprint ("AB:CD:...", over the whole DER).
 */
int tfs_decode_certificate(tfs_decoded **out, const uint8_t *der, size_t len,
                           tfs_error *err);

/* X.501 Name (CKA_SUBJECT, CKA_ISSUER). Fields: name (RFC 4514, see above),
 * rdn_count. */
int tfs_decode_name(tfs_decoded **out, const uint8_t *der, size_t len, tfs_error *err);

/*
 * DER INTEGER (CKA_SERIAL_NUMBER). Fields: hex (uppercase magnitude bytes,
 * "-" for negatives, as `openssl asn1parse` prints an INTEGER) and decimal.
 */
int tfs_decode_integer(tfs_decoded **out, const uint8_t *der, size_t len, tfs_error *err);

/*
 * SubjectPublicKeyInfo (CKA_PUBLIC_KEY_INFO). Fields: type, algorithm,
 * algorithm_oid, bits (as OpenSSL's EVP_PKEY_get_bits: modulus bits for
 * RSA, field degree for EC; OpenSSL 3.0 gives Ed25519 256, X25519 253,
 * Ed448 456, X448 448),
 * and exponent (RSA) or curve, curve_openssl, curve_oid (EC).
 */
int tfs_decode_public_key_info(tfs_decoded **out, const uint8_t *der, size_t len,
                               tfs_error *err);

/*
 * CKA_EC_PARAMS: a named curve OID, explicit parameters, implicitlyCA
 * (NULL), or a PKCS#11 3.0 curve name (PrintableString "edwards25519").
 * Fields: encoding ("namedCurve", "ecParameters", "implicitlyCA",
 * "curveName"), curve ("P-256", "secp256k1", "brainpoolP256r1", "Ed25519",
 * "explicit parameters", "implicitlyCA", or "unknown"), curve_openssl
 * (OpenSSL's short name, "prime256v1"), oid, curve_name (the stored
 * PrintableString), field_type and field_bits where known.
 */
int tfs_decode_ec_params(tfs_decoded **out, const uint8_t *der, size_t len,
                         tfs_error *err);

/*
 * CKA_EC_POINT: a DER OCTET STRING holding the point, or (as some tools
 * store it) the bare point. Fields: der_wrapped (boolean), form
 * ("uncompressed", "compressed", "hybrid", or "raw" for 32/56/57-byte
 * Edwards and Montgomery keys), field_bits (from the coordinate length:
 * 8 bits a byte, 521 for 66 bytes, 571 for 72, 255 or 448 for raw keys),
 * length (bytes of the point) and point (lower-case hex). A value that
 * parses both ways is read as DER unless only the bare reading has a
 * coordinate length of a standard curve.
 */
int tfs_decode_ec_point(tfs_decoded **out, const uint8_t *der, size_t len,
                        tfs_error *err);

/* CKA_MODULUS (unsigned big-endian, not DER). Field: bits, leading zero bits
 * not counted. */
int tfs_decode_modulus_bits(tfs_decoded **out, const uint8_t *value, size_t len,
                            tfs_error *err);

/* CKA_START_DATE, CKA_END_DATE: CK_DATE, 8 ASCII digits YYYYMMDD. Field:
 * date, "YYYY-MM-DD". A calendar date that does not exist is TFS_E_FORMAT. */
int tfs_decode_date(tfs_decoded **out, const uint8_t *value, size_t len, tfs_error *err);

/*
 * Picks the decoder for one attribute of an object of the given class
 * (CKA_CLASS) and certificate or key type (CKA_CERTIFICATE_TYPE or
 * CKA_KEY_TYPE; TFS_DECODE_NO_TYPE when absent): CKA_VALUE of an X.509
 * certificate, CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER,
 * CKA_PUBLIC_KEY_INFO, CKA_EC_PARAMS, CKA_EC_POINT (for CKK_EC_EDWARDS and
 * CKK_EC_MONTGOMERY keys a raw key is named: field curve), CKA_MODULUS,
 * CKA_START_DATE, CKA_END_DATE. TFS_E_NOTFOUND when the attribute has no
 * decoder or the value is empty, so that callers fall back to hex.
 */
int tfs_decode_attribute(tfs_decoded **out, uint64_t cka_type, uint64_t object_class,
                         uint64_t cert_or_key_type, const uint8_t *value, size_t len,
                         tfs_error *err);

/* Frees a decoded value. Accepts NULL. */
void tfs_decoded_free(tfs_decoded *d);

/* What was decoded: "certificate", "name", "integer", "public_key_info",
 * "ec_params", "ec_point", "modulus", "date". */
const char *tfs_decoded_kind(const tfs_decoded *d);

/* One line for humans, such as "X.509 v3 certificate CN=demo, RSA 2048 bits,
 * valid 2026-11-22T05:17:11Z to 2036-11-20T05:17:11Z". Never NULL. */
const char *tfs_decoded_summary(const tfs_decoded *d);

/* Fields, in order. Getters return NULL (or 0) when i is out of range;
 * strings are borrowed from d. */
size_t tfs_decoded_count(const tfs_decoded *d);
const char *tfs_decoded_name(const tfs_decoded *d, size_t i);
const char *tfs_decoded_value(const tfs_decoded *d, size_t i);
tfs_decoded_type tfs_decoded_type_of(const tfs_decoded *d, size_t i);

/* The value of the first field with this name, or NULL. */
const char *tfs_decoded_get(const tfs_decoded *d, const char *name);

/* For a TFS_DECODED_INTEGER field: stores its value and returns true. */
bool tfs_decoded_int(const tfs_decoded *d, size_t i, int64_t *value);

#ifdef __cplusplus
}
#endif
#endif
