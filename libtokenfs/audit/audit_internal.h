/* Internals of the PIN audit shared by its files (and its unit tests). */
#ifndef TFS_AUDIT_INTERNAL_H
#define TFS_AUDIT_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/audit.h"

/* fastkdf.c: the KDF with an explicit round count; rounds of a salt; a
 * monotonic clock in seconds. */
void audit_kdf_rounds(uint8_t out[TFS_KEY_LEN], const uint8_t *pin, size_t pin_len,
                      const uint8_t salt[TFS_SALT_LEN], unsigned rounds);
/* Two KDFs at once, same salt: about 1.5 times the rate of one (fastkdf.c). */
void audit_kdf_rounds2(uint8_t out0[TFS_KEY_LEN], uint8_t out1[TFS_KEY_LEN], const uint8_t *pin0,
                       size_t len0, const uint8_t *pin1, size_t len1,
                       const uint8_t salt[TFS_SALT_LEN], unsigned rounds);
unsigned audit_rounds(const uint8_t salt[TFS_SALT_LEN]);
double audit_now(void);

/* check.c: the cheapest conclusive test of a master key against a blob,
 * one per thread (it keeps OpenSSL cipher contexts). */
typedef struct audit_checker audit_checker;
int audit_checker_new(audit_checker **out, const uint8_t blob[TFS_PIN_BLOB_LEN], tfs_error *err);
void audit_checker_free(audit_checker *c);
/* TFS_LAYOUT_CBC when the last CBC block unpads as the 35-byte "RJR"||key
 * plaintext does, TFS_LAYOUT_GCM when the GCM tag matches, else NONE. */
tfs_layout audit_check(audit_checker *c, const uint8_t mk[TFS_KEY_LEN]);

/* slice.c: runs fn over the indices [0, total) on `threads` threads. Each
 * thread claims the next `chunk` indices with one atomic add, so every
 * index goes to exactly one thread, and hands them to fn `lanes` at a time
 * (fewer at the end of a slice): fn(ctx, first, n) tries first..first+n-1
 * and returns true to stop every thread. */
typedef bool (*audit_index_fn)(void *thread_ctx, uint64_t first, unsigned n);
typedef struct audit_run {
	uint64_t total;
	unsigned threads, chunk;
	unsigned lanes;         /* 0 or 1: one index per call */
	void **thread_ctx;      /* one per thread */
	audit_index_fn fn;
	double max_seconds;     /* 0: none */
	const volatile sig_atomic_t *cancel;
	void (*progress)(void *ctx, const tfs_audit_progress *p);
	void *ctx;
	/* out */
	uint64_t done;
	double seconds;
	bool stopped_by_fn, timed_out, cancelled;
} audit_run;
int audit_run_threads(audit_run *r, tfs_error *err);

/* common_pins.c */
extern const char *const audit_common_pins[];
extern const size_t audit_common_pin_count;

#endif
