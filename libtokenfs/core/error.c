/* Error values: see tokenfs/error.h. */
#include "core/error_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void tfs_error_clear(tfs_error *err)
{
	if (err == NULL)
		return;
	err->code = TFS_OK;
	err->offset = TFS_NO_OFFSET;
	err->where[0] = '\0';
	err->what[0] = '\0';
}

int tfs_error_set(tfs_error *err, int code, uint64_t offset, const char *fmt, ...)
{
	if (err == NULL)
		return code;
	err->code = code;
	err->offset = offset;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->what, sizeof(err->what), fmt, ap);
	va_end(ap);
	return code;
}

int tfs_error_where(tfs_error *err, const char *fmt, ...)
{
	if (err == NULL)
		return TFS_OK;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->where, sizeof(err->where), fmt, ap);
	va_end(ap);
	return err->code;
}

const char *tfs_error_format(const tfs_error *err, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (err == NULL)
		return buf;
	size_t n = 0;
	if (err->where[0] != '\0')
		n += (size_t)snprintf(buf, size, "%s: ", err->where);
	if (n < size && err->offset != TFS_NO_OFFSET)
		n += (size_t)snprintf(buf + n, size - n, "offset %" PRIu64 ": ", err->offset);
	if (n < size)
		snprintf(buf + n, size - n, "%s",
		         err->what[0] != '\0' ? err->what : tfs_status_name(err->code));
	return buf;
}

const char *tfs_status_name(int code)
{
	switch (code) {
	case TFS_OK: return "ok";
	case TFS_E_NOMEM: return "out of memory";
	case TFS_E_IO: return "i/o error";
	case TFS_E_FORMAT: return "format error";
	case TFS_E_LIMIT: return "limit exceeded";
	case TFS_E_LOCKED: return "locked";
	case TFS_E_NOTFOUND: return "not found";
	case TFS_E_INVALID: return "invalid argument";
	case TFS_E_EMPTY: return "empty file";
	case TFS_E_WRONG_PIN: return "wrong PIN";
	case TFS_E_DAMAGED: return "damaged";
	case TFS_E_CRYPTO: return "crypto failure";
	case TFS_E_TRUNCATED: return "truncated";
	default: return "unknown error";
	}
}
