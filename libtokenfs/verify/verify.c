/*
 * verify-integrity's engine: unlock, load the token once, run each check
 * module over it, and collect the findings. See tokenfs/verify.h.
 */
#include "verify/verify_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"
#include "verify/semantics_internal.h"

struct tfs_report {
	tfs_findings findings;
};

int tfs_report_new(tfs_report **out, tfs_error *err)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? tfs_nomem(err) : TFS_OK;
}

void tfs_report_free(tfs_report *rep)
{
	if (rep == NULL)
		return;
	tfs_findings_free(&rep->findings);
	free(rep);
}

size_t tfs_report_finding_count(const tfs_report *rep) { return rep->findings.count; }

const tfs_finding *tfs_report_finding(const tfs_report *rep, size_t i)
{
	return i < rep->findings.count ? &rep->findings.items[i] : NULL;
}

const char *tfs_verify_skip_code(unsigned bit)
{
	switch (bit) {
	case TFS_SKIP_PIN_BLOBS: return "pin-blobs";
	case TFS_SKIP_ENCRYPTED_VALUES: return "encrypted-values";
	case TFS_SKIP_PRIVATE_VALUES: return "private-values";
	default: return NULL;
	}
}

const char *tfs_verify_skip_reason_code(tfs_verify_skip_reason reason)
{
	switch (reason) {
	case TFS_SKIP_REASON_NO_PIN: return "no-pin";
	case TFS_SKIP_REASON_NO_METADATA: return "no-token-metadata";
	case TFS_SKIP_REASON_WRONG_PIN: return "wrong-pin";
	case TFS_SKIP_REASON_LONE_OBJECT: return "lone-object-file";
	default: return NULL;
	}
}

/* The store's own findings (stray files, locks) that concern this token. */
static int copy_store_findings(tfs_report *rep, const tfs_token *tok)
{
	for (size_t i = 0; i < tfs_token_finding_count(tok); i++) {
		const tfs_finding *f = tfs_token_finding(tok, i);
		tfs_location loc = {.path = tfs_finding_path(f), .offset = tfs_finding_offset(f)};
		if (tfs_findings_addl(&rep->findings, tfs_finding_code(f), tfs_finding_severity(f), &loc,
		                      "%s", tfs_finding_message(f)) != TFS_OK)
			return TFS_E_NOMEM;
	}
	return TFS_OK;
}

/* One PIN: a damaged blob is a finding about the store, and so is a wrong
 * PIN about this token (each token of a run may have its own PIN: one
 * wrong one must not hide the others' verdicts); the checks that need the
 * token key then do not run, which the summary says. *wrong is set. */
static int unlock_one(tfs_report *rep, const tfs_token *tok, tfs_pin_role role, const uint8_t *pin,
                      size_t len, tfs_token_key **key, bool *wrong, tfs_error *err)
{
	int rc = tfs_token_unlock(key, tok, role, pin, len, err);
	if (rc != TFS_E_DAMAGED && rc != TFS_E_WRONG_PIN)
		return rc;
	if (rc == TFS_E_WRONG_PIN) {
		*wrong = true;
		tfs_location loc = {.path = err->where, .offset = TFS_NO_OFFSET};
		if (tfs_findings_addl(&rep->findings, "pin.wrong", TFS_SEV_ERROR, &loc,
		                      "%s; what needs the token key is checked only with a PIN that "
		                      "opens its blob", err->what) != TFS_OK)
			return tfs_nomem(err);
	} else if (tfs_findings_add_error(&rep->findings, "pin.blob-damaged", TFS_SEV_ERROR, err) !=
	           TFS_OK) {
		return tfs_nomem(err);
	}
	tfs_error_clear(err);
	return TFS_OK;
}

static int unlock(tfs_report *rep, const tfs_token *tok, const tfs_verify_options *o,
                  tfs_token_key **key, bool *wrong, tfs_error *err)
{
	tfs_token_key *user = NULL, *so = NULL;
	*key = NULL;
	int rc = TFS_OK;
	if (o->user_pin != NULL)
		rc = unlock_one(rep, tok, TFS_PIN_USER, o->user_pin, o->user_pin_len, &user, wrong, err);
	if (rc == TFS_OK && o->so_pin != NULL)
		rc = unlock_one(rep, tok, TFS_PIN_SO, o->so_pin, o->so_pin_len, &so, wrong, err);
	if (rc == TFS_OK && user != NULL && so != NULL && !tfs_token_key_equal(user, so)) {
		tfs_location loc = {.path = tfs_token_path(tok), .offset = TFS_NO_OFFSET};
		if (tfs_findings_addl(&rep->findings, "pin.keys-differ", TFS_SEV_ERROR, &loc,
		                      "the SO and user PIN blobs wrap different token keys: one of them "
		                      "was replaced or damaged; values are checked with the user's") != TFS_OK)
			rc = tfs_nomem(err);
	}
	if (rc != TFS_OK) {
		tfs_token_key_free(user);
		tfs_token_key_free(so);
		return rc;
	}
	*key = user != NULL ? user : so;
	tfs_token_key_free(user != NULL ? so : NULL);
	return TFS_OK;
}

/* Where each module's findings go while the objects stream past, so that
 * the report lists them module by module, as when every module ran over
 * the whole token in turn. */
enum { F_LOAD, F_STRUCTURE, F_EXPOSURE, F_CRYPTO, F_SEMANTICS, F_COMPAT, F_MATERIAL, F_LISTS };

/*
 * Runs every check module over vt's token, one object at a time: each
 * object is loaded, checked by every module and released before the next,
 * so at most one object's bytes and plaintext are held at once (at most
 * TFS_MAX_OBJECT_SIZE, plus what decryption copies); across objects only
 * the small records of the cross-object checks remain.
 */
static int check_objects(tfs_report *rep, tfs_vtoken *vt, tfs_error *err)
{
	tfs_findings lists[F_LISTS] = {{0}};
	tfs_sem sem;
	int rc = tfs_sem_begin(&sem, vt, NULL);
	if (rc == TFS_OK) {
		vt->findings = &lists[F_STRUCTURE];
		rc = tfs_check_structure_token(vt);
	}
	if (rc != TFS_OK)
		rc = tfs_nomem(err);
	size_t n = tfs_token_object_count(vt->tok);
	/* Objects read and parsed ahead on a second thread, in index order. */
	size_t *all = rc == TFS_OK ? malloc((n ? n : 1) * sizeof(*all)) : NULL;
	if (all != NULL) {
		for (size_t i = 0; i < n; i++)
			all[i] = i;
		if (tfs_loader_new(&vt->loader, vt->tok, all, n, err) != TFS_OK)
			rc = TFS_E_NOMEM;
		free(all);
	} else if (rc == TFS_OK) {
		rc = tfs_nomem(err);
	}
	for (size_t i = 0; i < n && rc == TFS_OK; i++) {
		tfs_vobject o;
		vt->findings = &lists[F_LOAD];
		if ((rc = tfs_vobject_load(&o, vt, i, err)) != TFS_OK)
			break;
		vt->findings = &lists[F_STRUCTURE];
		rc = tfs_check_structure_object(vt, &o);
		vt->findings = &lists[F_EXPOSURE];
		if (rc == TFS_OK)
			rc = tfs_check_exposure_object(vt, &o);
		vt->findings = &lists[F_CRYPTO];
		if (rc == TFS_OK)
			rc = tfs_check_crypto_object(vt, &o);
		vt->findings = &lists[F_SEMANTICS];
		if (rc == TFS_OK)
			rc = tfs_sem_object(&sem, &o);
		vt->findings = &lists[F_COMPAT];
		if (rc == TFS_OK)
			rc = tfs_check_compat_object(vt, &o);
		vt->findings = &lists[F_MATERIAL];
		if (rc == TFS_OK)
			rc = tfs_check_material_object(vt, &o);
		tfs_vobject_release(&o);
		if (rc != TFS_OK)
			rc = tfs_nomem(err);
	}
	tfs_loader_free(vt->loader);
	vt->loader = NULL;
	if (rc == TFS_OK) {
		vt->findings = &lists[F_CRYPTO];
		rc = tfs_check_crypto_end(vt);
		vt->findings = &lists[F_SEMANTICS];
		if (rc == TFS_OK)
			rc = tfs_sem_end(&sem);
		else
			tfs_sem_free(&sem);
		vt->findings = &lists[F_COMPAT];
		if (rc == TFS_OK)
			rc = tfs_check_compat_end(vt);
		if (rc != TFS_OK)
			rc = tfs_nomem(err);
	} else {
		tfs_sem_free(&sem);
	}
	for (size_t l = 0; l < F_LISTS; l++) {
		if (rc == TFS_OK && tfs_findings_move(&rep->findings, &lists[l]) != TFS_OK)
			rc = tfs_nomem(err);
		tfs_findings_free(&lists[l]);
	}
	vt->findings = &rep->findings;
	return rc;
}

int tfs_verify_token(tfs_report *rep, tfs_verify_summary *summary, const tfs_store *store,
                     const tfs_token *tok, const tfs_verify_options *opts, tfs_error *err)
{
	tfs_error_clear(err);
	memset(summary, 0, sizeof(*summary));
	static const tfs_verify_options none;
	if (opts == NULL)
		opts = &none;
	if (opts->seal != TFS_SEAL_NONE && opts->user_pin == NULL && opts->so_pin == NULL)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "sealing and checking a seal need a PIN: the seal's key is "
		                     "derived from the token key");
	if (opts->seal != TFS_SEAL_NONE && tfs_store_kind(store) == TFS_PATH_OBJECT_FILE)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "a seal covers a whole token: give the token directory, not "
		                     "one of its object files");
	if (opts->seal == TFS_SEAL_WRITE && tfs_store_is_archive(store))
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "a seal cannot be written into an archive: seal the token "
		                     "directory before archiving it, and check the archive with "
		                     "--check-seal");
	if (copy_store_findings(rep, tok) != TFS_OK)
		return tfs_nomem(err);
	tfs_token_key *key = NULL;
	int rc = TFS_OK;
	bool wrong = false;
	if (tfs_token_metadata(tok) != NULL)
		rc = unlock(rep, tok, opts, &key, &wrong, err);
	if (rc != TFS_OK)
		return rc;
	summary->unlocked = key != NULL;
	if (opts->seal != TFS_SEAL_NONE && key == NULL && !wrong) {
		/* A seal asked for and not done must not look like a pass. */
		tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		              "no PIN blob could be opened, so the seal cannot be %s "
		              "(see the pin.blob-damaged finding)",
		              opts->seal == TFS_SEAL_WRITE ? "written" : "checked");
		return tfs_error_where(err, "%s", tfs_token_path(tok));
	}
	if (key == NULL) {
		summary->not_checked = TFS_SKIP_ALL;
		summary->not_checked_reason =
			tfs_token_metadata(tok) != NULL
			? (wrong ? TFS_SKIP_REASON_WRONG_PIN : TFS_SKIP_REASON_NO_PIN)
			: tfs_store_kind(store) == TFS_PATH_OBJECT_FILE ? TFS_SKIP_REASON_LONE_OBJECT
			: TFS_SKIP_REASON_NO_METADATA;
	}

	tfs_vtoken vt = {.store = store, .tok = tok, .key = key, .summary = summary};
	rc = check_objects(rep, &vt, err);
	vt.findings = &rep->findings;
	if (rc == TFS_OK && opts->seal != TFS_SEAL_NONE && key != NULL) {
		char *path = NULL;
		const char *seal_path = opts->seal_path;
		if (seal_path == NULL) {
			if (asprintf(&path, "%s/tokenfs.seal", tfs_token_path(tok)) < 0)
				path = NULL;
			seal_path = path;
		}
		if (seal_path == NULL)
			rc = tfs_nomem(err);
		else if (opts->seal == TFS_SEAL_WRITE)
			rc = tfs_seal_write(&vt, seal_path, err);
		else
			rc = tfs_seal_check(&vt, seal_path, err);
		summary->sealed = rc == TFS_OK;
		free(path);
	}
	tfs_vtoken_free(&vt);
	tfs_token_key_free(key);
	return rc;
}
