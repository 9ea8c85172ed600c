/* libFuzzer target: tfs_decode_name, X.501 Names (CKA_SUBJECT, CKA_ISSUER).
 * Invariants in fuzz_der_check.h. */
#include <stdint.h>

#include "fuzz_der_check.h"
#include "tokenfs/decode.h"

FUZZ_DER_TARGET(tfs_decode_name)
