/* libFuzzer target: tfs_decode_certificate, X.509 certificates (CKA_VALUE of CKO_CERTIFICATE).
 * Invariants in fuzz_der_check.h. */
#include <stdint.h>

#include "fuzz_der_check.h"
#include "tokenfs/decode.h"

FUZZ_DER_TARGET(tfs_decode_certificate)
