/*
 * tfs_export_write: the planned files into a directory, no file replaced
 * unless asked, then the manifest export.json that lists them. Every check
 * that can refuse (a file already there, no private key to bundle) runs
 * before the first file is created.
 */
#include "export/export_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "core/error_internal.h"
#include "tokenfs/fs.h"

#define EXPORT_MODE 0600u

static char *join(const char *dir, const char *name)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static const char *status_name(tfs_export_status s)
{
	switch (s) {
	case TFS_EXPORT_READY: return "written";
	case TFS_EXPORT_SKIPPED: return "skipped";
	case TFS_EXPORT_UNSUPPORTED: return "unsupported";
	case TFS_EXPORT_FAILED: return "failed";
	}
	return "failed";
}

/* Adds a string member; json-c returns NULL only when out of memory. */
static bool put(json_object *o, const char *key, const char *v)
{
	if (v == NULL)
		return json_object_object_add(o, key, NULL) == 0;
	json_object *s = json_object_new_string(v);
	return s != NULL && json_object_object_add(o, key, s) == 0;
}

static bool put_int(json_object *o, const char *key, size_t v)
{
	json_object *n = json_object_new_int64((int64_t)v);
	if (n != NULL && json_object_object_add(o, key, n) == 0)
		return true;
	json_object_put(n);
	return false;
}

/* Adds a new container to o under key; NULL when out of memory. */
static json_object *put_new(json_object *o, const char *key, json_object *v)
{
	if (v != NULL && json_object_object_add(o, key, v) == 0)
		return v;
	json_object_put(v);
	return NULL;
}

int tfs_export_manifest(const tfs_export *ex, const char *dir, char **out, tfs_error *err)
{
	*out = NULL;
	json_object *root = json_object_new_object();
	bool ok = root != NULL && put_int(root, "format_version", 1) && put(root, "directory", dir);
	json_object *counts = ok ? put_new(root, "counts", json_object_new_object()) : NULL;
	json_object *items = counts != NULL ? put_new(root, "items", json_object_new_array()) : NULL;
	ok = items != NULL;
	size_t n[4] = {0};
	for (size_t i = 0; ok && i < tfs_export_count(ex); i++) {
		const tfs_export_item *it = tfs_export_item_at(ex, i);
		n[it->status]++;
		json_object *o = json_object_new_object(), *b = json_object_new_boolean(it->encrypted);
		if (o == NULL || b == NULL || json_object_array_add(items, o) != 0) {
			json_object_put(o);
			json_object_put(b);
			ok = false;
			break;
		}
		ok = put(o, "status", status_name(it->status)) && put(o, "kind", it->kind) &&
		     put(o, "file", it->file) && put(o, "token_label", it->token_label) &&
		     put(o, "token_serial", it->token_serial) && put(o, "object_uuid", it->object_uuid) &&
		     put(o, "label", it->label) && put(o, "id", it->id) && put(o, "key_type", it->key_type) &&
		     put_new(o, "encrypted", b) != NULL && put(o, "fingerprint", it->fingerprint) &&
		     put(o, "file_sha256", it->file_sha256) && put(o, "reason", it->reason);
	}
	ok = ok && put_int(counts, "written", n[TFS_EXPORT_READY]) &&
	     put_int(counts, "skipped", n[TFS_EXPORT_SKIPPED]) &&
	     put_int(counts, "unsupported", n[TFS_EXPORT_UNSUPPORTED]) &&
	     put_int(counts, "failed", n[TFS_EXPORT_FAILED]);
	const char *s = ok ? json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
	                                                              JSON_C_TO_STRING_NOSLASHESCAPE)
	                   : NULL;
	if (s != NULL && asprintf(out, "%s\n", s) < 0)
		*out = NULL;
	json_object_put(root);
	return *out != NULL ? TFS_OK : tfs_nomem(err);
}

/* The PKCS#12 bundle, planned like any other file. */
static int plan_pkcs12(tfs_export *ex, tfs_error *err)
{
	if (ex->p12 == NULL)
		return TFS_OK;
	tfs_xrec *r = tfs_xrec_add(ex, NULL, NULL, "pkcs12", err);
	if (r == NULL)
		return err->code;
	if (tfs_xp12_count(ex->p12) == 0) {
		r->pub.status = TFS_EXPORT_FAILED;
		snprintf(r->reason, sizeof(r->reason), "no private key was exported to bundle");
		return TFS_OK;
	}
	snprintf(r->key_type, sizeof(r->key_type), "%zu key%s", tfs_xp12_count(ex->p12),
	         tfs_xp12_count(ex->p12) == 1 ? "" : "s");
	r->pub.encrypted = true;
	r->file = strdup(ex->opts.pkcs12_file);
	if (r->file == NULL)
		return tfs_nomem(err);
	int rc = tfs_xp12_finish(ex->p12, &r->data, ex->p12_pass, err);
	tfs_xp12_free(ex->p12); /* finished: a second write must not bundle again */
	ex->p12 = NULL;
	return rc;
}

/* Where a file goes: in dir, except a PKCS#12 path given with a directory. */
static char *target(const char *dir, const tfs_xrec *r)
{
	if (strcmp(r->pub.kind, "pkcs12") == 0 && strchr(r->file, '/') != NULL)
		return strdup(r->file);
	return join(dir, r->file);
}

int tfs_export_write(tfs_export *ex, const char *dir, bool force, tfs_error *err)
{
	int rc = plan_pkcs12(ex, err);
	if (rc != TFS_OK)
		return rc;
	/* Refuse before the first byte: every target, the manifest included. */
	struct stat st;
	bool have_dir = stat(dir, &st) == 0;
	if (have_dir && !S_ISDIR(st.st_mode)) {
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "not a directory");
		return tfs_error_where(err, "%s", dir);
	}
	for (size_t i = 0; have_dir && !force && i <= ex->n; i++) {
		const tfs_xrec *r = i < ex->n ? ex->recs[i] : NULL;
		if (r != NULL && (r->pub.status != TFS_EXPORT_READY || r->file == NULL))
			continue;
		char *path = r != NULL ? target(dir, r) : join(dir, "export.json");
		if (path == NULL)
			return tfs_nomem(err);
		bool exists = lstat(path, &st) == 0;
		if (exists) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "exists; refusing to overwrite it (nothing was written)");
			tfs_error_where(err, "%s", path);
		}
		free(path);
		if (exists)
			return TFS_E_INVALID;
	}
	if (!have_dir && mkdir(dir, 0700) != 0) {
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "creating the directory: %s", strerror(errno));
		return tfs_error_where(err, "%s", dir);
	}
	for (size_t i = 0; i < ex->n; i++) {
		tfs_xrec *r = ex->recs[i];
		if (r->pub.status != TFS_EXPORT_READY || r->file == NULL)
			continue;
		char *path = target(dir, r);
		if (path == NULL)
			return tfs_nomem(err);
		rc = force ? tfs_write_file_atomic(path, r->data.p, r->data.len, EXPORT_MODE, err)
		           : tfs_write_file_new(path, r->data.p, r->data.len, EXPORT_MODE, err);
		free(path);
		if (rc != TFS_OK)
			return rc;
		/* A secret key's file hash would be a hash of the key itself. */
		if (strcmp(r->pub.kind, "secret_key") != 0)
			tfs_xenc_sha256(r->file_sha256, r->data.p, r->data.len);
		tfs_xbuf_free(&r->data); /* written: no copy of a key stays in memory */
	}
	char *manifest = NULL, *path = join(dir, "export.json");
	rc = path != NULL ? tfs_export_manifest(ex, dir, &manifest, err) : tfs_nomem(err);
	if (rc == TFS_OK)
		rc = force ? tfs_write_file_atomic(path, (uint8_t *)manifest, strlen(manifest), EXPORT_MODE, err)
		           : tfs_write_file_new(path, (uint8_t *)manifest, strlen(manifest), EXPORT_MODE, err);
	free(manifest);
	free(path);
	return rc;
}
