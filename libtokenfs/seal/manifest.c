/*
 * Writing a seal: walk the token directory once, hash every file, record
 * every attribute of every object file by its exact stored encoding, MAC the
 * canonical text and write the result atomically (docs/seal.md).
 */
#include "seal/seal_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/cursor.h"
#include "core/error_internal.h"
#include "tokenfs/names.h"

/* json-c returns NULL only when out of memory; one flag collects that. */
typedef struct builder {
	bool nomem;
} builder;

static json_object *put(builder *b, json_object *obj, const char *key, json_object *v)
{
	if (v == NULL || obj == NULL || json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		b->nomem = true;
	}
	return v;
}

static void append(builder *b, json_object *arr, json_object *v)
{
	if (v == NULL || arr == NULL || json_object_array_add(arr, v) != 0) {
		json_object_put(v);
		b->nomem = true;
	}
}

static json_object *hex_string(const uint8_t *p, size_t n)
{
	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	char *s = malloc(2 * n + 1);
	if (s == NULL)
		return NULL;
	tfs_seal_hex(s, p, n);
	json_object *v = json_object_new_string_len(s, (int)(2 * n));
	free(s);
	return v;
}

/* Labels and serials are informative copies: printable ASCII only, so the
 * JSON text never depends on how a parser treats invalid UTF-8. */
static json_object *safe_string(const char *s)
{
	char buf[64];
	size_t n = 0;
	for (; s[n] != '\0' && n < sizeof(buf) - 1; n++)
		buf[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
	buf[n] = '\0';
	return json_object_new_string(buf);
}

static json_object *mode_string(uint32_t mode)
{
	char buf[16];
	snprintf(buf, sizeof(buf), "%04o", (unsigned)(mode & 07777));
	return json_object_new_string(buf);
}

static bool is_pin_blob(uint64_t type)
{
	return type == TFS_CKA_OS_SOPIN || type == TFS_CKA_OS_USERPIN;
}

/* Whether a is an attribute map (CKA_WRAP_TEMPLATE and the like) with a
 * non-empty key value among its entries, which are never encrypted. */
static bool map_holds_key(const tfs_attr *a)
{
	if (tfs_attr_kind(a) != TFS_KIND_MAP)
		return false;
	for (size_t i = 0; i < tfs_attr_map_count(a); i++) {
		const tfs_attr *e = tfs_attr_map_entry(a, i);
		size_t n = 0;
		if (tfs_attr_kind(e) == TFS_KIND_BYTES && tfs_attr_bytes(e, &n) != NULL && n > 0 &&
		    tfs_is_key_material(0x4 /* CKO_SECRET_KEY */, tfs_attr_type(e)))
			return true;
	}
	return false;
}

/* One attribute: its stored bytes are data[off, end). */
static int attr_entry(builder *b, json_object *arr, const tfs_vtoken *vt, const tfs_object *obj,
                      bool is_token, const tfs_attr *a, const uint8_t *data, uint64_t off,
                      uint64_t end, bool with_secrets, tfs_error *err)
{
	uint64_t type = tfs_attr_type(a);
	json_object *e = json_object_new_object();
	append(b, arr, e);
	put(b, e, "type", json_object_new_uint64(type));
	char nb[24];
	put(b, e, "name", json_object_new_string(tfs_vattr_name(type, nb)));
	put(b, e, "kind", json_object_new_int((int)tfs_attr_kind(a)));
	put(b, e, "size", json_object_new_uint64(end - off));
	uint8_t md[32];
	int rc = tfs_sha256(md, data + off, (size_t)(end - off), err);
	if (rc != TFS_OK)
		return rc;
	put(b, e, "sha256", hex_string(md, sizeof(md)));

	bool bytes = tfs_attr_kind(a) == TFS_KIND_BYTES;
	bool encrypted = bytes && !is_token && tfs_object_attr_encrypted(obj, a);
	if (encrypted)
		put(b, e, "encrypted", json_object_new_boolean(1));
	if (bytes && is_token && is_pin_blob(type)) {
		put(b, e, "redacted", json_object_new_string("pin-blob"));
		return TFS_OK;
	}
	uint64_t key_type = UINT64_MAX;
	const tfs_attr *k = is_token ? NULL : tfs_object_find(obj, 0x100 /* CKA_KEY_TYPE */);
	if (k != NULL && tfs_attr_kind(k) == TFS_KIND_ULONG)
		key_type = tfs_attr_ulong(k);
	if (bytes && !is_token && tfs_object_attr_is_key_material(obj, a)) {
		put(b, e, "redacted", json_object_new_string("key-material"));
		if (with_secrets)
			put(b, e, "value", hex_string(data + off + 16, (size_t)(end - off - 16)));
		size_t len;
		const uint8_t *p = tfs_attr_bytes(a, &len);
		uint8_t *pt = NULL;
		size_t pt_len = 0;
		tfs_layout layout;
		if (encrypted && vt->key != NULL &&
		    tfs_token_key_decrypt(vt->key, &pt, &pt_len, &layout, p, len, NULL) == TFS_OK) {
			p = pt;
			len = pt_len;
		} else if (encrypted) {
			return TFS_OK; /* no plaintext, no fingerprint */
		}
		char fp[TFS_FINGERPRINT_LEN];
		rc = tfs_key_fingerprint(fp, key_type, type, p, len, err);
		tfs_secure_free(pt, pt_len);
		if (rc != TFS_OK)
			return rc;
		put(b, e, "fingerprint", json_object_new_string(fp));
		return TFS_OK;
	}
	if (map_holds_key(a)) {
		/* A template's key value is a key: the seal keeps its hash only. */
		put(b, e, "redacted", json_object_new_string("key-material"));
		return TFS_OK;
	}
	/* Everything after type and kind, as stored: ciphertext stays ciphertext. */
	put(b, e, "value", hex_string(data + off + 16, (size_t)(end - off - 16)));
	return TFS_OK;
}

/* The record of one object file, or a record saying it did not parse. */
static int object_entry(builder *b, json_object **out, const tfs_vtoken *vt, const char *name,
                        const uint8_t *data, size_t size, bool with_secrets, tfs_error *err)
{
	bool is_token = strcmp(name, "token.object") == 0;
	json_object *e = json_object_new_object();
	*out = e;
	put(b, e, "file", json_object_new_string(name));
	if (!is_token) {
		char *uuid = strndup(name, strlen(name) - strlen(".object"));
		put(b, e, "uuid", uuid ? json_object_new_string(uuid) : NULL);
		free(uuid);
	}
	tfs_object *obj = NULL;
	tfs_error pe;
	int rc = tfs_object_parse(&obj, data, size, &pe);
	if (rc == TFS_E_NOMEM)
		return tfs_nomem(err);
	if (rc != TFS_OK) {
		char msg[600];
		if (pe.offset != TFS_NO_OFFSET)
			snprintf(msg, sizeof(msg), "offset %llu: %s", (unsigned long long)pe.offset, pe.what);
		else
			snprintf(msg, sizeof(msg), "%s", pe.what);
		/* json-c's null is the NULL pointer: nothing to allocate. */
		if (e == NULL || json_object_object_add(e, "attributes", NULL) != 0)
			b->nomem = true;
		put(b, e, "error", json_object_new_string(msg));
		return TFS_OK;
	}
	put(b, e, "generation", json_object_new_uint64(tfs_object_generation(obj)));
	json_object *attrs = put(b, e, "attributes", json_object_new_array());
	size_t n = tfs_object_attr_count(obj);
	for (size_t k = 0; k < n && rc == TFS_OK && !b->nomem; k++) {
		const tfs_attr *a = tfs_object_attr(obj, k);
		uint64_t end = k + 1 < n ? tfs_attr_offset(tfs_object_attr(obj, k + 1)) : size;
		rc = attr_entry(b, attrs, vt, obj, is_token, a, data, tfs_attr_offset(a), end,
		                with_secrets, err);
	}
	tfs_object_free(obj);
	return rc;
}

static int token_section(builder *b, json_object *root, const tfs_vtoken *vt,
                         const tfs_seal_dir *d)
{
	json_object *t = put(b, root, "token", json_object_new_object());
	put(b, t, "dir", safe_string(tfs_token_dirname(vt->tok)));
	put(b, t, "label", safe_string(tfs_token_label(vt->tok)));
	put(b, t, "serial", safe_string(tfs_token_serial(vt->tok)));
	put(b, t, "mode", mode_string(d->mode));
	return TFS_OK;
}

static json_object *created_string(void)
{
	time_t now = time(NULL);
	struct tm tm;
	char buf[32];
	if (gmtime_r(&now, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(buf, "unknown");
	return json_object_new_string(buf);
}

static int files_and_objects(builder *b, json_object *root, tfs_vtoken *vt, const tfs_seal_dir *d,
                             size_t *nobjs, bool with_secrets, tfs_error *err)
{
	json_object *files = put(b, root, "files", json_object_new_array());
	json_object *objs = put(b, root, "objects", json_object_new_array());
	json_object *tokobj = NULL;
	int rc = TFS_OK;
	for (size_t i = 0; i < d->count && rc == TFS_OK && !b->nomem; i++) {
		const tfs_dirent *ent = &d->ents[i];
		json_object *f = json_object_new_object();
		append(b, files, f);
		put(b, f, "name", json_object_new_string(ent->name));
		put(b, f, "type", json_object_new_string(tfs_seal_ent_type_name(ent->st.type)));
		put(b, f, "mode", mode_string(ent->st.mode));
		if (ent->st.type != TFS_ENT_FILE) {
			put(b, f, "size", json_object_new_uint64(ent->st.size));
			continue;
		}
		uint8_t *data;
		size_t size;
		rc = tfs_seal_dir_read(vt, d, ent->name, &data, &size, err);
		if (rc != TFS_OK)
			break;
		uint8_t md[32];
		put(b, f, "size", json_object_new_uint64(size));
		rc = tfs_sha256(md, data, size, err);
		put(b, f, "sha256", hex_string(md, sizeof(md)));
		/* The token's change counter, as read here, for a readable check. */
		if (strcmp(ent->name, "generation") == 0 && size == 8)
			put(b, f, "counter", json_object_new_uint64(tfs_be64(data)));
		if (rc == TFS_OK && tfs_seal_is_object_file(ent->name)) {
			json_object *o = NULL;
			rc = object_entry(b, &o, vt, ent->name, data, size, with_secrets, err);
			if (strcmp(ent->name, "token.object") == 0) {
				json_object_put(tokobj);
				tokobj = o;
			} else {
				append(b, objs, o);
				++*nobjs;
			}
		}
		free(data);
	}
	if (tokobj != NULL)
		put(b, root, "token_object", tokobj);
	else if (root == NULL || json_object_object_add(root, "token_object", NULL) != 0)
		b->nomem = true;
	return rc;
}

int tfs_seal_build(json_object **out, size_t *nfiles, size_t *nobjs, tfs_vtoken *vt,
                   const char *seal_path, bool with_secrets, tfs_error *err)
{
	*out = NULL;
	*nfiles = *nobjs = 0;
	builder b = {false};
	tfs_seal_dir d;
	int rc = tfs_seal_dir_list(&d, vt, seal_path, err);
	json_object *root = json_object_new_object();
	if (rc == TFS_OK) {
		uint8_t salt[TFS_SEAL_SALT_LEN];
		if (RAND_bytes(salt, sizeof(salt)) != 1)
			rc = tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "RAND_bytes failed");
		put(&b, root, "format", json_object_new_string(TFS_SEAL_FORMAT));
		put(&b, root, "version", json_object_new_int(TFS_SEAL_VERSION));
		put(&b, root, "created", created_string());
		put(&b, root, "salt", hex_string(salt, sizeof(salt)));
		token_section(&b, root, vt, &d);
	}
	if (rc == TFS_OK)
		rc = files_and_objects(&b, root, vt, &d, nobjs, with_secrets, err);
	*nfiles = d.count;
	tfs_seal_dir_free(&d);
	if (rc == TFS_OK && b.nomem)
		rc = tfs_nomem(err);
	if (rc != TFS_OK) {
		json_object_put(root);
		return rc;
	}
	*out = root;
	return TFS_OK;
}
