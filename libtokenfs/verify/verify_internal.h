/*
 * The verifier's model of one token, shared by its check modules
 * (structure.c, exposure.c, crypto_checks.c, semantics.c, compat.c,
 * material.c, and
 * seal/). verify.c streams the objects: it loads one, decrypts what the PIN
 * allows, hands it to each module's per-object check, and releases it before
 * the next, so memory does not grow with the objects' sizes. What the
 * cross-object checks need (layouts of odd values, public keys and IDs for
 * pairing) is kept in small records and checked at the end. Modules only add
 * findings.
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

/* A decrypted value whose layout is neither the PIN blob's nor (maybe)
 * the token's majority, kept for the check at the end (crypto_checks.c). */
typedef struct tfs_vodd {
	size_t obj;
	uint64_t offset, type;
	tfs_layout layout;
} tfs_vodd;

typedef struct tfs_vtoken {
	const tfs_store *store;
	const tfs_token *tok;
	const tfs_token_key *key; /* NULL without a PIN */
	tfs_vobject *objs;        /* only after tfs_vtoken_load (tests) */
	size_t nobjs;
	tfs_findings *findings;   /* where findings go; verify.c switches it per module */
	tfs_verify_summary *summary;
	/* Kept across objects while streaming. */
	bool mechs;               /* compat: some object has a mechanism set */
	tfs_vodd *odd;            /* crypto: values in a layout other than the blob's */
	size_t nodd, odd_cap;
	tfs_loader *loader;       /* when set, objects come from it, in index order */
} tfs_vtoken;

/*
 * Loads object i of vt's token into *o: parsed (a failure becomes a finding
 * in vt->findings and o->obj stays NULL), every encrypted value decrypted
 * with vt->key when set. vt->tok, key, findings and summary must be set.
 * Returns TFS_OK, or TFS_E_NOMEM with err naming the object's file.
 * tfs_vobject_release wipes and frees what *o holds.
 */
int tfs_vobject_load(tfs_vobject *o, tfs_vtoken *vt, size_t i, tfs_error *err);
void tfs_vobject_release(tfs_vobject *o);

/*
 * Loads every object of tok into vt->objs at once (for tests that change
 * values in place before running a check). tfs_vtoken_free releases and
 * wipes; it also frees what streaming kept.
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

/* The check modules, in the order verify.c runs them: a token part, a part
 * per object (o->obj NULL: it did not parse), and an end part where a check
 * needs every object. Each returns TFS_OK or a fatal error (TFS_E_NOMEM);
 * everything else is a finding. The semantic checks (key pairs and
 * certificates) are in semantics_internal.h. */
int tfs_check_structure_token(tfs_vtoken *vt);
int tfs_check_structure_object(tfs_vtoken *vt, const tfs_vobject *o);
int tfs_check_exposure_object(tfs_vtoken *vt, const tfs_vobject *o);
int tfs_check_crypto_object(tfs_vtoken *vt, const tfs_vobject *o); /* needs vt->key */
int tfs_check_crypto_end(tfs_vtoken *vt);
int tfs_check_compat_object(tfs_vtoken *vt, const tfs_vobject *o);
int tfs_check_compat_end(tfs_vtoken *vt);
/* tfs_object_anomalies into a list (anomalies.c). TFS_OK or TFS_E_NOMEM. */
int tfs_check_anomalies(tfs_findings *list, const char *path, const char *uuid,
                        const tfs_object *obj);
/* Empty or undecodable key material, creation leftovers: per object only. */
int tfs_check_material_object(tfs_vtoken *vt, const tfs_vobject *o);
/* The attributes that carry the key of a key object (material.c): up to 4
 * types into out; 0 for other classes and key types SoftHSM does not keep. */
size_t tfs_key_material_attrs(const tfs_vobject *o, uint64_t out[4]);
/* A key whose length its algorithm does not allow (keylen.c); called by
 * tfs_check_material_object. */
int tfs_check_key_length(tfs_vtoken *vt, const tfs_vobject *o);

/* Sealed manifests (libtokenfs/seal/). Both need vt->key. */
int tfs_seal_write(tfs_vtoken *vt, const char *path, tfs_error *err);
int tfs_seal_check(tfs_vtoken *vt, const char *path, tfs_error *err);
/* The text tfs_seal_write writes, MAC'd and read back, without writing it
 * (backups put it into an archive). path: where it will live, or NULL.
 * *out is malloc'd. */
int tfs_seal_text(char **out, size_t *len, size_t *nfiles, size_t *nobjs, tfs_vtoken *vt,
                  const char *path, tfs_error *err);

#endif
