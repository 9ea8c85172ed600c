/*
 * PIN audit: how long a token's PINs survive an offline attack on a copy of
 * its files, and recovery of a forgotten PIN by its owner.
 *
 * A SoftHSM PIN blob is checked offline with 1500 to 1755 SHA-256 rounds
 * (docs/format.md, "Keys and encryption") and, unlike a hardware token,
 * nothing counts failed tries. This module tries candidate PINs against one
 * blob at the speed of the machine's SHA-256 compression function, on
 * several threads, and reports what it covered and at what rate.
 *
 * Candidates come from an ordered list of spaces (tfs_audit_spaces): the
 * built-in list of common and default PINs, all-digit PINs of one length, a
 * wordlist, a hashcat-style mask. A search walks them in the order they were
 * added. Candidate PINs are never logged; every buffer that held one is wiped.
 */
#ifndef TOKENFS_AUDIT_H
#define TOKENFS_AUDIT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenfs/crypto.h"
#include "tokenfs/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest candidate (SoftHSM takes PINs of 4 to 255 bytes). */
#define TFS_AUDIT_PIN_MAX 255

typedef enum tfs_audit_kind {
	TFS_AUDIT_COMMON = 1,   /* the built-in list of common and default PINs */
	TFS_AUDIT_DIGITS = 2,   /* every all-digit PIN of one length */
	TFS_AUDIT_WORDLIST = 3, /* the lines of a wordlist */
	TFS_AUDIT_MASK = 4      /* a hashcat-style mask of one length */
} tfs_audit_kind;

/* "common", "digits", "wordlist", "mask". */
const char *tfs_audit_kind_name(tfs_audit_kind kind);

typedef struct tfs_audit_spaces tfs_audit_spaces;

int tfs_audit_spaces_new(tfs_audit_spaces **out, tfs_error *err);
/* Wipes the wordlists it copied and frees. Accepts NULL. */
void tfs_audit_spaces_free(tfs_audit_spaces *s);

/* The built-in list (audit/common_pins.c documents where each comes from). */
int tfs_audit_spaces_add_common(tfs_audit_spaces *s, tfs_error *err);
/* Every all-digit PIN of `length` digits (1 to 19), "0000" to "9999" for 4. */
int tfs_audit_spaces_add_digits(tfs_audit_spaces *s, unsigned length, tfs_error *err);
/*
 * The lines of a wordlist in memory: lines end at '\n' (a '\r' before it is
 * dropped); lines shorter than min_len or longer than max_len bytes are
 * skipped. The bytes are copied (and wiped on free); the caller may wipe
 * its own copy at once. TFS_E_INVALID when no line is left.
 */
int tfs_audit_spaces_add_wordlist(tfs_audit_spaces *s, const uint8_t *data, size_t size,
                                  size_t min_len, size_t max_len, tfs_error *err);
/*
 * A hashcat-style mask: ?d digits, ?l a-z, ?u A-Z, ?s the 33 printable
 * ASCII specials (space included), ?a all four, ?? a literal '?', any other
 * byte itself. One space per candidate length from min_len to max_len (the
 * mask's prefixes of that length), clipped to the mask's length; pass 0 and
 * 0 for the whole mask only. TFS_E_INVALID names the offset of a bad "?x".
 */
int tfs_audit_spaces_add_mask(tfs_audit_spaces *s, const char *mask, size_t min_len,
                              size_t max_len, tfs_error *err);

size_t tfs_audit_space_count(const tfs_audit_spaces *s);
tfs_audit_kind tfs_audit_space_kind(const tfs_audit_spaces *s, size_t i);
/* Candidate length of a digits or mask space; 0 for the lists. */
unsigned tfs_audit_space_length(const tfs_audit_spaces *s, size_t i);
/* The mask (prefix) of a mask space, else NULL. Borrowed. */
const char *tfs_audit_space_mask(const tfs_audit_spaces *s, size_t i);
/* Number of candidates: exact as a double (which may exceed 2^64 for a mask). */
double tfs_audit_space_size(const tfs_audit_spaces *s, size_t i);
/* Candidates a search walks: the sum of the sizes, saturated at UINT64_MAX. */
uint64_t tfs_audit_spaces_total(const tfs_audit_spaces *s);
/*
 * The candidate at global index `index` (spaces in order): writes it to buf
 * (TFS_AUDIT_PIN_MAX bytes), its length to *len and its space to *space.
 * False past the end. The caller wipes buf.
 */
bool tfs_audit_spaces_candidate(const tfs_audit_spaces *s, uint64_t index, uint8_t *buf,
                                size_t *len, size_t *space);

/* The number of candidates of a mask, without a spaces object. */
int tfs_audit_mask_size(double *out, const char *mask, tfs_error *err);

typedef struct tfs_audit_progress {
	uint64_t done, total; /* candidates */
	double seconds;       /* since the search started */
	double rate;          /* guesses per second so far, all threads */
} tfs_audit_progress;

typedef struct tfs_audit_options {
	unsigned threads;   /* 0: one per online core */
	double max_seconds; /* stop after this long; 0: no limit */
	/* When the search ends sooner than this (found, or the spaces were
	 * small), the rate is measured on for the rest of this time with
	 * throw-away candidates, so that estimates rest on a real sample. */
	double min_rate_seconds;
	/* Set by the caller's SIGINT handler; the search stops within 0.1 s.
	 * Worker threads block every signal, so the handler runs on the
	 * calling thread. May be NULL. */
	const volatile sig_atomic_t *cancel;
	/* Called on the calling thread about ten times a second. May be NULL. */
	void (*progress)(void *ctx, const tfs_audit_progress *p);
	void *ctx;
	/* Candidates a thread claims at a time; 0: the default (16). */
	unsigned chunk;
} tfs_audit_options;

typedef struct tfs_audit_result {
	bool found;
	uint8_t *pin;         /* the PIN found; freed (wiped) by tfs_audit_result_clear */
	size_t pin_len;
	size_t space;         /* the space that held it */
	tfs_layout layout;    /* of the blob, known once the PIN is found */
	unsigned rounds;      /* KDF rounds of this blob: 1500 + salt[7] */
	unsigned threads;
	bool exhausted;       /* every candidate tried */
	bool timed_out;       /* stopped by max_seconds */
	bool cancelled;       /* stopped by *cancel */
	uint64_t tried;       /* candidates tried */
	uint64_t *tried_in;   /* per space, tfs_audit_space_count entries */
	size_t nspaces;
	double seconds;       /* of the search */
	double rate;          /* guesses per second, all threads, over rate_candidates */
	uint64_t rate_candidates; /* tried + throw-away candidates of the rate sample */
	double rate_seconds;
} tfs_audit_result;

/*
 * Tries the candidates of s, in order, against one 72-byte PIN blob until
 * one unwraps it, all were tried, max_seconds passed or *cancel was set.
 * Each thread claims the next chunk of candidates in turn, so every
 * candidate is tried by exactly one thread. A hit of the fast check (CBC
 * padding of the last block, or the GCM tag) is confirmed by
 * tfs_pinblob_unwrap before it counts. The caller clears *out with
 * tfs_audit_result_clear, also after an error.
 */
int tfs_audit_search(tfs_audit_result *out, const uint8_t *blob, size_t blob_len,
                     const tfs_audit_spaces *s, const tfs_audit_options *opts, tfs_error *err);
void tfs_audit_result_clear(tfs_audit_result *r);

/* Time for a whole space at `rate` guesses per second (INFINITY at rate 0). */
double tfs_audit_seconds(double size, double rate);

/*
 * The verdict at a rate: for each limit (an hour, a day, a year), the
 * longest all-digit length (up to 19) whose whole space falls in that time,
 * 0 when not even 4 digits do.
 */
typedef enum { TFS_AUDIT_HOUR = 0, TFS_AUDIT_DAY = 1, TFS_AUDIT_YEAR = 2 } tfs_audit_limit;
extern const double tfs_audit_limit_seconds[3];
unsigned tfs_audit_digits_within(double rate, double seconds);

/*
 * The fast KDF: the same master key as tfs_kdf (rounds = 1500 + salt[7]),
 * computed with OpenSSL's SHA-256 block function so that every round after
 * the first costs one compression. Exposed for tests and benchmarks.
 */
void tfs_audit_kdf(uint8_t out[TFS_KEY_LEN], const uint8_t *pin, size_t pin_len,
                   const uint8_t salt[TFS_SALT_LEN]);

/*
 * SHA-256 compressions per second of this machine, one thread: a loop over
 * OpenSSL's block function (the one tfs_audit_kdf uses) for `seconds`, on
 * one chain of blocks (each compression waits for the one before, as in a
 * KDF) or on two interleaved chains (the CPU overlaps them, as the search
 * does with two candidates per thread).
 */
double tfs_audit_compression_rate(double seconds, unsigned chains);

#ifdef __cplusplus
}
#endif
#endif
