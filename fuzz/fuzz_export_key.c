/* libFuzzer target: export's key builders (EVP_PKEY_fromdata from the
 * attributes of an object file, computed EC and DSA public halves) and its
 * encoders, on plaintext objects as a store of CKA_PRIVATE=false keys holds
 * them. Whatever the bytes, a key is built or refused with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export/export_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t ulong_of(const tfs_object *obj, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : UINT64_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tfs_xobj o = {.uuid = "fuzz"};
	tfs_error err;
	if (tfs_object_parse(&o.obj, data, size, &err) != TFS_OK)
		return 0;
	size_t n = tfs_object_attr_count(o.obj) + 1;
	o.plain = calloc(n, sizeof(*o.plain));
	o.plain_len = calloc(n, sizeof(*o.plain_len));
	o.known = malloc(n * sizeof(*o.known));
	if (o.plain == NULL || o.plain_len == NULL || o.known == NULL)
		abort();
	memset(o.known, 1, n * sizeof(*o.known));
	o.cls = ulong_of(o.obj, 0x0);          /* CKA_CLASS */
	o.key_type = ulong_of(o.obj, 0x100);   /* CKA_KEY_TYPE */
	char desc[64], why[256];
	for (int priv = 0; priv < 2; priv++) {
		EVP_PKEY *pkey = NULL;
		int rc = priv ? tfs_xkey_private(&pkey, &o, desc, sizeof(desc), why, sizeof(why))
		              : tfs_xkey_public(&pkey, &o, desc, sizeof(desc), why, sizeof(why));
		if (rc != TFS_OK) {
			if (pkey != NULL || why[0] == '\0')
				abort(); /* a refusal always says why, and hands out nothing */
			continue;
		}
		tfs_xbuf b = {0};
		if (tfs_xenc_public(&b, pkey, false, &err) == TFS_OK)
			tfs_xbuf_free(&b);
		if (priv && tfs_xenc_private_pem(&b, pkey, NULL, 0, &err) == TFS_OK)
			tfs_xbuf_free(&b);
		EVP_PKEY_free(pkey);
	}
	free(o.plain);
	free(o.plain_len);
	free(o.known);
	tfs_object_free(o.obj);
	return 0;
}
