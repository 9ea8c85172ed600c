/*
 * dump's use of the library's key pairing (tokenfs/pairing.h): the walk's
 * plaintext views of one object become a tfs_pair_input.
 */
#ifndef TFS_TOOLS_PAIRING_H
#define TFS_TOOLS_PAIRING_H

#include "dump.h"

/* Writes a one-line summary of obj into buf and records it in p (which may
 * be NULL: summary only). uuid must outlive p. */
void dump_pairing_add(tfs_pairing *p, const char *uuid, const tfs_object *obj,
                      const dump_value *values, char *buf, size_t size);

#endif
