/*
 * One state SoftHSM really had. A read lock alone does not give it:
 * SoftHSM 2.6.1 releases its write lock before its buffered write reaches
 * the file, writes a new object some 25 times while its attribute list
 * grows, and adds or removes files between our listing and our reads. So a
 * token is read whole, again and again, until two consecutive reads agree
 * byte for byte with the `generation` file unchanged across each; only then
 * is it one state and not a mix of several.
 */
#include "backup/backup_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cursor.h"
#include "core/error_internal.h"
#include "store/store_internal.h"
#include "tokenfs/object.h"

#define DEFAULT_MAX_READS 100
/* A state that does not parse must stay the same this many reads. */
#define STABLE_DAMAGE_READS 3
/* The pause before a read that is to confirm the one before. SoftHSM writes
 * a new object in a burst of rewrites (and a transaction) that lasts well
 * under this; a state that stayed the same over the pause is not a moment
 * inside such a burst. */
#define SETTLE_MS 25
/* How long a state with a half-written file must hold still to be taken as
 * what the store holds: the settling reader's rule (store/settle.c). */
#define UNFINISHED_STAYS_MS 250

void tfs_snap_free(tfs_snap *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->count; i++) {
		free(s->files[i].name);
		free(s->files[i].data);
	}
	free(s->files);
	tfs_backup_damage_free(s->damaged, s->ndamaged);
	memset(s, 0, sizeof(*s));
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool is_object_file(const char *name)
{
	size_t n = strlen(name);
	return n > 7 && strcmp(name + n - 7, ".object") == 0;
}

/* The 8-byte counter, or UINT64_MAX when the file is absent or not 8 bytes
 * (then only byte equality of the files counts). */
static uint64_t read_generation(tfs_fs *fs, const char *path, unsigned *lock_ms)
{
	char *p = NULL;
	if (asprintf(&p, "%s/generation", path) < 0)
		return UINT64_MAX;
	uint8_t *data = NULL;
	size_t size = 0;
	tfs_error e;
	uint64_t g = UINT64_MAX;
	if (fs->ops->read(fs, p, lock_ms, &data, &size, &e) == TFS_OK && size == 8)
		g = tfs_be64(data);
	free(data);
	free(p);
	return g;
}

typedef enum read_outcome {
	READ_DONE,     /* a whole read */
	READ_MOVED     /* a file vanished or the generation moved: read again */
} read_outcome;

/* One whole read of the directory into *s. */
static int read_once(tfs_snap *s, read_outcome *outcome, tfs_fs *fs, const char *path,
                     unsigned *lock_ms, tfs_snap_progress progress, void *ctx, tfs_error *err)
{
	memset(s, 0, sizeof(*s));
	*outcome = READ_DONE;
	uint64_t gen_before = read_generation(fs, path, lock_ms);
	int rc = fs->ops->stat(fs, path, &s->dir, err);
	if (rc != TFS_OK)
		return rc;
	tfs_dirent *ents = NULL;
	size_t n = 0;
	if ((rc = fs->ops->list(fs, path, NULL, &ents, &n, err)) != TFS_OK)
		return rc;
	s->files = calloc(n ? n : 1, sizeof(*s->files));
	if (s->files == NULL) {
		tfs_dirents_free(ents, n);
		return tfs_nomem(err);
	}
	for (size_t i = 0; i < n && rc == TFS_OK && *outcome == READ_DONE; i++) {
		if (ents[i].st.type != TFS_ENT_FILE) {
			s->skipped++;
			continue;
		}
		char *p = NULL;
		if (asprintf(&p, "%s/%s", path, ents[i].name) < 0) {
			rc = tfs_nomem(err);
			break;
		}
		tfs_snap_file *f = &s->files[s->count];
		tfs_error e;
		int r = TFS_OK;
		/* A lock file empty when listed (they always are): nothing to lock
		 * or read; one written since shows in the next read's listing.
		 * Object files are always read under their lock: one listed empty
		 * while SoftHSM rewrites it is whole once its lock is ours (the
		 * live test archived empty objects when these were skipped too). */
		if (ents[i].st.size == 0 && !is_object_file(ents[i].name) &&
		    strcmp(ents[i].name, "generation") != 0)
			f->data = malloc(1), f->size = 0, r = f->data ? TFS_OK : TFS_E_NOMEM;
		else
			r = fs->ops->read(fs, p, lock_ms, &f->data, &f->size, &e);
		free(p);
		if (r == TFS_E_NOMEM) {
			rc = tfs_nomem(err);
			break;
		}
		if (r == TFS_E_NOTFOUND || r == TFS_E_IO) {
			/* Removed (or replaced) since the listing: a change in flight. */
			*outcome = READ_MOVED;
			break;
		}
		if (r != TFS_OK) {
			*err = e;
			rc = r;
			break;
		}
		f->name = ents[i].name;
		ents[i].name = NULL;
		f->st = ents[i].st;
		f->st.size = f->size;
		s->count++;
		if (progress != NULL)
			progress(ctx, i + 1, n);
	}
	tfs_dirents_free(ents, n);
	if (rc == TFS_OK && *outcome == READ_DONE &&
	    read_generation(fs, path, lock_ms) != gen_before)
		*outcome = READ_MOVED;
	return rc;
}

static bool same_state(const tfs_snap *a, const tfs_snap *b)
{
	if (a->count != b->count || a->dir.mode != b->dir.mode)
		return false;
	for (size_t i = 0; i < a->count; i++) {
		const tfs_snap_file *x = &a->files[i], *y = &b->files[i];
		if (strcmp(x->name, y->name) != 0 || x->size != y->size || x->st.mode != y->st.mode ||
		    memcmp(x->data, y->data, x->size) != 0)
			return false;
	}
	return true;
}

void tfs_backup_damage_free(tfs_backup_damage *d, size_t n)
{
	for (size_t i = 0; d != NULL && i < n; i++) {
		free(d[i].file);
		free(d[i].defect);
	}
	free(d);
}

/* The first object file that does not parse completely, or NULL. */
/* The first file that looks caught mid-write (store/settle.c's rule: an
 * object SoftHSM is still building parses, but lacks what it writes last),
 * or NULL. */
static const char *unfinished(const tfs_snap *s)
{
	for (size_t i = 0; i < s->count; i++) {
		const tfs_snap_file *f = &s->files[i];
		tfs_file_role role = tfs_store_file_role(f->name);
		if (role != TFS_FILE_PLAIN && tfs_store_file_unfinished(role, f->data, f->size))
			return f->name;
	}
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *unparsed(const tfs_snap *s, tfs_error *why)
{
	for (size_t i = 0; i < s->count; i++) {
		const tfs_snap_file *f = &s->files[i];
		if (!is_object_file(f->name))
			continue;
		tfs_object *obj = NULL;
		int rc = tfs_object_parse(&obj, f->data, f->size, why);
		tfs_object_free(obj);
		if (rc != TFS_OK)
			return f->name;
	}
	return NULL;
}

/* Lists every object file of s that does not parse in s->damaged: the
 * backup keeps them (they are what the store holds) but must say so. */
static int list_damage(tfs_snap *s, tfs_error *err)
{
	for (size_t i = 0; i < s->count; i++) {
		const tfs_snap_file *f = &s->files[i];
		if (!is_object_file(f->name))
			continue;
		tfs_object *obj = NULL;
		tfs_error why;
		tfs_error_clear(&why);
		int rc = tfs_object_parse(&obj, f->data, f->size, &why);
		tfs_object_free(obj);
		if (rc == TFS_OK)
			continue;
		why.where[0] = '\0'; /* the file is named apart */
		char buf[1100];
		tfs_backup_damage *d = realloc(s->damaged, (s->ndamaged + 1) * sizeof(*d));
		if (d == NULL)
			return tfs_nomem(err);
		s->damaged = d;
		d = &s->damaged[s->ndamaged];
		d->file = strdup(f->name);
		d->defect = strdup(tfs_error_format(&why, buf, sizeof(buf)));
		s->ndamaged++;
		if (d->file == NULL || d->defect == NULL)
			return tfs_nomem(err);
	}
	return TFS_OK;
}

int tfs_snap_take(tfs_snap *out, tfs_fs *fs, const char *path, unsigned *lock_ms,
                  unsigned max_reads, tfs_snap_progress progress, void *ctx, tfs_error *err)
{
	memset(out, 0, sizeof(*out));
	if (max_reads == 0)
		max_reads = DEFAULT_MAX_READS;
	if (max_reads < 2)
		max_reads = 2;
	tfs_snap prev = {0};
	bool have_prev = false;
	unsigned same_run = 0; /* consecutive reads equal to prev */
	uint64_t since = 0;    /* when prev's state was first read */
	const char *why = "files changed between reads";
	char whybuf[700];
	for (unsigned reads = 1; reads <= max_reads; reads++) {
		tfs_snap cur;
		read_outcome oc;
		int rc = read_once(&cur, &oc, fs, path, lock_ms, progress, ctx, err);
		if (rc != TFS_OK) {
			tfs_snap_free(&cur);
			tfs_snap_free(&prev);
			return rc;
		}
		if (oc == READ_MOVED) {
			why = "files were added, removed or the token's generation changed during a read";
			tfs_snap_free(&cur);
			tfs_snap_free(&prev);
			have_prev = false;
			same_run = 0;
			pause_ms(SETTLE_MS);
			continue;
		}
		if (have_prev && same_state(&prev, &cur)) {
			same_run++;
			tfs_error pe;
			tfs_error_clear(&pe);
			const char *bad = unparsed(&cur, &pe);
			/* A state with a file caught mid-write is taken only once it
			 * stayed UNFINISHED_STAYS_MS: two equal reads 25 ms apart can
			 * both fall inside one of SoftHSM's pauses on a busy machine. */
			const char *half = bad == NULL ? unfinished(&cur) : NULL;
			bool held = now_ms() - since >= UNFINISHED_STAYS_MS;
			if ((bad == NULL && half == NULL) ||
			    (bad != NULL && same_run + 1 >= STABLE_DAMAGE_READS) || (half != NULL && held)) {
				tfs_snap_free(&prev);
				int r = bad != NULL ? list_damage(&cur, err) : TFS_OK;
				if (r != TFS_OK) {
					tfs_snap_free(&cur);
					return r;
				}
				*out = cur;
				out->reads = reads;
				return TFS_OK;
			}
			/* Maybe SoftHSM's write after its unlock: look again later. */
			if (bad != NULL)
				snprintf(whybuf, sizeof(whybuf), "%s did not parse (%s)", bad, pe.what);
			else
				snprintf(whybuf, sizeof(whybuf), "%s looked half-written", half);
			why = whybuf;
			tfs_snap_free(&cur);
			pause_ms(50);
			continue;
		}
		why = "files changed between reads";
		same_run = 0;
		tfs_snap_free(&prev);
		prev = cur;
		have_prev = true;
		since = now_ms();
		/* No growing back-off: a longer pause only gives a busy writer
		 * more time to change something before the confirming read. */
		pause_ms(SETTLE_MS);
	}
	tfs_snap_free(&prev);
	tfs_error_set(err, TFS_E_LOCKED, TFS_NO_OFFSET,
	              "the token changed on each of %u whole reads (last: %s): SoftHSM is writing "
	              "to it without pause; back up when it is quieter, or with --max-reads higher",
	              max_reads, why);
	return tfs_error_where(err, "%s", path);
}
