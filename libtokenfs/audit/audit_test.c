/* pin-audit's engine: the fast KDF against tfs_kdf, slicing that covers every
 * candidate exactly once, masks, wordlists, and searches on real blobs made
 * by tfs_pinblob_wrap in both layouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/rand.h>

#include "audit/audit_internal.h"
#include "tokenfs/audit.h"

/* 10,000 random PINs (lengths 0 to 255, so one- and multi-block first
 * hashes) and random salts (every round count from 1500 to 1755), through
 * the one-lane and the two-lane fast KDF. */
static void test_fast_kdf_equals_tfs_kdf(void **state)
{
	(void)state;
	uint8_t pin[256], prev[256], salt[TFS_SALT_LEN], a[TFS_KEY_LEN], b[TFS_KEY_LEN], r[2];
	size_t prev_len = 0;
	bool rounds_seen[256] = {false};
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(RAND_bytes(r, 2), 1);
		/* mostly PIN-like lengths, every 8th anywhere up to 255 */
		size_t len = (i % 8 == 7) ? r[0] : r[0] % 48;
		assert_int_equal(RAND_bytes(pin, sizeof(pin)), 1);
		assert_int_equal(RAND_bytes(salt, sizeof(salt)), 1);
		rounds_seen[salt[7]] = true;
		tfs_error err;
		assert_int_equal(tfs_kdf(a, pin, len, salt, &err), TFS_OK);
		tfs_audit_kdf(b, pin, len, salt);
		if (memcmp(a, b, TFS_KEY_LEN) != 0)
			fail_msg("PIN %d (length %zu, salt[7] %u): fast KDF differs", i, len, salt[7]);
		/* the two-lane KDF the search runs, on this PIN beside the previous
		 * one: lane 1 against tfs_kdf, lane 0 against the one-lane fast
		 * KDF (itself checked against tfs_kdf on every PIN) */
		if (i > 0) {
			uint8_t c0[TFS_KEY_LEN], c1[TFS_KEY_LEN];
			audit_kdf_rounds2(c0, c1, prev, prev_len, pin, len, salt, 1500u + salt[7]);
			if (memcmp(c1, a, TFS_KEY_LEN) != 0)
				fail_msg("PIN %d: two-lane KDF differs in lane 1", i);
			tfs_audit_kdf(b, prev, prev_len, salt);
			if (memcmp(c0, b, TFS_KEY_LEN) != 0)
				fail_msg("PIN %d: two-lane KDF differs in lane 0", i);
		}
		memcpy(prev, pin, sizeof(prev));
		prev_len = len;
	}
	int distinct = 0;
	for (int i = 0; i < 256; i++)
		distinct += rounds_seen[i];
	assert_true(distinct > 200); /* the round count really varied */
	/* the two ends of the round range, and the empty PIN */
	for (int last = 0; last < 256; last += 255) {
		memset(salt, 0x5a, sizeof(salt));
		salt[7] = (uint8_t)last;
		tfs_error err;
		assert_int_equal(tfs_kdf(a, (const uint8_t *)"", 0, salt, &err), TFS_OK);
		tfs_audit_kdf(b, (const uint8_t *)"", 0, salt);
		assert_memory_equal(a, b, TFS_KEY_LEN);
	}
}

typedef struct counting {
	_Atomic uint32_t *hits;
	uint64_t stop_at; /* UINT64_MAX: never */
} counting;

static bool count_index(void *ctx, uint64_t first, unsigned n)
{
	counting *c = ctx;
	bool stop = false;
	for (uint64_t i = first; i < first + n; i++) {
		atomic_fetch_add(&c->hits[i], 1);
		stop |= i == c->stop_at;
	}
	return stop;
}

/* Every index [0, total) is handed out exactly once, for thread counts and
 * chunk sizes that do and do not divide the total. */
static void test_slices_cover_each_index_once(void **state)
{
	(void)state;
	const uint64_t total = 100003;
	_Atomic uint32_t *hits = calloc(total, sizeof(*hits));
	assert_non_null(hits);
	unsigned threads[] = {1, 2, 3, 7, 16};
	unsigned chunks[] = {1, 7, 64, 1000, 200000};
	for (size_t ti = 0; ti < 5; ti++)
		for (size_t ci = 0; ci < 5; ci++) {
			for (uint64_t i = 0; i < total; i++)
				atomic_init(&hits[i], 0);
			counting c = {.hits = hits, .stop_at = UINT64_MAX};
			void *ctxs[16];
			for (unsigned k = 0; k < 16; k++)
				ctxs[k] = &c;
			audit_run r = {.total = total, .threads = threads[ti], .chunk = chunks[ci],
			               .lanes = 1 + (ci % 2), .thread_ctx = ctxs, .fn = count_index};
			tfs_error err;
			assert_int_equal(audit_run_threads(&r, &err), TFS_OK);
			assert_int_equal(r.done, total);
			uint64_t once = 0;
			for (uint64_t i = 0; i < total; i++)
				once += atomic_load(&hits[i]) == 1;
			if (once != total)
				fail_msg("%u threads, chunk %u: %llu of %llu indices tried exactly once",
				         threads[ti], chunks[ci], (unsigned long long)once,
				         (unsigned long long)total);
		}
	/* A stop: nothing tried twice, and `done` counts exactly what was tried. */
	for (uint64_t i = 0; i < total; i++)
		atomic_init(&hits[i], 0);
	counting c = {.hits = hits, .stop_at = 5000};
	void *ctxs[4] = {&c, &c, &c, &c};
	audit_run r = {.total = total, .threads = 4, .chunk = 64, .thread_ctx = ctxs,
	               .fn = count_index};
	tfs_error err;
	assert_int_equal(audit_run_threads(&r, &err), TFS_OK);
	assert_true(r.stopped_by_fn);
	uint64_t tried = 0;
	for (uint64_t i = 0; i < total; i++) {
		assert_true(atomic_load(&hits[i]) <= 1);
		tried += atomic_load(&hits[i]);
	}
	assert_int_equal(tried, r.done);
	assert_true(tried < total);
	free(hits);
}

/* The candidates (not only the indices) of real spaces, walked by 3
 * threads: every value of ?d?d?d?d and of a 5-position mask exactly once. */
typedef struct cand_count {
	const tfs_audit_spaces *s;
	_Atomic uint32_t *digits4; /* by value */
	_Atomic uint32_t *mask;    /* by value */
	_Atomic uint32_t other;
} cand_count;

static void count_one_candidate(cand_count *c, uint64_t index)
{
	uint8_t buf[TFS_AUDIT_PIN_MAX];
	size_t len, sp;
	assert_true(tfs_audit_spaces_candidate(c->s, index, buf, &len, &sp));
	if (tfs_audit_space_kind(c->s, sp) == TFS_AUDIT_DIGITS) {
		assert_int_equal(len, 4);
		unsigned v = 0;
		for (size_t i = 0; i < 4; i++) {
			assert_true(buf[i] >= '0' && buf[i] <= '9');
			v = v * 10 + (unsigned)(buf[i] - '0');
		}
		atomic_fetch_add(&c->digits4[v], 1);
	} else if (tfs_audit_space_kind(c->s, sp) == TFS_AUDIT_MASK) {
		/* ?u?l?d-?d: 26 * 26 * 10 * 10 */
		assert_int_equal(len, 5);
		assert_true(buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z');
		assert_int_equal(buf[3], '-');
		unsigned v = ((unsigned)(buf[0] - 'A') * 26 + (unsigned)(buf[1] - 'a')) * 100 +
		             (unsigned)(buf[2] - '0') * 10 + (unsigned)(buf[4] - '0');
		atomic_fetch_add(&c->mask[v], 1);
	} else {
		atomic_fetch_add(&c->other, 1);
	}
}

static bool count_candidate(void *ctx, uint64_t first, unsigned n)
{
	for (uint64_t i = first; i < first + n; i++)
		count_one_candidate(ctx, i);
	return false;
}

static void test_candidates_each_once(void **state)
{
	(void)state;
	tfs_audit_spaces *s;
	tfs_error err;
	assert_int_equal(tfs_audit_spaces_new(&s, &err), TFS_OK);
	assert_int_equal(tfs_audit_spaces_add_common(s, &err), TFS_OK);
	assert_int_equal(tfs_audit_spaces_add_digits(s, 4, &err), TFS_OK);
	const char words[] = "alpha\nbeta\r\ngamma";
	assert_int_equal(tfs_audit_spaces_add_wordlist(s, (const uint8_t *)words, strlen(words), 1,
	                                               255, &err), TFS_OK);
	assert_int_equal(tfs_audit_spaces_add_mask(s, "?u?l?d-?d", 0, 0, &err), TFS_OK);
	uint64_t total = tfs_audit_spaces_total(s);
	size_t common = (size_t)tfs_audit_space_size(s, 0);
	assert_int_equal(total, common + 10000 + 3 + 67600);

	cand_count c = {.s = s, .digits4 = calloc(10000, sizeof(uint32_t)),
	                .mask = calloc(67600, sizeof(uint32_t))};
	atomic_init(&c.other, 0);
	void *ctxs[3] = {&c, &c, &c};
	audit_run r = {.total = total, .threads = 3, .chunk = 61, .lanes = 2, .thread_ctx = ctxs,
	               .fn = count_candidate};
	assert_int_equal(audit_run_threads(&r, &err), TFS_OK);
	assert_int_equal(r.done, total);
	for (unsigned v = 0; v < 10000; v++)
		assert_int_equal(atomic_load(&c.digits4[v]), 1);
	for (unsigned v = 0; v < 67600; v++)
		assert_int_equal(atomic_load(&c.mask[v]), 1);
	assert_int_equal(atomic_load(&c.other), common + 3);
	free((void *)c.digits4);
	free((void *)c.mask);
	tfs_audit_spaces_free(s);
}

static void expect_candidate(const tfs_audit_spaces *s, uint64_t i, const char *want)
{
	uint8_t buf[TFS_AUDIT_PIN_MAX];
	size_t len, sp;
	assert_true(tfs_audit_spaces_candidate(s, i, buf, &len, &sp));
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
}

static void test_masks_and_wordlists(void **state)
{
	(void)state;
	tfs_audit_spaces *s;
	tfs_error err;
	double size;
	assert_int_equal(tfs_audit_mask_size(&size, "?u?l?l?l?d?d", &err), TFS_OK);
	assert_true(size == 26.0 * 26 * 26 * 26 * 100);
	assert_int_equal(tfs_audit_mask_size(&size, "?s?a??x", &err), TFS_OK);
	assert_true(size == 33.0 * 95);
	assert_int_equal(tfs_audit_mask_size(&size, "ab?q", &err), TFS_E_INVALID);
	assert_int_equal(err.offset, 2);
	assert_int_equal(tfs_audit_mask_size(&size, "ab?", &err), TFS_E_INVALID);
	assert_int_equal(tfs_audit_mask_size(&size, "", &err), TFS_E_INVALID);
	/* 12 x ?a exceeds 2^64: the size is still right as a double */
	assert_int_equal(tfs_audit_mask_size(&size, "?a?a?a?a?a?a?a?a?a?a?a?a", &err), TFS_OK);
	assert_true(size > 5.4e23 && size < 5.41e23);

	assert_int_equal(tfs_audit_spaces_new(&s, &err), TFS_OK);
	/* prefixes of length 2 to 3 of "?d??x?u": "?d??" then "?d??x" */
	assert_int_equal(tfs_audit_spaces_add_mask(s, "?d??x?u", 2, 3, &err), TFS_OK);
	assert_int_equal(tfs_audit_space_count(s), 2);
	assert_string_equal(tfs_audit_space_mask(s, 0), "?d??");
	assert_string_equal(tfs_audit_space_mask(s, 1), "?d??x");
	expect_candidate(s, 0, "0?");
	expect_candidate(s, 9, "9?");
	expect_candidate(s, 10, "0?x");
	expect_candidate(s, 19, "9?x");
	uint8_t buf[TFS_AUDIT_PIN_MAX];
	size_t len, sp;
	assert_false(tfs_audit_spaces_candidate(s, 20, buf, &len, &sp));
	assert_int_equal(tfs_audit_spaces_add_mask(s, "?d", 3, 4, &err), TFS_E_INVALID);
	tfs_audit_spaces_free(s);

	assert_int_equal(tfs_audit_spaces_new(&s, &err), TFS_OK);
	const char words[] = "abc\r\n\nlonger-word\nfour\r\nsix666";
	assert_int_equal(tfs_audit_spaces_add_wordlist(s, (const uint8_t *)words, strlen(words), 4,
	                                               6, &err), TFS_OK);
	assert_true(tfs_audit_space_size(s, 0) == 2);
	expect_candidate(s, 0, "four");
	expect_candidate(s, 1, "six666");
	assert_int_equal(tfs_audit_spaces_add_wordlist(s, (const uint8_t *)"ab\nc\n", 5, 4, 6, &err),
	                 TFS_E_INVALID);
	assert_int_equal(tfs_audit_spaces_add_digits(s, 0, &err), TFS_E_INVALID);
	assert_int_equal(tfs_audit_spaces_add_digits(s, 6, &err), TFS_OK);
	expect_candidate(s, 2, "000000");
	expect_candidate(s, 2 + 123456, "123456");
	tfs_audit_spaces_free(s);

	assert_int_equal(tfs_audit_digits_within(1000.0, 3600.0), 6); /* 10^6 / 1000 = 1000 s */
	assert_int_equal(tfs_audit_digits_within(1.0, 3600.0), 0);
}

/* Searches on blobs made by the library's own wrap, CBC and GCM: found in
 * the right space, with the right layout; a space without the PIN is
 * exhausted; a set cancel flag stops at once. */
static void test_search_blobs(void **state)
{
	(void)state;
	const uint8_t key[TFS_KEY_LEN] = {1, 2, 3};
	tfs_layout layouts[] = {TFS_LAYOUT_CBC, TFS_LAYOUT_GCM};
	for (int li = 0; li < 2; li++) {
		uint8_t blob[TFS_PIN_BLOB_LEN];
		tfs_error err;
		assert_int_equal(tfs_pinblob_wrap(blob, layouts[li], key, (const uint8_t *)"0042", 4, &err),
		                 TFS_OK);
		tfs_audit_spaces *s;
		assert_int_equal(tfs_audit_spaces_new(&s, &err), TFS_OK);
		assert_int_equal(tfs_audit_spaces_add_mask(s, "9?d", 0, 0, &err), TFS_OK);
		assert_int_equal(tfs_audit_spaces_add_digits(s, 4, &err), TFS_OK);
		tfs_audit_options o = {.threads = 2, .chunk = 4};
		tfs_audit_result r;
		assert_int_equal(tfs_audit_search(&r, blob, sizeof(blob), s, &o, &err), TFS_OK);
		assert_true(r.found);
		assert_int_equal(r.space, 1);
		assert_int_equal(r.layout, layouts[li]);
		assert_int_equal(r.pin_len, 4);
		assert_memory_equal(r.pin, "0042", 4);
		assert_int_equal(r.rounds, 1500 + blob[7]);
		/* Threads stop at the hit, so candidates after it (in other
		 * threads' slices) may have been tried and some before it not;
		 * the counts still add up. */
		assert_true(r.tried_in[0] <= 10 && r.tried_in[1] >= 1);
		assert_int_equal(r.tried, r.tried_in[0] + r.tried_in[1]);
		assert_true(r.tried <= 10 + 10000);
		assert_false(r.exhausted);
		tfs_audit_result_clear(&r);
		tfs_audit_spaces_free(s);

		assert_int_equal(tfs_audit_spaces_new(&s, &err), TFS_OK);
		assert_int_equal(tfs_audit_spaces_add_mask(s, "1?d", 0, 0, &err), TFS_OK);
		assert_int_equal(tfs_audit_search(&r, blob, sizeof(blob), s, &o, &err), TFS_OK);
		assert_false(r.found);
		assert_true(r.exhausted);
		assert_int_equal(r.tried, 10);
		assert_null(r.pin);
		tfs_audit_result_clear(&r);

		volatile sig_atomic_t cancel = 1;
		o.cancel = &cancel;
		tfs_audit_spaces_free(s);
		assert_int_equal(tfs_audit_spaces_new(&s, &err), TFS_OK);
		assert_int_equal(tfs_audit_spaces_add_digits(s, 8, &err), TFS_OK);
		assert_int_equal(tfs_audit_search(&r, blob, sizeof(blob), s, &o, &err), TFS_OK);
		assert_true(r.cancelled);
		assert_false(r.found || r.exhausted);
		assert_true(r.tried < 100000);
		tfs_audit_result_clear(&r);
		tfs_audit_spaces_free(s);
		assert_int_equal(tfs_audit_search(&r, blob, 71, NULL, &o, &err), TFS_E_DAMAGED);
		tfs_audit_result_clear(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fast_kdf_equals_tfs_kdf),
		cmocka_unit_test(test_slices_cover_each_index_once),
		cmocka_unit_test(test_candidates_each_once),
		cmocka_unit_test(test_masks_and_wordlists),
		cmocka_unit_test(test_search_blobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
