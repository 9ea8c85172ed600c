/* libFuzzer target: tfs_decode_public_key_info, SubjectPublicKeyInfo (CKA_PUBLIC_KEY_INFO).
 * Invariants in fuzz_der_check.h. */
#include <stdint.h>

#include "fuzz_der_check.h"
#include "tokenfs/decode.h"

FUZZ_DER_TARGET(tfs_decode_public_key_info)
