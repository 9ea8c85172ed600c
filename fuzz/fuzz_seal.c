/*
 * libFuzzer target: loading a seal (tokenfs.seal, docs/seal.md) and showing
 * its sealed values as --check-seal's messages do.
 *
 * A seal is believed only after its MAC matches, so random text stops at the
 * MAC. Each input is loaded twice under a fixed token key: as it is, and, if
 * it is a JSON object with a 32-byte "salt", re-signed with that key first,
 * so that mutations reach the parsing and validation behind the MAC. Every
 * sealed attribute of a loaded seal is then rendered.
 *
 * Invariants: no crash or leak; a loaded seal's rendering never shows a
 * key-material value of an attribute map (a template's CKA_VALUE) in hex;
 * a seal that does not load says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <p11-kit/pkcs11.h>

#include "keys/keys_internal.h"
#include "seal/seal_internal.h"
#include "tokenfs/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A map entry of key-material type whose hex must not be in `text`. */
static void check_map(const tfs_attr *a, const char *text)
{
	for (size_t i = 0; i < tfs_attr_map_count(a); i++) {
		const tfs_attr *e = tfs_attr_map_entry(a, i);
		size_t n;
		if (tfs_attr_kind(e) != TFS_KIND_BYTES ||
		    !tfs_is_key_material(CKO_SECRET_KEY, tfs_attr_type(e)))
			continue;
		const uint8_t *p = tfs_attr_bytes(e, &n);
		if (n < 8)
			continue; /* short hex may occur by chance */
		char hex[17];
		tfs_seal_hex(hex, p, 8);
		if (strstr(text, hex) != NULL)
			abort();
	}
}

static void render_all(const tfs_seal_manifest *m, const tfs_token_key *key)
{
	for (size_t o = 0; o <= m->nobjs; o++) {
		const tfs_seal_object *so = o == 0 ? &m->token : &m->objs[o - 1];
		for (size_t k = 0; k < so->nattrs; k++) {
			const tfs_seal_attr *sa = &so->attrs[k];
			tfs_object *tmp = NULL;
			tfs_seal_view v = {.encrypted = sa->encrypted, .redacted = sa->redacted,
			                   .fingerprint = sa->fingerprint, .sha256 = sa->sha256};
			if (sa->record != NULL &&
			    tfs_object_parse(&tmp, sa->record, sa->record_len, NULL) == TFS_OK &&
			    tfs_object_attr_count(tmp) == 1)
				v.a = tfs_object_attr(tmp, 0);
			tfs_seal_strbuf b = {0};
			tfs_seal_render(&b, &v, key);
			if (b.p != NULL && v.a != NULL && tfs_attr_kind(v.a) == TFS_KIND_MAP)
				check_map(v.a, b.p);
			free(b.p);
			tfs_object_free(tmp);
		}
	}
}

static void load(const uint8_t *text, size_t len, const tfs_token_key *key)
{
	tfs_seal_manifest m;
	tfs_seal_load_status status;
	tfs_error err;
	tfs_error_clear(&err);
	int rc = tfs_seal_manifest_load(&m, &status, key, text, len, &err);
	if (rc == TFS_OK && status != TFS_SEAL_LOADED && err.what[0] == '\0')
		abort();
	if (rc == TFS_OK && status == TFS_SEAL_LOADED)
		render_all(&m, key);
	tfs_seal_manifest_free(&m);
}

/* The input with "mac" set to its MAC under key; NULL when it is not a
 * JSON object with a usable salt. free() the result. */
static char *resign(const uint8_t *data, size_t size, const tfs_token_key *key)
{
	json_tokener *tk = json_tokener_new_ex(16);
	if (tk == NULL || size > INT32_MAX) {
		json_tokener_free(tk);
		return NULL;
	}
	json_object *root = json_tokener_parse_ex(tk, (const char *)data, (int)size);
	json_tokener_free(tk);
	json_object *s;
	uint8_t salt[TFS_SEAL_SALT_LEN], mac[TFS_SEAL_MAC_LEN];
	char *canon = NULL, *out = NULL, hex[2 * TFS_SEAL_MAC_LEN + 1];
	size_t len;
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "salt", &s) || !json_object_is_type(s, json_type_string) ||
	    !tfs_seal_unhex_exact(salt, sizeof(salt), json_object_get_string(s),
	                          (size_t)json_object_get_string_len(s)) ||
	    tfs_seal_canonical(&canon, &len, root, NULL) != TFS_OK ||
	    tfs_seal_mac(mac, key, salt, canon, len, NULL) != TFS_OK)
		goto done;
	tfs_seal_hex(hex, mac, sizeof(mac));
	json_object_object_add(root, "mac", json_object_new_string(hex));
	out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
done:
	free(canon);
	json_object_put(root);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t fixed[TFS_KEY_LEN] = {
		0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1,
		0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1, 0x5e, 0xa1};
	tfs_token_key *key;
	if (tfs_token_key_from_bytes(&key, fixed, TFS_LAYOUT_CBC, NULL) != TFS_OK)
		return 0;
	load(data, size, key);
	char *again = resign(data, size, key);
	if (again != NULL)
		load((const uint8_t *)again, strlen(again), key);
	free(again);
	tfs_token_key_free(key);
	return 0;
}
