/*
 * The verifier's model of one token, shared by its check modules
 * (structure.c, exposure.c, crypto_checks.c, semantics.c, compat.c, and
 * seal/). verify.c loads every object once, decrypts what the PIN allows,
 * and hands this model to each module in turn; modules only add findings.
 */
#ifndef TFS_VERIFY_INTERNAL_H
#define TFS_VERIFY_INTERNAL_H

#include "findings/findings_internal.h"
#include "tokenfs/keys.h"
#include "tokenfs/verify.h"

/* A top-level byte string as the checks see it. */
typedef struct tfs_vvalue {
	const uint8_t *p;  /* plaintext (stored, or decrypted); NULL when unknown */
	size_t len;
	bool encrypted;    /* stored as ciphertext */
	bool owned;        /* p is decrypted: wiped and freed with the token */
	bool failed;       /* encrypted, a key was there, and it did not decrypt */
	tfs_layout layout; /* of a decrypted value */
} tfs_vvalue;

typedef struct tfs_vobject {
	size_t index;        /* in its token */
	const char *uuid;
	const char *path;
	tfs_object *obj;     /* NULL when the file could not be parsed */
	tfs_vvalue *values;  /* one per top-level attribute of obj */
	uint64_t cls;        /* CKA_CLASS, or UINT64_MAX when absent */
	uint64_t key_type;   /* CKA_KEY_TYPE, or UINT64_MAX */
	uint64_t cert_type;  /* CKA_CERTIFICATE_TYPE, or UINT64_MAX */
} tfs_vobject;

typedef struct tfs_vtoken {
	const tfs_store *store;
	const tfs_token *tok;
	const tfs_token_key *key; /* NULL without a PIN */
	tfs_vobject *objs;
	size_t nobjs;
	tfs_findings *findings;
	tfs_verify_summary *summary;
} tfs_vtoken;

/*
 * Loads tok into vt: every object parsed (failures become findings), every
 * encrypted value decrypted with key when key is not NULL. vt->findings and
 * vt->summary must be set by the caller. tfs_vtoken_free releases and wipes.
 */
int tfs_vtoken_load(tfs_vtoken *vt, const tfs_store *store, const tfs_token *tok,
                    const tfs_token_key *key, tfs_error *err);
void tfs_vtoken_free(tfs_vtoken *vt);

/* The plaintext of the attribute SoftHSM would use (the last of its type);
 * NULL when absent, not a byte string, or encrypted and not decrypted. */
const uint8_t *tfs_vobject_bytes(const tfs_vobject *o, uint64_t type, size_t *len);
bool tfs_vobject_ulong(const tfs_vobject *o, uint64_t type, uint64_t *value);
bool tfs_vobject_bool(const tfs_vobject *o, uint64_t type, bool *value);
/* The attribute itself (for offsets), or NULL. */
const tfs_attr *tfs_vobject_attr(const tfs_vobject *o, uint64_t type);

/*
 * Adds a finding about object o (NULL: the token), at attribute `type`
 * (TFS_VNO_ATTR: none; the offset is then the file's start or none).
 * Returns TFS_OK or TFS_E_NOMEM.
 */
#define TFS_VNO_ATTR UINT64_MAX
int tfs_vfinding(tfs_vtoken *vt, const char *code, tfs_severity sev, const tfs_vobject *o,
                 uint64_t type, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* "CKA_LABEL", or "0x..." in buf. */
const char *tfs_vattr_name(uint64_t type, char buf[24]);

/* The check modules, in the order verify.c runs them. Each returns TFS_OK
 * or a fatal error (TFS_E_NOMEM); everything else is a finding. */
int tfs_check_structure(tfs_vtoken *vt);
int tfs_check_exposure(tfs_vtoken *vt);
int tfs_check_crypto(tfs_vtoken *vt);    /* fills values; needs vt->key */
int tfs_check_semantics(tfs_vtoken *vt); /* pairs keys and certificates */
int tfs_check_compat(tfs_vtoken *vt);
int tfs_check_material(tfs_vtoken *vt);  /* empty or undecodable key material */

/* Sealed manifests (libtokenfs/seal/). Both need vt->key. */
int tfs_seal_write(tfs_vtoken *vt, const char *path, tfs_error *err);
int tfs_seal_check(tfs_vtoken *vt, const char *path, tfs_error *err);
/* The text tfs_seal_write writes, MAC'd and read back, without writing it
 * (backups put it into an archive). path: where it will live, or NULL.
 * *out is malloc'd. */
int tfs_seal_text(char **out, size_t *len, size_t *nfiles, size_t *nobjs, tfs_vtoken *vt,
                  const char *path, tfs_error *err);

#endif
