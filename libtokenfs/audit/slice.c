/*
 * The parallel walk over a candidate space. The space is one sequence of
 * indices; each thread claims its next slice, `chunk` consecutive indices,
 * with one atomic add on a shared cursor. No index is claimed twice and none
 * is skipped, threads that run slower (a shared machine) simply claim fewer
 * slices, and the order of the spaces is kept to within a few slices.
 *
 * The calling thread does no guessing: it waits on a condition variable,
 * waking ten times a second to report progress and to stop the workers at
 * the deadline or when the caller's cancel flag was set (by a SIGINT
 * handler, which runs on this thread because the workers block signals).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "audit/audit_internal.h"
#include "core/error_internal.h"

/* One cache line per counter, so the threads do not share one. */
typedef struct {
	_Atomic uint64_t done;
	char pad[64 - sizeof(uint64_t)];
} counter;

typedef struct shared {
	audit_run *r;
	_Atomic uint64_t cursor;
	atomic_bool stop, stopped_by_fn;
	counter *done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned running;
} shared;

typedef struct worker {
	shared *sh;
	unsigned id;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	shared *sh = w->sh;
	audit_run *r = sh->r;
	void *ctx = r->thread_ctx[w->id];
	uint64_t done = 0;
	unsigned lanes = r->lanes > 1 ? r->lanes : 1;
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		uint64_t start = atomic_fetch_add(&sh->cursor, r->chunk);
		if (start >= r->total)
			break;
		uint64_t end = r->total - start < r->chunk ? r->total : start + r->chunk;
		for (uint64_t i = start; i < end; i += lanes) {
			if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
				break;
			unsigned n = end - i < lanes ? (unsigned)(end - i) : lanes;
			bool halt = r->fn(ctx, i, n);
			done += n;
			atomic_store_explicit(&sh->done[w->id].done, done, memory_order_relaxed);
			if (halt) {
				atomic_store(&sh->stopped_by_fn, true);
				atomic_store(&sh->stop, true);
				break;
			}
		}
	}
	pthread_mutex_lock(&sh->mu);
	sh->running--;
	pthread_cond_signal(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	return NULL;
}

static uint64_t total_done(const shared *sh, unsigned n)
{
	uint64_t d = 0;
	for (unsigned i = 0; i < n; i++)
		d += atomic_load_explicit(&sh->done[i].done, memory_order_relaxed);
	return d;
}

int audit_run_threads(audit_run *r, tfs_error *err)
{
	r->done = 0;
	r->seconds = 0;
	r->stopped_by_fn = r->timed_out = r->cancelled = false;
	if (r->threads == 0 || r->chunk == 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "no threads or empty slices");

	shared sh = {.r = r};
	atomic_init(&sh.cursor, 0);
	atomic_init(&sh.stop, false);
	atomic_init(&sh.stopped_by_fn, false);
	sh.done = aligned_alloc(64, r->threads * sizeof(counter));
	worker *ws = calloc(r->threads, sizeof(*ws));
	pthread_t *tids = calloc(r->threads, sizeof(*tids));
	if (sh.done == NULL || ws == NULL || tids == NULL) {
		free(sh.done);
		free(ws);
		free(tids);
		return tfs_nomem(err);
	}
	for (unsigned i = 0; i < r->threads; i++)
		atomic_init(&sh.done[i].done, 0);
	pthread_mutex_init(&sh.mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sh.cv, &ca);
	pthread_condattr_destroy(&ca);

	/* Workers inherit a mask that blocks every signal: SIGINT then reaches
	 * the calling thread, whose handler sets *cancel. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	double start = audit_now();
	unsigned started = 0;
	int rc = TFS_OK;
	for (; started < r->threads; started++) {
		ws[started] = (worker){.sh = &sh, .id = started};
		pthread_mutex_lock(&sh.mu);
		sh.running++;
		pthread_mutex_unlock(&sh.mu);
		if (pthread_create(&tids[started], NULL, work, &ws[started]) != 0) {
			pthread_mutex_lock(&sh.mu);
			sh.running--;
			pthread_mutex_unlock(&sh.mu);
			rc = tfs_error_set(err, TFS_E_NOMEM, TFS_NO_OFFSET,
			                   "could not start thread %u of %u", started + 1, r->threads);
			atomic_store(&sh.stop, true);
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&sh.mu);
	while (sh.running > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&sh.cv, &sh.mu, &ts);
		if (sh.running == 0)
			break;
		pthread_mutex_unlock(&sh.mu);
		double el = audit_now() - start;
		if (r->cancel != NULL && *r->cancel && !atomic_load(&sh.stop)) {
			r->cancelled = true;
			atomic_store(&sh.stop, true);
		}
		if (r->max_seconds > 0 && el >= r->max_seconds && !atomic_load(&sh.stop)) {
			r->timed_out = true;
			atomic_store(&sh.stop, true);
		}
		if (r->progress != NULL) {
			tfs_audit_progress p = {.done = total_done(&sh, started), .total = r->total,
			                        .seconds = el};
			p.rate = el > 0 ? (double)p.done / el : 0;
			r->progress(r->ctx, &p);
		}
		pthread_mutex_lock(&sh.mu);
	}
	pthread_mutex_unlock(&sh.mu);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	r->seconds = audit_now() - start;
	r->done = total_done(&sh, started);
	r->stopped_by_fn = atomic_load(&sh.stopped_by_fn);
	if (r->stopped_by_fn)
		r->timed_out = r->cancelled = false;
	pthread_cond_destroy(&sh.cv);
	pthread_mutex_destroy(&sh.mu);
	free(sh.done);
	free(ws);
	free(tids);
	return rc;
}
