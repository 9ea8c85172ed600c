/*
 * Lookups in the generated name tables: a binary search in a table sorted
 * by value. The tables and their order come from scripts/gen-pkcs11-names.py.
 */
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include <tokenfs/names.h>

#include "names/names_table.h"

/* The generated directories are indexed by tfs_name_space. */
_Static_assert(TFS_NS_CKF + 1 == TFS_NS_COUNT, "TFS_NS_COUNT is stale");

/* SoftHSM's OSAttributes.h counts its attributes up from this value. */
_Static_assert(TFS_CKA_VENDOR_SOFTHSM == (CKA_VENDOR_DEFINED + 0x5348UL),
	       "TFS_CKA_VENDOR_SOFTHSM");

static const char *table_find(const struct tfs_name_table *t, uint64_t value)
{
	size_t lo = 0;
	size_t hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = t->entries[mid].value;

		if (v == value)
			return t->entries[mid].name;
		if (v < value)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* An enum variable can hold any int: never index with ns unchecked. */
static const char *lookup(const struct tfs_name_table *dir, tfs_name_space ns,
			  uint64_t value)
{
	if ((unsigned int)ns >= TFS_NS_COUNT)
		return NULL;
	return table_find(&dir[ns], value);
}

const char *tfs_name(tfs_name_space ns, uint64_t value)
{
	return lookup(tfs_names_current, ns, value);
}

const char *tfs_name_softhsm(tfs_name_space ns, uint64_t value)
{
	return lookup(tfs_names_softhsm, ns, value);
}

static int attr_name_space(uint64_t attr_type, tfs_name_space *out)
{
	switch (attr_type) {
	case CKA_CLASS:
		*out = TFS_NS_CKO;
		return 0;
	case CKA_KEY_TYPE:
		*out = TFS_NS_CKK;
		return 0;
	case CKA_CERTIFICATE_TYPE:
		*out = TFS_NS_CKC;
		return 0;
	case CKA_HW_FEATURE_TYPE:
		*out = TFS_NS_CKH;
		return 0;
	case CKA_KEY_GEN_MECHANISM:
	case CKA_MECHANISM_TYPE:
	case CKA_NAME_HASH_ALGORITHM:
		*out = TFS_NS_CKM;
		return 0;
	default:
		return -1;
	}
}

/* A NULL ns makes this a plain "is it named?" test. */
int tfs_name_space_of_attr(uint64_t attr_type, tfs_name_space *ns)
{
	tfs_name_space found;

	if (attr_name_space(attr_type, &found) != 0)
		return -1;
	if (ns != NULL)
		*ns = found;
	return 0;
}
