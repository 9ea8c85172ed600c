/*
 * Archive images: the real SoftHSM store of testdata/ packed by libarchive's
 * writer in memory reads back byte for byte through the store reader, at any
 * depth and as one token's contents; hostile members (duplicates, '..',
 * absolute paths, links, members under a file) are findings and never
 * readable; each cap stops the read with TFS_E_LIMIT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "findings/findings_internal.h"
#include "store/fs_internal.h"
#include "testutil/testutil.h"
#include "tokenfs/archive.h"
#include "tokenfs/store.h"

/* ---- an archive writer in memory ---- */

typedef struct packer {
	struct archive *a;
	uint8_t *buf;
	size_t cap, used;
} packer;

static void pack_open(packer *p, bool gzip)
{
	p->cap = 8u << 20;
	p->buf = malloc(p->cap);
	p->used = 0;
	p->a = archive_write_new();
	assert_non_null(p->buf);
	assert_int_equal(archive_write_set_format_pax_restricted(p->a), ARCHIVE_OK);
	assert_int_equal(gzip ? archive_write_add_filter_gzip(p->a)
	                      : archive_write_add_filter_none(p->a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(p->a, p->buf, p->cap, &p->used), ARCHIVE_OK);
}

static void pack_entry(packer *p, const char *name, mode_t type, const void *data, size_t len,
                       const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0700 : 0600);
	archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
	if (link != NULL && type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link != NULL)
		archive_entry_set_hardlink(e, link);
	assert_int_equal(archive_write_header(p->a, e), ARCHIVE_OK);
	if (type == AE_IFREG && len > 0)
		assert_int_equal(archive_write_data(p->a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

static void pack_close(packer *p)
{
	assert_int_equal(archive_write_close(p->a), ARCHIVE_OK);
	archive_write_free(p->a);
}

/* Every entry of a directory of the fixture store, under prefix. */
static void pack_dir(packer *p, const char *dir, const char *prefix)
{
	pack_entry(p, prefix, AE_IFDIR, NULL, 0, NULL);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[1024], name[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		snprintf(name, sizeof(name), "%s/%s", prefix, de->d_name);
		struct stat st;
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			pack_dir(p, path, name);
		} else {
			size_t len;
			uint8_t *data = tu_read_file(path, &len);
			pack_entry(p, name, AE_IFREG, data, len, NULL);
			free(data);
		}
	}
	closedir(d);
}

static tfs_store *open_image(packer *p, const char *name, const tfs_archive_limits *lim,
                             tfs_fs **fs)
{
	tfs_error err;
	assert_int_equal(tfs_archivefs_open_memory(fs, name, p->buf, p->used, lim, &err), TFS_OK);
	tfs_store *s;
	assert_int_equal(tfs_store_open_tree(&s, *fs, name, NULL, &err), TFS_OK);
	return s;
}

static bool has_finding(const tfs_store *s, const char *code, const char *path)
{
	for (size_t i = 0; i < tfs_store_finding_count(s); i++) {
		const tfs_finding *f = tfs_store_finding(s, i);
		if (strcmp(tfs_finding_code(f), code) == 0 &&
		    (path == NULL || strcmp(tfs_finding_path(f), path) == 0))
			return true;
	}
	return false;
}

/* Every object of the archive store has the bytes of the file on disk. */
static void test_store_deep(void **state)
{
	(void)state;
	char *store_dir = tu_data_path("store");
	packer p;
	pack_open(&p, true);
	pack_dir(&p, store_dir, "var/lib/softhsm/tokens");
	pack_close(&p);
	tfs_fs *fs;
	tfs_store *s = open_image(&p, "b.tgz", NULL, &fs), *disk;
	tfs_error err;
	assert_int_equal(tfs_store_open(&disk, store_dir, NULL, &err), TFS_OK);
	assert_int_equal(tfs_store_kind(s), TFS_PATH_TOKENDIR);
	assert_true(tfs_store_is_archive(s));
	assert_false(tfs_store_is_archive(disk));
	assert_int_equal(tfs_store_token_count(s), tfs_store_token_count(disk));
	assert_int_equal(tfs_store_finding_count(s), tfs_store_finding_count(disk));
	for (size_t t = 0; t < tfs_store_token_count(s); t++) {
		const tfs_token *a = tfs_store_token(s, t), *d = tfs_store_token(disk, t);
		char want[512];
		snprintf(want, sizeof(want), "b.tgz:var/lib/softhsm/tokens/%s", tfs_token_dirname(d));
		assert_string_equal(tfs_token_path(a), want);
		assert_string_equal(tfs_token_label(a), tfs_token_label(d));
		assert_int_equal(tfs_token_object_count(a), tfs_token_object_count(d));
		for (size_t i = 0; i < tfs_token_object_count(a); i++) {
			uint8_t *x, *y;
			size_t xn, yn;
			assert_string_equal(tfs_token_object_file(a, i), tfs_token_object_file(d, i));
			assert_int_equal(tfs_token_read_object(&x, &xn, a, i, &err), TFS_OK);
			assert_int_equal(tfs_token_read_object(&y, &yn, d, i, &err), TFS_OK);
			assert_int_equal(xn, yn);
			assert_memory_equal(x, y, xn);
			free(x);
			free(y);
		}
	}
	tfs_store_free(disk);
	tfs_store_free(s);
	tfs_fs_free(fs);
	free(p.buf);
	free(store_dir);
}

/* "tar -C tok ." : the archive is one token, at "NAME:.". Two tokendirs at
 * different depths: both found, in path order. */
static void test_root_token_and_two_tokendirs(void **state)
{
	(void)state;
	char *store_dir = tu_data_path("store");
	tfs_store *disk;
	tfs_error err;
	assert_int_equal(tfs_store_open(&disk, store_dir, NULL, &err), TFS_OK);
	const tfs_token *d0 = tfs_store_token(disk, 0), *d1 = tfs_store_token(disk, 1);

	packer p;
	pack_open(&p, false);
	pack_dir(&p, tfs_token_path(d0), ".");
	pack_entry(&p, "./l.object", AE_IFLNK, NULL, 0, "/etc/shadow");
	pack_close(&p);
	tfs_fs *fs;
	tfs_store *s = open_image(&p, "t.tar", NULL, &fs);
	/* Named inside the token, so that verify lists it with the token. */
	assert_true(has_finding(s, "archive.link", "t.tar:./l.object"));
	assert_true(has_finding(s, "token.unexpected-entry", "t.tar:./l.object"));
	assert_int_equal(tfs_store_kind(s), TFS_PATH_TOKEN);
	assert_int_equal(tfs_store_token_count(s), 1);
	assert_string_equal(tfs_token_path(tfs_store_token(s, 0)), "t.tar:.");
	assert_string_equal(tfs_token_label(tfs_store_token(s, 0)), tfs_token_label(d0));
	char want[700];
	snprintf(want, sizeof(want), "t.tar:./%s", tfs_token_object_file(d0, 0));
	assert_string_equal(tfs_token_object_path(tfs_store_token(s, 0), 0), want);
	tfs_store_free(s);
	tfs_fs_free(fs);
	free(p.buf);

	pack_open(&p, false);
	char a[300], b[300];
	snprintf(a, sizeof(a), "z/tokens/%s", tfs_token_dirname(d0));
	snprintf(b, sizeof(b), "a/b/c/%s", tfs_token_dirname(d1));
	pack_dir(&p, tfs_token_path(d0), a); /* parents z/, z/tokens/ left implicit */
	pack_dir(&p, tfs_token_path(d1), b);
	pack_close(&p);
	s = open_image(&p, "two.tar", NULL, &fs);
	assert_int_equal(tfs_store_token_count(s), 2);
	snprintf(want, sizeof(want), "two.tar:%s", b);
	assert_string_equal(tfs_token_path(tfs_store_token(s, 0)), want);
	snprintf(want, sizeof(want), "two.tar:%s", a);
	assert_string_equal(tfs_token_path(tfs_store_token(s, 1)), want);
	tfs_store_free(s);
	tfs_fs_free(fs);
	free(p.buf);
	tfs_store_free(disk);
	free(store_dir);
}

/* Hostile members: reported, never readable; duplicates: the last wins. */
static void test_hostile(void **state)
{
	(void)state;
	char *tok_obj = tu_data_path("store/0d530850-8d79-c236-fc71-37445ffb77ce/token.object");
	size_t tlen;
	uint8_t *tdata = tu_read_file(tok_obj, &tlen);
	packer p;
	pack_open(&p, false);
	pack_entry(&p, "t/token.object", AE_IFREG, "old", 3, NULL);
	pack_entry(&p, "t/token.object", AE_IFREG, tdata, tlen, NULL); /* the one tar keeps */
	pack_entry(&p, "../up.object", AE_IFREG, "x", 1, NULL);
	pack_entry(&p, "/abs.object", AE_IFREG, "x", 1, NULL);
	pack_entry(&p, "t/l.object", AE_IFLNK, NULL, 0, "/etc/shadow");
	pack_entry(&p, "t/h.object", AE_IFREG, NULL, 0, "t/token.object");
	pack_entry(&p, "t/f", AE_IFIFO, NULL, 0, NULL);
	pack_entry(&p, "file", AE_IFREG, "f", 1, NULL);
	pack_entry(&p, "file/under.object", AE_IFREG, "u", 1, NULL);
	pack_close(&p);
	tfs_fs *fs;
	tfs_store *s = open_image(&p, "h.tar", NULL, &fs);
	assert_true(has_finding(s, "archive.duplicate-member", "h.tar:t/token.object"));
	assert_true(has_finding(s, "archive.unsafe-path", "h.tar:../up.object"));
	assert_true(has_finding(s, "archive.unsafe-path", "h.tar:/abs.object"));
	assert_true(has_finding(s, "archive.unsafe-path", "h.tar:file/under.object"));
	assert_true(has_finding(s, "archive.link", "h.tar:t/l.object"));
	assert_true(has_finding(s, "archive.link", "h.tar:t/h.object"));
	assert_true(has_finding(s, "archive.special-file", "h.tar:t/f"));
	assert_int_equal(tfs_store_kind(s), TFS_PATH_TOKENDIR);
	const tfs_token *tok = tfs_store_token(s, 0);
	assert_string_equal(tfs_token_label(tok), "demo"); /* the later token.object */
	tfs_stat st;
	uint8_t *data;
	size_t n;
	tfs_error err;
	const char *unreadable[] = {"h.tar:../up.object", "h.tar:/abs.object", "h.tar:up.object",
	                            "h.tar:abs.object", "h.tar:t/l.object", "h.tar:t/h.object",
	                            "h.tar:t/f", "h.tar:file/under.object", "/etc/passwd"};
	for (size_t i = 0; i < sizeof(unreadable) / sizeof(unreadable[0]); i++)
		assert_int_not_equal(fs->ops->read(fs, unreadable[i], 0, &data, &n, &err), TFS_OK);
	assert_int_equal(fs->ops->stat(fs, "h.tar:t/l.object", &st, &err), TFS_OK);
	assert_int_equal(st.type, TFS_ENT_SYMLINK);
	assert_int_equal(fs->ops->stat(fs, "h.tar:../up.object", &st, &err), TFS_E_IO);
	tfs_store_free(s);
	tfs_fs_free(fs);
	free(p.buf);
	free(tdata);
	free(tok_obj);
}

static void expect_limit(packer *p, const tfs_archive_limits *lim, const char *words)
{
	tfs_fs *fs = NULL;
	tfs_error err;
	assert_int_equal(tfs_archivefs_open_memory(&fs, "bomb.tgz", p->buf, p->used, lim, &err),
	                 TFS_E_LIMIT);
	assert_null(fs);
	if (strstr(err.what, words) == NULL)
		fail_msg("'%s' does not say '%s'", err.what, words);
}

/* Each cap: counted on what is unpacked, a clear TFS_E_LIMIT. */
static void test_caps(void **state)
{
	(void)state;
	uint8_t *zeros = calloc(1, 1u << 20);
	assert_non_null(zeros);
	packer p;
	pack_open(&p, true);
	for (int i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "z%d", i);
		pack_entry(&p, name, AE_IFREG, zeros, 1u << 20, NULL);
	}
	pack_close(&p);
	assert_true(p.used < 64 * 1024); /* 4 MiB in a few KiB */
	tfs_archive_limits lim;
	tfs_archive_limits_default(&lim);
	lim.max_total_bytes = 3u << 20;
	expect_limit(&p, &lim, "the cap on all members");
	tfs_archive_limits_default(&lim);
	lim.max_members = 3;
	expect_limit(&p, &lim, "member-count cap");
	tfs_archive_limits_default(&lim);
	lim.max_member_bytes = 1u << 19;
	expect_limit(&p, &lim, "member-size cap");
	tfs_archive_limits_default(&lim);
	tfs_fs *fs;
	tfs_error err;
	assert_int_equal(tfs_archivefs_open_memory(&fs, "ok.tgz", p.buf, p.used, &lim, &err), TFS_OK);
	tfs_fs_free(fs);
	/* Not an archive at all: TFS_E_FORMAT, so the caller may try others. */
	/* Names are counted too: deep paths, their made-up parents, and a path
	 * longer than PATH_MAX (a finding, never read). */
	free(p.buf);
	pack_open(&p, true);
	char deep[1100] = "";
	for (int i = 0; i < 500; i++)
		strcat(deep, "d/");
	for (int i = 0; i < 100; i++) {
		char name[1200];
		snprintf(name, sizeof(name), "%sf%d", deep, i);
		pack_entry(&p, name, AE_IFREG, "x", 1, NULL);
	}
	pack_close(&p);
	lim.max_total_bytes = 64 * 1024;
	expect_limit(&p, &lim, "the cap on all members");
	tfs_archive_limits_default(&lim);
	assert_int_equal(tfs_archivefs_open_memory(&fs, "deep.tgz", p.buf, p.used, &lim, &err), TFS_OK);
	tfs_stat st;
	assert_int_equal(fs->ops->stat(fs, "deep.tgz:d/d/d", &st, &err), TFS_OK);
	assert_int_equal(st.type, TFS_ENT_DIR);
	tfs_fs_free(fs);
	free(p.buf);
	pack_open(&p, false);
	char *longname = malloc(5000);
	assert_non_null(longname);
	memset(longname, 'n', 4999);
	longname[4999] = '\0';
	pack_entry(&p, longname, AE_IFREG, "x", 1, NULL);
	pack_close(&p);
	assert_int_equal(tfs_archivefs_open_memory(&fs, "long.tar", p.buf, p.used, NULL, &err), TFS_OK);
	assert_int_not_equal(fs->ops->stat(fs, "long.tar:nnnn", &st, &err), TFS_OK);
	const tfs_findings *ff = fs->ops->findings(fs);
	assert_int_equal(ff->count, 1);
	assert_string_equal(ff->items[0].code, "archive.unsafe-path");
	tfs_fs_free(fs);
	free(longname);
	static const char text[] = "not an archive, not a store\n";
	assert_int_equal(tfs_archivefs_open_memory(&fs, "x", (const uint8_t *)text, sizeof(text) - 1,
	                                           NULL, &err), TFS_E_FORMAT);
	assert_null(fs);
	free(p.buf);
	free(zeros);
}

/* A directory stays a directory; an archive file goes to the archive reader. */
static void test_open_path(void **state)
{
	(void)state;
	char *store_dir = tu_data_path("store");
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open_path(&s, store_dir, NULL, &err), TFS_OK);
	assert_false(tfs_store_is_archive(s));
	assert_int_equal(tfs_store_kind(s), TFS_PATH_TOKENDIR);
	tfs_store_free(s);
	free(store_dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_deep),
		cmocka_unit_test(test_root_token_and_two_tokendirs),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_open_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
