/*
 * libFuzzer target: tfs_decode_attribute, the dispatcher. The first byte
 * picks the attribute type, the second the object class and certificate or
 * key type, the rest is the value; so CK_DATE, the raw modulus and the
 * Edwards/Montgomery key-type hints for CKA_EC_POINT are fuzzed too.
 */
#include <stdint.h>

#include "fuzz_der_check.h"
#include "tokenfs/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t types[] = {
	0x11,  /* CKA_VALUE */
	0x101, /* CKA_SUBJECT */
	0x81,  /* CKA_ISSUER */
	0x82,  /* CKA_SERIAL_NUMBER */
	0x129, /* CKA_PUBLIC_KEY_INFO */
	0x180, /* CKA_EC_PARAMS */
	0x181, /* CKA_EC_POINT */
	0x120, /* CKA_MODULUS */
	0x110, /* CKA_START_DATE */
	0x111, /* CKA_END_DATE */
	0x3,   /* CKA_LABEL: no decoder */
};

static const struct {
	uint64_t cls, sub;
} objects[] = {
	{1, 0},                  /* certificate, CKC_X_509 */
	{1, 1},                  /* certificate, CKC_X_509_ATTR_CERT */
	{2, 3},                  /* public key, CKK_EC */
	{2, 0x40},               /* public key, CKK_EC_EDWARDS */
	{2, 0x41},               /* public key, CKK_EC_MONTGOMERY */
	{2, 0},                  /* public key, CKK_RSA */
	{0, TFS_DECODE_NO_TYPE}, /* data object */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint64_t type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	size_t o = data[1] % (sizeof(objects) / sizeof(objects[0]));
	tfs_decoded *d = NULL;
	tfs_error err;
	tfs_error_clear(&err);
	int rc = tfs_decode_attribute(&d, type, objects[o].cls, objects[o].sub, data + 2, size - 2,
	                              &err);
	fuzz_der_check(rc, d, &err);
	return 0;
}
