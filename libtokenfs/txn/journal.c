/* The journal format: see txn/journal.h and docs/writes.md. */
#include "txn/journal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/cursor.h"
#include "core/error_internal.h"
#include "tokenfs/txn.h"

/* name_len + old_size + old hash + new_size + new hash, and a name byte. */
#define ENTRY_FIXED (8 + 8 + TFS_SHA256_LEN + 8 + TFS_SHA256_LEN)

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t m = strlen(suffix);
	return len >= m && memcmp(s + len - m, suffix, m) == 0;
}

bool tfs_journal_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > TFS_JOURNAL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == '\0')
			return false;
	if ((len == 12 && memcmp(name, "token.object", 12) == 0) ||
	    (len == 10 && memcmp(name, "generation", 10) == 0))
		return true;
	/* SoftHSM's object-file rule; no dot-names, no "..". */
	return len > 7 && name[0] != '.' && has_suffix(name, len, ".object");
}

bool tfs_journal_is_staged_name(const char *name)
{
	size_t len = strlen(name), slen = strlen(TFS_TXN_STAGED_SUFFIX);
	return len > slen && has_suffix(name, len, TFS_TXN_STAGED_SUFFIX) &&
	       tfs_journal_name_ok(name, len - slen);
}

int tfs_journal_encode(uint8_t **out, size_t *size, const tfs_journal_entry *entries, size_t n,
                       tfs_error *err)
{
	*out = NULL;
	*size = 0;
	size_t total = 16 + TFS_SHA256_LEN;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(entries[i].name);
		if (!tfs_journal_name_ok(entries[i].name, len))
			return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			                     "'%s' is not a file a transaction may replace", entries[i].name);
		if (!tfs_size_add(total, ENTRY_FIXED + len, &total))
			return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET, "journal too large");
	}
	uint8_t *b = malloc(total), *p = b;
	if (b == NULL)
		return tfs_nomem(err);
	memcpy(p, TFS_JOURNAL_MAGIC, 8);
	tfs_put_be64(p + 8, n);
	p += 16;
	for (size_t i = 0; i < n; i++) {
		const tfs_journal_entry *e = &entries[i];
		size_t len = strlen(e->name);
		tfs_put_be64(p, len);
		memcpy(p + 8, e->name, len);
		p += 8 + len;
		tfs_put_be64(p, e->old_size);
		memcpy(p + 8, e->old_sha256, TFS_SHA256_LEN);
		p += 8 + TFS_SHA256_LEN;
		tfs_put_be64(p, e->new_size);
		memcpy(p + 8, e->new_sha256, TFS_SHA256_LEN);
		p += 8 + TFS_SHA256_LEN;
	}
	int rc = tfs_sha256(p, b, (size_t)(p - b), err);
	if (rc != TFS_OK) {
		free(b);
		return rc;
	}
	*out = b;
	*size = total;
	return TFS_OK;
}

static int short_input(tfs_error *err, const tfs_cursor *c, const char *field)
{
	return tfs_error_set(err, TFS_E_TRUNCATED, tfs_cursor_offset(c),
	                     "journal ends inside the %s", field);
}

static int parse_entry(tfs_journal_entry *e, tfs_cursor *c, tfs_error *err)
{
	uint64_t off = tfs_cursor_offset(c), len;
	const uint8_t *name, *old_hash, *new_hash;
	if (!tfs_cursor_u64(c, &len))
		return short_input(err, c, "length of a file name");
	if (len == 0 || len > TFS_JOURNAL_NAME_MAX)
		return tfs_error_set(err, TFS_E_FORMAT, off, "file name of %llu bytes; names have "
		                     "1 to %d", (unsigned long long)len, TFS_JOURNAL_NAME_MAX);
	if (!tfs_cursor_bytes(c, len, &name))
		return short_input(err, c, "file name");
	if (!tfs_journal_name_ok((const char *)name, (size_t)len))
		return tfs_error_set(err, TFS_E_FORMAT, off + 8, "names a file a transaction never "
		                     "replaces (only token.object, generation and <uuid>.object)");
	memcpy(e->name, name, (size_t)len);
	e->name[len] = '\0';
	if (!tfs_cursor_u64(c, &e->old_size) || !tfs_cursor_bytes(c, TFS_SHA256_LEN, &old_hash) ||
	    !tfs_cursor_u64(c, &e->new_size) || !tfs_cursor_bytes(c, TFS_SHA256_LEN, &new_hash))
		return short_input(err, c, "sizes and hashes of a file");
	memcpy(e->old_sha256, old_hash, TFS_SHA256_LEN);
	memcpy(e->new_sha256, new_hash, TFS_SHA256_LEN);
	return TFS_OK;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each file at most once: sorted, so a journal of many entries stays cheap. */
static int check_unique(const tfs_journal_entry *e, size_t n, tfs_error *err)
{
	if (n < 2)
		return TFS_OK;
	const char **names = malloc(n * sizeof(*names));
	if (names == NULL)
		return tfs_nomem(err);
	for (size_t i = 0; i < n; i++)
		names[i] = e[i].name;
	qsort(names, n, sizeof(*names), cmp_name);
	int rc = TFS_OK;
	for (size_t i = 1; i < n && rc == TFS_OK; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			rc = tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET, "names %s twice", names[i]);
	free(names);
	return rc;
}

int tfs_journal_parse(tfs_journal_entry **out, size_t *n, const uint8_t *data, size_t size,
                      tfs_error *err)
{
	*out = NULL;
	*n = 0;
	tfs_cursor c;
	tfs_cursor_init(&c, data, size);
	const uint8_t *magic;
	uint64_t count;
	if (!tfs_cursor_bytes(&c, 8, &magic))
		return short_input(err, &c, "magic");
	if (memcmp(magic, TFS_JOURNAL_MAGIC, 8) != 0)
		return tfs_error_set(err, TFS_E_FORMAT, 0, "not a tokenfs journal (magic)");
	if (!tfs_cursor_u64(&c, &count))
		return short_input(err, &c, "entry count");
	/* Each entry takes at least ENTRY_FIXED + 1 bytes: bounds the count
	 * before anything is allocated for it. */
	if (count > tfs_cursor_left(&c) / (ENTRY_FIXED + 1))
		return tfs_error_set(err, TFS_E_TRUNCATED, 8, "entry count %llu exceeds what %zu bytes "
		                     "can hold", (unsigned long long)count, tfs_cursor_left(&c));
	tfs_journal_entry *e = calloc(count ? (size_t)count : 1, sizeof(*e));
	if (e == NULL)
		return tfs_nomem(err);
	int rc = TFS_OK;
	for (size_t i = 0; i < count && rc == TFS_OK; i++)
		rc = parse_entry(&e[i], &c, err);
	if (rc == TFS_OK)
		rc = check_unique(e, (size_t)count, err);
	uint8_t want[TFS_SHA256_LEN];
	const uint8_t *check = NULL; /* set when rc stays TFS_OK */
	size_t body = c.pos;
	if (rc == TFS_OK && !tfs_cursor_bytes(&c, TFS_SHA256_LEN, &check))
		rc = short_input(err, &c, "check sum");
	if (rc == TFS_OK && tfs_cursor_left(&c) != 0)
		rc = tfs_error_set(err, TFS_E_FORMAT, tfs_cursor_offset(&c),
		                   "%zu bytes after the check sum", tfs_cursor_left(&c));
	if (rc == TFS_OK && (rc = tfs_sha256(want, data, body, err)) == TFS_OK &&
	    CRYPTO_memcmp(want, check, TFS_SHA256_LEN) != 0)
		rc = tfs_error_set(err, TFS_E_DAMAGED, body, "check sum does not match the journal's "
		                   "contents");
	if (rc != TFS_OK) {
		free(e);
		return rc;
	}
	*out = e;
	*n = (size_t)count;
	return TFS_OK;
}
