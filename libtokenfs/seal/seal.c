/*
 * The two entry points verify.c calls: tfs_seal_write (--seal) and
 * tfs_seal_check (--check-seal). See docs/seal.md for the manifest and the
 * findings.
 */
#include "seal/seal_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "core/error_internal.h"

static int need_key(const tfs_vtoken *vt, tfs_error *err)
{
	if (vt->key != NULL)
		return TFS_OK;
	return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
	                     "sealing and checking a seal need the token key (a PIN)");
}

int tfs_seal_write(tfs_vtoken *vt, const char *path, tfs_error *err)
{
	int rc = need_key(vt, err);
	if (rc != TFS_OK)
		return rc;
	size_t nfiles, nobjs;
	if ((rc = tfs_seal_stream(vt, path, &nfiles, &nobjs, err)) != TFS_OK)
		return rc;
	tfs_location loc = {.path = path, .offset = TFS_NO_OFFSET};
	if (tfs_findings_addl(vt->findings, "seal.written", TFS_SEV_INFO, &loc,
	                      "sealed %zu files and %zu objects of token '%s'", nfiles, nobjs,
	                      tfs_token_label(vt->tok)) != TFS_OK)
		return tfs_nomem(err);
	return TFS_OK;
}

/* ---- checking ---- */

typedef struct check {
	tfs_vtoken *vt;
	const tfs_seal_manifest *m;
	tfs_seal_dir dir;
	size_t errors, infos;
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
		c->errors++;
	else if (rc == TFS_OK)
		c->infos++;
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
		rc = tfs_seal_diff_object(c->vt, c->dir.path, sf->name, sf->obj, data, size, &added);
		if (rc != TFS_OK)
			return rc;
		for (size_t i = before; i < c->vt->findings->count; i++)
			if (c->vt->findings->items[i].severity == TFS_SEV_ERROR)
				c->errors++;
			else
				c->infos++;
		if (added > 0)
			return TFS_OK;
	}
	char a[17], b[17];
	return file_finding(c, sf->name, "seal.file-changed", TFS_SEV_ERROR,
	                    "content changed: sealed %llu bytes, sha256 %s...; now %zu bytes, "
	                    "sha256 %s...", (unsigned long long)sf->size, sha_short(a, sf->sha256),
	                    size, sha_short(b, md));
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
	                      "%s not in the seal (%llu bytes, mode %04o)%s%s",
	                      tfs_seal_ent_type_name(ent->st.type), (unsigned long long)ent->st.size,
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
	                    "%s in the seal (%llu bytes) is gone%s", tfs_seal_ent_type_name(sf->type),
	                    (unsigned long long)sf->size, why);
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

static int seal_finding(tfs_vtoken *vt, const char *path, const char *code, const tfs_error *e)
{
	tfs_location loc = {.path = path, .offset = e->offset};
	return tfs_findings_addl(vt->findings, code, TFS_SEV_ERROR, &loc, "%s", e->what);
}

int tfs_seal_check(tfs_vtoken *vt, const char *path, tfs_error *err)
{
	int rc = need_key(vt, err);
	if (rc != TFS_OK)
		return rc;
	uint8_t *text;
	size_t len;
	tfs_error e;
	rc = tfs_seal_read_file(path, TFS_SEAL_MAX_SIZE, &text, &len, &e);
	if (rc == TFS_E_LIMIT)
		return seal_finding(vt, path, "seal.malformed", &e) == TFS_OK ? TFS_OK : tfs_nomem(err);
	if (rc != TFS_OK) {
		*err = e;
		return rc;
	}
	tfs_seal_manifest m;
	tfs_seal_load_status st;
	tfs_error_clear(&e);
	rc = tfs_seal_manifest_load(&m, &st, vt->key, text, len, &e);
	free(text);
	if (rc != TFS_OK) {
		tfs_seal_manifest_free(&m);
		*err = e;
		return rc;
	}
	if (st != TFS_SEAL_LOADED) {
		/* Nothing from an unauthenticated manifest is reported. */
		rc = seal_finding(vt, path, st == TFS_SEAL_BAD_MAC ? "seal.bad-mac" : "seal.malformed", &e);
		tfs_seal_manifest_free(&m);
		return rc == TFS_OK ? TFS_OK : tfs_nomem(err);
	}
	check c = {.vt = vt, .m = &m, .err = err};
	rc = tfs_seal_dir_list(&c.dir, vt, path, err);
	if (rc == TFS_OK && (rc = compare_dir(&c)) == TFS_E_NOMEM)
		tfs_nomem(err);
	if (rc == TFS_OK) {
		tfs_location loc = {.path = path, .offset = TFS_NO_OFFSET};
		if (c.errors == 0 && tfs_findings_addl(vt->findings, "seal.checked", TFS_SEV_INFO, &loc,
		                                       "the token matches its seal of %s (%zu files, %zu "
		                                       "objects)%s", m.created, m.nfiles, m.nobjs,
		                                       c.infos ? "; changes SoftHSM makes in normal "
		                                       "use are reported as information" : "") != TFS_OK)
			rc = tfs_nomem(err);
		else if (c.errors > 0 &&
		         tfs_findings_addl(vt->findings, "seal.checked", TFS_SEV_INFO, &loc,
		                           "the token differs from its seal of %s: %zu error "
		                           "finding(s)", m.created, c.errors) != TFS_OK)
			rc = tfs_nomem(err);
	}
	tfs_seal_dir_free(&c.dir);
	tfs_seal_manifest_free(&m);
	return rc;
}
