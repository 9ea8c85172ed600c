/*
 * Backups (tokenfs/backup.h): snapshot.c reads one token until two whole
 * reads agree, archive.c streams an archive into a temporary file and
 * renames it into place, backup.c runs both over a store and seals each
 * snapshot.
 */
#ifndef TFS_BACKUP_INTERNAL_H
#define TFS_BACKUP_INTERNAL_H

#include "store/fs_internal.h"
#include "tokenfs/backup.h"

/* ---- snapshot.c ---- */

typedef struct tfs_snap_file {
	char *name;
	tfs_stat st;      /* as listed; st.size is the size read */
	uint8_t *data;
	size_t size;
} tfs_snap_file;

/* One token directory as it was during one read: its regular files, by
 * name. */
typedef struct tfs_snap {
	tfs_stat dir;
	tfs_snap_file *files;
	size_t count;
	size_t skipped;   /* entries that are not regular files */
	unsigned reads;   /* whole reads it took */
	/* Object files that do not parse, accepted as they are because they
	 * stayed the same over STABLE_DAMAGE_READS reads. */
	tfs_backup_damage *damaged;
	size_t ndamaged;
} tfs_snap;

typedef void (*tfs_snap_progress)(void *ctx, size_t done, size_t total);

/*
 * Reads the token directory `path` through fs (lock_ms: SoftHSM's read
 * locks) until two consecutive whole reads hold the same files with the same
 * bytes, the `generation` file did not move during either, and every object
 * file parses; a state that does not parse is accepted only once it stayed
 * the same over three reads (damage, not a write in flux), and then each
 * such file is listed in out->damaged. At most
 * max_reads reads, then TFS_E_LOCKED naming the token and what kept
 * changing. lock_ms is the run's wait budget for SoftHSM's locks, spent
 * as reads wait (tfs_fs read).
 */
int tfs_snap_take(tfs_snap *out, tfs_fs *fs, const char *path, unsigned *lock_ms,
                  unsigned max_reads, tfs_snap_progress progress, void *ctx, tfs_error *err);
void tfs_snap_free(tfs_snap *s);
void tfs_backup_damage_free(tfs_backup_damage *d, size_t n);

/* ---- archive.c ---- */

typedef struct tfs_archive_out tfs_archive_out;

/* Creates the temporary file (0600) beside path and starts an archive of
 * format f in it; with force, the commit may replace a file at path. */
int tfs_archive_out_open(tfs_archive_out **out, const char *path, tfs_archive_format f,
                         bool force, tfs_error *err);
int tfs_archive_out_dir(tfs_archive_out *a, const char *name, const tfs_stat *st,
                        tfs_error *err);
int tfs_archive_out_file(tfs_archive_out *a, const char *name, const tfs_stat *st,
                         const uint8_t *data, size_t size, tfs_error *err);
/* Finishes the archive and commits it (tfs_atomic_commit: fsync, rename
 * over path only when path does not exist unless force, fsync of the
 * directory). Frees a. */
int tfs_archive_out_commit(tfs_archive_out *a, uint64_t *size, tfs_error *err);
/* Removes the temporary file and frees a. Accepts NULL. */
void tfs_archive_out_abort(tfs_archive_out *a);

#endif
