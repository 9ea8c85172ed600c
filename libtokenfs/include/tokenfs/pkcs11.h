/*
 * PKCS#11 constants (CKA_LABEL, CKO_PRIVATE_KEY, CKK_EC, ...) for callers of
 * libtokenfs: attribute types and values in a store are PKCS#11's, so the
 * library does not define a second copy of them. They come from p11-kit's
 * maintained pkcs11.h (Debian: libp11-kit-dev), which tokenfs.pc requires.
 * SoftHSM's own vendor attributes of token.object are in tokenfs/names.h.
 */
#ifndef TOKENFS_PKCS11_H
#define TOKENFS_PKCS11_H

#include <p11-kit/pkcs11.h>

#endif
