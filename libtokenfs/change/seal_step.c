/* Seals around a write: see change/seal_step.h. */
#include "change/seal_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error_internal.h"
#include "tokenfs/verify.h"

const char *tfs_seal_outcome_name(tfs_seal_outcome s)
{
	switch (s) {
	case TFS_SEAL_OUTCOME_REMADE: return "remade";
	case TFS_SEAL_OUTCOME_NOT_VERIFIED: return "not-verified";
	case TFS_SEAL_OUTCOME_UNCHANGED: return "unchanged";
	case TFS_SEAL_OUTCOME_FAILED: return "failed";
	case TFS_SEAL_OUTCOME_NONE: break;
	}
	return "none";
}

static bool seal_exists(const char *dir)
{
	char *p = NULL;
	struct stat st;
	bool found = asprintf(&p, "%s/tokenfs.seal", dir) >= 0 && lstat(p, &st) == 0;
	free(p);
	return found;
}

/* Runs verify-integrity's seal step; *clean: no seal finding above info. */
static int run_seal(const tfs_store *store, const tfs_token *tok, tfs_seal_mode mode,
                    const uint8_t *user_pin, size_t user_len, const uint8_t *so_pin,
                    size_t so_len, bool *clean, tfs_error *err)
{
	tfs_verify_options vo = {.user_pin = user_pin, .user_pin_len = user_len, .so_pin = so_pin,
	                         .so_pin_len = so_len, .seal = mode};
	tfs_report *rep;
	tfs_verify_summary sum;
	int rc = tfs_report_new(&rep, err);
	if (rc == TFS_OK)
		rc = tfs_verify_token(rep, &sum, store, tok, &vo, err);
	*clean = rc == TFS_OK;
	for (size_t i = 0; rc == TFS_OK && i < tfs_report_finding_count(rep); i++) {
		const tfs_finding *f = tfs_report_finding(rep, i);
		if (strncmp(tfs_finding_code(f), "seal.", 5) == 0 &&
		    tfs_finding_severity(f) > TFS_SEV_INFO)
			*clean = false;
	}
	tfs_report_free(rep);
	return rc;
}

/* Runs the seal step over the token directory as it is now. */
static int seal_dir(const char *token_dir, unsigned lock_ms, tfs_seal_mode mode,
                    const uint8_t *user_pin, size_t user_len, const uint8_t *so_pin, size_t so_len,
                    bool *clean, tfs_error *err)
{
	tfs_open_options oo = {.lock_timeout_ms = lock_ms};
	tfs_store *store;
	int rc = tfs_store_open(&store, token_dir, &oo, err);
	if (rc == TFS_OK && tfs_store_kind(store) != TFS_PATH_TOKEN)
		rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "not a token directory");
	if (rc == TFS_OK)
		rc = run_seal(store, tfs_store_token(store, 0), mode, user_pin, user_len, so_pin, so_len,
		              clean, err);
	tfs_store_free(store);
	return rc;
}

int tfs_seal_step_before(tfs_seal_state *s, const char *token_dir, unsigned lock_ms,
                         const uint8_t *user_pin, size_t user_len, const uint8_t *so_pin,
                         size_t so_len, tfs_error *err)
{
	memset(s, 0, sizeof(*s));
	s->exists = seal_exists(token_dir);
	/* Without a PIN a seal cannot be checked: it counts as not verified and
	 * is left alone. */
	if (!s->exists || (user_pin == NULL && so_pin == NULL))
		return TFS_OK;
	return seal_dir(token_dir, lock_ms, TFS_SEAL_CHECK, user_pin, user_len, so_pin, so_len,
	                &s->verified, err);
}

int tfs_seal_step_after(const tfs_seal_state *s, tfs_seal_outcome *out, bool changed,
                        const char *token_dir, unsigned lock_ms, const uint8_t *user_pin,
                        size_t user_len, const uint8_t *so_pin, size_t so_len, tfs_error *err)
{
	if (!s->exists) {
		*out = TFS_SEAL_OUTCOME_NONE;
		return TFS_OK;
	}
	*out = !changed ? TFS_SEAL_OUTCOME_UNCHANGED
	       : s->verified ? TFS_SEAL_OUTCOME_REMADE : TFS_SEAL_OUTCOME_NOT_VERIFIED;
	if (*out != TFS_SEAL_OUTCOME_REMADE)
		return TFS_OK;
	bool clean;
	return seal_dir(token_dir, lock_ms, TFS_SEAL_WRITE, user_pin, user_len, so_pin, so_len, &clean,
	                err);
}
