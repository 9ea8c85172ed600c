/* dump's views of an object, as key pairing reads them (pairing.h). */
#include "pairing.h"

#include <p11-kit/pkcs11.h>

typedef struct views {
	const tfs_object *obj;
	const dump_value *values;
} views;

/* The view of the last byte string of a type, or NULL. */
static const dump_value *view_of(const tfs_object *obj, const dump_value *values, uint64_t type)
{
	for (size_t k = tfs_object_attr_count(obj); k-- > 0;) {
		const tfs_attr *a = tfs_object_attr(obj, k);
		if (tfs_attr_type(a) == type && tfs_attr_kind(a) == TFS_KIND_BYTES)
			return &values[k];
	}
	return NULL;
}

/* The plaintext of the last attribute of a type, or NULL when unknown. */
static const uint8_t *value_of(void *ctx, uint64_t type, size_t *len)
{
	const views *v = ctx;
	const dump_value *d = view_of(v->obj, v->values, type);
	*len = 0;
	if (d == NULL || (d->encrypted && !d->decrypted))
		return NULL;
	*len = d->len;
	return d->bytes;
}

void dump_pairing_add(tfs_pairing *p, const char *uuid, const tfs_object *obj,
                      const dump_value *values, char *buf, size_t size)
{
	views v = {obj, values};
	tfs_pair_input in;
	tfs_pair_input_from_object(&in, uuid, obj, value_of, &v);
	if (in.ec_params != NULL) {
		/* dump decoded it already: naming the curve again cost as much as
		 * the rest of pairing. */
		const dump_value *d = view_of(obj, values, CKA_EC_PARAMS);
		in.curve_name = d->decoded != NULL ? tfs_decoded_get(d->decoded, "curve") : NULL;
	}
	(void)tfs_pairing_add(p, &in, buf, size);
}
