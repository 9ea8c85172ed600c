/*
 * A token directory, read now through the store's file system, against a
 * manifest of an earlier state: the one comparison behind
 * `verify-integrity --check-seal` (the manifest is a seal read from disk)
 * and `tokenfs diff` (the manifest is built in memory from the other
 * store). Entries only in the manifest, only on disk and in both; an object
 * file that changed goes to diff.c attribute by attribute.
 */
#include "seal/seal_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "core/error_internal.h"

typedef struct check {
	tfs_vtoken *vt;
	const tfs_seal_manifest *m;
	tfs_seal_dir dir;
	tfs_seal_cmp *opt;        /* counts findings in errors, infos */
	tfs_error *err;           /* for what stops the check */
} check;

__attribute__((format(printf, 5, 6)))
static int file_finding(check *c, const char *name, const char *code, tfs_severity sev,
                        const char *fmt, ...)
{
	char *path = NULL, *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	int rc = TFS_E_NOMEM;
	if (name == NULL)
		path = strdup(c->dir.path);
	else if (asprintf(&path, "%s/%s", c->dir.path, name) < 0)
		path = NULL;
	if (n >= 0 && path != NULL) {
		tfs_location loc = {.path = path, .offset = TFS_NO_OFFSET};
		rc = tfs_findings_addl(c->vt->findings, code, sev, &loc, "%s", msg);
	}
	if (rc == TFS_OK && sev == TFS_SEV_ERROR)
		c->opt->errors++;
	else if (rc == TFS_OK)
		c->opt->infos++;
	free(path);
	if (n >= 0)
		free(msg);
	return rc;
}

static char *sha_short(char buf[17], const uint8_t *sha)
{
	tfs_seal_hex(buf, sha, 8);
	return buf;
}

static int generation_file(check *c, const tfs_seal_file *sf, const uint8_t *data, size_t size)
{
	const tfs_seal_manifest *m = c->m;
	if (!m->has_generation || size != 8)
		return file_finding(c, sf->name, "seal.file-changed", TFS_SEV_ERROR,
		                    "token generation file changed from %llu to %zu bytes",
		                    (unsigned long long)sf->size, size);
	unsigned long long o = (unsigned long long)m->generation, n = tfs_be64(data);
	if (n < o)
		return file_finding(c, sf->name, "seal.generation-changed", TFS_SEV_ERROR,
		                    "token generation went down from %llu to %llu: the token was "
		                    "rolled back to an older state", o, n);
	if (n - o > TFS_SEAL_MAX_BUMP)
		return file_finding(c, sf->name, "seal.generation-changed", TFS_SEV_ERROR,
		                    "token generation jumped from %llu to %llu, more than SoftHSM's "
		                    "increments reach", o, n);
	return file_finding(c, sf->name, "seal.generation-bumped", TFS_SEV_INFO,
	                    "token generation rose from %llu to %llu: SoftHSM counts changes to "
	                    "the set of objects here", o, n);
}

static int content_changed(check *c, const tfs_seal_file *sf, const uint8_t *data, size_t size)
{
	uint8_t md[32];
	int rc = tfs_sha256(md, data, size, NULL);
	if (rc != TFS_OK)
		return rc;
	if (size == sf->size && memcmp(md, sf->sha256, 32) == 0)
		return TFS_OK;
	if (strcmp(sf->name, "generation") == 0)
		return generation_file(c, sf, data, size);
	if (tfs_seal_is_object_file(sf->name)) {
		size_t added = 0;
		size_t before = c->vt->findings->count;
		rc = tfs_seal_diff_object(c->vt, c->dir.path, sf->name, sf->obj, data, size, c->opt,
		                          &added);
		if (rc != TFS_OK)
			return rc;
		for (size_t i = before; i < c->vt->findings->count; i++)
			if (c->vt->findings->items[i].severity == TFS_SEV_ERROR)
				c->opt->errors++;
			else
				c->opt->infos++;
		if (added > 0)
			return TFS_OK;
	}
	char a[17], b[17];
	return file_finding(c, sf->name, "seal.file-changed", TFS_SEV_ERROR,
	                    "content changed: %s %llu bytes, sha256 %s...; now %zu bytes, "
	                    "sha256 %s...", c->opt->diff ? "was" : "sealed",
	                    (unsigned long long)sf->size, sha_short(a, sf->sha256), size,
	                    sha_short(b, md));
}

static int both(check *c, const tfs_seal_file *sf, const tfs_dirent *ent)
{
	const char *was = tfs_seal_ent_type_name(sf->type);
	const char *now = tfs_seal_ent_type_name(ent->st.type);
	if (sf->type != ent->st.type)
		return file_finding(c, sf->name, "seal.file-changed", TFS_SEV_ERROR,
		                    "was a %s when sealed, is now a %s", was, now);
	int rc = TFS_OK;
	if (sf->mode != ent->st.mode)
		rc = file_finding(c, sf->name, "seal.file-changed", TFS_SEV_ERROR,
		                  "mode changed from %04o to %04o", (unsigned)sf->mode,
		                  (unsigned)ent->st.mode);
	if (rc != TFS_OK)
		return rc;
	if (sf->type != TFS_ENT_FILE) {
		if (sf->size == ent->st.size)
			return TFS_OK;
		return file_finding(c, sf->name, "seal.file-changed", TFS_SEV_ERROR,
		                    "%s size changed from %llu to %llu", now,
		                    (unsigned long long)sf->size, (unsigned long long)ent->st.size);
	}
	uint8_t *data;
	size_t size;
	tfs_error e;
	rc = tfs_seal_dir_read(c->vt, &c->dir, sf->name, &data, &size, &e);
	if (rc == TFS_E_NOMEM || rc == TFS_E_LOCKED) {
		*c->err = e;
		return rc;
	}
	if (rc != TFS_OK)
		return file_finding(c, sf->name, "seal.file-changed", TFS_SEV_ERROR,
		                    "cannot be read to compare with the seal: %s", e.what);
	rc = content_changed(c, sf, data, size);
	free(data);
	return rc;
}

static int only_now(check *c, const tfs_dirent *ent)
{
	if (strcmp(ent->name, "generation") == 0 && ent->st.type == TFS_ENT_FILE &&
	    ent->st.size == 8)
		return file_finding(c, ent->name, "seal.generation-bumped", TFS_SEV_INFO,
		                    "generation file created since sealing; SoftHSM writes it at its "
		                    "next change");
	char *what = NULL;
	if (ent->st.type == TFS_ENT_FILE && tfs_seal_is_object_file(ent->name)) {
		uint8_t *data;
		size_t size;
		tfs_error e;
		int rc = tfs_seal_dir_read(c->vt, &c->dir, ent->name, &data, &size, &e);
		if (rc == TFS_E_NOMEM || rc == TFS_E_LOCKED) {
			*c->err = e;
			return rc;
		}
		if (rc == TFS_OK) {
			what = tfs_seal_describe_object(c->vt, data, size);
			free(data);
		}
	}
	int rc = file_finding(c, ent->name, "seal.file-added", TFS_SEV_ERROR,
	                      "%s %s (%llu bytes, mode %04o)%s%s",
	                      tfs_seal_ent_type_name(ent->st.type),
	                      c->opt->diff ? "added" : "not in the seal", (unsigned long long)ent->st.size,
	                      (unsigned)ent->st.mode, what ? ": " : "", what ? what : "");
	free(what);
	return rc;
}

static int only_sealed(check *c, const tfs_seal_file *sf)
{
	const char *why = "";
	if (strcmp(sf->name, "token.object") == 0)
		why = ": the token's metadata and PIN blobs are gone";
	else if (sf->obj != NULL || tfs_seal_is_object_file(sf->name))
		why = ": an object was deleted, or its file renamed";
	return file_finding(c, sf->name, "seal.file-removed", TFS_SEV_ERROR,
	                    "%s%s (%llu bytes) is gone%s", tfs_seal_ent_type_name(sf->type),
	                    c->opt->diff ? "" : " in the seal", (unsigned long long)sf->size, why);
}

/* Both lists are sorted by name: one merge walk. */
static int compare_dir(check *c)
{
	const tfs_seal_manifest *m = c->m;
	if (m->dir_mode != c->dir.mode) {
		int rc = file_finding(c, NULL, "seal.file-changed", TFS_SEV_ERROR,
		                      "token directory mode changed from %04o to %04o",
		                      (unsigned)m->dir_mode, (unsigned)c->dir.mode);
		if (rc != TFS_OK)
			return rc;
	}
	size_t i = 0, j = 0;
	while (i < m->nfiles || j < c->dir.count) {
		int cmp = i == m->nfiles ? 1 : j == c->dir.count
		                                ? -1 : strcmp(m->files[i].name, c->dir.ents[j].name);
		int rc = cmp < 0 ? only_sealed(c, &m->files[i])
		                 : cmp > 0 ? only_now(c, &c->dir.ents[j])
		                           : both(c, &m->files[i], &c->dir.ents[j]);
		if (rc != TFS_OK)
			return rc;
		i += cmp <= 0;
		j += cmp >= 0;
	}
	return TFS_OK;
}

int tfs_seal_compare(tfs_seal_cmp *opt, tfs_vtoken *vt, const tfs_seal_manifest *m,
                     const char *seal_path, tfs_error *err)
{
	check c = {.vt = vt, .m = m, .opt = opt, .err = err};
	int rc = tfs_seal_dir_list(&c.dir, vt, seal_path, err);
	if (rc == TFS_OK && (rc = compare_dir(&c)) == TFS_E_NOMEM)
		tfs_nomem(err);
	tfs_seal_dir_free(&c.dir);
	return rc;
}
