/* SHA-256 through OpenSSL: see crypto/digest_internal.h. */
#include "crypto/digest_internal.h"

#include <pthread.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/error_internal.h"

/* Fetched once: EVP_sha256() makes OpenSSL 3 look the implementation up
 * again on every digest, several times the cost of hashing a key value. */
static EVP_MD *fetched_sha256;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
	fetched_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	ERR_clear_error();
}

int tfs_sha256(uint8_t out[TFS_SHA256_LEN], const uint8_t *p, size_t n, tfs_error *err)
{
	pthread_once(&fetch_once, fetch_sha256);
	const EVP_MD *md = fetched_sha256 != NULL ? fetched_sha256 : EVP_sha256();
	unsigned int len = 0;
	if (EVP_Digest(p, n, out, &len, md, NULL) != 1 || len != TFS_SHA256_LEN)
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "SHA-256 failed");
	return TFS_OK;
}
