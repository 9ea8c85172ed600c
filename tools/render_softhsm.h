/*
 * `tokenfs dump --format softhsm`: the output of SoftHSM 2.6.1's
 * softhsm2-dump-file, reproduced byte for byte from the file's bytes, so that
 * scripts written against that tool keep working on stores tokenfs reads.
 */
#ifndef TFS_TOOLS_RENDER_SOFTHSM_H
#define TFS_TOOLS_RENDER_SOFTHSM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes to out exactly what softhsm2-dump-file 2.6.1 prints on stdout for a file
 * holding these bytes, when invoked with `path` as its argument (including its
 * behaviour on truncated and malformed files). */
void tfs_render_softhsm(FILE *out, const char *path, const uint8_t *data, size_t size);

/* Whether what tfs_render_softhsm prints for these bytes would show key
 * material (a secret or private key value, or one in an attribute map),
 * stored encrypted or not: dump asks for --reveal before printing it. A
 * file that does not parse counts when a key-material type appears in it. */
#include <stdbool.h>
bool tfs_softhsm_shows_key_material(const uint8_t *data, size_t size);

#endif
