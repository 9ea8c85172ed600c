/*
 * Findings: what libtokenfs noticed about a store that is not a plain fact of
 * its contents (damage, anomalies, unexpected entries). Each has a stable
 * code (docs/findings.md), a severity and a location. Tools only render them.
 */
#ifndef TOKENFS_FINDING_H
#define TOKENFS_FINDING_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tfs_severity {
	TFS_SEV_INFO = 0,
	TFS_SEV_WARNING = 1,
	TFS_SEV_ERROR = 2
} tfs_severity;

typedef struct tfs_finding tfs_finding;

/* A stable identifier such as "object.torn"; see docs/findings.md. */
const char *tfs_finding_code(const tfs_finding *f);
tfs_severity tfs_finding_severity(const tfs_finding *f);
/* Path of the file or directory concerned; never NULL (may be empty). */
const char *tfs_finding_path(const tfs_finding *f);
/* Byte offset in that file, or TFS_NO_OFFSET. */
uint64_t tfs_finding_offset(const tfs_finding *f);
/* One line a user can act on, without the location. */
const char *tfs_finding_message(const tfs_finding *f);
/* The uuid of the object concerned, or NULL. */
const char *tfs_finding_object(const tfs_finding *f);
/* The attribute concerned: true and *type set, or false. */
bool tfs_finding_attribute(const tfs_finding *f, uint64_t *type);
/* For a changed, added or removed attribute (seal checks, diff): its value
 * before and after, rendered as in the message (key material redacted unless
 * revealed); NULL for the side where it is absent, and for other findings. */
const char *tfs_finding_old_value(const tfs_finding *f);
const char *tfs_finding_new_value(const tfs_finding *f);

/* "info", "warning" or "error". */
const char *tfs_severity_name(tfs_severity sev);

#ifdef __cplusplus
}
#endif
#endif
