/* tfs_change_token: see change/change.h. */
#include "change/change.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "change/seal_step.h"
#include "txn/txn_internal.h"
#include "core/error_internal.h"
#include "crypto/digest_internal.h"
#include "format/object_internal.h"
#include "keys/keys_internal.h"
#include "tokenfs/keys.h"
#include "tokenfs/names.h"

typedef struct planned {
	bool rewrite;
	uint8_t sha256[TFS_SHA256_LEN]; /* the bytes pass 1 checked */
} planned;

typedef struct change_run {
	const tfs_change *o;
	tfs_change_result *res;
	const tfs_token *tok;
	tfs_token_key *key[2];    /* by role; NULL when that PIN was not given */
	const tfs_token_key *any; /* one of them: the token key as it is */
	tfs_token_key *fresh;     /* a rotation's new token key, or NULL */
	const tfs_token_key *to;  /* the token key afterwards: fresh or any */
	/* Per role: the PIN a re-wrapped blob is wrapped with, and its layout. */
	const uint8_t *wrap_pin[2];
	size_t wrap_len[2];
	tfs_layout wrap_layout[2];
	bool metadata;            /* token.object changes */
	planned *plan;
} change_run;

const char *tfs_blob_action_name(tfs_blob_action a)
{
	switch (a) {
	case TFS_BLOB_ALREADY: return "already";
	case TFS_BLOB_REWRAPPED: return "rewrapped";
	case TFS_BLOB_KEPT: return "kept";
	case TFS_BLOB_ABSENT: break;
	}
	return "absent";
}

static const char *role_name(tfs_pin_role r)
{
	return r == TFS_PIN_SO ? "SO" : "user";
}

static void progress(const change_run *m, const char *phase, size_t done)
{
	if (m->o->progress != NULL)
		m->o->progress(m->o->ctx, phase, done, m->res->objects);
}

static void problem(change_run *m, const tfs_error *e)
{
	m->res->problems++;
	if (m->o->problem != NULL)
		m->o->problem(m->o->ctx, e);
}

/* Unlocks with every PIN given; both must open the same token key. */
static int unlock(change_run *m, tfs_error *err)
{
	const uint8_t *const *pin = m->o->pin;
	const size_t *len = m->o->pin_len;
	if (pin[0] == NULL && pin[1] == NULL) {
		/* Say which token: a run over a tokendir changes several. */
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "needs the user PIN or the SO "
		              "PIN: values and blobs are re-encrypted under the token key they unlock");
		return tfs_error_where(err, "%s", tfs_token_path(m->tok));
	}
	for (int r = TFS_PIN_SO; r <= TFS_PIN_USER; r++) {
		if (pin[r] == NULL)
			continue;
		int rc = tfs_token_unlock(&m->key[r], m->tok, (tfs_pin_role)r, pin[r], len[r], err);
		if (rc != TFS_OK)
			return rc;
		m->res->blob_layout[r] = tfs_token_key_layout(m->key[r]);
		m->any = m->key[r];
	}
	if (m->key[0] != NULL && m->key[1] != NULL && !tfs_token_key_equal(m->key[0], m->key[1])) {
		tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET, "the SO and user PIN blobs wrap "
		              "different token keys; refusing to guess which one the objects use");
		return tfs_error_where(err, "%s/token.object", tfs_token_path(m->tok));
	}
	m->to = m->any;
	if (!m->o->rotate)
		return TFS_OK;
	uint8_t k[TFS_KEY_LEN];
	if (RAND_bytes(k, sizeof(k)) != 1)
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "RAND_bytes failed");
	int rc = tfs_token_key_from_bytes(&m->fresh, k, tfs_token_key_layout(m->any), err);
	OPENSSL_cleanse(k, sizeof(k));
	m->to = m->fresh;
	return rc;
}

static int missing_blob_pin(tfs_error *err, const change_run *m, tfs_pin_role r)
{
	const char *n = role_name(r), *opt = r == TFS_PIN_SO ? "so" : "user";
	if (m->o->rotate)
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "a new token key must be wrapped into "
		              "the %s PIN blob too: give the %s PIN (--%s-pin) or a new one (--new-%s-pin)",
		              n, n, opt, opt);
	else
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "the %s PIN blob can only be re-wrapped "
		              "with the %s PIN: give --%s-pin, or --keep-other-blob to leave that blob in "
		              "its layout", n, n, opt);
	return tfs_error_where(err, "%s", tfs_token_path(m->tok));
}

/* What happens to one blob: re-wrapped with a new PIN, re-wrapped with its
 * own PIN (a new key or layout), or left alone. */
static int decide_blob(change_run *m, tfs_pin_role r, tfs_error *err)
{
	size_t blen;
	bool present = tfs_token_pin_blob(m->tok, r, &blen) != NULL;
	tfs_layout known = m->key[r] != NULL ? m->res->blob_layout[r] : TFS_LAYOUT_NONE;
	tfs_layout target = m->o->blobs_to != TFS_LAYOUT_NONE ? m->o->blobs_to : known;
	tfs_blob_action *a = &m->res->blob[r];
	if (m->o->new_pin[r] != NULL) {
		*a = TFS_BLOB_REWRAPPED;
		m->wrap_pin[r] = m->o->new_pin[r];
		m->wrap_len[r] = m->o->new_pin_len[r];
		/* A blob whose layout cannot be told gets the token's. */
		m->wrap_layout[r] = target != TFS_LAYOUT_NONE ? target : tfs_token_key_layout(m->any);
		m->res->pin_set[r] = true;
	} else if (!present) {
		*a = TFS_BLOB_ABSENT;
	} else if (m->key[r] != NULL) {
		*a = m->o->rotate || target != known ? TFS_BLOB_REWRAPPED : TFS_BLOB_ALREADY;
		m->wrap_pin[r] = m->o->pin[r];
		m->wrap_len[r] = m->o->pin_len[r];
		m->wrap_layout[r] = target;
	} else if (!m->o->rotate && (m->o->blobs_to == TFS_LAYOUT_NONE || m->o->keep_other_blob)) {
		*a = TFS_BLOB_KEPT;
	} else {
		return missing_blob_pin(err, m, r);
	}
	m->metadata |= *a == TFS_BLOB_REWRAPPED;
	return TFS_OK;
}

/* Blobs, flags and label. A change that needs no key (a label alone)
 * touches no blob. */
static int decide_metadata(change_run *m, tfs_error *err)
{
	for (int r = TFS_PIN_SO; r <= TFS_PIN_USER; r++) {
		size_t blen;
		int rc = TFS_OK;
		if (m->o->need_key)
			rc = decide_blob(m, (tfs_pin_role)r, err);
		else
			m->res->blob[r] = tfs_token_pin_blob(m->tok, (tfs_pin_role)r, &blen) != NULL
			                ? TFS_BLOB_KEPT : TFS_BLOB_ABSENT;
		if (rc != TFS_OK)
			return rc;
	}
	uint64_t flags = 0;
	if (tfs_token_flags(m->tok, &flags) &&
	    ((flags & ~m->o->flags_clear) | m->o->flags_set) != flags)
		m->metadata = true;
	if (m->o->label != NULL) {
		const tfs_attr *a = tfs_object_find(tfs_token_metadata(m->tok), TFS_CKA_OS_TOKENLABEL);
		size_t len = 0;
		const uint8_t *p = a != NULL && tfs_attr_kind(a) == TFS_KIND_BYTES ? tfs_attr_bytes(a, &len) : NULL;
		m->res->label_set = p == NULL || len != 32 || memcmp(p, m->o->label, 32) != 0;
		m->metadata |= m->res->label_set;
	}
	return TFS_OK;
}

/* Pass 1 for one object: does every value decrypt, and is any not yet in
 * the target layout? Damage is a problem, not an error: every damaged value
 * of the token gets named before the refusal. */
static int check_object(change_run *m, size_t i, tfs_error *err)
{
	uint8_t *data;
	size_t size;
	tfs_error e;
	int rc = tfs_token_read_object(&data, &size, m->tok, i, &e);
	if (rc == TFS_E_NOMEM || rc == TFS_E_LOCKED || rc == TFS_E_IO) {
		*err = e;
		return rc;
	}
	if (rc != TFS_OK) { /* over a cap: damage, named with the others */
		problem(m, &e);
		return TFS_OK;
	}
	rc = tfs_sha256(m->plan[i].sha256, data, size, err);
	tfs_object *obj = NULL;
	if (rc == TFS_OK && (rc = tfs_object_parse_owned(&obj, data, size, &e)) != TFS_OK) {
		tfs_error_where(&e, "%s", tfs_token_object_path(m->tok, i));
		problem(m, &e);
		return TFS_OK;
	}
	if (rc != TFS_OK)
		return rc;
	for (size_t a = 0; a < tfs_object_attr_count(obj); a++) {
		const tfs_attr *at = tfs_object_attr(obj, a);
		if (!tfs_object_attr_encrypted(obj, at))
			continue;
		size_t ct_len, pt_len = 0;
		const uint8_t *ct = tfs_attr_bytes(at, &ct_len);
		uint8_t *pt = NULL;
		tfs_layout l = TFS_LAYOUT_NONE;
		rc = tfs_token_key_decrypt(m->any, &pt, &pt_len, &l, ct, ct_len, &e);
		tfs_secure_free(pt, pt_len);
		if (rc == TFS_E_NOMEM || rc == TFS_E_CRYPTO) {
			*err = e;
			break;
		}
		if (rc != TFS_OK) {
			const char *n = tfs_name(TFS_NS_CKA, tfs_attr_type(at));
			tfs_error_set(&e, TFS_E_DAMAGED, tfs_attr_value_offset(at), "%s does not decrypt "
			              "with the token key (damaged or tampered); rewriting must not turn "
			              "it into valid-looking ciphertext", n ? n : "value");
			tfs_error_where(&e, "%s", tfs_token_object_path(m->tok, i));
			problem(m, &e);
			rc = TFS_OK;
			continue;
		}
		if (!m->o->rotate && (m->o->values_to == TFS_LAYOUT_NONE || l == m->o->values_to))
			m->res->values_already++;
		else {
			m->res->values_reencrypted++;
			m->plan[i].rewrite = true;
		}
	}
	tfs_object_free(obj);
	/* A file that cannot be rewritten refuses now, not half-way. */
	if (rc == TFS_OK && m->plan[i].rewrite && !m->o->dry_run &&
	    access(tfs_token_object_path(m->tok, i), R_OK | W_OK) != 0) {
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "cannot be rewritten: %s; nothing was "
		              "written", strerror(errno));
		rc = tfs_error_where(err, "%s", tfs_token_object_path(m->tok, i));
	}
	return rc;
}

static int check_token(change_run *m, tfs_error *err)
{
	for (size_t i = 0; i < m->res->objects; i++) {
		int rc = check_object(m, i, err);
		if (rc != TFS_OK)
			return rc;
		progress(m, "checking", i + 1);
		m->res->objects_rewritten += m->plan[i].rewrite;
	}
	if (m->res->problems > 0) {
		tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET, "%zu value%s or object%s cannot be "
		              "read; nothing was written", m->res->problems, m->res->problems == 1 ? "" : "s",
		              m->res->problems == 1 ? "" : "s");
		return tfs_error_where(err, "%s", tfs_token_path(m->tok));
	}
	return TFS_OK;
}

/* Reads a file in the transaction, checks it is what pass 1 checked (when
 * want is given), and parses it twice: the object to change and the one to
 * check the change against. */
static int read_same(tfs_txn *txn, const char *name, const uint8_t *want, tfs_object **before,
                     tfs_object **obj, tfs_error *err)
{
	uint8_t *data, md[TFS_SHA256_LEN];
	size_t size;
	int rc = tfs_txn_read(txn, name, &data, &size, err);
	if (rc != TFS_OK)
		return rc;
	if (want != NULL && (rc = tfs_sha256(md, data, size, err)) == TFS_OK &&
	    CRYPTO_memcmp(md, want, TFS_SHA256_LEN) != 0)
		rc = tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "changed between the check and the "
		                   "write (is SoftHSM running?); nothing was written");
	if (rc == TFS_OK && before != NULL)
		rc = tfs_object_parse(before, data, size, err);
	if (rc == TFS_OK)
		rc = tfs_object_parse(obj, data, size, err);
	free(data);
	return rc;
}

typedef struct staged_check {
	const tfs_object *before;
	const tfs_token_key *key, *to; /* the token key before and after */
	tfs_layout layout;             /* NONE: each value's own */
} staged_check;

static int check_staged(void *ctx, const uint8_t *data, size_t size, tfs_error *err)
{
	const staged_check *c = ctx;
	return tfs_object_check_reencrypted(c->before, c->key, data, size, tfs_token_key_bytes(c->to),
	                                    c->layout, err);
}

static int rewrite_object(change_run *m, tfs_txn *txn, size_t i, tfs_error *err)
{
	const char *name = tfs_token_object_file(m->tok, i);
	tfs_object *before = NULL, *obj = NULL;
	int rc = read_same(txn, name, m->plan[i].sha256, &before, &obj, err);
	if (rc == TFS_OK)
		rc = tfs_object_reencrypt_values(obj, m->any, tfs_token_key_bytes(m->to), m->o->values_to,
		                                 !m->o->rotate, err);
	staged_check c = {before, m->any, m->to, m->o->values_to};
	if (rc == TFS_OK)
		rc = tfs_txn_stage_object(txn, name, obj, check_staged, &c, err);
	tfs_object_free(obj);
	tfs_object_free(before);
	if (rc != TFS_OK && err->where[0] == '\0')
		tfs_error_where(err, "%s", tfs_token_object_path(m->tok, i));
	return rc;
}

/* One copy of a re-wrapped blob: it unwraps with the PIN it was wrapped
 * with to the token key afterwards, in its layout. */
static int check_blob(const change_run *m, const tfs_attr *a, tfs_pin_role r, tfs_error *err)
{
	size_t blen = 0;
	const uint8_t *blob = tfs_attr_kind(a) == TFS_KIND_BYTES ? tfs_attr_bytes(a, &blen) : NULL;
	uint8_t key[TFS_KEY_LEN];
	tfs_layout l;
	int rc = TFS_OK;
	if (blob == NULL ||
	    tfs_pinblob_unwrap(key, &l, blob, blen, m->wrap_pin[r], m->wrap_len[r], err) != TFS_OK ||
	    l != m->wrap_layout[r] || CRYPTO_memcmp(key, tfs_token_key_bytes(m->to), TFS_KEY_LEN) != 0)
		rc = tfs_error_set(err, TFS_E_DAMAGED, tfs_attr_offset(a), "the re-wrapped %s PIN blob "
		                   "does not unwrap to the token key; nothing was written", role_name(r));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* The new token.object must hold, in every copy of each re-wrapped blob, a
 * blob that unwraps with the PIN it was wrapped with to the token key
 * afterwards, in its layout; and the flags and label asked for. */
static int check_metadata(void *ctx, const uint8_t *data, size_t size, tfs_error *err)
{
	const change_run *m = ctx;
	tfs_object *meta;
	int rc = tfs_object_parse(&meta, data, size, err);
	bool seen[2] = {false, false}, flags_ok = (m->o->flags_clear | m->o->flags_set) == 0;
	for (size_t i = 0; rc == TFS_OK && i < tfs_object_attr_count(meta); i++) {
		const tfs_attr *a = tfs_object_attr(meta, i);
		uint64_t t = tfs_attr_type(a);
		tfs_pin_role r = t == TFS_CKA_OS_SOPIN ? TFS_PIN_SO : TFS_PIN_USER;
		if ((t == TFS_CKA_OS_SOPIN || t == TFS_CKA_OS_USERPIN) && m->res->blob[r] == TFS_BLOB_REWRAPPED) {
			seen[r] = true;
			rc = check_blob(m, a, r, err);
		} else if (t == TFS_CKA_OS_TOKENFLAGS && tfs_attr_kind(a) == TFS_KIND_ULONG) {
			uint64_t f = tfs_attr_ulong(a);
			flags_ok = (f & m->o->flags_clear) == 0 && (f & m->o->flags_set) == m->o->flags_set;
		}
	}
	for (int r = 0; rc == TFS_OK && r < 2; r++)
		if (m->res->blob[r] == TFS_BLOB_REWRAPPED && !seen[r])
			rc = tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET, "the re-wrapped %s PIN blob "
			                   "is missing; nothing was written", role_name((tfs_pin_role)r));
	if (rc == TFS_OK && !flags_ok)
		rc = tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET, "token.object has no token flags "
		                   "(CKA_OS_TOKENFLAGS) to update as SoftHSM would; nothing was written");
	const tfs_attr *l = rc == TFS_OK && m->res->label_set
	                    ? tfs_object_find(meta, TFS_CKA_OS_TOKENLABEL) : NULL;
	size_t llen = 0;
	if (l != NULL && (tfs_attr_kind(l) != TFS_KIND_BYTES ||
	                  memcmp(tfs_attr_bytes(l, &llen), m->o->label, 32) != 0 || llen != 32))
		rc = tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET, "the new label was not applied");
	tfs_object_free(meta);
	return rc;
}

static int rewrite_metadata(change_run *m, tfs_txn *txn, tfs_error *err)
{
	tfs_object *meta = NULL;
	int rc = read_same(txn, "token.object", NULL, NULL, &meta, err);
	for (int r = TFS_PIN_SO; rc == TFS_OK && r <= TFS_PIN_USER; r++) {
		uint8_t blob[TFS_PIN_BLOB_LEN];
		if (m->res->blob[r] != TFS_BLOB_REWRAPPED)
			continue;
		rc = tfs_pinblob_wrap(blob, m->wrap_layout[r], tfs_token_key_bytes(m->to), m->wrap_pin[r],
		                      m->wrap_len[r], err);
		if (rc == TFS_OK)
			rc = tfs_metadata_set_pin_blob(meta, (tfs_pin_role)r, blob, err);
	}
	for (size_t i = 0; rc == TFS_OK && i < tfs_object_attr_count(meta); i++) {
		const tfs_attr *a = tfs_object_attr(meta, i);
		if (tfs_attr_type(a) == TFS_CKA_OS_TOKENFLAGS && tfs_attr_kind(a) == TFS_KIND_ULONG)
			rc = tfs_object_set_ulong(meta, i, (tfs_attr_ulong(a) & ~m->o->flags_clear) |
			                                       m->o->flags_set, err);
	}
	if (rc == TFS_OK && m->res->label_set)
		rc = tfs_object_put_bytes(meta, TFS_CKA_OS_TOKENLABEL, m->o->label, 32, err);
	if (rc == TFS_OK)
		rc = tfs_txn_stage_object(txn, "token.object", meta, check_metadata, m, err);
	tfs_object_free(meta);
	return rc;
}

static int write_token(change_run *m, tfs_txn *txn, tfs_error *err)
{
	size_t done = 0;
	/* No plan: the change touches no object (a new PIN, a label). */
	for (size_t i = 0; m->plan != NULL && i < m->res->objects; i++) {
		if (!m->plan[i].rewrite)
			continue;
		int rc = rewrite_object(m, txn, i, err);
		if (rc != TFS_OK)
			return rc;
		progress(m, "writing", ++done);
	}
	if (m->metadata) {
		int rc = rewrite_metadata(m, txn, err);
		if (rc != TFS_OK)
			return rc;
	}
	return tfs_txn_commit(txn, &m->res->txn, err);
}

/* Whether the reader found an interrupted transaction's journal. A real run
 * has recovered it by then; a dry run writes nothing, recovery included,
 * and only says so. */
static bool pending(const tfs_store *store)
{
	for (size_t i = 0; i < tfs_store_finding_count(store); i++) {
		const char *code = tfs_finding_code(tfs_store_finding(store, i));
		if (strcmp(code, "token.txn-pending") == 0 || strcmp(code, "token.txn-journal-damaged") == 0)
			return true;
	}
	return false;
}

static int open_token(tfs_store **store, const tfs_token **tok, const char *dir,
                      unsigned lock_ms, tfs_error *err)
{
	tfs_open_options oo = {.lock_timeout_ms = lock_ms, .strict_io = true};
	int rc = tfs_store_open(store, dir, &oo, err);
	if (rc != TFS_OK)
		return rc;
	if (tfs_store_kind(*store) != TFS_PATH_TOKEN) {
		tfs_store_free(*store);
		*store = NULL;
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "not a token directory");
		return tfs_error_where(err, "%s", dir);
	}
	if (tfs_token_metadata(tfs_store_token(*store, 0)) == NULL) {
		/* Read it again for the reason: an I/O error is not damage. */
		uint8_t *data = NULL;
		size_t size = 0;
		tfs_object *meta = NULL;
		rc = tfs_token_read_metadata(&data, &size, tfs_store_token(*store, 0), err);
		if (rc == TFS_OK && (rc = tfs_object_parse_owned(&meta, data, size, err)) != TFS_OK)
			tfs_error_where(err, "%s/token.object", dir);
		if (rc == TFS_OK) {
			/* Unreadable a moment ago, readable now: a passing I/O
			 * error or a writer at work. Either way, not now. */
			tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "could not be read a moment ago (an I/O "
			              "error or another writer); nothing was written");
			tfs_error_where(err, "%s/token.object", dir);
			rc = TFS_E_IO;
		} else if (rc == TFS_E_FORMAT || rc == TFS_E_TRUNCATED || rc == TFS_E_EMPTY ||
		           rc == TFS_E_LIMIT) {
			char what[sizeof(err->what)];
			snprintf(what, sizeof(what), "%s", err->what);
			tfs_error_set(err, TFS_E_DAMAGED, err->offset, "token.object cannot be used: %s", what);
			rc = TFS_E_DAMAGED;
		}
		tfs_object_free(meta);
		tfs_store_free(*store);
		*store = NULL;
		return rc;
	}
	*tok = tfs_store_token(*store, 0);
	return TFS_OK;
}

/* The PIN that opens a role's blob afterwards: its new PIN, or the one given. */
static const uint8_t *pin_after(const tfs_change *c, tfs_pin_role r, size_t *len)
{
	*len = c->new_pin[r] != NULL ? c->new_pin_len[r] : c->pin_len[r];
	return c->new_pin[r] != NULL ? c->new_pin[r] : c->pin[r];
}

int tfs_change_token(tfs_change_result *res, const char *token_dir, const tfs_change *o,
                     tfs_error *err)
{
	memset(res, 0, sizeof(*res));
	tfs_error_clear(err);
	change_run m = {.o = o, .res = res};
	tfs_txn *txn = NULL;
	tfs_store *store = NULL;
	tfs_txn_options to = {.lock_timeout_ms = o->lock_timeout_ms};
	tfs_seal_state seal = {0};
	int rc = TFS_OK;
	/* The seal is checked and remade while the transaction holds the token
	 * directory's flock: another tokenfs writer that changed the token
	 * between this commit and the re-seal would otherwise have its change
	 * sealed over with this run's view of the token, and a seal reported
	 * remade would not verify. The seal reads token.lock itself, so the
	 * transaction lets go of that one lock around each seal step. */
	if (!o->dry_run)
		rc = tfs_txn_begin(&txn, token_dir, &to, err); /* recovers first */
	if (rc == TFS_OK && !o->dry_run) {
		tfs_txn_release_token_lock(txn);
		rc = tfs_seal_step_before(&seal, token_dir, o->lock_timeout_ms, o->pin[TFS_PIN_USER],
		                          o->pin_len[TFS_PIN_USER], o->pin[TFS_PIN_SO],
		                          o->pin_len[TFS_PIN_SO], err);
		if (rc == TFS_OK)
			rc = tfs_txn_retake_token_lock(txn, err);
	}
	if (rc == TFS_OK)
		rc = open_token(&store, &m.tok, token_dir, o->lock_timeout_ms, err);
	if (rc == TFS_OK)
		res->pending = pending(store);
	if (rc == TFS_OK && o->need_key)
		rc = unlock(&m, err);
	if (rc == TFS_OK)
		rc = decide_metadata(&m, err);
	/* Objects change only under a new key or layout: a PIN reset must not
	 * be refused over an object it never touches. */
	if (rc == TFS_OK)
		res->objects = tfs_token_object_count(m.tok);
	if (rc == TFS_OK && (o->rotate || o->values_to != TFS_LAYOUT_NONE)) {
		m.plan = calloc(res->objects ? res->objects : 1, sizeof(*m.plan));
		rc = m.plan == NULL ? tfs_nomem(err) : check_token(&m, err);
	}
	res->key_rotated = o->rotate && rc == TFS_OK;
	bool work = res->objects_rewritten > 0 || m.metadata;
	if (rc == TFS_OK && work && !o->dry_run)
		rc = write_token(&m, txn, err);
	if (txn != NULL && res->txn.recovered == TFS_RECOVERY_NONE)
		res->txn.recovered = tfs_txn_recovered(txn);
	size_t ul, sl;
	const uint8_t *up = pin_after(o, TFS_PIN_USER, &ul), *sp = pin_after(o, TFS_PIN_SO, &sl);
	tfs_txn_release_token_lock(txn); /* the transaction has ended; the flock stays */
	if (rc == TFS_OK && !o->dry_run &&
	    tfs_seal_step_after(&seal, &res->seal, work, token_dir, o->lock_timeout_ms, up, ul, sp, sl,
	                        err) != TFS_OK) {
		/* The change is done and must be reported as done; the seal that
		 * held before now fails, and the user is told why. */
		res->seal = TFS_SEAL_OUTCOME_FAILED;
		if (o->problem != NULL)
			o->problem(o->ctx, err);
	}
	tfs_txn_free(txn); /* releases the token directory, after the re-seal */
	if (rc != TFS_OK && !res->txn.committed && !o->dry_run) {
		res->pin_set[0] = res->pin_set[1] = res->key_rotated = res->label_set = false;
		res->objects_rewritten = res->values_reencrypted = 0;
	}
	tfs_store_free(store);
	for (int r = 0; r < 2; r++)
		tfs_token_key_free(m.key[r]);
	tfs_token_key_free(m.fresh);
	free(m.plan);
	return rc;
}
