/* libFuzzer target: tfs_decode_ec_point, EC points, DER-wrapped or bare (CKA_EC_POINT).
 * Invariants in fuzz_der_check.h. */
#include <stdint.h>

#include "fuzz_der_check.h"
#include "tokenfs/decode.h"

FUZZ_DER_TARGET(tfs_decode_ec_point)
