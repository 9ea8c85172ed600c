/*
 * One change to a token, as migrate and rekey describe it: which values are
 * re-encrypted (into another layout, under a new token key), which PIN blob
 * is re-wrapped (with its PIN or a new one, in which layout), token flags
 * and label. tfs_change_token carries it out as one write-engine transaction
 * in two passes:
 *
 *  1. check (read-only, SoftHSM's read locks): unlock with the PINs given,
 *     decrypt every encrypted value of every object, decide per object and
 *     per blob what changes. Everything that refuses, refuses here.
 *  2. write (one transaction): read each object to change again under its
 *     write lock, make sure it is still what pass 1 saw, re-encrypt, check
 *     the result decrypts to the same plaintext, stage; re-wrap the blobs in
 *     token.object the same way; commit.
 *
 * Memory stays flat: one object at a time, and per object only a bit and a
 * hash between the passes.
 */
#ifndef TFS_CHANGE_CHANGE_H
#define TFS_CHANGE_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/change.h"

typedef struct tfs_change {
	const uint8_t *pin[2];     /* current PINs by tfs_pin_role; NULL: not given */
	size_t pin_len[2];
	const uint8_t *new_pin[2]; /* new PINs; NULL: the PIN stays */
	size_t new_pin_len[2];
	bool need_key;             /* false only when nothing needs the token key */
	bool rotate;               /* a fresh token key for every value and blob */
	tfs_layout values_to;      /* NONE: each value keeps its layout */
	tfs_layout blobs_to;       /* NONE: each blob keeps its layout */
	bool keep_other_blob;      /* a blob nobody can re-wrap stays as it is */
	uint64_t flags_clear, flags_set; /* CKA_OS_TOKENFLAGS */
	const uint8_t *label;      /* 32 bytes, blank padded; NULL: unchanged */
	bool dry_run;
	unsigned lock_timeout_ms;
	void (*progress)(void *ctx, const char *phase, size_t done, size_t total);
	void (*problem)(void *ctx, const tfs_error *err);
	void *ctx;
} tfs_change;

/* Carries c out on the token in token_dir; errors as tfs_migrate_token. */
int tfs_change_token(tfs_change_result *res, const char *token_dir,
                     const tfs_change *c, tfs_error *err);

#endif
