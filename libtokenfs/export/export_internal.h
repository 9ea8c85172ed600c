/*
 * Internals of export (tokenfs/export.h): one object's plaintext view, the
 * keys built from it (pkey.c), their encodings (encode.c) and the
 * no-clobber file writes (export.c uses tfs_write_file_new).
 */
#ifndef TFS_EXPORT_INTERNAL_H
#define TFS_EXPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "tokenfs/export.h"

/* One object of a token with its byte strings in plaintext where they
 * could be decrypted. */
typedef struct tfs_xobj {
	const char *uuid;      /* borrowed from the store */
	tfs_object *obj;
	uint8_t **plain;       /* per attribute: decrypted copy, or NULL */
	size_t *plain_len;
	bool *known;           /* per attribute: plaintext is known */
	uint64_t cls, key_type, cert_type; /* UINT64_MAX when absent */
} tfs_xobj;

/* The plaintext of the attribute of this type SoftHSM would use; NULL when
 * absent or not decrypted (*locked then says which). */
const uint8_t *tfs_xobj_bytes(const tfs_xobj *o, uint64_t type, size_t *len, bool *locked);
/* A bool attribute; `absent` when it is not there. */
bool tfs_xobj_bool(const tfs_xobj *o, uint64_t type, bool absent);

/* ---- pkey.c: keys from attributes, with OpenSSL's EVP_PKEY_fromdata ---- */

/*
 * The private key of a CKO_PRIVATE_KEY object, with its public half
 * computed where the object stores none (EC d*G, DSA g^x, EdDSA). *desc
 * gets "RSA 2048", "EC secp256k1", "Ed25519", ... Returns TFS_E_NOTFOUND
 * for a key type without a standard encoding (why names it), TFS_E_FORMAT
 * for values that make no key (why says which), TFS_E_INVALID when a
 * needed value is encrypted and no key unlocked it.
 */
int tfs_xkey_private(EVP_PKEY **out, const tfs_xobj *o, char *desc, size_t desc_size,
                     char *why, size_t why_size);
/* The same for a CKO_PUBLIC_KEY object. */
int tfs_xkey_public(EVP_PKEY **out, const tfs_xobj *o, char *desc, size_t desc_size,
                    char *why, size_t why_size);

/* ---- encode.c: encodings, all through OpenSSL ---- */

/* A growing byte buffer; secret ones are wiped when freed. */
typedef struct tfs_xbuf {
	uint8_t *p;
	size_t len;
	bool secret;
} tfs_xbuf;
void tfs_xbuf_free(tfs_xbuf *b);

/* PKCS#8 PEM: EncryptedPrivateKeyInfo with AES-256-CBC (PBES2, PBKDF2
 * HMAC-SHA-256) when pass is not NULL, else PrivateKeyInfo. */
int tfs_xenc_private_pem(tfs_xbuf *out, EVP_PKEY *pkey, const uint8_t *pass, size_t pass_len,
                         tfs_error *err);
/* SubjectPublicKeyInfo, as PEM or DER. */
int tfs_xenc_public(tfs_xbuf *out, EVP_PKEY *pkey, bool pem, tfs_error *err);
/* A certificate's DER as PEM. */
int tfs_xenc_cert_pem(tfs_xbuf *out, const uint8_t *der, size_t len, tfs_error *err);
/* A secret key's bytes in the chosen format (kid: the label, may be ""). */
int tfs_xenc_secret(tfs_xbuf *out, tfs_secret_format fmt, const uint8_t *key, size_t len,
                    const char *kid, tfs_error *err);
/* "sha256:<hex>" of bytes. */
void tfs_xenc_sha256(char out[72], const uint8_t *p, size_t len);

/* PKCS#12 bundles under construction. */
typedef struct tfs_xp12 tfs_xp12;
int tfs_xp12_new(tfs_xp12 **out, tfs_error *err);
void tfs_xp12_free(tfs_xp12 *p);
/* Adds a key (and its certificate, or NULL) with a friendly name. */
int tfs_xp12_add(tfs_xp12 *p, EVP_PKEY *pkey, X509 *cert, const char *name,
                 const char *pass, tfs_error *err);
size_t tfs_xp12_count(const tfs_xp12 *p);
/* The DER of the whole bundle, MAC'd with SHA-256. */
int tfs_xp12_finish(tfs_xp12 *p, tfs_xbuf *out, const char *pass, tfs_error *err);

/* ---- export.c and write.c: the export itself ---- */

/* One item with the storage its public view points into. Allocated one
 * by one, so the view's pointers stay valid while the list grows. */
typedef struct tfs_xrec {
	tfs_export_item pub;
	char *file, *token_label, *token_serial, *object_uuid, *label;
	char id[80], key_type[64], fingerprint[72], file_sha256[72], reason[320];
	tfs_xbuf data;
} tfs_xrec;

struct tfs_export {
	tfs_export_options opts;
	tfs_xrec **recs;
	size_t n, cap;
	bool *used_sel; /* per selector (uuids, ids, labels in turn): matched */
	size_t nsel;
	tfs_xp12 *p12;
	const char *p12_pass;
	char *p12_pass_buf; /* NUL-terminated copy of the passphrase for PKCS12_* */
	char **token_dirs;  /* of every token added: no output may go inside one */
	size_t ntoken_dirs;
};

/* TFS_OK when path can name the PKCS#12 bundle: not empty, a file name
 * (not "." or "..", no trailing '/'), and with a directory part, one that
 * exists. Checked before anything is read or written. */
int tfs_xcheck_pkcs12_path(const char *path, tfs_error *err);

/* A new READY item of `kind` for object o of tok (either may be NULL),
 * appended to ex; NULL when out of memory. */
tfs_xrec *tfs_xrec_add(tfs_export *ex, const tfs_token *tok, const tfs_xobj *o, const char *kind,
                       tfs_error *err);

#endif
