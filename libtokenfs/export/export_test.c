/*
 * export's library side on the real SoftHSM fixture store (testdata/store):
 * what is planned for each object, the policy, selection, the no-clobber
 * write. The keys themselves are checked against SoftHSM and OpenSSL by
 * tools/tests/export_softhsm.py.
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
#include <sys/stat.h>
#include <unistd.h>

#include "testutil/testutil.h"
#include "tokenfs/export.h"
#include "tokenfs/fs.h"

static const uint8_t PASS[] = "passphrase-1";

static const tfs_token *token(tfs_store *s, const char *label)
{
	for (size_t i = 0; i < tfs_store_token_count(s); i++)
		if (strcmp(tfs_token_label(tfs_store_token(s, i)), label) == 0)
			return tfs_store_token(s, i);
	fail_msg("no token %s", label);
	return NULL;
}

/* Plans the demo token's export with these options; key from the user PIN
 * unless no_pin. */
static tfs_export *plan_demo(tfs_store **store, const tfs_export_options *opts, bool no_pin)
{
	tfs_error err;
	char *path = tu_data_path("store");
	assert_int_equal(tfs_store_open(store, path, NULL, &err), TFS_OK);
	free(path);
	const tfs_token *tok = token(*store, "demo");
	tfs_token_key *key = NULL;
	if (!no_pin)
		assert_int_equal(tfs_token_unlock(&key, tok, TFS_PIN_USER, (const uint8_t *)"user-pin-1",
		                                  10, &err), TFS_OK);
	tfs_export *ex;
	assert_int_equal(tfs_export_new(&ex, opts, &err), TFS_OK);
	assert_int_equal(tfs_export_add_token(ex, tok, key, &err), TFS_OK);
	tfs_token_key_free(key);
	return ex;
}

static size_t count(const tfs_export *ex, tfs_export_status st)
{
	size_t n = 0;
	for (size_t i = 0; i < tfs_export_count(ex); i++)
		n += tfs_export_item_at(ex, i)->status == st;
	return n;
}

static const tfs_export_item *item(const tfs_export *ex, const char *label)
{
	for (size_t i = 0; i < tfs_export_count(ex); i++)
		if (strcmp(tfs_export_item_at(ex, i)->label, label) == 0)
			return tfs_export_item_at(ex, i);
	fail_msg("no item %s", label);
	return NULL;
}

static size_t files_in(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	return n;
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	char p[1024];
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

/* The policy: SoftHSM's defaults make keys sensitive, so only public
 * objects and the one extractable, non-sensitive secret come out. */
static void test_policy(void **state)
{
	(void)state;
	tfs_export_options o = {.passphrase = PASS, .passphrase_len = sizeof(PASS) - 1};
	tfs_store *s;
	tfs_export *ex = plan_demo(&s, &o, false);
	assert_int_equal(count(ex, TFS_EXPORT_READY), 5);   /* 3 public keys, cert, aes128 */
	assert_int_equal(count(ex, TFS_EXPORT_SKIPPED), 6); /* 3 private keys, 3 secrets */
	assert_int_equal(count(ex, TFS_EXPORT_FAILED) + count(ex, TFS_EXPORT_UNSUPPORTED), 0);
	const tfs_export_item *it = item(ex, "rsa2048-gen-priv");
	assert_int_equal(it->status, TFS_EXPORT_SKIPPED);
	assert_null(it->file);
	assert_non_null(strstr(it->reason, "CKA_SENSITIVE is true"));
	it = item(ex, "aes128-public-plaintext");
	assert_string_equal(it->file, "aes128-public-plaintext_05.secret.bin");
	assert_string_equal(it->fingerprint, "kcv:c6a13b"); /* CKA_CHECK_VALUE in testdata/README */
	tfs_export_free(ex);
	tfs_store_free(s);
}

/* With the flag every key is planned; the private keys are encrypted and
 * their fingerprints equal those of their public keys and certificate. */
static void test_include_unextractable(void **state)
{
	(void)state;
	tfs_export_options o = {.passphrase = PASS, .passphrase_len = sizeof(PASS) - 1,
	                        .include_unextractable = true};
	tfs_store *s;
	tfs_export *ex = plan_demo(&s, &o, false);
	assert_int_equal(count(ex, TFS_EXPORT_READY), 11);
	assert_int_equal(tfs_export_count(ex), 11); /* data objects are not selected */
	const tfs_export_item *priv = item(ex, "imported-rsa-priv");
	assert_true(priv->encrypted);
	assert_string_equal(priv->key_type, "RSA 2048");
	assert_string_equal(priv->fingerprint, item(ex, "imported-rsa-pub")->fingerprint);
	assert_string_equal(priv->fingerprint, item(ex, "imported-rsa-cert")->fingerprint);
	assert_string_equal(item(ex, "ec-p256-gen-priv")->fingerprint,
	                    item(ex, "ec-p256-gen-pub")->fingerprint);
	assert_string_equal(item(ex, "ec-p256-gen-priv")->key_type, "EC P-256");
	tfs_export_free(ex);
	tfs_store_free(s);
}

/* Without a PIN, private objects cannot be read: failed, named; public
 * objects still come out. */
static void test_no_pin(void **state)
{
	(void)state;
	tfs_export_options o = {.include_unextractable = true};
	tfs_store *s;
	tfs_export *ex = plan_demo(&s, &o, true);
	assert_int_equal(count(ex, TFS_EXPORT_READY), 5);
	assert_int_equal(count(ex, TFS_EXPORT_FAILED), 6);
	for (size_t i = 0; i < tfs_export_count(ex); i++) {
		const tfs_export_item *it = tfs_export_item_at(ex, i);
		if (it->status == TFS_EXPORT_FAILED)
			assert_non_null(strstr(it->reason, "no PIN"));
	}
	tfs_export_free(ex);
	tfs_store_free(s);
}

static void test_selection(void **state)
{
	(void)state;
	const char *ids[] = {"06", "FF"};
	const char *labels[] = {"ec-p256-gen-pub"};
	tfs_export_options o = {.ids = ids, .nids = 2, .labels = labels, .nlabels = 1};
	tfs_store *s;
	tfs_export *ex = plan_demo(&s, &o, false);
	assert_int_equal(tfs_export_count(ex), 4); /* id 06: key, public key, cert; one label */
	assert_int_equal(tfs_export_unmatched_count(ex), 1);
	assert_string_equal(tfs_export_unmatched(ex, 0), "FF");
	tfs_export_free(ex);
	tfs_store_free(s);
}

static void test_pkcs12_needs_passphrase(void **state)
{
	(void)state;
	tfs_export_options o = {.pkcs12_file = "b.p12"};
	tfs_export *ex = NULL;
	tfs_error err;
	assert_int_equal(tfs_export_new(&ex, &o, &err), TFS_E_INVALID);
	assert_null(ex);
}

/* An existing file refuses the whole write before anything is created;
 * --force replaces. */
static void test_write_no_clobber(void **state)
{
	(void)state;
	char dir[] = "/tmp/tfs-export-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char out[600];
	snprintf(out, sizeof(out), "%s/out", dir);
	tfs_export_options o = {.passphrase = PASS, .passphrase_len = sizeof(PASS) - 1,
	                        .include_unextractable = true, .pkcs12_file = "b.p12"};
	tfs_store *s;
	tfs_error err;
	tfs_export *ex = plan_demo(&s, &o, false);
	assert_int_equal(tfs_export_write(ex, out, false, &err), TFS_OK);
	struct stat st;
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	size_t n = files_in(out);
	assert_int_equal(n, 11 + 2); /* and b.p12, export.json */
	char p[800];
	snprintf(p, sizeof(p), "%s/b.p12", out);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	tfs_export_free(ex);
	tfs_store_free(s);

	/* Only the manifest is in the way: still nothing is written. */
	snprintf(p, sizeof(p), "%s/again", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/again/export.json", dir);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("mine\n", f);
	fclose(f);
	ex = plan_demo(&s, &o, false);
	snprintf(p, sizeof(p), "%s/again", dir);
	assert_int_equal(tfs_export_write(ex, p, false, &err), TFS_E_INVALID);
	assert_non_null(strstr(err.where, "export.json"));
	assert_int_equal(files_in(p), 1);
	tfs_export_free(ex);
	tfs_store_free(s);
	ex = plan_demo(&s, &o, false);
	assert_int_equal(tfs_export_write(ex, p, true, &err), TFS_OK);
	assert_int_equal(files_in(p), 13);
	tfs_export_free(ex);
	tfs_store_free(s);
	rm_tree(p);
	rm_tree(out);
	rmdir(dir);
}

/* tfs_write_file_new never replaces, and leaves no temporary file. */
static void test_write_file_new(void **state)
{
	(void)state;
	char dir[] = "/tmp/tfs-export-new-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p[600];
	snprintf(p, sizeof(p), "%s/f", dir);
	tfs_error err;
	assert_int_equal(tfs_write_file_new(p, (const uint8_t *)"one", 3, 0600, &err), TFS_OK);
	assert_int_equal(tfs_write_file_new(p, (const uint8_t *)"two", 3, 0600, &err), TFS_E_INVALID);
	size_t len;
	uint8_t *data = tu_read_file(p, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "one", 3);
	free(data);
	assert_int_equal(files_in(dir), 1);
	DIR *d = opendir(dir);
	size_t all = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		all++;
	closedir(d);
	assert_int_equal(all, 3); /* ., .., f: no temporary file left */
	unlink(p);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_include_unextractable),
		cmocka_unit_test(test_no_pin),
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_pkcs12_needs_passphrase),
		cmocka_unit_test(test_write_no_clobber),
		cmocka_unit_test(test_write_file_new),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
