/*
 * Errors as values. Every fallible libtokenfs function returns 0 (TFS_OK) or
 * a negative tfs_status, and fills a caller-owned tfs_error with a one-line
 * message that names the location, the byte offset and the defect.
 */
#ifndef TOKENFS_ERROR_H
#define TOKENFS_ERROR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tfs_status {
	TFS_OK = 0,
	TFS_E_NOMEM = -1,     /* out of memory */
	TFS_E_IO = -2,        /* a file could not be opened, read or listed */
	TFS_E_FORMAT = -3,    /* bytes that do not follow the SoftHSM format */
	TFS_E_LIMIT = -4,     /* a size or count beyond libtokenfs's caps */
	TFS_E_LOCKED = -5,    /* another process held a write lock too long */
	TFS_E_NOTFOUND = -6,  /* no such token, object or attribute */
	TFS_E_INVALID = -7,   /* a bad argument from the caller */
	TFS_E_EMPTY = -8,     /* a zero-byte object file (SoftHSM skips it) */
	TFS_E_WRONG_PIN = -9, /* the PIN does not unwrap its blob */
	TFS_E_DAMAGED = -10,  /* ciphertext that fits no known layout */
	TFS_E_CRYPTO = -11,   /* OpenSSL failed where it should not */
	TFS_E_TRUNCATED = -12 /* the bytes end before the structure does: a cut or torn file */
} tfs_status;

/* Offset value meaning "no byte offset applies". */
#define TFS_NO_OFFSET UINT64_MAX

typedef struct tfs_error {
	int code;          /* a tfs_status */
	uint64_t offset;   /* byte offset of the defect, or TFS_NO_OFFSET */
	char where[512];   /* the file or token the defect is in; may be empty */
	char what[512];    /* the defect itself, without location */
} tfs_error;

/* Resets err to TFS_OK with empty texts. err may be NULL. */
void tfs_error_clear(tfs_error *err);

/*
 * Writes "where: offset N: what" (parts that are unset are left out) into
 * buf and returns buf. Never fails; the text is cut to fit.
 */
const char *tfs_error_format(const tfs_error *err, char *buf, size_t size);

/* A short stable name of a status code, such as "format" or "wrong-pin". */
const char *tfs_status_name(int code);

#ifdef __cplusplus
}
#endif
#endif
