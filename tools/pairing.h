/*
 * What dump shows beyond attributes: a one-line summary of each object, and
 * the keys a token holds, pairing private key, public key and certificate
 * that share a CKA_ID and a public key. The walk feeds every object's
 * plaintext view in; the keys come out at the token's end.
 */
#ifndef TFS_TOOLS_PAIRING_H
#define TFS_TOOLS_PAIRING_H

#include "dump.h"

typedef struct pairing pairing;

pairing *pairing_new(void);
void pairing_free(pairing *p);

/* Writes a one-line summary of obj ("private key RSA 2048 'label' id 01")
 * into buf and records the object for pairing. uuid must outlive p. */
void pairing_add(pairing *p, const char *uuid, const tfs_object *obj, const dump_value *values,
                 char *buf, size_t size);

/* The keys found so far (borrowed until pairing_free). */
const dump_key *pairing_keys(pairing *p, size_t *count);

#endif
