/* SHA-256 through OpenSSL: see crypto/digest_internal.h. */
#include "crypto/digest_internal.h"

#include <openssl/evp.h>

#include "core/error_internal.h"

int tfs_sha256(uint8_t out[TFS_SHA256_LEN], const uint8_t *p, size_t n, tfs_error *err)
{
	unsigned int len = 0;
	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != TFS_SHA256_LEN)
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "SHA-256 failed");
	return TFS_OK;
}
