/*
 * Secret keys whose length their algorithm does not allow. softhsm2-util
 * --import FILE --aes stores FILE as it is, so a key kept as hex text (64
 * hex digits and a newline) becomes a 65-byte "AES" key; SoftHSM 2.6.1
 * lists it and refuses every operation with it (C_EncryptInit:
 * CKR_MECHANISM_INVALID). The key is unusable, so this is an error.
 *
 * The value's own length decides when it is readable (plaintext, or
 * decrypted with a PIN). Without a PIN, CKA_VALUE_LEN (a plaintext ulong
 * SoftHSM fills on import and generation; 0 means "not recorded") tells.
 */
#include "verify/verify_internal.h"

#include <p11-kit/pkcs11.h>

static bool aes_length_ok(uint64_t n)
{
	return n == 16 || n == 24 || n == 32;
}

int tfs_check_key_length(tfs_vtoken *vt, const tfs_vobject *o)
{
	if (o->cls != CKO_SECRET_KEY || o->key_type != CKK_AES)
		return TFS_OK;
	size_t len;
	uint64_t value_len;
	if (tfs_vobject_bytes(o, CKA_VALUE, &len) != NULL) {
		if (len == 0 || aes_length_ok(len))
			return TFS_OK; /* empty: key.material-empty */
		return tfs_vfinding(vt, "key.bad-length", TFS_SEV_ERROR, o, CKA_VALUE,
		                    "an AES key of %zu bytes (AES takes 16, 24 or 32): SoftHSM "
		                    "refuses every operation with it. softhsm2-util --import --aes "
		                    "stores a file as it is, so a key kept as hex text makes this; "
		                    "import the binary key instead", len);
	}
	if (!tfs_vobject_ulong(o, CKA_VALUE_LEN, &value_len) || value_len == 0 ||
	    aes_length_ok(value_len))
		return TFS_OK;
	return tfs_vfinding(vt, "key.bad-length", TFS_SEV_ERROR, o, CKA_VALUE_LEN,
	                    "CKA_VALUE_LEN says an AES key of %llu bytes (AES takes 16, 24 or "
	                    "32): SoftHSM refuses every operation with it. softhsm2-util --import "
	                    "--aes stores a file as it is, so a key kept as hex text makes this; "
	                    "import the binary key instead", (unsigned long long)value_len);
}
