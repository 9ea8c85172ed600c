/* SHA-256 of a buffer, for everything in the library that names content by
 * its hash (seals, the write engine's journal). */
#ifndef TFS_CRYPTO_DIGEST_INTERNAL_H
#define TFS_CRYPTO_DIGEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"

#define TFS_SHA256_LEN 32

/* TFS_E_CRYPTO only when OpenSSL fails. err may be NULL. */
int tfs_sha256(uint8_t out[TFS_SHA256_LEN], const uint8_t *p, size_t n, tfs_error *err);

#endif
