/*
 * Names of PKCS#11 constants, generated at build time from p11-kit's
 * pkcs11.h (scripts/gen-pkcs11-names.py), plus SoftHSM's vendor attributes.
 * Every returned string is static.
 */
#ifndef TOKENFS_NAMES_H
#define TOKENFS_NAMES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SoftHSM's vendor attributes in token.object (CKA_VENDOR_DEFINED + 'SH' + n). */
#define TFS_CKA_VENDOR_SOFTHSM  0x80005348u
#define TFS_CKA_OS_TOKENLABEL   0x80005349u
#define TFS_CKA_OS_TOKENSERIAL  0x8000534Au
#define TFS_CKA_OS_TOKENFLAGS   0x8000534Bu
#define TFS_CKA_OS_SOPIN        0x8000534Cu
#define TFS_CKA_OS_USERPIN      0x8000534Du

typedef enum tfs_name_space {
	TFS_NS_CKA, /* attribute types */
	TFS_NS_CKO, /* object classes */
	TFS_NS_CKK, /* key types */
	TFS_NS_CKC, /* certificate types */
	TFS_NS_CKM, /* mechanisms */
	TFS_NS_CKH, /* hardware feature types */
	TFS_NS_CKF  /* token flags (CK_TOKEN_INFO.flags bits) */
} tfs_name_space;

/*
 * The preferred name of a value in a name space, or NULL when the value has
 * none. Where the header has aliases (CKK_EC and CKK_ECDSA) the current name
 * wins over the deprecated one.
 */
const char *tfs_name(tfs_name_space ns, uint64_t value);

/*
 * The name SoftHSM 2.6.1's softhsm2-dump-file prints for a value, or NULL
 * where that tool prints "unknown 0x..." (its tables predate PKCS#11 3.0).
 */
const char *tfs_name_softhsm(tfs_name_space ns, uint64_t value);

/*
 * For a ulong attribute type, the name space its values are named in
 * (CKA_CLASS gives TFS_NS_CKO, ...). Returns 0 and sets *ns, or -1 when the
 * attribute's values are plain numbers.
 */
int tfs_name_space_of_attr(uint64_t attr_type, tfs_name_space *ns);

#ifdef __cplusplus
}
#endif
#endif
