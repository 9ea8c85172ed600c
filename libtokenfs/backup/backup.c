/*
 * tfs_backup: every selected token of a store, each read until it holds
 * still (snapshot.c), sealed from exactly the bytes that go into the
 * archive, and written as <token dir>/<file> members (archive.c), so that
 * `tar x -C <tokendir>` restores it and `verify-integrity --check-seal`
 * finds each seal where it looks by default.
 */
#include "backup/backup_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error_internal.h"
#include "store/store_internal.h"
#include "tokenfs/keys.h"
#include "verify/verify_internal.h"

#define SEAL_NAME "tokenfs.seal"

void tfs_backup_result_free(tfs_backup_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->ntokens; i++) {
		free(r->tokens[i].dir);
		free(r->tokens[i].label);
		free(r->tokens[i].serial);
		tfs_backup_damage_free(r->tokens[i].damaged, r->tokens[i].ndamaged);
		free(r->tokens[i].seal_error);
	}
	free(r->tokens);
	memset(r, 0, sizeof(*r));
}

/* Refuse before reading anything: a wrong name or an existing file. */
static int check_out(const tfs_backup_options *o, tfs_archive_format *f, tfs_error *err)
{
	if (o->out == NULL || !tfs_archive_format_of(o->out, f))
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "'%s': the archive's name must end in .tar, .tar.gz, .tgz, .tar.xz, "
		                     ".tar.zst or .zip", o->out != NULL ? o->out : "");
	if (o->dry_run)
		return TFS_OK;
	struct stat st;
	if (lstat(o->out, &st) == 0 && (!o->force || !S_ISREG(st.st_mode))) {
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "%s",
		              S_ISREG(st.st_mode) ? "exists; --force replaces it"
		                                  : "exists and is not a regular file");
		return tfs_error_where(err, "%s", o->out);
	}
	return TFS_OK;
}

/* Whether the real path dir is root or below it. */
static bool is_within(const char *dir, const char *root)
{
	size_t n = strlen(root);
	if (strncmp(dir, root, n) != 0)
		return false;
	return dir[n] == '\0' || dir[n] == '/' || (n == 1 && root[0] == '/');
}

/*
 * Refuse an archive inside the store it is read from: it would archive its
 * own temporary file, and leave a file SoftHSM does not expect in a token
 * directory (or the tokendir). Real paths, so a symlink or "../" does not
 * hide it; a directory that does not resolve fails later, on creation.
 */
static int check_out_outside(const tfs_store *store, const char *out, tfs_error *err)
{
	const char *slash = strrchr(out, '/');
	char *dir = slash == NULL ? strdup(".") : slash == out ? strdup("/")
	                                         : strndup(out, (size_t)(slash - out));
	if (dir == NULL)
		return tfs_nomem(err);
	char *real = realpath(dir, NULL);
	free(dir);
	if (real == NULL)
		return TFS_OK;
	int rc = TFS_OK;
	size_t n = tfs_store_token_count(store);
	for (size_t i = 0; i <= n && rc == TFS_OK; i++) {
		const char *p = i < n ? tfs_token_path(tfs_store_token(store, i)) : tfs_store_path(store);
		char *root = p != NULL ? realpath(p, NULL) : NULL;
		if (root != NULL && is_within(real, root)) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "is inside the store being backed up (%s); write the archive "
			              "outside it", root);
			rc = tfs_error_where(err, "%s", out);
		}
		free(root);
	}
	free(real);
	return rc;
}

/* The token key through either PIN: user first, as verify does. Every PIN
 * given is tried: a wrong one is the token's pin.wrong even when the other
 * opens, as in verify-integrity, not a typo a backup script never sees. */
static int unlock(tfs_token_key **key, const tfs_token *tok, const tfs_backup_options *o,
                  tfs_error *err)
{
	int rc = TFS_E_INVALID;
	*key = NULL;
	if (o->user_pin != NULL)
		rc = tfs_token_unlock(key, tok, TFS_PIN_USER, o->user_pin, o->user_pin_len, err);
	if (rc == TFS_E_WRONG_PIN || o->so_pin == NULL)
		return rc;
	tfs_token_key *so = NULL;
	tfs_error e;
	int rs = tfs_token_unlock(&so, tok, TFS_PIN_SO, o->so_pin, o->so_pin_len, &e);
	if (rs == TFS_E_WRONG_PIN || rc != TFS_OK) {
		/* The SO PIN decides: it is wrong, or the user's did not open. */
		tfs_token_key_free(*key);
		*key = so;
		*err = e;
		return rs;
	}
	tfs_token_key_free(so);
	return rc;
}

/*
 * The seal of the snapshot itself, not of the live directory: the snapshot
 * goes into an in-memory file system and through the very code of
 * `verify-integrity --seal`.
 */
static int seal_snapshot(char **text, size_t *len, const char *dir, const tfs_snap *s,
                         const tfs_backup_options *o, tfs_error *err)
{
	tfs_fs *fs = NULL;
	tfs_store *store = NULL;
	tfs_token_key *key = NULL;
	tfs_findings findings = {0};
	tfs_verify_summary summary;
	memset(&summary, 0, sizeof(summary));
	int rc = tfs_memfs_new(&fs, err);
	if (rc == TFS_OK)
		rc = tfs_memfs_add_dir(fs, dir, s->dir.mode, err);
	for (size_t i = 0; rc == TFS_OK && i < s->count; i++) {
		char *p = NULL;
		if (strcmp(s->files[i].name, SEAL_NAME) == 0)
			continue;
		if (asprintf(&p, "%s/%s", dir, s->files[i].name) < 0)
			rc = tfs_nomem(err);
		else
			rc = tfs_memfs_add_file(fs, p, s->files[i].data, s->files[i].size,
			                        s->files[i].st.mode, err);
		free(p);
	}
	if (rc == TFS_OK)
		rc = tfs_store_open_fs(&store, fs, dir, NULL, err);
	const tfs_token *tok = NULL;
	if (rc == TFS_OK && (tfs_store_token_count(store) != 1 ||
	                     tfs_token_metadata(tok = tfs_store_token(store, 0)) == NULL)) {
		tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET,
		              "token.object is missing or does not parse, so no PIN can open the "
		              "token and it cannot be sealed; back up without a PIN");
		rc = tfs_error_where(err, "%s", dir);
	}
	if (rc == TFS_OK)
		rc = unlock(&key, tok, o, err);
	/* The seal reads the token's files itself, one at a time: no need to
	 * load every object first. */
	tfs_vtoken vt = {.store = store, .tok = tok, .key = key, .findings = &findings,
	                 .summary = &summary};
	size_t nfiles, nobjs;
	if (rc == TFS_OK)
		rc = tfs_seal_text(text, len, &nfiles, &nobjs, &vt, NULL, err);
	tfs_vtoken_free(&vt);
	tfs_findings_free(&findings);
	tfs_token_key_free(key);
	tfs_store_free(store);
	tfs_fs_free(fs);
	return rc;
}

typedef struct run {
	const tfs_backup_options *o;
	const char *label;
} run;

static void on_read(void *ctx, size_t done, size_t total)
{
	run *r = ctx;
	r->o->progress(r->o->ctx, r->label, done, total);
}

static int archive_token(tfs_archive_out *a, tfs_backup_token *bt, const tfs_snap *s,
                         const char *seal, size_t seal_len, tfs_error *err)
{
	char *name = NULL;
	if (asprintf(&name, "%s/", bt->dir) < 0)
		return tfs_nomem(err);
	int rc = a != NULL ? tfs_archive_out_dir(a, name, &s->dir, err) : TFS_OK;
	free(name);
	/* The new seal takes the place of one already in the directory, in
	 * name order (members stay sorted). */
	bool seal_done = seal == NULL;
	tfs_stat seal_st = {.type = TFS_ENT_FILE, .mode = 0600, .uid = s->dir.uid,
	                    .gid = s->dir.gid, .mtime_sec = (int64_t)time(NULL)};
	for (size_t i = 0; rc == TFS_OK && i <= s->count; i++) {
		const tfs_snap_file *f = i < s->count ? &s->files[i] : NULL;
		bool seal_here = !seal_done && (f == NULL || strcmp(f->name, SEAL_NAME) >= 0);
		if (seal_here) {
			seal_done = true;
			if (asprintf(&name, "%s/%s", bt->dir, SEAL_NAME) < 0)
				return tfs_nomem(err);
			seal_st.size = seal_len;
			rc = a != NULL ? tfs_archive_out_file(a, name, &seal_st, (const uint8_t *)seal,
			                                      seal_len, err)
			               : TFS_OK;
			free(name);
			bt->files++;
			bt->bytes += seal_len;
			if (f != NULL && strcmp(f->name, SEAL_NAME) == 0)
				continue;
		}
		if (f == NULL || rc != TFS_OK)
			break;
		if (asprintf(&name, "%s/%s", bt->dir, f->name) < 0)
			return tfs_nomem(err);
		rc = a != NULL ? tfs_archive_out_file(a, name, &f->st, f->data, f->size, err) : TFS_OK;
		free(name);
		bt->files++;
		bt->bytes += f->size;
		size_t n = strlen(f->name);
		if (n > 7 && strcmp(f->name + n - 7, ".object") == 0 && strcmp(f->name, "token.object"))
			bt->objects++;
		if (strcmp(f->name, "generation") == 0 && f->size == 8) {
			bt->has_generation = true;
			bt->generation = 0;
			for (int k = 0; k < 8; k++)
				bt->generation = bt->generation << 8 | f->data[k];
		}
	}
	return rc;
}

static int one_token(tfs_archive_out *a, tfs_backup_result *res, const tfs_store *store,
                     const tfs_token *tok, const tfs_backup_options *o, tfs_error *err)
{
	tfs_backup_token *bt = &res->tokens[res->ntokens];
	memset(bt, 0, sizeof(*bt));
	if ((bt->dir = strdup(tfs_token_dirname(tok))) == NULL ||
	    (bt->label = strdup(tfs_token_label(tok))) == NULL ||
	    (bt->serial = strdup(tfs_token_serial(tok))) == NULL) {
		res->ntokens++;
		return tfs_nomem(err);
	}
	res->ntokens++;
	run r = {.o = o, .label = tfs_token_label(tok)};
	tfs_snap s;
	int rc = tfs_snap_take(&s, store->fs, tfs_token_path(tok), &store->wait->left_ms, o->max_reads,
	                       o->progress != NULL ? on_read : NULL, &r, err);
	if (rc != TFS_OK)
		return rc;
	bt->reads = s.reads;
	bt->skipped = s.skipped;
	/* Damaged files go into the archive as they are; the result names
	 * them so the caller can warn (and not call the backup healthy). */
	bt->damaged = s.damaged;
	bt->ndamaged = s.ndamaged;
	s.damaged = NULL;
	s.ndamaged = 0;
	char *seal = NULL;
	size_t seal_len = 0;
	/* This token's PINs: its own when the caller gives each its own. */
	tfs_backup_options po = *o;
	if (o->pins != NULL)
		o->pins(o->ctx, tok, &po.user_pin, &po.user_pin_len, &po.so_pin, &po.so_pin_len);
	if (po.user_pin != NULL || po.so_pin != NULL) {
		rc = seal_snapshot(&seal, &seal_len, bt->dir, &s, &po, err);
		if (rc == TFS_E_WRONG_PIN) {
			/* One token's wrong PIN leaves that token unsealed (the
			 * result says why), not the whole backup undone. */
			if ((bt->seal_error = strdup(err->what)) == NULL)
				rc = tfs_nomem(err);
			else
				rc = TFS_OK;
		}
		bt->sealed = rc == TFS_OK && seal != NULL;
	} else {
		/* A seal already in the store is part of it and goes along, but
		 * without a PIN nothing checked it against these bytes: say so,
		 * lest it pass for this backup's seal. */
		for (size_t i = 0; i < s.count; i++)
			if (strcmp(s.files[i].name, SEAL_NAME) == 0)
				bt->old_seal_unchecked = true;
	}
	if (rc == TFS_OK)
		rc = archive_token(a, bt, &s, seal, seal_len, err);
	free(seal);
	tfs_snap_free(&s);
	res->objects += bt->objects;
	res->files += bt->files;
	res->bytes += bt->bytes;
	return rc;
}

int tfs_backup(tfs_backup_result *res, const tfs_store *store, const tfs_backup_options *o,
               tfs_error *err)
{
	memset(res, 0, sizeof(*res));
	tfs_error_clear(err);
	int rc = check_out(o, &res->format, err);
	if (rc != TFS_OK)
		return rc;
	if (tfs_store_kind(store) == TFS_PATH_OBJECT_FILE)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "a backup is of a tokendir or a token directory, not of one file");
	if ((rc = check_out_outside(store, o->out, err)) != TFS_OK)
		return rc;
	size_t n = tfs_store_token_count(store);
	res->tokens = calloc(n ? n : 1, sizeof(*res->tokens));
	if (res->tokens == NULL)
		return tfs_nomem(err);
	tfs_archive_out *a = NULL;
	if (!o->dry_run && (rc = tfs_archive_out_open(&a, o->out, res->format, o->force, err)) != TFS_OK)
		return rc;
	for (size_t i = 0; i < n && rc == TFS_OK; i++) {
		const tfs_token *tok = tfs_store_token(store, i);
		if (o->select == NULL || o->select(o->ctx, tok))
			rc = one_token(a, res, store, tok, o, err);
	}
	if (rc == TFS_OK && res->ntokens == 0)
		rc = tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET,
		                   "no token to back up (none in the store, or none selected)");
	if (rc == TFS_OK && a != NULL)
		return tfs_archive_out_commit(a, &res->archive_bytes, err);
	tfs_archive_out_abort(a);
	return rc;
}
