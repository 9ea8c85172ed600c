/*
 * Reading beside a writer (settle.c), on a copy of the real fixture token:
 * a file truncated and written moments later is read whole; a cut that
 * stays is reported as a cut, after the settle time when fresh and at once
 * when at rest; the wait never exceeds --lock-timeout; an object unlinked
 * after the listing is TFS_E_NOTFOUND; token.object caught empty during a
 * login is read whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tokenfs/store.h"

typedef struct fixture {
	char root[64];    /* the temporary directory */
	char dir[128];    /* the copied demo token */
	char obj[4400];   /* one of its object files */
	uint8_t *full;    /* that file's bytes */
	size_t full_len;
} fixture;

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	if (n > 0)
		assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/tfs-settle-XXXXXX", cmd[9000];
	assert_non_null(mkdtemp(tmpl));
	/* The demo token: the one whose token.object names it. */
	snprintf(cmd, sizeof(cmd), "d=$(grep -l demo '%s'/store/*/token.object | head -n1) && "
	         "cp -a \"$(dirname \"$d\")\" '%s/tok'", getenv("TFS_TESTDATA"), tmpl);
	assert_int_equal(system(cmd), 0);
	snprintf(f->root, sizeof(f->root), "%s", tmpl);
	snprintf(f->dir, sizeof(f->dir), "%s/tok", tmpl);
	DIR *d = opendir(f->dir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".object") && strcmp(e->d_name, "token.object") != 0) {
			snprintf(f->obj, sizeof(f->obj), "%s/%s", f->dir, e->d_name);
			break;
		}
	closedir(d);
	f->full = slurp(f->obj, &f->full_len);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	(void)system(cmd);
	free(f->full);
	free(f);
	return 0;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Loads the object `path` of the token at dir; returns its status. */
static int load(const char *dir, const char *path, unsigned lock_ms, size_t *nattrs)
{
	tfs_open_options oo = {.lock_timeout_ms = lock_ms};
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, dir, &oo, &err), TFS_OK);
	const tfs_token *tok = tfs_store_token(s, 0);
	int rc = TFS_E_NOTFOUND;
	for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
		if (strcmp(tfs_token_object_path(tok, i), path) != 0)
			continue;
		tfs_object *o = NULL;
		rc = tfs_token_load_object(&o, tok, i, &err);
		*nattrs = o ? tfs_object_attr_count(o) : 0;
		tfs_object_free(o);
	}
	tfs_store_free(s);
	return rc;
}

/* SoftHSM 2.6.1: truncate, unlock, and the write lands a moment later. */
static void test_write_in_flux_is_read_whole(void **state)
{
	fixture *f = *state;
	put(f->obj, NULL, 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec ts = {0, 60 * 1000000L};
		nanosleep(&ts, NULL);
		put(f->obj, f->full, f->full_len);
		_exit(0);
	}
	size_t n = 0;
	assert_int_equal(load(f->dir, f->obj, 5000, &n), TFS_OK);
	assert_true(n > 5);
	int st;
	waitpid(pid, &st, 0);
	/* Half of it written, the rest a moment later. */
	put(f->obj, f->full, f->full_len / 2);
	if ((pid = fork()) == 0) {
		struct timespec ts = {0, 40 * 1000000L};
		nanosleep(&ts, NULL);
		put(f->obj, f->full, f->full_len);
		_exit(0);
	}
	assert_int_equal(load(f->dir, f->obj, 5000, &n), TFS_OK);
	assert_true(n > 5);
	waitpid(pid, &st, 0);
}

static void test_stable_cut_is_a_cut(void **state)
{
	fixture *f = *state;
	size_t n;
	struct timespec t0;
	/* Cut inside the last field, so that it cannot parse. */
	put(f->obj, f->full, f->full_len - 3);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(load(f->dir, f->obj, 5000, &n), TFS_E_TRUNCATED);
	long fresh = ms_since(&t0);
	assert_true(fresh >= 250); /* it had to stay a quarter second */
	assert_true(fresh < 2500);
	/* At rest (unchanged for a minute): at once. */
	struct timeval old[2];
	gettimeofday(&old[0], NULL);
	old[0].tv_sec -= 60;
	old[1] = old[0];
	assert_int_equal(utimes(f->obj, old), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(load(f->dir, f->obj, 5000, &n), TFS_E_TRUNCATED);
	assert_true(ms_since(&t0) < 200);
	/* Empty and at rest: an empty object, reported as such. */
	put(f->obj, NULL, 0);
	assert_int_equal(utimes(f->obj, old), 0);
	assert_int_equal(load(f->dir, f->obj, 5000, &n), TFS_E_EMPTY);
	put(f->obj, f->full, f->full_len);
}

/* The wait comes out of --lock-timeout: never longer. */
static void test_wait_is_bounded(void **state)
{
	fixture *f = *state;
	size_t n;
	struct timespec t0;
	put(f->obj, f->full, f->full_len - 3);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(load(f->dir, f->obj, 60, &n), TFS_E_TRUNCATED);
	assert_true(ms_since(&t0) < 200);
	put(f->obj, f->full, f->full_len);
}

static void test_vanished_object_is_gone(void **state)
{
	fixture *f = *state;
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, f->dir, NULL, &err), TFS_OK);
	const tfs_token *tok = tfs_store_token(s, 0);
	size_t i = 0;
	while (strcmp(tfs_token_object_path(tok, i), f->obj) != 0)
		i++;
	assert_int_equal(unlink(f->obj), 0);
	tfs_object *o;
	assert_int_equal(tfs_token_load_object(&o, tok, i, &err), TFS_E_NOTFOUND);
	uint8_t *data;
	size_t size;
	assert_int_equal(tfs_token_read_object(&data, &size, tok, i, &err), TFS_E_NOTFOUND);
	tfs_store_free(s);
	put(f->obj, f->full, f->full_len);
}

/* A login rewrites token.object: caught empty, it is read whole. */
static void test_token_object_in_flux(void **state)
{
	fixture *f = *state;
	char path[4200];
	snprintf(path, sizeof(path), "%s/token.object", f->dir);
	size_t len;
	uint8_t *meta = slurp(path, &len);
	put(path, NULL, 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
		put(path, meta, len);
		_exit(0);
	}
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, f->dir, NULL, &err), TFS_OK);
	assert_string_equal(tfs_token_label(tfs_store_token(s, 0)), "demo");
	for (size_t i = 0; i < tfs_store_finding_count(s); i++)
		assert_int_equal(tfs_finding_severity(tfs_store_finding(s, i)), TFS_SEV_INFO);
	tfs_store_free(s);
	int st;
	waitpid(pid, &st, 0);
	free(meta);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_in_flux_is_read_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stable_cut_is_a_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanished_object_is_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_object_in_flux, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
