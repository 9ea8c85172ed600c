/* dump's views of an object, as key pairing reads them (pairing.h). */
#include "pairing.h"

#include <p11-kit/pkcs11.h>

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
static const uint8_t *value_of(const tfs_object *obj, const dump_value *values, uint64_t type,
                               size_t *len)
{
	const dump_value *v = view_of(obj, values, type);
	*len = 0;
	if (v == NULL || (v->encrypted && !v->decrypted))
		return NULL;
	*len = v->len;
	return v->bytes;
}

static uint64_t ulong_of(const tfs_object *obj, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : UINT64_MAX;
}

void dump_pairing_add(tfs_pairing *p, const char *uuid, const tfs_object *obj,
                      const dump_value *values, char *buf, size_t size)
{
	tfs_pair_input in = {.uuid = uuid, .object_class = ulong_of(obj, CKA_CLASS),
	                     .key_type = ulong_of(obj, CKA_KEY_TYPE),
	                     .value_len = ulong_of(obj, CKA_VALUE_LEN)};
	in.id = value_of(obj, values, CKA_ID, &in.id_len);
	in.label = value_of(obj, values, CKA_LABEL, &in.label_len);
	in.modulus = value_of(obj, values, CKA_MODULUS, &in.modulus_len);
	in.ec_point = value_of(obj, values, CKA_EC_POINT, &in.ec_point_len);
	in.ec_params = value_of(obj, values, CKA_EC_PARAMS, &in.ec_params_len);
	if (in.ec_params != NULL) {
		/* dump decoded it already: naming the curve again cost as much as
		 * the rest of pairing. */
		const dump_value *v = view_of(obj, values, CKA_EC_PARAMS);
		in.curve_name = v->decoded != NULL ? tfs_decoded_get(v->decoded, "curve") : NULL;
	}
	if (in.object_class == CKO_CERTIFICATE)
		in.cert = value_of(obj, values, CKA_VALUE, &in.cert_len);
	tfs_pairing_add(p, &in, buf, size);
}
