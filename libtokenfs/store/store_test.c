/*
 * The store reader over in-memory images (every kind of entry SoftHSM
 * creates, and the unexpected ones) and over the real SoftHSM fixture store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cursor.h"
#include "store/fs_internal.h"
#include "testutil/testutil.h"
#include "tokenfs/names.h"
#include "tokenfs/store.h"

static const char *UUID1 = "0b7ac9e4-1c2d-3e4f-5a6b-7c8d9e0f1a2b";

static tfs_fs *image(void)
{
	tfs_fs *fs;
	tfs_error err;
	uint8_t tobj[256];
	size_t tn = tu_token_object(tobj);
	uint8_t gen[8];
	tfs_put_be64(gen, 5);
	uint8_t obj[8 + 17];
	tfs_put_be64(obj, 1);
	tfs_put_be64(obj + 8, 1); tfs_put_be64(obj + 16, 1); obj[24] = 0xff;
	char p[256];
	assert_int_equal(tfs_memfs_new(&fs, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/token.object", tobj, tn, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/token.lock", NULL, 0, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/generation", gen, 8, 0600, &err), TFS_OK);
	snprintf(p, sizeof(p), "s/t1/%s.object", UUID1);
	assert_int_equal(tfs_memfs_add_file(fs, p, obj, sizeof(obj), 0600, &err), TFS_OK);
	snprintf(p, sizeof(p), "s/t1/%s.lock", UUID1);
	assert_int_equal(tfs_memfs_add_file(fs, p, NULL, 0, 0600, &err), TFS_OK);
	return fs;
}

static bool has_finding(const tfs_store *s, const char *code, const char *path_suffix)
{
	for (size_t i = 0; i < tfs_store_finding_count(s); i++) {
		const tfs_finding *f = tfs_store_finding(s, i);
		const char *p = tfs_finding_path(f);
		size_t n = strlen(p), m = strlen(path_suffix);
		if (strcmp(tfs_finding_code(f), code) == 0 && n >= m && strcmp(p + n - m, path_suffix) == 0)
			return true;
	}
	return false;
}

static void test_clean_image_has_no_findings(void **state)
{
	(void)state;
	tfs_fs *fs = image();
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open_fs(&s, fs, "s", NULL, &err), TFS_OK);
	assert_int_equal(tfs_store_kind(s), TFS_PATH_TOKENDIR);
	assert_int_equal(tfs_store_finding_count(s), 0);
	assert_int_equal(tfs_store_token_count(s), 1);
	const tfs_token *t = tfs_store_token(s, 0);
	assert_string_equal(tfs_token_label(t), "demo");
	assert_string_equal(tfs_token_serial(t), "8c0efa5f3e83204c");
	assert_string_equal(tfs_token_dirname(t), "t1");
	uint32_t slot;
	assert_true(tfs_token_slot_id(t, &slot));
	assert_int_equal(slot, 0x3e83204c);
	uint64_t v;
	assert_true(tfs_token_flags(t, &v));
	assert_int_equal(v, 0x42d);
	assert_true(tfs_token_generation(t, &v));
	assert_int_equal(v, 5);
	size_t len;
	assert_null(tfs_token_pin_blob(t, TFS_PIN_USER, &len));
	assert_int_equal(tfs_token_object_count(t), 1);
	assert_string_equal(tfs_token_object_uuid(t, 0), UUID1);
	assert_true(tfs_token_object_has_lock(t, 0));
	tfs_object *o;
	assert_int_equal(tfs_token_load_object(&o, t, 0, &err), TFS_OK);
	assert_true(tfs_attr_bool(tfs_object_find(o, 1)));
	tfs_object_free(o);
	tfs_store_free(s);

	/* The same image opened at the token and at the object file. */
	assert_int_equal(tfs_store_open_fs(&s, fs, "s/t1", NULL, &err), TFS_OK);
	assert_int_equal(tfs_store_kind(s), TFS_PATH_TOKEN);
	assert_int_equal(tfs_store_token_count(s), 1);
	tfs_store_free(s);
	char p[256];
	snprintf(p, sizeof(p), "s/t1/%s.object", UUID1);
	assert_int_equal(tfs_store_open_fs(&s, fs, p, NULL, &err), TFS_OK);
	assert_int_equal(tfs_store_kind(s), TFS_PATH_OBJECT_FILE);
	t = tfs_store_token(s, 0);
	/* In its token directory, the file takes that token's token.object:
	 * its label, serial and PIN blobs. */
	assert_non_null(tfs_token_metadata(t));
	assert_string_equal(tfs_token_label(t), "demo");
	assert_int_equal(tfs_store_finding_count(s), 0);
	assert_string_equal(tfs_token_object_path(t, 0), p);
	assert_true(tfs_token_object_has_lock(t, 0));
	tfs_store_free(s);
	tfs_fs_free(fs);
}

static void test_unexpected_entries_become_findings(void **state)
{
	(void)state;
	tfs_fs *fs = image();
	tfs_error err;
	uint8_t junk[3] = {1, 2, 3};
	assert_int_equal(tfs_memfs_add_symlink(fs, "s/t1/aaaa.object", &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_dir(fs, "s/t1/subdir", 0700, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/notes.txt", junk, 3, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/gone.lock", NULL, 0, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/nolock.object", junk, 3, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_dir(fs, "s/t2", 0700, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/stray", junk, 3, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t3/token.object", junk, 3, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t3/generation", junk, 3, 0600, &err), TFS_OK);
	tfs_store *s;
	assert_int_equal(tfs_store_open_fs(&s, fs, "s", NULL, &err), TFS_OK);
	assert_true(has_finding(s, "token.unexpected-entry", "t1/aaaa.object"));
	assert_true(has_finding(s, "token.unexpected-entry", "t1/subdir"));
	assert_true(has_finding(s, "token.unexpected-entry", "t1/notes.txt"));
	assert_true(has_finding(s, "token.orphan-lock", "t1/gone.lock"));
	assert_true(has_finding(s, "token.missing-lock", "t1/nolock.object"));
	assert_true(has_finding(s, "token.metadata-missing", "s/t2"));
	assert_true(has_finding(s, "store.unexpected-entry", "s/stray"));
	assert_true(has_finding(s, "token.metadata-unreadable", "t3/token.object"));
	assert_true(has_finding(s, "token.generation-size", "t3/generation"));
	assert_int_equal(tfs_store_token_count(s), 3);
	/* The symlink is not an object: only the real files count. */
	assert_int_equal(tfs_token_object_count(tfs_store_token(s, 0)), 2);
	tfs_store_free(s);
	tfs_fs_free(fs);
}

/* Each store finding belongs to the token whose directory holds it, even
 * when another token's name is a prefix of it ("t1" and "t1-old"); a stray
 * file in the tokendir belongs to none. */
static void test_findings_belong_to_their_token(void **state)
{
	(void)state;
	tfs_fs *fs = image();
	tfs_error err;
	assert_int_equal(tfs_memfs_add_dir(fs, "s/t1-old", 0700, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_dir(fs, "s/t0", 0700, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/t1/stray", NULL, 0, 0600, &err), TFS_OK);
	assert_int_equal(tfs_memfs_add_file(fs, "s/README", NULL, 0, 0600, &err), TFS_OK);
	tfs_store *s;
	assert_int_equal(tfs_store_open_fs(&s, fs, "s", NULL, &err), TFS_OK);
	assert_int_equal(tfs_store_token_count(s), 3);
	size_t owned = 0;
	for (size_t i = 0; i < tfs_store_finding_count(s); i++) {
		const tfs_finding *f = tfs_store_finding(s, i);
		const tfs_token *tok = tfs_store_finding_token(s, i);
		if (strcmp(tfs_finding_path(f), "s/README") == 0) {
			assert_null(tok);
			continue;
		}
		assert_non_null(tok);
		size_t n = strlen(tfs_token_path(tok));
		assert_memory_equal(tfs_finding_path(f), tfs_token_path(tok), n);
		assert_true(tfs_finding_path(f)[n] == '\0' || tfs_finding_path(f)[n] == '/');
		owned++;
	}
	size_t listed = 0;
	for (size_t t = 0; t < tfs_store_token_count(s); t++) {
		const tfs_token *tok = tfs_store_token(s, t);
		size_t n = strlen(tfs_token_path(tok));
		for (size_t i = 0; i < tfs_token_finding_count(tok); i++)
			assert_memory_equal(tfs_finding_path(tfs_token_finding(tok, i)), tfs_token_path(tok), n);
		listed += tfs_token_finding_count(tok);
		assert_null(tfs_token_finding(tok, tfs_token_finding_count(tok)));
	}
	assert_int_equal(listed, owned);
	assert_true(has_finding(s, "token.unexpected-entry", "s/t1/stray"));
	assert_true(has_finding(s, "store.unexpected-entry", "s/README"));
	assert_true(owned >= 3); /* t1's stray file, t0 and t1-old without token.object */
	tfs_store_free(s);
	tfs_fs_free(fs);
}

static void test_open_rejects_what_is_no_store(void **state)
{
	(void)state;
	tfs_fs *fs = image();
	tfs_error err;
	tfs_store *s;
	assert_int_equal(tfs_store_open_fs(&s, fs, "s/t1/token.lock", NULL, &err), TFS_E_INVALID);
	assert_string_equal(err.where, "s/t1/token.lock");
	assert_int_equal(tfs_store_open_fs(&s, fs, "nope", NULL, &err), TFS_E_IO);
	assert_null(s);
	tfs_fs_free(fs);
}

static void test_real_fixture_store(void **state)
{
	(void)state;
	char path[4096];
	snprintf(path, sizeof(path), "%s/store", getenv("TFS_TESTDATA"));
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, path, NULL, &err), TFS_OK);
	assert_int_equal(tfs_store_kind(s), TFS_PATH_TOKENDIR);
	assert_int_equal(tfs_store_token_count(s), 2);
	int demo = 0, second = 0;
	for (size_t t = 0; t < 2; t++) {
		const tfs_token *tok = tfs_store_token(s, t);
		demo += strcmp(tfs_token_label(tok), "demo") == 0;
		second += strcmp(tfs_token_label(tok), "second") == 0;
		size_t len;
		assert_non_null(tfs_token_pin_blob(tok, TFS_PIN_SO, &len));
		assert_int_equal(len, 72);
		assert_non_null(tfs_token_pin_blob(tok, TFS_PIN_USER, &len));
		assert_int_equal(len, 72);
		assert_int_equal(strlen(tfs_token_serial(tok)), 16);
		for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
			tfs_object *o;
			assert_int_equal(tfs_token_load_object(&o, tok, i, &err), TFS_OK);
			assert_true(tfs_object_attr_count(o) > 5);
			tfs_object_free(o);
			assert_true(tfs_token_object_has_lock(tok, i));
		}
	}
	assert_int_equal(demo, 1);
	assert_int_equal(second, 1);
	/* A clean SoftHSM store has nothing above info. */
	for (size_t i = 0; i < tfs_store_finding_count(s); i++)
		assert_int_equal(tfs_finding_severity(tfs_store_finding(s, i)), TFS_SEV_INFO);
	tfs_store_free(s);
}


static bool lock_name(const char *name)
{
	size_t n = strlen(name);
	return !(n > 5 && strcmp(name + n - 5, ".lock") == 0 && strcmp(name, "token.lock") != 0);
}

/*
 * A token directory on disk whose object lock files are a FIFO, a
 * directory and a symbolic link, with an orphan FIFO, a token.lock that is
 * not empty and a hard-linked object. Object lock files are listed by the
 * type the directory entry tells (d_type), without a stat: each entry must
 * get the type lstat gives, everything else its whole stat, and the store
 * the findings it had when every entry was stat'ed.
 */
static void test_posix_lock_files_typed_like_lstat(void **state)
{
	(void)state;
	char root[] = "/tmp/tfs-store-XXXXXX", dir[64], p[160];
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/t1", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	uint8_t b[256];
	static const char *const stems[] = {"a0000000-0000-4000-8000-000000000000",
	                                    "b0000000-0000-4000-8000-000000000000",
	                                    "c0000000-0000-4000-8000-000000000000",
	                                    "d0000000-0000-4000-8000-000000000000"};
	FILE *f;
	snprintf(p, sizeof(p), "%s/token.object", dir);
	assert_non_null(f = fopen(p, "wb"));
	assert_int_equal(fwrite(b, 1, tu_token_object(b), f) > 0, 1);
	assert_int_equal(fclose(f), 0);
	snprintf(p, sizeof(p), "%s/token.lock", dir);
	assert_non_null(f = fopen(p, "wb"));
	assert_int_equal(fwrite("abc", 1, 3, f), 3);
	assert_int_equal(fclose(f), 0);
	tfs_put_be64(b, 1);
	tfs_put_be64(b + 8, 1); /* CKA_TOKEN */
	tfs_put_be64(b + 16, 1);
	b[24] = 0xff;
	for (size_t k = 0; k < 4; k++) {
		snprintf(p, sizeof(p), "%s/%s.object", dir, stems[k]);
		assert_non_null(f = fopen(p, "wb"));
		assert_int_equal(fwrite(b, 1, 25, f), 25);
		assert_int_equal(fclose(f), 0);
	}
	snprintf(p, sizeof(p), "%s/%s.lock", dir, stems[0]);
	assert_non_null(f = fopen(p, "wb"));
	assert_int_equal(fclose(f), 0);
	snprintf(p, sizeof(p), "%s/%s.lock", dir, stems[1]);
	assert_int_equal(mkfifo(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/%s.lock", dir, stems[2]);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/%s.lock", dir, stems[3]);
	assert_int_equal(symlink("nowhere", p), 0);
	snprintf(p, sizeof(p), "%s/e0000000-0000-4000-8000-000000000000.lock", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	char a[160];
	snprintf(a, sizeof(a), "%s/%s.object", dir, stems[0]);
	snprintf(p, sizeof(p), "%s/f0000000-0000-4000-8000-000000000000.object", dir);
	assert_int_equal(link(a, p), 0);
	snprintf(p, sizeof(p), "%s/f0000000-0000-4000-8000-000000000000.lock", dir);
	assert_non_null(f = fopen(p, "wb"));
	assert_int_equal(fclose(f), 0);

	/* The listing with and without the stat of object lock files. */
	tfs_fs *fs = tfs_fs_posix();
	tfs_dirent *all, *some;
	size_t nall, nsome;
	tfs_error err;
	assert_int_equal(fs->ops->list(fs, dir, NULL, &all, &nall, &err), TFS_OK);
	assert_int_equal(fs->ops->list(fs, dir, lock_name, &some, &nsome, &err), TFS_OK);
	assert_int_equal(nall, 13);
	assert_int_equal(nsome, nall);
	for (size_t i = 0; i < nall; i++) {
		assert_string_equal(some[i].name, all[i].name);
		assert_int_equal(some[i].st.type, all[i].st.type);
		if (lock_name(all[i].name)) {
			assert_int_equal(some[i].st.size, all[i].st.size);
			assert_int_equal(some[i].st.nlink, all[i].st.nlink);
			assert_int_equal(some[i].st.mode, all[i].st.mode);
		}
	}
	tfs_dirents_free(all, nall);
	tfs_dirents_free(some, nsome);

	tfs_store *s;
	assert_int_equal(tfs_store_open(&s, root, NULL, &err), TFS_OK);
	char want[96];
	static const char *const what[] = {"special file", "directory", "symbolic link"};
	for (size_t k = 1; k < 4; k++) {
		snprintf(want, sizeof(want), "t1/%s.lock", stems[k]);
		assert_true(has_finding(s, "token.unexpected-entry", want));
		snprintf(want, sizeof(want), "t1/%s.object", stems[k]);
		assert_true(has_finding(s, "token.missing-lock", want));
	}
	size_t kinds = 0;
	for (size_t i = 0; i < tfs_store_finding_count(s); i++)
		for (size_t k = 0; k < 3; k++)
			kinds += strstr(tfs_finding_message(tfs_store_finding(s, i)), what[k]) == tfs_finding_message(tfs_store_finding(s, i));
	assert_int_equal(kinds, 4); /* the three above and the orphan FIFO */
	assert_true(has_finding(s, "token.unexpected-entry", "t1/e0000000-0000-4000-8000-000000000000.lock"));
	assert_false(has_finding(s, "token.orphan-lock", "t1/e0000000-0000-4000-8000-000000000000.lock"));
	assert_true(has_finding(s, "token.lock-not-empty", "t1/token.lock"));
	snprintf(want, sizeof(want), "t1/%s.object", stems[0]);
	assert_true(has_finding(s, "file.hard-link", want));
	assert_true(has_finding(s, "file.hard-link", "t1/f0000000-0000-4000-8000-000000000000.object"));
	assert_false(has_finding(s, "token.missing-lock", want));
	tfs_store_free(s);

	const char *names[] = {"token.object", "token.lock", "e0000000-0000-4000-8000-000000000000.lock",
	                       "f0000000-0000-4000-8000-000000000000.object",
	                       "f0000000-0000-4000-8000-000000000000.lock"};
	for (size_t k = 0; k < 5; k++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[k]);
		assert_int_equal(unlink(p), 0);
	}
	for (size_t k = 0; k < 4; k++) {
		snprintf(p, sizeof(p), "%s/%s.object", dir, stems[k]);
		assert_int_equal(unlink(p), 0);
		snprintf(p, sizeof(p), "%s/%s.lock", dir, stems[k]);
		assert_int_equal(k == 2 ? rmdir(p) : unlink(p), 0);
	}
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(rmdir(root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_image_has_no_findings),
		cmocka_unit_test(test_unexpected_entries_become_findings),
		cmocka_unit_test(test_findings_belong_to_their_token),
		cmocka_unit_test(test_open_rejects_what_is_no_store),
		cmocka_unit_test(test_real_fixture_store),
		cmocka_unit_test(test_posix_lock_files_typed_like_lstat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
