/* Small shared helpers of the crypto module. */
#include <stdlib.h>

#include <openssl/crypto.h>

#include "tokenfs/crypto.h"

void tfs_secure_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
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
