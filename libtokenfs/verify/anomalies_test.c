/*
 * tfs_object_anomalies as a library user calls it (tokenfs/verify.h): the
 * findings it hands to fn, the count it returns, and fn NULL to count only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/cursor.h"
#include "tokenfs/finding.h"
#include "tokenfs/names.h"
#include "tokenfs/object.h"
#include "tokenfs/verify.h"

/* generation 1, then `nlabels` CKA_LABEL attributes of 2 bytes each. */
static tfs_object *object_with_labels(size_t nlabels)
{
	uint8_t b[256];
	size_t n = 0;
	tfs_put_be64(b, 1);
	n += 8;
	for (size_t k = 0; k < nlabels; k++) {
		tfs_put_be64(b + n, 0x03); /* CKA_LABEL */
		tfs_put_be64(b + n + 8, 3);
		tfs_put_be64(b + n + 16, 2);
		memcpy(b + n + 24, k == 0 ? "ab" : "cd", 2);
		n += 26;
	}
	tfs_object *obj;
	tfs_error err;
	assert_int_equal(tfs_object_parse(&obj, b, n, &err), TFS_OK);
	return obj;
}

typedef struct seen {
	size_t n;
	char code[64];
	char path[64];
	uint64_t offset;
} seen;

static void collect(void *ctx, const tfs_finding *f)
{
	seen *s = ctx;
	s->n++;
	snprintf(s->code, sizeof(s->code), "%s", tfs_finding_code(f));
	snprintf(s->path, sizeof(s->path), "%s", tfs_finding_path(f));
	s->offset = tfs_finding_offset(f);
}

static void test_anomalies_found_and_counted(void **state)
{
	(void)state;
	struct {
		size_t labels;
		int count;
		const char *code;
		uint64_t offset;
	} cases[] = {
		{1, 0, NULL, 0},
		{2, 1, "object.duplicate-attribute", 8 + 26}, /* the repeat, where it stands */
		{0, 1, "object.generation-only", 8},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		tfs_object *obj = object_with_labels(cases[c].labels);
		seen s = {0};
		assert_int_equal(tfs_object_anomalies(obj, "t/x.object", NULL, collect, &s), cases[c].count);
		assert_int_equal(s.n, (size_t)cases[c].count);
		if (cases[c].code != NULL) {
			assert_string_equal(s.code, cases[c].code);
			assert_string_equal(s.path, "t/x.object");
			assert_int_equal(s.offset, cases[c].offset);
		}
		/* fn NULL: only the count (a caller that asks whether there are any). */
		assert_int_equal(tfs_object_anomalies(obj, "t/x.object", NULL, NULL, NULL), cases[c].count);
		tfs_object_free(obj);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anomalies_found_and_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
