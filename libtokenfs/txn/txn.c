/*
 * One transaction over the files of a token directory: see tokenfs/txn.h for
 * the guarantees and docs/writes.md for the protocol. The order of steps in
 * tfs_txn_commit is the whole argument; every step before the journal's
 * rename can fail and leave the token as it was, every step after it can be
 * redone by recovery.
 */
#include "txn/txn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/cursor.h"
#include "core/error_internal.h"
#include "crypto/digest_internal.h"
#include "tokenfs/crypto.h"
#include "txn/journal.h"

typedef struct txn_file {
	tfs_journal_entry j; /* name, old and new size and hash */
	/* The identity of the file as read: a change by anyone else before the
	 * commit point aborts the transaction. */
	dev_t dev;
	ino_t ino;
	struct timespec mtime, ctime;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	bool has_generation; /* old contents began with an 8-byte counter */
	uint64_t generation;
	bool staged;
	dev_t staged_dev; /* the staged file as created: swapped, it aborts */
	ino_t staged_ino;
} txn_file;

struct tfs_txn {
	tfs_locked_dir dir;
	txn_file *files;
	size_t nfiles, cap, nstaged;
	/* Name -> index + 1 (0: empty), open addressing, kept under half full:
	 * a token of 10,000 objects must not cost 50 million comparisons. */
	size_t *index, index_cap;
	tfs_txn_stats stats;
	bool ended;
};

const char *tfs_recovery_name(tfs_recovery r)
{
	switch (r) {
	case TFS_RECOVERY_ROLLED_BACK: return "rolled-back";
	case TFS_RECOVERY_ROLLED_FORWARD: return "rolled-forward";
	case TFS_RECOVERY_NONE: break;
	}
	return "none";
}

int tfs_txn_begin(tfs_txn **out, const char *token_dir, const tfs_txn_options *opts,
                  tfs_error *err)
{
	*out = NULL;
	tfs_error_clear(err);
	tfs_txn *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return tfs_nomem(err);
	int rc = tfs_locked_dir_open(&t->dir, token_dir, opts, err);
	if (rc == TFS_OK)
		rc = tfs_txn_recover_locked(&t->dir, &t->stats.recovered, err);
	if (rc != TFS_OK) {
		t->ended = true;
		tfs_txn_free(t);
		return rc;
	}
	*out = t;
	return TFS_OK;
}

static size_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return (size_t)h;
}

static txn_file *find_file(tfs_txn *t, const char *name)
{
	if (t->index_cap == 0)
		return NULL;
	for (size_t i = name_hash(name) & (t->index_cap - 1);; i = (i + 1) & (t->index_cap - 1)) {
		size_t v = t->index[i];
		if (v == 0)
			return NULL;
		if (strcmp(t->files[v - 1].j.name, name) == 0)
			return &t->files[v - 1];
	}
}

static void index_put(size_t *index, size_t cap, const char *name, size_t value)
{
	size_t i = name_hash(name) & (cap - 1);
	while (index[i] != 0)
		i = (i + 1) & (cap - 1);
	index[i] = value;
}

/* Makes room for one more file in the index, doubling it when half full. */
static int index_grow(tfs_txn *t, tfs_error *err)
{
	if (2 * (t->nfiles + 1) <= t->index_cap)
		return TFS_OK;
	size_t cap = t->index_cap ? 2 * t->index_cap : 64;
	size_t *idx = calloc(cap, sizeof(*idx));
	if (idx == NULL)
		return tfs_nomem(err);
	for (size_t i = 0; i < t->nfiles; i++)
		index_put(idx, cap, t->files[i].j.name, i + 1);
	free(t->index);
	t->index = idx;
	t->index_cap = cap;
	return TFS_OK;
}

static int usage_error(tfs_error *err, const char *what, const char *name)
{
	return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "%s: %s", what, name);
}

/* Write-locks an object's "<stem>.lock" companion too, as SoftHSM's own
 * transactions do; a missing lock file is not created. Returns its fd or -1. */
static int lock_companion(tfs_txn *t, const char *name, int *fd, tfs_error *err)
{
	*fd = -1;
	size_t len = strlen(name);
	if (strcmp(name, "token.object") == 0 || len < 7 ||
	    strcmp(name + len - 7, ".object") != 0)
		return TFS_OK;
	char lock[TFS_JOURNAL_NAME_MAX + 8];
	snprintf(lock, sizeof(lock), "%.*s.lock", (int)(len - 7), name);
	return tfs_txn_open_locked(&t->dir, lock, true, fd, err);
}

static int remember(tfs_txn *t, const char *name, int fd, const uint8_t *data, size_t size,
                    tfs_error *err)
{
	int rc = index_grow(t, err);
	if (rc != TFS_OK)
		return rc;
	if (t->nfiles == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		txn_file *p = realloc(t->files, ncap * sizeof(*p));
		if (p == NULL)
			return tfs_nomem(err);
		t->files = p;
		t->cap = ncap;
	}
	txn_file *f = &t->files[t->nfiles];
	memset(f, 0, sizeof(*f));
	struct stat st;
	if (fstat(fd, &st) != 0)
		return tfs_txn_errno(err, &t->dir, name, "fstat");
	rc = tfs_sha256(f->j.old_sha256, data, size, err);
	if (rc != TFS_OK)
		return rc;
	snprintf(f->j.name, sizeof(f->j.name), "%s", name);
	f->j.old_size = size;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->mtime = st.st_mtim;
	f->ctime = st.st_ctim;
	f->uid = st.st_uid;
	f->gid = st.st_gid;
	f->mode = st.st_mode & 0777; /* never carry set-id bits into a rewrite */
	f->has_generation = size >= 8;
	f->generation = size >= 8 ? tfs_be64(data) : 0;
	t->nfiles++;
	index_put(t->index, t->index_cap, f->j.name, t->nfiles);
	return TFS_OK;
}

int tfs_txn_read(tfs_txn *t, const char *name, uint8_t **data, size_t *size, tfs_error *err)
{
	*data = NULL;
	*size = 0;
	tfs_error_clear(err);
	if (t->ended)
		return usage_error(err, "transaction already ended", name);
	if (!tfs_journal_name_ok(name, strlen(name)))
		return usage_error(err, "not a file a transaction may replace", name);
	if (find_file(t, name) != NULL)
		return usage_error(err, "read twice in one transaction", name);
	int fd, lock_fd;
	int rc = tfs_txn_open_locked(&t->dir, name, false, &fd, err);
	if (rc != TFS_OK)
		return rc;
	rc = lock_companion(t, name, &lock_fd, err);
	if (rc == TFS_OK)
		rc = tfs_txn_read_fd(&t->dir, fd, name, data, size, err);
	if (rc == TFS_OK)
		rc = remember(t, name, fd, *data, *size, err);
	/* Closing releases both locks: held while reading, taken again while
	 * the file is replaced. */
	if (lock_fd >= 0)
		close(lock_fd);
	close(fd);
	if (rc != TFS_OK) {
		free(*data);
		*data = NULL;
		*size = 0;
	}
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0)
			errno = ENOSPC; /* no progress and no reason: do not leave a stale errno */
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the staged file back: what is on its way to disk is what we meant. */
static int read_back(const tfs_locked_dir *d, int fd, const char *staged, const uint8_t *data,
                     size_t size, tfs_error *err)
{
	uint8_t *back;
	size_t got;
	int rc = tfs_txn_read_fd(d, fd, staged, &back, &got, err);
	if (rc != TFS_OK)
		return rc;
	if (got != size || CRYPTO_memcmp(back, data, size) != 0) {
		tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "reads back different from what was written "
		              "(%zu bytes written, %zu read)", size, got);
		rc = tfs_error_where(err, "%s/%s", d->path, staged);
	}
	tfs_secure_free(back, got);
	return rc;
}

/* Creates a staged file with the target's owner, group and mode. */
static int write_staged(tfs_txn *t, txn_file *f, const char *staged, const uint8_t *data,
                        size_t size, tfs_error *err)
{
	const tfs_locked_dir *d = &t->dir;
	int fd = openat(d->fd, staged, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return tfs_txn_errno(err, d, staged, "creating the staged file");
	int rc = TFS_OK;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = tfs_txn_errno(err, d, staged, "fstat");
	} else {
		/* What check_unchanged expects to find at this name. */
		f->staged_dev = st.st_dev;
		f->staged_ino = st.st_ino;
	}
	/* SoftHSM runs as its own user and must still read what root wrote. */
	if (rc == TFS_OK && (f->uid != geteuid() || f->gid != getegid()) &&
	    fchown(fd, f->uid, f->gid) != 0)
		rc = tfs_txn_errno(err, d, staged, "keeping the owner and group");
	if (rc == TFS_OK && fchmod(fd, f->mode) != 0)
		rc = tfs_txn_errno(err, d, staged, "keeping the mode");
	if (rc == TFS_OK && write_all(fd, data, size) != 0)
		rc = tfs_txn_errno(err, d, staged, "writing");
	if (rc == TFS_OK)
		rc = read_back(d, fd, staged, data, size, err);
	if (close(fd) != 0 && rc == TFS_OK)
		rc = tfs_txn_errno(err, d, staged, "closing");
	if (rc != TFS_OK)
		unlinkat(d->fd, staged, 0);
	return rc;
}

int tfs_txn_stage(tfs_txn *t, const char *name, const uint8_t *data, size_t size, tfs_error *err)
{
	tfs_error_clear(err);
	if (t->ended)
		return usage_error(err, "transaction already ended", name);
	txn_file *f = find_file(t, name);
	if (f == NULL)
		return usage_error(err, "staged without being read first", name);
	if (f->staged)
		return usage_error(err, "staged twice in one transaction", name);
	char staged[TFS_JOURNAL_NAME_MAX + sizeof(TFS_TXN_STAGED_SUFFIX)];
	if (!tfs_txn_staged_name(staged, sizeof(staged), name))
		return usage_error(err, "name too long", name);
	int rc = tfs_sha256(f->j.new_sha256, data, size, err);
	if (rc == TFS_OK)
		rc = write_staged(t, f, staged, data, size, err);
	if (rc != TFS_OK)
		return rc;
	f->j.new_size = size;
	f->staged = true;
	t->nstaged++;
	t->stats.files_written++;
	t->stats.bytes_written += size;
	return TFS_OK;
}

int tfs_txn_stage_object(tfs_txn *t, const char *name, tfs_object *obj, tfs_txn_check_fn check,
                         void *ctx, tfs_error *err)
{
	tfs_error_clear(err);
	txn_file *f = find_file(t, name);
	if (f == NULL)
		return usage_error(err, "staged without being read first", name);
	uint64_t gen = f->has_generation ? f->generation : tfs_object_generation(obj);
	if (gen == UINT64_MAX) {
		tfs_error_set(err, TFS_E_LIMIT, 0, "generation counter is at its maximum; SoftHSM "
		              "could not notice a change");
		return tfs_error_where(err, "%s/%s", t->dir.path, name);
	}
	tfs_object_set_generation(obj, gen + 1);
	uint8_t *data;
	size_t size;
	int rc = tfs_object_serialize(obj, &data, &size, err);
	if (rc != TFS_OK)
		return rc;
	if (check != NULL)
		rc = check(ctx, data, size, err);
	if (rc == TFS_OK)
		rc = tfs_txn_stage(t, name, data, size, err);
	/* Objects with CKA_PRIVATE false keep key material in plaintext. */
	tfs_secure_free(data, size);
	return rc;
}

tfs_recovery tfs_txn_recovered(const tfs_txn *t)
{
	return t->stats.recovered;
}

size_t tfs_txn_staged_count(const tfs_txn *t)
{
	return t->nstaged;
}

/* The token's generation file + 1, so a running SoftHSM would re-index. An
 * absent file stays absent: SoftHSM then treats every look as a change. */
static int stage_token_generation(tfs_txn *t, tfs_error *err)
{
	struct stat st;
	if (find_file(t, "generation") != NULL)
		return TFS_OK;
	if (fstatat(t->dir.fd, "generation", &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? TFS_OK : tfs_txn_errno(err, &t->dir, "generation", "stat");
	uint8_t *old;
	size_t size;
	int rc = tfs_txn_read(t, "generation", &old, &size, err);
	if (rc != TFS_OK)
		return rc;
	uint64_t gen = size == 8 ? tfs_be64(old) : 0;
	free(old);
	if (size != 8 || gen == UINT64_MAX) {
		tfs_error_set(err, TFS_E_DAMAGED, 0, "generation file of %zu bytes; it holds one 8-byte "
		              "counter below 2^64-1", size);
		return tfs_error_where(err, "%s/generation", t->dir.path);
	}
	uint8_t b[8];
	tfs_put_be64(b, gen + 1);
	return tfs_txn_stage(t, "generation", b, 8, err);
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Nobody changed a target since it was read (a running SoftHSM would), and
 * each staged file is still the one regular file of one name the engine
 * made: a hard link added to it would stay joined to the token's file. */
static int check_unchanged(tfs_txn *t, tfs_error *err)
{
	for (size_t i = 0; i < t->nfiles; i++) {
		const txn_file *f = &t->files[i];
		struct stat st;
		char staged[TFS_JOURNAL_NAME_MAX + sizeof(TFS_TXN_STAGED_SUFFIX)];
		if (!f->staged)
			continue;
		tfs_txn_staged_name(staged, sizeof(staged), f->j.name);
		if (fstatat(t->dir.fd, staged, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return tfs_txn_errno(err, &t->dir, staged, "stat before commit");
		if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_dev != f->staged_dev ||
		    st.st_ino != f->staged_ino) {
			tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "%s since tokenfs wrote it; nothing was "
			              "changed", st.st_nlink != 1 && S_ISREG(st.st_mode)
			                         ? "hard-linked to another name" : "replaced");
			return tfs_error_where(err, "%s/%s", t->dir.path, staged);
		}
		if (fstatat(t->dir.fd, f->j.name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return tfs_txn_errno(err, &t->dir, f->j.name, "stat before commit");
		if (st.st_dev != f->dev || st.st_ino != f->ino || (uint64_t)st.st_size != f->j.old_size ||
		    !same_time(st.st_mtim, f->mtime) || !same_time(st.st_ctim, f->ctime)) {
			tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "changed by another process while "
			              "tokenfs worked on it (is SoftHSM running?); nothing was changed");
			return tfs_error_where(err, "%s/%s", t->dir.path, f->j.name);
		}
	}
	return TFS_OK;
}

/* Flushes every staged file: one syncfs for the whole file system rather
 * than an fsync per file (a token of 10,000 objects would otherwise pay
 * 10,000 journal commits). The directory descriptor was opened before the
 * first staged write, so syncfs reports any write-back error since (Linux
 * 5.8+). */
static int flush_staged(tfs_txn *t, tfs_error *err)
{
	if (syncfs(t->dir.fd) != 0)
		return tfs_txn_errno(err, &t->dir, NULL, "syncfs of the staged files");
	return tfs_txn_sync_dir(&t->dir, err);
}

static int write_journal(tfs_txn *t, tfs_error *err)
{
	tfs_journal_entry *e = malloc(t->nstaged * sizeof(*e));
	if (e == NULL)
		return tfs_nomem(err);
	size_t n = 0;
	for (size_t i = 0; i < t->nfiles; i++)
		if (t->files[i].staged)
			e[n++] = t->files[i].j;
	uint8_t *data;
	size_t size;
	int rc = tfs_journal_encode(&data, &size, e, n, err);
	free(e);
	if (rc != TFS_OK)
		return rc;
	const tfs_locked_dir *d = &t->dir;
	int fd = openat(d->fd, TFS_TXN_JOURNAL_TMP, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	                0600);
	if (fd < 0)
		rc = tfs_txn_errno(err, d, TFS_TXN_JOURNAL_TMP, "creating the journal");
	else if (write_all(fd, data, size) != 0)
		rc = tfs_txn_errno(err, d, TFS_TXN_JOURNAL_TMP, "writing the journal");
	else /* like the staged files: a journal that did not read back would make recovery refuse */
		rc = read_back(d, fd, TFS_TXN_JOURNAL_TMP, data, size, err);
	if (rc == TFS_OK && fsync(fd) != 0)
		rc = tfs_txn_errno(err, d, TFS_TXN_JOURNAL_TMP, "fsync of the journal");
	if (fd >= 0 && close(fd) != 0 && rc == TFS_OK)
		rc = tfs_txn_errno(err, d, TFS_TXN_JOURNAL_TMP, "closing the journal");
	free(data);
	t->stats.journal_bytes = size;
	return rc;
}

/* The commit point: the journal's rename. A rename that reports failure but
 * happened anyway counts as done, so the caller never undoes a commit. */
static int publish_journal(tfs_txn *t, bool *committed, tfs_error *err)
{
	*committed = false;
	if (renameat(t->dir.fd, TFS_TXN_JOURNAL_TMP, t->dir.fd, TFS_TXN_JOURNAL) == 0) {
		*committed = true;
		return TFS_OK;
	}
	int rc = tfs_txn_errno(err, &t->dir, TFS_TXN_JOURNAL, "renaming the journal into place");
	/* Only a journal that is certainly absent means "not committed": when
	 * even that cannot be told, the staged files stay for recovery. */
	struct stat st;
	*committed = fstatat(t->dir.fd, TFS_TXN_JOURNAL, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	             errno != ENOENT;
	return rc;
}

/* Replaces each target by its staged file, under the target's write lock. */
static int apply(tfs_txn *t, tfs_error *err)
{
	for (size_t i = 0; i < t->nfiles; i++) {
		const txn_file *f = &t->files[i];
		char staged[TFS_JOURNAL_NAME_MAX + sizeof(TFS_TXN_STAGED_SUFFIX)];
		int fd;
		if (!f->staged)
			continue;
		tfs_txn_staged_name(staged, sizeof(staged), f->j.name);
		int rc = tfs_txn_open_locked(&t->dir, f->j.name, true, &fd, err);
		if (rc != TFS_OK)
			return rc;
		if (renameat(t->dir.fd, staged, t->dir.fd, f->j.name) != 0)
			rc = tfs_txn_errno(err, &t->dir, f->j.name, "renaming the staged file into place");
		if (fd >= 0)
			close(fd);
		if (rc != TFS_OK)
			return rc;
	}
	return tfs_txn_sync_dir(&t->dir, err);
}

static int finish(tfs_txn *t, tfs_error *err)
{
	if (unlinkat(t->dir.fd, TFS_TXN_JOURNAL, 0) != 0)
		return tfs_txn_errno(err, &t->dir, TFS_TXN_JOURNAL, "removing the journal");
	return tfs_txn_sync_dir(&t->dir, err);
}

/* After the commit point a failure leaves a committed token that recovery
 * finishes: the message must say so. */
static int committed_error(tfs_error *err)
{
	char what[sizeof(err->what)];
	memcpy(what, err->what, sizeof(what));
	tfs_error_set(err, err->code, err->offset, "%s; the change is committed and 'tokenfs recover' "
	              "finishes it", what);
	return err->code;
}

int tfs_txn_commit(tfs_txn *t, tfs_txn_stats *stats, tfs_error *err)
{
	tfs_error_clear(err);
	if (t->ended)
		return usage_error(err, "transaction already ended", t->dir.path);
	int rc = TFS_OK;
	bool committed = false;
	if (t->nstaged > 0) {
		rc = stage_token_generation(t, err);
		if (rc == TFS_OK)
			rc = flush_staged(t, err);
		if (rc == TFS_OK)
			rc = check_unchanged(t, err);
		if (rc == TFS_OK)
			rc = write_journal(t, err);
		if (rc == TFS_OK)
			rc = publish_journal(t, &committed, err);
		t->stats.committed = committed;
		if (rc != TFS_OK && !committed) {
			tfs_error keep = *err;
			tfs_txn_abort(t);
			*err = keep;
			return rc;
		}
		if (rc == TFS_OK)
			rc = tfs_txn_sync_dir(&t->dir, err);
		if (rc == TFS_OK)
			rc = apply(t, err);
		if (rc == TFS_OK)
			rc = finish(t, err);
		if (rc != TFS_OK)
			committed_error(err);
	}
	t->ended = true;
	if (stats != NULL)
		*stats = t->stats;
	return rc;
}

void tfs_txn_abort(tfs_txn *t)
{
	if (t == NULL || t->ended)
		return;
	for (size_t i = 0; i < t->nfiles; i++) {
		char staged[TFS_JOURNAL_NAME_MAX + sizeof(TFS_TXN_STAGED_SUFFIX)];
		if (!t->files[i].staged)
			continue;
		tfs_txn_staged_name(staged, sizeof(staged), t->files[i].j.name);
		unlinkat(t->dir.fd, staged, 0);
	}
	/* What cannot be removed now (an I/O error) recovery removes later:
	 * without a journal, staged files are never used. */
	unlinkat(t->dir.fd, TFS_TXN_JOURNAL_TMP, 0);
	t->ended = true;
}

void tfs_txn_free(tfs_txn *t)
{
	if (t == NULL)
		return;
	tfs_txn_abort(t);
	tfs_locked_dir_close(&t->dir);
	free(t->files);
	free(t->index);
	free(t);
}

void tfs_txn_release_token_lock(tfs_txn *t)
{
	if (t != NULL && t->dir.token_lock_fd >= 0) {
		close(t->dir.token_lock_fd);
		t->dir.token_lock_fd = -1;
	}
}

int tfs_txn_retake_token_lock(tfs_txn *t, tfs_error *err)
{
	if (t->dir.token_lock_fd >= 0)
		return TFS_OK;
	return tfs_txn_open_locked(&t->dir, "token.lock", true, &t->dir.token_lock_fd, err);
}

int tfs_txn_recover(tfs_recovery *what, const char *token_dir, const tfs_txn_options *opts,
                    tfs_error *err)
{
	*what = TFS_RECOVERY_NONE;
	tfs_error_clear(err);
	tfs_locked_dir d;
	int rc = tfs_locked_dir_open(&d, token_dir, opts, err);
	if (rc != TFS_OK)
		return rc;
	rc = tfs_txn_recover_locked(&d, what, err);
	tfs_locked_dir_close(&d);
	return rc;
}
