/* libFuzzer target: the object-file parser, then the serializer, which must
 * give back exactly the input for every file the parser accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfs/object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tfs_object *obj = NULL;
	tfs_error err;
	if (tfs_object_parse(&obj, data, size, &err) != TFS_OK)
		return 0;
	uint8_t *out = NULL;
	size_t out_size = 0;
	if (tfs_object_serialize(obj, &out, &out_size, &err) == TFS_OK) {
		if (out_size != size || memcmp(out, data, size) != 0)
			abort(); /* the round trip must be exact */
		free(out);
	}
	for (size_t i = 0; i < tfs_object_attr_count(obj); i++) {
		const tfs_attr *a = tfs_object_attr(obj, i);
		size_t len;
		(void)tfs_attr_bytes(a, &len);
		for (size_t j = 0; j < tfs_attr_mech_count(a); j++)
			(void)tfs_attr_mech(a, j);
	}
	tfs_object_free(obj);
	return 0;
}
