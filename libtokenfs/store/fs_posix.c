/*
 * The real file system, read-only by construction: files are opened
 * O_RDONLY|O_NOFOLLOW|O_CLOEXEC (and O_NOATIME where the kernel allows it, so
 * a forensic read does not even move access times), locks are only ever
 * F_RDLCK, and nothing here can create, write or unlink.
 */
#include "store/fs_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/error_internal.h"
#include "tokenfs/object.h"

#ifndef O_NOATIME
#define O_NOATIME 0
#endif

/* An error about a path: the path goes into `where`, the defect into `what`. */
static int path_err(tfs_error *err, int code, const char *path, const char *what)
{
	tfs_error_set(err, code, TFS_NO_OFFSET, "%s", what);
	return tfs_error_where(err, "%s", path);
}

static void fill_stat(tfs_stat *st, const struct stat *s)
{
	if (S_ISREG(s->st_mode))
		st->type = TFS_ENT_FILE;
	else if (S_ISDIR(s->st_mode))
		st->type = TFS_ENT_DIR;
	else if (S_ISLNK(s->st_mode))
		st->type = TFS_ENT_SYMLINK;
	else
		st->type = TFS_ENT_OTHER;
	st->size = (uint64_t)s->st_size;
	st->mode = (uint32_t)(s->st_mode & 07777);
	st->uid = (uint32_t)s->st_uid;
	st->gid = (uint32_t)s->st_gid;
	st->mtime_sec = (int64_t)s->st_mtime;
	st->nlink = (uint64_t)s->st_nlink;
}

static int posix_stat(tfs_fs *fs, const char *path, tfs_stat *st, tfs_error *err)
{
	(void)fs;
	struct stat s;
	if (lstat(path, &s) != 0)
		return path_err(err, TFS_E_IO, path, strerror(errno));
	fill_stat(st, &s);
	return TFS_OK;
}

static int cmp_dirent(const void *a, const void *b)
{
	return strcmp(((const tfs_dirent *)a)->name, ((const tfs_dirent *)b)->name);
}

/* The type the directory entry itself tells; false when the file system
 * leaves it out (DT_UNKNOWN) and only a stat can say. */
static bool dirent_type(const struct dirent *e, tfs_ent_type *type)
{
	switch (e->d_type) {
	case DT_REG: *type = TFS_ENT_FILE; return true;
	case DT_DIR: *type = TFS_ENT_DIR; return true;
	case DT_LNK: *type = TFS_ENT_SYMLINK; return true;
	case DT_UNKNOWN: return false;
	default: *type = TFS_ENT_OTHER; return true;
	}
}

static int posix_list(tfs_fs *fs, const char *dir, tfs_list_full full, tfs_dirent **out,
                      size_t *count, tfs_error *err)
{
	(void)fs;
	*out = NULL;
	*count = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return path_err(err, TFS_E_IO, dir, strerror(errno));
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return path_err(err, TFS_E_IO, dir, strerror(errno));
	}
	tfs_dirent *ents = NULL;
	size_t n = 0, cap = 0;
	int rc = TFS_OK;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			tfs_dirent *p = realloc(ents, ncap * sizeof(*p));
			if (p == NULL) {
				rc = tfs_nomem(err);
				goto done;
			}
			ents = p;
			cap = ncap;
		}
		memset(&ents[n].st, 0, sizeof(ents[n].st));
		bool typed = full != NULL && !full(e->d_name) && dirent_type(e, &ents[n].st.type);
		struct stat s;
		if (!typed && fstatat(dfd, e->d_name, &s, AT_SYMLINK_NOFOLLOW) != 0) {
			/* Gone between readdir and fstatat: a live SoftHSM deleted
			 * it. That entry is no more, the listing is still good. */
			if (errno == ENOENT) {
				errno = 0;
				continue;
			}
			rc = path_err(err, TFS_E_IO, dir, strerror(errno));
			goto done;
		}
		ents[n].name = strdup(e->d_name);
		if (ents[n].name == NULL) {
			rc = tfs_nomem(err);
			goto done;
		}
		if (!typed)
			fill_stat(&ents[n].st, &s);
		n++;
		errno = 0;
	}
	if (errno != 0)
		rc = path_err(err, TFS_E_IO, dir, strerror(errno));
done:
	closedir(d);
	if (rc != TFS_OK) {
		tfs_dirents_free(ents, n);
		return rc;
	}
	if (n > 1)
		qsort(ents, n, sizeof(*ents), cmp_dirent);
	*out = ents;
	*count = n;
	return TFS_OK;
}

/*
 * SoftHSM readers take F_RDLCK on the object file itself, and its writers
 * F_WRLCK while they truncate and rewrite it in place. The lock keeps us
 * from other readers' writers, not from SoftHSM 2.6.1's own (it unlocks
 * before its buffered write lands: FORMAT.md section 4), so the store
 * reader re-reads what looks unfinished (store/settle.c). F_SETLK in a loop
 * rather than F_SETLKW so a stuck writer costs a bounded wait and a clear
 * message. The wait comes off *budget_ms: one budget for the whole run, so
 * twenty locked files cost one timeout, not twenty.
 */
static int read_lock(int fd, const char *path, unsigned *budget_ms, tfs_error *err)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	const unsigned step_ms = 10;
	for (;;) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return TFS_OK;
		if (errno != EACCES && errno != EAGAIN)
			return path_err(err, TFS_E_IO, path, strerror(errno));
		if (*budget_ms == 0)
			break;
		unsigned ms = *budget_ms < step_ms ? *budget_ms : step_ms;
		struct timespec ts = {0, (long)ms * 1000000L};
		nanosleep(&ts, NULL);
		*budget_ms -= ms;
	}
	struct flock who = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	long pid = (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK) ? (long)who.l_pid : -1;
	tfs_error_set(err, TFS_E_LOCKED, TFS_NO_OFFSET,
	              "write-locked by another process (pid %ld) after the run's --lock-timeout "
	              "was used up waiting; stop SoftHSM users or retry", pid);
	return tfs_error_where(err, "%s", path);
}

/* Whether the file is still what was read: SoftHSM rewrites in place
 * (truncate, then write generation+1 and every attribute), so a read that
 * overlapped a write sees another size or another generation afterwards. */
static bool unchanged(int fd, const uint8_t *buf, size_t got, int *error)
{
	struct stat s;
	uint8_t gen[8];
	*error = 0;
	if (fstat(fd, &s) != 0) {
		*error = errno;
		return false;
	}
	if ((uint64_t)s.st_size != got)
		return false;
	size_t n = got < sizeof(gen) ? got : sizeof(gen);
	if (n == 0)
		return true;
	ssize_t r = pread(fd, gen, n, 0);
	/* A failing disk is an error to report, not a reason to read again. */
	if (r < 0)
		*error = errno;
	return r == (ssize_t)n && memcmp(gen, buf, n) == 0;
}

/* O_NONBLOCK so that a FIFO swapped in for a listed file cannot block the
 * open; posix_read refuses anything but a regular file right after. */
static int open_ro(const char *path)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	int fd = open(path, flags | O_NOATIME);
	/* O_NOATIME is refused with EPERM for files we do not own. */
	if (fd < 0 && errno == EPERM && O_NOATIME != 0)
		fd = open(path, flags);
	return fd;
}

/* The file from its start, at its size in *s (NULL: stat it now); *size is
 * what was read. */
static int read_whole(int fd, const char *path, const struct stat *known, uint8_t **out,
                      size_t *size, tfs_error *err)
{
	int rc;
	struct stat st;
	const struct stat *s = known;
	uint8_t *buf = NULL;
	size_t want = 0, got = 0;
	*out = NULL;
	*size = 0;
	if (s == NULL) {
		if (fstat(fd, &st) != 0) {
			rc = path_err(err, TFS_E_IO, path, strerror(errno));
			goto fail;
		}
		s = &st;
	}
	if ((uint64_t)s->st_size > TFS_MAX_OBJECT_SIZE) {
		tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET, "file of %lld bytes exceeds the %u-byte cap",
		              (long long)s->st_size, TFS_MAX_OBJECT_SIZE);
		rc = tfs_error_where(err, "%s", path);
		goto fail;
	}
	want = (size_t)s->st_size;
	buf = malloc(want ? want : 1);
	if (buf == NULL) {
		rc = tfs_nomem(err);
		goto fail;
	}
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			tfs_error_set(err, TFS_E_IO, got, "%s", strerror(errno));
			rc = tfs_error_where(err, "%s", path);
			goto fail;
		}
		if (r == 0)
			break; /* shrank under us: a writer truncated it */
		got += (size_t)r;
	}
	*out = buf;
	*size = got;
	return TFS_OK;
fail:
	tfs_file_bytes_free(buf, got);
	return rc;
}

static int posix_read(tfs_fs *fs, const char *path, unsigned *lock_ms, uint8_t **data,
                      size_t *size, tfs_error *err)
{
	(void)fs;
	*data = NULL;
	*size = 0;
	int fd = open_ro(path);
	if (fd < 0) {
		if (errno == ELOOP)
			return path_err(err, TFS_E_IO, path, "a symbolic link; not followed");
		/* Listed, then gone: a live SoftHSM destroyed the object. */
		return path_err(err, errno == ENOENT ? TFS_E_NOTFOUND : TFS_E_IO, path, strerror(errno));
	}
	int rc;
	uint8_t *buf = NULL;
	struct stat s;
	if (fstat(fd, &s) != 0) {
		rc = path_err(err, TFS_E_IO, path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(s.st_mode)) {
		rc = path_err(err, TFS_E_IO, path, "not a regular file");
		goto fail;
	}
	/* SoftHSM never makes hard links: a second name may be another file's
	 * (/etc/shadow where the file system allows it), whose bytes would end
	 * up in messages and dumps. Refused on the open descriptor, so a link
	 * made after the listing is caught too. */
	if (s.st_nlink > 1) {
		tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
		              "has %llu hard links; SoftHSM never makes hard links, so this may be "
		              "another file: not read", (unsigned long long)s.st_nlink);
		rc = tfs_error_where(err, "%s", path);
		goto fail;
	}
	if (lock_ms != NULL && (rc = read_lock(fd, path, lock_ms, err)) != TFS_OK)
		goto fail;
	/* A write that overlapped the read: read again, a few times at most
	 * (the caller judges whatever is left). */
	for (int attempt = 0; attempt < 4; attempt++) {
		tfs_file_bytes_free(buf, *size);
		buf = NULL;
		*size = 0;
		/* The first read goes by the size seen before the lock: a write
		 * between that stat and the lock changes the size or the
		 * generation, which unchanged() sees, and the next read stats
		 * again. One stat fewer per file. */
		bool first = attempt == 0 && (uint64_t)s.st_size <= TFS_MAX_OBJECT_SIZE;
		rc = read_whole(fd, path, first ? &s : NULL, &buf, size, err);
		int error;
		if (rc != TFS_OK || unchanged(fd, buf, *size, &error))
			break;
		if (error != 0) {
			rc = path_err(err, TFS_E_IO, path, strerror(error));
			break;
		}
	}
	if (rc != TFS_OK)
		goto fail;
	close(fd); /* also releases the read lock */
	*data = buf;
	return TFS_OK;
fail:
	tfs_file_bytes_free(buf, *size);
	*size = 0;
	close(fd);
	return rc;
}

static void posix_destroy(tfs_fs *fs)
{
	(void)fs; /* static instance */
}

static const struct tfs_fs_ops posix_ops = {
	.stat = posix_stat,
	.list = posix_list,
	.read = posix_read,
	.destroy = posix_destroy,
};

static tfs_fs posix_fs = {.ops = &posix_ops};

tfs_fs *tfs_fs_posix(void)
{
	return &posix_fs;
}

void tfs_file_bytes_free(uint8_t *data, size_t size)
{
	if (data != NULL)
		OPENSSL_cleanse(data, size);
	free(data);
}

void tfs_dirents_free(tfs_dirent *ents, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(ents[i].name);
	free(ents);
}

void tfs_fs_free(tfs_fs *fs)
{
	if (fs != NULL)
		fs->ops->destroy(fs);
}
