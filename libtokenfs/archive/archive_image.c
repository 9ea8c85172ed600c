/*
 * The image of an archive: finished (duplicates, made-up parents, members
 * under files) once the last member is in, then served read-only as a
 * tfs_fs. Sorted paths make a lookup a binary search and a directory's
 * listing one contiguous run, so a 20,000-member store lists and reads as
 * fast as from a directory.
 */
#include "archive/image_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"

static const struct tfs_fs_ops arc_ops;

/* ---- the finished image, as a file system ---- */

/* The member path an fs path names ("" for the root), or NULL when the path
 * is not inside this archive. "NAME", "NAME:", "NAME:." are the root. */
static const char *member_of(const tfs_arc_image *a, const char *path)
{
	if (strncmp(path, a->name, a->name_len) != 0)
		return NULL;
	const char *p = path + a->name_len;
	if (*p == '\0')
		return p;
	if (*p++ != ':')
		return NULL;
	while (p[0] == '.' && (p[1] == '/' || p[1] == '\0'))
		p += p[1] != '\0' ? 2 : 1;
	return p;
}

static int cmp_key(const void *key, const void *ent)
{
	return strcmp((const char *)key, ((const tfs_arc_entry *)ent)->rel);
}

static const tfs_arc_entry *find(const tfs_arc_image *a, const char *rel)
{
	return a->count ? bsearch(rel, a->ents, a->count, sizeof(*a->ents), cmp_key) : NULL;
}

static int not_found(tfs_error *err, const char *path, const char *why)
{
	tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s", why);
	return tfs_error_where(err, "%s", path);
}

static int arc_stat(tfs_fs *fs, const char *path, tfs_stat *st, tfs_error *err)
{
	const tfs_arc_image *a = (const tfs_arc_image *)fs;
	const char *rel = member_of(a, path);
	if (rel != NULL && *rel == '\0') {
		*st = a->root;
		return TFS_OK;
	}
	const tfs_arc_entry *e = rel != NULL ? find(a, rel) : NULL;
	if (e == NULL)
		return not_found(err, path, "no such member in the archive");
	*st = e->st;
	return TFS_OK;
}

/* First entry whose rel is >= key. */
static size_t lower_bound(const tfs_arc_image *a, const char *key)
{
	size_t lo = 0, hi = a->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(a->ents[mid].rel, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int arc_list(tfs_fs *fs, const char *dir, tfs_list_full full, tfs_dirent **out,
                    size_t *count, tfs_error *err)
{
	(void)full; /* every member's stat is at hand */
	const tfs_arc_image *a = (const tfs_arc_image *)fs;
	*out = NULL;
	*count = 0;
	const char *rel = member_of(a, dir);
	if (rel == NULL)
		return not_found(err, dir, "no such member in the archive");
	char *prefix = NULL;
	if (*rel != '\0') {
		const tfs_arc_entry *d = find(a, rel);
		if (d == NULL || d->st.type != TFS_ENT_DIR)
			return not_found(err, dir, d == NULL ? "no such member in the archive"
			                                     : "not a directory");
		if (asprintf(&prefix, "%s/", rel) < 0)
			return tfs_nomem(err);
	}
	size_t plen = prefix ? strlen(prefix) : 0;
	/* Sorted paths keep a directory's subtree contiguous, children in
	 * name order among it. */
	size_t first = prefix ? lower_bound(a, prefix) : 0, n = 0, cap = 0;
	tfs_dirent *ents = NULL;
	int rc = TFS_OK;
	for (size_t i = first; i < a->count; i++) {
		const char *p = a->ents[i].rel;
		if (prefix != NULL && strncmp(p, prefix, plen) != 0)
			break;
		if (strchr(p + plen, '/') != NULL)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			tfs_dirent *np = realloc(ents, ncap * sizeof(*np));
			if (np == NULL) {
				rc = tfs_nomem(err);
				break;
			}
			ents = np;
			cap = ncap;
		}
		ents[n].name = strdup(p + plen);
		if (ents[n].name == NULL) {
			rc = tfs_nomem(err);
			break;
		}
		ents[n++].st = a->ents[i].st;
	}
	free(prefix);
	if (rc != TFS_OK) {
		tfs_dirents_free(ents, n);
		return rc;
	}
	*out = ents;
	*count = n;
	return TFS_OK;
}

static int arc_read(tfs_fs *fs, const char *path, unsigned *lock_ms, uint8_t **data,
                    size_t *size, tfs_error *err)
{
	(void)lock_ms; /* nobody can write into an archive image */
	const tfs_arc_image *a = (const tfs_arc_image *)fs;
	*data = NULL;
	*size = 0;
	const char *rel = member_of(a, path);
	const tfs_arc_entry *e = rel != NULL && *rel != '\0' ? find(a, rel) : NULL;
	const char *why = e == NULL ? (rel != NULL && *rel == '\0' ? "not a regular file"
	                                                           : "no such member in the archive")
	                : e->st.type == TFS_ENT_SYMLINK ? "a symbolic link; not followed"
	                : e->st.type != TFS_ENT_FILE ? "not a regular file" : NULL;
	if (why != NULL)
		return not_found(err, path, why);
	return tfs_fs_copy_out(data, size, e->data, (size_t)e->st.size, err);
}

void tfs_arc_image_free(tfs_arc_image *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->count; i++) {
		free(a->ents[i].rel);
		free(a->ents[i].data);
	}
	free(a->ents);
	tfs_findings_free(&a->findings);
	free(a->name);
	free(a);
}

static void arc_destroy(tfs_fs *fs)
{
	tfs_arc_image_free((tfs_arc_image *)fs);
}

static const struct tfs_findings *arc_findings(tfs_fs *fs)
{
	return &((tfs_arc_image *)fs)->findings;
}

static const struct tfs_fs_ops arc_ops = {
	.stat = arc_stat,
	.list = arc_list,
	.read = arc_read,
	.destroy = arc_destroy,
	.findings = arc_findings,
};

bool tfs_fs_is_archive(const tfs_fs *fs)
{
	return fs != NULL && fs->ops == &arc_ops;
}

/* ---- building: entries, findings and caps ---- */

int tfs_arc_note(tfs_arc_image *a, const char *code, tfs_severity sev, const char *member,
                 const char *fmt, ...)
{
	char *msg = NULL, *path = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	int rc = TFS_E_NOMEM;
	if (n >= 0 && (member == NULL ? (path = strdup(a->name)) != NULL
	                              : asprintf(&path, "%s:%s", a->name, member) >= 0)) {
		rc = tfs_findings_add(&a->findings, code, sev, path, TFS_NO_OFFSET, "%s", msg);
		free(path);
	}
	if (n >= 0)
		free(msg);
	return rc;
}

int tfs_arc_image_push(tfs_arc_image *a, tfs_arc_entry *e, tfs_error *err)
{
	if (a->count == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 256;
		tfs_arc_entry *p = realloc(a->ents, ncap * sizeof(*p));
		if (p == NULL)
			return tfs_nomem(err);
		a->ents = p;
		a->cap = ncap;
	}
	a->ents[a->count++] = *e;
	return TFS_OK;
}

int tfs_arc_cap_error(tfs_arc_image *a, tfs_error *err, const char *member, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET, "%s, a cap against archive bombs: "
	              "reading stopped", msg);
	return member != NULL ? tfs_error_where(err, "%s:%s", a->name, member)
	                      : tfs_error_where(err, "%s", a->name);
}

int tfs_arc_charge(tfs_arc_image *a, const char *member, uint64_t had, size_t n, tfs_error *err)
{
	if (had + n > a->lim.max_member_bytes)
		return tfs_arc_cap_error(a, err, member, "member unpacks to more than %llu bytes, "
		                                 "the member-size cap (--max-member-size)",
		                                 (unsigned long long)a->lim.max_member_bytes);
	if (a->total + n > a->lim.max_total_bytes)
		return tfs_arc_cap_error(a, err, member, "the archive unpacks to more than %llu "
		                                 "bytes, the cap on all members (--max-unpacked)",
		                                 (unsigned long long)a->lim.max_total_bytes);
	a->total += n;
	return TFS_OK;
}

/* ---- finishing the image ---- */

static int cmp_entry(const void *x, const void *y)
{
	const tfs_arc_entry *a = x, *b = y;
	int c = strcmp(a->rel, b->rel);
	if (c != 0)
		return c;
	if (a->implicit != b->implicit)
		return a->implicit ? -1 : 1; /* a named member beats an invented parent */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void drop(tfs_arc_entry *e)
{
	free(e->data);
	e->data = NULL;
	e->dropped = true;
}

static void compact(tfs_arc_image *a)
{
	size_t k = 0;
	for (size_t i = 0; i < a->count; i++) {
		if (a->ents[i].dropped)
			free(a->ents[i].rel);
		else
			a->ents[k++] = a->ents[i];
	}
	a->count = k;
}

/* Same-named members: tar extracts each over the one before, so the last
 * one is what a restore holds; that one is read. */
static int dedupe(tfs_arc_image *a, tfs_error *err)
{
	if (a->count > 1)
		qsort(a->ents, a->count, sizeof(*a->ents), cmp_entry);
	for (size_t i = 0; i < a->count;) {
		size_t j = i + 1, named = !a->ents[i].implicit, dirs = a->ents[i].st.type == TFS_ENT_DIR;
		while (j < a->count && strcmp(a->ents[j].rel, a->ents[i].rel) == 0) {
			named += !a->ents[j].implicit;
			dirs += a->ents[j].st.type == TFS_ENT_DIR;
			j++;
		}
		for (size_t k = i; k + 1 < j; k++)
			drop(&a->ents[k]);
		if (named > 1 && dirs < j - i &&
		    tfs_arc_note(a, "archive.duplicate-member", TFS_SEV_WARNING, a->ents[j - 1].rel,
		                 "%zu members have this name; tar extracts the last over the others, and "
		                 "that one is read", named) != TFS_OK)
			return tfs_nomem(err);
		i = j;
	}
	compact(a);
	return TFS_OK;
}

/* Parents no member names (zip and tar may leave them out) are made up as
 * 0700 directories, SoftHSM's own mode, owned as the member below them. */
static int add_parents(tfs_arc_image *a, tfs_error *err)
{
	size_t n = a->count; /* sorted and unique: dedupe ran */
	for (size_t i = 0; i < n; i++) {
		char *parent = strdup(a->ents[i].rel);
		if (parent == NULL)
			return tfs_nomem(err);
		/* Deepest ancestor first. One that exists ends the walk, and so
		 * does one the entry before shares: sorted paths keep a
		 * directory's subtree together, so that one was done then. */
		for (char *s = strrchr(parent, '/'); s != NULL; s = strrchr(parent, '/')) {
			*s = '\0';
			size_t len = (size_t)(s - parent);
			if (bsearch(parent, a->ents, n, sizeof(*a->ents), cmp_key) != NULL ||
			    (i > 0 && strncmp(a->ents[i - 1].rel, parent, len) == 0 &&
			     a->ents[i - 1].rel[len] == '/'))
				break;
			char *name = strndup(parent, len);
			tfs_arc_entry e = {.rel = name, .implicit = true,
			               .st = {.type = TFS_ENT_DIR, .mode = 0700,
			                      .uid = a->ents[i].st.uid, .gid = a->ents[i].st.gid}};
			int rc = name == NULL ? tfs_nomem(err) : tfs_arc_charge(a, name, 0, len + sizeof(e), err);
			if (rc == TFS_OK)
				rc = tfs_arc_image_push(a, &e, err);
			if (rc != TFS_OK) {
				free(name);
				free(parent);
				return rc;
			}
		}
		free(parent);
	}
	return dedupe(a, err);
}

/* A member under something that is not a directory ("a" a file, "a/b")
 * cannot be extracted; it is reported and left out. */
static int drop_orphans(tfs_arc_image *a, tfs_error *err)
{
	for (size_t i = 0; i < a->count; i++) {
		const char *rel = a->ents[i].rel, *s = strrchr(rel, '/');
		if (s == NULL)
			continue;
		char *parent = strndup(rel, (size_t)(s - rel));
		if (parent == NULL)
			return tfs_nomem(err);
		const tfs_arc_entry *p = bsearch(parent, a->ents, a->count, sizeof(*a->ents), cmp_key);
		free(parent);
		if (p != NULL && p->st.type == TFS_ENT_DIR && !p->dropped)
			continue;
		if (!a->ents[i].implicit &&
		    tfs_arc_note(a, "archive.unsafe-path", TFS_SEV_ERROR, rel,
		                 "member lies under a member that is not a directory: never extracted or read")
		        != TFS_OK)
			return tfs_nomem(err);
		drop(&a->ents[i]);
	}
	compact(a);
	return TFS_OK;
}

int tfs_arc_image_new(tfs_arc_image **out, const char *name, const tfs_archive_limits *limits,
                      tfs_error *err)
{
	tfs_arc_image *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->name = strdup(name)) == NULL) {
		free(a);
		return tfs_nomem(err);
	}
	a->base.ops = &arc_ops;
	a->name_len = strlen(name);
	a->root = (tfs_stat){.type = TFS_ENT_DIR, .mode = 0700};
	if (limits != NULL)
		a->lim = *limits;
	else
		tfs_archive_limits_default(&a->lim);
	*out = a;
	return TFS_OK;
}

int tfs_arc_image_finish(tfs_arc_image *a, tfs_error *err)
{
	int rc = dedupe(a, err);
	if (rc == TFS_OK)
		rc = add_parents(a, err);
	if (rc == TFS_OK)
		rc = drop_orphans(a, err);
	if (rc == TFS_OK && !a->root_named && a->count > 0) {
		/* No "./" member: the root is owned as the first member. */
		a->root.uid = a->ents[0].st.uid;
		a->root.gid = a->ents[0].st.gid;
	}
	return rc;
}
