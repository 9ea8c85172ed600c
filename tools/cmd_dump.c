/*
 * tokenfs dump: every token and object of one or more stores, as text, JSON
 * or exactly as SoftHSM's softhsm2-dump-file prints it. Read-only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dump.h"
#include "render_softhsm.h"

enum format { FMT_TEXT, FMT_JSON, FMT_SOFTHSM };

typedef struct dump_opts {
	enum format format;
	char **tokens; /* --token selectors */
	size_t ntokens;
	char **objects; /* --object selectors */
	size_t nobjects;
	unsigned lock_ms;
} dump_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs dump [OPTIONS] PATH...\n"
	        "\n"
	        "Show every token and object of SoftHSMv2 token stores without SoftHSM.\n"
	        "PATH is a tokendir, one token directory or one .object file.\n"
	        "\n"
	        "Options:\n"
	        "  -f, --format FMT      text (default), json (docs/json.md), or softhsm:\n"
	        "                        for every .object file exactly what SoftHSM 2.6.1's\n"
	        "                        softhsm2-dump-file prints, token.object first\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory name\n"
	        "                        is SEL (repeatable)\n"
	        "  -o, --object UUID     only objects with this uuid (repeatable)\n"
	        "      --lock-timeout MS how long to wait for a SoftHSM writer (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "Private objects' byte strings are shown as ciphertext, marked encrypted.\n"
	        "\n"
	        "Exit codes: 0 clean; 1 something could not be parsed or is anomalous\n"
	        "(each problem on stderr, the rest still dumped); 2 usage or I/O error.\n");
}

static bool push(char ***list, size_t *n, char *value)
{
	char **p = realloc(*list, (*n + 1) * sizeof(*p));
	if (p == NULL)
		return false;
	p[(*n)++] = value;
	*list = p;
	return true;
}

/* Returns -1 on a usage error, else the index of the first PATH. */
static int parse_args(dump_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"token", required_argument, NULL, 't'},
		{"object", required_argument, NULL, 'o'},
		{"lock-timeout", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:t:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "text") == 0)
				o->format = FMT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				o->format = FMT_JSON;
			else if (strcmp(optarg, "softhsm") == 0)
				o->format = FMT_SOFTHSM;
			else {
				cli_error("dump: unknown format '%s': use text, json or softhsm", optarg);
				return -1;
			}
			break;
		case 't':
			if (!push(&o->tokens, &o->ntokens, optarg))
				return -1;
			break;
		case 'o':
			if (!push(&o->objects, &o->nobjects, optarg))
				return -1;
			break;
		case 'L': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v == 0 || v > 3600000) {
				cli_error("dump: --lock-timeout takes milliseconds from 1 to 3600000");
				return -1;
			}
			o->lock_ms = (unsigned)v;
			break;
		}
		case 'h':
			usage(stdout);
			exit(TFS_EXIT_OK);
		default:
			fprintf(stderr, "Try 'tokenfs dump --help'.\n");
			return -1;
		}
	}
	if (optind >= argc) {
		cli_error("dump: no PATH given; see 'tokenfs dump --help'");
		return -1;
	}
	return optind;
}

static bool token_selected(const dump_opts *o, const tfs_token *tok)
{
	if (o->ntokens == 0)
		return true;
	for (size_t i = 0; i < o->ntokens; i++)
		if (strcmp(o->tokens[i], tfs_token_label(tok)) == 0 ||
		    strcmp(o->tokens[i], tfs_token_serial(tok)) == 0 ||
		    strcmp(o->tokens[i], tfs_token_dirname(tok)) == 0)
			return true;
	return false;
}

static bool object_selected(const dump_opts *o, const tfs_token *tok, size_t i)
{
	if (o->nobjects == 0)
		return true;
	for (size_t k = 0; k < o->nobjects; k++)
		if (strcmp(o->objects[k], tfs_token_object_uuid(tok, i)) == 0 ||
		    strcmp(o->objects[k], tfs_token_object_file(tok, i)) == 0)
			return true;
	return false;
}

/* Whether a finding concerns a selected token (or the store as a whole). */
static bool finding_selected(const dump_opts *o, const tfs_store *store, const tfs_finding *f)
{
	if (o->ntokens == 0)
		return true;
	const char *p = tfs_finding_path(f);
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		size_t n = strlen(tfs_token_path(tok));
		if (strncmp(p, tfs_token_path(tok), n) == 0 && (p[n] == '\0' || p[n] == '/'))
			return token_selected(o, tok);
	}
	return true;
}

/* Anomalies of a well-formed object: SoftHSM loads it, but it is not what
 * SoftHSM writes in normal operation. Returns true when there were any. */
static bool report_anomalies(const char *path, const tfs_object *obj)
{
	bool any = false;
	if (tfs_object_attr_count(obj) == 0) {
		cli_error("%s: offset 8: generation-only object file: no attributes "
		          "(a creation cut short, or a torn write)", path);
		any = true;
	}
	/* Report each repeat where it stands, naming the one it hides. */
	size_t n = tfs_object_attr_count(obj);
	for (size_t k = 0; k < n; k++) {
		const tfs_attr *a = tfs_object_attr(obj, k);
		if (!tfs_attr_is_shadowed(a))
			continue;
		const tfs_attr *again = NULL;
		for (size_t j = k + 1; j < n && again == NULL; j++)
			if (tfs_attr_type(tfs_object_attr(obj, j)) == tfs_attr_type(a))
				again = tfs_object_attr(obj, j);
		const char *name = tfs_name(TFS_NS_CKA, tfs_attr_type(a));
		char hex[24];
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)tfs_attr_type(a));
		cli_error("%s: offset %llu: attribute %s repeats the one at offset %llu; "
		          "SoftHSM uses the last one", path,
		          (unsigned long long)tfs_attr_offset(again), name ? name : hex,
		          (unsigned long long)tfs_attr_offset(a));
		any = true;
	}
	return any;
}

/* Dumps one token's objects through the sink; returns an exit status. */
static int dump_token(const dump_opts *o, dump_sink *sink, const tfs_token *tok)
{
	int status = TFS_EXIT_OK;
	sink->token_begin(sink, tok);
	for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
		if (!object_selected(o, tok, i))
			continue;
		tfs_object *obj = NULL;
		tfs_error err;
		int rc = tfs_token_load_object(&obj, tok, i, &err);
		if (rc == TFS_E_NOMEM || rc == TFS_E_LOCKED || rc == TFS_E_IO) {
			cli_report(&err);
			status = TFS_EXIT_USAGE;
		} else if (rc != TFS_OK) {
			cli_report(&err);
			if (status < TFS_EXIT_PROBLEM)
				status = TFS_EXIT_PROBLEM;
		} else if (report_anomalies(tfs_token_object_path(tok, i), obj) && status < TFS_EXIT_PROBLEM) {
			status = TFS_EXIT_PROBLEM;
		}
		sink->object(sink, tok, i, obj, rc == TFS_OK ? NULL : &err);
		tfs_object_free(obj);
	}
	sink->token_end(sink, tok);
	return status;
}

/* --format softhsm: raw bytes of every .object through the exact renderer.
 * Parsing them too decides the exit status. */
static int dump_raw(FILE *out, const char *path, const uint8_t *data, size_t size)
{
	tfs_render_softhsm(out, path, data, size);
	tfs_object *obj = NULL;
	tfs_error err;
	int rc = tfs_object_parse(&obj, data, size, &err);
	if (rc != TFS_OK) {
		snprintf(err.where, sizeof(err.where), "%s", path);
		cli_report(&err);
		return TFS_EXIT_PROBLEM;
	}
	/* token.object has no attributes only when damaged; same rules apply. */
	int status = report_anomalies(path, obj) ? TFS_EXIT_PROBLEM : TFS_EXIT_OK;
	tfs_object_free(obj);
	return status;
}

static int max_status(int a, int b)
{
	return a > b ? a : b;
}

/* Every .object of a token through the exact softhsm2-dump-file renderer,
 * token.object first, each named by the path SoftHSM's tool would be given. */
static int dump_token_softhsm(const dump_opts *o, FILE *out, const tfs_token *tok)
{
	int status = TFS_EXIT_OK;
	uint8_t *data;
	size_t size;
	tfs_error err;
	if (o->nobjects == 0) {
		int rc = tfs_token_read_metadata(&data, &size, tok, &err);
		if (rc == TFS_OK) {
			char *path = NULL;
			if (asprintf(&path, "%s/token.object", tfs_token_path(tok)) < 0) {
				free(data);
				return TFS_EXIT_USAGE;
			}
			status = dump_raw(out, path, data, size);
			free(path);
			free(data);
		} else if (rc != TFS_E_NOTFOUND && rc != TFS_E_IO) {
			cli_report(&err);
			return TFS_EXIT_USAGE;
		}
	}
	for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
		if (!object_selected(o, tok, i))
			continue;
		if (tfs_token_read_object(&data, &size, tok, i, &err) != TFS_OK) {
			cli_report(&err);
			status = TFS_EXIT_USAGE;
			continue;
		}
		status = max_status(status, dump_raw(out, tfs_token_object_path(tok, i), data, size));
		free(data);
	}
	return status;
}

static int dump_path(const dump_opts *o, dump_sink *sink, const char *path)
{
	tfs_open_options opts = {.lock_timeout_ms = o->lock_ms};
	tfs_store *store;
	tfs_error err;
	if (tfs_store_open(&store, path, &opts, &err) != TFS_OK) {
		cli_report(&err);
		return TFS_EXIT_USAGE;
	}
	int status = TFS_EXIT_OK;
	for (size_t i = 0; i < tfs_store_finding_count(store); i++) {
		const tfs_finding *f = tfs_store_finding(store, i);
		if (tfs_finding_severity(f) == TFS_SEV_INFO || !finding_selected(o, store, f))
			continue;
		cli_report_finding(f);
		status = max_status(status, TFS_EXIT_PROBLEM);
	}
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		if (!token_selected(o, tok))
			continue;
		int s = o->format == FMT_SOFTHSM ? dump_token_softhsm(o, sink->out, tok)
		                                 : dump_token(o, sink, tok);
		status = max_status(status, s);
	}
	tfs_store_free(store);
	return status;
}

int cmd_dump(int argc, char **argv)
{
	dump_opts o = {.format = FMT_TEXT};
	int first = parse_args(&o, argc, argv);
	if (first < 0) {
		free(o.tokens);
		free(o.objects);
		return TFS_EXIT_USAGE;
	}
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	dump_sink sink;
	if (o.format == FMT_JSON)
		dump_json_init(&sink, stdout);
	else
		dump_text_init(&sink, stdout);
	int status = TFS_EXIT_OK;
	for (int i = first; i < argc; i++)
		status = max_status(status, dump_path(&o, &sink, argv[i]));
	if (o.format != FMT_SOFTHSM)
		sink.finish(&sink);
	if (fflush(stdout) != 0) {
		cli_error("dump: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
	free(o.tokens);
	free(o.objects);
	return status;
}
