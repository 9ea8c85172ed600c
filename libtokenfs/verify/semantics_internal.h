/*
 * The semantic checks (semantics*.c): what is shared between the driver in
 * semantics.c and its RSA, EC and certificate parts. Everything works on
 * plaintext the model knows (tfs_vobject_bytes); an unknown value is never a
 * mismatch, it only means a check does not run.
 */
#ifndef TFS_SEMANTICS_INTERNAL_H
#define TFS_SEMANTICS_INTERNAL_H

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/x509.h>

#include "verify/verify_internal.h"

/* What is known about the public key an object holds or implies. */
typedef enum tfs_sem_state {
	TFS_SEM_UNKNOWN = 0, /* absent, encrypted without a key, or of a kind not compared */
	TFS_SEM_KNOWN,       /* n and e, or group and point, are set */
	TFS_SEM_INVALID      /* the bytes are known and describe no valid key: `why` says how */
} tfs_sem_state;

/*
 * A public key as the checks compare it: from a key object's attributes
 * (for an EC private key, d·G), from a certificate, or from a
 * SubjectPublicKeyInfo. Released with tfs_sem_pub_clear.
 */
typedef struct tfs_sem_pub {
	tfs_sem_state state;
	uint64_t key_type;     /* CKK_RSA or CKK_EC */
	BIGNUM *n, *e;         /* RSA */
	EC_GROUP *group;       /* EC */
	EC_POINT *point;
	const uint8_t *params; /* EC: the object's CKA_EC_PARAMS (borrowed, or
	                        * params_copy once kept past its object), NULL for SPKIs */
	size_t params_len;
	uint8_t *params_copy;  /* owned; freed by tfs_sem_pub_clear */
	char why[128];         /* TFS_SEM_INVALID: the defect */
} tfs_sem_pub;

/* How much was checked; the test uses it to see that checks really ran. */
typedef struct tfs_sem_stats {
	size_t check_values; /* CKA_CHECK_VALUEs compared */
	size_t value_lens;   /* CKA_VALUE_LENs compared */
	size_t rsa_private;  /* RSA private keys whose components were related */
	size_t pairs;        /* private/public pairs found to match */
	size_t certs;        /* certificates parsed */
	size_t certs_without_x509; /* of those, read without d2i_X509 (semantics_cert_der.c) */
	size_t cert_keys;    /* certificates found to match a key of their ID */
	size_t spkis;        /* CKA_PUBLIC_KEY_INFOs compared */
} tfs_sem_stats;

/* One run over a token: tfs_sem_begin, tfs_sem_object per object as it is
 * loaded, tfs_sem_end (pairs; also frees). */
typedef struct tfs_sem {
	tfs_vtoken *vt;
	BN_CTX *bn; /* secure: it holds temporaries derived from private keys */
	tfs_sem_stats *stats;
	tfs_sem_stats own_stats;
	/* The token's keys and certificates by CKA_ID, in the one pairing
	 * model (tokenfs/pairing.h): a few hundred bytes each. */
	struct tfs_pairing *pairs;
} tfs_sem;

/* tfs_sem_begin .. tfs_sem_end over the objects of a loaded vt (tests),
 * also reporting what it checked. */
int tfs_sem_run(tfs_vtoken *vt, tfs_sem_stats *stats);
/* stats may be NULL. Every function returns TFS_OK or TFS_E_NOMEM. */
int tfs_sem_begin(tfs_sem *s, tfs_vtoken *vt, tfs_sem_stats *stats);
int tfs_sem_object(tfs_sem *s, const tfs_vobject *o);
int tfs_sem_end(tfs_sem *s);
/* Releases what a run keeps, without the pairing (on an error path). */
void tfs_sem_free(tfs_sem *s);

void tfs_sem_pub_clear(tfs_sem_pub *k);
/* Marks k invalid with a reason; returns TFS_OK. */
int tfs_sem_pub_invalid(tfs_sem_pub *k, uint64_t key_type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Whether a and b are the same public key: 1 yes, 0 no (why[] says how they
 * differ), -1 cannot tell (one of them unknown).
 */
int tfs_sem_pub_cmp(const tfs_sem_pub *a, const tfs_sem_pub *b, BN_CTX *bn, char *why,
                    size_t why_size);

/* Lowercase hex of p, cut with "..." to fit out. */
const char *tfs_sem_hex(char *out, size_t size, const uint8_t *p, size_t len);

/* RSA (semantics_rsa.c). */
int tfs_sem_rsa_pub(tfs_sem_pub *out, const tfs_vobject *o);
int tfs_sem_rsa_check_private(tfs_sem *s, const tfs_vobject *o);

/* EC (semantics_ec.c). */
/* The curve of DER ECParameters (namedCurve or explicit); NULL when unknown. */
EC_GROUP *tfs_sem_ec_group(const uint8_t *der, size_t len);
/* "prime256v1", or "an explicit curve". */
const char *tfs_sem_ec_curve_name(const EC_GROUP *g);
/* From CKA_EC_PARAMS and CKA_EC_POINT, or for a private key d·G. */
int tfs_sem_ec_pub(tfs_sem_pub *out, const tfs_vobject *o, BN_CTX *bn);
/* A point given as raw octets on a known group; invalid when off the curve. */
int tfs_sem_ec_pub_from_octets(tfs_sem_pub *out, EC_GROUP *group, const uint8_t *p,
                               size_t len, const char *what);

/* Certificates and SPKIs (semantics_cert.c). */
/* The key of OpenSSL's reading of an SPKI (d2i_X509, d2i_X509_PUBKEY). */
int tfs_sem_x509_pub(tfs_sem_pub *out, const X509_PUBKEY *xpk);
int tfs_sem_spki_pub(tfs_sem_pub *out, const uint8_t *der, size_t len);
/* Parses CKA_VALUE, checks CKA_SUBJECT/ISSUER/SERIAL_NUMBER/CHECK_VALUE, and
 * sets *pub to the certificate's key (unknown when it could not be read). */
int tfs_sem_check_cert(tfs_sem *s, const tfs_vobject *o, tfs_sem_pub *pub);

/* Certificates and SPKIs read without OpenSSL's X.509 parser, when it would
 * read them the same way (semantics_cert_der.c). */
typedef struct tfs_sem_cert_parts {
	const uint8_t *subject, *issuer, *serial; /* DER, borrowed from the value */
	size_t subject_len, issuer_len, serial_len;
} tfs_sem_cert_parts;
/* TFS_OK with the parts and *pub (the certificate's key, as from
 * d2i_X509); TFS_E_NOMEM; TFS_E_FORMAT when d2i_X509 must judge the value
 * (nothing set). */
int tfs_sem_cert_parts_read(tfs_sem_cert_parts *c, tfs_sem_pub *pub, const uint8_t *der,
                            size_t len);
/* The same for a bare SubjectPublicKeyInfo and d2i_X509_PUBKEY. */
int tfs_sem_spki_pub_der(tfs_sem_pub *out, const uint8_t *der, size_t len);

#endif
