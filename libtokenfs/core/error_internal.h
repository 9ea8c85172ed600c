/* Internal helpers to fill a tfs_error. */
#ifndef TFS_CORE_ERROR_INTERNAL_H
#define TFS_CORE_ERROR_INTERNAL_H

#include "tokenfs/error.h"

/* Sets code, offset and the defect text; returns code so callers can
 * `return tfs_error_set(...)`. err may be NULL. */
int tfs_error_set(tfs_error *err, int code, uint64_t offset, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets the location (file path, token) of an error already set; returns its code. */
int tfs_error_where(tfs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define tfs_nomem(err) tfs_error_set((err), TFS_E_NOMEM, TFS_NO_OFFSET, "out of memory")

#endif
