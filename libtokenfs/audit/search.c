/*
 * tfs_audit_search: the candidates of a list of spaces against one PIN
 * blob, on several threads (slice.c), with the fast KDF (fastkdf.c) and the
 * cheapest conclusive check (check.c). A hit of the check is confirmed by
 * the library's own unwrap before it counts, so the fast path can never
 * report a PIN the normal path would refuse.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit/audit_internal.h"
#include "core/error_internal.h"

#define DEFAULT_CHUNK 16u

typedef struct search {
	const tfs_audit_spaces *spaces;
	const uint8_t *blob;
	unsigned rounds;
	pthread_mutex_t mu;
	tfs_audit_result *out; /* found, pin, space, layout: under mu */
	bool calibrating;
} search;

typedef struct tctx {
	search *s;
	audit_checker *check;
	uint64_t *tried_in; /* per space */
	uint8_t pin[2][TFS_AUDIT_PIN_MAX];
	uint8_t mk[2][TFS_KEY_LEN];
} tctx;

/* The full unwrap, then the record; true when this PIN is the one. */
static bool confirm(tctx *t, const uint8_t *pin, size_t len, size_t space)
{
	search *s = t->s;
	uint8_t key[TFS_KEY_LEN];
	tfs_layout layout;
	tfs_error err;
	bool ok = tfs_pinblob_unwrap(key, &layout, s->blob, TFS_PIN_BLOB_LEN, pin, len, &err) ==
	          TFS_OK;
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok)
		return false; /* the 2^-104 chance of CBC padding by accident */
	pthread_mutex_lock(&s->mu);
	if (!s->out->found) {
		s->out->pin = malloc(len > 0 ? len : 1);
		if (s->out->pin != NULL) {
			memcpy(s->out->pin, pin, len);
			s->out->pin_len = len;
			s->out->found = true;
			s->out->space = space;
			s->out->layout = layout;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return true;
}

/* Throw-away candidates of a usual PIN length for the rate sample: the
 * KDF's cost does not depend on them. */
static size_t calibration_pin(uint8_t *pin, uint64_t index)
{
	for (int i = 0; i < 8; i++)
		pin[i] = (uint8_t)(index >> (8 * i));
	return 8;
}

/* Candidates first..first+n-1 (n is 1 or 2: two run through the KDF
 * together, see fastkdf.c). */
static bool try_lanes(void *ctx, uint64_t first, unsigned n)
{
	tctx *t = ctx;
	search *s = t->s;
	size_t len[2] = {0, 0}, space[2] = {0, 0};
	bool ok[2] = {false, false};
	for (unsigned k = 0; k < n; k++) {
		if (s->calibrating)
			ok[k] = (len[k] = calibration_pin(t->pin[k], first + k)) > 0;
		else
			ok[k] = tfs_audit_spaces_candidate(s->spaces, first + k, t->pin[k], &len[k], &space[k]);
	}
	if (n == 2 && ok[0] && ok[1])
		audit_kdf_rounds2(t->mk[0], t->mk[1], t->pin[0], len[0], t->pin[1], len[1], s->blob,
		                  s->rounds);
	else
		for (unsigned k = 0; k < n; k++)
			if (ok[k])
				audit_kdf_rounds(t->mk[k], t->pin[k], len[k], s->blob, s->rounds);
	bool stop = false;
	for (unsigned k = 0; k < n; k++) {
		if (!ok[k])
			continue;
		tfs_layout hit = audit_check(t->check, t->mk[k]);
		if (s->calibrating)
			continue; /* a hit here is ignored */
		t->tried_in[space[k]]++;
		if (hit != TFS_LAYOUT_NONE && confirm(t, t->pin[k], len[k], space[k]))
			stop = true;
	}
	return stop;
}

void tfs_audit_result_clear(tfs_audit_result *r)
{
	if (r == NULL)
		return;
	tfs_secure_free(r->pin, r->pin_len);
	free(r->tried_in);
	memset(r, 0, sizeof(*r));
}

static unsigned cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

int tfs_audit_search(tfs_audit_result *out, const uint8_t *blob, size_t blob_len,
                     const tfs_audit_spaces *sp, const tfs_audit_options *opts, tfs_error *err)
{
	memset(out, 0, sizeof(*out));
	if (blob_len != TFS_PIN_BLOB_LEN)
		return tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		                     "PIN blob is %zu bytes; SoftHSM writes exactly %d", blob_len,
		                     TFS_PIN_BLOB_LEN);
	tfs_audit_options o = opts != NULL ? *opts : (tfs_audit_options){0};
	unsigned threads = o.threads > 0 ? o.threads : cores();
	if (threads > 1024)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "%u threads: at most 1024",
		                     threads);
	out->threads = threads;
	out->rounds = audit_rounds(blob);
	out->nspaces = tfs_audit_space_count(sp);
	out->tried_in = calloc(out->nspaces > 0 ? out->nspaces : 1, sizeof(uint64_t));
	search s = {.spaces = sp, .blob = blob, .rounds = out->rounds, .out = out};
	tctx *t = calloc(threads, sizeof(*t));
	void **ctxs = calloc(threads, sizeof(*ctxs));
	int rc = TFS_OK;
	unsigned made = 0;
	if (out->tried_in == NULL || t == NULL || ctxs == NULL) {
		rc = tfs_nomem(err);
		goto done;
	}
	pthread_mutex_init(&s.mu, NULL);
	for (; made < threads; made++) {
		t[made].s = &s;
		t[made].tried_in = calloc(out->nspaces > 0 ? out->nspaces : 1, sizeof(uint64_t));
		if (t[made].tried_in == NULL) {
			rc = tfs_nomem(err);
			goto stop;
		}
		rc = audit_checker_new(&t[made].check, blob, err);
		if (rc != TFS_OK) {
			free(t[made].tried_in);
			goto stop;
		}
		ctxs[made] = &t[made];
	}

	audit_run run = {.total = tfs_audit_spaces_total(sp), .threads = threads,
	                 .chunk = o.chunk > 0 ? o.chunk : DEFAULT_CHUNK, .thread_ctx = ctxs,
	                 .fn = try_lanes, .lanes = 2, .max_seconds = o.max_seconds, .cancel = o.cancel,
	                 .progress = o.progress, .ctx = o.ctx};
	rc = audit_run_threads(&run, err);
	if (rc != TFS_OK)
		goto stop;
	out->tried = run.done;
	out->seconds = run.seconds;
	out->timed_out = run.timed_out;
	out->cancelled = run.cancelled;
	out->exhausted = !out->found && !run.timed_out && !run.cancelled && run.done == run.total;
	for (unsigned i = 0; i < threads; i++)
		for (size_t k = 0; k < out->nspaces; k++)
			out->tried_in[k] += t[i].tried_in[k];
	out->rate_candidates = run.done;
	out->rate_seconds = run.seconds;

	/* A short run is a poor sample: measure on to min_rate_seconds. */
	double left = o.min_rate_seconds - run.seconds;
	if (!run.cancelled && left > 0) {
		if (o.max_seconds > 0 && left > o.max_seconds - run.seconds)
			left = o.max_seconds - run.seconds;
		if (left > 0) {
			s.calibrating = true;
			audit_run cal = {.total = UINT64_MAX, .threads = threads, .chunk = 16,
			                 .thread_ctx = ctxs, .fn = try_lanes, .lanes = 2, .max_seconds = left,
			                 .cancel = o.cancel};
			rc = audit_run_threads(&cal, err);
			if (rc != TFS_OK)
				goto stop;
			out->rate_candidates += cal.done;
			out->rate_seconds += cal.seconds;
		}
	}
	out->rate = out->rate_seconds > 0 ? (double)out->rate_candidates / out->rate_seconds : 0;

stop:
	for (unsigned i = 0; i < made; i++) {
		audit_checker_free(t[i].check);
		free(t[i].tried_in);
		OPENSSL_cleanse(t[i].pin, sizeof(t[i].pin));
		OPENSSL_cleanse(t[i].mk, sizeof(t[i].mk));
	}
	pthread_mutex_destroy(&s.mu);
done:
	free(t);
	free(ctxs);
	return rc;
}
