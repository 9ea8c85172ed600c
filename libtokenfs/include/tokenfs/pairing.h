/*
 * Which objects of a token belong to one key: the private key, the public
 * key and the certificate that share a CKA_ID and whose public key agrees.
 * dump lists keys this way and export bundles a private key with the
 * certificate found here, so both see the same pairs.
 *
 * The caller feeds every object's plaintext (decrypted where it can be) and
 * asks for the keys at the token's end. Parts agree when RSA moduli match
 * (private and public objects both store the modulus, certificates carry
 * it), EC points match (public keys, certificates), or, for an EC private
 * key that stores no point, the curves match. Each key is anchored at a
 * private key, else a public key, else a certificate.
 */
#ifndef TOKENFS_PAIRING_H
#define TOKENFS_PAIRING_H

#include <stddef.h>
#include <stdint.h>

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
	 * ("P-256"); NULL: named "curve". Pairing itself compares the bytes. */
	const char *curve_name;
} tfs_pair_input;

/* One key as pairing found it. The uuids are the caller's (see
 * tfs_pair_input), any may be NULL. */
typedef struct tfs_key_pair {
	char id[80];              /* CKA_ID in hex */
	const char *private_uuid;
	const char *public_uuid;
	const char *cert_uuid;
	char summary[96];         /* "RSA 2048", "EC P-256" */
} tfs_key_pair;

/* A new, empty pairing; NULL when out of memory. Free with tfs_pairing_free. */
tfs_pairing *tfs_pairing_new(void);
void tfs_pairing_free(tfs_pairing *p);

/*
 * Records one object and writes its one-line summary into buf ("private
 * key RSA 2048 'label' id 01"). Objects without a CKA_ID, or of a class
 * that is not a key or certificate, are summarised but not paired; with p
 * NULL the object is only summarised. Pairing
 * is a convenience: when memory runs out the object is only summarised.
 */
void tfs_pairing_add(tfs_pairing *p, const tfs_pair_input *in, char *buf, size_t size);

/* The keys of every object added so far, sorted by CKA_ID, ties in the
 * order the objects were added. Borrowed until the next call or
 * tfs_pairing_free; NULL (and *count 0) when out of memory. */
const tfs_key_pair *tfs_pairing_keys(tfs_pairing *p, size_t *count);

#ifdef __cplusplus
}
#endif
#endif
