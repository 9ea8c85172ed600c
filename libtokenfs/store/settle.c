/*
 * Reading beside a live SoftHSM. Locks cannot protect a reader of SoftHSM
 * 2.6.1: it truncates under its write lock, unlocks, and only then does its
 * buffered write reach the file; and it writes a new object about 25 times
 * as the object's attributes grow from the template's defaults (FORMAT.md
 * section 4). So a file that looks empty, torn, generation-only or
 * unfinished for its class may be a write in flux. Such a file is read
 * again, after pauses, until it no longer looks unfinished or reads agree
 * over a quarter of a second: only a state that stays is reported as what
 * the file holds.
 * The pauses come out of the same --lock-timeout budget as lock waits, so a
 * damaged store costs at most that much time once; a file not modified for
 * two seconds is taken as it is, so a damaged store at rest costs nothing.
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY 0x41UL /* PKCS#11 3.0; older p11-kit headers lack it */
#endif

#include "core/error_internal.h"
#include "format/object_internal.h"
#include "tokenfs/names.h"

/* The first pause: long enough that SoftHSM's write after its unlock lands
 * (it is microseconds on an idle machine), short for a truly damaged file. */
#define FIRST_PAUSE_MS 25u
#define MAX_PAUSE_MS 100u
/* How long the same unfinished bytes must stay to be taken as the file's
 * state: a writer on a busy machine can be off the CPU for tens of
 * milliseconds between its truncate and its write. */
#define STAYS_MS 250u

static bool empty_bytes(const tfs_object *o, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(o, type);
	size_t len = 0;
	if (a != NULL && tfs_attr_kind(a) == TFS_KIND_BYTES)
		(void)tfs_attr_bytes(a, &len);
	return a != NULL && len == 0;
}

static uint64_t ulong_of(const tfs_object *o, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(o, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : UINT64_MAX;
}

/*
 * Whether an object that parses is still being created: SoftHSM writes the
 * template's defaults first (CKA_TOKEN false, empty values) and the real
 * values after, and it writes every class's full template, in ascending
 * type order, ending with CKA_ALLOWED_MECHANISMS (keys) or CKA_DESTROYABLE
 * (certificates, data). verify/structure.c and verify/material.c report
 * the same states when they stay.
 */
static bool object_unfinished(const tfs_object *o)
{
	size_t n = tfs_object_attr_count(o);
	uint64_t cls = ulong_of(o, CKA_CLASS);
	if (n == 0 || cls == UINT64_MAX)
		return true;
	const tfs_attr *token = tfs_object_find(o, CKA_TOKEN);
	if (token != NULL && tfs_attr_kind(token) == TFS_KIND_BOOL && !tfs_attr_bool(token))
		return true;
	bool key = cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY;
	uint64_t last = key ? CKA_ALLOWED_MECHANISMS
	              : (cls == CKO_CERTIFICATE || cls == CKO_DATA) ? CKA_DESTROYABLE : 0;
	if (last != 0 && tfs_attr_type(tfs_object_attr(o, n - 1)) < last &&
	    tfs_object_find(o, last) == NULL)
		return true;
	uint64_t kt = ulong_of(o, CKA_KEY_TYPE);
	if (cls == CKO_SECRET_KEY || cls == CKO_CERTIFICATE)
		return empty_bytes(o, CKA_VALUE);
	if (!key)
		return false;
	if (kt == CKK_RSA)
		return empty_bytes(o, CKA_MODULUS);
	if (kt == CKK_EC || kt == CKK_EC_EDWARDS || kt == CKK_EC_MONTGOMERY)
		return empty_bytes(o, CKA_EC_PARAMS) ||
		       empty_bytes(o, cls == CKO_PRIVATE_KEY ? CKA_VALUE : CKA_EC_POINT);
	if (kt == CKK_DSA || kt == CKK_DH)
		return empty_bytes(o, CKA_VALUE);
	return false;
}

/* token.object during a login or PIN change: empty, cut, or without the
 * attributes every token has. */
static bool token_unfinished(const tfs_object *o)
{
	static const uint64_t must[] = {TFS_CKA_OS_TOKENLABEL, TFS_CKA_OS_TOKENSERIAL,
	                                TFS_CKA_OS_SOPIN};
	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++) {
		const tfs_attr *a = tfs_object_find(o, must[i]);
		if (a == NULL || tfs_attr_kind(a) != TFS_KIND_BYTES)
			return true;
	}
	return ulong_of(o, TFS_CKA_OS_TOKENFLAGS) == UINT64_MAX;
}

/* *parsed: the parse of the bytes (a copy), NULL when they do not parse or
 * are not an object file. */
static bool unfinished(tfs_file_role role, const uint8_t *data, size_t size, tfs_object **parsed)
{
	*parsed = NULL;
	if (role == TFS_FILE_GENERATION)
		return size != 8;
	if (role == TFS_FILE_PLAIN)
		return false;
	tfs_error e;
	if (tfs_object_parse(parsed, data, size, &e) != TFS_OK)
		return e.code != TFS_E_NOMEM && e.code != TFS_E_LIMIT;
	return role == TFS_FILE_TOKEN ? token_unfinished(*parsed) : object_unfinished(*parsed);
}

static int read_once(const tfs_store *s, const char *path, uint8_t **data, size_t *size,
                     tfs_error *err)
{
	return s->fs->ops->read(s->fs, path, &s->wait->left_ms, data, size, err);
}

/* SoftHSM's write lands within moments of the truncate that began it, so a
 * file nobody changed for two seconds is not in flux: what it holds stays.
 * This keeps a damaged store read at rest free of pauses. */
#define AT_REST_SEC 2

static bool at_rest(const tfs_store *s, const char *path)
{
	tfs_stat st;
	tfs_error e;
	struct timespec now;
	if (s->fs->ops->stat(s->fs, path, &st, &e) != TFS_OK || clock_gettime(CLOCK_REALTIME, &now) != 0)
		return false;
	return st.mtime_sec <= (int64_t)now.tv_sec - AT_REST_SEC;
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool tfs_store_file_unfinished(tfs_file_role role, const uint8_t *data, size_t size)
{
	tfs_object *obj = NULL;
	bool u = unfinished(role, data, size, &obj);
	tfs_object_free(obj);
	return u;
}

int tfs_store_read_settled(const tfs_store *s, const char *path, tfs_file_role role,
                           uint8_t **data, size_t *size, tfs_object **parsed, tfs_error *err)
{
	*data = NULL;
	*size = 0;
	tfs_object *obj = NULL;
	uint8_t *cur;
	size_t cur_size;
	int rc = read_once(s, path, &cur, &cur_size, err);
	if (rc != TFS_OK)
		return rc;
	unsigned pause = FIRST_PAUSE_MS;
	uint64_t since = now_ms(); /* when these bytes were first read */
	while (unfinished(role, cur, cur_size, &obj) && s->wait->left_ms > 0 && !at_rest(s, path)) {
		tfs_object_free(obj);
		obj = NULL;
		unsigned ms = pause < s->wait->left_ms ? pause : s->wait->left_ms;
		pause_ms(ms);
		s->wait->left_ms -= ms;
		pause = pause * 2 < MAX_PAUSE_MS ? pause * 2 : MAX_PAUSE_MS;
		uint8_t *next;
		size_t next_size;
		rc = read_once(s, path, &next, &next_size, err);
		if (rc != TFS_OK) {
			tfs_file_bytes_free(cur, cur_size);
			return rc; /* gone (TFS_E_NOTFOUND) in the meantime, or worse */
		}
		bool same = next_size == cur_size && memcmp(next, cur, cur_size) == 0;
		tfs_file_bytes_free(cur, cur_size);
		cur = next;
		cur_size = next_size;
		if (!same) {
			since = now_ms();
		} else if (now_ms() - since >= STAYS_MS) {
			/* A state that stays: it is what the file holds. */
			(void)unfinished(role, cur, cur_size, &obj);
			break;
		}
	}
	if (parsed != NULL)
		*parsed = obj;
	else
		tfs_object_free(obj);
	*data = cur;
	*size = cur_size;
	return TFS_OK;
}

tfs_file_role tfs_store_file_role(const char *name)
{
	size_t n = strlen(name);
	if (strcmp(name, "token.object") == 0)
		return TFS_FILE_TOKEN;
	if (strcmp(name, "generation") == 0)
		return TFS_FILE_GENERATION;
	if (n > 7 && strcmp(name + n - 7, ".object") == 0)
		return TFS_FILE_OBJECT;
	return TFS_FILE_PLAIN;
}

bool tfs_store_settle_listing(const tfs_store *s, const char *dir)
{
	if (s->wait->left_ms == 0 || at_rest(s, dir))
		return false;
	unsigned ms = STAYS_MS < s->wait->left_ms ? STAYS_MS : s->wait->left_ms;
	pause_ms(ms);
	s->wait->left_ms -= ms;
	return true;
}

bool tfs_store_file_exists(const tfs_store *s, const char *path)
{
	tfs_stat st;
	tfs_error e;
	return s->fs->ops->stat(s->fs, path, &st, &e) == TFS_OK && st.type == TFS_ENT_FILE;
}
