/*
 * The in-memory image of an archive, shared by archive_read.c (which fills
 * it from libarchive) and archive_image.c (which finishes it and serves it
 * as a tfs_fs). Entries are named "<name>:<member>" to the store reader.
 */
#ifndef TFS_ARCHIVE_IMAGE_INTERNAL_H
#define TFS_ARCHIVE_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "findings/findings_internal.h"
#include "store/fs_internal.h"
#include "tokenfs/archive.h"

typedef struct tfs_arc_entry {
	char *rel;     /* normalised member path: no leading "./", no "..", no "//" */
	tfs_stat st;
	uint8_t *data; /* a regular file's bytes, else NULL */
	size_t seq;    /* position in the archive: of two same-named members the later wins */
	bool implicit; /* a parent directory no member names */
	bool dropped;  /* removed while the image was finished */
} tfs_arc_entry;

typedef struct tfs_arc_image {
	tfs_fs base; /* first: an tfs_arc_image is a tfs_fs */
	char *name;  /* the archive as the user named it: the prefix of every path */
	size_t name_len;
	tfs_stat root;
	bool root_named; /* a "./" member gave the root's mode and owner */
	tfs_arc_entry *ents; /* sorted by rel once built */
	size_t count, cap;
	tfs_findings findings;
	tfs_archive_limits lim;
	uint64_t total; /* bytes unpacked so far */
} tfs_arc_image;

/* A new, empty image named name, with limits (NULL: the defaults). */
int tfs_arc_image_new(tfs_arc_image **out, const char *name, const tfs_archive_limits *limits,
                      tfs_error *err);
/* Frees an image and every entry (the tfs_fs destroy). */
void tfs_arc_image_free(tfs_arc_image *a);

/* Appends an entry; the image owns its rel and data from then on. */
int tfs_arc_image_push(tfs_arc_image *a, tfs_arc_entry *e, tfs_error *err);

/* A finding about the archive (member NULL) or one member: TFS_OK or TFS_E_NOMEM. */
int tfs_arc_note(tfs_arc_image *a, const char *code, tfs_severity sev, const char *member,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A cap exceeded: TFS_E_LIMIT with a message naming the cap. */
int tfs_arc_cap_error(tfs_arc_image *a, tfs_error *err, const char *member, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Counts n more bytes of a member (which had `had` already) against the
 * member-size and the total caps. */
int tfs_arc_charge(tfs_arc_image *a, const char *member, uint64_t had, size_t n, tfs_error *err);

/* After the last member: duplicates resolved, missing parents made up,
 * members under non-directories dropped; the image is then sorted. */
int tfs_arc_image_finish(tfs_arc_image *a, tfs_error *err);

#endif
