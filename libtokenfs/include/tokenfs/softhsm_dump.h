/*
 * The output of SoftHSM 2.6.1's softhsm2-dump-file, reproduced byte for byte
 * from a file's bytes (`tokenfs dump --format softhsm`), so that scripts
 * written against that tool keep working on stores tokenfs reads. File names
 * are escaped as tokenfs/text.h says; names SoftHSM itself makes print
 * unchanged.
 */
#ifndef TOKENFS_SOFTHSM_DUMP_H
#define TOKENFS_SOFTHSM_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes to out exactly what softhsm2-dump-file 2.6.1 prints on stdout for a
 * file holding these bytes, when invoked with `path` as its argument
 * (including its behaviour on truncated and malformed files). */
void tfs_softhsm_dump(FILE *out, const char *path, const uint8_t *data, size_t size);

/* Whether what tfs_softhsm_dump prints for these bytes would show key
 * material (a secret or private key value, or one in an attribute map),
 * stored encrypted or not: dump asks for --reveal before printing it. A
 * file that does not parse counts when a key-material type appears in it. */
bool tfs_softhsm_shows_key_material(const uint8_t *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
