/* libFuzzer target: tfs_decode_integer, DER INTEGERs (CKA_SERIAL_NUMBER).
 * Invariants in fuzz_der_check.h. */
#include <stdint.h>

#include "fuzz_der_check.h"
#include "tokenfs/decode.h"

FUZZ_DER_TARGET(tfs_decode_integer)
