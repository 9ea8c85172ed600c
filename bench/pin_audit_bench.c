/*
 * pin-audit's speed against the machine's limit (docs/benchmarks.md):
 *
 *   1. the raw SHA-256 compression rate: a loop over OpenSSL's block
 *      function, one thread (tfs_audit_compression_rate);
 *   2. guesses per second of the real search (tfs_audit_search) against a
 *      PIN blob wrapped by the library, with a PIN outside the space, on 1
 *      thread and then on every core;
 *   3. the ratio of (2) per thread to the ceiling rate / rounds, and the
 *      scaling from one thread to all.
 *
 *   tfs_pin_audit_bench [SECONDS]     (default 4 per measurement, in 20 turns;
 *                                      each figure is the best turn's)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tokenfs/audit.h"

#define TURNS 20

static double search_rate(const uint8_t *blob, const tfs_audit_spaces *s, unsigned threads,
                          double seconds)
{
	tfs_audit_options o = {.threads = threads, .max_seconds = seconds};
	tfs_audit_result r;
	tfs_error err;
	if (tfs_audit_search(&r, blob, TFS_PIN_BLOB_LEN, s, &o, &err) != TFS_OK || r.found) {
		fprintf(stderr, "bench: search failed: %s\n", err.what);
		exit(1);
	}
	double rate = r.rate;
	tfs_audit_result_clear(&r);
	return rate;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 4.0;
	unsigned cores = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	const uint8_t key[TFS_KEY_LEN] = {0};
	tfs_error err;
	tfs_audit_spaces *s;
	if (tfs_audit_spaces_new(&s, &err) != TFS_OK || tfs_audit_spaces_add_digits(s, 9, &err) != TFS_OK)
		return 1;
	for (int li = 0; li < 2; li++) {
		tfs_layout layout = li == 0 ? TFS_LAYOUT_CBC : TFS_LAYOUT_GCM;
		uint8_t blob[TFS_PIN_BLOB_LEN];
		if (tfs_pinblob_wrap(blob, layout, key, (const uint8_t *)"not-a-digit", 11, &err) != TFS_OK)
			return 1;
		unsigned rounds = 1500u + blob[7];
		/* The machine may be shared: limit and search alternate in short
		 * turns and each keeps its best turn, the one least disturbed. */
		double comp = 0, one = 0, all = 0;
		for (int turn = 0; turn < TURNS; turn++) {
			double c = tfs_audit_compression_rate(secs / TURNS);
			double o = search_rate(blob, s, 1, secs / TURNS);
			double a = search_rate(blob, s, cores, secs / TURNS);
			comp = c > comp ? c : comp;
			one = o > one ? o : one;
			all = a > all ? a : all;
		}
		double ceiling = comp / rounds;
		printf("layout: %s\n", tfs_layout_name(layout));
		printf("  kdf_rounds: %u\n", rounds);
		printf("  sha256_compressions_per_s_1_thread: %.0f\n", comp);
		printf("  ceiling_guesses_per_s_1_thread: %.1f\n", ceiling);
		printf("  guesses_per_s_1_thread: %.1f\n", one);
		printf("  ratio_to_ceiling: %.1f%%\n", 100.0 * one / ceiling);
		printf("  threads: %u\n", cores);
		printf("  guesses_per_s_all_threads: %.1f\n", all);
		printf("  guesses_per_s_per_thread_all: %.1f\n", all / cores);
		printf("  scaling_vs_1_thread: %.2fx of %u (%.0f%% linear)\n", all / one, cores,
		       100.0 * all / one / cores);
	}
	tfs_audit_spaces_free(s);
	return 0;
}
