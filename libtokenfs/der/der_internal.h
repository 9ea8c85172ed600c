/*
 * Internals of the DER decoders (tokenfs/decode.h).
 *
 * Every DER input goes through two readers, in this order:
 *  1. tfs_der_scan (tlv.c): a bounded walk over the TLV structure with the
 *     project's cursor. It owns everything a byte offset can be given for:
 *     lengths past the end, BER-only encodings, nesting depth, element
 *     count, trailing bytes. libtasn1 reports none of these with an offset.
 *  2. libtasn1 against the project's ASN.1 module (tokenfs.asn), for the
 *     structure: which element must come where, with which tag.
 * The C code then reads the decoded tree and checks the values (time
 * formats, point forms, minimal INTEGERs).
 */
#ifndef TFS_DER_INTERNAL_H
#define TFS_DER_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libtasn1's deprecated compatibility macros (ASN1_TYPE, ...) clash with
 * OpenSSL's type names; the decoders use both libraries. */
#define ASN1_DISABLE_DEPRECATED 1
#include <libtasn1.h>

#include "tokenfs/decode.h"
#include "tokenfs/error.h"

/* Elements in one value: bounds libtasn1's tree (and the linear look-ups
 * of SEQUENCE OF members by index) on hostile input. */
#define TFS_DER_MAX_ELEMENTS 20000u
/* RDNs in one Name, attributes in one RDN, extensions in a certificate. */
#define TFS_DER_MAX_RDNS 256u
#define TFS_DER_MAX_AVAS 64u
#define TFS_DER_MAX_EXTENSIONS 256u

/* ---- decoded.c: building a tfs_decoded ---- */

int tfs_decoded_new(tfs_decoded **out, const char *kind, tfs_error *err);
/* Appends a field; name must be a static string, value is copied. */
int tfs_decoded_add(tfs_decoded *d, const char *name, tfs_decoded_type type,
                    const char *value, tfs_error *err);
int tfs_decoded_addf(tfs_decoded *d, const char *name, tfs_decoded_type type,
                     tfs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int tfs_decoded_add_int(tfs_decoded *d, const char *name, int64_t v, tfs_error *err);
int tfs_decoded_add_bool(tfs_decoded *d, const char *name, bool v, tfs_error *err);
/* Adds a decimal string as INTEGER when it fits in int64_t, else as STRING. */
int tfs_decoded_add_decimal(tfs_decoded *d, const char *name, const char *dec,
                            tfs_error *err);
int tfs_decoded_set_summary(tfs_decoded *d, tfs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- strbuf.c: a growing string ---- */

typedef struct tfs_strbuf {
	char *s;
	size_t len, cap;
	bool failed; /* an allocation failed; s is unusable */
} tfs_strbuf;

void tfs_sb_putc(tfs_strbuf *sb, char c);
void tfs_sb_puts(tfs_strbuf *sb, const char *s);
void tfs_sb_printf(tfs_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n bytes as hex, upper- or lower-case, with an optional separator. */
void tfs_sb_hex(tfs_strbuf *sb, const uint8_t *p, size_t n, bool upper, const char *sep);
/* Hands the string out (caller frees) or NULL after a failed allocation. */
char *tfs_sb_take(tfs_strbuf *sb);
void tfs_sb_free(tfs_strbuf *sb);

/* ---- tlv.c: the structural scan ---- */

typedef struct tfs_der_tlv {
	uint8_t ident;    /* the first identifier octet */
	uint32_t tag;     /* tag number (high-tag-number form decoded) */
	bool constructed;
	size_t off;       /* offset of the identifier octet */
	size_t hdr_len;   /* identifier and length octets */
	size_t len;       /* content length */
} tfs_der_tlv;

#define TFS_DER_CLASS(ident) ((uint8_t)((ident) >> 6))

/*
 * Reads one TLV header at der[off] whose content must fit in der[..end).
 * `base` is added to offsets in messages, `what` prefixes them.
 */
int tfs_der_header(tfs_der_tlv *t, const uint8_t *der, size_t off, size_t end,
                   uint64_t base, const char *what, tfs_error *err);

/* Checks that der[0..len) is exactly one well-formed DER element. */
int tfs_der_scan(const uint8_t *der, size_t len, uint64_t base, const char *what,
                 tfs_error *err);

/* "SEQUENCE", "OCTET STRING", "[0]", ... for messages. */
const char *tfs_der_ident_name(uint8_t ident, char buf[32]);

/* ---- asn1.c: libtasn1 ---- */

/* What every entry point checks first: TFS_E_NOTFOUND for an empty value,
 * TFS_E_INVALID for NULL, TFS_E_LIMIT past TFS_DECODE_MAX_SIZE. */
int tfs_der_check_input(const uint8_t *p, size_t len, const char *what, tfs_error *err);

/*
 * Scans der, checks its identifier octet when `ident` is not 0, and decodes
 * it as `type` of the module ("Certificate"). On success *node is the tree;
 * free it with tfs_der_free.
 */
int tfs_der_decode(asn1_node *node, const char *type, uint8_t ident, const uint8_t *der,
                   size_t len, uint64_t base, const char *what, tfs_error *err);

/* Frees a decoded tree, wiping the values libtasn1 copied into it; sets
 * *node to NULL. Accepts NULL and a NULL tree. */
void tfs_der_free(asn1_node *node);

/*
 * Reads element `name` (a libtasn1 path) into a new buffer (NUL-terminated,
 * one spare byte) and its length. Returns the libtasn1 code: ASN1_SUCCESS,
 * ASN1_ELEMENT_NOT_FOUND / ASN1_VALUE_NOT_FOUND for an absent OPTIONAL
 * element, ASN1_MEM_ALLOC_ERROR.
 */
int tfs_der_read(asn1_node node, const char *name, uint8_t **buf, size_t *len);
/* Frees a tfs_der_read buffer of len bytes, wiped first: the values decoded
 * may come from decrypted attributes. NULL is fine. */
void tfs_der_buf_free(void *buf, size_t len);
/* The same for a BIT STRING: *len in bytes, *unused the unused bits. */
int tfs_der_read_bits(asn1_node node, const char *name, uint8_t **buf, size_t *len,
                      unsigned *unused);
/* Number of members of a SEQUENCE OF / SET OF; 0 when absent. */
size_t tfs_der_count(asn1_node node, const char *name);
/* Offset of element `name` in der (for messages); TFS_NO_OFFSET if unknown. */
uint64_t tfs_der_offset(asn1_node node, const uint8_t *der, size_t len, const char *name,
                        uint64_t base);
/* Like tfs_der_offset, also giving the element's DER extent. */
bool tfs_der_extent(asn1_node node, const uint8_t *der, size_t len, const char *name,
                    size_t *start, size_t *size);

/* ---- num.c: integers ---- */

/*
 * A DER INTEGER's content octets (two's complement, checked minimal by the
 * caller or here): *hex as OpenSSL prints an ASN1_INTEGER (uppercase
 * magnitude, "-" sign, "00" for zero) and *dec in decimal. Both malloc'd.
 */
int tfs_der_integer_text(const uint8_t *p, size_t n, char **hex, char **dec,
                         uint64_t off, const char *what, tfs_error *err);
/* TFS_E_FORMAT unless p is a minimal, non-empty INTEGER content. */
int tfs_der_integer_check(const uint8_t *p, size_t n, uint64_t off, const char *what,
                          tfs_error *err);
/* Bits of an unsigned big-endian number, leading zero bits not counted. */
size_t tfs_der_bit_length(const uint8_t *p, size_t n);

/* ---- oid.c: names ---- */

/* OpenSSL's name for an OID as `openssl x509 -text` prints it (long name,
 * else short name, else the dotted OID). */
void tfs_der_oid_long_name(const char *dotted, char *buf, size_t size);
/* OpenSSL's short name ("CN", "prime256v1"), or NULL when OpenSSL has none. */
const char *tfs_der_oid_short_name(const char *dotted);

typedef struct tfs_curve_info {
	const char *encoding;      /* "namedCurve", "ecParameters", "implicitlyCA", "curveName" */
	const char *name;          /* "P-256", "Ed25519", "explicit parameters", "unknown", ... */
	const char *openssl_name;  /* NULL when OpenSSL has none */
	char oid[128];             /* "" when not a named curve */
	char curve_name[64];       /* the stored PrintableString, curveName only */
	const char *field_type;    /* explicit parameters only */
	unsigned field_bits;       /* 0 when unknown */
	unsigned key_bits;         /* OpenSSL's EVP_PKEY_get_bits for a key on it; 0 unknown */
} tfs_curve_info;

/* Decodes ECParameters / PKCS#11 CKA_EC_PARAMS (ec.c). */
int tfs_der_curve_info(tfs_curve_info *ci, const uint8_t *der, size_t len, uint64_t base,
                       const char *what, tfs_error *err);

/* The Edwards/Montgomery algorithms, keyed by OID, for curves and SPKIs. */
typedef struct tfs_ecx_info {
	const char *oid;
	const char *name;        /* "Ed25519" */
	const char *p11_name;    /* PKCS#11 3.0 curve name: "edwards25519" */
	unsigned field_bits;     /* 255 or 448 */
	unsigned key_bits;       /* OpenSSL's EVP_PKEY_get_bits */
	unsigned key_len;        /* bytes of a public key */
} tfs_ecx_info;

const tfs_ecx_info *tfs_der_ecx_by_oid(const char *dotted);
const tfs_ecx_info *tfs_der_ecx_by_p11_name(const char *name);

/* ---- name.c ---- */

/* The RFC 4514 string of the Name at `path` of node (see decode.h). */
int tfs_der_name_string(char **out, size_t *rdn_count, asn1_node node, const char *path,
                        const uint8_t *der, size_t len, uint64_t base, const char *what,
                        tfs_error *err);

/* ---- spki.c ---- */

/* Field names for the public key's fields, as a certificate or a bare SPKI
 * names them. */
typedef struct tfs_spki_names {
	const char *type, *algorithm, *algorithm_oid, *bits, *exponent, *curve,
	           *curve_openssl, *curve_oid, *error;
} tfs_spki_names;

extern const tfs_spki_names tfs_spki_names_bare, tfs_spki_names_cert;

/*
 * Adds the fields of the SubjectPublicKeyInfo at `path` of node. When
 * `lenient`, a key that cannot be read becomes a names->error field instead
 * of an error. Writes a short summary ("RSA 2048 bits") to summary.
 */
int tfs_der_spki_fields(tfs_decoded *d, const tfs_spki_names *names, asn1_node node,
                        const char *path, const uint8_t *der, size_t len, bool lenient,
                        char *summary, size_t summary_size, tfs_error *err);

/* ---- ec.c ---- */

/* CKA_EC_POINT, knowing the key type (CKK_EC_EDWARDS / CKK_EC_MONTGOMERY
 * name a raw key; anything else: TFS_DECODE_NO_TYPE). */
int tfs_der_ec_point(tfs_decoded **out, const uint8_t *der, size_t len, uint64_t key_type,
                     tfs_error *err);

/* ---- spki_key.c: a SubjectPublicKeyInfo's key as bytes ---- */

/* The parts of one SubjectPublicKeyInfo, borrowed from the DER it was
 * decoded from. */
typedef struct tfs_der_spki_key {
	char oid[128];                /* the algorithm, dotted */
	size_t alg_start, alg_len;    /* the AlgorithmIdentifier's extent */
	const uint8_t *params;        /* the parameters' DER; NULL when absent */
	size_t params_len;
	size_t bits_start, bits_len;  /* the subjectPublicKey BIT STRING's extent */
	unsigned unused_bits;         /* its first content octet */
	const uint8_t *key;           /* its octets after that one */
	size_t key_len;
} tfs_der_spki_key;

/* Finds the parts of the SubjectPublicKeyInfo at `path` of node ("" for a
 * bare one), decoded from der. TFS_OK, TFS_E_NOMEM, or TFS_E_FORMAT when a
 * part cannot be located. */
int tfs_der_spki_key_get(tfs_der_spki_key *k, asn1_node node, const char *path,
                         const uint8_t *der, size_t len);

/* The modulus and public exponent of the DER RSAPublicKey key[0..key_len)
 * (RFC 8017 A.1.1) as unsigned big-endian magnitudes borrowed from key:
 * TFS_OK only when it is exactly one DER RSAPublicKey whose INTEGERs are
 * minimal and greater than zero; TFS_E_NOMEM; else TFS_E_FORMAT. */
int tfs_der_rsa_public(const uint8_t *key, size_t key_len, const uint8_t **n, size_t *n_len,
                       const uint8_t **e, size_t *e_len);

#endif
