/*
 * The snapshot rule on a file system that changes under the reader: a
 * wrapper around an in-memory image rewrites one object (or the token's
 * generation) on some reads, as SoftHSM does between our reads. A snapshot
 * must be a state that held over two consecutive whole reads, never one of
 * the torn ones; a token that never holds still is refused, bounded; a
 * damaged file that stays damaged is accepted as it is (damage, not flux)
 * and listed as damaged; the quiet and retried cases list nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil/testutil.h"
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backup/backup_internal.h"
#include "core/cursor.h"
#include "tokenfs/object.h"

#define OBJ "tok/0b7ac9e4-1c2d-3e4f-5a6b-7c8d9e0f1a2b.object"

/* A file system whose reads of `victim` come back torn (cut to `torn_len`
 * bytes, generation `count`) for the reads numbered in [torn_from, torn_to). */
typedef struct flaky {
	tfs_fs base;
	tfs_fs *inner;
	const char *victim;
	unsigned count;       /* reads of the victim so far */
	unsigned torn_from, torn_to;
	size_t torn_len;
	/* Instead of a cut: these bytes, the same on every such read. */
	const uint8_t *half;
	size_t half_len;
} flaky;

static int f_stat(tfs_fs *fs, const char *path, tfs_stat *st, tfs_error *err)
{
	flaky *f = (flaky *)fs;
	return f->inner->ops->stat(f->inner, path, st, err);
}

static int f_list(tfs_fs *fs, const char *dir, tfs_list_full full, tfs_dirent **out,
                  size_t *count, tfs_error *err)
{
	flaky *f = (flaky *)fs;
	return f->inner->ops->list(f->inner, dir, full, out, count, err);
}

static int f_read(tfs_fs *fs, const char *path, unsigned *lock_ms, uint8_t **data, size_t *size,
                  tfs_error *err)
{
	flaky *f = (flaky *)fs;
	int rc = f->inner->ops->read(f->inner, path, lock_ms, data, size, err);
	if (rc != TFS_OK || strcmp(path, f->victim) != 0)
		return rc;
	unsigned n = f->count++;
	if (n >= f->torn_from && n < f->torn_to && f->half != NULL) {
		memcpy(*data, f->half, f->half_len); /* the real object is longer */
		*size = f->half_len;
	} else if (n >= f->torn_from && n < f->torn_to) {
		if (*size > f->torn_len)
			*size = f->torn_len;
		if (*size >= 8)
			tfs_put_be64(*data, 1000 + n); /* a different state every read */
	}
	return TFS_OK;
}

static void f_destroy(tfs_fs *fs)
{
	(void)fs;
}

static const struct tfs_fs_ops flaky_ops = {
	.stat = f_stat, .list = f_list, .read = f_read, .destroy = f_destroy, .findings = NULL};

/* A finished object as SoftHSM 2.6.1 wrote it (testdata's 'data-public'):
 * one it is still building would rightly be read again. */
static size_t make_object(uint8_t *b, size_t cap)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/store/0d530850-8d79-c236-fc71-37445ffb77ce/"
	         "99bf426f-0f35-ab28-7c20-b5aafeeca46c.object", getenv("TFS_TESTDATA"));
	size_t n = 0;
	uint8_t *data = tu_read_file(path, &n);
	assert_non_null(data);
	assert_true(n <= cap);
	memcpy(b, data, n);
	free(data);
	return n;
}

static tfs_fs *image(uint8_t *obj, size_t *objlen)
{
	tfs_fs *fs;
	tfs_error err;
	uint8_t gen[8];
	tfs_put_be64(gen, 5);
	*objlen = make_object(obj, 512);
	assert_int_equal(tfs_memfs_new(&fs, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_dir(fs, "tok", 0700, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "tok/generation", gen, 8, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, OBJ, obj, *objlen, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "tok/0b7ac9e4-1c2d-3e4f-5a6b-7c8d9e0f1a2b.lock",
	                                    NULL, 0, 0600, &err), TFS_OK);
	return fs;
}

static const tfs_snap_file *file_of(const tfs_snap *s, const char *name)
{
	for (size_t i = 0; i < s->count; i++)
		if (strcmp(s->files[i].name, name) == 0)
			return &s->files[i];
	return NULL;
}

static void quiet_token_two_reads(void **state)
{
	(void)state;
	uint8_t obj[512];
	size_t len;
	tfs_fs *inner = image(obj, &len);
	flaky f = {.base = {&flaky_ops}, .inner = inner, .victim = OBJ};
	tfs_snap s;
	tfs_error err;
	assert_int_equal(tfs_snap_take(&s, &f.base, "tok", 0, 0, NULL, NULL, &err), TFS_OK);
	assert_int_equal(s.reads, 2);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.ndamaged, 0);
	const tfs_snap_file *o = file_of(&s, "0b7ac9e4-1c2d-3e4f-5a6b-7c8d9e0f1a2b.object");
	assert_non_null(o);
	assert_int_equal(o->size, len);
	assert_memory_equal(o->data, obj, len);
	tfs_snap_free(&s);
	tfs_fs_free(inner);
}

/* Torn on reads 0..4, whole after: the snapshot is the whole state, taken
 * only once two reads agree. */
static void torn_reads_are_retried(void **state)
{
	(void)state;
	uint8_t obj[512];
	size_t len;
	tfs_fs *inner = image(obj, &len);
	flaky f = {.base = {&flaky_ops}, .inner = inner, .victim = OBJ, .torn_from = 0,
	           .torn_to = 5, .torn_len = 30};
	tfs_snap s;
	tfs_error err;
	assert_int_equal(tfs_snap_take(&s, &f.base, "tok", 0, 0, NULL, NULL, &err), TFS_OK);
	assert_int_equal(s.reads, 7); /* reads 1-5 torn, 6 and 7 whole and equal */
	const tfs_snap_file *o = file_of(&s, "0b7ac9e4-1c2d-3e4f-5a6b-7c8d9e0f1a2b.object");
	assert_int_equal(o->size, len);
	assert_memory_equal(o->data, obj, len);
	tfs_snap_free(&s);
	tfs_fs_free(inner);
}

/* An object SoftHSM is still building parses, but lacks what it writes
 * last; two equal reads of it 25 ms apart happen on a busy machine (seen in
 * backup_live). The snapshot waits until it is finished (or held still for
 * 250 ms, damage rather than a write). */
static void half_built_object_waits(void **state)
{
	(void)state;
	uint8_t obj[512];
	size_t len;
	tfs_fs *inner = image(obj, &len);
	uint8_t half[64];
	size_t n = 0; /* generation 7, CKA_CLASS = CKO_DATA, CKA_LABEL "abc": nothing more */
	tfs_put_be64(half + n, 7); n += 8;
	tfs_put_be64(half + n, 0); tfs_put_be64(half + n + 8, 2); tfs_put_be64(half + n + 16, 0); n += 24;
	tfs_put_be64(half + n, 3); tfs_put_be64(half + n + 8, 3); tfs_put_be64(half + n + 16, 3); n += 24;
	memcpy(half + n, "abc", 3); n += 3;
	flaky f = {.base = {&flaky_ops}, .inner = inner, .victim = OBJ, .torn_from = 0,
	           .torn_to = 4, .half = half, .half_len = n};
	tfs_snap s;
	tfs_error err;
	assert_int_equal(tfs_snap_take(&s, &f.base, "tok", 0, 0, NULL, NULL, &err), TFS_OK);
	const tfs_snap_file *o = file_of(&s, "0b7ac9e4-1c2d-3e4f-5a6b-7c8d9e0f1a2b.object");
	assert_int_equal(o->size, len); /* the finished object, not the half-built one */
	assert_memory_equal(o->data, obj, len);
	assert_int_equal(s.ndamaged, 0);
	tfs_snap_free(&s);
	tfs_fs_free(inner);
}

/* A different torn state on every read: refused after max_reads. */
static void never_still_is_refused(void **state)
{
	(void)state;
	uint8_t obj[512];
	size_t len;
	tfs_fs *inner = image(obj, &len);
	flaky f = {.base = {&flaky_ops}, .inner = inner, .victim = OBJ, .torn_to = 1000,
	           .torn_len = 40};
	tfs_snap s;
	tfs_error err;
	assert_int_equal(tfs_snap_take(&s, &f.base, "tok", 0, 6, NULL, NULL, &err), TFS_E_LOCKED);
	assert_non_null(strstr(err.what, "changed on each of 6 whole reads"));
	assert_int_equal(f.count, 6);
	tfs_fs_free(inner);
}

/* The same damage on every read (a file cut short for good): after three
 * equal reads it is the state, damaged or not. */
static void stable_damage_is_kept(void **state)
{
	(void)state;
	uint8_t obj[512];
	size_t len;
	tfs_fs *inner = image(obj, &len);
	tfs_fs *dam;
	tfs_error err;
	assert_int_equal(tfs_memfs_new(&dam, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_dir(dam, "tok", 0700, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(dam, OBJ, obj, len - 2, 0600, &err), TFS_OK);
	tfs_snap s;
	assert_int_equal(tfs_snap_take(&s, dam, "tok", 0, 0, NULL, NULL, &err), TFS_OK);
	assert_int_equal(s.reads, 3);
	assert_int_equal(s.files[0].size, len - 2);
	/* Kept, but named with its defect: the caller must not call it whole. */
	assert_int_equal(s.ndamaged, 1);
	assert_string_equal(s.damaged[0].file, OBJ + 4);
	assert_non_null(strstr(s.damaged[0].defect, "offset "));
	tfs_snap_free(&s);
	tfs_fs_free(dam);
	tfs_fs_free(inner);
}

/* A file system without RENAME_NOREPLACE (some network and FUSE file
 * systems): renameat2 with that flag fails with EINVAL. This definition
 * stands in for libc's in this test program. */
static bool no_noreplace;

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
	if (no_noreplace && (flags & RENAME_NOREPLACE)) {
		errno = EINVAL;
		return -1;
	}
	return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

static int archive_one(const char *path, const char *body, tfs_error *err)
{
	tfs_archive_out *a = NULL;
	tfs_stat st = {.type = TFS_ENT_FILE, .mode = 0600, .size = strlen(body)};
	int rc = tfs_archive_out_open(&a, path, TFS_ARCHIVE_TAR, false, err);
	if (rc == TFS_OK)
		rc = tfs_archive_out_file(a, "t/f", &st, (const uint8_t *)body, strlen(body), err);
	uint64_t size = 0;
	if (rc == TFS_OK)
		return tfs_archive_out_commit(a, &size, err);
	tfs_archive_out_abort(a);
	return rc;
}

/* Without RENAME_NOREPLACE the archive still lands (through link()), and
 * a file that exists is still never replaced. */
static void archive_without_noreplace(void **state)
{
	(void)state;
	char dir[] = "/tmp/tfs-backup-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/a.tar", dir);
	tfs_error err;
	no_noreplace = true;
	assert_int_equal(archive_one(path, "first", &err), TFS_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	off_t first = st.st_size;
	assert_int_equal(archive_one(path, "second, longer than the first", &err), TFS_E_INVALID);
	assert_non_null(strstr(err.what, "exists"));
	no_noreplace = false;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, first);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0); /* no temporary file left beside it */
}

static void formats_by_name(void **state)
{
	(void)state;
	tfs_archive_format f;
	assert_true(tfs_archive_format_of("a/b.tar.gz", &f) && f == TFS_ARCHIVE_TAR_GZ);
	assert_true(tfs_archive_format_of("b.tgz", &f) && f == TFS_ARCHIVE_TAR_GZ);
	assert_true(tfs_archive_format_of("b.tar", &f) && f == TFS_ARCHIVE_TAR);
	assert_true(tfs_archive_format_of("b.tar.xz", &f) && f == TFS_ARCHIVE_TAR_XZ);
	assert_true(tfs_archive_format_of("b.tar.zst", &f) && f == TFS_ARCHIVE_TAR_ZST);
	assert_true(tfs_archive_format_of("b.zip", &f) && f == TFS_ARCHIVE_ZIP);
	assert_false(tfs_archive_format_of("b.gz", &f));
	assert_false(tfs_archive_format_of(".tar", &f));
	assert_false(tfs_archive_format_of("dir/.tar.gz", &f));
	assert_false(tfs_archive_format_of("b.tar.gz/", &f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(quiet_token_two_reads),
		cmocka_unit_test(torn_reads_are_retried),
		cmocka_unit_test(half_built_object_waits),
		cmocka_unit_test(never_still_is_refused),
		cmocka_unit_test(stable_damage_is_kept),
		cmocka_unit_test(formats_by_name),
		cmocka_unit_test(archive_without_noreplace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
