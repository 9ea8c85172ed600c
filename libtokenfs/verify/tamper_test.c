/*
 * The tamper suite: the real SoftHSM token "demo" from testdata, copied into
 * in-memory images and damaged one way at a time, each image verified
 * through the same store reader and checks as a disk.
 *
 *  - GCM copy (made with this library): every single-byte flip inside every
 *    encrypted value is detected: 100%.
 *  - CBC original: every such flip is detected or counted; the rate is
 *    printed (CBC has no integrity: only padding and key checks catch it).
 *  - Torn writes: each object cut at every field boundary reads as torn.
 *  - A flipped CKA_EXTRACTABLE on a never-extractable key is a tamper sign.
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

#include "tokenfs/tokenfs.h"
#include "tokenfs/verify.h"

#define MAX_FILES 64
#define USER_PIN "user-pin-1"
#define SO_PIN "so-secret-1"

typedef struct file {
	char name[256];
	uint8_t *data;
	size_t len;
} file;

typedef struct image {
	file f[MAX_FILES];
	size_t n;
} image;

static void image_free(image *im)
{
	for (size_t i = 0; i < im->n; i++)
		free(im->f[i].data);
	im->n = 0;
}

static void image_copy(image *dst, const image *src)
{
	*dst = *src;
	for (size_t i = 0; i < src->n; i++) {
		dst->f[i].data = malloc(src->f[i].len + 1);
		memcpy(dst->f[i].data, src->f[i].data, src->f[i].len);
	}
}

/* The demo token's directory in testdata/store. */
static void load_demo(image *im)
{
	char root[4096];
	snprintf(root, sizeof(root), "%s/store", getenv("TFS_TESTDATA"));
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open(&s, root, NULL, &err), TFS_OK);
	const tfs_token *demo = NULL;
	for (size_t t = 0; t < tfs_store_token_count(s); t++)
		if (strcmp(tfs_token_label(tfs_store_token(s, t)), "demo") == 0)
			demo = tfs_store_token(s, t);
	assert_non_null(demo);
	DIR *d = opendir(tfs_token_path(demo));
	assert_non_null(d);
	struct dirent *e;
	im->n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		file *f = &im->f[im->n++];
		snprintf(f->name, sizeof(f->name), "%s", e->d_name);
		char p[4400];
		snprintf(p, sizeof(p), "%s/%s", tfs_token_path(demo), e->d_name);
		FILE *fp = fopen(p, "rb");
		assert_non_null(fp);
		f->data = malloc(1 << 16);
		f->len = fread(f->data, 1, 1 << 16, fp);
		fclose(fp);
	}
	closedir(d);
	tfs_store_free(s);
}

static tfs_fs *to_fs(const image *im)
{
	tfs_fs *fs;
	tfs_error err;
	assert_int_equal(tfs_memfs_new(&fs, &err), TFS_OK);
	for (size_t i = 0; i < im->n; i++) {
		char p[300];
		snprintf(p, sizeof(p), "s/tok/%s", im->f[i].name);
		assert_int_equal(tfs_memfs_add_file(fs, p, im->f[i].data, im->f[i].len, 0600, &err), TFS_OK);
	}
	return fs;
}

/* Verifies an image with the user PIN; the caller frees the report. */
static tfs_report *verify(const image *im)
{
	tfs_fs *fs = to_fs(im);
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open_fs(&s, fs, "s/tok", NULL, &err), TFS_OK);
	tfs_report *rep;
	assert_int_equal(tfs_report_new(&rep, &err), TFS_OK);
	tfs_verify_options o = {.user_pin = (const uint8_t *)USER_PIN, .user_pin_len = strlen(USER_PIN)};
	tfs_verify_summary sum;
	int rc = tfs_verify_token(rep, &sum, s, tfs_store_token(s, 0), &o, &err);
	if (rc != TFS_OK)
		fail_msg("verify: %s", err.what);
	tfs_store_free(s);
	tfs_fs_free(fs);
	return rep;
}

/* Whether the report has a warning or error about `name` other than the
 * plaintext key the fixture holds on purpose; with `code`, of that code. */
static bool flagged(const tfs_report *rep, const char *name, const char *code)
{
	for (size_t i = 0; i < tfs_report_finding_count(rep); i++) {
		const tfs_finding *f = tfs_report_finding(rep, i);
		const char *p = tfs_finding_path(f);
		size_t n = strlen(p), m = strlen(name);
		if (tfs_finding_severity(f) == TFS_SEV_INFO || strcmp(tfs_finding_code(f), "key.plaintext") == 0)
			continue;
		if (code != NULL && strcmp(tfs_finding_code(f), code) != 0)
			continue;
		if (name[0] == '\0' || (n > m && p[n - m - 1] == '/' && strcmp(p + n - m, name) == 0))
			return true;
	}
	return false;
}

static bool is_object_file(const char *name)
{
	size_t n = strlen(name);
	return n > 7 && strcmp(name + n - 7, ".object") == 0 && strcmp(name, "token.object") != 0;
}

/* Rewrites the image in the GCM layout with libtokenfs (what migrate does). */
static void to_gcm(image *im)
{
	tfs_fs *fs = to_fs(im);
	tfs_store *s;
	tfs_error err;
	assert_int_equal(tfs_store_open_fs(&s, fs, "s/tok", NULL, &err), TFS_OK);
	const tfs_token *tok = tfs_store_token(s, 0);
	tfs_token_key *key;
	assert_int_equal(tfs_token_unlock(&key, tok, TFS_PIN_USER, (const uint8_t *)USER_PIN,
	                                  strlen(USER_PIN), &err), TFS_OK);
	for (size_t i = 0; i < im->n; i++) {
		file *f = &im->f[i];
		bool meta = strcmp(f->name, "token.object") == 0;
		if (!meta && !is_object_file(f->name))
			continue;
		tfs_object *obj;
		assert_int_equal(tfs_object_parse(&obj, f->data, f->len, &err), TFS_OK);
		if (meta) {
			uint8_t blob[TFS_PIN_BLOB_LEN];
			assert_int_equal(tfs_pinblob_wrap(blob, TFS_LAYOUT_GCM, tfs_token_key_bytes(key),
			                                  (const uint8_t *)USER_PIN, strlen(USER_PIN), &err), TFS_OK);
			assert_int_equal(tfs_metadata_set_pin_blob(obj, TFS_PIN_USER, blob, &err), TFS_OK);
			assert_int_equal(tfs_pinblob_wrap(blob, TFS_LAYOUT_GCM, tfs_token_key_bytes(key),
			                                  (const uint8_t *)SO_PIN, strlen(SO_PIN), &err), TFS_OK);
			assert_int_equal(tfs_metadata_set_pin_blob(obj, TFS_PIN_SO, blob, &err), TFS_OK);
		} else {
			assert_int_equal(tfs_object_reencrypt(obj, key, tfs_token_key_bytes(key), TFS_LAYOUT_GCM,
			                                      &err), TFS_OK);
		}
		free(f->data);
		assert_int_equal(tfs_object_serialize(obj, &f->data, &f->len, &err), TFS_OK);
		tfs_object_free(obj);
	}
	tfs_token_key_free(key);
	tfs_store_free(s);
	tfs_fs_free(fs);
}

/* Flips every byte of every encrypted value; returns detected / total. */
static void flip_values(const image *base, size_t *detected, size_t *total)
{
	*detected = *total = 0;
	for (size_t i = 0; i < base->n; i++) {
		if (!is_object_file(base->f[i].name))
			continue;
		tfs_object *obj;
		tfs_error err;
		assert_int_equal(tfs_object_parse(&obj, base->f[i].data, base->f[i].len, &err), TFS_OK);
		for (size_t k = 0; k < tfs_object_attr_count(obj); k++) {
			const tfs_attr *a = tfs_object_attr(obj, k);
			if (!tfs_object_attr_encrypted(obj, a))
				continue;
			size_t len;
			(void)tfs_attr_bytes(a, &len);
			for (size_t b = 0; b < len; b++) {
				image im;
				image_copy(&im, base);
				im.f[i].data[tfs_attr_value_offset(a) + b] ^= 0xFF;
				tfs_report *rep = verify(&im);
				*detected += flagged(rep, base->f[i].name, NULL);
				(*total)++;
				tfs_report_free(rep);
				image_free(&im);
			}
		}
		tfs_object_free(obj);
	}
}

static void test_clean_token_has_nothing_above_info_but_the_fixture_key(void **state)
{
	(void)state;
	image im;
	load_demo(&im);
	tfs_report *rep = verify(&im);
	assert_false(flagged(rep, "", NULL));
	tfs_report_free(rep);
	to_gcm(&im);
	rep = verify(&im);
	for (size_t i = 0; i < tfs_report_finding_count(rep); i++) {
		const tfs_finding *f = tfs_report_finding(rep, i);
		if (tfs_finding_severity(f) != TFS_SEV_INFO && strcmp(tfs_finding_code(f), "key.plaintext") != 0)
			fail_msg("GCM copy: %s %s: %s", tfs_finding_code(f), tfs_finding_path(f), tfs_finding_message(f));
	}
	tfs_report_free(rep);
	image_free(&im);
}

static void test_every_flip_in_a_gcm_value_is_detected(void **state)
{
	(void)state;
	image im;
	load_demo(&im);
	to_gcm(&im);
	size_t detected, total;
	flip_values(&im, &detected, &total);
	printf("GCM: detected %zu of %zu single-byte flips in encrypted values (%.1f%%)\n", detected,
	       total, 100.0 * (double)detected / (double)total);
	assert_true(total > 1000);
	assert_int_equal(detected, total);
	image_free(&im);
}

static void test_cbc_flips_are_counted(void **state)
{
	(void)state;
	image im;
	load_demo(&im);
	size_t detected, total;
	flip_values(&im, &detected, &total);
	printf("CBC: detected %zu of %zu single-byte flips in encrypted values (%.1f%%); "
	       "CBC has no integrity protection, the rest decrypt to altered plaintext\n",
	       detected, total, 100.0 * (double)detected / (double)total);
	assert_true(total > 1000);
	/* Padding alone catches every flip in the last block or its IV. */
	assert_true(detected > total / 10);
	image_free(&im);
}

/* Cut points: every field start of every attribute, and each value's midpoint. */
static void test_cuts_at_every_field_boundary_read_as_torn(void **state)
{
	(void)state;
	image base;
	load_demo(&base);
	size_t cuts = 0;
	for (size_t i = 0; i < base.n; i++) {
		if (!is_object_file(base.f[i].name))
			continue;
		tfs_object *obj;
		tfs_error err;
		assert_int_equal(tfs_object_parse(&obj, base.f[i].data, base.f[i].len, &err), TFS_OK);
		size_t points[4 * 64 + 2], np = 0;
		points[np++] = 0;
		points[np++] = 8;
		for (size_t k = 0; k < tfs_object_attr_count(obj) && np + 4 < sizeof(points) / sizeof(points[0]); k++) {
			const tfs_attr *a = tfs_object_attr(obj, k);
			size_t len = 0;
			(void)tfs_attr_bytes(a, &len);
			points[np++] = (size_t)tfs_attr_offset(a) + 8;   /* after the type */
			points[np++] = (size_t)tfs_attr_offset(a) + 16;  /* after the kind */
			points[np++] = (size_t)tfs_attr_value_offset(a); /* after a length */
			if (k > 0)
				points[np++] = (size_t)tfs_attr_offset(a); /* between attributes */
			if (len > 1)
				points[np++] = (size_t)tfs_attr_value_offset(a) + len / 2; /* inside a value */
		}
		for (size_t p = 0; p < np; p++) {
			if (points[p] >= base.f[i].len)
				continue;
			image im;
			image_copy(&im, &base);
			im.f[i].len = points[p];
			tfs_report *rep = verify(&im);
			bool torn = flagged(rep, base.f[i].name, "object.torn") ||
			            flagged(rep, base.f[i].name, "object.ends-early") ||
			            flagged(rep, base.f[i].name, "object.generation-only") ||
			            flagged(rep, base.f[i].name, "object.empty");
			if (!torn)
				fail_msg("%s cut at %zu: not reported as torn", base.f[i].name, points[p]);
			cuts++;
			tfs_report_free(rep);
			image_free(&im);
		}
		tfs_object_free(obj);
	}
	printf("torn: %zu cuts at field boundaries, all reported as torn\n", cuts);
	assert_true(cuts > 300);
	image_free(&base);
}

static void test_extractable_flip_on_never_extractable_key_is_a_tamper_sign(void **state)
{
	(void)state;
	image im;
	load_demo(&im);
	size_t hits = 0;
	for (size_t i = 0; i < im.n; i++) {
		if (!is_object_file(im.f[i].name))
			continue;
		tfs_object *obj;
		tfs_error err;
		assert_int_equal(tfs_object_parse(&obj, im.f[i].data, im.f[i].len, &err), TFS_OK);
		const tfs_attr *never = tfs_object_find(obj, 0x164 /* CKA_NEVER_EXTRACTABLE */);
		const tfs_attr *ext = tfs_object_find(obj, 0x162 /* CKA_EXTRACTABLE */);
		if (never != NULL && tfs_attr_bool(never) && ext != NULL && !tfs_attr_bool(ext)) {
			image t;
			image_copy(&t, &im);
			t.f[i].data[tfs_attr_value_offset(ext)] = 0xFF;
			tfs_report *rep = verify(&t);
			assert_true(flagged(rep, im.f[i].name, "key.tamper-sign"));
			tfs_report_free(rep);
			image_free(&t);
			hits++;
		}
		tfs_object_free(obj);
	}
	/* The RSA and EC keys generated on the token are never-extractable. */
	assert_true(hits >= 2);
	image_free(&im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_token_has_nothing_above_info_but_the_fixture_key),
		cmocka_unit_test(test_every_flip_in_a_gcm_value_is_detected),
		cmocka_unit_test(test_cbc_flips_are_counted),
		cmocka_unit_test(test_cuts_at_every_field_boundary_read_as_torn),
		cmocka_unit_test(test_extractable_flip_on_never_extractable_key_is_a_tamper_sign),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
