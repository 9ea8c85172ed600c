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
 * On one CPU (the process's affinity, not the machine's count), for one
 * object, or when the thread cannot start, each
 * tfs_loader_next loads synchronously: same results, no thread.
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

typedef struct slot {
	tfs_object *obj;
	int rc;
	tfs_error err;
	size_t bytes;
} slot;

struct tfs_loader {
	const tfs_token *tok;
	size_t *which; /* object indices, in the order they are wanted */
	size_t n;
	size_t next;   /* the caller's position */
	bool threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t produced; /* slots [next, produced) are filled (guarded by mu) */
	size_t ahead_bytes;
	size_t wanted;        /* the caller sleeps until produced >= wanted */
	bool reader_waiting, caller_waiting;
	bool stop;
	slot *ring; /* LOADER_DEPTH slots, only with the thread (a slot is 1 KiB:
	             * verify makes a loader per token, 200,000 tokens in a test) */
};

static void load(slot *s, const tfs_token *tok, size_t i)
{
	tfs_error_clear(&s->err);
	s->obj = NULL;
	s->rc = tfs_token_load_object(&s->obj, tok, i, &s->err);
	s->bytes = s->obj != NULL ? s->obj->size : 0;
}

static void *reader(void *arg)
{
	tfs_loader *ld = arg;
	pthread_mutex_lock(&ld->mu);
	for (size_t k = 0; k < ld->n; k++) {
		/* Room: a free slot, and the bytes ahead under the cap unless
		 * the caller is waiting for this very object. */
		while (!ld->stop && (k - ld->next >= LOADER_DEPTH ||
		                     (k > ld->next && ld->ahead_bytes >= LOADER_AHEAD_BYTES))) {
			/* A caller waiting for a batch gets what there is: no
			 * more comes until it takes some. */
			if (ld->caller_waiting)
				pthread_cond_broadcast(&ld->cv);
			ld->reader_waiting = true;
			pthread_cond_wait(&ld->cv, &ld->mu);
		}
		ld->reader_waiting = false;
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

int tfs_loader_new(tfs_loader **out, const tfs_token *tok, const size_t *which, size_t n,
                   tfs_error *err)
{
	tfs_error_clear(err);
	*out = NULL;
	tfs_loader *ld = calloc(1, sizeof(*ld));
	if (ld == NULL)
		return tfs_nomem(err);
	ld->tok = tok;
	ld->n = n;
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

int tfs_loader_next(tfs_loader *ld, size_t *index, tfs_object **out, tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	if (ld->next >= ld->n)
		return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET, "no more objects to load");
	size_t k = ld->next;
	*index = ld->which[k];
	slot s;
	if (!ld->threaded) {
		load(&s, ld->tok, ld->which[k]);
		ld->next++;
	} else {
		pthread_mutex_lock(&ld->mu);
		if (ld->produced <= k) {
			ld->wanted = k + LOADER_BATCH;
			ld->caller_waiting = true;
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += (long)LOADER_PATIENCE_MS * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			/* Once the deadline passed, each later load ends the wait
			 * (wanted 0), and the wait is untimed: a past deadline
			 * returns at once, and object k may itself be waiting for a
			 * lock. */
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
		s = ld->ring[k % LOADER_DEPTH];
		ld->ring[k % LOADER_DEPTH].obj = NULL;
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
	return s.rc;
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
		/* What was loaded and never taken. */
		for (size_t k = ld->next; k < ld->produced; k++)
			tfs_object_free(ld->ring[k % LOADER_DEPTH].obj);
		pthread_cond_destroy(&ld->cv);
		pthread_mutex_destroy(&ld->mu);
	}
	free(ld->ring);
	free(ld->which);
	free(ld);
}
