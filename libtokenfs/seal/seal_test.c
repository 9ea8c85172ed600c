/*
 * Sealed manifests on copies of the real SoftHSM 2.6.1 store in
 * testdata/store, through the public verify API: seal, then every tamper
 * class (every byte of token.object and of one object file flipped two
 * ways, a sample of bytes of every other file, deleted, added and renamed
 * files, mode changes, a rollback made with the library's own writer, an
 * edited or damaged seal), and the changes SoftHSM makes in normal use,
 * which must stay information. Plus known-answer vectors for HKDF and HMAC
 * and the canonical form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cursor.h"
#include "seal/seal_internal.h"
#include "tokenfs/names.h"
#include "tokenfs/verify.h"

#define DEMO_USER "user-pin-1"
#define DEMO_SO "so-secret-1"
#define SECOND_USER "user-pin-2"
#define CKA_LABEL 0x3
/* Objects of the demo token (testdata/store-inventory.tsv). */
#define WRAPPING "f2cd43c6-e71e-48f6-1a05-93d9661d6c53.object" /* private, every kind */
#define DATA_PUBLIC "99bf426f-0f35-ab28-7c20-b5aafeeca46c.object"
#define AES_PLAIN "ca4ee17d-5f67-dfc0-21da-9179d47c3894.object"

/* ---- a private copy of the fixture store ---- */

typedef struct fixture {
	char root[PATH_MAX];   /* temp dir */
	char demo[PATH_MAX];   /* demo token dir */
	char second[PATH_MAX]; /* second token dir */
} fixture;

static void path_in(char out[PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	assert_true(n > 0 && n < PATH_MAX);
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(chmod(to, 0600), 0); /* SoftHSM's modes; git keeps none */
}

static void copy_dir(const char *from, const char *to)
{
	assert_int_equal(mkdir(to, 0700), 0);
	assert_int_equal(chmod(to, 0700), 0);
	DIR *d = opendir(from);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char a[PATH_MAX], b[PATH_MAX];
		path_in(a, from, e->d_name);
		path_in(b, to, e->d_name);
		struct stat st;
		assert_int_equal(lstat(a, &st), 0);
		if (S_ISDIR(st.st_mode))
			copy_dir(a, b);
		else if (S_ISREG(st.st_mode))
			copy_file(a, b);
	}
	closedir(d);
}

static void rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d != NULL && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char p[PATH_MAX];
			if (snprintf(p, sizeof(p), "%s/%s", path, e->d_name) < (int)sizeof(p))
				rm_tree(p);
		}
		if (d != NULL)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static void fixture_make(fixture *f)
{
	snprintf(f->root, sizeof(f->root), "/tmp/tfs-seal-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	char from[PATH_MAX], store[PATH_MAX];
	const char *testdata = getenv("TFS_TESTDATA");
	assert_non_null(testdata);
	path_in(from, testdata, "store");
	path_in(store, f->root, "store");
	copy_dir(from, store);
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, store, NULL, &err), TFS_OK);
	for (size_t i = 0; i < tfs_store_token_count(s); i++) {
		const tfs_token *t = tfs_store_token(s, i);
		char *dst = strcmp(tfs_token_label(t), "demo") == 0 ? f->demo : f->second;
		assert_true(strlen(tfs_token_path(t)) < PATH_MAX);
		strcpy(dst, tfs_token_path(t));
	}
	tfs_store_free(s);
	assert_true(f->demo[0] != '\0' && f->second[0] != '\0');
}

/* cmocka set-up and tear-down: a fresh copy per test, removed even when
 * the test fails. */
static int fixture_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	fixture_make(f);
	return 0;
}

static int fixture_teardown(void **state)
{
	fixture *f = *state;
	if (f != NULL && f->root[0] != '\0')
		rm_tree(f->root);
	free(f);
	return 0;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	uint8_t *data;
	tfs_error err;
	assert_int_equal(tfs_seal_read_file(path, TFS_SEAL_MAX_SIZE, &data, n, &err), TFS_OK);
	return data;
}

static void put_file(const char *path, const uint8_t *data, size_t n)
{
	tfs_error err;
	assert_int_equal(tfs_write_file_atomic(path, data, n, 0600, &err), TFS_OK);
}

/* Flips one byte in place, as a disk error or an editor would. */
static void xor_byte(const char *path, size_t off, uint8_t x)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= x;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* ---- running verify with a seal ---- */

typedef struct result {
	int rc;
	bool sealed;
	size_t n;
	struct {
		char code[48];
		tfs_severity sev;
		char path[PATH_MAX];
		bool has_attr;
		uint64_t attr;
		char msg[1024];
	} f[128];
} result;

static result R; /* large: one, reused */

static const result *run(const char *tokdir, tfs_seal_mode mode, const char *user,
                         const char *so, const char *seal_path)
{
	memset(&R, 0, sizeof(R));
	tfs_store *s;
	tfs_error err;
	/* Thousands of files damaged a moment ago: without a writer beside the
	 * test there is nothing to wait for (store/settle.c), so no budget. */
	tfs_open_options oo = {.lock_timeout_ms = 1};
	assert_int_equal(tfs_store_open(&s, tokdir, &oo, &err), TFS_OK);
	assert_int_equal(tfs_store_token_count(s), 1);
	tfs_report *rep;
	assert_int_equal(tfs_report_new(&rep, &err), TFS_OK);
	tfs_verify_options o = {.seal = mode, .seal_path = seal_path};
	if (user != NULL) {
		o.user_pin = (const uint8_t *)user;
		o.user_pin_len = strlen(user);
	}
	if (so != NULL) {
		o.so_pin = (const uint8_t *)so;
		o.so_pin_len = strlen(so);
	}
	tfs_verify_summary sum;
	R.rc = tfs_verify_token(rep, &sum, s, tfs_store_token(s, 0), &o, &err);
	R.sealed = sum.sealed;
	for (size_t i = 0; i < tfs_report_finding_count(rep) && R.n < 128; i++) {
		const tfs_finding *f = tfs_report_finding(rep, i);
		snprintf(R.f[R.n].code, sizeof(R.f[R.n].code), "%s", tfs_finding_code(f));
		R.f[R.n].sev = tfs_finding_severity(f);
		snprintf(R.f[R.n].path, sizeof(R.f[R.n].path), "%s", tfs_finding_path(f));
		R.f[R.n].has_attr = tfs_finding_attribute(f, &R.f[R.n].attr);
		snprintf(R.f[R.n].msg, sizeof(R.f[R.n].msg), "%s", tfs_finding_message(f));
		R.n++;
	}
	tfs_report_free(rep);
	tfs_store_free(s);
	return &R;
}

static bool is_seal(const char *code)
{
	return strncmp(code, "seal.", 5) == 0;
}

static void dump(const result *r)
{
	for (size_t i = 0; i < r->n; i++)
		print_message("  %s %s %s: %s\n", tfs_severity_name(r->f[i].sev), r->f[i].code,
		              r->f[i].path, r->f[i].msg);
}

/* The worst severity of the seal's findings (-1: none) on path (NULL: any). */
static int seal_worst(const result *r, const char *path)
{
	int worst = -1;
	for (size_t i = 0; i < r->n; i++)
		if (is_seal(r->f[i].code) && (path == NULL || strcmp(r->f[i].path, path) == 0) &&
		    (int)r->f[i].sev > worst)
			worst = (int)r->f[i].sev;
	return worst;
}

static bool any_error_on(const result *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].sev == TFS_SEV_ERROR && strcmp(r->f[i].path, path) == 0)
			return true;
	return false;
}

static size_t count_code(const result *r, const char *code, tfs_severity sev, const char *path)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += strcmp(r->f[i].code, code) == 0 && r->f[i].sev == sev &&
		     (path == NULL || strcmp(r->f[i].path, path) == 0);
	return n;
}

static void expect(const result *r, const char *code, tfs_severity sev, const char *path)
{
	if (count_code(r, code, sev, path) == 0) {
		dump(r);
		fail_msg("expected %s %s on %s", tfs_severity_name(sev), code, path ? path : "(any)");
	}
}

/* No seal finding above information anywhere. */
static void expect_clean(const result *r)
{
	assert_int_equal(r->rc, TFS_OK);
	assert_true(r->sealed);
	if (seal_worst(r, NULL) > TFS_SEV_INFO) {
		dump(r);
		fail_msg("seal findings above info on an untouched or normally used token");
	}
}

static void seal_demo(const fixture *f)
{
	const result *r = run(f->demo, TFS_SEAL_WRITE, DEMO_USER, NULL, NULL);
	assert_int_equal(r->rc, TFS_OK);
	assert_true(r->sealed);
	assert_int_equal(seal_worst(r, NULL), TFS_SEV_INFO);
	expect(r, "seal.written", TFS_SEV_INFO, NULL);
}

static const result *check_demo(const fixture *f)
{
	return run(f->demo, TFS_SEAL_CHECK, DEMO_USER, NULL, NULL);
}

/* ---- known answers ---- */

static void unhex(uint8_t *out, size_t n, const char *hex)
{
	assert_true(tfs_seal_unhex_exact(out, n, hex, strlen(hex)));
}

static void test_hkdf_hmac_known_answers(void **state)
{
	(void)state;
	/* RFC 5869, test case 1 */
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
	memset(ikm, 0x0b, sizeof(ikm));
	unhex(salt, sizeof(salt), "000102030405060708090a0b0c");
	unhex(info, sizeof(info), "f0f1f2f3f4f5f6f7f8f9");
	unhex(want, sizeof(want), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	                          "34007208d5b887185865");
	tfs_error err;
	assert_int_equal(tfs_seal_hkdf(okm, sizeof(okm), ikm, sizeof(ikm), salt, sizeof(salt), info,
	                               sizeof(info), &err), TFS_OK);
	assert_memory_equal(okm, want, sizeof(want));
	/* RFC 4231, test case 2 */
	uint8_t mac[32], mac_want[32];
	const char *data = "what do ya want for nothing?";
	unhex(mac_want, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	assert_int_equal(tfs_seal_hmac(mac, (const uint8_t *)"Jefe", 4, (const uint8_t *)data,
	                               strlen(data), &err), TFS_OK);
	assert_memory_equal(mac, mac_want, 32);
}

static void test_canonical_form(void **state)
{
	(void)state;
	const char *in = "{ \"mac\": \"ff\", \"b\": 18446744073709551615, \"a\": [true, null, "
	                 "\"q\\\"\\n\\/\\u00e9\", -3, {\"z\": 1, \"y\": {}}] }";
	json_object *o = json_tokener_parse(in);
	assert_non_null(o);
	char *text;
	size_t len;
	tfs_error err;
	assert_int_equal(tfs_seal_canonical(&text, &len, o, &err), TFS_OK);
	assert_string_equal(text, "{\"a\":[true,null,\"q\\\"\\u000a/\xc3\xa9\",-3,{\"y\":{},\"z\":1}],"
	                          "\"b\":18446744073709551615}");
	assert_int_equal(len, strlen(text));
	free(text);
	json_object_put(o);
	o = json_tokener_parse("{\"x\": 1.5}");
	assert_int_equal(tfs_seal_canonical(&text, &len, o, &err), TFS_E_FORMAT);
	json_object_put(o);
}

/* ---- an untouched store, and what the seal holds ---- */

static void test_untouched_store_checks_clean(void **state)
{
	fixture f = *(fixture *)*state;
	seal_demo(&f);
	char seal[PATH_MAX];
	path_in(seal, f.demo, "tokenfs.seal");
	struct stat st;
	assert_int_equal(stat(seal, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	const result *r = check_demo(&f);
	expect_clean(r);
	expect(r, "seal.checked", TFS_SEV_INFO, seal);
	assert_int_equal(count_code(r, "seal.generation-bumped", TFS_SEV_INFO, NULL), 0);
	/* The SO PIN unwraps the same token key: the same seal verifies. */
	expect_clean(run(f.demo, TFS_SEAL_CHECK, NULL, DEMO_SO, NULL));

	/* Never a plaintext of an encrypted value or of key material. */
	size_t n;
	char *text = (char *)slurp(seal, &n);
	text = realloc(text, n + 1);
	text[n] = '\0';
	static const char *const secrets[] = {
		"tokenfs private data object payload",
		"746f6b656e66732070726976617465", /* the same, in hex */
		"000102030405060708090a0b0c0d0e0f", /* aes128-public-plaintext, plaintext on disk */
		"6165733235362d70726976617465",     /* "aes256-private", an encrypted label */
	};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(text, secrets[i]) != NULL)
			fail_msg("the seal holds a secret: %s", secrets[i]);
	assert_non_null(strstr(text, "\"fingerprint\":\"kcv:c6a13b\"")); /* SoftHSM's own KCV */
	assert_non_null(strstr(text, "\"redacted\":\"pin-blob\""));
	free(text);

	/* A seal elsewhere (--seal-file) works the same. */
	char other[PATH_MAX];
	path_in(other, f.root, "elsewhere.seal");
	assert_int_equal(run(f.demo, TFS_SEAL_WRITE, DEMO_USER, NULL, other)->rc, TFS_OK);
	expect_clean(run(f.demo, TFS_SEAL_CHECK, DEMO_USER, NULL, other));
	/* A seal file inside the token dir under another name is left out of itself. */
	path_in(other, f.demo, "backup-2024.seal");
	assert_int_equal(run(f.demo, TFS_SEAL_WRITE, DEMO_USER, NULL, other)->rc, TFS_OK);
	expect_clean(run(f.demo, TFS_SEAL_CHECK, DEMO_USER, NULL, other));
}

static void test_usage_errors(void **state)
{
	fixture f = *(fixture *)*state;
	/* No PIN: no key, no seal. */
	assert_int_equal(run(f.demo, TFS_SEAL_WRITE, NULL, NULL, NULL)->rc, TFS_E_INVALID);
	/* No seal to check. */
	assert_int_equal(run(f.demo, TFS_SEAL_CHECK, DEMO_USER, NULL, NULL)->rc, TFS_E_IO);
}

/* ---- normal use: information only ---- */

static void rewrite_object(const char *path, const char *label)
{
	size_t n;
	uint8_t *data = slurp(path, &n);
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, data, n, &err), TFS_OK);
	if (label != NULL) {
		size_t k;
		for (k = 0; k < tfs_object_attr_count(obj); k++)
			if (tfs_attr_type(tfs_object_attr(obj, k)) == CKA_LABEL)
				break;
		assert_true(k < tfs_object_attr_count(obj));
		assert_false(tfs_object_attr_encrypted(obj, tfs_object_attr(obj, k)));
		assert_int_equal(tfs_object_set_bytes(obj, k, (const uint8_t *)label, strlen(label), &err),
		                 TFS_OK);
	}
	tfs_object_set_generation(obj, tfs_object_generation(obj) + 1);
	uint8_t *out;
	size_t out_n;
	assert_int_equal(tfs_object_serialize(obj, &out, &out_n, &err), TFS_OK);
	put_file(path, out, out_n);
	free(out);
	tfs_object_free(obj);
	free(data);
}

static void set_token_flags(const char *path, uint64_t set, uint64_t clear)
{
	size_t n;
	uint8_t *data = slurp(path, &n);
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, data, n, &err), TFS_OK);
	const tfs_attr *a = tfs_object_find(obj, TFS_CKA_OS_TOKENFLAGS);
	assert_non_null(a);
	size_t off = (size_t)tfs_attr_value_offset(a);
	tfs_put_be64(data + off, (tfs_be64(data + off) | set) & ~clear);
	tfs_put_be64(data, tfs_be64(data) + 1); /* SoftHSM bumps the generation */
	put_file(path, data, n);
	tfs_object_free(obj);
	free(data);
}

static void bump_generation_file(const char *dir, uint64_t by)
{
	char p[PATH_MAX];
	path_in(p, dir, "generation");
	size_t n;
	uint8_t *data = slurp(p, &n);
	assert_int_equal(n, 8);
	tfs_put_be64(data, tfs_be64(data) + by);
	put_file(p, data, n);
	free(data);
}

static void test_normal_use_is_information(void **state)
{
	fixture f = *(fixture *)*state;
	seal_demo(&f);
	char obj[PATH_MAX], tokobj[PATH_MAX], gen[PATH_MAX];
	path_in(obj, f.demo, WRAPPING);
	path_in(tokobj, f.demo, "token.object");
	path_in(gen, f.demo, "generation");

	rewrite_object(obj, NULL); /* the same attributes, generation + 1 */
	const result *r = check_demo(&f);
	expect_clean(r);
	expect(r, "seal.generation-bumped", TFS_SEV_INFO, obj);

	bump_generation_file(f.demo, 3);
	r = check_demo(&f);
	expect_clean(r);
	expect(r, "seal.generation-bumped", TFS_SEV_INFO, gen);

	set_token_flags(tokobj, 0x10000 /* CKF_USER_PIN_COUNT_LOW */, 0);
	r = check_demo(&f);
	expect_clean(r);
	expect(r, "seal.pin-count-flags", TFS_SEV_INFO, tokobj);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].code, "seal.pin-count-flags") == 0)
			print_message("  normal use: %s\n", r->f[i].msg);
	set_token_flags(tokobj, 0x100000 | 0x200000 /* SO COUNT_LOW, FINAL_TRY */, 0x10000);
	expect_clean(check_demo(&f));
}

/* ---- tampering with files ---- */

static void test_files_deleted_added_renamed_chmod(void **state)
{
	fixture f = *(fixture *)*state;
	seal_demo(&f);
	char p[PATH_MAX], q[PATH_MAX];
	size_t cases = 0;

	/* Deleted: an object, a lock, token.lock, generation. */
	static const char *const del[] = {WRAPPING, "99bf426f-0f35-ab28-7c20-b5aafeeca46c.lock",
	                                  "token.lock", "generation"};
	for (size_t i = 0; i < 4; i++) {
		path_in(p, f.demo, del[i]);
		size_t n;
		uint8_t *keep = slurp(p, &n);
		assert_int_equal(unlink(p), 0);
		const result *r = check_demo(&f);
		expect(r, "seal.file-removed", TFS_SEV_ERROR, p);
		put_file(p, keep, n);
		free(keep);
		expect_clean(check_demo(&f));
		cases++;
	}
	/* Added: a stray file, a directory, a new object and its lock. */
	path_in(p, f.demo, "notes.txt");
	put_file(p, (const uint8_t *)"x", 1);
	expect(check_demo(&f), "seal.file-added", TFS_SEV_ERROR, p);
	unlink(p);
	path_in(p, f.demo, "subdir");
	assert_int_equal(mkdir(p, 0700), 0);
	expect(check_demo(&f), "seal.file-added", TFS_SEV_ERROR, p);
	rmdir(p);
	path_in(p, f.demo, DATA_PUBLIC);
	path_in(q, f.demo, "00000000-1111-2222-3333-444444444444.object");
	copy_file(p, q);
	const result *r = check_demo(&f);
	expect(r, "seal.file-added", TFS_SEV_ERROR, q);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].path, q) == 0 && strcmp(r->f[i].code, "seal.file-added") == 0)
			/* Described as dump summarises it (tokenfs/pairing.h). */
			assert_non_null(strstr(r->f[i].msg, ": data object 'data-public'"));
	unlink(q);
	cases += 3;
	/* Renamed: removed + added. */
	assert_int_equal(rename(p, q), 0);
	r = check_demo(&f);
	expect(r, "seal.file-removed", TFS_SEV_ERROR, p);
	expect(r, "seal.file-added", TFS_SEV_ERROR, q);
	assert_int_equal(rename(q, p), 0);
	expect_clean(check_demo(&f));
	cases++;
	/* Modes: a file and the directory. */
	assert_int_equal(chmod(p, 0644), 0);
	r = check_demo(&f);
	expect(r, "seal.file-changed", TFS_SEV_ERROR, p);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(chmod(f.demo, 0755), 0);
	expect(check_demo(&f), "seal.file-changed", TFS_SEV_ERROR, f.demo);
	assert_int_equal(chmod(f.demo, 0700), 0);
	/* A byte appended to an empty lock file. */
	path_in(p, f.demo, "token.lock");
	put_file(p, (const uint8_t *)"\0", 1);
	expect(check_demo(&f), "seal.file-changed", TFS_SEV_ERROR, p);
	put_file(p, (const uint8_t *)"", 0);
	expect_clean(check_demo(&f));
	cases += 3;
	print_message("  file cases: %zu of %zu detected as errors\n", cases, cases);
}

static void test_rollback_is_an_error(void **state)
{
	fixture f = *(fixture *)*state;
	char p[PATH_MAX];
	path_in(p, f.demo, DATA_PUBLIC);
	size_t n;
	uint8_t *old = slurp(p, &n);
	rewrite_object(p, "data-public-v2"); /* a real write: new label, generation + 1 */
	seal_demo(&f);
	put_file(p, old, n); /* the backup of the older version comes back */
	free(old);
	const result *r = check_demo(&f);
	expect(r, "seal.attribute-changed", TFS_SEV_ERROR, p);
	expect(r, "seal.generation-changed", TFS_SEV_ERROR, p);
	bool named = false;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].code, "seal.attribute-changed") == 0) {
			assert_true(r->f[i].has_attr);
			assert_int_equal(r->f[i].attr, CKA_LABEL);
			assert_non_null(strstr(r->f[i].msg, "rolled back"));
			named = strstr(r->f[i].msg, "CKA_LABEL changed from \"data-public-v2\" to "
			                             "\"data-public\"") != NULL;
			print_message("  rollback: %s\n", r->f[i].msg);
		}
	assert_true(named);
}

/* ---- every byte ---- */

typedef struct tally {
	size_t flips, seal_errors, info_benign, without_seal, unparseable;
} tally;

/* The range [*from, *to) of a token.object attribute. */
static void attr_range(const uint8_t *data, size_t n, uint64_t type, size_t *from, size_t *to)
{
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, data, n, &err), TFS_OK);
	*from = *to = 0;
	for (size_t k = 0; k < tfs_object_attr_count(obj); k++)
		if (tfs_attr_type(tfs_object_attr(obj, k)) == type) {
			*from = (size_t)tfs_attr_offset(tfs_object_attr(obj, k));
			*to = k + 1 < tfs_object_attr_count(obj)
			    ? (size_t)tfs_attr_offset(tfs_object_attr(obj, k + 1)) : n;
		}
	tfs_object_free(obj);
}

/* Flips byte `off` of `name` with x, checks, flips it back. */
static void flip_one(const fixture *f, const char *name, const uint8_t *orig, size_t n,
                     size_t off, uint8_t x, tally *t)
{
	char p[PATH_MAX];
	path_in(p, f->demo, name);
	bool is_obj = tfs_seal_is_object_file(name), is_gen = strcmp(name, "generation") == 0;
	bool is_tok = strcmp(name, "token.object") == 0;
	/* What SoftHSM itself does: a generation that rises a little, or the
	 * PIN-failure bits of the token flags. */
	bool benign = false;
	if ((is_obj && off < 8) || is_gen) {
		uint64_t old = tfs_be64(orig), now = old ^ ((uint64_t)x << (8 * (7 - off)));
		benign = now > old && now - old <= TFS_SEAL_MAX_BUMP;
	}
	size_t uf = 0, ut = 0, ff = 0, ft = 0;
	if (is_tok) {
		attr_range(orig, n, TFS_CKA_OS_USERPIN, &uf, &ut);
		attr_range(orig, n, TFS_CKA_OS_TOKENFLAGS, &ff, &ft);
		if (off >= ft - 8 && off < ft) {
			uint64_t delta = (uint64_t)x << (8 * (ft - 1 - off));
			benign = (delta & ~TFS_SEAL_PIN_FLAGS) == 0;
		}
	}
	xor_byte(p, off, x);
	/* A damaged user PIN blob is not opened by the user PIN: use the SO's. */
	bool so_first = is_tok && off >= uf && off < ut;
	const result *r = run(f->demo, TFS_SEAL_CHECK, so_first ? NULL : DEMO_USER,
	                      so_first ? DEMO_SO : NULL, NULL);
	if (r->rc != TFS_OK || !r->sealed)
		r = run(f->demo, TFS_SEAL_CHECK, so_first ? DEMO_USER : NULL, so_first ? NULL : DEMO_SO,
		        NULL);
	t->flips++;
	int worst = seal_worst(r, p);
	if (!r->sealed) {
		/* No PIN opens the token any more, or token.object no longer parses:
		 * the seal cannot be checked, and that itself is an error. */
		if (!(r->rc != TFS_OK || any_error_on(r, p))) {
			dump(r);
			fail_msg("%s offset %zu ^0x%02x: neither the seal nor anything else noticed", name,
			         off, x);
		}
		t->without_seal++;
		t->unparseable += count_code(r, "token.metadata-unreadable", TFS_SEV_ERROR, p) > 0;
	} else if (benign) {
		if (worst != TFS_SEV_INFO) {
			dump(r);
			fail_msg("%s offset %zu ^0x%02x: expected information only", name, off, x);
		}
		t->info_benign++;
	} else {
		if (worst != TFS_SEV_ERROR) {
			dump(r);
			fail_msg("%s offset %zu ^0x%02x: not detected as an error", name, off, x);
		}
		t->seal_errors++;
	}
	xor_byte(p, off, x);
}

static void flip_file(const fixture *f, const char *name, bool every, tally *t)
{
	char p[PATH_MAX];
	path_in(p, f->demo, name);
	size_t n;
	uint8_t *orig = slurp(p, &n);
	static const uint8_t xs[] = {0xff, 0x01};
	for (size_t off = 0; off < n; off++) {
		bool sample = off < 25 || off == n / 2 || off + 1 == n || off % 97 == 0;
		if (!every && !sample)
			continue;
		for (size_t i = 0; i < (every ? 2u : 1u); i++)
			flip_one(f, name, orig, n, off, xs[i], t);
	}
	free(orig);
}

static void test_every_byte_flip_detected(void **state)
{
	fixture f = *(fixture *)*state;
	seal_demo(&f);
	tally all = {0};
	tally tok = {0}, obj = {0}, rest = {0};
	flip_file(&f, "token.object", true, &tok);
	flip_file(&f, WRAPPING, true, &obj);
	flip_file(&f, "generation", true, &rest);
	DIR *d = opendir(f.demo);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char p[PATH_MAX];
		struct stat st;
		path_in(p, f.demo, e->d_name);
		if (e->d_name[0] == '.' || strcmp(e->d_name, "token.object") == 0 ||
		    strcmp(e->d_name, WRAPPING) == 0 || strcmp(e->d_name, "generation") == 0 ||
		    strcmp(e->d_name, "tokenfs.seal") == 0 || stat(p, &st) != 0 || st.st_size == 0)
			continue;
		flip_file(&f, e->d_name, false, &rest);
	}
	closedir(d);
	expect_clean(check_demo(&f)); /* every flip was undone */
	tally *ts[] = {&tok, &obj, &rest};
	const char *names[] = {"token.object (every byte, ^0xff and ^0x01)",
	                       "aes256-wrapping-templates (every byte, both)",
	                       "generation (every byte, both) + a sample of the 11 other objects"};
	for (size_t i = 0; i < 3; i++) {
		print_message("  %s: %zu flips, %zu detected: %zu seal errors, %zu seal info (a "
		              "generation rising or PIN-failure flags, as SoftHSM does), %zu errors "
		              "without the seal (token key unreachable: %zu token.object unparseable, "
		              "%zu no PIN opens it)\n", names[i], ts[i]->flips,
		              ts[i]->seal_errors + ts[i]->info_benign + ts[i]->without_seal,
		              ts[i]->seal_errors, ts[i]->info_benign, ts[i]->without_seal,
		              ts[i]->unparseable, ts[i]->without_seal - ts[i]->unparseable);
		all.flips += ts[i]->flips;
		all.seal_errors += ts[i]->seal_errors;
		all.info_benign += ts[i]->info_benign;
		all.without_seal += ts[i]->without_seal;
	}
	print_message("  all: %zu flips, %zu detected (100%%)\n", all.flips,
	              all.seal_errors + all.info_benign + all.without_seal);
	assert_int_equal(all.flips, all.seal_errors + all.info_benign + all.without_seal);
}

/* ---- the seal itself ---- */

static void edit_seal(const char *path, const char *find, size_t skip, char with)
{
	size_t n;
	char *text = (char *)slurp(path, &n);
	text = realloc(text, n + 1);
	text[n] = '\0';
	char *at = strstr(text, find);
	assert_non_null(at);
	at[strlen(find) + skip] = with;
	put_file(path, (const uint8_t *)text, n);
	free(text);
}

/* Exactly one seal finding, with this code. */
static void expect_only(const result *r, const char *code)
{
	size_t seal = 0;
	for (size_t i = 0; i < r->n; i++)
		seal += is_seal(r->f[i].code);
	if (seal != 1 || count_code(r, code, TFS_SEV_ERROR, NULL) != 1) {
		dump(r);
		fail_msg("expected %s and nothing else from the seal", code);
	}
}

static json_object *reversed_copy(json_object *o)
{
	if (json_object_is_type(o, json_type_array)) {
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(o); i++)
			json_object_array_add(a, reversed_copy(json_object_array_get_idx(o, i)));
		return a;
	}
	if (!json_object_is_type(o, json_type_object))
		return json_object_get(o);
	const char *keys[64];
	size_t n = 0;
	json_object_object_foreach(o, k, v) {
		(void)v;
		keys[n++] = k;
	}
	json_object *r = json_object_new_object();
	while (n-- > 0)
		json_object_object_add(r, keys[n], reversed_copy(json_object_object_get(o, keys[n])));
	return r;
}

static void test_damaged_or_edited_seal(void **state)
{
	fixture f = *(fixture *)*state;
	seal_demo(&f);
	char seal[PATH_MAX], keep[PATH_MAX];
	path_in(seal, f.demo, "tokenfs.seal");
	path_in(keep, f.root, "good.seal");
	size_t n;
	uint8_t *good = slurp(seal, &n);
	put_file(keep, good, n);

	/* The MAC itself, a recorded hash, the label, a generation. */
	static const struct {
		const char *find;
		size_t skip;
		char with;
	} edits[] = {
		{"\"mac\":\"", 0, '0'},
		{"\"mac\":\"", 0, '1'},
		{"\"sha256\":\"", 5, 'x'},
		{"\"sha256\":\"", 5, '0'},
		{"\"label\":\"", 0, 'X'},
		{"\"generation\":", 0, '9'},
		{"\"mode\":\"", 2, '7'},
	};
	size_t bad = 0;
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		put_file(seal, good, n);
		edit_seal(seal, edits[i].find, edits[i].skip, edits[i].with);
		size_t m;
		uint8_t *now = slurp(seal, &m);
		bool same = m == n && memcmp(now, good, n) == 0;
		free(now);
		if (same)
			continue; /* the edit wrote the byte that was there */
		expect_only(check_demo(&f), "seal.bad-mac");
		bad++;
	}
	/* Malformed: cut, empty, not an object, not a seal, a fraction. */
	static const char *const junk[] = {"", "[]", "{\"format\": \"other\"}", "{", "null",
	                                   "{\"format\": \"tokenfs-seal\", \"version\": 2}"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		put_file(seal, (const uint8_t *)junk[i], strlen(junk[i]));
		expect_only(check_demo(&f), "seal.malformed");
	}
	put_file(seal, good, n / 2);
	expect_only(check_demo(&f), "seal.malformed");
	{
		/* Data after the manifest. */
		uint8_t *more = malloc(n + 2);
		memcpy(more, good, n);
		memcpy(more + n, "{}", 2);
		put_file(seal, more, n + 2);
		free(more);
		expect_only(check_demo(&f), "seal.malformed");
	}

	/* Reformatted, keys in reverse order: the same canonical text, still valid. */
	json_object *o = json_tokener_parse((const char *)good);
	assert_non_null(o);
	json_object *rev = reversed_copy(o);
	size_t len;
	const char *text = json_object_to_json_string_length(rev, JSON_C_TO_STRING_PLAIN, &len);
	put_file(seal, (const uint8_t *)text, len);
	expect_clean(check_demo(&f));
	json_object_put(rev);
	json_object_put(o);

	/* The demo token's seal checked against the second token: another key. */
	expect_only(run(f.second, TFS_SEAL_CHECK, SECOND_USER, NULL, keep), "seal.bad-mac");
	print_message("  seal edits: %zu rejected by the MAC, %zu malformed seals rejected\n", bad,
	              sizeof(junk) / sizeof(junk[0]) + 2);
	free(good);
}

#define WITH_COPY(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkdf_hmac_known_answers),
		cmocka_unit_test(test_canonical_form),
		WITH_COPY(test_untouched_store_checks_clean),
		WITH_COPY(test_usage_errors),
		WITH_COPY(test_normal_use_is_information),
		WITH_COPY(test_files_deleted_added_renamed_chmod),
		WITH_COPY(test_rollback_is_an_error),
		WITH_COPY(test_damaged_or_edited_seal),
		WITH_COPY(test_every_byte_flip_detected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
