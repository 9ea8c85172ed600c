/*
 * tokenfs verify-integrity: run every check over each token and render the
 * findings (the checks live in libtokenfs/verify). Read-only, except that
 * --seal writes one manifest, atomically.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tokenfs/pinspec.h"
#include "tokenfs/verify.h"

typedef struct verify_opts {
	cli_common co;        /* --token, --lock-timeout, PINs */
	tfs_severity fail_on;
	tfs_verify_options v; /* PINs and seal mode */
	size_t seal_file_uses; /* tokens sealed into --seal-file, over all PATHs */
	size_t examined;       /* tokens verified, over all PATHs */
} verify_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs verify-integrity [OPTIONS] PATH...\n"
	        "\n"
	        "Prove a SoftHSMv2 store, or a backup of it, intact, and find what is wrong.\n"
	        "Without a PIN: structure (every file parses, lock files, permissions,\n"
	        "required attributes), exposure (keys stored in plaintext) and tamper signs.\n"
	        "With a PIN: also every PIN blob and encrypted value, key check values, RSA\n"
	        "and EC key consistency, key pairs and certificates. docs/findings.md lists\n"
	        "every finding code.\n"
	        "\n"
	        "Options:\n"
	        "      --user-pin [[TOKEN=]SPEC]  the user PIN (of TOKEN); SPEC: pass:PIN,\n"
	        "      --so-pin [[TOKEN=]SPEC]    env:VAR, file:PATH, fd:N or stdin (first\n"
	        "                        line), or prompt; no SPEC: prompt. A wrong PIN is\n"
	        "                        the pin.wrong finding of its token\n"
	        "      --seal            write a sealed manifest of each token (needs a PIN):\n"
	        "                        <token dir>/tokenfs.seal unless --seal-file\n"
	        "      --check-seal      compare each token with its sealed manifest\n"
	        "      --seal-file PATH  where the manifest is (one token only)\n"
	        "  -f, --format FMT      text (default) or json (docs/json.md)\n"
	        "      --fail-on SEV     exit 1 when a finding is at least SEV: error,\n"
	        "                        warning (default) or info\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --lock-timeout MS how long to wait for a SoftHSM writer (default 5000)\n"
	        CLI_ARCHIVE_HELP
	        "  -h, --help            this text\n"
	        "\n"
	        "PATH: a tokendir, a token directory, a .object file, or a tar (.gz, .xz,\n"
	        ".zst) or zip archive of any of them, read in memory, never unpacked.\n"
	        "A .object file is checked with the token.object beside it, if any.\n"
	        CLI_PIN_TOKEN_HELP
	        "\n"
	        "Exit codes: 0 nothing at or above --fail-on; 1 something is; 2 usage or\n"
	        "I/O error, a PIN for a blob the token lacks, a lock held past\n"
	        "--lock-timeout (one budget for the run), or no token found to verify\n"
	        "(an empty directory is no pass).\n");
}

static int parse_severity(const char *s, tfs_severity *out)
{
	if (strcmp(s, "error") == 0)
		*out = TFS_SEV_ERROR;
	else if (strcmp(s, "warning") == 0)
		*out = TFS_SEV_WARNING;
	else if (strcmp(s, "info") == 0)
		*out = TFS_SEV_INFO;
	else
		return -1;
	return 0;
}

/* The command's own options (cli_parse handles the rest). */
static int verify_option(void *ctx, int c, int argc, char **argv)
{
	verify_opts *o = ctx;
	(void)argc;
	(void)argv;
	switch (c) {
	case 'W':
	case 'C': {
		tfs_seal_mode m = c == 'W' ? TFS_SEAL_WRITE : TFS_SEAL_CHECK;
		if (o->v.seal != TFS_SEAL_NONE && o->v.seal != m) {
			cli_error("verify-integrity: --seal and --check-seal exclude each other");
			return -1;
		}
		o->v.seal = m;
		break;
	}
	case 'P':
		o->v.seal_path = optarg;
		break;
	case 'F':
		if (parse_severity(optarg, &o->fail_on) != 0) {
			cli_error("verify-integrity: --fail-on takes error, warning or info");
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Returns -1 on a usage error, else the index of the first PATH. */
static int parse_args(verify_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS, CLI_ARCHIVE_LONGOPTS,
		{"seal", no_argument, NULL, 'W'},           {"check-seal", no_argument, NULL, 'C'},
		{"seal-file", required_argument, NULL, 'P'}, CLI_FORMAT_LONGOPT,
		{"fail-on", required_argument, NULL, 'F'},  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "f:t:h", longopts, verify_option, o, usage);
	if (first < 0)
		return -1;
	if (o->v.seal != TFS_SEAL_NONE && !o->co.want_user && !o->co.want_so) {
		cli_error("verify-integrity: %s needs --user-pin or --so-pin: the seal's key is derived "
		          "from the token key", o->v.seal == TFS_SEAL_WRITE ? "--seal" : "--check-seal");
		return -1;
	}
	return first;
}

/* ---- rendering ---- */

typedef struct counts {
	size_t n[3]; /* by severity */
} counts;

static const char *attr_label(const tfs_finding *f, char buf[40])
{
	uint64_t type;
	if (!tfs_finding_attribute(f, &type))
		return NULL;
	const char *n = tfs_name(TFS_NS_CKA, type);
	if (n != NULL)
		return n;
	snprintf(buf, 40, "0x%" PRIx64, type);
	return buf;
}

static void text_finding(FILE *out, const tfs_finding *f)
{
	char ab[40], where[96] = "";
	const char *attr = attr_label(f, ab);
	uint64_t off = tfs_finding_offset(f);
	if (attr != NULL && off != TFS_NO_OFFSET)
		snprintf(where, sizeof(where), "%s at offset %" PRIu64, attr, off);
	else if (attr != NULL)
		snprintf(where, sizeof(where), "%s", attr);
	else if (off != TFS_NO_OFFSET)
		snprintf(where, sizeof(where), "offset %" PRIu64, off);
	char b[4 * 2048 + 8]; /* messages and paths carry text from the store */
	fprintf(out, "    %-7s %-28s %s\n", tfs_severity_name(tfs_finding_severity(f)),
	        tfs_finding_code(f), where);
	fprintf(out, "            %s\n", cli_safe(tfs_finding_message(f), b, sizeof(b)));
	if (tfs_finding_object(f) == NULL && tfs_finding_path(f)[0])
		fprintf(out, "            (%s)\n", cli_safe(tfs_finding_path(f), b, sizeof(b)));
}

/* Findings of one token: token-level first, then grouped by object. */
/* Why the checks that need the token key did not run, in words. */
static const char *skip_reason_text(tfs_verify_skip_reason r)
{
	switch (r) {
	case TFS_SKIP_REASON_NO_METADATA: return "no readable token.object";
	case TFS_SKIP_REASON_WRONG_PIN: return "the PIN given is wrong: pin.wrong";
	case TFS_SKIP_REASON_LONE_OBJECT:
		return "a lone object file: no readable token.object beside it in its directory, "
		       "so no PIN blob; see the token.metadata finding if it is there but damaged";
	default: return "they need --user-pin or --so-pin";
	}
}

static void text_token(FILE *out, const tfs_token *tok, const tfs_verify_summary *s,
                       const tfs_report *rep, size_t first, size_t last, const counts *c)
{
	char lb[200], sb[100], pb[4 * 4096 + 8];
	fprintf(out, "token \"%s\" (serial %s, %s): %zu objects, %zu errors, %zu warnings, %zu info\n",
	        cli_safe(tfs_token_label(tok), lb, sizeof(lb)), cli_safe(tfs_token_serial(tok), sb, sizeof(sb)),
	        cli_safe(tfs_token_path(tok), pb, sizeof(pb)), s->objects,
	        c->n[TFS_SEV_ERROR], c->n[TFS_SEV_WARNING], c->n[TFS_SEV_INFO]);
	if (s->unlocked)
		fprintf(out, "  decrypted %zu of %zu encrypted values (%zu CBC, %zu GCM)\n",
		        s->values_decrypted, s->values_encrypted, s->values_cbc, s->values_gcm);
	if (s->not_checked != 0)
		fprintf(out, "  not checked: decryption of values, PIN blobs and checks of private "
		        "values (%s)\n", skip_reason_text(s->not_checked_reason));
	fprintf(out, "  loads in SoftHSM %s%s\n", s->min_softhsm ? s->min_softhsm : "(unknown)",
	        s->needs_gcm > 0 ? " built with pull request #627 (its values are AES-GCM)"
	        : s->needs_gcm < 0 ? ", or a build with pull request #627 if its values are "
	                             "AES-GCM (a PIN tells)" : "");
	if (s->sealed)
		fprintf(out, "  seal: done\n");
	if (first == last)
		fprintf(out, "  no findings\n");
	bool any = false;
	for (size_t i = first; i < last; i++) {
		const tfs_finding *f = tfs_report_finding(rep, i);
		if (tfs_finding_object(f) != NULL)
			continue;
		if (!any)
			fprintf(out, "  token:\n");
		any = true;
		text_finding(out, f);
	}
	/* Group by object in order of first appearance. */
	for (size_t i = first; i < last; i++) {
		const char *obj = tfs_finding_object(tfs_report_finding(rep, i));
		if (obj == NULL)
			continue;
		bool seen = false;
		for (size_t j = first; j < i && !seen; j++) {
			const char *o2 = tfs_finding_object(tfs_report_finding(rep, j));
			seen = o2 != NULL && strcmp(o2, obj) == 0;
		}
		if (seen)
			continue;
		char ob[1100];
		fprintf(out, "  object %s:\n", cli_safe(obj, ob, sizeof(ob)));
		for (size_t j = i; j < last; j++) {
			const tfs_finding *f = tfs_report_finding(rep, j);
			const char *o2 = tfs_finding_object(f);
			if (o2 != NULL && strcmp(o2, obj) == 0)
				text_finding(out, f);
		}
	}
}

static json_object *json_finding(const tfs_finding *f)
{
	json_object *j = json_object_new_object();
	char ab[40];
	const char *attr = attr_label(f, ab);
	uint64_t type = 0;
	bool has_attr = tfs_finding_attribute(f, &type);
	json_object_object_add(j, "code", json_object_new_string(tfs_finding_code(f)));
	json_object_object_add(j, "severity", json_object_new_string(tfs_severity_name(tfs_finding_severity(f))));
	json_object_object_add(j, "path", cli_json_string(tfs_finding_path(f)));
	json_object_object_add(j, "offset", tfs_finding_offset(f) == TFS_NO_OFFSET ? NULL
	                                    : json_object_new_uint64(tfs_finding_offset(f)));
	json_object_object_add(j, "object", tfs_finding_object(f) ? cli_json_string(tfs_finding_object(f)) : NULL);
	json_object_object_add(j, "attribute", has_attr ? json_object_new_uint64(type) : NULL);
	json_object_object_add(j, "attribute_name", attr ? json_object_new_string(attr) : NULL);
	json_object_object_add(j, "message", cli_json_string(tfs_finding_message(f)));
	return j;
}

static json_object *json_token(const tfs_token *tok, const tfs_verify_summary *s,
                               const tfs_report *rep, size_t first, size_t last, const counts *c)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "dir", cli_json_string(tfs_token_path(tok)));
	json_object_object_add(j, "label", cli_json_string(tfs_token_label(tok)));
	json_object_object_add(j, "serial", cli_json_string(tfs_token_serial(tok)));
	json_object *sum = json_object_new_object();
	json_object_object_add(sum, "objects", json_object_new_uint64(s->objects));
	json_object_object_add(sum, "values_encrypted", json_object_new_uint64(s->values_encrypted));
	json_object_object_add(sum, "values_decrypted", json_object_new_uint64(s->values_decrypted));
	json_object_object_add(sum, "values_cbc", json_object_new_uint64(s->values_cbc));
	json_object_object_add(sum, "values_gcm", json_object_new_uint64(s->values_gcm));
	json_object_object_add(sum, "unlocked", json_object_new_boolean(s->unlocked));
	json_object_object_add(sum, "sealed", json_object_new_boolean(s->sealed));
	json_object_object_add(sum, "min_softhsm", s->min_softhsm ? json_object_new_string(s->min_softhsm) : NULL);
	json_object_object_add(sum, "needs_gcm", s->needs_gcm < 0 ? NULL : json_object_new_boolean(s->needs_gcm));
	json_object *skipped = json_object_new_array();
	for (unsigned bit = 1; bit <= TFS_SKIP_ALL; bit <<= 1)
		if (s->not_checked & bit)
			json_object_array_add(skipped, json_object_new_string(tfs_verify_skip_code(bit)));
	json_object_object_add(sum, "not_checked", skipped);
	const char *why = tfs_verify_skip_reason_code(s->not_checked_reason);
	json_object_object_add(sum, "not_checked_reason", why ? json_object_new_string(why) : NULL);
	json_object_object_add(sum, "errors", json_object_new_uint64(c->n[TFS_SEV_ERROR]));
	json_object_object_add(sum, "warnings", json_object_new_uint64(c->n[TFS_SEV_WARNING]));
	json_object_object_add(sum, "info", json_object_new_uint64(c->n[TFS_SEV_INFO]));
	json_object_object_add(j, "summary", sum);
	json_object *arr = json_object_new_array();
	for (size_t i = first; i < last; i++)
		json_object_array_add(arr, json_finding(tfs_report_finding(rep, i)));
	json_object_object_add(j, "findings", arr);
	return j;
}

/* ---- the walk ---- */

static int max_status(int a, int b)
{
	return a > b ? a : b;
}

static void note_severity(tfs_severity sev, tfs_severity *worst, bool *any)
{
	if (!*any || sev > *worst)
		*worst = sev;
	*any = true;
}

/* Findings about the store outside every token it could open. */
static int store_findings(const verify_opts *o, const tfs_store *store, json_object *tokens,
                          tfs_severity *worst, bool *any)
{
	json_object *arr = o->co.json ? json_object_new_array() : NULL;
	size_t n = 0;
	for (size_t i = 0; i < tfs_store_finding_count(store); i++) {
		const tfs_finding *f = tfs_store_finding(store, i);
		if (tfs_store_finding_token(store, i) != NULL)
			continue;
		note_severity(tfs_finding_severity(f), worst, any);
		if (arr != NULL) {
			json_object_array_add(arr, json_finding(f));
		} else {
			if (n == 0)
			{
				char pb[4 * 4096 + 8];
				printf("store %s:\n", cli_safe(tfs_store_path(store), pb, sizeof(pb)));
			}
			text_finding(stdout, f);
		}
		n++;
	}
	if (arr != NULL && n > 0) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "dir", cli_json_string(tfs_store_path(store)));
		json_object_object_add(j, "label", NULL);
		json_object_object_add(j, "store_findings", arr);
		json_object_array_add(tokens, j);
	} else {
		json_object_put(arr);
	}
	return TFS_EXIT_OK;
}

static int verify_path(verify_opts *o, const char *path, json_object *tokens, tfs_severity *worst,
                       bool *any_finding)
{
	tfs_store *store;
	tfs_error err;
	if (cli_open_store(&o->co, path, &store) != TFS_EXIT_OK)
		return TFS_EXIT_USAGE;
	if (o->v.seal == TFS_SEAL_WRITE && tfs_store_is_archive(store)) {
		cli_error("verify-integrity: %s is an archive, and --seal writes into the token "
		          "directory: seal the directory before archiving it, and check the archive "
		          "with --check-seal", path);
		tfs_store_free(store);
		return TFS_EXIT_USAGE;
	}
	int status = TFS_EXIT_OK;
	tfs_report *rep;
	if (tfs_report_new(&rep, &err) != TFS_OK) {
		tfs_store_free(store);
		cli_report(&err);
		return TFS_EXIT_USAGE;
	}
	/* What the store itself says outside any token (a token directory that
	 * could not be listed, stray entries) is part of the verdict too. */
	/* A usage error before any PIN is tried on any token. */
	for (size_t t = 0; t < tfs_store_token_count(store) && o->v.seal_path != NULL; t++)
		if (cli_token_selected(&o->co, tfs_store_token(store, t)) && ++o->seal_file_uses > 1) {
			cli_error("verify-integrity: --seal-file names one manifest; select one token with --token");
			tfs_report_free(rep);
			tfs_store_free(store);
			return TFS_EXIT_USAGE;
		}
	status = max_status(status, store_findings(o, store, tokens, worst, any_finding));
	if (tfs_store_token_count(store) == 0) {
		/* An empty directory (a failed restore, a wrong path) must not pass. */
		char pb[4 * 4096 + 8];
		cli_error("verify-integrity: %s: no token directory in it (empty, or only entries "
		          "SoftHSM does not load as tokens, such as symbolic links): nothing to verify",
		          cli_safe(path, pb, sizeof(pb)));
		status = TFS_EXIT_USAGE;
	}
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		if (!cli_token_selected(&o->co, tok))
			continue;
		size_t first = tfs_report_finding_count(rep);
		tfs_verify_summary s;
		/* Large stores take seconds: say what is going on, at a terminal only. */
		bool progress = isatty(STDERR_FILENO);
		if (progress) {
			char lb[200];
			fprintf(stderr, "tokenfs: verifying token '%s' (%zu objects)...\r",
			        cli_safe(tfs_token_label(tok), lb, sizeof(lb)), tfs_token_object_count(tok));
		}
		/* Each token with its own PINs (cli_pin_for). */
		tfs_verify_options v = o->v;
		v.user_pin = cli_pin_for(&o->co, tok, TFS_PIN_USER, &v.user_pin_len);
		v.so_pin = cli_pin_for(&o->co, tok, TFS_PIN_SO, &v.so_pin_len);
		int rc = tfs_verify_token(rep, &s, store, tok, &v, &err);
		if (progress)
			fprintf(stderr, "\033[K"); /* clear the progress line */
		if (rc != TFS_OK) {
			cli_report(&err);
			status = TFS_EXIT_USAGE;
			continue;
		}
		o->examined++;
		size_t last = tfs_report_finding_count(rep);
		counts c = {{0}};
		for (size_t i = first; i < last; i++) {
			tfs_severity sev = tfs_finding_severity(tfs_report_finding(rep, i));
			c.n[sev]++;
			note_severity(sev, worst, any_finding);
		}
		if (o->co.json)
			json_object_array_add(tokens, json_token(tok, &s, rep, first, last, &c));
		else
			text_token(stdout, tok, &s, rep, first, last, &c);
	}
	tfs_report_free(rep);
	/* One --lock-timeout for the whole run, over every PATH. */
	unsigned left = tfs_store_wait_left_ms(store);
	o->co.lock_ms = left > 0 ? left : 1;
	tfs_store_free(store);
	return status;
}

int cmd_verify(int argc, char **argv)
{
	verify_opts o = {.fail_on = TFS_SEV_WARNING, .co = {.cmd = "verify-integrity"}};
	int status = TFS_EXIT_USAGE;
	int first = parse_args(&o, argc, argv);
	if (first < 0 || cli_prepare_pins(&o.co, argv + first, argc - first, false) != TFS_EXIT_OK)
		goto out;
	json_object *doc = o.co.json ? json_object_new_object() : NULL;
	if (doc != NULL) {
		json_object_object_add(doc, "format_version", json_object_new_int(1));
		json_object_object_add(doc, "command", json_object_new_string("verify-integrity"));
	}
	json_object *tokens = o.co.json ? json_object_new_array() : NULL;
	tfs_severity worst = TFS_SEV_INFO;
	bool any = false;
	status = TFS_EXIT_OK;
	for (int i = first; i < argc; i++)
		status = max_status(status, verify_path(&o, argv[i], tokens, &worst, &any));
	status = max_status(status, cli_check_selection(&o.co));
	if (o.examined == 0 && status != TFS_EXIT_USAGE) {
		cli_error("verify-integrity: no token was %s: no verdict", o.v.seal == TFS_SEAL_CHECK
		          ? "checked against a seal" : o.v.seal == TFS_SEAL_WRITE ? "sealed" : "verified");
		status = TFS_EXIT_USAGE;
	}
	if (status == TFS_EXIT_OK && any && worst >= o.fail_on)
		status = TFS_EXIT_PROBLEM;
	if (o.co.json) {
		json_object_object_add(doc, "tokens", tokens);
		json_object_object_add(doc, "fail_on", json_object_new_string(tfs_severity_name(o.fail_on)));
		json_object_object_add(doc, "exit", json_object_new_int(status));
		puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
	}
	if (fflush(stdout) != 0) {
		cli_error("verify-integrity: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
out:
	cli_common_free(&o.co);
	return status;
}
