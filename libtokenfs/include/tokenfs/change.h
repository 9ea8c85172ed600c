/*
 * Changing a token: migrate and rekey. Each is one write-engine transaction
 * per token (tokenfs/txn.h, docs/writes.md), and everything that can refuse
 * runs before the first write.
 *
 * Migration moves a token between SoftHSM's AES-CBC layout and the AES-GCM
 * layout of SoftHSMv2 pull request #627. Every encrypted value not yet in the target layout is
 * re-encrypted under the same token key with a fresh IV; each PIN blob whose
 * PIN is given is re-wrapped with fresh salt and IV. Values, objects and
 * blobs already in the target layout are left alone, so a migration is
 * idempotent and completes a mixed token.
 *
 * Everything that can refuse runs before the first write: the PINs, every
 * value of every object (a value that does not decrypt is reported through
 * the problem callback and nothing is written), and the blobs.
 */
#ifndef TOKENFS_CHANGE_H
#define TOKENFS_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/crypto.h"
#include "tokenfs/error.h"
#include "tokenfs/store.h"
#include "tokenfs/txn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tfs_blob_action {
	TFS_BLOB_ABSENT = 0,  /* the token has no such blob (a user PIN never set) */
	TFS_BLOB_ALREADY,     /* already in the target layout */
	TFS_BLOB_REWRAPPED,   /* re-wrapped (or, in a dry run, would be) */
	TFS_BLOB_KEPT         /* its PIN was not given: left as it is (--keep-other-blob) */
} tfs_blob_action;

/* "absent", "already", "rewrapped", "kept". */
const char *tfs_blob_action_name(tfs_blob_action a);

/* What happened to a token's seal (tokenfs.seal in its directory). */
typedef enum tfs_seal_outcome {
	TFS_SEAL_OUTCOME_NONE = 0,     /* no seal */
	TFS_SEAL_OUTCOME_REMADE,       /* it verified before and was made anew after */
	TFS_SEAL_OUTCOME_NOT_VERIFIED, /* it did not verify before: left alone */
	TFS_SEAL_OUTCOME_UNCHANGED,    /* nothing was written, so it still holds */
	TFS_SEAL_OUTCOME_FAILED        /* it verified, but could not be made anew after
	                                  the change (reported through `problem`) */
} tfs_seal_outcome;

/* "none", "remade", "not-verified", "unchanged", "failed". */
const char *tfs_seal_outcome_name(tfs_seal_outcome s);

typedef struct tfs_migrate_options {
	tfs_layout to;            /* TFS_LAYOUT_CBC or TFS_LAYOUT_GCM */
	const uint8_t *user_pin;  /* NULL: not given */
	size_t user_pin_len;
	const uint8_t *so_pin;    /* NULL: not given */
	size_t so_pin_len;
	bool keep_other_blob;     /* one PIN is enough; the other blob stays as it is */
	bool dry_run;             /* decide and report; write nothing, lock nothing for writing */
	unsigned lock_timeout_ms; /* 0: 5000 */
	/* Both callbacks may be NULL. progress: objects examined or written so
	 * far out of total, phase "checking" or "writing". problem: one value or
	 * object that does not decrypt or parse (err names file and offset). */
	void (*progress)(void *ctx, const char *phase, size_t done, size_t total);
	void (*problem)(void *ctx, const tfs_error *err);
	void *ctx;
} tfs_migrate_options;

/* What a migrate or rekey did to one token (or, in a dry run, would do). */
typedef struct tfs_change_result {
	size_t objects;            /* object files of the token */
	size_t objects_rewritten;  /* ... rewritten (would be, in a dry run) */
	size_t values_reencrypted; /* encrypted values moved to the target layout */
	size_t values_already;     /* encrypted values already in it */
	size_t problems;           /* values or objects reported through `problem` */
	tfs_blob_action blob[2];   /* indexed by tfs_pin_role */
	/* What changes (in a dry run: would change). After an error they are
	 * true only when the change was committed anyway (txn.committed). */
	bool pin_set[2];           /* rekey: a new PIN was set for that role */
	bool key_rotated;          /* rekey: a fresh token key */
	bool label_set;            /* rekey: a new token label */
	tfs_layout blob_layout[2]; /* each blob's layout before; NONE when unknown */
	bool pending;              /* a dry run found an interrupted transaction */
	tfs_seal_outcome seal;
	tfs_txn_stats txn;         /* files and bytes written, recovery */
} tfs_change_result;

/*
 * Migrates the token in directory token_dir. Errors: TFS_E_WRONG_PIN,
 * TFS_E_INVALID (no PIN, a blob whose PIN is missing without
 * keep_other_blob, a bad target), TFS_E_DAMAGED (values that do not decrypt,
 * objects that do not parse, PIN blobs that wrap different token keys, a
 * pending transaction that cannot be recovered; nothing written), TFS_E_IO,
 * TFS_E_LOCKED. After an error at or after the commit point the message says
 * the change is committed and recovery finishes it.
 */
int tfs_migrate_token(tfs_change_result *res, const char *token_dir,
                      const tfs_migrate_options *opts, tfs_error *err);

/*
 * rekey: new PINs, a fresh token key, a new label, offline.
 *
 * Authority: both PIN blobs wrap the same token key, so either current PIN
 * unlocks it and can set either PIN: a new user PIN with the user PIN is
 * C_SetPIN, with the SO PIN it is C_InitPIN (also on a token whose user PIN
 * was never set); a new SO PIN with the SO PIN, or with the user PIN when the
 * SO PIN is lost. Rotation needs, for each existing blob, its current PIN
 * or a new PIN for it. A label alone needs no PIN.
 */
typedef struct tfs_rekey_options {
	const uint8_t *user_pin;     /* current PINs; NULL: not given */
	size_t user_pin_len;
	const uint8_t *so_pin;
	size_t so_pin_len;
	const uint8_t *new_user_pin; /* NULL: unchanged; 4 to 255 bytes */
	size_t new_user_pin_len;
	const uint8_t *new_so_pin;
	size_t new_so_pin_len;
	bool rotate_token_key;
	const char *new_label;       /* UTF-8, at most 32 bytes; NULL: unchanged */
	tfs_layout to;               /* NONE: everything keeps its layout */
	bool dry_run;
	unsigned lock_timeout_ms;
	void (*progress)(void *ctx, const char *phase, size_t done, size_t total);
	void (*problem)(void *ctx, const tfs_error *err);
	void *ctx;
} tfs_rekey_options;

/* SoftHSM's PIN length rule (softhsm2-util and C_InitPIN/C_SetPIN). */
#define TFS_PIN_MIN_LEN 4
#define TFS_PIN_MAX_LEN 255

/*
 * Changes the token in token_dir as opts says. Errors as tfs_migrate_token,
 * plus TFS_E_INVALID for a PIN of the wrong length, a label that is not
 * UTF-8 text of at most 32 bytes, nothing to do, or missing authority.
 */
int tfs_rekey_token(tfs_change_result *res, const char *token_dir,
                    const tfs_rekey_options *opts, tfs_error *err);

#ifdef __cplusplus
}
#endif
#endif
