/*
 * Recovery: what an interrupted transaction left decides what happens.
 *
 *  - A journal: the transaction committed. Every staged file it names must
 *    hold exactly the new contents it records, and every file whose staged
 *    copy is gone must already hold them; only then are the remaining staged
 *    files renamed into place (roll forward). Anything else means the
 *    directory was changed behind the engine's back: nothing is touched and
 *    the error says what does not match.
 *  - No journal: nothing was committed, the targets are untouched, and the
 *    staged files and a half-written journal are removed (roll back).
 *
 * Both directions are idempotent, so a crash during recovery is recovered
 * the same way.
 */
#include "txn/txn_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/error_internal.h"
#include "txn/journal.h"

/* Removes every staged file and the journal's temporary file. Other files
 * are never touched, whatever their names. */
static int sweep(tfs_locked_dir *d, bool *removed, tfs_error *err)
{
	*removed = false;
	int fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (dir == NULL) {
		int rc = tfs_txn_errno(err, d, NULL, "listing the token directory");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	int rc = TFS_OK;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, TFS_TXN_JOURNAL_TMP) != 0 && !tfs_journal_is_staged_name(e->d_name))
			continue;
		if (unlinkat(d->fd, e->d_name, 0) != 0 && errno != ENOENT) {
			rc = tfs_txn_errno(err, d, e->d_name, "removing a staged file");
			break;
		}
		*removed = true;
		errno = 0;
	}
	if (rc == TFS_OK && errno != 0)
		rc = tfs_txn_errno(err, d, NULL, "listing the token directory");
	closedir(dir);
	return rc;
}

static int damaged(tfs_error *err, const tfs_locked_dir *d, const char *name, const char *what)
{
	tfs_error_set(err, TFS_E_DAMAGED, TFS_NO_OFFSET, "%s; the journal of an interrupted "
	              "transaction cannot be trusted, so nothing was changed: see docs/writes.md", what);
	return tfs_error_where(err, "%s/%s", d->path, name);
}

/* What a file holds: OLD or NEW contents of a journal entry, OTHER, or
 * MISSING. Only regular files count. */
enum held { MISSING, OLD, NEW, OTHER };

static int holds(tfs_locked_dir *d, const char *name, const tfs_journal_entry *e, enum held *out,
                 nlink_t *links, tfs_error *err)
{
	*out = MISSING;
	*links = 0;
	int fd = openat(d->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? TFS_OK : tfs_txn_errno(err, d, name, "opening");
	struct stat st;
	uint8_t *data = NULL, md[TFS_SHA256_LEN];
	size_t got = 0;
	int rc = TFS_OK;
	*out = OTHER;
	if (fstat(fd, &st) != 0)
		rc = tfs_txn_errno(err, d, name, "fstat");
	else if (S_ISREG(st.st_mode)) {
		*links = st.st_nlink;
		rc = tfs_txn_read_fd(d, fd, name, &data, &got, err);
	}
	close(fd);
	if (rc != TFS_OK || !S_ISREG(st.st_mode))
		return rc;
	rc = tfs_sha256(md, data, got, err);
	free(data);
	if (rc == TFS_OK && got == e->new_size && CRYPTO_memcmp(md, e->new_sha256, TFS_SHA256_LEN) == 0)
		*out = NEW;
	else if (rc == TFS_OK && got == e->old_size && CRYPTO_memcmp(md, e->old_sha256, TFS_SHA256_LEN) == 0)
		*out = OLD;
	return rc;
}

/*
 * Checks every entry before anything is renamed: each staged copy must hold
 * the new contents, and each target the old ones (not yet replaced) or the
 * new ones (already replaced). A target that holds anything else was changed
 * after the crash (a SoftHSM that ran on the old files meanwhile): rolling
 * forward would bring back a state that is neither before nor after.
 */
static int check_entries(tfs_locked_dir *d, const tfs_journal_entry *e, size_t n, tfs_error *err)
{
	for (size_t i = 0; i < n; i++) {
		char staged[TFS_JOURNAL_NAME_MAX + sizeof(TFS_TXN_STAGED_SUFFIX)];
		enum held s, t;
		nlink_t links, target_links;
		tfs_txn_staged_name(staged, sizeof(staged), e[i].name);
		int rc = holds(d, staged, &e[i], &s, &links, err);
		if (rc == TFS_OK)
			rc = holds(d, e[i].name, &e[i], &t, &target_links, err);
		if (rc != TFS_OK)
			return rc;
		if (s != MISSING && s != NEW)
			return damaged(err, d, staged, "staged file does not hold what the journal records");
		/* The engine creates staged files with one name. Another name
		 * (outside the token, even) would stay joined to the file put in
		 * place, and SoftHSM writes objects in place, through it. */
		if (s == NEW && links != 1)
			return damaged(err, d, staged, "staged file is hard-linked to another name; putting "
			               "it in place would join the token's file to that name");
		if (s == NEW && t != OLD && t != NEW)
			return damaged(err, d, e[i].name, "file changed since the transaction was committed "
			               "(did SoftHSM run on the old files?)");
		if (s == MISSING && t != NEW)
			return damaged(err, d, e[i].name, "neither the file nor a staged copy holds the "
			               "new contents the journal records");
	}
	return TFS_OK;
}

static int roll_forward(tfs_locked_dir *d, const tfs_journal_entry *e, size_t n, tfs_error *err)
{
	int rc = check_entries(d, e, n, err);
	for (size_t i = 0; i < n && rc == TFS_OK; i++) {
		char staged[TFS_JOURNAL_NAME_MAX + sizeof(TFS_TXN_STAGED_SUFFIX)];
		struct stat st;
		int fd;
		tfs_txn_staged_name(staged, sizeof(staged), e[i].name);
		if (fstatat(d->fd, staged, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT)
				rc = tfs_txn_errno(err, d, staged, "stat");
			continue; /* already in place */
		}
		rc = tfs_txn_open_locked(d, e[i].name, true, &fd, err);
		if (rc == TFS_OK && renameat(d->fd, staged, d->fd, e[i].name) != 0)
			rc = tfs_txn_errno(err, d, e[i].name, "renaming the staged file into place");
		if (fd >= 0)
			close(fd);
	}
	if (rc == TFS_OK)
		rc = tfs_txn_sync_dir(d, err);
	if (rc == TFS_OK && unlinkat(d->fd, TFS_TXN_JOURNAL, 0) != 0)
		rc = tfs_txn_errno(err, d, TFS_TXN_JOURNAL, "removing the journal");
	return rc;
}

static int read_journal(tfs_locked_dir *d, uint8_t **data, size_t *size, bool *exists,
                        tfs_error *err)
{
	*exists = false;
	int fd = openat(d->fd, TFS_TXN_JOURNAL, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? TFS_OK
		                       : tfs_txn_errno(err, d, TFS_TXN_JOURNAL, "opening the journal");
	*exists = true;
	int rc = tfs_txn_read_fd(d, fd, TFS_TXN_JOURNAL, data, size, err);
	close(fd);
	return rc;
}

int tfs_txn_recover_locked(tfs_locked_dir *d, tfs_recovery *what, tfs_error *err)
{
	*what = TFS_RECOVERY_NONE;
	uint8_t *data = NULL;
	size_t size = 0;
	bool exists;
	int rc = read_journal(d, &data, &size, &exists, err);
	if (rc != TFS_OK)
		return rc;
	if (exists) {
		tfs_journal_entry *e;
		size_t n;
		rc = tfs_journal_parse(&e, &n, data, size, err);
		free(data);
		if (rc != TFS_OK) {
			char what_[sizeof(err->what)];
			memcpy(what_, err->what, sizeof(what_));
			uint64_t off = err->offset;
			damaged(err, d, TFS_TXN_JOURNAL, what_);
			err->offset = off;
			return TFS_E_DAMAGED;
		}
		rc = roll_forward(d, e, n, err);
		free(e);
		if (rc != TFS_OK)
			return rc;
		*what = TFS_RECOVERY_ROLLED_FORWARD;
	}
	bool removed;
	rc = sweep(d, &removed, err);
	if (rc == TFS_OK && (removed || exists))
		rc = tfs_txn_sync_dir(d, err);
	if (rc == TFS_OK && removed && !exists)
		*what = TFS_RECOVERY_ROLLED_BACK;
	return rc;
}
