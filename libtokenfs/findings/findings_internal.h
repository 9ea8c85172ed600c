/* A growable list of findings, filled by the store reader (and later the
 * verifier) and handed to tools read-only. */
#ifndef TFS_FINDINGS_INTERNAL_H
#define TFS_FINDINGS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"
#include "tokenfs/finding.h"

struct tfs_finding {
	const char *code; /* static string, see docs/findings.md */
	tfs_severity severity;
	char *path;
	uint64_t offset;
	char *message;
	char *object;   /* uuid, may be NULL */
	bool has_attr;
	uint64_t attr;
	char *old_value; /* an attribute's value before and after a change; NULL */
	char *new_value;
};

/* Where a finding is, for tfs_findings_addl. Unset members are NULL/false. */
typedef struct tfs_location {
	const char *path;
	uint64_t offset;   /* TFS_NO_OFFSET when none */
	const char *object;
	bool has_attr;
	uint64_t attr;
} tfs_location;

typedef struct tfs_findings {
	tfs_finding *items;
	size_t count;
	size_t cap;
} tfs_findings;

/* Appends a finding; returns TFS_OK or TFS_E_NOMEM. path may be NULL. */
int tfs_findings_add(tfs_findings *list, const char *code, tfs_severity sev,
                     const char *path, uint64_t offset, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Appends a finding with a full location. */
int tfs_findings_addl(tfs_findings *list, const char *code, tfs_severity sev,
                      const tfs_location *loc, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Appends an error value as a finding (location and message from err). */
int tfs_findings_add_error(tfs_findings *list, const char *code, tfs_severity sev,
                           const tfs_error *err);

/* Sets the old and new value (either may be NULL) of the last finding of a
 * non-empty list. TFS_OK or TFS_E_NOMEM. */
int tfs_findings_set_values(tfs_findings *list, const char *old_value, const char *new_value);

/* Moves every finding of src to the end of dst, leaving src empty.
 * TFS_E_NOMEM leaves both as they were. */
int tfs_findings_move(tfs_findings *dst, tfs_findings *src);

void tfs_findings_free(tfs_findings *list);

#endif
