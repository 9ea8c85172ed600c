/*
 * tfs_testkit: test-only writer built from libtokenfs's write side, so tests
 * can hand real SoftHSM files this library made. Not installed.
 *
 *   tfs_testkit set-pin TOKEN_DIR user|so cbc|gcm
 *       re-wraps one PIN blob; the PINs come from TFS_OLD_PIN and TFS_NEW_PIN
 *   tfs_testkit to-layout TOKEN_DIR cbc|gcm
 *       re-wraps both blobs (TFS_SO_PIN, TFS_USER_PIN) and re-encrypts every
 *       value in the layout (SoftHSMv2 pull request #627's for gcm)
 *
 * Every changed object gets generation + 1 and the token's generation file
 * is increased, as a SoftHSM writer would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "tokenfs/tokenfs.h"

static int die(const tfs_error *err)
{
	char buf[1200];
	fprintf(stderr, "tfs_testkit: %s\n", tfs_error_format(err, buf, sizeof(buf)));
	return 1;
}

static const char *env_pin(const char *name)
{
	const char *p = getenv(name);
	if (p == NULL) {
		fprintf(stderr, "tfs_testkit: %s is not set\n", name);
		exit(2);
	}
	return p;
}

static int write_object(const char *path, tfs_object *obj, tfs_error *err)
{
	uint8_t *data;
	size_t size;
	tfs_object_set_generation(obj, tfs_object_generation(obj) + 1);
	int rc = tfs_object_serialize(obj, &data, &size, err);
	if (rc == TFS_OK)
		rc = tfs_write_file_atomic(path, data, size, 0600, err);
	free(data);
	return rc;
}

static int bump_token_generation(const tfs_token *tok, tfs_error *err)
{
	uint64_t gen = 0;
	(void)tfs_token_generation(tok, &gen);
	uint8_t b[8];
	tfs_put_be64(b, gen + 1);
	char path[4096];
	snprintf(path, sizeof(path), "%s/generation", tfs_token_path(tok));
	return tfs_write_file_atomic(path, b, 8, 0600, err);
}

static tfs_layout layout_arg(const char *s)
{
	if (strcmp(s, "cbc") == 0)
		return TFS_LAYOUT_CBC;
	if (strcmp(s, "gcm") == 0)
		return TFS_LAYOUT_GCM;
	fprintf(stderr, "tfs_testkit: layout must be cbc or gcm\n");
	exit(2);
}

/* Reads token.object afresh (the store keeps its copy read-only). */
static int load_meta(tfs_object **meta, const tfs_token *tok, tfs_error *err)
{
	uint8_t *data;
	size_t size;
	int rc = tfs_token_read_metadata(&data, &size, tok, err);
	if (rc == TFS_OK)
		rc = tfs_object_parse(meta, data, size, err);
	free(data);
	return rc;
}

static int rewrap(tfs_object *meta, const tfs_token *tok, const tfs_token_key *key,
                  tfs_pin_role role, const char *pin, tfs_layout layout, tfs_error *err)
{
	uint8_t blob[TFS_PIN_BLOB_LEN];
	int rc = tfs_pinblob_wrap(blob, layout, tfs_token_key_bytes(key), (const uint8_t *)pin,
	                          strlen(pin), err);
	if (rc == TFS_OK)
		rc = tfs_metadata_set_pin_blob(meta, role, blob, err);
	(void)tok;
	return rc;
}

static int set_pin(const tfs_token *tok, tfs_pin_role role, tfs_layout layout, tfs_error *err)
{
	const char *old = env_pin("TFS_OLD_PIN"), *new_pin = env_pin("TFS_NEW_PIN");
	tfs_token_key *key;
	tfs_object *meta = NULL;
	int rc = tfs_token_unlock(&key, tok, role, (const uint8_t *)old, strlen(old), err);
	if (rc != TFS_OK)
		return rc;
	rc = load_meta(&meta, tok, err);
	if (rc == TFS_OK)
		rc = rewrap(meta, tok, key, role, new_pin, layout, err);
	char path[4096];
	snprintf(path, sizeof(path), "%s/token.object", tfs_token_path(tok));
	if (rc == TFS_OK)
		rc = write_object(path, meta, err);
	tfs_object_free(meta);
	tfs_token_key_free(key);
	return rc;
}

static int to_layout(const tfs_token *tok, tfs_layout layout, tfs_error *err)
{
	const char *so = env_pin("TFS_SO_PIN"), *user = env_pin("TFS_USER_PIN");
	tfs_token_key *key;
	int rc = tfs_token_unlock(&key, tok, TFS_PIN_USER, (const uint8_t *)user, strlen(user), err);
	if (rc != TFS_OK)
		return rc;
	for (size_t i = 0; rc == TFS_OK && i < tfs_token_object_count(tok); i++) {
		tfs_object *obj;
		rc = tfs_token_load_object(&obj, tok, i, err);
		if (rc == TFS_OK)
			rc = tfs_object_reencrypt(obj, key, tfs_token_key_bytes(key), layout, err);
		if (rc == TFS_OK)
			rc = write_object(tfs_token_object_path(tok, i), obj, err);
		tfs_object_free(obj);
	}
	tfs_object *meta = NULL;
	if (rc == TFS_OK)
		rc = load_meta(&meta, tok, err);
	if (rc == TFS_OK)
		rc = rewrap(meta, tok, key, TFS_PIN_SO, so, layout, err);
	if (rc == TFS_OK)
		rc = rewrap(meta, tok, key, TFS_PIN_USER, user, layout, err);
	char path[4096];
	snprintf(path, sizeof(path), "%s/token.object", tfs_token_path(tok));
	if (rc == TFS_OK)
		rc = write_object(path, meta, err);
	tfs_object_free(meta);
	tfs_token_key_free(key);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: tfs_testkit set-pin DIR user|so cbc|gcm | to-layout DIR cbc|gcm\n");
		return 2;
	}
	tfs_store *store;
	tfs_error err;
	if (tfs_store_open(&store, argv[2], NULL, &err) != TFS_OK)
		return die(&err);
	if (tfs_store_kind(store) != TFS_PATH_TOKEN) {
		fprintf(stderr, "tfs_testkit: %s is not a token directory\n", argv[2]);
		return 2;
	}
	const tfs_token *tok = tfs_store_token(store, 0);
	int rc;
	if (strcmp(argv[1], "set-pin") == 0 && argc == 5)
		rc = set_pin(tok, strcmp(argv[3], "so") == 0 ? TFS_PIN_SO : TFS_PIN_USER,
		             layout_arg(argv[4]), &err);
	else if (strcmp(argv[1], "to-layout") == 0)
		rc = to_layout(tok, layout_arg(argv[3]), &err);
	else {
		fprintf(stderr, "tfs_testkit: unknown command\n");
		return 2;
	}
	if (rc == TFS_OK)
		rc = bump_token_generation(tok, &err);
	tfs_store_free(store);
	return rc == TFS_OK ? 0 : die(&err);
}
