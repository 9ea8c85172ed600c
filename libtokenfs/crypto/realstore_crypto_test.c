/*
 * The real SoftHSM 2.6.1 tokens in testdata/store/: both PIN blobs of each
 * token unwrap to the same token key in the CBC layout, wrong PINs fail,
 * and every encrypted attribute value of the private objects decrypts.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/testvec.h"
#include "testutil/testutil.h"
#include "tokenfs/crypto.h"
#include "tokenfs/names.h"
#include "tokenfs/object.h"

#define CKA_PRIVATE 0x2u

static const struct {
	const char *label, *so, *user;
} known[] = {
	{"demo", "so-secret-1", "user-pin-1"},
	{"second", "so-secret-2", "user-pin-2"},
};

static tfs_object *load_object(const char *path)
{
	size_t size;
	uint8_t *buf = tu_read_file(path, &size);
	tfs_object *obj = NULL;
	tfs_error err;
	if (tfs_object_parse(&obj, buf, size, &err) != TFS_OK)
		fail_msg("%s: %s", path, err.what);
	free(buf);
	return obj;
}

static const uint8_t *blob_of(const tfs_object *tok, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(tok, type);
	assert_non_null(a);
	size_t len;
	const uint8_t *p = tfs_attr_bytes(a, &len);
	assert_int_equal(len, TFS_PIN_BLOB_LEN);
	return p;
}

static int unwrap(uint8_t key[TFS_KEY_LEN], tfs_layout *layout, const uint8_t *blob,
                  const char *pin)
{
	tfs_error err;
	return tfs_pinblob_unwrap(key, layout, blob, TFS_PIN_BLOB_LEN, (const uint8_t *)pin,
	                          strlen(pin), &err);
}

/* Decrypts every non-empty byte string of every private object. */
static size_t check_values(const char *dir, const uint8_t key[TFS_KEY_LEN])
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t nl = strlen(e->d_name);
		if (nl <= 7 || strcmp(e->d_name + nl - 7, ".object") != 0 ||
		    strcmp(e->d_name, "token.object") == 0)
			continue;
		char path[8192];
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			fail_msg("path too long: %s/%s", dir, e->d_name);
		tfs_object *obj = load_object(path);
		const tfs_attr *priv = tfs_object_find(obj, CKA_PRIVATE);
		if (priv != NULL && !tfs_attr_bool(priv)) {
			tfs_object_free(obj);
			continue;
		}
		for (size_t i = 0; i < tfs_object_attr_count(obj); i++) {
			const tfs_attr *a = tfs_object_attr(obj, i);
			size_t len;
			if (tfs_attr_kind(a) != TFS_KIND_BYTES)
				continue;
			const uint8_t *ct = tfs_attr_bytes(a, &len);
			if (len == 0)
				continue;
			uint8_t *pt = NULL;
			size_t pt_len = 0;
			tfs_layout layout;
			tfs_error err;
			if (tfs_value_decrypt(&pt, &pt_len, &layout, key, ct, len, &err) != TFS_OK)
				fail_msg("%s: attribute 0x%llx: %s", path,
				         (unsigned long long)tfs_attr_type(a), err.what);
			assert_int_equal(layout, TFS_LAYOUT_CBC);
			tfs_secure_free(pt, pt_len);
			n++;
		}
		tfs_object_free(obj);
	}
	closedir(d);
	return n;
}

static void test_real_tokens(void **state)
{
	(void)state;
	const char *root = tv_path("store");
	DIR *d = opendir(root);
	if (d == NULL)
		fail_msg("cannot open %s", root);
	bool seen[2] = {false, false};
	size_t values = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char dir[4096], path[4200];
		snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
		snprintf(path, sizeof(path), "%s/token.object", dir);
		FILE *probe = fopen(path, "rb");
		if (probe == NULL)
			continue;
		fclose(probe);
		tfs_object *tok = load_object(path);
		const tfs_attr *la = tfs_object_find(tok, TFS_CKA_OS_TOKENLABEL);
		assert_non_null(la);
		size_t ll;
		const uint8_t *label = tfs_attr_bytes(la, &ll);
		while (ll > 0 && label[ll - 1] == ' ')
			ll--;
		for (size_t k = 0; k < 2; k++) {
			if (strlen(known[k].label) != ll || memcmp(label, known[k].label, ll) != 0)
				continue;
			const uint8_t *so = blob_of(tok, TFS_CKA_OS_SOPIN);
			const uint8_t *user = blob_of(tok, TFS_CKA_OS_USERPIN);
			uint8_t k_so[TFS_KEY_LEN], k_user[TFS_KEY_LEN], k_bad[TFS_KEY_LEN];
			tfs_layout l_so, l_user, l_bad;
			assert_int_equal(unwrap(k_so, &l_so, so, known[k].so), TFS_OK);
			assert_int_equal(unwrap(k_user, &l_user, user, known[k].user), TFS_OK);
			assert_int_equal(l_so, TFS_LAYOUT_CBC);
			assert_int_equal(l_user, TFS_LAYOUT_CBC);
			assert_memory_equal(k_so, k_user, TFS_KEY_LEN);
			/* Each PIN opens only its own blob. */
			assert_int_equal(unwrap(k_bad, &l_bad, so, known[k].user), TFS_E_WRONG_PIN);
			assert_int_equal(unwrap(k_bad, &l_bad, user, known[k].so), TFS_E_WRONG_PIN);
			assert_int_equal(unwrap(k_bad, &l_bad, user, "user-pin-X"), TFS_E_WRONG_PIN);
			assert_int_equal(unwrap(k_bad, &l_bad, so, ""), TFS_E_WRONG_PIN);
			values += check_values(dir, k_user);
			seen[k] = true;
		}
		tfs_object_free(tok);
	}
	closedir(d);
	assert_true(seen[0] && seen[1]);
	print_message("decrypted %zu attribute values of private objects\n", values);
	assert_true(values > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
