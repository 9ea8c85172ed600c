/*
 * An archive read into memory as a tfs_fs: libarchive unpacks every member
 * once, into a sorted, immutable image that the store reader then lists and
 * reads like a directory. Nothing is written to disk, no member path is ever
 * resolved against the real file system, and links are recorded, never
 * followed. libarchive does the tar, zip and decompression work; this file
 * decides what to trust of what it returns: member paths, types and sizes,
 * each checked against the caps before a byte is kept.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error_internal.h"
#include "findings/findings_internal.h"
#include "store/fs_internal.h"
#include "tokenfs/archive.h"

typedef struct arc_entry {
	char *rel;     /* normalised member path: no leading "./", no "..", no "//" */
	tfs_stat st;
	uint8_t *data; /* a regular file's bytes, else NULL */
	size_t seq;    /* position in the archive: of two same-named members the later wins */
	bool implicit; /* a parent directory no member names */
	bool dropped;  /* removed while the image was finished */
} arc_entry;

typedef struct arc_fs {
	tfs_fs base; /* first: an arc_fs is a tfs_fs */
	char *name;  /* the archive as the user named it: the prefix of every path */
	size_t name_len;
	tfs_stat root;
	bool root_named; /* a "./" member gave the root's mode and owner */
	arc_entry *ents; /* sorted by rel once built */
	size_t count, cap;
	tfs_findings findings;
	tfs_archive_limits lim;
	uint64_t total; /* bytes unpacked so far */
} arc_fs;

static const struct tfs_fs_ops arc_ops;

/* libarchive's errno for "not a format I know" (archive_platform.h, not
 * public): EFTYPE where it exists, else EILSEQ. */
#ifdef EFTYPE
#define LA_ERRNO_FILE_FORMAT EFTYPE
#else
#define LA_ERRNO_FILE_FORMAT EILSEQ
#endif

/* ---- the finished image, as a file system ---- */

/* The member path an fs path names ("" for the root), or NULL when the path
 * is not inside this archive. "NAME", "NAME:", "NAME:." are the root. */
static const char *member_of(const arc_fs *a, const char *path)
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
	return strcmp((const char *)key, ((const arc_entry *)ent)->rel);
}

static const arc_entry *find(const arc_fs *a, const char *rel)
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
	const arc_fs *a = (const arc_fs *)fs;
	const char *rel = member_of(a, path);
	if (rel != NULL && *rel == '\0') {
		*st = a->root;
		return TFS_OK;
	}
	const arc_entry *e = rel != NULL ? find(a, rel) : NULL;
	if (e == NULL)
		return not_found(err, path, "no such member in the archive");
	*st = e->st;
	return TFS_OK;
}

/* First entry whose rel is >= key. */
static size_t lower_bound(const arc_fs *a, const char *key)
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

static int arc_list(tfs_fs *fs, const char *dir, tfs_dirent **out, size_t *count,
                    tfs_error *err)
{
	const arc_fs *a = (const arc_fs *)fs;
	*out = NULL;
	*count = 0;
	const char *rel = member_of(a, dir);
	if (rel == NULL)
		return not_found(err, dir, "no such member in the archive");
	char *prefix = NULL;
	if (*rel != '\0') {
		const arc_entry *d = find(a, rel);
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

static int arc_read(tfs_fs *fs, const char *path, unsigned lock_ms, uint8_t **data,
                    size_t *size, tfs_error *err)
{
	(void)lock_ms; /* nobody can write into an archive image */
	const arc_fs *a = (const arc_fs *)fs;
	*data = NULL;
	*size = 0;
	const char *rel = member_of(a, path);
	const arc_entry *e = rel != NULL && *rel != '\0' ? find(a, rel) : NULL;
	const char *why = e == NULL ? (rel != NULL && *rel == '\0' ? "not a regular file"
	                                                           : "no such member in the archive")
	                : e->st.type == TFS_ENT_SYMLINK ? "a symbolic link; not followed"
	                : e->st.type != TFS_ENT_FILE ? "not a regular file" : NULL;
	if (why != NULL)
		return not_found(err, path, why);
	size_t n = (size_t)e->st.size;
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return tfs_nomem(err);
	if (n)
		memcpy(buf, e->data, n);
	*data = buf;
	*size = n;
	return TFS_OK;
}

static void arc_destroy(tfs_fs *fs)
{
	arc_fs *a = (arc_fs *)fs;
	for (size_t i = 0; i < a->count; i++) {
		free(a->ents[i].rel);
		free(a->ents[i].data);
	}
	free(a->ents);
	tfs_findings_free(&a->findings);
	free(a->name);
	free(a);
}

static const struct tfs_findings *arc_findings(tfs_fs *fs)
{
	return &((arc_fs *)fs)->findings;
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

/* ---- findings about the archive ---- */

__attribute__((format(printf, 5, 6)))
static int note(arc_fs *a, const char *code, tfs_severity sev, const char *member,
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

static const char *la_error(struct archive *ar)
{
	const char *s = archive_error_string(ar);
	return s != NULL ? s : "unknown libarchive error";
}

/* ---- reading the members ---- */

/*
 * The member path as it will be named, or NULL: when *why is set, a path
 * that must not be followed (absolute, or with a ".." component); else out
 * of memory. "./a//b/" becomes "a/b"; the root becomes "".
 */
static char *normalise(const char *raw, const char **why)
{
	*why = NULL;
	if (raw == NULL) {
		*why = "its name cannot be read";
		return NULL;
	}
	if (raw[0] == '/') {
		*why = "an absolute path";
		return NULL;
	}
	size_t len = strlen(raw);
	char *out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (const char *p = raw; *p != '\0';) {
		const char *end = strchr(p, '/');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			*why = "a path with a '..' component";
			return NULL;
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	out[o] = '\0';
	return out;
}

static int push(arc_fs *a, arc_entry *e, tfs_error *err)
{
	if (a->count == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 256;
		arc_entry *p = realloc(a->ents, ncap * sizeof(*p));
		if (p == NULL)
			return tfs_nomem(err);
		a->ents = p;
		a->cap = ncap;
	}
	a->ents[a->count++] = *e;
	return TFS_OK;
}

static int cap_error(arc_fs *a, tfs_error *err, const char *member, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cap_error(arc_fs *a, tfs_error *err, const char *member, const char *fmt, ...)
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

/* Counts n more unpacked bytes of a member against both byte caps. */
static int charge(arc_fs *a, const char *member, uint64_t had, size_t n, tfs_error *err)
{
	if (had + n > a->lim.max_member_bytes)
		return cap_error(a, err, member, "member unpacks to more than %llu bytes, the "
		                 "member-size cap (--max-member-size)",
		                 (unsigned long long)a->lim.max_member_bytes);
	if (a->total + n > a->lim.max_total_bytes)
		return cap_error(a, err, member, "the archive unpacks to more than %llu bytes, the "
		                 "cap on all members (--max-unpacked)",
		                 (unsigned long long)a->lim.max_total_bytes);
	a->total += n;
	return TFS_OK;
}

/*
 * Reads one regular member's data. A member libarchive cannot deliver whole
 * (cut short, bad CRC, encrypted) is a finding and is left out; *fatal:
 * libarchive cannot go on after it.
 */
static int read_member(arc_fs *a, struct archive *ar, struct archive_entry *ae,
                       const char *rel, uint8_t **out, size_t *len, bool *fatal, tfs_error *err)
{
	*out = NULL;
	*len = 0;
	*fatal = false;
	bool sized = archive_entry_size_is_set(ae) != 0;
	la_int64_t declared = archive_entry_size(ae);
	if (sized && declared > 0 && (uint64_t)declared > a->lim.max_member_bytes)
		return cap_error(a, err, rel, "member declares %lld bytes, over the %llu-byte "
		                 "member-size cap (--max-member-size)", (long long)declared,
		                 (unsigned long long)a->lim.max_member_bytes);
	/* The declared size, exactly (a store has as many empty lock files as
	 * objects); a member that holds more, or of unknown size, grows. */
	size_t cap = sized && declared >= 0 ? (size_t)declared + 1 : 4096, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return tfs_nomem(err);
	for (;;) {
		if (n == cap) {
			size_t ncap = cap * 2;
			uint8_t *p = realloc(buf, ncap);
			if (p == NULL) {
				free(buf);
				return tfs_nomem(err);
			}
			buf = p;
			cap = ncap;
		}
		la_ssize_t r = archive_read_data(ar, buf + n, cap - n);
		if (r == 0)
			break;
		if (r < 0) {
			*fatal = r == ARCHIVE_FATAL;
			char of[40] = "";
			if (sized)
				snprintf(of, sizeof(of), " of %lld", (long long)declared);
			int rc = note(a, "archive.member-damaged", TFS_SEV_ERROR, rel,
			              "member could not be read whole (%zu%s bytes read): %s; left out",
			              n, of, la_error(ar));
			free(buf);
			return rc != TFS_OK ? tfs_nomem(err) : TFS_OK;
		}
		int rc = charge(a, rel, n, (size_t)r, err);
		if (rc != TFS_OK) {
			free(buf);
			return rc;
		}
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return TFS_OK;
}

static tfs_ent_type ent_type(mode_t ft)
{
	switch (ft) {
	case AE_IFREG: return TFS_ENT_FILE;
	case AE_IFDIR: return TFS_ENT_DIR;
	case AE_IFLNK: return TFS_ENT_SYMLINK;
	default: return TFS_ENT_OTHER;
	}
}

static const char *special_name(mode_t ft)
{
	switch (ft) {
	case AE_IFCHR: return "character device";
	case AE_IFBLK: return "block device";
	case AE_IFIFO: return "FIFO";
	case AE_IFSOCK: return "socket";
	default: return "entry of unknown type";
	}
}

/* One member: checked, recorded (or reported and left out). */
static int take_member(arc_fs *a, struct archive *ar, struct archive_entry *ae, size_t seq,
                       bool *fatal, tfs_error *err)
{
	*fatal = false;
	const char *raw = archive_entry_pathname(ae), *why;
	char *rel = normalise(raw, &why);
	if (rel == NULL && why == NULL)
		return tfs_nomem(err);
	if (rel == NULL)
		return note(a, "archive.unsafe-path", TFS_SEV_ERROR, raw != NULL ? raw : "?",
		            "member is %s: never extracted, followed or read", why) == TFS_OK
		     ? TFS_OK : tfs_nomem(err);
	if (strlen(rel) >= PATH_MAX) {
		free(rel);
		return note(a, "archive.unsafe-path", TFS_SEV_ERROR, "?", "a member path of %zu "
		            "bytes, longer than any path can be (PATH_MAX): never read",
		            strlen(raw)) == TFS_OK ? TFS_OK : tfs_nomem(err);
	}
	/* What the image keeps of every member counts against the total cap
	 * too: many members with long names are a bomb as well. */
	int rc = charge(a, rel, 0, strlen(rel) + sizeof(arc_entry), err);
	if (rc != TFS_OK) {
		free(rel);
		return rc;
	}
	mode_t ft = archive_entry_filetype(ae);
	const char *hard = archive_entry_hardlink(ae);
	tfs_stat st = {.type = ent_type(ft), .mode = (uint32_t)(archive_entry_perm(ae) & 07777),
	               .uid = (uint32_t)archive_entry_uid(ae), .gid = (uint32_t)archive_entry_gid(ae),
	               .mtime_sec = (int64_t)archive_entry_mtime(ae)};
	arc_entry e = {.rel = rel, .seq = seq};
	if (hard != NULL) {
		/* A hard link's data is another member's: recorded as a special
		 * entry the reader refuses, so no content is trusted twice. */
		rc = note(a, "archive.link", TFS_SEV_WARNING, rel, "hard link to '%s': not followed",
		          hard);
		st.type = TFS_ENT_OTHER;
	} else if (*rel == '\0') {
		if (st.type == TFS_ENT_DIR) {
			a->root = st;
			a->root_named = true;
		}
		else
			rc = note(a, "archive.unsafe-path", TFS_SEV_ERROR, ".",
			          "member names the archive root but is not a directory: not read");
		free(rel);
		return rc == TFS_OK ? TFS_OK : tfs_nomem(err);
	} else if (st.type == TFS_ENT_SYMLINK) {
		const char *target = archive_entry_symlink(ae);
		rc = note(a, "archive.link", TFS_SEV_WARNING, rel, "symbolic link to '%s': "
		          "recorded as a link, never followed", target != NULL ? target : "?");
		st.size = target != NULL ? strlen(target) : 0; /* what lstat says of a link */
	} else if (st.type == TFS_ENT_OTHER) {
		rc = note(a, "archive.special-file", TFS_SEV_WARNING, rel, "%s: recorded, never "
		          "opened", special_name(ft));
	} else if (st.type == TFS_ENT_FILE) {
		size_t len;
		rc = read_member(a, ar, ae, rel, &e.data, &len, fatal, err);
		if (rc != TFS_OK || e.data == NULL) {
			free(rel);
			return rc;
		}
		st.size = len;
	}
	if (rc != TFS_OK) {
		free(rel);
		return tfs_nomem(err);
	}
	e.st = st;
	rc = push(a, &e, err);
	if (rc != TFS_OK) {
		free(e.rel);
		free(e.data);
	}
	return rc;
}

/* The damage that stops the walk, said once, with where in the file. */
static int stream_damaged(arc_fs *a, struct archive *ar, const char *after)
{
	int rc = note(a, "archive.damaged", TFS_SEV_ERROR, NULL,
	              "the archive is damaged or cut short near byte %lld of the file%s%s: %s; "
	              "members after this point could not be read",
	              (long long)archive_filter_bytes(ar, -1), after ? ", after member " : "",
	              after ? after : "", la_error(ar));
	return rc;
}

static int read_members(arc_fs *a, struct archive *ar, tfs_error *err)
{
	struct archive_entry *ae;
	size_t members = 0, retries = 0;
	char *last = NULL;
	int rc = TFS_OK;
	for (;;) {
		int r = archive_read_next_header(ar, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_RETRY && ++retries <= 16) {
			/* A damaged header libarchive skipped (a bad tar checksum):
			 * the members after it are read, the damage is said. */
			if (note(a, "archive.damaged", TFS_SEV_ERROR, NULL, "damaged member header near "
			         "byte %lld of the file%s%s: %s; skipped, reading on at the next "
			         "header", (long long)archive_filter_bytes(ar, -1),
			         last ? ", after member " : "", last ? last : "", la_error(ar)) != TFS_OK) {
				rc = tfs_nomem(err);
				break;
			}
			continue;
		}
		if (r < ARCHIVE_WARN && members == 0 && archive_format(ar) == 0) {
			/* Nothing recognised: not an archive at all. */
			tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET, "not a tar or zip archive%s%s: %s",
			              archive_filter_count(ar) > 1 ? " inside the " : "",
			              archive_filter_count(ar) > 1 ? archive_filter_name(ar, 0) : "",
			              la_error(ar));
			rc = tfs_error_where(err, "%s", a->name);
			break;
		}
		if (r < ARCHIVE_WARN) {
			/* FAILED or FATAL on a header: libarchive cannot find the
			 * next member reliably; what was read stays. */
			if (stream_damaged(a, ar, last) != TFS_OK)
				rc = tfs_nomem(err);
			break;
		}
		if (++members > a->lim.max_members) {
			rc = cap_error(a, err, NULL, "more than %llu members, the member-count cap "
			               "(--max-members)", (unsigned long long)a->lim.max_members);
			break;
		}
		bool fatal;
		rc = take_member(a, ar, ae, members, &fatal, err);
		if (rc != TFS_OK)
			break;
		free(last);
		const char *p = archive_entry_pathname(ae);
		last = p != NULL ? strdup(p) : NULL;
		if (fatal) {
			if (stream_damaged(a, ar, NULL) != TFS_OK)
				rc = tfs_nomem(err);
			break;
		}
	}
	free(last);
	return rc;
}

/* ---- finishing the image ---- */

static int cmp_entry(const void *x, const void *y)
{
	const arc_entry *a = x, *b = y;
	int c = strcmp(a->rel, b->rel);
	if (c != 0)
		return c;
	if (a->implicit != b->implicit)
		return a->implicit ? -1 : 1; /* a named member beats an invented parent */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void drop(arc_entry *e)
{
	free(e->data);
	e->data = NULL;
	e->dropped = true;
}

static void compact(arc_fs *a)
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
static int dedupe(arc_fs *a, tfs_error *err)
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
		    note(a, "archive.duplicate-member", TFS_SEV_WARNING, a->ents[j - 1].rel,
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
static int add_parents(arc_fs *a, tfs_error *err)
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
			arc_entry e = {.rel = name, .implicit = true,
			               .st = {.type = TFS_ENT_DIR, .mode = 0700,
			                      .uid = a->ents[i].st.uid, .gid = a->ents[i].st.gid}};
			int rc = name == NULL ? tfs_nomem(err) : charge(a, name, 0, len + sizeof(e), err);
			if (rc == TFS_OK)
				rc = push(a, &e, err);
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
static int drop_orphans(arc_fs *a, tfs_error *err)
{
	for (size_t i = 0; i < a->count; i++) {
		const char *rel = a->ents[i].rel, *s = strrchr(rel, '/');
		if (s == NULL)
			continue;
		char *parent = strndup(rel, (size_t)(s - rel));
		if (parent == NULL)
			return tfs_nomem(err);
		const arc_entry *p = bsearch(parent, a->ents, a->count, sizeof(*a->ents), cmp_key);
		free(parent);
		if (p != NULL && p->st.type == TFS_ENT_DIR && !p->dropped)
			continue;
		if (!a->ents[i].implicit &&
		    note(a, "archive.unsafe-path", TFS_SEV_ERROR, rel,
		         "member lies under a member that is not a directory: never extracted or read")
		        != TFS_OK)
			return tfs_nomem(err);
		drop(&a->ents[i]);
	}
	compact(a);
	return TFS_OK;
}

/* ---- opening ---- */

void tfs_archive_limits_default(tfs_archive_limits *out)
{
	out->max_total_bytes = TFS_ARCHIVE_MAX_TOTAL_BYTES;
	out->max_members = TFS_ARCHIVE_MAX_MEMBERS;
	out->max_member_bytes = TFS_ARCHIVE_MAX_MEMBER_BYTES;
}

/* Only the formats and filters a backup of a token store comes in, all
 * built into libarchive: no external decompressor is ever run. */
static int setup(struct archive *ar, const char *name, tfs_error *err)
{
	int (*const enable[])(struct archive *) = {
		archive_read_support_format_tar, archive_read_support_format_zip,
		archive_read_support_filter_gzip, archive_read_support_filter_xz,
		archive_read_support_filter_lzma, archive_read_support_filter_zstd,
		archive_read_support_filter_bzip2,
	};
	for (size_t i = 0; i < sizeof(enable) / sizeof(enable[0]); i++)
		if (enable[i](ar) != ARCHIVE_OK) {
			tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "libarchive lacks a built-in reader "
			              "(it would run an external program): %s", la_error(ar));
			return tfs_error_where(err, "%s", name);
		}
	return TFS_OK;
}

static int new_image(arc_fs **out, const char *name, const tfs_archive_limits *limits,
                     tfs_error *err)
{
	arc_fs *a = calloc(1, sizeof(*a));
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

/* Reads every member of an opened archive into the image, then finishes it. */
static int build(arc_fs *a, struct archive *ar, int open_rc, tfs_error *err)
{
	int rc;
	if (open_rc != ARCHIVE_OK) {
		/* libarchive bids on the first bytes at open: nothing it knows is
		 * TFS_E_FORMAT (the caller may try another reader); a stream it
		 * knows but cannot start is a damaged archive. */
		bool unknown = archive_errno(ar) == LA_ERRNO_FILE_FORMAT;
		tfs_error_set(err, unknown ? TFS_E_FORMAT : TFS_E_IO, TFS_NO_OFFSET, "%s%s",
		              unknown ? "not a tar or zip archive: " : "damaged archive, nothing "
		              "could be read: ", la_error(ar));
		rc = tfs_error_where(err, "%s", a->name);
	} else {
		rc = read_members(a, ar, err);
	}
	if (rc == TFS_OK)
		rc = dedupe(a, err);
	if (rc == TFS_OK)
		rc = add_parents(a, err);
	if (rc == TFS_OK)
		rc = drop_orphans(a, err);
	if (rc == TFS_OK && !a->root_named && a->count > 0) {
		a->root.uid = a->ents[0].st.uid;
		a->root.gid = a->ents[0].st.gid;
	}
	return rc;
}

int tfs_archivefs_open_memory(tfs_fs **out, const char *name, const uint8_t *data, size_t size,
                              const tfs_archive_limits *limits, tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	arc_fs *a;
	int rc = new_image(&a, name, limits, err);
	if (rc != TFS_OK)
		return rc;
	struct archive *ar = archive_read_new();
	if (ar == NULL) {
		arc_destroy(&a->base);
		return tfs_nomem(err);
	}
	rc = setup(ar, name, err);
	if (rc == TFS_OK)
		rc = build(a, ar, archive_read_open_memory(ar, data, size), err);
	archive_read_free(ar);
	if (rc != TFS_OK) {
		arc_destroy(&a->base);
		return rc;
	}
	*out = &a->base;
	return TFS_OK;
}

int tfs_archivefs_open(tfs_fs **out, const char *path, const tfs_archive_limits *limits,
                       tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	/* O_NONBLOCK: a FIFO in place of the archive must not hang the open. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		const char *why = fd < 0 && errno == ELOOP ? "a symbolic link; not followed"
		                : fd < 0 ? strerror(errno) : "not a regular file";
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s", why);
		if (fd >= 0)
			close(fd);
		return tfs_error_where(err, "%s", path);
	}
	arc_fs *a = NULL;
	int rc = new_image(&a, path, limits, err);
	struct archive *ar = rc == TFS_OK ? archive_read_new() : NULL;
	if (rc == TFS_OK && ar == NULL)
		rc = tfs_nomem(err);
	if (rc == TFS_OK)
		rc = setup(ar, path, err);
	if (rc == TFS_OK)
		rc = build(a, ar, archive_read_open_fd(ar, fd, 64 * 1024), err);
	archive_read_free(ar);
	close(fd);
	if (rc != TFS_OK) {
		if (a != NULL)
			arc_destroy(&a->base);
		return rc;
	}
	*out = &a->base;
	return TFS_OK;
}
