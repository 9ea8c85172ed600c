/*
 * tfs_token_uri and tfs_object_uri on testdata/store (made by SoftHSM
 * 2.6.1). The expected strings are what p11tool 3.7.9 printed for these
 * objects (`p11tool --list-all --login`, --list-tokens); tools/tests/
 * uri_p11tool.py compares with a live p11tool on a fresh store with awkward
 * labels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testutil/testutil.h"
#include "tokenfs/keys.h"
#include "tokenfs/store.h"
#include "tokenfs/uri.h"

#define DEMO "0d530850-8d79-c236-fc71-37445ffb77ce"
#define SECOND "59743ce1-f76f-d6da-aabc-e2f46b5818ba"
#define DEMO_URI "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;" \
                 "serial=fc7137445ffb77ce;token=demo"

static tfs_store *open_store(void)
{
	char *path = tu_data_path("store");
	tfs_store *store;
	tfs_error err;
	assert_int_equal(tfs_store_open(&store, path, NULL, &err), TFS_OK);
	free(path);
	return store;
}

static const tfs_token *token(const tfs_store *store, const char *dir)
{
	for (size_t i = 0; i < tfs_store_token_count(store); i++)
		if (strcmp(tfs_token_dirname(tfs_store_token(store, i)), dir) == 0)
			return tfs_store_token(store, i);
	fail_msg("no token %s", dir);
	return NULL;
}

static tfs_object *object(const tfs_token *tok, const char *uuid)
{
	for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
		if (strcmp(tfs_token_object_uuid(tok, i), uuid) != 0)
			continue;
		tfs_object *obj;
		tfs_error err;
		assert_int_equal(tfs_token_load_object(&obj, tok, i, &err), TFS_OK);
		return obj;
	}
	fail_msg("no object %s", uuid);
	return NULL;
}

static tfs_token_key *unlock(const tfs_token *tok, const char *pin)
{
	tfs_token_key *key;
	tfs_error err;
	int rc = tfs_token_unlock(&key, tok, TFS_PIN_USER, (const uint8_t *)pin, strlen(pin), &err);
	assert_int_equal(rc, TFS_OK);
	return key;
}

static void assert_object_uri(const tfs_token *tok, const char *uuid, const tfs_token_key *key,
                              const char *want)
{
	tfs_object *obj = object(tok, uuid);
	char *uri;
	tfs_error err;
	assert_int_equal(tfs_object_uri(&uri, tok, obj, key, &err), TFS_OK);
	assert_string_equal(uri, want);
	free(uri);
	tfs_object_free(obj);
}

static void test_token_uri(void **state)
{
	(void)state;
	tfs_store *store = open_store();
	char *uri;
	tfs_error err;
	assert_int_equal(tfs_token_uri(&uri, token(store, DEMO), &err), TFS_OK);
	assert_string_equal(uri, DEMO_URI);
	free(uri);
	tfs_store_free(store);
}

static void test_public_objects(void **state)
{
	(void)state;
	tfs_store *store = open_store();
	const tfs_token *demo = token(store, DEMO);
	/* The URI issue 12 quotes from p11tool for this fixture. */
	assert_object_uri(demo, "434d6d32-8ef0-cbd2-4ecd-c757f2764e72", NULL,
	                  DEMO_URI ";id=%06;object=imported-rsa-pub;type=public");
	assert_object_uri(demo, "46b43c79-1588-0c3c-b5b2-a1d459ca5226", NULL,
	                  DEMO_URI ";id=%06;object=imported-rsa-cert;type=cert");
	/* A data object has no CKA_ID at all. */
	assert_object_uri(demo, "99bf426f-0f35-ab28-7c20-b5aafeeca46c", NULL,
	                  DEMO_URI ";object=data-public;type=data");
	tfs_store_free(store);
}

static void test_private_objects(void **state)
{
	(void)state;
	tfs_store *store = open_store();
	const tfs_token *demo = token(store, DEMO);
	tfs_object *obj = object(demo, "007a13f3-04cd-4e62-281a-50ba0aca0012");
	char *uri = (char *)"unset";
	tfs_error err;
	/* No key: the label and ID are ciphertext, so no URI at all. */
	assert_int_equal(tfs_object_uri(&uri, demo, obj, NULL, &err), TFS_E_INVALID);
	assert_null(uri);
	assert_non_null(strstr(err.what, "encrypted"));
	/* The other token's key does not open them. */
	tfs_token_key *other = unlock(token(store, SECOND), "user-pin-2");
	assert_int_equal(tfs_object_uri(&uri, demo, obj, other, &err), TFS_E_DAMAGED);
	assert_null(uri);
	tfs_token_key_free(other);
	tfs_object_free(obj);

	tfs_token_key *key = unlock(demo, "user-pin-1");
	assert_object_uri(demo, "007a13f3-04cd-4e62-281a-50ba0aca0012", key,
	                  DEMO_URI ";id=%06;object=imported-rsa-priv;type=private");
	assert_object_uri(demo, "026925d1-43b3-9b39-2a5f-9bd1c8e7bcea", key,
	                  DEMO_URI ";id=%03;object=aes256-private;type=secret-key");
	/* A public object needs no key and ignores one. */
	assert_object_uri(demo, "ca4ee17d-5f67-dfc0-21da-9179d47c3894", key,
	                  DEMO_URI ";id=%05;object=aes128-public-plaintext;type=secret-key");
	tfs_token_key_free(key);
	tfs_store_free(store);
}

/* A store opened on one object file takes the token.object beside it, so
 * the URIs are the token's; alone in a directory it has no label and no
 * serial, and no URI. */
static void test_no_metadata(void **state)
{
	(void)state;
	char *path = tu_data_path("store/" DEMO "/434d6d32-8ef0-cbd2-4ecd-c757f2764e72.object");
	tfs_store *store;
	tfs_error err;
	char *uri;
	tfs_object *obj;
	assert_int_equal(tfs_store_open(&store, path, NULL, &err), TFS_OK);
	const tfs_token *tok = tfs_store_token(store, 0);
	assert_int_equal(tfs_token_uri(&uri, tok, &err), TFS_OK);
	assert_string_equal(uri, DEMO_URI);
	free(uri);
	tfs_store_free(store);

	char dir[] = "/tmp/tfs-uri-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char copy[sizeof(dir) + 64];
	snprintf(copy, sizeof(copy), "%s/434d6d32-8ef0-cbd2-4ecd-c757f2764e72.object", dir);
	size_t len;
	uint8_t *bytes = tu_read_file(path, &len);
	assert_non_null(bytes);
	FILE *f = fopen(copy, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(bytes);
	free(path);
	assert_int_equal(tfs_store_open(&store, copy, NULL, &err), TFS_OK);
	tok = tfs_store_token(store, 0);
	assert_int_equal(tfs_token_uri(&uri, tok, &err), TFS_E_NOTFOUND);
	assert_null(uri);
	assert_int_equal(tfs_token_load_object(&obj, tok, 0, &err), TFS_OK);
	assert_int_equal(tfs_object_uri(&uri, tok, obj, NULL, &err), TFS_E_NOTFOUND);
	assert_null(uri);
	tfs_object_free(obj);
	tfs_store_free(store);
	assert_int_equal(unlink(copy), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_uri),
		cmocka_unit_test(test_public_objects),
		cmocka_unit_test(test_private_objects),
		cmocka_unit_test(test_no_metadata),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
