/*
 * The journal of a transaction: which files of a token directory it replaces,
 * with the SHA-256 and size of each file's old and new contents. Recovery
 * reads it from whatever a crash left, so it is parsed from memory through
 * the bounded cursor like every other file format, and fuzzed.
 *
 *   magic    "TFSJRNL1"                      8 bytes
 *   count    u64
 *   entry*   name_len u64 (1..255), name, old_size u64, old_sha256[32],
 *            new_size u64, new_sha256[32]
 *   check    SHA-256 of every byte before it  32 bytes
 *
 * Integers are 8-byte big-endian, as in SoftHSM's own files. Names are plain
 * names of the files a transaction may replace (token.object, generation,
 * <uuid>.object), each at most once, so a hostile journal cannot make
 * recovery touch anything else.
 */
#ifndef TFS_TXN_JOURNAL_H
#define TFS_TXN_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/digest_internal.h"
#include "tokenfs/error.h"

#define TFS_JOURNAL_MAGIC "TFSJRNL1"
#define TFS_JOURNAL_NAME_MAX 255

typedef struct tfs_journal_entry {
	char name[TFS_JOURNAL_NAME_MAX + 1];
	uint64_t old_size;
	uint8_t old_sha256[TFS_SHA256_LEN];
	uint64_t new_size;
	uint8_t new_sha256[TFS_SHA256_LEN];
} tfs_journal_entry;

/* Whether a transaction may replace a file of this name. */
bool tfs_journal_name_ok(const char *name, size_t len);

/* Whether name is the staged copy ("<name>.tokenfs-new") of a file a
 * transaction may replace: what recovery removes, and readers recognise. */
bool tfs_journal_is_staged_name(const char *name);

/* Encodes n entries; *out is malloc'd. */
int tfs_journal_encode(uint8_t **out, size_t *size, const tfs_journal_entry *entries,
                       size_t n, tfs_error *err);

/*
 * Parses a journal. On success *out (malloc'd, free()) holds *n entries.
 * TFS_E_TRUNCATED when the bytes end early, TFS_E_FORMAT for anything else
 * wrong (err->offset at the first bad byte), TFS_E_DAMAGED when the check
 * sum does not match.
 */
int tfs_journal_parse(tfs_journal_entry **out, size_t *n, const uint8_t *data, size_t size,
                      tfs_error *err);

#endif
