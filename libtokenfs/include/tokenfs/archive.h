/*
 * Stores inside archives: a tar (plain, gzip, xz, zstd, bzip2) or zip file
 * read through libarchive into memory, never extracted to disk, and opened
 * through the same store reader as a directory.
 *
 * An archive's members are named ARCHIVE:MEMBER ("backup.tar.gz:var/lib/
 * softhsm/tokens/<uuid>/token.object"), and so is every path in the store's
 * findings and errors. Token directories are found at any depth. What is
 * wrong with the archive itself (damage, links, unsafe member paths) becomes
 * findings with codes archive.* (docs/findings.md); the members that could
 * be read are reported as usual. Links, device nodes and absolute or ".."
 * member paths are never followed or resolved.
 */
#ifndef TOKENFS_ARCHIVE_H
#define TOKENFS_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/fs.h"
#include "tokenfs/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caps against archive bombs. Exceeding one fails the open with TFS_E_LIMIT
 * and a message naming the cap. A member of unknown size is counted as it is
 * unpacked, so a lying header does not get past them. */
typedef struct tfs_archive_limits {
	uint64_t max_total_bytes;  /* bytes unpacked over all members, counting each
	                            * member's name and bookkeeping too (the image's size) */
	uint64_t max_members;      /* entries of any kind */
	uint64_t max_member_bytes; /* bytes of one member */
} tfs_archive_limits;

#define TFS_ARCHIVE_MAX_TOTAL_BYTES  (1024ull * 1024 * 1024) /* 1 GiB */
#define TFS_ARCHIVE_MAX_MEMBERS      1000000ull
#define TFS_ARCHIVE_MAX_MEMBER_BYTES (64ull * 1024 * 1024)   /* = TFS_MAX_OBJECT_SIZE */

/* The defaults above. */
void tfs_archive_limits_default(tfs_archive_limits *out);

/*
 * Reads the archive at path (opened O_RDONLY|O_NOFOLLOW) into an in-memory
 * file system whose entries are named "<path>:<member>". limits may be NULL
 * (the defaults). Fails with TFS_E_FORMAT when libarchive does not recognise
 * the file as a tar or zip archive (by content, not by name), TFS_E_LIMIT
 * when a cap is exceeded, TFS_E_IO when the file cannot be read at all.
 * Damage after the first member is not a failure but a finding. The caller
 * owns *out (tfs_fs_free).
 */
int tfs_archivefs_open(tfs_fs **out, const char *path, const tfs_archive_limits *limits,
                       tfs_error *err);

/* The same over bytes in memory (copied as needed); entries are named
 * "<name>:<member>". For tests and fuzzers. */
int tfs_archivefs_open_memory(tfs_fs **out, const char *name, const uint8_t *data, size_t size,
                              const tfs_archive_limits *limits, tfs_error *err);

/* Whether fs is an archive image made by one of the two functions above. */
bool tfs_fs_is_archive(const tfs_fs *fs);

/*
 * Opens the store in the archive at path: tfs_archivefs_open, then
 * tfs_store_open_tree. The store owns the image; tfs_store_free frees it.
 * Fails with TFS_E_NOTFOUND when no member is a token directory.
 */
int tfs_store_open_archive(tfs_store **out, const char *path, const tfs_open_options *opts,
                           tfs_error *err);

/*
 * The one way a command opens the PATH a user gives: a directory or a
 * .object file as tfs_store_open, a regular file that is an archive (by its
 * content) as tfs_store_open_archive. opts->archive_limits applies to
 * archives.
 */
int tfs_store_open_path(tfs_store **out, const char *path, const tfs_open_options *opts,
                        tfs_error *err);

#ifdef __cplusplus
}
#endif
#endif
