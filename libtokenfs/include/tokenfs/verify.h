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

/* What was checked in one token. Strings are static. */
typedef struct tfs_verify_summary {
	size_t objects;          /* object files examined */
	size_t values_encrypted; /* encrypted values seen */
	size_t values_decrypted; /* ... of which decrypted and verified */
	size_t values_cbc;       /* decrypted values by layout */
	size_t values_gcm;
	bool unlocked;           /* a PIN unlocked the token key */
	bool sealed;             /* a seal was written or checked */
	const char *min_softhsm; /* oldest SoftHSM that loads the token as it is */
	const char *skipped;     /* checks that needed a PIN and did not run, or NULL */
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

#ifdef __cplusplus
}
#endif
#endif
