/*
 * Which objects of a token belong to one key: the private key, the public
 * key and the certificate that share a CKA_ID and whose public key agrees.
 * This is the one model of key pairs: dump lists keys this way, export
 * bundles a private key with the certificate found here, and
 * verify-integrity reports key.pair-mismatch and cert.key-mismatch from
 * tfs_pairing_checks, so all of them see the same pairs.
 *
 * The caller feeds every object's plaintext (decrypted where it can be),
 * most simply through tfs_pair_input_from_object, and asks for the keys at
 * the token's end. Parts agree when their public keys are the same: RSA
 * moduli and public exponents (private and public objects both store them,
 * certificates carry them), EC points (public keys and certificates store
 * one; for an EC private key pairing derives d*G from CKA_VALUE). An EC
 * private key whose value is not known (no PIN) is listed with a key of its
 * CKA_ID and curve, but never counts as a match or a mismatch. Each key is
 * anchored at a private key, else a public key, else a certificate.
 */
#ifndef TOKENFS_PAIRING_H
#define TOKENFS_PAIRING_H

#include <stddef.h>
#include <stdint.h>

#include "tokenfs/object.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfs_pairing tfs_pairing;

/* What pairing reads of one object. Byte strings are borrowed for the call
 * only and NULL when unknown (absent, or encrypted without a key; a NULL
 * label is summarised as "(encrypted label)"); the ulongs are UINT64_MAX
 * when absent. */
typedef struct tfs_pair_input {
	const char *uuid;   /* borrowed: must outlive the pairing */
	uint64_t object_class, key_type, value_len;
	const uint8_t *id, *label, *modulus, *ec_params, *ec_point, *cert;
	size_t id_len, label_len, modulus_len, ec_params_len, ec_point_len, cert_len;
	/* The curve's name when the caller has decoded CKA_EC_PARAMS already
	 * ("P-256"); NULL: pairing names it. Pairing itself compares the bytes. */
	const char *curve_name;
	/* CKA_PUBLIC_EXPONENT of RSA keys; NULL when unknown. */
	const uint8_t *exponent;
	size_t exponent_len;
	/* An EC private key's CKA_VALUE (d): pairing derives its point d*G,
	 * which then counts over ec_point. A caller that derived d*G itself
	 * passes it as ec_point and leaves ec_value NULL. */
	const uint8_t *ec_value;
	size_t ec_value_len;
	/* Set when the caller found the object's public key invalid (a point
	 * off its curve, a certificate that does not parse): it pairs with
	 * nothing and each check against it is a mismatch that says this.
	 * Borrowed for the call. */
	const char *defect;
	/* The caller's own references, handed back in tfs_pair_check. */
	size_t index;
	uint64_t id_offset;
} tfs_pair_input;

/* One key as pairing found it. The uuids are the caller's (see
 * tfs_pair_input), any may be NULL. */
typedef struct tfs_key_pair {
	char id[80];              /* CKA_ID in hex (cut when longer) */
	const char *private_uuid;
	const char *public_uuid;
	const char *cert_uuid;
	char summary[96];         /* "RSA 2048", "EC P-256" */
} tfs_key_pair;

/* Reads one attribute's plaintext for tfs_pair_input_from_object: NULL
 * (and *len 0) when absent, not a byte string or not decrypted. */
typedef const uint8_t *(*tfs_pair_bytes_fn)(void *ctx, uint64_t type, size_t *len);

/*
 * Fills *in with what pairing reads of obj (class, key type, value length
 * from obj; byte strings through bytes(ctx, type, &len)). Every caller goes
 * through here, so a new attribute pairing needs is added once. The
 * caller may then set curve_name, defect, index and id_offset.
 */
void tfs_pair_input_from_object(tfs_pair_input *in, const char *uuid, const tfs_object *obj,
                                tfs_pair_bytes_fn bytes, void *ctx);

/* A new, empty pairing; NULL when out of memory. Free with tfs_pairing_free. */
tfs_pairing *tfs_pairing_new(void);
void tfs_pairing_free(tfs_pairing *p);

/*
 * Records one object and writes its one-line summary into buf ("private
 * key RSA 2048 'label' id 01"; buf may be NULL with size 0). Objects
 * without a CKA_ID, or of a class that is not a key or certificate, are
 * summarised but not paired; with p NULL the object is only summarised.
 * Returns 0, or -1 (TFS_E_NOMEM) when memory ran out (the object is then
 * only summarised; dump goes on, verify stops). A pairing is one caller's:
 * calls on one tfs_pairing must not overlap; distinct ones are independent.
 */
int tfs_pairing_add(tfs_pairing *p, const tfs_pair_input *in, char *buf, size_t size);

/* The keys of every object added so far, sorted by CKA_ID, ties in the
 * order the objects were added. Borrowed until the next call of
 * tfs_pairing_keys or tfs_pairing_free; NULL (and *count 0) when out of
 * memory. */
const tfs_key_pair *tfs_pairing_keys(tfs_pairing *p, size_t *count);

/* How a private key or a certificate relates to the keys of its CKA_ID. */
typedef enum tfs_pair_verdict {
	TFS_PAIR_UNKNOWN = 0, /* nothing to compare with, or not enough known */
	TFS_PAIR_MATCH,       /* the same public key as one of them */
	TFS_PAIR_MISMATCH     /* known to differ from them: `why` says how */
} tfs_pair_verdict;

/*
 * One check: a private key against the public keys of its CKA_ID, or a
 * certificate against the public and private keys of its CKA_ID. Matching
 * one is enough: a stray object that reuses an ID does not make a pair
 * wrong. On a mismatch `other` is the key it differs from (a public key
 * rather than a private one when both differ).
 */
typedef struct tfs_pair_check {
	const char *uuid;        /* the private key or certificate (the caller's) */
	uint64_t object_class;
	size_t index;            /* as given in tfs_pair_input */
	uint64_t id_offset;
	tfs_pair_verdict verdict;
	const char *other_uuid;  /* MISMATCH: the key it was compared with */
	uint64_t other_class;
	char why[160];           /* MISMATCH: "the moduli differ" */
} tfs_pair_check;

/* A check for every private key and certificate added with a CKA_ID, in
 * CKA_ID order. Borrowed until the next call of tfs_pairing_checks or
 * tfs_pairing_free; NULL (and *count 0) when out of memory. */
const tfs_pair_check *tfs_pairing_checks(tfs_pairing *p, size_t *count);

#ifdef __cplusplus
}
#endif
#endif
