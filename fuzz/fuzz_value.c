/*
 * libFuzzer target: attribute-value decryption under a fixed token key (the
 * key of testdata/crypto/value.vec, so the seeds decrypt). Decryption must
 * never crash or read outside its input; a value it accepts must survive
 * re-encryption in the layout found, giving back the same plaintext.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfs/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* scripts/make-crypto-vectors.py, VALUE_KEY_LABEL */
static const uint8_t key[TFS_KEY_LEN] = {
	0xdc, 0xf0, 0x20, 0xcf, 0xd1, 0x54, 0x4e, 0xc1, 0xb7, 0x47, 0x8a, 0xed, 0x59, 0x29, 0x0a, 0x92,
	0xbc, 0x69, 0xc6, 0x87, 0x50, 0xa1, 0xee, 0xe6, 0xd7, 0xea, 0xe6, 0x10, 0x60, 0xe2, 0xef, 0x8f,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *pt = NULL, *ct = NULL, *back = NULL;
	size_t pt_len = 0, ct_len = 0, back_len = 0;
	tfs_layout layout, layout2;
	tfs_error err;

	int rc = tfs_value_decrypt(&pt, &pt_len, &layout, key, data, size, &err);
	if (rc != TFS_OK) {
		if (rc != TFS_E_DAMAGED || pt != NULL || layout != TFS_LAYOUT_NONE)
			abort();
		return 0;
	}
	/* GCM adds 32 bytes; CBC 16 bytes of IV and 1 to 16 of padding. */
	if (layout == TFS_LAYOUT_GCM ? pt_len + 32 != size
	                             : layout != TFS_LAYOUT_CBC || pt_len + 17 > size ||
	                               pt_len + 32 < size)
		abort();
	if (tfs_value_encrypt(&ct, &ct_len, layout, key, pt, pt_len, &err) != TFS_OK)
		abort();
	if (tfs_value_decrypt(&back, &back_len, &layout2, key, ct, ct_len, &err) != TFS_OK ||
	    layout2 != layout || back_len != pt_len ||
	    (pt_len > 0 && memcmp(back, pt, pt_len) != 0))
		abort();
	tfs_secure_free(pt, pt_len);
	tfs_secure_free(back, back_len);
	free(ct);
	return 0;
}
