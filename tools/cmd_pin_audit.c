/*
 * tokenfs pin-audit: how long a token's PINs survive an offline attack on a
 * copy of its files, and recovery of a forgotten PIN by its owner. The
 * search is libtokenfs/audit's; this file parses options, builds the
 * candidate spaces, runs one search per PIN blob and hands the results to
 * pin_audit_render.c. Read-only, like dump.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "pin_audit.h"
#include "writer.h"

#define WORDLIST_MAX (1u << 30)
/* Short runs measure the rate on for this long (tfs_audit_options). */
#define MIN_RATE_SECONDS 0.5

typedef struct pa_opts {
	cli_common co; /* --token, --lock-timeout */
	bool reveal;
	bool want_role[2]; /* by tfs_pin_role */
	unsigned digits_max;
	const char *wordlist, *mask;
	size_t min_len, max_len;
	bool min_given, max_given;
	double max_time;
	unsigned threads;
	/* while running */
	tfs_audit_spaces *spaces;
	pa_render render;
	size_t blobs_total, blobs_done;
	double deadline; /* seconds since start; 0: none */
	struct timespec start;
	bool interrupted, found;
	const char *label; /* for progress */
	tfs_pin_role role;
} pa_opts;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs pin-audit [OPTIONS] PATH...\n"
	        "\n"
	        "How long the PINs of SoftHSMv2 tokens survive an offline attack on a copy\n"
	        "of their files, measured on this machine; and recovery of a forgotten PIN\n"
	        "by its owner. A hardware token counts failed tries and blocks itself;\n"
	        "whoever copies a SoftHSM token's files can try PINs without limit, each\n"
	        "costing only 1500 to 1755 SHA-256 rounds. Read-only, like dump.\n"
	        "\n"
	        "Candidates are tried in this order, against each selected PIN blob:\n"
	        "  1. a built-in list of common and default PINs (1234, 0000, 123456,\n"
	        "     12345678, 87654321, ...);\n"
	        "  2. every all-digit PIN of length 4, 5, 6 (up to --digits-max);\n"
	        "  3. the lines of --wordlist, then the candidates of --mask.\n"
	        "\n"
	        "Options:\n"
	        "      --role ROLE       user, so or both (default both)\n"
	        "      --digits-max N    all-digit PINs of 4 up to N digits (N: 4 to 19,\n"
	        "                        default 6; 0: none)\n"
	        "      --wordlist FILE   one candidate per line ('-': standard input); a\n"
	        "                        '\\r' before the newline is dropped\n"
	        "      --mask MASK       hashcat-style: ?d digit, ?l a-z, ?u A-Z, ?s the 33\n"
	        "                        printable specials (space included), ?a all of\n"
	        "                        them, ?? a '?', anything else itself; e.g.\n"
	        "                        ?u?l?l?l?d?d\n"
	        "      --min-len N       wordlist: skip lines shorter than N bytes (default 1)\n"
	        "      --max-len N       wordlist: skip lines longer than N bytes (default 255)\n"
	        "                        mask: with either, try the mask's prefixes of\n"
	        "                        --min-len to --max-len positions (default: only\n"
	        "                        the whole mask)\n"
	        "      --max-time SECS   stop after SECS seconds in all, shared among the\n"
	        "                        blobs still to search (default: no limit)\n"
	        "      --threads N       search threads (default: one per core)\n"
	        "      --reveal          print a PIN that was found (the owner recovering\n"
	        "                        their own token); without it the report only says\n"
	        "                        it was found, and where\n"
	        "  -f, --format FMT      text (default) or json (docs/json.md)\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --lock-timeout MS how long to wait for a writer's lock (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "For every blob the report gives: found or not, the candidates tried and\n"
	        "the time, the guesses per second measured here, and how long the spaces\n"
	        "not covered would take at that rate (all-digit PINs of 4 to 10 digits, the\n"
	        "mask). Per token, a verdict: which PINs fall here in under an hour, a day,\n"
	        "a year. Progress goes to a terminal; Ctrl-C stops and reports what was\n"
	        "covered. Candidates are never logged.\n"
	        "\n"
	        "Exit codes: 0 no PIN found; 1 a PIN was found (it is weak), a blob is\n"
	        "damaged, or the run was interrupted; 2 usage or I/O error.\n");
}

static int parse_uint(const char *opt, const char *arg, unsigned long lo, unsigned long hi,
                      unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (*arg == '\0' || *arg == '-' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		cli_error("pin-audit: %s takes a number from %lu to %lu", opt, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

enum { OPT_ROLE = 300, OPT_DIGITS, OPT_WORDLIST, OPT_MASK, OPT_MIN, OPT_MAX, OPT_TIME,
       OPT_THREADS, OPT_REVEAL };

static int pa_option(void *ctx, int c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pa_opts *o = ctx;
	unsigned long v;
	switch (c) {
	case OPT_ROLE:
		if (strcmp(optarg, "user") != 0 && strcmp(optarg, "so") != 0 && strcmp(optarg, "both") != 0) {
			cli_error("pin-audit: --role takes user, so or both");
			return -1;
		}
		o->want_role[TFS_PIN_USER] = strcmp(optarg, "so") != 0;
		o->want_role[TFS_PIN_SO] = strcmp(optarg, "user") != 0;
		return 0;
	case OPT_DIGITS:
		if (parse_uint("--digits-max", optarg, 0, 19, &v) != 0)
			return -1;
		if (v > 0 && v < 4) {
			cli_error("pin-audit: --digits-max: SoftHSM PINs have at least 4 bytes; give 0 "
			          "(no all-digit search) or 4 to 19");
			return -1;
		}
		o->digits_max = (unsigned)v;
		return 0;
	case OPT_WORDLIST: o->wordlist = optarg; return 0;
	case OPT_MASK: o->mask = optarg; return 0;
	case OPT_MIN:
	case OPT_MAX:
		if (parse_uint(c == OPT_MIN ? "--min-len" : "--max-len", optarg, 1, TFS_AUDIT_PIN_MAX, &v) != 0)
			return -1;
		*(c == OPT_MIN ? &o->min_len : &o->max_len) = v;
		*(c == OPT_MIN ? &o->min_given : &o->max_given) = true;
		return 0;
	case OPT_TIME: {
		char *end;
		double t = strtod(optarg, &end);
		if (*optarg == '\0' || *end != '\0' || !(t > 0) || t > 1e9) {
			cli_error("pin-audit: --max-time takes seconds, more than 0");
			return -1;
		}
		o->max_time = t;
		return 0;
	}
	case OPT_THREADS:
		if (parse_uint("--threads", optarg, 1, 1024, &v) != 0)
			return -1;
		o->threads = (unsigned)v;
		return 0;
	case OPT_REVEAL: o->reveal = true; return 0;
	default: return 0;
	}
}

/* The whole of fd, in a buffer wiped on every growth; free with
 * tfs_secure_free(*data, *cap). */
static int read_all(int fd, uint8_t **data, size_t *size, size_t *cap)
{
	*cap = 1 << 16;
	*size = 0;
	*data = malloc(*cap);
	if (*data == NULL)
		return -1;
	for (;;) {
		if (*size == *cap) {
			if (*cap >= WORDLIST_MAX) {
				errno = EFBIG;
				return -1;
			}
			uint8_t *p = malloc(*cap * 2);
			if (p == NULL)
				return -1;
			memcpy(p, *data, *size);
			tfs_secure_free(*data, *cap);
			*data = p;
			*cap *= 2;
		}
		ssize_t n = read(fd, *data + *size, *cap - *size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		*size += (size_t)n;
	}
}

static int add_wordlist(pa_opts *o)
{
	bool std_in = strcmp(o->wordlist, "-") == 0;
	int fd = std_in ? STDIN_FILENO : open(o->wordlist, O_RDONLY | O_CLOEXEC);
	uint8_t *data = NULL;
	size_t size = 0, cap = 0;
	if (fd < 0 || read_all(fd, &data, &size, &cap) != 0) {
		cli_error("pin-audit: --wordlist %s: %s", std_in ? "(standard input)" : o->wordlist,
		          strerror(errno));
		if (fd >= 0 && !std_in)
			close(fd);
		tfs_secure_free(data, cap);
		return -1;
	}
	if (!std_in)
		close(fd);
	tfs_error err;
	int rc = tfs_audit_spaces_add_wordlist(o->spaces, data, size, o->min_given ? o->min_len : 1,
	                                       o->max_given ? o->max_len : TFS_AUDIT_PIN_MAX, &err);
	tfs_secure_free(data, cap);
	if (rc != TFS_OK) {
		cli_error("pin-audit: --wordlist %s: %s", std_in ? "(standard input)" : o->wordlist, err.what);
		return -1;
	}
	return 0;
}

static int build_spaces(pa_opts *o)
{
	tfs_error err;
	if (tfs_audit_spaces_new(&o->spaces, &err) != TFS_OK ||
	    tfs_audit_spaces_add_common(o->spaces, &err) != TFS_OK)
		goto fail;
	for (unsigned len = 4; len <= o->digits_max; len++)
		if (tfs_audit_spaces_add_digits(o->spaces, len, &err) != TFS_OK)
			goto fail;
	if (o->wordlist != NULL && add_wordlist(o) != 0)
		return -1;
	if (o->mask != NULL &&
	    tfs_audit_spaces_add_mask(o->spaces, o->mask, o->min_given ? o->min_len : 0,
	                              o->max_given ? o->max_len : 0, &err) != TFS_OK) {
		if (err.offset != TFS_NO_OFFSET)
			cli_error("pin-audit: --mask: offset %llu: %s", (unsigned long long)err.offset, err.what);
		else
			cli_error("pin-audit: --mask: %s", err.what);
		return -1;
	}
	return 0;
fail:
	cli_error("pin-audit: %s", err.what);
	return -1;
}

static double since_start(const pa_opts *o)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - o->start.tv_sec) + (double)(now.tv_nsec - o->start.tv_nsec) / 1e9;
}

/* rate, done/total and ETA on a terminal only */
static void on_progress(void *ctx, const tfs_audit_progress *p)
{
	const pa_opts *o = ctx;
	static int tty = -1;
	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty || o->co.json)
		return;
	char lb[200], eta[64];
	double left = p->rate > 0 ? (double)(p->total - p->done) / p->rate : INFINITY;
	if (o->deadline > 0 && since_start(o) + left > o->deadline)
		left = o->deadline - since_start(o);
	fprintf(stderr, "\rtokenfs: pin-audit '%s' %s: %llu/%llu candidates, %.0f/s, ETA %s\033[K",
	        cli_safe(o->label, lb, sizeof(lb)), pa_role_title(o->role),
	        (unsigned long long)p->done, (unsigned long long)p->total, p->rate,
	        pa_duration(left, eta, sizeof(eta)));
}

static void clear_progress(const pa_opts *o)
{
	if (!o->co.json && isatty(STDERR_FILENO))
		fprintf(stderr, "\r\033[K");
}

static int count_blobs(void *ctx, const tfs_token *tok)
{
	pa_opts *o = ctx;
	for (int role = 0; role < 2; role++) {
		size_t len;
		if (o->want_role[role] && tfs_token_pin_blob(tok, (tfs_pin_role)role, &len) != NULL)
			o->blobs_total++;
	}
	return TFS_EXIT_OK;
}

static int audit_token(void *ctx, const tfs_token *tok)
{
	pa_opts *o = ctx;
	pa_blob b[2];
	size_t n = 0;
	int status = TFS_EXIT_OK;
	/* user first: the PIN most often weak, and the one an owner forgets */
	const tfs_pin_role order[2] = {TFS_PIN_USER, TFS_PIN_SO};
	for (int k = 0; k < 2; k++) {
		tfs_pin_role role = order[k];
		if (!o->want_role[role])
			continue;
		pa_blob *pb = &b[n++];
		memset(pb, 0, sizeof(*pb));
		pb->role = role;
		size_t len = 0;
		const uint8_t *blob = tfs_token_pin_blob(tok, role, &len);
		pb->present = blob != NULL;
		if (blob == NULL || o->interrupted)
			continue;
		if (len != TFS_PIN_BLOB_LEN) {
			pb->damaged = true;
			cli_error("pin-audit: %s: the %s blob is %zu bytes; SoftHSM writes exactly %d",
			          tfs_token_path(tok), pa_role_title(role), len, TFS_PIN_BLOB_LEN);
			status = TFS_EXIT_PROBLEM;
			continue;
		}
		tfs_audit_options ao = {.threads = o->threads, .min_rate_seconds = MIN_RATE_SECONDS,
		                        .cancel = &interrupted, .progress = on_progress, .ctx = o};
		if (o->deadline > 0) {
			/* the time left, shared fairly among the blobs still to do */
			double left = o->deadline - since_start(o);
			size_t blobs_left = o->blobs_total > o->blobs_done ? o->blobs_total - o->blobs_done : 1;
			ao.max_seconds = left > 0.05 ? left / (double)blobs_left : 0.05;
		}
		o->label = tfs_token_label(tok);
		o->role = role;
		tfs_error err;
		int rc = tfs_audit_search(&pb->r, blob, len, o->spaces, &ao, &err);
		clear_progress(o);
		o->blobs_done++;
		if (rc != TFS_OK) {
			cli_error("pin-audit: %s: %s: %s", tfs_token_path(tok), pa_role_title(role), err.what);
			tfs_audit_result_clear(&pb->r);
			status = TFS_EXIT_USAGE;
			continue;
		}
		pb->searched = true;
		if (pb->r.found)
			o->found = true;
		if (pb->r.cancelled)
			o->interrupted = true;
	}
	pa_render_token(&o->render, tok, b, n);
	for (size_t i = 0; i < n; i++)
		tfs_audit_result_clear(&b[i].r);
	return status;
}

static json_object *spaces_json(const tfs_audit_spaces *s)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < tfs_audit_space_count(s); i++) {
		json_object *j = json_object_new_object();
		unsigned len = tfs_audit_space_length(s, i);
		json_object_object_add(j, "kind", json_object_new_string(tfs_audit_kind_name(tfs_audit_space_kind(s, i))));
		json_object_object_add(j, "length", len > 0 ? json_object_new_int((int)len) : NULL);
		json_object_object_add(j, "mask", tfs_audit_space_mask(s, i) != NULL
		                       ? json_object_new_string(tfs_audit_space_mask(s, i)) : NULL);
		json_object_object_add(j, "candidates", json_object_new_double(tfs_audit_space_size(s, i)));
		json_object_array_add(a, j);
	}
	return a;
}

int cmd_pin_audit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"token", required_argument, NULL, 't'},      {"lock-timeout", required_argument, NULL, 'L'},
		{"role", required_argument, NULL, OPT_ROLE},  {"digits-max", required_argument, NULL, OPT_DIGITS},
		{"wordlist", required_argument, NULL, OPT_WORDLIST},
		{"mask", required_argument, NULL, OPT_MASK},  {"min-len", required_argument, NULL, OPT_MIN},
		{"max-len", required_argument, NULL, OPT_MAX}, {"max-time", required_argument, NULL, OPT_TIME},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"reveal", no_argument, NULL, OPT_REVEAL},    CLI_FORMAT_LONGOPT,
		{"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
	};
	pa_opts o = {.co = {.cmd = "pin-audit"}, .want_role = {true, true}, .digits_max = 6};
	int status = TFS_EXIT_USAGE;
	int first = cli_parse(&o.co, argc, argv, "f:t:h", longopts, pa_option, &o, usage);
	if (first < 0)
		goto out;
	if (o.min_given && o.max_given && o.min_len > o.max_len) {
		cli_error("pin-audit: --min-len %zu is more than --max-len %zu", o.min_len, o.max_len);
		goto out;
	}
	if (build_spaces(&o) != 0)
		goto out;
	if (o.threads == 0) {
		long nc = sysconf(_SC_NPROCESSORS_ONLN);
		o.threads = nc > 0 ? (unsigned)nc : 1;
	}

	for (int i = first; i < argc; i++)
		if (cli_each_token(&o.co, argv[i], true, count_blobs, &o) != TFS_EXIT_OK)
			goto out;
	status = cli_check_selection(&o.co);
	if (status != TFS_EXIT_OK)
		goto out;
	o.co.matched = 0;

	struct sigaction sa = {.sa_handler = on_sigint}, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	clock_gettime(CLOCK_MONOTONIC, &o.start);
	o.deadline = o.max_time;
	o.render = (pa_render){.spaces = o.spaces, .reveal = o.reveal,
	                       .tokens = o.co.json ? json_object_new_array() : NULL};
	for (int i = first; i < argc && !o.interrupted; i++) {
		int s = cli_each_token(&o.co, argv[i], true, audit_token, &o);
		status = s > status ? s : status;
	}
	sigaction(SIGINT, &old, NULL);
	if (status == TFS_EXIT_OK && (o.found || o.interrupted))
		status = TFS_EXIT_PROBLEM;
	if (o.interrupted)
		cli_warning("pin-audit: interrupted; the report shows what was covered");
	if (o.co.json) {
		json_object *extra = json_object_new_object();
		json_object_object_add(extra, "threads", json_object_new_int((int)o.threads));
		json_object_object_add(extra, "max_time", o.max_time > 0 ? json_object_new_double(o.max_time) : NULL);
		json_object_object_add(extra, "reveal", json_object_new_boolean(o.reveal));
		json_object_object_add(extra, "interrupted", json_object_new_boolean(o.interrupted));
		json_object_object_add(extra, "spaces", spaces_json(o.spaces));
		writer_print_json("pin-audit", extra, o.render.tokens, status);
	}
	if (fflush(stdout) != 0) {
		cli_error("pin-audit: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
out:
	tfs_audit_spaces_free(o.spaces);
	cli_common_free(&o.co);
	return status;
}
