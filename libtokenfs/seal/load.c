/*
 * Reading a seal: parse the JSON, authenticate it, and only then trust it
 * enough to read its records into C structures, checking every field's type
 * and size and every stored value against its own hash.
 */
#include "seal/seal_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/error_internal.h"

#define MALFORMED(...) tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET, __VA_ARGS__)

static json_object *member(json_object *o, const char *key, json_type type)
{
	json_object *v = NULL;
	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_is_type(v, type) ? v : NULL;
}

static const char *string_member(json_object *o, const char *key, size_t *len)
{
	json_object *v = member(o, key, json_type_string);
	if (v == NULL)
		return NULL;
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* A non-negative integer member. */
static bool u64_member(json_object *o, const char *key, uint64_t *out)
{
	json_object *v = member(o, key, json_type_int);
	if (v == NULL || json_object_get_int64(v) < 0)
		return false;
	*out = json_object_get_uint64(v);
	return true;
}

static bool sha_member(json_object *o, const char *key, uint8_t out[32])
{
	size_t n;
	const char *s = string_member(o, key, &n);
	return s != NULL && tfs_seal_unhex_exact(out, 32, s, n);
}

static bool mode_member(json_object *o, const char *key, uint32_t *out)
{
	size_t n;
	const char *s = string_member(o, key, &n);
	if (s == NULL || n == 0 || n > 6)
		return false;
	uint32_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return false;
		m = m * 8 + (uint32_t)(s[i] - '0');
	}
	*out = m & 07777;
	return m <= 07777;
}

static bool ent_type(const char *s, tfs_ent_type *t)
{
	static const tfs_ent_type all[] = {TFS_ENT_FILE, TFS_ENT_DIR, TFS_ENT_SYMLINK, TFS_ENT_OTHER};
	for (size_t i = 0; s != NULL && i < 4; i++)
		if (strcmp(s, tfs_seal_ent_type_name(all[i])) == 0) {
			*t = all[i];
			return true;
		}
	return false;
}

static int load_attr(tfs_seal_attr *sa, json_object *e, const char *file, size_t k, tfs_error *err)
{
	if (!u64_member(e, "type", &sa->type) || !u64_member(e, "kind", &sa->kind) ||
	    !u64_member(e, "size", &sa->size) || !sha_member(e, "sha256", sa->sha256) ||
	    sa->kind < 1 || sa->kind > 5 || sa->size < 17)
		return MALFORMED("%s: attribute %zu: type, kind, size or sha256 missing or invalid",
		                 file, k);
	json_object *enc = member(e, "encrypted", json_type_boolean);
	sa->encrypted = enc != NULL && json_object_get_boolean(enc);
	sa->redacted = string_member(e, "redacted", NULL);
	sa->fingerprint = string_member(e, "fingerprint", NULL);
	if (sa->redacted != NULL && strcmp(sa->redacted, "key-material") != 0 &&
	    strcmp(sa->redacted, "pin-blob") != 0)
		return MALFORMED("%s: attribute %zu: unknown redaction \"%s\"", file, k, sa->redacted);
	size_t n;
	const char *hex = string_member(e, "value", &n);
	if (hex == NULL) {
		if (sa->redacted == NULL)
			return MALFORMED("%s: attribute %zu: neither a value nor a redaction", file, k);
		return TFS_OK;
	}
	/* The record of the stored bytes must agree with their hash. */
	if (n / 2 + 16 != sa->size)
		return MALFORMED("%s: attribute %zu: value of %zu hex digits for %llu bytes", file, k, n,
		                 (unsigned long long)sa->size);
	/* A one-attribute object file: zero generation, type, kind, value. */
	size_t rec_len = 8 + (size_t)sa->size;
	uint8_t *rec = calloc(1, rec_len);
	if (rec == NULL)
		return tfs_nomem(err);
	for (int i = 0; i < 8; i++) {
		rec[8 + i] = (uint8_t)(sa->type >> (56 - 8 * i));
		rec[16 + i] = (uint8_t)(sa->kind >> (56 - 8 * i));
	}
	uint8_t md[32];
	int rc = TFS_OK;
	if (!tfs_seal_unhex_exact(rec + 24, n / 2, hex, n))
		rc = MALFORMED("%s: attribute %zu: value is not hex", file, k);
	else if ((rc = tfs_sha256(md, rec + 8, (size_t)sa->size, err)) == TFS_OK &&
	         memcmp(md, sa->sha256, 32) != 0)
		rc = MALFORMED("%s: attribute %zu: value does not match its sha256", file, k);
	if (rc != TFS_OK) {
		free(rec);
		return rc;
	}
	sa->record = rec;
	sa->record_len = rec_len;
	return TFS_OK;
}

static int load_object(tfs_seal_object *so, json_object *e, bool is_token, tfs_error *err)
{
	so->file = string_member(e, "file", NULL);
	if (so->file == NULL || !tfs_seal_is_object_file(so->file) ||
	    (strcmp(so->file, "token.object") == 0) != is_token)
		return MALFORMED("an object record without a valid \"file\"");
	so->uuid = is_token ? NULL : string_member(e, "uuid", NULL);
	json_object *attrs = member(e, "attributes", json_type_array);
	if (attrs == NULL)
		return TFS_OK; /* did not parse when sealed: only its file hash counts */
	if (!u64_member(e, "generation", &so->generation))
		return MALFORMED("%s: no generation", so->file);
	so->parsed = true;
	size_t n = json_object_array_length(attrs);
	so->attrs = calloc(n + 1, sizeof(*so->attrs));
	if (so->attrs == NULL)
		return tfs_nomem(err);
	for (size_t k = 0; k < n; k++) {
		int rc = load_attr(&so->attrs[k], json_object_array_get_idx(attrs, k), so->file, k, err);
		so->nattrs = k + 1;
		if (rc != TFS_OK)
			return rc;
	}
	return TFS_OK;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const tfs_seal_file *)a)->name, ((const tfs_seal_file *)b)->name);
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const tfs_seal_object *)a)->file, ((const tfs_seal_object *)b)->file);
}

static int load_files(tfs_seal_manifest *m, json_object *arr, tfs_error *err)
{
	size_t n = json_object_array_length(arr);
	m->files = calloc(n + 1, sizeof(*m->files));
	if (m->files == NULL)
		return tfs_nomem(err);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		tfs_seal_file *f = &m->files[i];
		f->name = string_member(e, "name", NULL);
		if (f->name == NULL || f->name[0] == '\0' || strchr(f->name, '/') != NULL ||
		    !ent_type(string_member(e, "type", NULL), &f->type) ||
		    !mode_member(e, "mode", &f->mode) || !u64_member(e, "size", &f->size))
			return MALFORMED("file record %zu: name, type, mode or size missing or invalid", i);
		f->has_sha256 = sha_member(e, "sha256", f->sha256);
		f->index = i;
		if (f->type == TFS_ENT_FILE && !f->has_sha256)
			return MALFORMED("%s: a regular file without its sha256", f->name);
	}
	m->nfiles = n;
	qsort(m->files, n, sizeof(*m->files), cmp_file);
	for (size_t i = 1; i < n; i++)
		if (strcmp(m->files[i - 1].name, m->files[i].name) == 0)
			return MALFORMED("%s: recorded twice", m->files[i].name);
	return TFS_OK;
}

static tfs_seal_file *find_file(tfs_seal_manifest *m, const char *name)
{
	tfs_seal_file key = {.name = name};
	return bsearch(&key, m->files, m->nfiles, sizeof(key), cmp_file);
}

/* Links each parsed object record to its file record. */
static int link_object(tfs_seal_manifest *m, const tfs_seal_object *so, tfs_error *err)
{
	tfs_seal_file *f = find_file(m, so->file);
	if (f == NULL || f->type != TFS_ENT_FILE || f->obj != NULL)
		return MALFORMED("%s: an object record without its file record, or twice", so->file);
	if (so->parsed)
		f->obj = so;
	return TFS_OK;
}

static int load_records(tfs_seal_manifest *m, tfs_error *err)
{
	json_object *root = m->root, *tok = member(root, "token", json_type_object);
	json_object *files = member(root, "files", json_type_array);
	json_object *objs = member(root, "objects", json_type_array);
	m->created = string_member(root, "created", NULL);
	m->label = string_member(tok, "label", NULL);
	m->serial = string_member(tok, "serial", NULL);
	if (tok == NULL || files == NULL || objs == NULL || m->created == NULL || m->label == NULL ||
	    m->serial == NULL || !mode_member(tok, "mode", &m->dir_mode))
		return MALFORMED("token, files, objects or created missing or invalid");
	int rc = load_files(m, files, err);
	if (rc != TFS_OK)
		return rc;
	tfs_seal_file *g = find_file(m, "generation");
	if (g != NULL)
		m->has_generation = u64_member(json_object_array_get_idx(files, g->index), "counter",
		                               &m->generation);
	json_object *t = member(root, "token_object", json_type_object);
	if (t != NULL) {
		if ((rc = load_object(&m->token, t, true, err)) != TFS_OK ||
		    (rc = link_object(m, &m->token, err)) != TFS_OK)
			return rc;
	}
	size_t n = json_object_array_length(objs);
	m->objs = calloc(n + 1, sizeof(*m->objs));
	if (m->objs == NULL)
		return tfs_nomem(err);
	for (size_t i = 0; i < n; i++) {
		rc = load_object(&m->objs[i], json_object_array_get_idx(objs, i), false, err);
		m->nobjs = i + 1;
		if (rc != TFS_OK)
			return rc;
	}
	qsort(m->objs, n, sizeof(*m->objs), cmp_obj);
	for (size_t i = 0; i < n; i++)
		if ((rc = link_object(m, &m->objs[i], err)) != TFS_OK)
			return rc;
	return TFS_OK;
}

/* The MAC, checked before anything else of the manifest is believed. */
static int authenticate(json_object *root, tfs_seal_load_status *status,
                        const tfs_token_key *key, tfs_error *err)
{
	size_t mac_len = 0, salt_len = 0;
	const char *mac_hex = string_member(root, "mac", &mac_len);
	const char *salt_hex = string_member(root, "salt", &salt_len);
	const char *format = string_member(root, "format", NULL);
	json_object *version = member(root, "version", json_type_int);
	uint8_t mac[TFS_SEAL_MAC_LEN], want[TFS_SEAL_MAC_LEN], salt[TFS_SEAL_SALT_LEN];
	*status = TFS_SEAL_MALFORMED;
	if (format == NULL || strcmp(format, TFS_SEAL_FORMAT) != 0)
		return MALFORMED("not a tokenfs seal (no \"format\": \"%s\")", TFS_SEAL_FORMAT);
	if (version == NULL || json_object_get_int64(version) != TFS_SEAL_VERSION)
		return MALFORMED("seal version %s; this tokenfs reads version %d",
		                 version ? json_object_get_string(version) : "missing", TFS_SEAL_VERSION);
	if (mac_hex == NULL || !tfs_seal_unhex_exact(mac, sizeof(mac), mac_hex, mac_len))
		return MALFORMED("no \"mac\" of %d hex digits", 2 * TFS_SEAL_MAC_LEN);
	if (salt_hex == NULL || !tfs_seal_unhex_exact(salt, sizeof(salt), salt_hex, salt_len))
		return MALFORMED("no \"salt\" of %d hex digits", 2 * TFS_SEAL_SALT_LEN);
	char *text;
	size_t len;
	int rc = tfs_seal_canonical(&text, &len, root, err);
	if (rc == TFS_E_FORMAT)
		return rc; /* status stays MALFORMED */
	if (rc != TFS_OK)
		return rc;
	rc = tfs_seal_mac(want, key, salt, text, len, err);
	free(text);
	if (rc != TFS_OK)
		return rc;
	if (CRYPTO_memcmp(mac, want, sizeof(mac)) != 0) {
		*status = TFS_SEAL_BAD_MAC;
		/* The MAC computed over attacker-chosen content is not shown: it
		 * would hand out MACs under this token's key. */
		return tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET,
		                     "the seal's MAC does not match its contents under this token's "
		                     "key (stored %.16s...): the seal was edited, damaged, or made "
		                     "for another token", mac_hex);
	}
	*status = TFS_SEAL_LOADED;
	return TFS_OK;
}

int tfs_seal_manifest_load(tfs_seal_manifest *m, tfs_seal_load_status *status,
                           const tfs_token_key *key, const uint8_t *text, size_t len,
                           tfs_error *err)
{
	memset(m, 0, sizeof(*m));
	*status = TFS_SEAL_MALFORMED;
	json_tokener *tk = json_tokener_new_ex(16);
	if (tk == NULL)
		return tfs_nomem(err);
	if (len > (size_t)INT32_MAX) {
		json_tokener_free(tk);
		MALFORMED("%zu bytes: too large", len);
		return TFS_OK;
	}
	m->root = json_tokener_parse_ex(tk, (const char *)text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tk);
	size_t used = json_tokener_get_parse_end(tk);
	json_tokener_free(tk);
	if (m->root == NULL || jerr != json_tokener_success) {
		const char *why = jerr == json_tokener_continue ? "the text ends early"
		                                                : json_tokener_error_desc(jerr);
		tfs_error_set(err, TFS_E_FORMAT, used, "not valid JSON: %s", why);
		return TFS_OK;
	}
	/* Only whitespace may follow the manifest. */
	for (size_t i = used; i < len; i++)
		if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t') {
			tfs_error_set(err, TFS_E_FORMAT, i, "data after the end of the manifest");
			return TFS_OK;
		}
	if (!json_object_is_type(m->root, json_type_object)) {
		MALFORMED("not a JSON object");
		return TFS_OK;
	}
	int rc = authenticate(m->root, status, key, err);
	if (*status != TFS_SEAL_LOADED)
		return rc == TFS_E_FORMAT ? TFS_OK : rc;
	rc = load_records(m, err);
	if (rc == TFS_E_FORMAT) {
		*status = TFS_SEAL_MALFORMED;
		return TFS_OK;
	}
	return rc;
}

int tfs_seal_manifest_adopt(tfs_seal_manifest *m, json_object *root, tfs_error *err)
{
	memset(m, 0, sizeof(*m));
	m->root = root;
	return load_records(m, err);
}

void tfs_seal_manifest_free(tfs_seal_manifest *m)
{
	tfs_seal_object *all[2] = {&m->token, NULL};
	for (size_t i = 0; i <= m->nobjs; i++) {
		tfs_seal_object *so = i == 0 ? all[0] : &m->objs[i - 1];
		for (size_t k = 0; k < so->nattrs; k++)
			free(so->attrs[k].record);
		free(so->attrs);
	}
	free(m->objs);
	free(m->files);
	json_object_put(m->root);
	memset(m, 0, sizeof(*m));
}
