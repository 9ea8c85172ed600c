/*
 * The read-ahead loader gives, object by object and in the order asked,
 * exactly what tfs_token_load_object gives: the same objects, the same
 * errors for damaged files, and it can be stopped early without leaks
 * (ASan in `make check`). A store of many small objects, damaged ones and
 * large ones (past the byte cap) runs the reader thread through its waits.
 * A step (tfs_loader_step) runs exactly once per loaded object, on either
 * thread, and its results come back in order; untaken ones are discarded.
 */
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cursor.h"
#include "testutil/testutil.h"
#include "tokenfs/names.h"
#include "tokenfs/object.h"
#include "tokenfs/store.h"

#define NOBJ 300
#define BIG (3u << 20) /* three of these pass the 4 MiB read-ahead cap */

/* Object k: generation k + 1 and one byte string; every 37th is cut
 * short (a parse error); three in a row of every 50 are large, past the
 * read-ahead byte cap together (the reader then waits for the caller, who
 * waits for a batch: that must not deadlock). */
static tfs_fs *image(void)
{
	tfs_fs *fs;
	tfs_error err;
	uint8_t tobj[256];
	size_t tn = tu_token_object(tobj);
	assert_int_equal(tfs_memfs_new(&fs, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/token.object", tobj, tn, 0600, &err), TFS_OK);
	uint8_t *obj = calloc(1, 32 + BIG);
	assert_non_null(obj);
	for (size_t k = 0; k < NOBJ; k++) {
		size_t vlen = k % 50 >= 7 && k % 50 <= 9 ? BIG : 16 + k % 5;
		tfs_put_be64(obj, k + 1);
		tfs_put_be64(obj + 8, 0x11); /* CKA_VALUE */
		tfs_put_be64(obj + 16, 3);
		tfs_put_be64(obj + 24, vlen);
		memset(obj + 32, (int)(k & 0xff), vlen);
		size_t size = 32 + vlen;
		if (k % 37 == 5)
			size -= 3; /* the value runs past the end */
		char p[96];
		snprintf(p, sizeof(p), "s/t1/%08zx-0000-4000-8000-000000000000.object", k);
		assert_int_equal(tfs_memfs_add_file(fs, p, obj, size, 0600, &err), TFS_OK);
	}
	free(obj);
	return fs;
}

/* The image opened as a store, and the index lists the tests take. */
typedef struct fixture {
	tfs_fs *fs;
	tfs_store *s;
	const tfs_token *tok;
	size_t all[NOBJ];    /* every object, in order */
	size_t odd[NOBJ / 2]; /* a selection */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tfs_error err;
	if (f == NULL)
		return -1;
	f->fs = image();
	assert_int_equal(tfs_store_open_fs(&f->s, f->fs, "s", NULL, &err), TFS_OK);
	f->tok = tfs_store_token(f->s, 0);
	for (size_t i = 0; i < NOBJ; i++)
		f->all[i] = i;
	for (size_t i = 0; i < NOBJ / 2; i++)
		f->odd[i] = 2 * i + 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tfs_store_free(f->s);
	tfs_fs_free(f->fs);
	free(f);
	return 0;
}

/* Loads `which` through a loader and through tfs_token_load_object,
 * comparing each result; stops after `take` objects. */
static void compare(const tfs_token *tok, const size_t *which, size_t n, size_t take)
{
	tfs_loader *ld;
	tfs_error err;
	assert_int_equal(tfs_loader_new(&ld, tok, which, n, &err), TFS_OK);
	for (size_t k = 0; k < take; k++) {
		tfs_object *a = NULL, *b = NULL;
		tfs_error ea, eb;
		size_t index = SIZE_MAX;
		int ra = tfs_loader_next(ld, &index, &a, &ea);
		int rb = tfs_token_load_object(&b, tok, which[k], &eb);
		assert_int_equal(index, which[k]);
		assert_int_equal(ra, rb);
		if (rb == TFS_OK) {
			assert_int_equal(tfs_object_generation(a), which[k] + 1);
			assert_int_equal(tfs_object_generation(a), tfs_object_generation(b));
			assert_int_equal(tfs_object_attr_count(a), tfs_object_attr_count(b));
		} else {
			assert_null(a);
			assert_int_equal(which[k] % 37, 5);
			assert_string_equal(ea.what, eb.what);
			assert_string_equal(ea.where, eb.where);
		}
		tfs_object_free(a);
		tfs_object_free(b);
	}
	if (take == n) {
		tfs_object *o = NULL;
		size_t index;
		assert_int_equal(tfs_loader_next(ld, &index, &o, &err), TFS_E_NOTFOUND);
		assert_null(o);
	}
	tfs_loader_free(ld);
}

static void test_loader_matches_direct_loads(void **state)
{
	fixture *f = *state;
	assert_int_equal(tfs_token_object_count(f->tok), NOBJ);
	compare(f->tok, f->all, NOBJ, NOBJ);        /* everything, in order */
	compare(f->tok, f->odd, NOBJ / 2, NOBJ / 2); /* a selection */
	compare(f->tok, f->all, NOBJ, 3);           /* stopped early: the rest is freed */
	compare(f->tok, f->all, NOBJ, 0);           /* never taken */
	compare(f->tok, f->all, 1, 1);              /* one object: no thread */
	compare(f->tok, f->all, 0, 0);              /* none */
}

/* The threads of this process other than the calling one: their ids in
 * tids (up to max); returns how many. */
static size_t other_threads(pid_t *tids, size_t max)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		pid_t t = (pid_t)atol(e->d_name);
		if (t > 0 && t != (pid_t)gettid() && n < max)
			tids[n++] = t;
	}
	closedir(d);
	return n;
}

/* The threads started since `before` was taken (a sanitizer runtime may
 * run threads of its own all along): their ids in tids; returns how many. */
static size_t new_threads(const pid_t *before, size_t nbefore, pid_t *tids, size_t max)
{
	pid_t now[16];
	size_t n = other_threads(now, 16), k = 0;
	for (size_t i = 0; i < n; i++) {
		bool old = false;
		for (size_t j = 0; j < nbefore; j++)
			old = old || now[i] == before[j];
		if (!old && k < max)
			tids[k++] = now[i];
	}
	return k;
}

/* Pinned to one CPU (taskset, a cpuset, a one-core container), the loader
 * loads in the caller's thread: a second thread would only take turns with
 * it. The machine's CPU count says nothing about that. */
static void test_loader_one_cpu_no_thread(void **state)
{
	fixture *f = *state;
	tfs_error err;
	cpu_set_t was, one;
	assert_int_equal(sched_getaffinity(0, sizeof(was), &was), 0);
	if (CPU_COUNT(&was) < 2)
		skip(); /* one CPU already: the first test ran this way */
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &was)) {
			CPU_SET(c, &one);
			break;
		}
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	pid_t before[16], tids[8];
	size_t nbefore = other_threads(before, 16);
	tfs_loader *ld;
	assert_int_equal(tfs_loader_new(&ld, f->tok, f->all, NOBJ, &err), TFS_OK);
	size_t others = new_threads(before, nbefore, tids, 8);
	tfs_loader_free(ld);
	assert_int_equal(sched_setaffinity(0, sizeof(was), &was), 0);
	assert_int_equal(others, 0);
	compare(f->tok, f->all, 20, 20); /* and with two CPUs again */
}

/* The reader thread blocks every signal: SIGINT and a caller's own signals
 * reach the caller's threads, whose handlers (a prompt restoring the
 * terminal, a cancel flag) expect them there. Read from the kernel's view
 * of the reader while it waits for room (300 objects, none taken). Under
 * ASan this cannot tell: its pthread_create interceptor starts every thread
 * with signals blocked; the TSan and plain builds can. */
static void test_loader_reader_blocks_signals(void **state)
{
	fixture *fx = *state;
	tfs_error err;
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	if (CPU_COUNT(&set) < 2)
		skip(); /* no reader thread on one CPU */
	pid_t before[16], tids[8];
	size_t nbefore = other_threads(before, 16);
	tfs_loader *ld;
	assert_int_equal(tfs_loader_new(&ld, fx->tok, fx->all, NOBJ, &err), TFS_OK);
	size_t n = new_threads(before, nbefore, tids, 8);
	assert_int_equal(n, 1);
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", (long)tids[0]);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	unsigned long long blocked = 0;
	bool found = false;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "SigBlk: %llx", &blocked) == 1)
			found = true;
	fclose(f);
	tfs_loader_free(ld);
	assert_true(found);
	for (int sig = 1; sig <= 31; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			assert_true((blocked >> (sig - 1)) & 1u);
}


static void put_file(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, 0600), 0);
	/* At rest (written a minute ago): settling does not re-read it. */
	struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An object that is ready is handed out while the reader waits for a
 * writer's lock on a later one (out of the run's --lock-timeout), as the
 * caller would have had it without the thread: not after the whole wait.
 * A real store on disk, object 1 write-locked by another process. */
static void test_loader_ready_object_not_held_back(void **state)
{
	(void)state;
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	if (CPU_COUNT(&set) < 2)
		skip(); /* no reader thread on one CPU */
	char root[] = "/tmp/tfs-loader-XXXXXX", tokdir[64];
	assert_non_null(mkdtemp(root));
	snprintf(tokdir, sizeof(tokdir), "%s/t1", root);
	assert_int_equal(mkdir(tokdir, 0700), 0);
	uint8_t b[256];
	put_file(tokdir, "token.object", b, tu_token_object(b));
	char names[4][64];
	for (size_t k = 0; k < 4; k++) {
		tfs_put_be64(b, k + 1);
		tfs_put_be64(b + 8, 0x11); /* CKA_VALUE */
		tfs_put_be64(b + 16, 3);
		tfs_put_be64(b + 24, 16);
		memset(b + 32, 0x5a, 16);
		snprintf(names[k], sizeof(names[k]), "%08zx-0000-4000-8000-000000000000.object", k);
		put_file(tokdir, names[k], b, 48);
	}
	struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
	assert_int_equal(utimensat(AT_FDCWD, tokdir, old, 0), 0); /* a listing at rest */
	/* Another process write-locks object 1 (fcntl locks are per process). */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char p[256];
		snprintf(p, sizeof(p), "%s/%s", tokdir, names[1]);
		int fd = open(p, O_RDWR);
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0 || write(fds[1], "L", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	assert_int_equal(read(fds[0], &c, 1), 1);
	tfs_open_options opts = {.lock_timeout_ms = 2000};
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, root, &opts, &err), TFS_OK);
	const tfs_token *tok = tfs_store_token(s, 0);
	assert_int_equal(tfs_token_object_count(tok), 4);
	size_t all[4] = {0, 1, 2, 3}, index;
	tfs_loader *ld;
	double t0 = seconds(); /* the reader starts waiting from here */
	assert_int_equal(tfs_loader_new(&ld, tok, all, 4, &err), TFS_OK);
	tfs_object *o = NULL;
	int rc0 = tfs_loader_next(ld, &index, &o, &err);
	double first = seconds() - t0;
	tfs_object_free(o);
	struct timespec c0, c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	int rc1 = tfs_loader_next(ld, &index, &o, &err); /* the locked one */
	double second = seconds() - t0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	tfs_loader_free(ld);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	tfs_store_free(s);
	for (size_t k = 0; k < 4; k++) {
		char p[sizeof(tokdir) + 256 + 1];
		snprintf(p, sizeof(p), "%s/%s", tokdir, names[k]);
		unlink(p);
	}
	char p[256];
	snprintf(p, sizeof(p), "%s/token.object", tokdir);
	unlink(p);
	rmdir(tokdir);
	rmdir(root);
	assert_int_equal(rc0, TFS_OK);
	assert_true(first < 1.0);            /* not the 2 s lock wait */
	assert_int_equal(rc1, TFS_E_LOCKED); /* ... which object 1 still gets */
	assert_true(second >= 1.9);
	assert_true(cpu < 0.5); /* both threads slept through the wait */
	assert_non_null(strstr(err.what, "write-locked by another process"));
}

/* A step whose result is checkable: the object's generation and the sum of
 * its value's bytes, and which worker made it. It sleeps a little so that
 * the reader gets ahead and shares the work. */
typedef struct step_result {
	uint64_t generation;
	uint64_t sum;
	unsigned worker;
} step_result;

typedef struct step_log {
	atomic_uint runs[NOBJ];
	atomic_uint discarded;
	atomic_uint by_worker[2];
} step_log;

static uint64_t value_sum(const tfs_object *obj)
{
	size_t len = 0;
	const uint8_t *v = tfs_attr_bytes(tfs_object_find(obj, 0x11), &len);
	uint64_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += v[i];
	return sum;
}

static void *step_run(void *ctx, unsigned worker, size_t index, const tfs_object *obj)
{
	step_log *log = ctx;
	assert_true(worker <= 1);
	atomic_fetch_add(&log->runs[index], 1);
	atomic_fetch_add(&log->by_worker[worker], 1);
	step_result *r = malloc(sizeof(*r));
	assert_non_null(r);
	r->generation = tfs_object_generation(obj);
	r->sum = value_sum(obj);
	r->worker = worker;
	struct timespec ts = {0, 100000}; /* 0.1 ms */
	nanosleep(&ts, NULL);
	return r;
}

static void step_discard(void *ctx, void *result, const tfs_object *obj)
{
	step_log *log = ctx;
	assert_non_null(obj);
	assert_int_equal(((step_result *)result)->generation, tfs_object_generation(obj));
	atomic_fetch_add(&log->discarded, 1);
	free(result);
}

/* Takes `take` of the n objects of `which` with their step results. */
static void stepped(const tfs_token *tok, const size_t *which, size_t n, size_t take,
                    step_log *log)
{
	memset(log, 0, sizeof(*log));
	tfs_loader_step step = {.run = step_run, .discard = step_discard, .ctx = log};
	tfs_loader *ld;
	tfs_error err;
	assert_int_equal(tfs_loader_new_with_step(&ld, tok, which, n, &step, &err), TFS_OK);
	for (size_t k = 0; k < take; k++) {
		tfs_object *o = NULL;
		void *res = NULL;
		size_t index = SIZE_MAX;
		int rc = tfs_loader_next_result(ld, &index, &o, &res, &err);
		assert_int_equal(index, which[k]);
		if (which[k] % 37 == 5) { /* damaged: nothing to step */
			assert_int_not_equal(rc, TFS_OK);
			assert_null(res);
			continue;
		}
		assert_int_equal(rc, TFS_OK);
		step_result *r = res;
		assert_non_null(r);
		assert_int_equal(r->generation, which[k] + 1);
		assert_int_equal(r->sum, value_sum(o));
		free(r);
		tfs_object_free(o);
	}
	tfs_loader_free(ld);
	/* Each object stepped once at most, and what was stepped was taken or
	 * discarded: never both, never lost (ASan would see a leak). */
	unsigned total = 0;
	for (size_t i = 0; i < NOBJ; i++) {
		assert_true(atomic_load(&log->runs[i]) <= 1);
		total += atomic_load(&log->runs[i]);
	}
	size_t taken_ok = 0;
	for (size_t k = 0; k < take; k++)
		taken_ok += which[k] % 37 != 5;
	assert_int_equal(total, taken_ok + atomic_load(&log->discarded));
	assert_int_equal(atomic_load(&log->by_worker[0]) + atomic_load(&log->by_worker[1]), total);
}

static void test_loader_step(void **state)
{
	fixture *f = *state;
	const tfs_token *tok = f->tok;
	const size_t *all = f->all, *odd = f->odd;
	tfs_error err;
	step_log *log = calloc(1, sizeof(*log));
	assert_non_null(log);
	stepped(tok, all, NOBJ, NOBJ, log);
	for (size_t i = 0; i < NOBJ; i++)
		assert_int_equal(atomic_load(&log->runs[i]), i % 37 != 5);
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	/* With two CPUs the reader, ahead of a caller that steps, helps. */
	if (CPU_COUNT(&set) >= 2)
		assert_true(atomic_load(&log->by_worker[1]) > 0);
	stepped(tok, odd, NOBJ / 2, NOBJ / 2, log); /* a selection */
	stepped(tok, all, NOBJ, 3, log);            /* stopped early: results discarded */
	stepped(tok, all, NOBJ, 0, log);            /* never taken */
	stepped(tok, all, 1, 1, log);               /* one object: no thread, the caller's */
	assert_int_equal(atomic_load(&log->by_worker[1]), 0);
	tfs_loader_step bad = {.run = NULL};
	tfs_loader *ld = NULL;
	assert_int_equal(tfs_loader_new_with_step(&ld, tok, all, NOBJ, &bad, &err), TFS_E_INVALID);
	assert_null(ld);
	free(log);
}


/* A step that may fail (NULL, as for out of memory) and takes a varying
 * time, against a caller that also takes a varying time and stops at a
 * varying point: every object still comes back in order with its own
 * result or NULL, each is stepped once at most, and every result made is
 * taken or discarded. Seeds vary the timing; TSan and ASan builds run it. */
typedef struct jitter_ctx {
	atomic_uint runs[NOBJ];
	atomic_uint made, discarded;
	unsigned seed;
} jitter_ctx;

static unsigned jitter_hash(unsigned seed, size_t index)
{
	unsigned h = seed * 2654435761u ^ (unsigned)index * 40503u;
	h ^= h >> 13;
	return h * 2246822519u;
}

static void jitter_sleep(unsigned h)
{
	struct timespec ts = {0, (long)(h % 4 == 0 ? (h >> 8) % 300000 : 0)};
	if (ts.tv_nsec > 0)
		nanosleep(&ts, NULL);
}

static void *jitter_run(void *ctx, unsigned worker, size_t index, const tfs_object *obj)
{
	jitter_ctx *c = ctx;
	assert_true(worker <= 1);
	atomic_fetch_add(&c->runs[index], 1);
	unsigned h = jitter_hash(c->seed, index);
	jitter_sleep(h);
	if (h % 7 == 3)
		return NULL; /* out of memory */
	uint64_t *r = malloc(sizeof(*r));
	assert_non_null(r);
	*r = tfs_object_generation(obj);
	atomic_fetch_add(&c->made, 1);
	return r;
}

static void jitter_discard(void *ctx, void *result, const tfs_object *obj)
{
	jitter_ctx *c = ctx;
	assert_int_equal(*(uint64_t *)result, tfs_object_generation(obj));
	atomic_fetch_add(&c->discarded, 1);
	free(result);
}

static void test_loader_step_jitter(void **state)
{
	fixture *f = *state;
	const tfs_token *tok = f->tok;
	const size_t *all = f->all;
	tfs_error err;
	jitter_ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	for (unsigned seed = 1; seed <= 24; seed++) {
		memset(c, 0, sizeof(*c));
		c->seed = seed;
		size_t n = seed % 3 == 0 ? NOBJ : 2 + jitter_hash(seed, 999) % 120;
		size_t take = seed % 4 == 0 ? jitter_hash(seed, 998) % n : n;
		tfs_loader_step step = {.run = jitter_run, .discard = jitter_discard, .ctx = c};
		tfs_loader *ld;
		assert_int_equal(tfs_loader_new_with_step(&ld, tok, all, n, &step, &err), TFS_OK);
		unsigned taken = 0;
		for (size_t k = 0; k < take; k++) {
			tfs_object *o = NULL;
			void *res = NULL;
			size_t index = SIZE_MAX;
			int rc = tfs_loader_next_result(ld, &index, &o, &res, &err);
			assert_int_equal(index, k);
			assert_true((rc == TFS_OK) == (k % 37 != 5));
			if (rc == TFS_OK && jitter_hash(seed, k) % 7 != 3) {
				assert_non_null(res);
				assert_int_equal(*(uint64_t *)res, k + 1);
				taken++;
			} else {
				assert_null(res);
			}
			free(res);
			tfs_object_free(o);
			jitter_sleep(jitter_hash(seed + 100, k));
		}
		tfs_loader_free(ld);
		for (size_t i = 0; i < n; i++) /* taken: stepped exactly once when it loaded */
			if (i < take)
				assert_int_equal(atomic_load(&c->runs[i]), i % 37 != 5);
			else
				assert_true(atomic_load(&c->runs[i]) <= 1);
		assert_int_equal(atomic_load(&c->made), taken + atomic_load(&c->discarded));
	}
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_loader_matches_direct_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_one_cpu_no_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_reader_blocks_signals, setup, teardown),
		cmocka_unit_test(test_loader_ready_object_not_held_back),
		cmocka_unit_test_setup_teardown(test_loader_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_step_jitter, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
