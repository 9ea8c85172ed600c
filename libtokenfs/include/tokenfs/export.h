/*
 * Keys and certificates out of a token as the files every other tool reads:
 * private keys as PKCS#8 PEM (encrypted with a passphrase unless the caller
 * asks otherwise), public keys as SubjectPublicKeyInfo PEM, certificates as
 * PEM, secret keys raw, hex or as a JWK, and optionally one PKCS#12 bundle of
 * each private key with its certificate. The keys are built and encoded by
 * OpenSSL (EVP_PKEY_fromdata, OSSL_ENCODER, PKCS12_*).
 *
 * Two steps, so that everything that can fail is known before the first
 * byte is written:
 *   1. tfs_export_add_token for each token: reads and decrypts the selected
 *      objects, builds every output in memory, and records for each object
 *      what will be written or why it will not (policy, unsupported key
 *      type, a private key that does not match its public key, ...).
 *   2. tfs_export_write: refuses when any target file exists (unless
 *      `force`), then writes each file 0600 with O_EXCL semantics (a fsynced
 *      temporary file moved into place without replacing:
 *      tfs_write_file_new), then the PKCS#12 bundle and the manifest
 *      export.json.
 *
 * Policy: a private or secret key whose CKA_EXTRACTABLE is false (or
 * absent) or whose CKA_SENSITIVE is true (or absent) is one its owner told
 * the token never to release. It is exported only with
 * include_unextractable; otherwise it is recorded as skipped.
 *
 * Secrets: decrypted values and unencrypted encodings are wiped when the
 * export is freed, and nothing here prints. Item texts (labels, reasons)
 * never hold key material.
 */
#ifndef TOKENFS_EXPORT_H
#define TOKENFS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/keys.h"
#include "tokenfs/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfs_export tfs_export;

typedef enum tfs_secret_format {
	TFS_SECRET_RAW = 0, /* the key bytes as they are */
	TFS_SECRET_HEX = 1, /* lowercase hex and a newline */
	TFS_SECRET_JWK = 2  /* RFC 7517 {"kty":"oct","k":base64url} */
} tfs_secret_format;

typedef struct tfs_export_options {
	/* Passphrase for private keys and the PKCS#12 bundle (borrowed until
	 * tfs_export_free; no NUL byte). NULL: private keys are written
	 * unencrypted, and no PKCS#12 bundle can be made. */
	const uint8_t *passphrase;
	size_t passphrase_len;
	bool include_unextractable; /* also keys the token marks unextractable or sensitive */
	tfs_secret_format secret_format;
	/* The PKCS#12 bundle, or NULL for none: a name without '/' goes into
	 * the directory, a path with one is used as it is. */
	const char *pkcs12_file;
	/* Selection, each list borrowed: an object is selected when it matches
	 * any entry of any list (uuid, CKA_ID as hex, CKA_LABEL as text); with
	 * every list empty, every key and certificate is. */
	const char *const *uuids;
	size_t nuuids;
	const char *const *ids;
	size_t nids;
	const char *const *labels;
	size_t nlabels;
	/* Called as a token's objects are read, then encoded: phase "reading"
	 * or "encoding", done of total objects; may be NULL. For progress at a
	 * terminal. */
	void (*progress)(void *ctx, const tfs_token *tok, const char *phase, size_t done,
	                 size_t total);
	void *progress_ctx;
} tfs_export_options;

typedef enum tfs_export_status {
	TFS_EXPORT_READY = 0,       /* will be (after tfs_export_write: was) written */
	TFS_EXPORT_SKIPPED = 1,     /* unextractable or sensitive, by policy */
	TFS_EXPORT_UNSUPPORTED = 2, /* a key type or object class with no standard file */
	TFS_EXPORT_FAILED = 3       /* could not be read, decrypted, built or matched */
} tfs_export_status;

/* One selected object and what became of it. Strings are borrowed from the
 * export; those from the store are untrusted text (escape for terminals). */
typedef struct tfs_export_item {
	tfs_export_status status;
	const char *kind;        /* "private_key", "public_key", "certificate", "secret_key", "pkcs12" */
	const char *file;        /* name inside the directory; NULL when nothing is written */
	const char *token_label, *token_serial;
	const char *object_uuid; /* NULL for the PKCS#12 bundle */
	const char *label;       /* CKA_LABEL, "" when absent or unreadable */
	const char *id;          /* CKA_ID in hex, "" when absent */
	const char *key_type;    /* "RSA 2048", "EC secp256k1", "Ed25519", "AES 256-bit", ... */
	bool encrypted;          /* the file is protected with the passphrase */
	/* "sha256:<hex>" of the public key's SubjectPublicKeyInfo DER (private and
	 * public keys, certificates); for secret keys the key check value or a
	 * SHA-256 prefix (tfs_key_fingerprint); "" when none. */
	const char *fingerprint;
	const char *file_sha256; /* of the file's bytes; "" for secret keys and unwritten items */
	const char *reason;      /* why not READY; "" otherwise */
} tfs_export_item;

/* A new, empty export with these options (copied; the lists and the
 * passphrase stay borrowed). Free with tfs_export_free. */
int tfs_export_new(tfs_export **out, const tfs_export_options *opts, tfs_error *err);

/* Wipes every decrypted value and encoding, and frees. Accepts NULL. */
void tfs_export_free(tfs_export *ex);

/*
 * Plans the export of tok's selected objects. key unlocks private objects;
 * NULL when no PIN was given (private objects then fail: "needs a PIN").
 * Problems with single objects become items; only TFS_E_NOMEM, TFS_E_IO and
 * TFS_E_LOCKED (reading the store) fail the call.
 */
int tfs_export_add_token(tfs_export *ex, const tfs_token *tok, const tfs_token_key *key,
                         tfs_error *err);

/*
 * Writes every READY item into dir (created 0700 when missing), then the
 * PKCS#12 bundle and export.json. Without force, fails with TFS_E_INVALID
 * before writing anything when a target already exists. A write error
 * stops at that file (TFS_E_IO); files already written stay, complete.
 */
int tfs_export_write(tfs_export *ex, const char *dir, bool force, tfs_error *err);

/*
 * The manifest (docs/json.md, "export"): format_version, directory, counts
 * of written, skipped, unsupported and failed items, and every item with
 * its status, file, object, key type, fingerprints and reason. What
 * tfs_export_write saves as export.json, also for reports. *out is
 * malloc'd, ends in a newline; the caller frees it.
 */
int tfs_export_manifest(const tfs_export *ex, const char *dir, char **out, tfs_error *err);

size_t tfs_export_count(const tfs_export *ex);
/* Item i, in the order objects were read; NULL when out of range. */
const tfs_export_item *tfs_export_item_at(const tfs_export *ex, size_t i);

/* Selection entries (options' uuids, ids, labels) that matched no object,
 * in that order; a typo must not pass silently. Borrowed. */
size_t tfs_export_unmatched_count(const tfs_export *ex);
const char *tfs_export_unmatched(const tfs_export *ex, size_t i);

#ifdef __cplusplus
}
#endif
#endif
