/*
 * verify-integrity: every check libtokenfs knows, run over one token, as
 * findings (docs/findings.md). Structure and exposure checks need no PIN;
 * cryptographic and semantic checks of private values need one; sealed
 * manifests need one to write and to check.
 */
#ifndef TOKENFS_VERIFY_H
#define TOKENFS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/finding.h"
#include "tokenfs/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tfs_seal_mode {
	TFS_SEAL_NONE = 0,
	TFS_SEAL_WRITE, /* write a manifest of the token as it is now */
	TFS_SEAL_CHECK  /* compare the token with its manifest */
} tfs_seal_mode;

typedef struct tfs_verify_options {
	const uint8_t *user_pin; /* NULL: no user PIN given */
	size_t user_pin_len;
	const uint8_t *so_pin;   /* NULL: no SO PIN given */
	size_t so_pin_len;
	tfs_seal_mode seal;
	const char *seal_path;   /* NULL: <token dir>/tokenfs.seal */
} tfs_verify_options;

/* Groups of checks that need the token key: a run without a PIN (or of a
 * token whose token.object cannot be read) skips them. Bits of
 * tfs_verify_summary.not_checked; tfs_verify_skip_code names each. */
typedef enum tfs_verify_skip {
	TFS_SKIP_PIN_BLOBS = 1u << 0,        /* PIN blobs: damage, same token key */
	TFS_SKIP_ENCRYPTED_VALUES = 1u << 1, /* decryption and layout of encrypted values */
	TFS_SKIP_PRIVATE_VALUES = 1u << 2    /* checks of values stored encrypted: key check
	                                      * values, key lengths, RSA and EC consistency,
	                                      * pairs and certificates of private objects */
} tfs_verify_skip;
#define TFS_SKIP_ALL (TFS_SKIP_PIN_BLOBS | TFS_SKIP_ENCRYPTED_VALUES | TFS_SKIP_PRIVATE_VALUES)

/* Why checks were skipped. */
typedef enum tfs_verify_skip_reason {
	TFS_SKIP_REASON_NONE = 0,
	TFS_SKIP_REASON_NO_PIN,     /* no --user-pin or --so-pin given */
	TFS_SKIP_REASON_NO_METADATA, /* token.object is missing or unreadable: no PIN blob */
	TFS_SKIP_REASON_WRONG_PIN,   /* the PIN given opens no blob (finding pin.wrong) */
	TFS_SKIP_REASON_LONE_OBJECT  /* one .object file with no readable token.object beside it */
} tfs_verify_skip_reason;

/* The stable code of one skip bit ("pin-blobs", "encrypted-values",
 * "private-values"; docs/json.md), or NULL for anything else. */
const char *tfs_verify_skip_code(unsigned bit);
/* "no-pin", "no-token-metadata", "wrong-pin", "lone-object-file", or NULL
 * for TFS_SKIP_REASON_NONE. */
const char *tfs_verify_skip_reason_code(tfs_verify_skip_reason reason);

/* What was checked in one token. Strings are static. */
typedef struct tfs_verify_summary {
	size_t objects;          /* object files examined */
	size_t values_encrypted; /* encrypted values seen */
	size_t values_decrypted; /* ... of which decrypted and verified */
	size_t values_cbc;       /* decrypted values by layout */
	size_t values_gcm;
	bool unlocked;           /* a PIN unlocked the token key */
	bool sealed;             /* a seal was written or checked */
	/* The oldest SoftHSM release that loads the token as it is: "2.0.0", or
	 * "2.4.0" when an object has a mechanism set (kind 5). */
	const char *min_softhsm;
	/* AES-GCM values or PIN blob (pull request #627's layout): only a build
	 * with that change loads the token. 1 yes, 0 no (every value opened is
	 * CBC), -1 unknown (without the token key CBC and GCM look alike). */
	int needs_gcm;
	unsigned not_checked;    /* tfs_verify_skip bits: checks that did not run */
	tfs_verify_skip_reason not_checked_reason;
} tfs_verify_summary;

typedef struct tfs_report tfs_report;

int tfs_report_new(tfs_report **out, tfs_error *err);
void tfs_report_free(tfs_report *rep);

/*
 * Runs every check on tok and appends its findings to rep. Problems found in
 * the store are findings, not errors, and so is a wrong PIN (pin.wrong: the
 * checks and the seal that need the token key do not run, and the summary
 * says so): the return value is an error only for what stops the checks
 * (out of memory, a seal requested without a PIN or of a single object
 * file: TFS_E_INVALID, a seal that cannot be written or read: TFS_E_IO, a
 * PIN for a blob the token does not have: TFS_E_NOTFOUND). The store's own
 * findings about tok (stray files, lock files) are included.
 */
int tfs_verify_token(tfs_report *rep, tfs_verify_summary *summary, const tfs_store *store,
                     const tfs_token *tok, const tfs_verify_options *opts, tfs_error *err);

size_t tfs_report_finding_count(const tfs_report *rep);
const tfs_finding *tfs_report_finding(const tfs_report *rep, size_t i);

/* Receives one finding, borrowed for the call. */
typedef void (*tfs_finding_fn)(void *ctx, const tfs_finding *f);

/*
 * The per-object checks that need nothing but the parsed object: anomalies
 * SoftHSM loads but never writes (object.generation-only,
 * object.duplicate-attribute; docs/findings.md). verify-integrity runs them
 * among its structure checks and dump runs them on every object it shows,
 * so both report the same findings. path and uuid (may be NULL) locate the
 * findings. Calls fn for each (fn may be NULL: only the count); returns
 * how many, or -1 (TFS_E_NOMEM) when out of memory. Nothing is kept: each
 * finding is borrowed for its call. Thread-safe on distinct objects.
 */
int tfs_object_anomalies(const tfs_object *obj, const char *path, const char *uuid,
                         tfs_finding_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
