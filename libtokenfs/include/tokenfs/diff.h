/*
 * What changed between two states of a store (tokenfs diff): last night's
 * backup against today's store, say. Tokens are matched by directory name;
 * within a token the comparison is the one `verify-integrity --check-seal`
 * makes (docs/seal.md), with the older state recorded in memory instead of
 * a seal: files and objects added and removed, and for each changed object
 * the attributes that differ, by name, with old and new value. With a PIN,
 * encrypted values are compared and shown decrypted; key material only by
 * length and fingerprint unless `reveal`.
 */
#ifndef TOKENFS_DIFF_H
#define TOKENFS_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/finding.h"
#include "tokenfs/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfs_diff_options {
	const uint8_t *user_pin; /* either PIN opens the token key on both sides */
	size_t user_pin_len;
	const uint8_t *so_pin;
	size_t so_pin_len;
	bool reveal;             /* show key material in full */
	/* Which tokens to compare (called for tokens of either side); NULL: all. */
	bool (*select)(void *ctx, const tfs_token *tok);
	void *ctx;
} tfs_diff_options;

typedef enum tfs_diff_state {
	TFS_DIFF_SAME = 0,   /* byte for byte */
	TFS_DIFF_CHANGED,    /* see the changes */
	TFS_DIFF_ADDED,      /* only in B */
	TFS_DIFF_REMOVED     /* only in A */
} tfs_diff_state;

typedef struct tfs_diff tfs_diff;
typedef struct tfs_diff_token tfs_diff_token;

/*
 * Compares store a (the older state) with store b. Fills *out (caller frees
 * with tfs_diff_free). Errors: TFS_E_WRONG_PIN, TFS_E_NOMEM, TFS_E_LOCKED,
 * TFS_E_IO for a token directory that cannot be listed.
 */
int tfs_diff_stores(tfs_diff **out, const tfs_store *a, const tfs_store *b,
                    const tfs_diff_options *opts, tfs_error *err);
void tfs_diff_free(tfs_diff *d);

/* True when every compared token is the same, byte for byte. */
bool tfs_diff_equal(const tfs_diff *d);
size_t tfs_diff_token_count(const tfs_diff *d);
const tfs_diff_token *tfs_diff_token_at(const tfs_diff *d, size_t i);

tfs_diff_state tfs_diff_token_state(const tfs_diff_token *t);
/* The token directory's name, and label and serial (from B, or A when only
 * there). Borrowed. */
const char *tfs_diff_token_dir(const tfs_diff_token *t);
const char *tfs_diff_token_label(const tfs_diff_token *t);
const char *tfs_diff_token_serial(const tfs_diff_token *t);
/* Whether a PIN opened the token key on both sides (values compared as
 * plaintext). */
bool tfs_diff_token_unlocked(const tfs_diff_token *t);
/*
 * The differences of a changed token, as findings with the seal's codes
 * (seal.file-added, seal.file-removed, seal.file-changed,
 * seal.attribute-changed with tfs_finding_old_value/new_value,
 * seal.generation-changed, and the information-only seal.generation-bumped
 * and seal.pin-count-flags). Paths are those in B. Borrowed.
 */
size_t tfs_diff_token_change_count(const tfs_diff_token *t);
const tfs_finding *tfs_diff_token_change(const tfs_diff_token *t, size_t i);

#ifdef __cplusplus
}
#endif
#endif
