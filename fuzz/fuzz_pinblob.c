/*
 * libFuzzer target: PIN-blob unwrapping. Input: byte 0 is the PIN length L,
 * the next L bytes (fewer if the input ends) the PIN, the rest the blob.
 * Unwrapping must never crash or read outside its input, must fail only as
 * a wrong PIN or a damaged blob and then leave a zeroed key; a key it does
 * unwrap must survive re-wrapping in the same layout.
 *
 * Every 72-byte input costs one KDF (1500 to 1755 SHA-256 rounds), so this
 * target runs slower than the parsers; other lengths return at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfs/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t zero[TFS_KEY_LEN];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t pin_len = data[0] < size - 1 ? data[0] : size - 1;
	const uint8_t *pin = data + 1;
	const uint8_t *blob = pin + pin_len;
	size_t blob_len = size - 1 - pin_len;

	uint8_t key[TFS_KEY_LEN];
	tfs_layout layout;
	tfs_error err;
	int rc = tfs_pinblob_unwrap(key, &layout, blob, blob_len, pin, pin_len, &err);
	if (rc != TFS_OK) {
		if ((rc != TFS_E_WRONG_PIN && rc != TFS_E_DAMAGED) || layout != TFS_LAYOUT_NONE ||
		    memcmp(key, zero, sizeof(key)) != 0 || err.what[0] == '\0' ||
		    strchr(err.what, '\n') != NULL)
			abort();
		return 0;
	}
	if (layout != TFS_LAYOUT_CBC && layout != TFS_LAYOUT_GCM)
		abort();
	uint8_t again[TFS_PIN_BLOB_LEN], key2[TFS_KEY_LEN];
	tfs_layout layout2;
	if (tfs_pinblob_wrap(again, layout, key, pin, pin_len, &err) != TFS_OK ||
	    tfs_pinblob_unwrap(key2, &layout2, again, sizeof(again), pin, pin_len, &err) != TFS_OK ||
	    layout2 != layout || memcmp(key, key2, sizeof(key)) != 0)
		abort();
	return 0;
}
