/* Small shared helpers of the crypto module. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "core/error_internal.h"
#include "tokenfs/crypto.h"

void tfs_secure_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

int tfs_protect_process(tfs_error *err)
{
	/* A core of a crashed or killed run would hold the PIN and the token key. */
	const struct rlimit none = {0, 0};
	if (setrlimit(RLIMIT_CORE, &none) != 0)
		return tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET,
		                     "cannot turn core dumps off (setrlimit RLIMIT_CORE): %s",
		                     strerror(errno));
	/* The rlimit alone does not cover a core_pattern pipe handler, which the
	 * kernel runs whatever the limit; a non-dumpable process gets none. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET,
		                     "cannot turn core dumps off (prctl PR_SET_DUMPABLE): %s",
		                     strerror(errno));
	return TFS_OK;
}

const char *tfs_layout_name(tfs_layout layout)
{
	switch (layout) {
	case TFS_LAYOUT_CBC: return "cbc";
	case TFS_LAYOUT_GCM: return "gcm";
	case TFS_LAYOUT_NONE: break;
	}
	return "none";
}
