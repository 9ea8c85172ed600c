/*
 * The tables behind tokenfs/names.h. scripts/gen-pkcs11-names.py writes
 * them (names_gen.c in the build directory); names.c searches them.
 */
#ifndef TOKENFS_NAMES_TABLE_H
#define TOKENFS_NAMES_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include <tokenfs/names.h>

/* One past the last tfs_name_space; names.c checks it against the enum. */
#define TFS_NS_COUNT 7

struct tfs_name_entry {
	uint64_t value;
	const char *name;
};

/* Entries sorted by value, each value once; entries is NULL when count is 0. */
struct tfs_name_table {
	const struct tfs_name_entry *entries;
	size_t count;
};

/* The preferred names of the header (and SoftHSM's vendor attributes). */
extern const struct tfs_name_table tfs_names_current[TFS_NS_COUNT];

/* What SoftHSM 2.6.1's softhsm2-dump-file names (its tables hold no CKF). */
extern const struct tfs_name_table tfs_names_softhsm[TFS_NS_COUNT];

#endif
