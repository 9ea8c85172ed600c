/*
 * The atomic file writer (fs_write.c) against what a hostile directory can
 * hold at the target's name: a symbolic link, a FIFO, a hard link, a file of
 * another owner. Failures at system calls are tools/tests/write_faults.sh.
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
#include <unistd.h>

#include "store/fs_internal.h"
#include "testutil/testutil.h"
#include "tokenfs/error.h"
#include "tokenfs/fs.h"

typedef struct tdir {
	char dir[64];
	char target[128], other[128];
} tdir;

static void make_dir(tdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/tfs-fswrite-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->target, sizeof(t->target), "%s/tokenfs.seal", t->dir);
	snprintf(t->other, sizeof(t->other), "%s/elsewhere", t->dir);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void assert_holds(const char *path, const char *text)
{
	size_t len;
	uint8_t *d = tu_read_file(path, &len);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(d, text, len);
	free(d);
}

/* Entries of the directory besides . and ..: a temporary file left behind
 * would be one too many. */
static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void remove_dir(tdir *t)
{
	DIR *d = opendir(t->dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char p[400];
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", t->dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(t->dir);
}

/* A symbolic link at the target is refused, not replaced, and what it
 * points at is untouched, owner included. */
static void test_symlink_target_refused(void **state)
{
	(void)state;
	tdir t;
	make_dir(&t);
	put(t.other, "theirs");
	/* Owned by someone else: before the fix the new file took this owner
	 * (stat() followed the link). Only root can set it up. */
	bool root = geteuid() == 0;
	if (root)
		assert_int_equal(chown(t.other, 4321, 4321), 0);
	assert_int_equal(symlink("elsewhere", t.target), 0);
	tfs_error err;
	int rc = tfs_write_file_atomic(t.target, (const uint8_t *)"new", 3, 0600, &err);
	assert_int_not_equal(rc, TFS_OK);
	assert_non_null(strstr(err.what, "symbolic link"));
	struct stat st;
	assert_int_equal(lstat(t.target, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_holds(t.other, "theirs");
	assert_int_equal(stat(t.other, &st), 0);
	if (root)
		assert_int_equal(st.st_uid, 4321);
	assert_int_equal(entries(t.dir), 2); /* the link and its target: no temporary file */

	/* The same through the step-wise writer a seal uses. */
	tfs_atomic a;
	assert_int_not_equal(tfs_atomic_begin(&a, t.target, 0600, true, &err), TFS_OK);
	assert_int_equal(entries(t.dir), 2);

	/* A dangling link too: it is not a file tokenfs wrote. */
	unlink(t.other);
	assert_int_not_equal(tfs_write_file_atomic(t.target, (const uint8_t *)"new", 3, 0600, &err),
	                     TFS_OK);
	assert_int_equal(lstat(t.target, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(entries(t.dir), 1);
	remove_dir(&t);
}

/* A FIFO at the target is refused (rename would silently replace it). */
static void test_fifo_target_refused(void **state)
{
	(void)state;
	tdir t;
	make_dir(&t);
	assert_int_equal(mkfifo(t.target, 0600), 0);
	tfs_error err;
	assert_int_not_equal(tfs_write_file_atomic(t.target, (const uint8_t *)"x", 1, 0600, &err),
	                     TFS_OK);
	assert_non_null(strstr(err.what, "not a regular file"));
	struct stat st;
	assert_int_equal(lstat(t.target, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(entries(t.dir), 1);
	remove_dir(&t);
}

/* A replaced file keeps its owner and group; a hard link to it keeps the
 * old contents (the name is replaced, nothing is written through it). */
static void test_replace_keeps_owner_not_links(void **state)
{
	(void)state;
	tdir t;
	make_dir(&t);
	put(t.target, "old");
	bool root = geteuid() == 0;
	if (root)
		assert_int_equal(chown(t.target, 4321, 4322), 0);
	assert_int_equal(link(t.target, t.other), 0);
	tfs_error err;
	assert_int_equal(tfs_write_file_atomic(t.target, (const uint8_t *)"new", 3, 0640, &err),
	                 TFS_OK);
	assert_holds(t.target, "new");
	assert_holds(t.other, "old");
	struct stat st;
	assert_int_equal(lstat(t.target, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_nlink, 1);
	if (root) {
		assert_int_equal(st.st_uid, 4321);
		assert_int_equal(st.st_gid, 4322);
	}
	assert_int_equal(entries(t.dir), 2);
	remove_dir(&t);
}

/* A target that is a directory is refused and left as it is. */
static void test_directory_target_refused(void **state)
{
	(void)state;
	tdir t;
	make_dir(&t);
	assert_int_equal(mkdir(t.target, 0700), 0);
	tfs_error err;
	assert_int_not_equal(tfs_write_file_atomic(t.target, (const uint8_t *)"x", 1, 0600, &err),
	                     TFS_OK);
	assert_int_not_equal(tfs_write_file_new(t.target, (const uint8_t *)"x", 1, 0600, &err),
	                     TFS_OK);
	struct stat st;
	assert_int_equal(lstat(t.target, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(entries(t.dir), 1);
	rmdir(t.target);
	remove_dir(&t);
}

/* tfs_write_file_new never replaces a link either, dangling or not. */
static void test_new_never_replaces_link(void **state)
{
	(void)state;
	tdir t;
	make_dir(&t);
	assert_int_equal(symlink("elsewhere", t.target), 0);
	tfs_error err;
	assert_int_equal(tfs_write_file_new(t.target, (const uint8_t *)"x", 1, 0600, &err),
	                 TFS_E_INVALID);
	struct stat st;
	assert_int_equal(lstat(t.target, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(lstat(t.other, &st), -1);
	assert_int_equal(entries(t.dir), 1);
	remove_dir(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_symlink_target_refused),
		cmocka_unit_test(test_fifo_target_refused),
		cmocka_unit_test(test_replace_keeps_owner_not_links),
		cmocka_unit_test(test_directory_target_refused),
		cmocka_unit_test(test_new_never_replaces_link),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
