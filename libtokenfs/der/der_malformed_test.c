/*
 * The damaged DER of testdata/der/malformed (scripts/make-der-fixtures.sh):
 * each file must fail with the status, byte offset and message text its
 * MANIFEST.tsv line gives, and every file there must have a line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "der/der_testutil.h"
#include "tokenfs/decode.h"

typedef int (*decoder)(tfs_decoded **, const uint8_t *, size_t, tfs_error *);

static decoder by_name(const char *name)
{
	static const struct {
		const char *name;
		decoder fn;
	} table[] = {
		{"certificate", tfs_decode_certificate},
		{"name", tfs_decode_name},
		{"integer", tfs_decode_integer},
		{"public_key_info", tfs_decode_public_key_info},
		{"ec_params", tfs_decode_ec_params},
		{"ec_point", tfs_decode_ec_point},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].fn;
	fail_msg("MANIFEST names an unknown decoder %s", name);
	return NULL;
}

static int status_code(const char *name)
{
	if (strcmp(name, "format") == 0)
		return TFS_E_FORMAT;
	if (strcmp(name, "truncated") == 0)
		return TFS_E_TRUNCATED;
	if (strcmp(name, "limit") == 0)
		return TFS_E_LIMIT;
	fail_msg("MANIFEST names an unknown status %s", name);
	return 0;
}

static void test_manifest(void **state)
{
	(void)state;
	char *dir = dt_path("der/malformed");
	char *mpath;
	assert_true(asprintf(&mpath, "%s/MANIFEST.tsv", dir) > 0);
	FILE *f = fopen(mpath, "r");
	assert_non_null(f);
	size_t nfiles;
	char **files = dt_list(dir, "", ".der", &nfiles);
	bool *seen = calloc(nfiles + 1, 1);
	char line[1024];
	size_t checked = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = '\0';
		char *fields[5];
		char *save = NULL, *s = line;
		for (int i = 0; i < 5; i++, s = NULL) {
			fields[i] = strtok_r(s, "\t", &save);
			assert_non_null(fields[i]);
		}
		const char *file = fields[0], *status = fields[2], *off = fields[3], *text = fields[4];
		for (size_t i = 0; i < nfiles; i++)
			if (strcmp(files[i], file) == 0)
				seen[i] = true;

		char *path;
		size_t len;
		assert_true(asprintf(&path, "%s/%s", dir, file) > 0);
		uint8_t *der = dt_read(path, &len);
		tfs_decoded *d = (tfs_decoded *)1;
		tfs_error err;
		tfs_error_clear(&err);
		int rc = by_name(fields[1])(&d, der, len, &err);
		if (rc != status_code(status))
			fail_msg("%s: status %d (%s), expected %s (%s)", file, rc, tfs_status_name(rc),
			         status, err.what);
		assert_null(d);
		uint64_t want = strcmp(off, "-") == 0 ? TFS_NO_OFFSET : strtoull(off, NULL, 10);
		if (err.offset != want)
			fail_msg("%s: offset %llu, expected %s (%s)", file,
			         (unsigned long long)err.offset, off, err.what);
		if (strstr(err.what, text) == NULL)
			fail_msg("%s: message \"%s\" lacks \"%s\"", file, err.what, text);
		free(der);
		free(path);
		checked++;
	}
	fclose(f);
	for (size_t i = 0; i < nfiles; i++)
		if (!seen[i])
			fail_msg("%s is not in MANIFEST.tsv", files[i]);
	assert_true(checked >= 30);
	free(seen);
	dt_free_list(files, nfiles);
	free(mpath);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
