/*
 * An archive read into memory as a tfs_fs: libarchive unpacks every member
 * once into an image (archive_image.c) that the store reader then lists and
 * reads like a directory. Nothing is written to disk, no member path is ever
 * resolved against the real file system, and links are recorded, never
 * followed. libarchive does the tar, zip and decompression work; this file
 * decides what to trust of what it returns: member paths, types and sizes,
 * each checked against the caps before a byte is kept.
 */
#include "archive/image_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error_internal.h"

/* libarchive's errno for "not a format I know" (archive_platform.h, not
 * public): EFTYPE where it exists, else EILSEQ. */
#ifdef EFTYPE
#define LA_ERRNO_FILE_FORMAT EFTYPE
#else
#define LA_ERRNO_FILE_FORMAT EILSEQ
#endif

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

/*
 * Reads one regular member's data. A member libarchive cannot deliver whole
 * (cut short, bad CRC, encrypted) is a finding and is left out; *fatal:
 * libarchive cannot go on after it.
 */
static int read_member(tfs_arc_image *a, struct archive *ar, struct archive_entry *ae,
                       const char *rel, uint8_t **out, size_t *len, bool *fatal, tfs_error *err)
{
	*out = NULL;
	*len = 0;
	*fatal = false;
	bool sized = archive_entry_size_is_set(ae) != 0;
	la_int64_t declared = archive_entry_size(ae);
	if (sized && declared > 0 && (uint64_t)declared > a->lim.max_member_bytes)
		return tfs_arc_cap_error(a, err, rel, "member declares %lld bytes, over the %llu-byte "
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
			int rc = tfs_arc_note(a, "archive.member-damaged", TFS_SEV_ERROR, rel,
			                      "member could not be read whole (%zu%s bytes read): %s; left out",
			                      n, of, la_error(ar));
			free(buf);
			return rc != TFS_OK ? tfs_nomem(err) : TFS_OK;
		}
		int rc = tfs_arc_charge(a, rel, n, (size_t)r, err);
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
static int take_member(tfs_arc_image *a, struct archive *ar, struct archive_entry *ae, size_t seq,
                       bool *fatal, tfs_error *err)
{
	*fatal = false;
	const char *raw = archive_entry_pathname(ae), *why;
	char *rel = normalise(raw, &why);
	if (rel == NULL && why == NULL)
		return tfs_nomem(err);
	if (rel == NULL)
		return tfs_arc_note(a, "archive.unsafe-path", TFS_SEV_ERROR, raw != NULL ? raw : "?",
		                    "member is %s: never extracted, followed or read", why) == TFS_OK
		     ? TFS_OK : tfs_nomem(err);
	if (strlen(rel) >= PATH_MAX) {
		free(rel);
		return tfs_arc_note(a, "archive.unsafe-path", TFS_SEV_ERROR, "?", "a member path of %zu "
		                    "bytes, longer than any path can be (PATH_MAX): never read",
		                    strlen(raw)) == TFS_OK ? TFS_OK : tfs_nomem(err);
	}
	/* What the image keeps of every member counts against the total cap
	 * too: many members with long names are a bomb as well. */
	int rc = tfs_arc_charge(a, rel, 0, strlen(rel) + sizeof(tfs_arc_entry), err);
	if (rc != TFS_OK) {
		free(rel);
		return rc;
	}
	mode_t ft = archive_entry_filetype(ae);
	const char *hard = archive_entry_hardlink(ae);
	tfs_stat st = {.type = ent_type(ft), .mode = (uint32_t)(archive_entry_perm(ae) & 07777),
	               .uid = (uint32_t)archive_entry_uid(ae), .gid = (uint32_t)archive_entry_gid(ae),
	               .mtime_sec = (int64_t)archive_entry_mtime(ae)};
	tfs_arc_entry e = {.rel = rel, .seq = seq};
	if (hard != NULL) {
		/* A hard link's data is another member's: recorded as a special
		 * entry the reader refuses, so no content is trusted twice. */
		rc = tfs_arc_note(a, "archive.link", TFS_SEV_WARNING, rel, "hard link to '%s': not followed",
		                  hard);
		st.type = TFS_ENT_OTHER;
	} else if (*rel == '\0') {
		if (st.type == TFS_ENT_DIR) {
			a->root = st;
			a->root_named = true;
		}
		else
			rc = tfs_arc_note(a, "archive.unsafe-path", TFS_SEV_ERROR, ".",
			                  "member names the archive root but is not a directory: not read");
		free(rel);
		return rc == TFS_OK ? TFS_OK : tfs_nomem(err);
	} else if (st.type == TFS_ENT_SYMLINK) {
		const char *target = archive_entry_symlink(ae);
		rc = tfs_arc_note(a, "archive.link", TFS_SEV_WARNING, rel, "symbolic link to '%s': "
		                  "recorded as a link, never followed", target != NULL ? target : "?");
		st.size = target != NULL ? strlen(target) : 0; /* what lstat says of a link */
	} else if (st.type == TFS_ENT_OTHER) {
		rc = tfs_arc_note(a, "archive.special-file", TFS_SEV_WARNING, rel, "%s: recorded, never "
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
	rc = tfs_arc_image_push(a, &e, err);
	if (rc != TFS_OK) {
		free(e.rel);
		free(e.data);
	}
	return rc;
}

/* The damage that stops the walk, said once, with where in the file. */
static int stream_damaged(tfs_arc_image *a, struct archive *ar, const char *after)
{
	int rc = tfs_arc_note(a, "archive.damaged", TFS_SEV_ERROR, NULL,
	                      "the archive is damaged or cut short near byte %lld of the file%s%s: %s; "
	                      "members after this point could not be read",
	                      (long long)archive_filter_bytes(ar, -1), after ? ", after member " : "",
	                      after ? after : "", la_error(ar));
	return rc;
}

static int read_members(tfs_arc_image *a, struct archive *ar, tfs_error *err)
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
			if (tfs_arc_note(a, "archive.damaged", TFS_SEV_ERROR, NULL, "damaged member header near "
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
			rc = tfs_arc_cap_error(a, err, NULL, "more than %llu members, the member-count cap "
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

/* Reads every member of an opened archive into the image, then finishes it. */
static int build(tfs_arc_image *a, struct archive *ar, int open_rc, tfs_error *err)
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
		rc = tfs_arc_image_finish(a, err);
	return rc;
}

int tfs_archivefs_open_memory(tfs_fs **out, const char *name, const uint8_t *data, size_t size,
                              const tfs_archive_limits *limits, tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	tfs_arc_image *a;
	int rc = tfs_arc_image_new(&a, name, limits, err);
	if (rc != TFS_OK)
		return rc;
	struct archive *ar = archive_read_new();
	if (ar == NULL) {
		tfs_arc_image_free(a);
		return tfs_nomem(err);
	}
	rc = setup(ar, name, err);
	if (rc == TFS_OK)
		rc = build(a, ar, archive_read_open_memory(ar, data, size), err);
	archive_read_free(ar);
	if (rc != TFS_OK) {
		tfs_arc_image_free(a);
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
	tfs_arc_image *a = NULL;
	int rc = tfs_arc_image_new(&a, path, limits, err);
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
			tfs_arc_image_free(a);
		return rc;
	}
	*out = &a->base;
	return TFS_OK;
}
