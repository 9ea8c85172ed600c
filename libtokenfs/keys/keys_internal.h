/* Re-encryption steps shared by the writers (migrate, rekey). */
#ifndef TFS_KEYS_INTERNAL_H
#define TFS_KEYS_INTERNAL_H

#include <stdbool.h>

#include "tokenfs/keys.h"

/* A key object holding these bytes (for a key that no PIN unlocked yet: a
 * new token key). Free with tfs_token_key_free. */
int tfs_token_key_from_bytes(tfs_token_key **out, const uint8_t key[TFS_KEY_LEN],
                             tfs_layout layout, tfs_error *err);

/*
 * tfs_object_reencrypt, with choices: layout TFS_LAYOUT_NONE keeps each
 * value's own layout; when keep_in_layout, a value that is already in the
 * target layout is left as it is (for migrations under the same key).
 */
int tfs_object_reencrypt_values(tfs_object *obj, const tfs_token_key *from,
                                const uint8_t to_key[TFS_KEY_LEN], tfs_layout layout,
                                bool keep_in_layout, tfs_error *err);

/*
 * The check a writer makes before staging a rewritten object: `after` (the
 * new file's bytes) must parse, have before's attributes in the same order
 * with the same types and kinds, equal bytes wherever nothing is encrypted,
 * and every encrypted value must decrypt under after_key to exactly the
 * plaintext before's value has under before_key, in layout `layout` (NONE:
 * the layout before's value has).
 * TFS_E_DAMAGED names the first attribute that differs.
 */
int tfs_object_check_reencrypted(const tfs_object *before, const tfs_token_key *before_key,
                                 const uint8_t *after, size_t after_len,
                                 const uint8_t after_key[TFS_KEY_LEN], tfs_layout layout,
                                 tfs_error *err);

#endif
