/*
 * tokenfs diff A B: what changed between two states of a store
 * (tfs_diff_stores, libtokenfs/diff). Read-only on both sides.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "writer.h"

typedef struct diff_opts {
	cli_common co;
	bool reveal;
	const char *only; /* the directory name of the token being compared, or NULL */
} diff_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs diff [OPTIONS] A B\n"
	        "\n"
	        "What changed between two states of a SoftHSMv2 store: A the older (last\n"
	        "night's backup), B the newer (today's store). Each is a tokendir, a token\n"
	        "directory, or a tar (.gz, .xz, .zst) or zip archive of them read in memory;\n"
	        "tokens are paired by directory name. Shows tokens added\n"
	        "and removed, files and objects added and removed, and for every changed\n"
	        "object the attributes that differ, by name, with old and new value. The\n"
	        "comparison is the one of 'verify-integrity --check-seal' (docs/seal.md).\n"
	        "Objects SoftHSM only rewrote (a higher generation, every attribute the\n"
	        "same) are summarised in one line per token.\n"
	        "\n"
	        "Options:\n"
	        "      --user-pin [[TOKEN=]SPEC]  compare encrypted values as plaintext: the\n"
	        "      --so-pin [[TOKEN=]SPEC]    PIN opens the token key of both sides;\n"
	        "                        SPEC: pass:PIN, env:VAR, file:PATH, fd:N or stdin\n"
	        "                        (first line), or prompt; no SPEC: prompt\n"
	        "      --reveal          show key material in full (otherwise: its length and\n"
	        "                        fingerprint only)\n"
	        "  -f, --format FMT      text (default) or json (docs/json.md)\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --lock-timeout MS how long to wait for a SoftHSM writer (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        CLI_PIN_TOKEN_HELP
	        "A wrong PIN is a finding about its token ([pin.wrong]), whose values\n"
	        "are then compared as stored.\n"
	        "\n"
	        "Exit codes: 0 the same; 1 different, or a PIN was wrong; 2 usage or I/O\n"
	        "error.\n");
}

static int diff_option(void *ctx, int c, int argc, char **argv)
{
	diff_opts *o = ctx;
	(void)argc;
	(void)argv;
	if (c == 'R')
		o->reveal = true;
	return 0;
}

static int parse_args(diff_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"reveal", no_argument, NULL, 'R'},
		CLI_FORMAT_LONGOPT,
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "f:t:h", longopts, diff_option, o, usage);
	if (first < 0)
		return -1;
	if (argc - first != 2) {
		cli_error("diff: takes two PATHs, A (older) and B (newer)");
		return -1;
	}
	return first;
}

static bool select_token(void *ctx, const tfs_token *tok)
{
	diff_opts *o = ctx;
	if (o->only != NULL && strcmp(tfs_token_dirname(tok), o->only) != 0)
		return false;
	return cli_token_selected(&o->co, tok);
}

/* The diffs of a run: one per token, each with that token's PINs. */
typedef struct diffs {
	tfs_diff **d;
	size_t n;
} diffs;

static bool all_equal(const diffs *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		if (!tfs_diff_equal(ds->d[i]))
			return false;
	return true;
}

static int cmp_name(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* One token (by directory name; NULL: the one token of two token
 * directories) with its own PINs. A wrong PIN is a finding about that
 * token, whose values are then compared as stored. Returns an exit status. */
static int diff_token(diff_opts *o, diffs *ds, const tfs_store *a, const tfs_store *b,
                      const tfs_token *tok, const char *name)
{
	tfs_diff_options dopt = {.reveal = o->reveal, .select = select_token, .ctx = o};
	if (tok != NULL) {
		dopt.user_pin = cli_pin_for(&o->co, tok, TFS_PIN_USER, &dopt.user_pin_len);
		dopt.so_pin = cli_pin_for(&o->co, tok, TFS_PIN_SO, &dopt.so_pin_len);
	}
	o->only = name;
	tfs_diff *d = NULL;
	tfs_error err;
	int status = TFS_EXIT_OK;
	int rc = tfs_diff_stores(&d, a, b, &dopt, &err);
	if (rc == TFS_E_WRONG_PIN) {
		cli_error("error: %s: %s; its encrypted values are compared as stored [pin.wrong]",
		          err.where, err.what);
		status = TFS_EXIT_PROBLEM;
		dopt.user_pin = dopt.so_pin = NULL;
		rc = tfs_diff_stores(&d, a, b, &dopt, &err);
	}
	o->only = NULL;
	if (rc != TFS_OK) {
		cli_report(&err);
		return TFS_EXIT_USAGE;
	}
	ds->d[ds->n++] = d;
	return status;
}

/* Every selected token of A and B, each compared with its own PINs, in
 * directory-name order as one tfs_diff_stores orders them. */
static int diff_all(diff_opts *o, diffs *ds, const tfs_store *a, const tfs_store *b)
{
	size_t na = tfs_store_token_count(a), nb = tfs_store_token_count(b);
	ds->d = calloc(na + nb + 1, sizeof(*ds->d));
	const char **names = calloc(na + nb + 1, sizeof(*names));
	const tfs_token **toks = calloc(na + nb + 1, sizeof(*toks));
	if (ds->d == NULL || names == NULL || toks == NULL) {
		free(names);
		free(toks);
		cli_error("out of memory");
		return TFS_EXIT_USAGE;
	}
	int status = TFS_EXIT_OK;
	if (tfs_store_kind(a) == TFS_PATH_TOKEN && tfs_store_kind(b) == TFS_PATH_TOKEN) {
		/* The same token whatever its directories are called. */
		status = diff_token(o, ds, a, b, tfs_store_token(b, 0), NULL);
	} else if (tfs_store_kind(a) == TFS_PATH_OBJECT_FILE ||
	           tfs_store_kind(b) == TFS_PATH_OBJECT_FILE) {
		status = diff_token(o, ds, a, b, NULL, NULL); /* the library says why not */
	} else {
		size_t n = 0;
		for (size_t i = 0; i < na + nb; i++) {
			const tfs_token *t = i < na ? tfs_store_token(a, i) : tfs_store_token(b, i - na);
			names[n] = tfs_token_dirname(t);
			toks[n++] = t;
		}
		/* By name, B's token first (the newer state names it), once each. */
		qsort(names, n, sizeof(*names), cmp_name);
		for (size_t i = 0; i < n; i++) {
			if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
				continue;
			const tfs_token *tok = NULL;
			for (size_t k = 0; k < na + nb; k++)
				if (strcmp(tfs_token_dirname(toks[k]), names[i]) == 0 &&
				    (tok == NULL || k >= na))
					tok = toks[k];
			int s = diff_token(o, ds, a, b, tok, names[i]);
			status = s > status ? s : status;
			if (s == TFS_EXIT_USAGE)
				break;
		}
	}
	free(names);
	free(toks);
	return status;
}

static const char *state_name(tfs_diff_state s)
{
	switch (s) {
	case TFS_DIFF_SAME: return "same";
	case TFS_DIFF_CHANGED: return "changed";
	case TFS_DIFF_ADDED: return "added";
	case TFS_DIFF_REMOVED: return "removed";
	}
	return "?";
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* An object rewritten by SoftHSM with nothing else changed: summarised. */
static bool generation_only(const tfs_finding *f)
{
	return strcmp(tfs_finding_code(f), "seal.generation-bumped") == 0 &&
	       tfs_finding_object(f) != NULL;
}

/* "attribute-changed" for "seal.attribute-changed". */
static const char *kind(const tfs_finding *f)
{
	const char *c = tfs_finding_code(f);
	return strncmp(c, "seal.", 5) == 0 ? c + 5 : c;
}

static void render_text(const tfs_diff *d)
{
	char lb[200], db[1200], fb[1200], mb[8192];
	for (size_t i = 0; d != NULL && i < tfs_diff_token_count(d); i++) {
		const tfs_diff_token *t = tfs_diff_token_at(d, i);
		printf("token \"%s\" (%s): %s\n", cli_safe(tfs_diff_token_label(t), lb, sizeof(lb)),
		       cli_safe(tfs_diff_token_dir(t), db, sizeof(db)), state_name(tfs_diff_token_state(t)));
		size_t gen_only = 0;
		for (size_t k = 0; k < tfs_diff_token_change_count(t); k++) {
			const tfs_finding *f = tfs_diff_token_change(t, k);
			if (generation_only(f)) {
				gen_only++;
				continue;
			}
			printf("  %s: %s\n", cli_safe(base(tfs_finding_path(f)), fb, sizeof(fb)),
			       cli_safe(tfs_finding_message(f), mb, sizeof(mb)));
		}
		if (gen_only > 0)
			printf("  %zu object%s rewritten by SoftHSM with every attribute the same "
			       "(generation only)\n", gen_only, gen_only == 1 ? "" : "s");
		if (tfs_diff_token_state(t) == TFS_DIFF_CHANGED && !tfs_diff_token_unlocked(t))
			printf("  (no PIN: encrypted values compared as stored)\n");
	}
}

static json_object *change_json(const tfs_finding *f)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "change", json_object_new_string(kind(f)));
	json_object_object_add(j, "code", json_object_new_string(tfs_finding_code(f)));
	json_object_object_add(j, "severity",
	                       json_object_new_string(tfs_severity_name(tfs_finding_severity(f))));
	json_object_object_add(j, "file", cli_json_string(base(tfs_finding_path(f))));
	json_object_object_add(j, "object", cli_json_string(tfs_finding_object(f)));
	uint64_t type;
	if (tfs_finding_attribute(f, &type)) {
		const char *n = tfs_name(TFS_NS_CKA, type);
		char hb[24];
		snprintf(hb, sizeof(hb), "0x%" PRIx64, type);
		json_object_object_add(j, "attribute", json_object_new_string(n ? n : hb));
		json_object_object_add(j, "type", json_object_new_uint64(type));
		json_object_object_add(j, "old", cli_json_string(tfs_finding_old_value(f)));
		json_object_object_add(j, "new", cli_json_string(tfs_finding_new_value(f)));
	}
	json_object_object_add(j, "message", cli_json_string(tfs_finding_message(f)));
	return j;
}

static void render_json(const diffs *ds, const char *a, const char *b, int status)
{
	json_object *root = json_object_new_object(), *tokens = json_object_new_array();
	json_object_object_add(root, "format_version", json_object_new_int(1));
	json_object_object_add(root, "command", json_object_new_string("diff"));
	json_object_object_add(root, "a", cli_json_string(a));
	json_object_object_add(root, "b", cli_json_string(b));
	json_object_object_add(root, "equal", ds ? json_object_new_boolean(all_equal(ds)) : NULL);
	for (size_t di = 0; ds != NULL && di < ds->n; di++) {
	const tfs_diff *d = ds->d[di];
	for (size_t i = 0; i < tfs_diff_token_count(d); i++) {
		const tfs_diff_token *t = tfs_diff_token_at(d, i);
		json_object *j = json_object_new_object(), *ch = json_object_new_array(),
		            *gen = json_object_new_array();
		json_object_object_add(j, "dir", cli_json_string(tfs_diff_token_dir(t)));
		json_object_object_add(j, "label", cli_json_string(tfs_diff_token_label(t)));
		json_object_object_add(j, "serial", cli_json_string(tfs_diff_token_serial(t)));
		json_object_object_add(j, "state", json_object_new_string(state_name(tfs_diff_token_state(t))));
		json_object_object_add(j, "unlocked", json_object_new_boolean(tfs_diff_token_unlocked(t)));
		for (size_t k = 0; k < tfs_diff_token_change_count(t); k++) {
			const tfs_finding *f = tfs_diff_token_change(t, k);
			if (generation_only(f))
				json_object_array_add(gen, cli_json_string(tfs_finding_object(f)));
			else
				json_object_array_add(ch, change_json(f));
		}
		json_object_object_add(j, "changes", ch);
		json_object_object_add(j, "generation_only", gen);
		json_object_array_add(tokens, j);
	}
	}
	json_object_object_add(root, "tokens", tokens);
	json_object_object_add(root, "exit", json_object_new_int(status));
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
	                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

int cmd_diff(int argc, char **argv)
{
	diff_opts o = {.co = {.cmd = "diff"}};
	int status = TFS_EXIT_USAGE;
	tfs_store *a = NULL, *b = NULL;
	diffs ds = {0};
	int first = parse_args(&o, argc, argv);
	if (first < 0 || cli_prepare_pins(&o.co, argv + first, 2, false) != TFS_EXIT_OK)
		goto out;
	/* Either side may be an archive (last night's backup), read in memory. */
	if (cli_open_store(&o.co, argv[first], &a) != TFS_EXIT_OK ||
	    cli_open_store(&o.co, argv[first + 1], &b) != TFS_EXIT_OK)
		goto out;
	status = diff_all(&o, &ds, a, b);
	if (status == TFS_EXIT_USAGE) {
		if (o.co.json)
			render_json(NULL, argv[first], argv[first + 1], status);
		goto out;
	}
	int sel = cli_check_selection(&o.co);
	status = sel > status ? sel : status;
	if (status != TFS_EXIT_USAGE && !all_equal(&ds))
		status = TFS_EXIT_PROBLEM;
	if (o.co.json)
		render_json(&ds, argv[first], argv[first + 1], status);
	else
		for (size_t i = 0; i < ds.n; i++)
			render_text(ds.d[i]);
	if (fflush(stdout) != 0) {
		cli_error("diff: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
out:
	for (size_t i = 0; i < ds.n; i++)
		tfs_diff_free(ds.d[i]);
	free(ds.d);
	tfs_store_free(b);
	tfs_store_free(a);
	cli_common_free(&o.co);
	return status;
}
