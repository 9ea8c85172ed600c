/*
 * What a writer does about a token's seal (tokenfs.seal, docs/seal.md): a
 * change by design makes the seal fail, so a seal that verified before the
 * change is made anew after it; one that did not verify is evidence and is
 * left alone.
 */
#ifndef TFS_CHANGE_SEAL_STEP_H
#define TFS_CHANGE_SEAL_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/change.h"

typedef struct tfs_seal_state {
	bool exists;
	bool verified;
} tfs_seal_state;

/* Checks the token's seal, if it has one, with the PINs given. Runs before
 * the transaction begins: the seal reads every file of the token, lock files
 * included, under read locks that would conflict with the transaction's. */
int tfs_seal_step_before(tfs_seal_state *s, const char *token_dir, unsigned lock_ms,
                         const uint8_t *user_pin, size_t user_len, const uint8_t *so_pin,
                         size_t so_len, tfs_error *err);

/* After the change and after the transaction ended (changed: anything was
 * written): re-seals a seal that
 * verified, and says what happened. */
int tfs_seal_step_after(const tfs_seal_state *s, tfs_seal_outcome *out, bool changed,
                        const char *token_dir, unsigned lock_ms, const uint8_t *user_pin,
                        size_t user_len, const uint8_t *so_pin, size_t so_len, tfs_error *err);

#endif
