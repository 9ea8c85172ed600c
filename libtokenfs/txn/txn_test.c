/*
 * The write engine in a scratch token directory: the journal format, a
 * transaction's effect (contents, generations, modes, untouched files),
 * abort, and recovery in both directions from states a crash leaves. The
 * crash-at-every-system-call proof is tools/tests/migrate_crash.sh; these
 * tests pin down each state it relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cursor.h"
#include "tokenfs/txn.h"
#include "txn/journal.h"

static char dir[256];

static void put(const char *name, const void *data, size_t n, mode_t mode)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	fchmod(fd, mode);
	close(fd);
}

static uint8_t *get(const char *name, size_t *n)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "rb");
	if (f == NULL)
		return NULL;
	uint8_t *b = malloc(1 << 16);
	*n = fread(b, 1, 1 << 16, f);
	fclose(f);
	return b;
}

static bool exists(const char *name)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

/* A token directory: token.object, generation 7, two objects, lock files. */
static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tfs-txn-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	uint8_t gen[8], obj[8 + 8 + 8 + 1];
	tfs_put_be64(gen, 7);
	put("generation", gen, 8, 0600);
	memset(obj, 0, sizeof(obj));
	tfs_put_be64(obj, 41);            /* generation */
	tfs_put_be64(obj + 8, 0x1);       /* CKA_TOKEN */
	tfs_put_be64(obj + 16, 1);        /* bool */
	obj[24] = 0xff;
	put("token.object", obj, sizeof(obj), 0600);
	put("a.object", obj, sizeof(obj), 0640);
	put("b.object", obj, sizeof(obj), 0600);
	put("token.lock", "", 0, 0600);
	put("a.lock", "", 0, 0600);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void test_journal_round_trip(void **state)
{
	(void)state;
	tfs_journal_entry e[2] = {{.name = "token.object", .old_size = 3, .new_size = 4},
	                          {.name = "0a.object", .old_size = 5, .new_size = 6}};
	e[1].new_sha256[31] = 9;
	uint8_t *data;
	size_t size, n;
	tfs_error err;
	assert_int_equal(tfs_journal_encode(&data, &size, e, 2, &err), TFS_OK);
	tfs_journal_entry *back;
	assert_int_equal(tfs_journal_parse(&back, &n, data, size, &err), TFS_OK);
	assert_int_equal(n, 2);
	assert_string_equal(back[1].name, "0a.object");
	assert_int_equal(back[1].new_sha256[31], 9);
	free(back);
	data[40] ^= 1; /* inside an entry: the check sum catches it */
	assert_int_equal(tfs_journal_parse(&back, &n, data, size, &err), TFS_E_DAMAGED);
	data[40] ^= 1;
	assert_int_equal(tfs_journal_parse(&back, &n, data, size - 1, &err), TFS_E_TRUNCATED);
	free(data);
	/* Names recovery would use to touch files outside the transaction. */
	assert_false(tfs_journal_name_ok("../x.object", 11));
	assert_false(tfs_journal_name_ok(".object", 7));
	assert_false(tfs_journal_name_ok("tokenfs.seal", 12));
	assert_false(tfs_journal_name_ok("a.lock", 6));
	assert_true(tfs_journal_name_ok("generation", 10));
	strcpy(e[1].name, "token.object");
	assert_int_equal(tfs_journal_encode(&data, &size, e, 2, &err), TFS_OK);
	assert_int_equal(tfs_journal_parse(&back, &n, data, size, &err), TFS_E_FORMAT);
	free(data);
}

static void test_commit(void **state)
{
	(void)state;
	struct stat before_b, after_b, after_a;
	char p[512];
	snprintf(p, sizeof(p), "%s/b.object", dir);
	assert_int_equal(stat(p, &before_b), 0);
	tfs_txn *t;
	tfs_error err;
	assert_int_equal(tfs_txn_begin(&t, dir, NULL, &err), TFS_OK);
	uint8_t *data;
	size_t size;
	assert_int_equal(tfs_txn_read(t, "a.object", &data, &size, &err), TFS_OK);
	tfs_object *obj;
	assert_int_equal(tfs_object_parse(&obj, data, size, &err), TFS_OK);
	free(data);
	assert_int_equal(tfs_txn_stage_object(t, "a.object", obj, NULL, NULL, &err), TFS_OK);
	tfs_object_free(obj);
	assert_true(exists("a.object" TFS_TXN_STAGED_SUFFIX));
	/* Staging twice and staging what was not read are caller bugs. */
	assert_int_equal(tfs_txn_stage(t, "a.object", (const uint8_t *)"x", 1, &err), TFS_E_INVALID);
	assert_int_equal(tfs_txn_stage(t, "b.object", (const uint8_t *)"x", 1, &err), TFS_E_INVALID);
	tfs_txn_stats st;
	assert_int_equal(tfs_txn_commit(t, &st, &err), TFS_OK);
	tfs_txn_free(t);
	assert_int_equal(st.files_written, 2); /* a.object and generation */
	assert_int_equal(st.bytes_written, 25 + 8);
	uint8_t *a = get("a.object", &size), *g = get("generation", &size);
	assert_int_equal(tfs_be64(a), 42);
	assert_int_equal(tfs_be64(g), 8);
	free(a);
	free(g);
	snprintf(p, sizeof(p), "%s/a.object", dir);
	assert_int_equal(stat(p, &after_a), 0);
	assert_int_equal(after_a.st_mode & 0777, 0640);
	snprintf(p, sizeof(p), "%s/b.object", dir);
	assert_int_equal(stat(p, &after_b), 0);
	assert_int_equal(after_b.st_ino, before_b.st_ino);
	assert_false(exists(TFS_TXN_JOURNAL));
	assert_false(exists("a.object" TFS_TXN_STAGED_SUFFIX));
}

static void test_abort_and_empty(void **state)
{
	(void)state;
	tfs_txn *t;
	tfs_error err;
	uint8_t *data;
	size_t size;
	assert_int_equal(tfs_txn_begin(&t, dir, NULL, &err), TFS_OK);
	assert_int_equal(tfs_txn_read(t, "b.object", &data, &size, &err), TFS_OK);
	assert_int_equal(tfs_txn_stage(t, "b.object", (const uint8_t *)"new", 3, &err), TFS_OK);
	tfs_txn_free(t); /* no commit: aborted */
	uint8_t *b = get("b.object", &size);
	assert_int_equal(size, 25);
	assert_memory_equal(b, data, 25);
	free(b);
	free(data);
	assert_false(exists("b.object" TFS_TXN_STAGED_SUFFIX));
	tfs_txn_stats st;
	assert_int_equal(tfs_txn_begin(&t, dir, NULL, &err), TFS_OK);
	assert_int_equal(tfs_txn_commit(t, &st, &err), TFS_OK);
	tfs_txn_free(t);
	assert_int_equal(st.files_written, 0);
	uint8_t *g = get("generation", &size);
	assert_int_equal(tfs_be64(g), 7); /* an empty transaction changes nothing */
	free(g);
}

/* A staged file without a journal: the crash came before the commit point. */
static void test_recover_rolls_back(void **state)
{
	(void)state;
	put("a.object" TFS_TXN_STAGED_SUFFIX, "half", 4, 0600);
	put(TFS_TXN_JOURNAL_TMP, "TFSJ", 4, 0600);
	put("notes" TFS_TXN_STAGED_SUFFIX, "mine", 4, 0600); /* not ours: left alone */
	tfs_recovery r;
	tfs_error err;
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_OK);
	assert_int_equal(r, TFS_RECOVERY_ROLLED_BACK);
	assert_false(exists("a.object" TFS_TXN_STAGED_SUFFIX));
	assert_false(exists(TFS_TXN_JOURNAL_TMP));
	assert_true(exists("notes" TFS_TXN_STAGED_SUFFIX));
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_OK);
	assert_int_equal(r, TFS_RECOVERY_NONE);
}

/* A journal whose first file is already in place and the second is staged:
 * the crash came between two renames. */
static void test_recover_rolls_forward(void **state)
{
	(void)state;
	tfs_journal_entry e[2] = {{.name = "a.object", .new_size = 3},
	                          {.name = "b.object", .new_size = 4}};
	tfs_error err;
	assert_int_equal(tfs_sha256(e[0].new_sha256, (const uint8_t *)"AAA", 3, &err), TFS_OK);
	assert_int_equal(tfs_sha256(e[1].new_sha256, (const uint8_t *)"BBBB", 4, &err), TFS_OK);
	uint8_t *data, *old;
	size_t size, old_size;
	old = get("b.object", &old_size); /* as the transaction read it */
	e[1].old_size = old_size;
	assert_int_equal(tfs_sha256(e[1].old_sha256, old, old_size, &err), TFS_OK);
	assert_int_equal(tfs_journal_encode(&data, &size, e, 2, &err), TFS_OK);
	put(TFS_TXN_JOURNAL, data, size, 0600);
	put("a.object", "AAA", 3, 0600);
	put("b.object" TFS_TXN_STAGED_SUFFIX, "BBBX", 4, 0600);
	tfs_recovery r;
	/* A staged file that is not what the journal says: hands off. */
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_E_DAMAGED);
	assert_true(exists(TFS_TXN_JOURNAL));
	put("b.object" TFS_TXN_STAGED_SUFFIX, "BBBB", 4, 0600);
	/* A target changed after the commit (a SoftHSM ran on the old files):
	 * rolling forward would bring back neither state. */
	put("b.object", "changed by SoftHSM", 18, 0600);
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_E_DAMAGED);
	assert_non_null(strstr(err.what, "changed since the transaction was committed"));
	assert_true(exists("b.object" TFS_TXN_STAGED_SUFFIX));
	put("b.object", old, old_size, 0600);
	free(old);
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_OK);
	assert_int_equal(r, TFS_RECOVERY_ROLLED_FORWARD);
	uint8_t *b = get("b.object", &size);
	assert_int_equal(size, 4);
	assert_memory_equal(b, "BBBB", 4);
	free(b);
	free(data);
	assert_false(exists(TFS_TXN_JOURNAL));
	/* A damaged journal changes nothing. */
	put(TFS_TXN_JOURNAL, "TFSJRNL1garbage", 15, 0600);
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_E_DAMAGED);
	assert_true(exists(TFS_TXN_JOURNAL));
}

/* A staged file given another name (a hard link, from anywhere on the file
 * system) or swapped for another file before the commit point: the commit
 * refuses and changes nothing, since a link would stay joined to the
 * token's file once it is in place. */
static void test_commit_refuses_tampered_staged(void **state)
{
	(void)state;
	char staged[512], other[512];
	snprintf(staged, sizeof(staged), "%s/a.object" TFS_TXN_STAGED_SUFFIX, dir);
	snprintf(other, sizeof(other), "%s/elsewhere", dir);
	size_t old_size, size;
	uint8_t *old = get("a.object", &old_size);
	for (int swap = 0; swap < 2; swap++) {
		tfs_txn *t;
		tfs_error err;
		uint8_t *data;
		assert_int_equal(tfs_txn_begin(&t, dir, NULL, &err), TFS_OK);
		assert_int_equal(tfs_txn_read(t, "a.object", &data, &size, &err), TFS_OK);
		free(data);
		assert_int_equal(tfs_txn_stage(t, "a.object", (const uint8_t *)"NEWNEWNEW", 9, &err),
		                 TFS_OK);
		if (swap) { /* same bytes, another file */
			assert_int_equal(rename(staged, other), 0);
			put("a.object" TFS_TXN_STAGED_SUFFIX, "NEWNEWNEW", 9, 0600);
		} else {
			assert_int_equal(link(staged, other), 0);
		}
		assert_int_equal(tfs_txn_commit(t, NULL, &err), TFS_E_IO);
		assert_non_null(strstr(err.what, swap ? "replaced" : "hard-linked"));
		tfs_txn_free(t);
		uint8_t *a = get("a.object", &size);
		assert_int_equal(size, old_size);
		assert_memory_equal(a, old, size);
		free(a);
		assert_false(exists(TFS_TXN_JOURNAL));
		unlink(other);
		unlink(staged);
	}
	free(old);
}

/* Recovery never puts a staged file with a second name in place. */
static void test_recover_refuses_linked_staged(void **state)
{
	(void)state;
	tfs_journal_entry e = {.name = "b.object", .new_size = 4};
	tfs_error err;
	uint8_t *data, *old;
	size_t size, old_size;
	assert_int_equal(tfs_sha256(e.new_sha256, (const uint8_t *)"BBBB", 4, &err), TFS_OK);
	old = get("b.object", &old_size);
	e.old_size = old_size;
	assert_int_equal(tfs_sha256(e.old_sha256, old, old_size, &err), TFS_OK);
	assert_int_equal(tfs_journal_encode(&data, &size, &e, 1, &err), TFS_OK);
	put(TFS_TXN_JOURNAL, data, size, 0600);
	free(data);
	put("b.object" TFS_TXN_STAGED_SUFFIX, "BBBB", 4, 0600);
	char staged[512], other[512];
	snprintf(staged, sizeof(staged), "%s/b.object" TFS_TXN_STAGED_SUFFIX, dir);
	snprintf(other, sizeof(other), "%s/elsewhere", dir);
	assert_int_equal(link(staged, other), 0);
	tfs_recovery r;
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_E_DAMAGED);
	assert_non_null(strstr(err.what, "hard-linked"));
	uint8_t *b = get("b.object", &size);
	assert_int_equal(size, old_size);
	assert_memory_equal(b, old, size);
	free(b);
	assert_true(exists(TFS_TXN_JOURNAL));
	/* Without the second name it rolls forward. */
	unlink(other);
	assert_int_equal(tfs_txn_recover(&r, dir, NULL, &err), TFS_OK);
	assert_int_equal(r, TFS_RECOVERY_ROLLED_FORWARD);
	b = get("b.object", &size);
	assert_int_equal(size, 4);
	assert_memory_equal(b, "BBBB", 4);
	free(b);
	free(old);
}

/* Symbolic links planted at the engine's own names after it began (its
 * sweep removes those left before): nothing is written through them, the
 * commit refuses, and the token is unchanged. */
static void test_planted_links_refused(void **state)
{
	(void)state;
	char staged[512], jtmp[512], victim[512];
	snprintf(staged, sizeof(staged), "%s/a.object" TFS_TXN_STAGED_SUFFIX, dir);
	snprintf(jtmp, sizeof(jtmp), "%s/" TFS_TXN_JOURNAL_TMP, dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	put("victim", "victim", 6, 0600);
	size_t old_size, size;
	uint8_t *old = get("a.object", &old_size), *data;
	tfs_txn *t;
	tfs_error err;
	assert_int_equal(tfs_txn_begin(&t, dir, NULL, &err), TFS_OK);
	assert_int_equal(tfs_txn_read(t, "a.object", &data, &size, &err), TFS_OK);
	free(data);
	assert_int_equal(symlink(victim, staged), 0);
	assert_int_not_equal(tfs_txn_stage(t, "a.object", (const uint8_t *)"NEW", 3, &err), TFS_OK);
	unlink(staged);
	assert_int_equal(tfs_txn_stage(t, "a.object", (const uint8_t *)"NEW", 3, &err), TFS_OK);
	assert_int_equal(symlink(victim, jtmp), 0);
	assert_int_not_equal(tfs_txn_commit(t, NULL, &err), TFS_OK);
	tfs_txn_free(t);
	uint8_t *v = get("victim", &size);
	assert_int_equal(size, 6);
	assert_memory_equal(v, "victim", 6);
	free(v);
	uint8_t *a = get("a.object", &size);
	assert_int_equal(size, old_size);
	assert_memory_equal(a, old, size);
	free(a);
	free(old);
	assert_false(exists(TFS_TXN_JOURNAL));
	assert_false(exists("a.object" TFS_TXN_STAGED_SUFFIX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_round_trip),
		cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_rolls_forward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_refuses_tampered_staged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_refuses_linked_staged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_links_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
