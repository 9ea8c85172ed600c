/*
 * PKCS#11 URIs (RFC 7512) of tokens and objects, as SoftHSM shows them to
 * the programs that name keys by URI (p11tool, OpenSSL's pkcs11 engine and
 * provider, Knot, BIND, OpenDNSSEC):
 *
 *   pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=...;token=...
 *   pkcs11:...;token=...;id=%01%02;object=my%20key;type=private
 *
 * The token part is what SoftHSM's C_GetTokenInfo reports (its constant
 * model and manufacturer, the label and serial of token.object); the object
 * part is CKA_ID, CKA_LABEL and CKA_CLASS as C_GetAttributeValue returns
 * them. The string is formatted by p11-kit (p11_kit_uri_format), the code
 * GnuTLS's p11tool formats with, so it is the same string p11tool prints:
 * the same attribute order, upper-case %XX, and only A-Z a-z 0-9 - _ .
 * left verbatim in text (an ID is always fully percent-encoded). An empty
 * label or ID is left out, as p11tool does.
 *
 * Ownership: *out is a NUL-terminated string the caller frees with free().
 */
#ifndef TOKENFS_URI_H
#define TOKENFS_URI_H

#include "tokenfs/error.h"
#include "tokenfs/keys.h"
#include "tokenfs/object.h"
#include "tokenfs/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The token's URI: model, manufacturer, serial and token (label). Errors:
 * TFS_E_NOTFOUND when the token has no readable token.object (its label and
 * serial are unknown), TFS_E_NOMEM.
 */
int tfs_token_uri(char **out, const tfs_token *tok, tfs_error *err);

/*
 * The URI of obj, an object of tok: the token's part, then id, object and
 * type. In a private object (CKA_PRIVATE true) CKA_LABEL and CKA_ID are
 * stored encrypted: they are decrypted with key, the token key unlocked with
 * a PIN (tokenfs/keys.h), which like tfs_token_key_decrypt must not be in
 * use in another thread meanwhile; key may be NULL when the object is not
 * private.
 * Errors: TFS_E_INVALID when a non-empty label or ID is encrypted and key is
 * NULL (no URI without it: one that left them out would name other objects
 * too), TFS_E_DAMAGED when it does not decrypt with key, TFS_E_NOTFOUND when
 * the token's label and serial are unknown, TFS_E_NOMEM (also when memory
 * ran out while decrypting), TFS_E_CRYPTO (OpenSSL failed). tokenfs wipes its
 * decrypted copies of the label and ID; p11-kit frees its own without
 * wiping, and the URI holds them in clear: they are identifiers, not key
 * material, but a caller that wants no trace wipes the string before free().
 */
int tfs_object_uri(char **out, const tfs_token *tok, const tfs_object *obj,
                   const tfs_token_key *key, tfs_error *err);

#ifdef __cplusplus
}
#endif
#endif
