/*
 * Loading a token's objects ahead of their consumer, on a second thread.
 *
 * Reading an object file (open, stat, lock, read, close: system time) and
 * parsing it is about a third of a decrypting dump and of verify; the rest
 * (decryption, decoding, output) needs the objects in order. One reader
 * thread runs tfs_token_load_object down the list while the caller works on
 * the objects before, so the two overlap on two cores. The caller sees
 * exactly what tfs_token_load_object would have returned, object by object,
 * in the same order: the library prints nothing, so messages stay in order.
 *
 * Bounded: at most LOADER_DEPTH objects, and at most LOADER_AHEAD_BYTES of
 * file bytes beyond the one the caller waits for, are held ahead (a store of
 * 60 MiB objects holds at most one extra). The reader is the only thread
 * that reads the store while the loader lives (the store's lock and settle
 * budget, s->wait, is not shared with the caller meanwhile).
 *
 * A caller's step (tfs_loader_step: dump decrypts and decodes the values
 * there) is shared between the two threads: once the reader has no room to
 * load more (LOADER_DEPTH objects or the byte cap ahead of the caller), and
 * once it has loaded everything, it runs the step on the newest loaded
 * object nobody has claimed (never the caller's next one); the caller runs
 * it on its next object when that one is still unclaimed, and on the oldest
 * unclaimed later ones while the reader is at its next. Neither waits while
 * there is work, and the split follows whatever each part costs. Objects
 * still come back in order, so messages keep their order.
 *
 * On one CPU (the process's affinity, not the machine's count), for one
 * object, or when a thread cannot start, what the missing thread would do
 * is done synchronously in tfs_loader_next: same results.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error_internal.h"
#include "format/object_internal.h"

#define LOADER_DEPTH 64u
#define LOADER_AHEAD_BYTES (4u << 20)
/* Wake-ups in batches: a futex wait and wake per object cost more than the
 * overlap gains. The reader, once full, resumes when half the ring is free;
 * the caller, once it ran dry, resumes when a batch is ready (or the last). */
#define LOADER_BATCH 16u
/* ...but a caller whose object is ready does not wait longer than this for
 * the rest of its batch: the reader may be waiting for a writer's lock (up
 * to the whole --lock-timeout) on a later object, and what is ready is
 * shown meanwhile, as without the thread. */
#define LOADER_PATIENCE_MS 50u

typedef enum step_state { STEP_NONE, STEP_CLAIMED, STEP_DONE } step_state;

typedef struct slot {
	tfs_object *obj;
	int rc;
	tfs_error err;
	size_t bytes;
	step_state step; /* guarded by mu */
	void *result;    /* the step's, once STEP_DONE */
} slot;

struct tfs_loader {
	const tfs_token *tok;
	size_t *which; /* object indices, in the order they are wanted */
	size_t n;
	size_t next;   /* the caller's position */
	tfs_loader_step step;
	bool has_step;
	bool threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t produced; /* slots [next, produced) are filled (guarded by mu) */
	size_t ahead_bytes;
	size_t wanted;        /* the caller sleeps until produced >= wanted */
	bool reader_waiting, caller_waiting, caller_waits_step;
	bool stop;
	slot *ring; /* LOADER_DEPTH slots, only with the thread (a slot is 1 KiB:
	             * verify makes a loader per token, 200,000 tokens in a test) */
};

static void load(slot *s, const tfs_token *tok, size_t i)
{
	tfs_error_clear(&s->err);
	s->obj = NULL;
	s->result = NULL;
	s->rc = tfs_token_load_object(&s->obj, tok, i, &s->err);
	s->bytes = s->obj != NULL ? s->obj->size : 0;
	s->step = s->rc == TFS_OK ? STEP_NONE : STEP_DONE; /* nothing to step */
}

static void run_step(tfs_loader *ld, slot *s, unsigned worker, size_t i)
{
	if (ld->has_step && s->rc == TFS_OK)
		s->result = ld->step.run(ld->step.ctx, worker, i, s->obj);
}

/*
 * A loaded object nobody has stepped yet, claimed (mu held): the reader
 * takes the newest and the caller the oldest, so the two meet as late as
 * possible (the caller would otherwise find its next object in the
 * reader's hands and wait). Never the caller's next one for the reader.
 */
static bool claim(tfs_loader *ld, bool newest, size_t *k)
{
	if (!ld->has_step)
		return false;
	for (size_t m = ld->next + 1; m < ld->produced; m++) {
		size_t j = newest ? ld->produced - 1 - (m - ld->next - 1) : m;
		if (ld->ring[j % LOADER_DEPTH].step == STEP_NONE) {
			ld->ring[j % LOADER_DEPTH].step = STEP_CLAIMED;
			*k = j;
			return true;
		}
	}
	return false;
}

/* Runs the step on claimed slot k (mu held, released meanwhile). */
static void claimed_step(tfs_loader *ld, size_t k, unsigned worker)
{
	slot *s = &ld->ring[k % LOADER_DEPTH];
	pthread_mutex_unlock(&ld->mu);
	run_step(ld, s, worker, ld->which[k]);
	pthread_mutex_lock(&ld->mu);
	s->step = STEP_DONE;
	if (worker == 1 && ld->caller_waits_step)
		pthread_cond_broadcast(&ld->cv);
}

static void *reader(void *arg)
{
	tfs_loader *ld = arg;
	pthread_mutex_lock(&ld->mu);
	for (size_t k = 0; k < ld->n; k++) {
		for (;;) {
			/* Room: a free slot, and the bytes ahead under the cap
			 * unless the caller is waiting for this very object. */
			bool room = k - ld->next < LOADER_DEPTH &&
			            (k == ld->next || ld->ahead_bytes < LOADER_AHEAD_BYTES);
			size_t j;
			if (ld->stop || room)
				break;
			/* Full: the caller is the slower one; help it. */
			if (claim(ld, true, &j)) {
				claimed_step(ld, j, 1);
				continue;
			}
			/* A caller waiting for a batch gets what there is: no
			 * more comes until it takes some. */
			if (ld->caller_waiting)
				pthread_cond_broadcast(&ld->cv);
			ld->reader_waiting = true;
			pthread_cond_wait(&ld->cv, &ld->mu);
			ld->reader_waiting = false;
		}
		if (ld->stop)
			break;
		pthread_mutex_unlock(&ld->mu);
		slot s;
		load(&s, ld->tok, ld->which[k]);
		pthread_mutex_lock(&ld->mu);
		ld->ring[k % LOADER_DEPTH] = s;
		ld->ahead_bytes += s.bytes;
		ld->produced = k + 1;
		if (ld->caller_waiting && (ld->produced >= ld->wanted || ld->produced == ld->n))
			pthread_cond_broadcast(&ld->cv);
	}
	/* All loaded: help with the step until the caller catches up. */
	size_t j;
	while (!ld->stop && claim(ld, true, &j))
		claimed_step(ld, j, 1);
	pthread_mutex_unlock(&ld->mu);
	return NULL;
}

/* The CPUs this process may run on: under taskset, a cgroup cpuset or a
 * container pinned to one core, _SC_NPROCESSORS_ONLN still counts the
 * machine's, and a second thread would only take turns with the first. */
static long usable_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		return CPU_COUNT(&set);
	return sysconf(_SC_NPROCESSORS_ONLN);
}

static bool worth_a_thread(size_t n)
{
	return n > 1 && usable_cpus() > 1;
}

/* The reader starts with every signal blocked (it inherits the mask it is
 * created with): asynchronous signals (SIGINT, SIGTERM, a caller's SIGALRM)
 * then go to the caller's threads, whose handlers expect them there, as
 * with the audit workers (audit/slice.c). */
static int start_reader(tfs_loader *ld)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&ld->thread, NULL, reader, ld);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int tfs_loader_new_with_step(tfs_loader **out, const tfs_token *tok, const size_t *which,
                             size_t n, const tfs_loader_step *step, tfs_error *err)
{
	tfs_error_clear(err);
	*out = NULL;
	if (step != NULL && step->run == NULL)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "a loader step needs run()");
	tfs_loader *ld = calloc(1, sizeof(*ld));
	if (ld == NULL)
		return tfs_nomem(err);
	ld->tok = tok;
	ld->n = n;
	if (step != NULL) {
		ld->step = *step;
		ld->has_step = true;
	}
	ld->which = malloc((n ? n : 1) * sizeof(*ld->which));
	if (ld->which == NULL) {
		free(ld);
		return tfs_nomem(err);
	}
	if (n > 0)
		memcpy(ld->which, which, n * sizeof(*which));
	pthread_condattr_t ca;
	if (worth_a_thread(n) && (ld->ring = malloc(LOADER_DEPTH * sizeof(*ld->ring))) != NULL &&
	    pthread_mutex_init(&ld->mu, NULL) == 0) {
		/* The caller's deadline is on the monotonic clock. */
		bool cv_ok = false;
		if (pthread_condattr_init(&ca) == 0) {
			cv_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
			        pthread_cond_init(&ld->cv, &ca) == 0;
			pthread_condattr_destroy(&ca);
		}
		if (!cv_ok)
			pthread_mutex_destroy(&ld->mu);
		else if (start_reader(ld) != 0) {
			pthread_cond_destroy(&ld->cv);
			pthread_mutex_destroy(&ld->mu);
		} else
			ld->threaded = true;
	}
	if (!ld->threaded) {
		free(ld->ring);
		ld->ring = NULL;
	}
	*out = ld;
	return TFS_OK;
}

int tfs_loader_new(tfs_loader **out, const tfs_token *tok, const size_t *which, size_t n,
                   tfs_error *err)
{
	return tfs_loader_new_with_step(out, tok, which, n, NULL, err);
}

/* Waits (mu held) until object k is loaded. The caller asks for a batch,
 * unless it has a step to run on each object (a step is worth a wake-up);
 * once LOADER_PATIENCE_MS have passed, each later load ends the wait
 * (wanted 0), and the wait is untimed: a past deadline returns at once, and
 * object k may itself be waiting for a lock. */
static void wait_loaded(tfs_loader *ld, size_t k)
{
	if (ld->produced > k)
		return;
	ld->wanted = k + (ld->has_step ? 1 : LOADER_BATCH);
	ld->caller_waiting = true;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += (long)LOADER_PATIENCE_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	bool timed = true;
	while (ld->produced <= k) {
		if (!timed)
			pthread_cond_wait(&ld->cv, &ld->mu);
		else if (pthread_cond_timedwait(&ld->cv, &ld->mu, &until) == ETIMEDOUT) {
			timed = false;
			ld->wanted = 0;
		}
	}
	ld->caller_waiting = false;
}

/* Object k's step, done by the caller unless the reader has done it. While
 * the reader is at it, the caller steps later objects rather than wait (mu
 * held, released while the caller steps). */
static void step_for_caller(tfs_loader *ld, size_t k)
{
	if (!ld->has_step)
		return; /* verify's loader: no step, and mu is not let go per object */
	slot *s = &ld->ring[k % LOADER_DEPTH];
	if (s->step == STEP_NONE) {
		s->step = STEP_CLAIMED;
		claimed_step(ld, k, 0);
		return;
	}
	size_t j;
	while (s->step == STEP_CLAIMED) {
		if (claim(ld, false, &j)) {
			claimed_step(ld, j, 0);
			continue;
		}
		ld->caller_waits_step = true;
		pthread_cond_wait(&ld->cv, &ld->mu);
		ld->caller_waits_step = false;
	}
}

int tfs_loader_next_result(tfs_loader *ld, size_t *index, tfs_object **out, void **result,
                           tfs_error *err)
{
	*out = NULL;
	if (result != NULL)
		*result = NULL;
	tfs_error_clear(err);
	if (ld->next >= ld->n)
		return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET, "no more objects to load");
	size_t k = ld->next;
	*index = ld->which[k];
	slot s;
	if (!ld->threaded) {
		load(&s, ld->tok, ld->which[k]);
		run_step(ld, &s, 0, ld->which[k]);
		ld->next++;
	} else {
		pthread_mutex_lock(&ld->mu);
		wait_loaded(ld, k);
		step_for_caller(ld, k);
		s = ld->ring[k % LOADER_DEPTH];
		ld->ring[k % LOADER_DEPTH].obj = NULL;
		ld->ring[k % LOADER_DEPTH].result = NULL;
		ld->ahead_bytes -= s.bytes;
		ld->next++;
		/* The reader waits for room: wake it when half the ring and half
		 * the byte cap are free, or when nothing is left ahead. */
		if (ld->reader_waiting &&
		    ((ld->produced - ld->next <= LOADER_DEPTH / 2 &&
		      ld->ahead_bytes < LOADER_AHEAD_BYTES / 2) || ld->produced == ld->next))
			pthread_cond_broadcast(&ld->cv);
		pthread_mutex_unlock(&ld->mu);
	}
	*out = s.obj;
	*err = s.err;
	if (result != NULL)
		*result = s.result;
	else if (s.result != NULL && ld->step.discard != NULL)
		ld->step.discard(ld->step.ctx, s.result, s.obj);
	return s.rc;
}

int tfs_loader_next(tfs_loader *ld, size_t *index, tfs_object **out, tfs_error *err)
{
	return tfs_loader_next_result(ld, index, out, NULL, err);
}

void tfs_loader_free(tfs_loader *ld)
{
	if (ld == NULL)
		return;
	if (ld->threaded) {
		pthread_mutex_lock(&ld->mu);
		ld->stop = true;
		pthread_cond_broadcast(&ld->cv);
		pthread_mutex_unlock(&ld->mu);
		pthread_join(ld->thread, NULL);
		/* What was loaded and never taken (a step the reader had
		 * claimed is done: it finishes before the reader stops). */
		for (size_t k = ld->next; k < ld->produced; k++) {
			slot *s = &ld->ring[k % LOADER_DEPTH];
			if (s->result != NULL && ld->step.discard != NULL)
				ld->step.discard(ld->step.ctx, s->result, s->obj);
			tfs_object_free(s->obj);
		}
		pthread_cond_destroy(&ld->cv);
		pthread_mutex_destroy(&ld->mu);
	}
	free(ld->ring);
	free(ld->which);
	free(ld);
}
