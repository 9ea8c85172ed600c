/*
 * Opening a store: decide what PATH is, scan token directories the way
 * SoftHSM does (every subdirectory of a tokendir is a token candidate;
 * symlinks are ignored), read each token.object and generation file, and
 * record everything unexpected as a finding instead of failing.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"
#include "core/cursor.h"
#include "format/object_internal.h"

#define DEFAULT_LOCK_MS 5000u

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* SoftHSM's rule: a regular file named *.object, longer than 7 characters,
 * other than token.object. */
static bool is_object_name(const char *name)
{
	return strlen(name) > 7 && has_suffix(name, ".object") && strcmp(name, "token.object") != 0;
}

/* What scan_entries reads of a token directory's entries beyond their type:
 * the link counts of token.object, generation and the object files, and the
 * size of token.lock. An object's lock file is only looked at for its type,
 * and leaving out its stat saves a system call for half a token's entries. */
static bool needs_stat(const char *name)
{
	return !has_suffix(name, ".lock") || strcmp(name, "token.lock") == 0;
}

/* Directories walked only for their subdirectories and token.object. */
static bool type_only(const char *name)
{
	(void)name;
	return false;
}

static char *join(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Whether a directory listing has anything SoftHSM puts in a token directory,
 * so that an ordinary directory (a home directory) is not taken for a
 * tokendir whose every token is damaged. */
static bool looks_like_token(const tfs_dirent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = ents[i].name;
		if (strcmp(name, "token.object") == 0 || strcmp(name, "token.lock") == 0 ||
		    strcmp(name, "generation") == 0 || is_object_name(name))
			return true;
	}
	return false;
}

static bool has_symlink(const tfs_dirent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ents[i].st.type == TFS_ENT_SYMLINK)
			return true;
	return false;
}

static const char *ent_type_name(tfs_ent_type t)
{
	switch (t) {
	case TFS_ENT_FILE: return "file";
	case TFS_ENT_DIR: return "directory";
	case TFS_ENT_SYMLINK: return "symbolic link";
	case TFS_ENT_OTHER: return "special file";
	}
	return "entry";
}

/* Findings that only fail when memory runs out are collected with this. */
#define ADD(store, ...)                                                      \
	do {                                                                 \
		if (tfs_findings_add(&(store)->findings, __VA_ARGS__) != TFS_OK) \
			return tfs_nomem(err);                                   \
	} while (0)

static int read_token_object(tfs_store *store, tfs_token *tok, const char *path, tfs_error *err)
{
	uint8_t *data;
	size_t size;
	tfs_error e;
	tfs_object *meta = NULL;
	int rc = tfs_store_read_settled(store, path, TFS_FILE_TOKEN, &data, &size, &meta, &e);
	if (rc == TFS_OK && meta != NULL)
		tfs_file_bytes_free(data, size);
	else if (rc == TFS_OK)
		rc = tfs_object_parse_owned(&meta, data, size, &e); /* for its error */
	if (rc == TFS_E_NOTFOUND) {
		/* Listed, then gone: the token is being deleted. */
		ADD(store, "token.gone", TFS_SEV_INFO, path, TFS_NO_OFFSET,
		    "token.object disappeared while the store was read: the token was deleted");
		return TFS_OK;
	}
	if (rc == TFS_E_NOMEM || rc == TFS_E_LOCKED || (store->strict_io && rc == TFS_E_IO)) {
		*err = e; /* not a property of the store: the open fails */
		if (err->where[0] == '\0')
			tfs_error_where(err, "%s", path);
		return rc;
	}
	if (rc != TFS_OK) {
		if (e.where[0] == '\0')
			tfs_error_where(&e, "%s", path);
		if (tfs_findings_add_error(&store->findings, "token.metadata-unreadable",
		                           TFS_SEV_ERROR, &e) != TFS_OK)
			return tfs_nomem(err);
		return TFS_OK;
	}
	tfs_token_take_metadata(tok, meta);
	return TFS_OK;
}

static int read_generation(tfs_store *store, tfs_token *tok, const char *path, tfs_error *err)
{
	uint8_t *data;
	size_t size;
	tfs_error e;
	int rc = tfs_store_read_settled(store, path, TFS_FILE_GENERATION, &data, &size, NULL, &e);
	if (rc == TFS_E_NOMEM || rc == TFS_E_LOCKED || (store->strict_io && rc == TFS_E_IO)) {
		*err = e;
		if (err->where[0] == '\0')
			tfs_error_where(err, "%s", path);
		return rc;
	}
	if (rc == TFS_E_NOTFOUND)
		return TFS_OK; /* gone since the listing: as if never there */
	if (rc != TFS_OK) {
		if (tfs_findings_add_error(&store->findings, "token.generation-unreadable",
		                           TFS_SEV_ERROR, &e) != TFS_OK)
			return tfs_nomem(err);
		return TFS_OK;
	}
	if (size == 8) {
		tok->has_generation = true;
		tok->generation = tfs_be64(data);
	} else {
		free(data);
		ADD(store, "token.generation-size", TFS_SEV_ERROR, path, size < 8 ? size : 8,
		    "generation file has %zu bytes; it holds one 8-byte counter", size);
		return TFS_OK;
	}
	free(data);
	return TFS_OK;
}

static int add_object(tfs_token *tok, const char *dir, const char *name, size_t *cap,
                      char *path, tfs_error *err)
{
	if (tok->nobjs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		tfs_obj_entry *p = realloc(tok->objs, ncap * sizeof(*p));
		if (p == NULL)
			return tfs_nomem(err);
		tok->objs = p;
		*cap = ncap;
	}
	tfs_obj_entry *o = &tok->objs[tok->nobjs];
	memset(o, 0, sizeof(*o));
	o->file = strdup(name);
	o->uuid = strndup(name, strlen(name) - strlen(".object"));
	o->path = path != NULL ? path : join(dir, name);
	tok->nobjs++; /* counted first so a failure below is freed with the token */
	if (o->file == NULL || o->uuid == NULL || o->path == NULL)
		return tfs_nomem(err);
	return TFS_OK;
}

static int cmp_name(const void *key, const void *ent)
{
	return strcmp((const char *)key, ((const tfs_dirent *)ent)->name);
}

/* Listings are sorted by name: a binary search keeps a token of tens of
 * thousands of objects (and as many lock files) linear overall. */
bool tfs_dirents_have(const tfs_dirent *ents, size_t n, const char *name, tfs_ent_type t)
{
	const tfs_dirent *e = n > 0 ? bsearch(name, ents, n, sizeof(*ents), cmp_name) : NULL;
	return e != NULL && e->st.type == t;
}

/* Whether `name` is "<stem>.lock" for an object file in the listing. */
static bool lock_has_object(const tfs_dirent *ents, size_t n, const char *name)
{
	char *obj = NULL;
	int stem = (int)(strlen(name) - strlen(".lock"));
	if (asprintf(&obj, "%.*s.object", stem, name) < 0)
		return true; /* out of memory: do not invent an orphan */
	bool found = is_object_name(obj) && tfs_dirents_have(ents, n, obj, TFS_ENT_FILE);
	free(obj);
	return found;
}

/* Listing races with a live SoftHSM (store/settle.c): a lock without its
 * object, or an object without its lock, is checked again once the
 * directory had a moment to settle; *settled: that moment was taken. */
static bool orphan_stays(tfs_store *store, const tfs_token *tok, const char *lock_path,
                         bool *settled)
{
	/* Gone already (SoftHSM deletes the object, then its lock): no
	 * orphan, and no reason to spend the settle pause. An object's lock
	 * file is listed without a stat of its own, so this is the first. */
	if (!tfs_store_file_exists(store, lock_path))
		return false;
	if (!*settled && !tfs_store_settle_listing(store, tok->path))
		return true;
	*settled = true;
	size_t n = strlen(lock_path) - strlen(".lock");
	char *obj = NULL;
	if (asprintf(&obj, "%.*s.object", (int)n, lock_path) < 0)
		return true;
	bool stays = tfs_store_file_exists(store, lock_path) && !tfs_store_file_exists(store, obj);
	free(obj);
	return stays;
}

static bool lockless_stays(tfs_store *store, const tfs_token *tok, tfs_obj_entry *o,
                           bool *settled)
{
	if (!*settled && !tfs_store_settle_listing(store, tok->path))
		return true;
	*settled = true;
	char *lock = NULL;
	if (asprintf(&lock, "%s/%s.lock", tok->path, o->uuid) < 0)
		return true;
	o->has_lock = tfs_store_file_exists(store, lock);
	free(lock);
	/* Gone with its lock: reading it reports it gone. */
	return !o->has_lock && tfs_store_file_exists(store, o->path);
}

/* Classifies every entry of one token directory. */
static int scan_entries(tfs_store *store, tfs_token *tok, const tfs_dirent *ents, size_t n,
                        tfs_error *err)
{
	size_t cap = 0;
	bool have_meta = false, overlay, settled = false;
	int rc = tfs_pending_scan(store, tok->path, ents, n, &overlay, err);
	if (rc != TFS_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const char *name = ents[i].name;
		tfs_ent_type type = ents[i].st.type;
		char *path = tfs_pending_path(tok->path, name, ents, n, overlay);
		if (path == NULL)
			return tfs_nomem(err);
		if (type == TFS_ENT_FILE && ents[i].st.nlink > 1 &&
		    (strcmp(name, "token.object") == 0 || strcmp(name, "generation") == 0 ||
		     is_object_name(name)) &&
		    tfs_findings_add(&store->findings, "file.hard-link", TFS_SEV_ERROR, path, TFS_NO_OFFSET,
		                     "has %llu hard links; SoftHSM never makes hard links, so this name "
		                     "may be another file's: its contents are not read",
		                     (unsigned long long)ents[i].st.nlink) != TFS_OK) {
			free(path);
			return tfs_nomem(err);
		}
		if (type == TFS_ENT_FILE && strcmp(name, "token.object") == 0) {
			have_meta = true;
			rc = read_token_object(store, tok, path, err);
		} else if (type == TFS_ENT_FILE && strcmp(name, "generation") == 0) {
			rc = read_generation(store, tok, path, err);
		} else if (type == TFS_ENT_FILE && is_object_name(name)) {
			rc = add_object(tok, tok->path, name, &cap, path, err);
			path = NULL; /* the entry owns it */
		} else if (type == TFS_ENT_FILE && strcmp(name, "token.lock") == 0) {
			if (ents[i].st.size != 0 &&
			    tfs_findings_add(&store->findings, "token.lock-not-empty", TFS_SEV_INFO, path,
			                     TFS_NO_OFFSET, "lock file holds %llu bytes; SoftHSM leaves lock files empty",
			                     (unsigned long long)ents[i].st.size) != TFS_OK)
				rc = tfs_nomem(err);
		} else if (type == TFS_ENT_FILE && has_suffix(name, ".lock")) {
			if (!lock_has_object(ents, n, name) && orphan_stays(store, tok, path, &settled) &&
			    tfs_findings_add(&store->findings, "token.orphan-lock", TFS_SEV_WARNING, path,
			                     TFS_NO_OFFSET, "lock file without its object file; "
			                     "the object was deleted or lost") != TFS_OK)
				rc = tfs_nomem(err);
		} else if (type == TFS_ENT_FILE && (strcmp(name, "tokenfs.seal") == 0 ||
		                                    tfs_pending_is_txn_file(name))) {
			/* tokenfs's own files; SoftHSM ignores them. */
		} else {
			const char *why = type == TFS_ENT_SYMLINK
			                ? "symbolic link in a token directory; SoftHSM ignores it and tokenfs does not follow it"
			                : "unexpected entry in a token directory; SoftHSM ignores it";
			if (tfs_findings_add(&store->findings, "token.unexpected-entry", TFS_SEV_WARNING,
			                     path, TFS_NO_OFFSET, "%s: %s", ent_type_name(type), why) != TFS_OK)
				rc = tfs_nomem(err);
		}
		free(path);
		if (rc != TFS_OK)
			return rc;
	}
	for (size_t i = 0; i < tok->nobjs; i++) {
		char *lock = NULL;
		if (asprintf(&lock, "%s.lock", tok->objs[i].uuid) < 0)
			return tfs_nomem(err);
		tok->objs[i].has_lock = tfs_dirents_have(ents, n, lock, TFS_ENT_FILE);
		free(lock);
		if (!tok->objs[i].has_lock && lockless_stays(store, tok, &tok->objs[i], &settled))
			ADD(store, "token.missing-lock", TFS_SEV_WARNING, tok->objs[i].path, TFS_NO_OFFSET,
			    "object has no companion .lock file; SoftHSM creates one with every object");
	}
	if (!have_meta)
		ADD(store, "token.metadata-missing", TFS_SEV_ERROR, tok->path, TFS_NO_OFFSET,
		    "token directory has no token.object; SoftHSM skips it");
	else if (!tfs_dirents_have(ents, n, "generation", TFS_ENT_FILE) &&
	         !tfs_dirents_have(ents, n, "generation", TFS_ENT_DIR))
		ADD(store, "token.generation-missing", TFS_SEV_INFO, tok->path, TFS_NO_OFFSET,
		    "no generation file; SoftHSM writes one at its next change");
	return TFS_OK;
}

static int new_token(tfs_store *store, const char *path, tfs_token **out, tfs_error *err)
{
	if (store->ntokens == store->tokens_cap) {
		size_t cap = store->tokens_cap ? 2 * store->tokens_cap : 4;
		tfs_token *p = realloc(store->tokens, cap * sizeof(*p));
		if (p == NULL)
			return tfs_nomem(err);
		store->tokens = p;
		store->tokens_cap = cap;
	}
	tfs_token *tok = &store->tokens[store->ntokens];
	memset(tok, 0, sizeof(*tok));
	tok->path = strdup(path);
	if (tok->path == NULL)
		return tfs_nomem(err);
	store->ntokens++;
	/* In an archive a token is "ARCHIVE:member/path": its directory name is
	 * the member's last component, so that tokens pair by name with the
	 * same token on disk (diff, --token). */
	const char *name = tok->path;
	size_t plen = strlen(store->path);
	if (store->tree && strncmp(name, store->path, plen) == 0 && name[plen] == ':')
		name += plen + 1;
	const char *slash = strrchr(name, '/');
	tok->dirname = slash ? slash + 1 : name;
	*out = tok;
	return TFS_OK;
}

static int scan_token(tfs_store *store, const char *path, tfs_error *err)
{
	tfs_dirent *ents;
	size_t n;
	tfs_error e;
	if (store->fs->ops->list(store->fs, path, needs_stat, &ents, &n, &e) != TFS_OK) {
		if (e.code == TFS_E_NOMEM)
			return tfs_nomem(err);
		if (tfs_findings_add_error(&store->findings, "token.unreadable", TFS_SEV_ERROR, &e) != TFS_OK)
			return tfs_nomem(err);
		return TFS_OK;
	}
	if (looks_like_token(ents, n))
		store->tokens_like++;
	tfs_token *tok;
	int rc = new_token(store, path, &tok, err);
	if (rc == TFS_OK)
		rc = scan_entries(store, tok, ents, n, err);
	tfs_dirents_free(ents, n);
	return rc;
}

/* Member paths of a tree are PREFIX:a/b: the root's children take the colon. */
static char *child_path(const tfs_store *store, const char *dir, const char *name)
{
	char *p = NULL;
	if (store->tree && strcmp(dir, store->path) == 0)
		return asprintf(&p, "%s:%s", dir, name) < 0 ? NULL : p;
	return join(dir, name);
}

static int scan_tokendir(tfs_store *store, const char *dir, const tfs_dirent *ents, size_t n,
                         tfs_error *err)
{
	for (size_t i = 0; i < n; i++) {
		char *path = child_path(store, dir, ents[i].name);
		if (path == NULL)
			return tfs_nomem(err);
		int rc = TFS_OK;
		if (ents[i].st.type == TFS_ENT_DIR)
			rc = scan_token(store, path, err);
		else if (tfs_findings_add(&store->findings, "store.unexpected-entry", TFS_SEV_INFO, path,
		                          TFS_NO_OFFSET, "%s in the token directory; SoftHSM only loads "
		                          "subdirectories", ent_type_name(ents[i].st.type)) != TFS_OK)
			rc = tfs_nomem(err);
		free(path);
		if (rc != TFS_OK)
			return rc;
	}
	return TFS_OK;
}

/*
 * A store opened on one .object file: a token of that one object. When the
 * file's directory holds token.object, the file is in its token directory
 * and that token.object is the token's (label, serial, PIN blobs), so a PIN
 * decrypts the file as it would in the whole token; when it is damaged that
 * is a finding, as for a token directory. Without one the token has no
 * metadata: a lone copy of the file.
 */
static int object_file_metadata(tfs_store *store, tfs_token *tok, const char *dir, tfs_error *err)
{
	tfs_dirent *ents;
	size_t n;
	tfs_error e;
	if (store->fs->ops->list(store->fs, dir, NULL, &ents, &n, &e) != TFS_OK) {
		if (e.code == TFS_E_NOMEM)
			return tfs_nomem(err);
		/* The file itself was readable: say why its token is not. */
		if (tfs_findings_add(&store->findings, "token.metadata-unreadable", TFS_SEV_ERROR, dir,
		                     TFS_NO_OFFSET, "the directory of the object file cannot be listed "
		                     "to find its token.object: %s", e.what) != TFS_OK)
			return tfs_nomem(err);
		return TFS_OK;
	}
	int rc = TFS_OK;
	char *meta = join(dir, "token.object");
	const tfs_dirent *ent = NULL;
	for (size_t i = 0; i < n && ent == NULL; i++)
		if (strcmp(ents[i].name, "token.object") == 0)
			ent = &ents[i];
	if (meta == NULL)
		rc = tfs_nomem(err);
	else if (ent != NULL && ent->st.type == TFS_ENT_FILE)
		rc = read_token_object(store, tok, meta, err);
	else if (ent != NULL &&
	         tfs_findings_add(&store->findings, "token.metadata-unreadable", TFS_SEV_ERROR, meta,
	                          TFS_NO_OFFSET, "a %s, not a file: no PIN blob to open",
	                          ent_type_name(ent->st.type)) != TFS_OK)
		rc = tfs_nomem(err);
	free(meta);
	tfs_dirents_free(ents, n);
	return rc;
}

static int open_object_file(tfs_store *store, tfs_error *err)
{
	const char *slash = strrchr(store->path, '/');
	const char *name = slash ? slash + 1 : store->path;
	char *dir = slash ? strndup(store->path, (size_t)(slash - store->path)) : strdup(".");
	if (dir == NULL)
		return tfs_nomem(err);
	tfs_token *tok;
	size_t cap = 0;
	int rc = new_token(store, dir, &tok, err);
	if (rc == TFS_OK)
		rc = add_object(tok, dir, name, &cap, NULL, err);
	if (rc == TFS_OK) {
		char *lock = NULL;
		tfs_stat st;
		tfs_error e;
		if (asprintf(&lock, "%s/%s.lock", dir, tok->objs[0].uuid) < 0)
			rc = tfs_nomem(err);
		else
			tok->objs[0].has_lock = store->fs->ops->stat(store->fs, lock, &st, &e) == TFS_OK &&
			                        st.type == TFS_ENT_FILE;
		free(lock);
	}
	if (rc == TFS_OK)
		rc = object_file_metadata(store, tok, dir, err);
	free(dir);
	return rc;
}

static int open_path(tfs_store *store, tfs_error *err)
{
	tfs_stat st;
	int rc = store->fs->ops->stat(store->fs, store->path, &st, err);
	if (rc != TFS_OK)
		return rc;
	if (st.type == TFS_ENT_FILE) {
		if (!has_suffix(store->path, ".object")) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "not a token store: expected a tokendir, a token directory or a .object file");
			return tfs_error_where(err, "%s", store->path);
		}
		store->kind = TFS_PATH_OBJECT_FILE;
		return open_object_file(store, err);
	}
	if (st.type != TFS_ENT_DIR) {
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		              "%s: expected a tokendir, a token directory or a .object file",
		              ent_type_name(st.type));
		return tfs_error_where(err, "%s", store->path);
	}
	tfs_dirent *ents;
	size_t n;
	rc = store->fs->ops->list(store->fs, store->path, needs_stat, &ents, &n, err);
	if (rc != TFS_OK)
		return rc;
	if (tfs_dirents_have(ents, n, "token.object", TFS_ENT_FILE)) {
		store->kind = TFS_PATH_TOKEN;
		tfs_token *tok;
		rc = new_token(store, store->path, &tok, err);
		if (rc == TFS_OK)
			rc = scan_entries(store, tok, ents, n, err);
	} else {
		store->kind = TFS_PATH_TOKENDIR;
		rc = scan_tokendir(store, store->path, ents, n, err);
		if (rc == TFS_OK && store->tokens_like == 0) {
			tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			              "not a token store: no token.object here, and no subdirectory "
			              "holds token.object, generation or <uuid>.object files%s",
			              has_symlink(ents, n)
			              ? " (symbolic links are not followed)" : "");
			rc = tfs_error_where(err, "%s", store->path);
		}
	}
	tfs_dirents_free(ents, n);
	return rc;
}

/* ---- trees (archives): token directories at any depth ---- */

/* Deeper than any real backup; keeps a crafted archive off the stack. */
#define TREE_MAX_DEPTH 64

typedef struct tree_walk {
	char **dirs; /* directories that hold a token directory */
	size_t n, cap;
} tree_walk;

/* *is_token: dir holds token.object. Otherwise its subdirectories are
 * visited, and dir is recorded when one of them is a token. */
static int visit(tfs_store *store, tree_walk *w, const char *dir, unsigned depth, bool *is_token,
                 tfs_error *err)
{
	*is_token = false;
	tfs_dirent *ents;
	size_t n;
	tfs_error e;
	if (store->fs->ops->list(store->fs, dir, type_only, &ents, &n, &e) != TFS_OK)
		return e.code == TFS_E_NOMEM ? tfs_nomem(err) : TFS_OK;
	int rc = TFS_OK;
	if (tfs_dirents_have(ents, n, "token.object", TFS_ENT_FILE)) {
		*is_token = true;
	} else if (depth >= TREE_MAX_DEPTH) {
		if (tfs_findings_add(&store->findings, "store.unexpected-entry", TFS_SEV_INFO, dir,
		                     TFS_NO_OFFSET, "directories nested deeper than %d levels are not "
		                     "searched for tokens", TREE_MAX_DEPTH) != TFS_OK)
			rc = tfs_nomem(err);
	} else {
		bool holds = false;
		for (size_t i = 0; i < n && rc == TFS_OK; i++) {
			if (ents[i].st.type != TFS_ENT_DIR)
				continue;
			char *sub = child_path(store, dir, ents[i].name);
			bool tok = false;
			rc = sub == NULL ? tfs_nomem(err) : visit(store, w, sub, depth + 1, &tok, err);
			holds |= tok;
			free(sub);
		}
		if (rc == TFS_OK && holds) {
			if (w->n == w->cap) {
				size_t ncap = w->cap ? w->cap * 2 : 4;
				char **p = realloc(w->dirs, ncap * sizeof(*p));
				if (p == NULL)
					rc = tfs_nomem(err);
				else {
					w->dirs = p;
					w->cap = ncap;
				}
			}
			if (rc == TFS_OK && (w->dirs[w->n] = strdup(dir)) == NULL)
				rc = tfs_nomem(err);
			else if (rc == TFS_OK)
				w->n++;
		}
	}
	tfs_dirents_free(ents, n);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The no-token error, with the archive's own damage when that explains it. */
static int no_tokens(const tfs_store *store, tfs_error *err)
{
	const tfs_finding *why = NULL;
	const struct tfs_findings *ff = store->fs->ops->findings ? store->fs->ops->findings(store->fs)
	                                                         : NULL;
	for (size_t i = 0; ff != NULL && i < ff->count && why == NULL; i++)
		if (ff->items[i].severity == TFS_SEV_ERROR)
			why = &ff->items[i];
	tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET,
	              "no token directory (a directory holding token.object) in it%s%s",
	              why ? "; and " : "", why ? why->message : "");
	return tfs_error_where(err, "%s", store->path);
}

/* What the file system noticed, first among the store's findings. When the
 * root is the token ("PREFIX:."), its members are named "PREFIX:./member",
 * so that they group under the token as on a disk. */
static int take_fs_findings(tfs_store *store, bool root_token, tfs_error *err)
{
	const struct tfs_findings *ff = store->fs->ops->findings ? store->fs->ops->findings(store->fs)
	                                                         : NULL;
	size_t n = strlen(store->path);
	for (size_t i = 0; ff != NULL && i < ff->count; i++) {
		const tfs_finding *f = &ff->items[i];
		char *path = NULL;
		if (root_token && strncmp(f->path, store->path, n) == 0 && f->path[n] == ':' &&
		    strncmp(f->path + n, ":./", 3) != 0 && strcmp(f->path + n, ":.") != 0 &&
		    asprintf(&path, "%s:./%s", store->path, f->path + n + 1) < 0)
			return tfs_nomem(err);
		tfs_location loc = {.path = path != NULL ? path : f->path, .offset = f->offset};
		int rc = tfs_findings_addl(&store->findings, f->code, f->severity, &loc, "%s", f->message);
		free(path);
		if (rc != TFS_OK)
			return tfs_nomem(err);
	}
	return TFS_OK;
}

static int open_tree(tfs_store *store, tfs_error *err)
{
	tree_walk w = {0};
	bool root_token;
	int rc = visit(store, &w, store->path, 0, &root_token, err);
	if (rc == TFS_OK)
		rc = take_fs_findings(store, root_token, err);
	if (rc == TFS_OK && root_token) {
		/* The archive is one token directory's contents ("tar -C tok ."). */
		char *path = NULL;
		tfs_dirent *ents = NULL;
		size_t n = 0;
		tfs_token *tok;
		store->kind = TFS_PATH_TOKEN;
		if (asprintf(&path, "%s:.", store->path) < 0)
			rc = tfs_nomem(err);
		if (rc == TFS_OK)
			rc = store->fs->ops->list(store->fs, path, needs_stat, &ents, &n, err);
		if (rc == TFS_OK)
			rc = new_token(store, path, &tok, err);
		if (rc == TFS_OK)
			rc = scan_entries(store, tok, ents, n, err);
		tfs_dirents_free(ents, n);
		free(path);
	} else if (rc == TFS_OK && w.n == 0) {
		rc = no_tokens(store, err);
	} else if (rc == TFS_OK) {
		store->kind = TFS_PATH_TOKENDIR;
		qsort(w.dirs, w.n, sizeof(*w.dirs), cmp_str);
		for (size_t i = 0; i < w.n && rc == TFS_OK; i++) {
			tfs_dirent *ents;
			size_t n;
			rc = store->fs->ops->list(store->fs, w.dirs[i], type_only, &ents, &n, err);
			if (rc == TFS_OK) {
				rc = scan_tokendir(store, w.dirs[i], ents, n, err);
				tfs_dirents_free(ents, n);
			}
		}
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.dirs[i]);
	free(w.dirs);
	return rc;
}

static int open_common(tfs_store **out, tfs_fs *fs, const char *path, bool tree,
                       const tfs_open_options *opts, tfs_error *err);

int tfs_store_open_tree(tfs_store **out, tfs_fs *fs, const char *prefix,
                        const tfs_open_options *opts, tfs_error *err)
{
	return open_common(out, fs, prefix, true, opts, err);
}

int tfs_store_open_fs(tfs_store **out, tfs_fs *fs, const char *path,
                      const tfs_open_options *opts, tfs_error *err)
{
	return open_common(out, fs, path, false, opts, err);
}

static int open_common(tfs_store **out, tfs_fs *fs, const char *path, bool tree,
                       const tfs_open_options *opts, tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	if (fs == NULL || path == NULL || path[0] == '\0')
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "no store path given");
	tfs_store *store = calloc(1, sizeof(*store));
	if (store == NULL)
		return tfs_nomem(err);
	store->fs = fs;
	store->tree = tree;
	store->strict_io = opts != NULL && opts->strict_io;
	store->lock_ms = (opts != NULL && opts->lock_timeout_ms > 0) ? opts->lock_timeout_ms
	                                                             : DEFAULT_LOCK_MS;
	store->wait = calloc(1, sizeof(*store->wait));
	if (store->wait == NULL) {
		free(store);
		return tfs_nomem(err);
	}
	store->wait->left_ms = store->lock_ms;
	/* Trailing slashes would make every derived path ugly; keep "/" itself. */
	/* Trailing slashes would make every derived path ugly; keep "/" itself.
	 * A tree's prefix is a name, not a directory: kept as given. */
	size_t len = strlen(path);
	while (!tree && len > 1 && path[len - 1] == '/')
		len--;
	store->path = strndup(path, len);
	if (store->path == NULL) {
		free(store->wait);
		free(store);
		return tfs_nomem(err);
	}
	int rc = tree ? open_tree(store, err) : open_path(store, err);
	if (rc == TFS_OK)
		rc = tfs_store_assign_findings(store, err);
	if (rc != TFS_OK) {
		tfs_store_free(store);
		return rc;
	}
	for (size_t i = 0; i < store->ntokens; i++)
		store->tokens[i].store = store;
	*out = store;
	return TFS_OK;
}

int tfs_store_open(tfs_store **out, const char *path, const tfs_open_options *opts,
                   tfs_error *err)
{
	return tfs_store_open_fs(out, tfs_fs_posix(), path, opts, err);
}

void tfs_store_free(tfs_store *store)
{
	if (store == NULL)
		return;
	for (size_t t = 0; t < store->ntokens; t++) {
		tfs_token *tok = &store->tokens[t];
		for (size_t i = 0; i < tok->nobjs; i++) {
			free(tok->objs[i].file);
			free(tok->objs[i].uuid);
			free(tok->objs[i].path);
		}
		free(tok->objs);
		free(tok->findings);
		tfs_object_free(tok->meta);
		free(tok->path);
	}
	free(store->tokens);
	free(store->finding_owner);
	tfs_findings_free(&store->findings);
	free(store->path);
	free(store->wait);
	tfs_fs_free(store->owned_fs);
	free(store);
}

bool tfs_store_is_archive(const tfs_store *s)
{
	return s->tree;
}

tfs_path_kind tfs_store_kind(const tfs_store *s) { return s->kind; }
const char *tfs_store_path(const tfs_store *s) { return s->path; }
size_t tfs_store_token_count(const tfs_store *s) { return s->ntokens; }
size_t tfs_store_finding_count(const tfs_store *s) { return s->findings.count; }
unsigned tfs_store_wait_left_ms(const tfs_store *s) { return s->wait->left_ms; }

const tfs_token *tfs_store_token(const tfs_store *s, size_t i)
{
	return i < s->ntokens ? &s->tokens[i] : NULL;
}

const tfs_finding *tfs_store_finding(const tfs_store *s, size_t i)
{
	return i < s->findings.count ? &s->findings.items[i] : NULL;
}
