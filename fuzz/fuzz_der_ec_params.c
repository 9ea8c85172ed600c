/* libFuzzer target: tfs_decode_ec_params, EC parameters (CKA_EC_PARAMS).
 * Invariants in fuzz_der_check.h. */
#include <stdint.h>

#include "fuzz_der_check.h"
#include "tokenfs/decode.h"

FUZZ_DER_TARGET(tfs_decode_ec_params)
