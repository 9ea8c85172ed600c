/*
 * tfs_softhsm_dump against the real softhsm2-dump-file 2.6.1: the object
 * files of the fixture store, the malformed set, every truncation of a few
 * real objects, and synthetic files aimed at each quirk of the tool. Every
 * output must be byte-identical.
 *
 * The tool is /usr/bin/softhsm2-dump-file (TFS_SOFTHSM2_DUMP_FILE overrides).
 * Without it the test is skipped (exit 77), except in CI (CI set, e.g.
 * CI=true), where it fails.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cursor.h"
#include "tokenfs/softhsm_dump.h"
#include "tokenfs/pkcs11.h"
#include "testutil/testutil.h"

extern char **environ;

static const char *tool;
static char tmpdir[] = "/tmp/tfs-render-softhsm-XXXXXX";
static unsigned long compared;

/* ---- helpers ---------------------------------------------------------- */

/* stdout of `tool path`. */
static char *run_tool(const char *path, size_t *size)
{
	int fds[2];
	pid_t pid;
	int status;
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)tool, (char *)path, NULL };
	FILE *f;
	char *out;

	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	assert_int_equal(posix_spawn(&pid, tool, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	f = fdopen(fds[0], "rb");
	assert_non_null(f);
	out = (char *)tu_read_stream(f, size);
	fclose(f);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* The tool exits 1 after a dump; a signal would mean it crashed. */
	if (!WIFEXITED(status))
		fail_msg("%s %s: killed by signal %d", tool, path, WTERMSIG(status));
	return out;
}

static char *render(const char *path, const uint8_t *data, size_t size, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	tfs_softhsm_dump(f, path, data, size);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* The one check: renderer and tool agree on this file, byte for byte. */
static void compare_bytes(const char *path, const uint8_t *data, size_t size)
{
	size_t want_len, got_len, i;
	char *want = run_tool(path, &want_len);
	char *got = render(path, data, size, &got_len);

	for (i = 0; i < want_len && i < got_len && want[i] == got[i]; i++)
		;
	if (i != want_len || i != got_len) {
		size_t from = i > 200 ? i - 200 : 0;
		print_error("%s (%zu bytes): output differs at byte %zu\n"
		            "--- softhsm2-dump-file (%zu bytes), from %zu:\n%.*s\n"
		            "--- tfs_softhsm_dump (%zu bytes), from %zu:\n%.*s\n",
		            path, size, i, want_len, from,
		            (int)(want_len - from < 400 ? want_len - from : 400), want + from,
		            got_len, from,
		            (int)(got_len - from < 400 ? got_len - from : 400), got + from);
		free(want);
		free(got);
		fail();
	}
	compared++;
	free(want);
	free(got);
}

static void compare_file(const char *path)
{
	size_t size;
	uint8_t *data = tu_read_file(path, &size);

	compare_bytes(path, data, size);
	free(data);
}

/* Writes the bytes to a file in tmpdir and compares on it. */
static void compare_synth(const char *name, const uint8_t *data, size_t size)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, size, f), size);
	assert_int_equal(fclose(f), 0);
	compare_bytes(path, data, size);
	unlink(path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted paths of the subdirectories of dir (suffix NULL) or of its regular
 * files whose names end in suffix. */
static size_t list_dir(const char *dir, const char *suffix, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char *p;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (suffix && (len < strlen(suffix) ||
		               strcmp(e->d_name + len - strlen(suffix), suffix) != 0))
			continue;
		assert_true(asprintf(&p, "%s/%s", dir, e->d_name) > 0);
		if (stat(p, &st) != 0 ||
		    (suffix == NULL ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
			free(p);
			continue;
		}
		names = realloc(names, (n + 1) * sizeof *names);
		assert_non_null(names);
		names[n++] = p;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	*out = names;
	return n;
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static const char *testdata(void)
{
	const char *t = getenv("TFS_TESTDATA");
	return t ? t : "testdata";
}

/* ---- a builder for synthetic object files ------------------------------ */

typedef struct buf {
	uint8_t *p;
	size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	assert_non_null(b->p);
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void u8(buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void u64(buf *b, uint64_t v)
{
	uint8_t x[8];
	tfs_put_be64(x, v);
	put(b, x, 8);
}

static void a_bool(buf *b, uint64_t type, uint8_t v)
{
	u64(b, type);
	u64(b, 1);
	u8(b, v);
}

static void a_ulong(buf *b, uint64_t type, uint64_t v)
{
	u64(b, type);
	u64(b, 2);
	u64(b, v);
}

static void a_bytes(buf *b, uint64_t type, const void *p, size_t n)
{
	u64(b, type);
	u64(b, 3);
	u64(b, n);
	put(b, p, n);
}

static void a_mechs(buf *b, uint64_t type, const uint64_t *m, size_t n)
{
	u64(b, type);
	u64(b, 5);
	u64(b, n);
	for (size_t i = 0; i < n; i++)
		u64(b, m[i]);
}

/* A map attribute holding the bytes of `entries`. */
static void a_map(buf *b, uint64_t type, const buf *entries)
{
	u64(b, type);
	u64(b, 4);
	u64(b, entries->n);
	put(b, entries->p, entries->n);
}

static buf start(uint64_t generation)
{
	buf b = { NULL, 0 };
	u64(&b, generation);
	return b;
}

static void check(const char *name, buf *b)
{
	compare_synth(name, b->p, b->n);
}

/* Every prefix of the bytes, from empty to complete. */
static void check_truncations(const char *name, const uint8_t *data, size_t size)
{
	for (size_t cut = 0; cut <= size; cut++) {
		char nm[128];
		snprintf(nm, sizeof nm, "%s-cut%zu.object", name, cut);
		compare_synth(nm, data, cut);
	}
}





#define UNAVAILABLE 0xffffffffu

/* ---- tests ------------------------------------------------------------- */

/* Every .object of every token of the fixture store, token.object included. */
static void test_store(void **state)
{
	char dir[1024], **tokens, **objects;
	size_t nt, no, before = compared;

	(void)state;
	snprintf(dir, sizeof dir, "%s/store", testdata());
	nt = list_dir(dir, NULL, &tokens);
	for (size_t t = 0; t < nt; t++) {
		no = list_dir(tokens[t], ".object", &objects);
		for (size_t i = 0; i < no; i++)
			compare_file(objects[i]);
		free_list(objects, no);
	}
	free_list(tokens, nt);
	printf("store: %lu object files compared\n", compared - before);
	assert_true(compared > before);
}

static void test_malformed(void **state)
{
	char dir[1024], **files;
	size_t n, before = compared;

	(void)state;
	snprintf(dir, sizeof dir, "%s/malformed", testdata());
	n = list_dir(dir, "", &files);
	for (size_t i = 0; i < n; i++)
		compare_file(files[i]);
	free_list(files, n);
	printf("malformed: %lu files compared\n", compared - before);
}

/* Cut at every byte: token.object, and the first objects of the store that
 * hold a map and a mechanism set, an RSA private key, a certificate. */
static void test_truncations(void **state)
{
	static const char *const pick[] = {
		"0d530850-8d79-c236-fc71-37445ffb77ce/token.object",
		"0d530850-8d79-c236-fc71-37445ffb77ce/f2cd43c6-e71e-48f6-1a05-93d9661d6c53.object",
		"0d530850-8d79-c236-fc71-37445ffb77ce/ace730d6-e555-7824-9527-5ab284f86b8c.object",
	};
	size_t before = compared;

	(void)state;
	for (size_t i = 0; i < sizeof pick / sizeof pick[0]; i++) {
		char path[1024], name[16];
		size_t size;
		uint8_t *data;

		snprintf(path, sizeof path, "%s/store/%s", testdata(), pick[i]);
		if (access(path, R_OK) != 0) {
			print_message("skipping missing %s\n", path);
			continue;
		}
		data = tu_read_file(path, &size);
		snprintf(name, sizeof name, "real%zu", i);
		check_truncations(name, data, size);
		free(data);
	}
	printf("truncations: %lu files compared\n", compared - before);
	assert_true(compared > before);
}

/* One synthetic object exercising every value printer, then all its
 * truncations and 1 to 9 bytes of trailing garbage. */
static void test_synthetic_all_kinds(void **state)
{
	static const uint64_t mechs[] = { 0x1082, 0x1, 0x1082, 0x80000001, 0x100000001,
	                                  0x3, 0x1, 0x12345 };
	buf b = start(7), m = { NULL, 0 };
	uint8_t all[256];

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;

	a_ulong(&b, CKA_CLASS, 4);
	a_bool(&b, CKA_TOKEN, 0xff);
	a_bytes(&b, CKA_LABEL, "lbl", 3);
	a_bytes(&b, CKA_VALUE, all, sizeof all);
	a_bytes(&b, 0x102, "", 0);
	a_ulong(&b, CKA_KEY_TYPE, 0x1f);
	a_ulong(&b, CKA_VALUE_LEN, 32);
	a_ulong(&b, CKA_KEY_GEN_MECHANISM, 0x1080);

	/* a map with every kind allowed in it, and a mechanism set whose
	 * members are unsorted and repeated */
	a_bool(&m, CKA_TOKEN, 0x00);
	a_bool(&m, 0x104, 0x01);
	a_bool(&m, 0x105, 0x7f);
	a_ulong(&m, CKA_CLASS, 3);
	a_ulong(&m, CKA_KEY_TYPE, 0x80000042);
	a_ulong(&m, CKA_VALUE_LEN, UNAVAILABLE);
	a_ulong(&m, 0x100000000, 5);
	a_bytes(&m, CKA_LABEL, all + 30, 17);
	a_bytes(&m, CKA_VALUE, "", 0);
	a_mechs(&m, CKA_ALLOWED_MECHANISMS, mechs, sizeof mechs / sizeof mechs[0]);
	a_mechs(&m, 0x80001234, NULL, 0);
	a_map(&b, CKA_WRAP_TEMPLATE, &m);
	a_map(&b, 0x40000212, &(buf){ NULL, 0 });

	/* at top level the same set is printed as stored */
	a_mechs(&b, CKA_ALLOWED_MECHANISMS, mechs, sizeof mechs / sizeof mechs[0]);
	check("all-kinds.object", &b);
	check_truncations("all-kinds", b.p, b.n);

	for (size_t g = 1; g <= 9; g++) {
		buf t = { NULL, 0 };
		char name[64];

		put(&t, b.p, b.n);
		for (size_t i = 0; i < g; i++)
			u8(&t, (uint8_t)(i % 2 ? 'A' + i : 0xf0 + i));
		snprintf(name, sizeof name, "garbage%zu.object", g);
		check(name, &t);
		free(t.p);
	}
	free(m.p);
	free(b.p);
}

static void test_synthetic_bools(void **state)
{
	static const uint8_t v[] = { 0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff };
	buf b = start(0);

	(void)state;
	for (size_t i = 0; i < sizeof v; i++)
		a_bool(&b, CKA_TOKEN + i, v[i]);
	check("bools.object", &b);
	free(b.p);
}

/* Named ulongs: known, vendor-defined, unknown, CK_UNAVAILABLE_INFORMATION
 * (low 32 bits all ones, whatever the high ones), and 64-bit overflow, for
 * every attribute with a name table, at top level and inside a map. */
static void test_synthetic_ulongs(void **state)
{
	static const uint64_t types[] = { CKA_CLASS, CKA_CERTIFICATE_TYPE, CKA_KEY_TYPE,
	                                  CKA_KEY_GEN_MECHANISM, CKA_HW_FEATURE_TYPE,
	                                  CKA_VALUE_LEN, 0x100000000 | CKA_CLASS,
	                                  0x80000000 };
	static const uint64_t values[] = { 0, 1, 3, 4, 7, 0x1f, 0x99, 0x1080, 0x3ffff,
	                                   0x80000000, 0x80000001, 0x80504750,
	                                   0x8000ffff, UNAVAILABLE, 0xfffffffe,
	                                   0xffffffffffffffff, 0x1ffffffff,
	                                   0x100000000, 0x180000001, 0x7fffffffffffffff };
	buf b = start(1), m = { NULL, 0 };

	(void)state;
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
		for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
			a_ulong(&b, types[t], values[v]);
			a_ulong(&m, types[t], values[v]);
		}
	a_map(&b, CKA_WRAP_TEMPLATE, &m);
	check("ulongs.object", &b);
	free(m.p);
	free(b.p);
}

/* Attribute types: named (SoftHSM's own included), vendor, unknown and
 * wider than 32 bits; mechanisms likewise. */
static void test_synthetic_names(void **state)
{
	static const uint64_t types[] = { 0x0, 0x3, 0x11, 0x90, 0x1ff, 0x40000211,
	                                  0x40000600, 0x80000000, 0x80005348,
	                                  0x80005349, 0x8000534d, 0x8000534e,
	                                  0x80001234, 0xffffffff, 0x100000000,
	                                  0x100000003, 0xffffffffffffffff };
	static const uint64_t mechs[] = { 0, 1, 0x1082, 0x4000, 0x80000000,
	                                  0x80001234, 0x77777, 0x100000001,
	                                  0x180000002, UNAVAILABLE };
	buf b = start(2), m = { NULL, 0 };

	(void)state;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		a_bool(&b, types[i], 0xff);
		a_bool(&m, types[i], 0);
	}
	a_mechs(&m, CKA_ALLOWED_MECHANISMS, mechs, sizeof mechs / sizeof mechs[0]);
	a_map(&b, CKA_WRAP_TEMPLATE, &m);
	a_mechs(&b, CKA_ALLOWED_MECHANISMS, mechs, sizeof mechs / sizeof mechs[0]);
	check("names.object", &b);
	free(m.p);
	free(b.p);
}

/* Lengths at and over the tool's 1 GiB cap, and lengths past the end. */
static void test_synthetic_lengths(void **state)
{
	static const uint64_t kinds[] = { 3, 4, 5 };
	static const uint64_t lens[] = { 0x40000000, 0x3fffffff, 0xffffffffffffffff,
	                                 0x100000000, 0x3fffff, 20, 9 };
	(void)state;
	for (size_t k = 0; k < 3; k++)
		for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
			buf b;
			char name[64];

			/* The tool would allocate 1 GiB for this byte string. */
			if (kinds[k] == 3 && lens[l] == 0x3fffffff)
				continue;
			b = start(3);
			a_bool(&b, CKA_TOKEN, 0xff);
			u64(&b, CKA_VALUE);
			u64(&b, kinds[k]);
			u64(&b, lens[l]);
			put(&b, "0123456789abcdef", 16);
			snprintf(name, sizeof name, "len-k%zu-l%zu.object", k, l);
			check(name, &b);
			free(b.p);
		}
}

/* Kinds the tool does not know, at top level and in a map, and a map
 * nested in a map. */
static void test_synthetic_kinds(void **state)
{
	static const uint64_t kinds[] = { 0, 6, 7, 0x100000001, 4 };

	(void)state;
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		buf b = start(4), m = { NULL, 0 };
		char name[64];

		if (kinds[k] != 4) {
			a_bool(&b, CKA_TOKEN, 1);
			u64(&b, CKA_VALUE);
			u64(&b, kinds[k]);
			put(&b, "ABCDEFGHIJKLMNOPQRSTUVWX", 24);
			snprintf(name, sizeof name, "kind-top-%zu.object", k);
			check(name, &b);
			free(b.p);
			b = start(4);
		}
		a_bool(&m, CKA_TOKEN, 1);
		u64(&m, CKA_VALUE);
		u64(&m, kinds[k]);
		u64(&m, 1);
		a_map(&b, CKA_WRAP_TEMPLATE, &m);
		a_bool(&b, 0x40000212, 0xff);
		snprintf(name, sizeof name, "kind-map-%zu.object", k);
		check(name, &b);
		free(m.p);
		free(b.p);
	}
}

/* Maps whose stated length disagrees with their entries, field by field,
 * and a mechanism count whose product with 8 wraps. */
static void test_synthetic_map_lengths(void **state)
{
	static const uint64_t two[] = { 0x1081, 0x1080 };
	buf m = { NULL, 0 };

	(void)state;
	a_bool(&m, CKA_TOKEN, 0xff);
	a_ulong(&m, CKA_CLASS, 4);
	a_bytes(&m, CKA_LABEL, "abc", 3);
	a_mechs(&m, CKA_ALLOWED_MECHANISMS, two, 2);
	for (size_t len = 0; len <= m.n + 9; len++) {
		buf b = start(5);
		char name[64];

		u64(&b, CKA_WRAP_TEMPLATE);
		u64(&b, 4);
		u64(&b, len);
		put(&b, m.p, m.n);
		a_bool(&b, 0x40000212, 0);
		snprintf(name, sizeof name, "maplen%zu.object", len);
		check(name, &b);
		free(b.p);
	}
	free(m.p);

	buf b = start(5), w = { NULL, 0 };
	u64(&w, CKA_ALLOWED_MECHANISMS);
	u64(&w, 5);
	u64(&w, 0x2000000000000001);
	u64(&w, 0x1082);
	a_map(&b, CKA_WRAP_TEMPLATE, &w);
	put(&b, "0123456789", 10);
	check("map-mech-wrap.object", &b);
	free(w.p);
	free(b.p);
}

/* Files bigger than stdio's 4 KiB buffer, cut inside a long value. */
static void test_synthetic_large(void **state)
{
	buf b = start(6);
	uint8_t *big = malloc(10000);

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < 10000; i++)
		big[i] = (uint8_t)(i * 7);
	a_bytes(&b, CKA_VALUE, big, 10000);
	a_bool(&b, CKA_TOKEN, 0xff);
	check("large.object", &b);
	u8(&b, 0x42);
	u8(&b, 0x43);
	check("large-garbage.object", &b);
	compare_synth("large-cut.object", b.p, 5000);
	compare_synth("large-cut2.object", b.p, 8 + 24 + 10000);
	compare_synth("large-cut3.object", b.p, 8 + 24 + 10000 + 17);
	free(big);
	free(b.p);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

/* A failed comparison leaves its file behind. */
static int teardown(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[512];

	(void)state;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_synthetic_all_kinds),
		cmocka_unit_test(test_synthetic_bools),
		cmocka_unit_test(test_synthetic_ulongs),
		cmocka_unit_test(test_synthetic_names),
		cmocka_unit_test(test_synthetic_lengths),
		cmocka_unit_test(test_synthetic_kinds),
		cmocka_unit_test(test_synthetic_map_lengths),
		cmocka_unit_test(test_synthetic_large),
	};
	const char *ci = getenv("CI");
	int rc;

	tool = getenv("TFS_SOFTHSM2_DUMP_FILE");
	if (tool == NULL || *tool == '\0')
		tool = "/usr/bin/softhsm2-dump-file";
	if (access(tool, X_OK) != 0) {
		if (ci != NULL && *ci != '\0' && strcmp(ci, "false") != 0 &&
		    strcmp(ci, "0") != 0) {
			fprintf(stderr, "FAIL: %s not found, and CI=true\n", tool);
			return 1;
		}
		fprintf(stderr, "SKIP: %s not found (install softhsm2)\n", tool);
		return 77;
	}

	rc = cmocka_run_group_tests(tests, setup, teardown);
	printf("render_softhsm_test: %lu files compared with %s\n", compared, tool);
	if (compared == 0) {
		fprintf(stderr, "FAIL: nothing was compared\n");
		return 1;
	}
	return rc;
}
