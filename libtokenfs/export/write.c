/*
 * tfs_export_write: the planned files into a directory, no file replaced
 * unless asked, then the manifest export.json that lists them. Every check
 * that can refuse (a file already there, no private key to bundle) runs
 * before the first file is created.
 */
#include "export/export_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/error_internal.h"
#include "store/fs_internal.h"
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

int tfs_xcheck_pkcs12_path(const char *path, tfs_error *err)
{
	size_t n = strlen(path);
	const char *slash = strrchr(path, '/');
	const char *base = slash != NULL ? slash + 1 : path;
	if (n == 0 || *base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "--pkcs12 '%s' does not name a file", path);
	if (slash == NULL)
		return TFS_OK;
	char *parent = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	if (parent == NULL)
		return tfs_nomem(err);
	struct stat st;
	bool ok = stat(parent, &st) == 0 && S_ISDIR(st.st_mode);
	free(parent);
	if (!ok)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "--pkcs12 '%s': its directory does not exist", path);
	return TFS_OK;
}

/* Whether real path a is b or inside it. */
static bool within(const char *a, const char *b)
{
	size_t n = strlen(b);
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/' || (n == 1 && b[0] == '/'));
}

/*
 * The output directory must be the caller's own: not a symbolic link (it
 * could be turned elsewhere between the checks and the writes), owned by
 * the caller, writable by nobody else (who could swap files in it), and not
 * inside a token directory the keys come from. *exists says whether it is
 * there already.
 */
static int check_dir(const tfs_export *ex, const char *dir, bool *exists, tfs_error *err)
{
	struct stat st;
	*exists = lstat(dir, &st) == 0;
	if (*exists && S_ISLNK(st.st_mode))
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		              "a symbolic link; give the directory itself");
	else if (*exists && !S_ISDIR(st.st_mode))
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "not a directory");
	else if (*exists && st.st_uid != geteuid())
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		              "owned by uid %u, not by this user: whoever owns it could read or "
		              "replace the key files", (unsigned)st.st_uid);
	else if (*exists && (st.st_mode & 022) != 0)
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		              "mode %04o lets others write in it, who could read or replace the key "
		              "files; use a directory only you can write (chmod go-w)",
		              (unsigned)(st.st_mode & 07777));
	else {
		/* Where it is or will be: the real path of the directory, or of
		 * its parent for one still to be made. */
		char *real = *exists ? realpath(dir, NULL) : NULL;
		if (!*exists) {
			char *copy = strdup(dir);
			if (copy == NULL)
				return tfs_nomem(err);
			char *slash = strrchr(copy, '/');
			const char *parent = slash == NULL ? "." : slash == copy ? "/" : (*slash = '\0', copy);
			real = realpath(parent, NULL);
			free(copy);
		}
		bool inside = false;
		for (size_t i = 0; real != NULL && i < ex->ntoken_dirs && !inside; i++) {
			char *tok = realpath(ex->token_dirs[i], NULL);
			inside = tok != NULL && within(real, tok);
			free(tok);
		}
		free(real);
		if (!inside)
			return TFS_OK;
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		              "inside a token directory being exported: key files there would "
		              "become part of the token");
	}
	return tfs_error_where(err, "%s", dir);
}

/* fsync of the directory that holds path. */
static int sync_parent(const char *path, tfs_error *err)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return tfs_nomem(err);
	for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
		copy[n - 1] = '\0'; /* "out/" is out, in "." */
	char *slash = strrchr(copy, '/');
	const char *parent = slash == NULL ? "." : slash == copy ? "/" : (*slash = '\0', copy);
	int rc = TFS_OK;
	if (tfs_fsync_dir(parent) != 0) {
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "fsync of the directory holding it: %s",
		              strerror(errno));
		rc = tfs_error_where(err, "%s", path);
	}
	free(copy);
	return rc;
}

/* Removes what this run wrote, after a failure: an export is whole or not
 * there (files it replaced under --force stay removed). The removals are
 * made durable as the writes were: a crash right after must not bring key
 * files back without their manifest. Best effort: the run fails anyway. */
static void roll_back(char **written, size_t n, const char *dir, bool made_dir)
{
	for (size_t i = 0; i < n; i++) {
		unlink(written[i]);
		free(written[i]);
	}
	(void)tfs_fsync_dir(dir);
	if (made_dir)
		rmdir(dir);
}

/* Writes one file, new; with force, an existing file (or link) of that name
 * is removed first, so the new one is the caller's own, never a previous
 * owner's. */
static int write_one(const char *path, const uint8_t *data, size_t len, bool force,
                     tfs_error *err)
{
	struct stat st;
	if (force && lstat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "a directory; --force replaces files only");
			return tfs_error_where(err, "%s", path);
		}
		if (unlink(path) != 0) {
			tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "removing it: %s", strerror(errno));
			return tfs_error_where(err, "%s", path);
		}
	}
	return tfs_write_file_new(path, data, len, EXPORT_MODE, err);
}

int tfs_export_write(tfs_export *ex, const char *dir, bool force, tfs_error *err)
{
	bool have_dir;
	int rc = check_dir(ex, dir, &have_dir, err);
	if (rc == TFS_OK)
		rc = plan_pkcs12(ex, err);
	if (rc != TFS_OK)
		return rc;
	/* Refuse before the first byte: every target, the manifest included. */
	struct stat st;
	for (size_t i = 0; !force && i <= ex->n; i++) {
		const tfs_xrec *r = i < ex->n ? ex->recs[i] : NULL;
		if (r != NULL && (r->pub.status != TFS_EXPORT_READY || r->file == NULL))
			continue;
		char *path = r != NULL ? target(dir, r) : join(dir, "export.json");
		if (path == NULL)
			return tfs_nomem(err);
		bool exists = lstat(path, &st) == 0;
		if (exists) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "exists; refusing to overwrite it (nothing was written; --force "
			              "replaces it)");
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
	/* A new directory is durable once its parent is: without this, an
	 * export reported done could vanish whole in a crash. */
	if (!have_dir && (rc = sync_parent(dir, err)) != TFS_OK) {
		rmdir(dir);
		return rc;
	}
	char **written = calloc(ex->n + 2, sizeof(*written));
	size_t nw = 0;
	if (written == NULL)
		rc = tfs_nomem(err);
	for (size_t i = 0; rc == TFS_OK && i < ex->n; i++) {
		tfs_xrec *r = ex->recs[i];
		if (r->pub.status != TFS_EXPORT_READY || r->file == NULL)
			continue;
		char *path = target(dir, r);
		if (path == NULL) {
			rc = tfs_nomem(err);
			break;
		}
		rc = write_one(path, r->data.p, r->data.len, force, err);
		if (rc != TFS_OK) {
			free(path);
			break;
		}
		written[nw++] = path;
		/* A secret key's file hash would be a hash of the key itself. */
		if (strcmp(r->pub.kind, "secret_key") != 0)
			tfs_xenc_sha256(r->file_sha256, r->data.p, r->data.len);
		tfs_xbuf_free(&r->data); /* written: no copy of a key stays in memory */
	}
	char *manifest = NULL, *path = NULL;
	if (rc == TFS_OK)
		rc = (path = join(dir, "export.json")) != NULL ? tfs_export_manifest(ex, dir, &manifest, err)
		                                                : tfs_nomem(err);
	if (rc == TFS_OK)
		rc = write_one(path, (uint8_t *)manifest, strlen(manifest), force, err);
	free(manifest);
	free(path);
	if (rc != TFS_OK) {
		roll_back(written, nw, dir, !have_dir);
		if (err->what[0] != '\0')
			snprintf(err->what + strlen(err->what), sizeof(err->what) - strlen(err->what),
			         "; the %zu file%s written before it %s removed", nw, nw == 1 ? "" : "s",
			         nw == 1 ? "was" : "were");
	} else {
		for (size_t i = 0; i < nw; i++)
			free(written[i]);
	}
	free(written);
	return rc;
}
