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
#include "store/store_internal.h"

static int need_key(const tfs_vtoken *vt, tfs_error *err)
{
	if (vt->key != NULL)
		return TFS_OK;
	return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
	                     "sealing and checking a seal need the token key (a PIN)");
}

int tfs_seal_text(char **out, size_t *out_len, size_t *nfiles, size_t *nobjs, tfs_vtoken *vt,
                  const char *path, tfs_error *err)
{
	*out = NULL;
	*out_len = 0;
	int rc = need_key(vt, err);
	if (rc != TFS_OK)
		return rc;
	return tfs_seal_stream_mem(out, out_len, vt, path, nfiles, nobjs, err);
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

static int seal_finding(tfs_vtoken *vt, const char *path, const char *code, const tfs_error *e)
{
	tfs_location loc = {.path = path, .offset = e->offset};
	return tfs_findings_addl(vt->findings, code, TFS_SEV_ERROR, &loc, "%s", e->what);
}

/* A seal inside a token of an archive is a member of it, read from the
 * image like the token's other files; any other seal is a file on disk. */
static int read_seal(const tfs_vtoken *vt, const char *path, uint8_t **text, size_t *len,
                     tfs_error *e)
{
	const tfs_store *s = vt->store;
	const char *dir = tfs_token_path(vt->tok);
	size_t n = strlen(dir);
	if (!s->tree || strncmp(path, dir, n) != 0 || path[n] != '/')
		return tfs_seal_read_file(path, TFS_SEAL_MAX_SIZE, text, len, e);
	int rc = s->fs->ops->read(s->fs, path, NULL, text, len, e); /* an image: no locks */
	if (rc == TFS_OK && *len > TFS_SEAL_MAX_SIZE) {
		free(*text);
		*text = NULL;
		tfs_error_set(e, TFS_E_LIMIT, TFS_NO_OFFSET, "%zu bytes exceed the %u-byte cap of a seal",
		              *len, TFS_SEAL_MAX_SIZE);
		rc = tfs_error_where(e, "%s", path);
	}
	return rc;
}

int tfs_seal_check(tfs_vtoken *vt, const char *path, tfs_error *err)
{
	int rc = need_key(vt, err);
	if (rc != TFS_OK)
		return rc;
	uint8_t *text;
	size_t len;
	tfs_error e;
	rc = read_seal(vt, path, &text, &len, &e);
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
	tfs_seal_cmp c = {.old_key = vt->key};
	rc = tfs_seal_compare(&c, vt, &m, path, err);
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
	tfs_seal_manifest_free(&m);
	return rc;
}
