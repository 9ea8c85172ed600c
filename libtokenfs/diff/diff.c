/*
 * tfs_diff_stores: tokens of two stores paired by directory name, and each
 * pair compared by the seal's own comparison (seal/compare.c): the older
 * side (A) is recorded as a manifest in memory, exactly as `--seal` would
 * record it but never written and with key material's stored bytes kept so
 * it can be shown by length and fingerprint (or revealed), and the newer
 * side (B) is read and compared with it as `--check-seal` does.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"
#include "seal/seal_internal.h"
#include "store/store_internal.h"
#include "tokenfs/diff.h"
#include "tokenfs/keys.h"

struct tfs_diff_token {
	tfs_diff_state state;
	char *dir, *label, *serial;
	bool unlocked;
	tfs_findings changes;
};

struct tfs_diff {
	tfs_diff_token *toks;
	size_t n;
};

void tfs_diff_free(tfs_diff *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->toks[i].dir);
		free(d->toks[i].label);
		free(d->toks[i].serial);
		tfs_findings_free(&d->toks[i].changes);
	}
	free(d->toks);
	free(d);
}

bool tfs_diff_equal(const tfs_diff *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->toks[i].state != TFS_DIFF_SAME)
			return false;
	return true;
}

size_t tfs_diff_token_count(const tfs_diff *d) { return d->n; }
const tfs_diff_token *tfs_diff_token_at(const tfs_diff *d, size_t i) { return &d->toks[i]; }
tfs_diff_state tfs_diff_token_state(const tfs_diff_token *t) { return t->state; }
const char *tfs_diff_token_dir(const tfs_diff_token *t) { return t->dir; }
const char *tfs_diff_token_label(const tfs_diff_token *t) { return t->label; }
const char *tfs_diff_token_serial(const tfs_diff_token *t) { return t->serial; }
bool tfs_diff_token_unlocked(const tfs_diff_token *t) { return t->unlocked; }
size_t tfs_diff_token_change_count(const tfs_diff_token *t) { return t->changes.count; }
const tfs_finding *tfs_diff_token_change(const tfs_diff_token *t, size_t i)
{
	return &t->changes.items[i];
}

/* The token key through either PIN, or NULL without one. A wrong PIN is an
 * error: a diff that silently compared ciphertexts would look complete. */
static int unlock(tfs_token_key **key, const tfs_token *tok, const tfs_diff_options *o,
                  tfs_error *err)
{
	*key = NULL;
	if (o->user_pin == NULL && o->so_pin == NULL)
		return TFS_OK;
	if (tfs_token_metadata(tok) == NULL)
		return TFS_OK; /* no blob to open: values are compared as stored */
	int rc = TFS_E_NOTFOUND;
	if (o->user_pin != NULL)
		rc = tfs_token_unlock(key, tok, TFS_PIN_USER, o->user_pin, o->user_pin_len, err);
	if (rc != TFS_OK && o->so_pin != NULL)
		rc = tfs_token_unlock(key, tok, TFS_PIN_SO, o->so_pin, o->so_pin_len, err);
	return rc;
}

static int compare_pair(tfs_diff_token *dt, const tfs_store *a, const tfs_token *ta,
                        const tfs_store *b, const tfs_token *tb, const tfs_diff_options *o,
                        tfs_error *err)
{
	tfs_token_key *ka = NULL, *kb = NULL;
	int rc = unlock(&ka, ta, o, err);
	if (rc == TFS_OK)
		rc = unlock(&kb, tb, o, err);
	dt->unlocked = ka != NULL && kb != NULL;
	tfs_findings scratch = {0};
	tfs_vtoken va = {.store = a, .tok = ta, .key = ka, .findings = &scratch};
	tfs_vtoken vb = {.store = b, .tok = tb, .key = kb, .findings = &dt->changes};
	json_object *root = NULL;
	size_t nfiles, nobjs;
	if (rc == TFS_OK)
		rc = tfs_seal_build(&root, &nfiles, &nobjs, &va, NULL, true, err);
	tfs_seal_manifest m;
	memset(&m, 0, sizeof(m));
	if (rc == TFS_OK) {
		rc = tfs_seal_manifest_adopt(&m, root, err);
		if (rc == TFS_E_FORMAT)
			tfs_error_where(err, "internal: the manifest of %s", tfs_token_path(ta));
	}
	if (rc == TFS_OK) {
		tfs_seal_cmp cmp = {.old_key = ka, .reveal = o->reveal, .diff = true};
		rc = tfs_seal_compare(&cmp, &vb, &m, NULL, err);
	}
	if (rc == TFS_OK)
		dt->state = dt->changes.count > 0 ? TFS_DIFF_CHANGED : TFS_DIFF_SAME;
	tfs_seal_manifest_free(&m);
	tfs_findings_free(&scratch);
	tfs_token_key_free(ka);
	tfs_token_key_free(kb);
	return rc;
}

static const tfs_token *find_token(const tfs_store *s, const char *dir)
{
	for (size_t i = 0; i < tfs_store_token_count(s); i++)
		if (strcmp(tfs_token_dirname(tfs_store_token(s, i)), dir) == 0)
			return tfs_store_token(s, i);
	return NULL;
}

static bool selected(const tfs_diff_options *o, const tfs_token *ta, const tfs_token *tb)
{
	if (o->select == NULL)
		return true;
	return (ta != NULL && o->select(o->ctx, ta)) || (tb != NULL && o->select(o->ctx, tb));
}

static int cmp_dir(const void *x, const void *y)
{
	return strcmp(((const tfs_diff_token *)x)->dir, ((const tfs_diff_token *)y)->dir);
}

/* Adds the pair (either may be NULL) as the next token of d. */
static int add_pair(tfs_diff *d, const tfs_store *a, const tfs_token *ta, const tfs_store *b,
                    const tfs_token *tb, const tfs_diff_options *o, tfs_error *err)
{
	tfs_diff_token *dt = &d->toks[d->n++];
	const tfs_token *named = tb != NULL ? tb : ta;
	if ((dt->dir = strdup(tfs_token_dirname(named))) == NULL ||
	    (dt->label = strdup(tfs_token_label(named))) == NULL ||
	    (dt->serial = strdup(tfs_token_serial(named))) == NULL)
		return tfs_nomem(err);
	if (ta == NULL || tb == NULL) {
		dt->state = ta == NULL ? TFS_DIFF_ADDED : TFS_DIFF_REMOVED;
		return TFS_OK;
	}
	return compare_pair(dt, a, ta, b, tb, o, err);
}

int tfs_diff_stores(tfs_diff **out, const tfs_store *a, const tfs_store *b,
                    const tfs_diff_options *opts, tfs_error *err)
{
	static const tfs_diff_options none;
	if (opts == NULL)
		opts = &none;
	*out = NULL;
	tfs_error_clear(err);
	if (tfs_store_kind(a) == TFS_PATH_OBJECT_FILE || tfs_store_kind(b) == TFS_PATH_OBJECT_FILE)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "diff compares tokendirs or token directories, not single files");
	size_t na = tfs_store_token_count(a), nb = tfs_store_token_count(b);
	tfs_diff *d = calloc(1, sizeof(*d));
	if (d == NULL || (d->toks = calloc(na + nb + 1, sizeof(*d->toks))) == NULL) {
		free(d);
		return tfs_nomem(err);
	}
	int rc = TFS_OK;
	if (tfs_store_kind(a) == TFS_PATH_TOKEN && tfs_store_kind(b) == TFS_PATH_TOKEN) {
		/* Two token directories named on the command line: the same
		 * token, whatever the directories are called. */
		const tfs_token *ta = tfs_store_token(a, 0), *tb = tfs_store_token(b, 0);
		if (selected(opts, ta, tb))
			rc = add_pair(d, a, ta, b, tb, opts, err);
	} else {
		for (size_t i = 0; i < na && rc == TFS_OK; i++) {
			const tfs_token *ta = tfs_store_token(a, i);
			const tfs_token *tb = find_token(b, tfs_token_dirname(ta));
			if (selected(opts, ta, tb))
				rc = add_pair(d, a, ta, b, tb, opts, err);
		}
		for (size_t i = 0; i < nb && rc == TFS_OK; i++) {
			const tfs_token *tb = tfs_store_token(b, i);
			if (find_token(a, tfs_token_dirname(tb)) == NULL && selected(opts, NULL, tb))
				rc = add_pair(d, a, NULL, b, tb, opts, err);
		}
	}
	if (rc != TFS_OK) {
		tfs_diff_free(d);
		return rc;
	}
	qsort(d->toks, d->n, sizeof(*d->toks), cmp_dir);
	*out = d;
	return TFS_OK;
}
