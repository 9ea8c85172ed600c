/*
 * tokenfs dump: every token and object of one or more stores, as text, JSON
 * or exactly as SoftHSM's softhsm2-dump-file prints it. Read-only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "dump.h"
#include "pairing.h"
#include "tokenfs/pinspec.h"
#include "tokenfs/softhsm_dump.h"
#include "tokenfs/uri.h"

/* --format words, in the order of enum format (cli_common.format). */
enum format { FMT_TEXT, FMT_JSON, FMT_SOFTHSM };
static const char *const dump_formats[] = {"text", "json", "softhsm", NULL};

typedef struct dump_opts {
	cli_common co;   /* --token, --lock-timeout, PINs */
	char **objects;  /* --object selectors */
	size_t nobjects;
	size_t objects_matched;
	bool reveal;     /* print key material and token keys */
	bool brief;      /* text: one line per object, no attributes */
	tfs_path_kind kind; /* of the PATH being dumped */
} dump_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs dump [OPTIONS] PATH...\n"
	        "\n"
	        "Show every token and object of SoftHSMv2 token stores without SoftHSM.\n"
	        "PATH is a tokendir, one token directory or one .object file, or a tar\n"
	        "(.gz, .xz, .zst) or zip archive of them, read in memory, never unpacked.\n"
	        "\n"
	        "Options:\n"
	        "  -f, --format FMT      text (default), json (docs/json.md), or softhsm:\n"
	        "                        for every .object file exactly what SoftHSM 2.6.1's\n"
	        "                        softhsm2-dump-file prints, token.object first;\n"
	        "                        needs --reveal when a file holds key material\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory name\n"
	        "                        is SEL (repeatable)\n"
	        "  -o, --object UUID     only objects with this uuid (repeatable)\n"
	        "  -b, --brief           text: one summary line per object and the keys,\n"
	        "                        without the attributes\n"
	        "      --user-pin [[TOKEN=]SPEC]  decrypt private objects with the user PIN\n"
	        "      --so-pin [[TOKEN=]SPEC]    ... or the SO PIN; with both, check that\n"
	        "                        they unwrap the same token key. SPEC: pass:PIN,\n"
	        "                        env:VAR, file:PATH, fd:N or stdin (first line), or\n"
	        "                        prompt; without SPEC, prompt without echo\n"
	        "      --reveal          also print key material and the token key, which\n"
	        "                        are otherwise shown as <redacted: N bytes> with a\n"
	        "                        fingerprint (key check value or SHA-256 prefix),\n"
	        "                        whether stored encrypted or not\n"
	        "      --lock-timeout MS how long to wait for a SoftHSM writer (default 5000)\n"
	        CLI_ARCHIVE_HELP
	        "  -h, --help            this text\n"
	        "\n"
	        "Without a PIN, private objects' byte strings are shown as ciphertext,\n"
	        "marked encrypted. Key material is redacted however it is stored.\n"
	        "Labels show as text (escaped), other byte strings as hex.\n"
	        "Each token and object shows its PKCS#11 URI (RFC 7512), the string\n"
	        "p11tool prints for it; a private object's needs a PIN (its label and\n"
	        "ID are encrypted) and is otherwise left out, with the reason.\n"
	        "pass:PIN puts the PIN on the command line, where other users can see it\n"
	        "in ps: prefer env:, file: or the prompt.\n"
	        CLI_PIN_TOKEN_HELP
	        "A wrong PIN is a finding about its token ([pin.wrong]): its values are\n"
	        "shown encrypted, the other tokens decrypted. A PIN with one .object file\n"
	        "opens the token.object beside it; if there is none, dump says so.\n"
	        "\n"
	        "Exit codes: 0 clean; 1 something could not be parsed, decrypted or is\n"
	        "anomalous, or a PIN was wrong (each problem on stderr, the rest still\n"
	        "dumped); 2 usage or I/O error.\n");
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


/* The command's own options (cli_parse handles the rest). */
static int dump_option(void *ctx, int c, int argc, char **argv)
{
	dump_opts *o = ctx;
	(void)argc;
	(void)argv;
	switch (c) {
	case 'o':
		if (!push(&o->objects, &o->nobjects, optarg))
			return -1;
		break;
	case 'R':
		o->reveal = true;
		break;
	case 'b':
		o->brief = true;
		break;
	default:
		break;
	}
	return 0;
}

/* Returns -1 on a usage error, else the index of the first PATH. */
static int parse_args(dump_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_FORMAT_LONGOPT,
		CLI_COMMON_LONGOPTS, CLI_ARCHIVE_LONGOPTS,
		{"object", required_argument, NULL, 'o'},
		{"reveal", no_argument, NULL, 'R'},
		{"brief", no_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "f:t:o:bh", longopts, dump_option, o, usage);
	if (first < 0)
		return -1;
	return first;
}

static bool object_selected(dump_opts *o, const tfs_token *tok, size_t i)
{
	if (o->nobjects == 0)
		return true;
	for (size_t k = 0; k < o->nobjects; k++)
		if (strcmp(o->objects[k], tfs_token_object_uuid(tok, i)) == 0 ||
		    strcmp(o->objects[k], tfs_token_object_file(tok, i)) == 0) {
			o->objects_matched++;
			return true;
		}
	return false;
}

/* An --object that selects nothing is a usage error, as for --token. */
static int check_objects_matched(const dump_opts *o)
{
	if (o->nobjects == 0 || o->objects_matched > 0)
		return TFS_EXIT_OK;
	cli_error("dump: no object matches --object %s (give a uuid or a <uuid>.object file name)",
	          o->objects[0]);
	return TFS_EXIT_USAGE;
}

/* Whether store finding i concerns a selected token (or the store as a whole). */
static bool finding_selected(dump_opts *o, const tfs_store *store, size_t i)
{
	const tfs_token *tok = tfs_store_finding_token(store, i);
	return o->co.ntokens == 0 || tok == NULL || cli_token_selected(&o->co, tok);
}

/* One anomaly as dump has always shown it: "PATH: offset N: message". */
static void show_anomaly(void *ctx, const tfs_finding *f)
{
	(void)ctx;
	cli_error("%s: offset %llu: %s", tfs_finding_path(f),
	          (unsigned long long)tfs_finding_offset(f), tfs_finding_message(f));
}

/* Anomalies of a well-formed object, the library's per-object check that
 * verify-integrity runs too (tfs_object_anomalies). Returns true when there
 * were any (or memory ran out, which is reported). */
static bool report_anomalies(const char *path, const tfs_object *obj)
{
	int n = tfs_object_anomalies(obj, path, NULL, show_anomaly, NULL);
	if (n < 0)
		cli_error("out of memory");
	return n != 0;
}

static int max_status(int a, int b)
{
	return a > b ? a : b;
}

/* A file that cannot be read or is over the cap is a problem of the store
 * (1), as the same for token.object and in verify-integrity; only what
 * stops the run (a writer past --lock-timeout, no memory) is 2. */
static int read_status(int rc)
{
	return rc == TFS_E_NOMEM || rc == TFS_E_LOCKED ? TFS_EXIT_USAGE : TFS_EXIT_PROBLEM;
}

/*
 * A PIN was given but the token has no token.object to open with it: say
 * exactly why, naming the file, rather than show ciphertext as if no PIN
 * had been given. Exit status 1: values that were to be decrypted are not.
 */
static int no_metadata(const dump_opts *o, const tfs_token *tok)
{
	const char *why = NULL;
	for (size_t i = 0; i < tfs_token_finding_count(tok) && why == NULL; i++) {
		const tfs_finding *f = tfs_token_finding(tok, i);
		if (strncmp(tfs_finding_code(f), "token.metadata-", 15) == 0)
			why = tfs_finding_message(f);
	}
	bool one_file = o->kind == TFS_PATH_OBJECT_FILE && tfs_token_object_count(tok) == 1;
	const char *what = one_file ? tfs_token_object_path(tok, 0) : tfs_token_path(tok);
	if (why != NULL)
		cli_error("dump: %s: the PIN is not used: %s/token.object, which holds the PIN blobs, "
		          "cannot be read (%s); encrypted values are shown as stored", what,
		          tfs_token_path(tok), why);
	else if (one_file)
		cli_error("dump: %s: the PIN is not used: there is no token.object beside it in %s, so "
		          "it is not in its token directory and no PIN blob opens its values; give the "
		          "file where it sits beside its token.object", what, tfs_token_path(tok));
	else
		cli_error("dump: %s: the PIN is not used: the token directory has no readable "
		          "token.object (see above); encrypted values are shown as stored", what);
	return TFS_EXIT_PROBLEM;
}

/* Unlocks a token with its PINs; *key is NULL when none worked. A wrong
 * PIN for one token is a finding about it: its values stay encrypted and
 * the other tokens are still dumped. */
static int unlock_token(dump_opts *o, const tfs_token *tok, tfs_token_key **key,
                        dump_token_info *info)
{
	*key = NULL;
	memset(info, 0, sizeof(*info));
	if (!o->co.want_user && !o->co.want_so)
		return TFS_EXIT_OK;
	if (tfs_token_metadata(tok) == NULL)
		return no_metadata(o, tok);
	int status = cli_unlock_token(&o->co, tok, "its private values are shown encrypted", key,
	                              &info->user, &info->so);
	if (*key != NULL && o->reveal)
		info->token_key = tfs_token_key_bytes(*key);
	return status;
}

/*
 * The object's PKCS#11 URI for the renderers, or NULL with the reason in
 * why: a private object's label and ID need a PIN, and a URI without them
 * would name other objects too. Never changes the exit status: a value that
 * does not decrypt is reported by the views.
 */
static char *object_uri(const tfs_token *tok, const tfs_object *obj, const tfs_token_key *key,
                        char *why, size_t size)
{
	char *uri;
	tfs_error err;
	int rc = tfs_object_uri(&uri, tok, obj, key, &err);
	if (rc == TFS_OK)
		return uri;
	if (rc == TFS_E_INVALID)
		snprintf(why, size, "the label and ID of a private object are stored encrypted: "
		                    "give --user-pin or --so-pin");
	else
		snprintf(why, size, "%s", err.what);
	return NULL;
}

/*
 * What the loader's step makes of one object, on whichever thread gets to
 * it first: its views (values decrypted and decoded: most of a dump's work)
 * and its URI. Both need the token key: each worker has its own copy, and
 * the main thread does not use it while the loader lives. The main thread
 * reports, pairs and writes, in order.
 */
typedef struct dump_ready {
	dump_value *views; /* NULL: out of memory */
	int status;
	char *uri;
	char why[600];
} dump_ready;

typedef struct ready_ctx {
	const tfs_token *tok;
	const tfs_token_key *key[2]; /* one per worker */
	bool reveal;
} ready_ctx;

static void *ready_run(void *ctx, unsigned worker, size_t index, const tfs_object *obj)
{
	(void)index;
	const ready_ctx *c = ctx;
	const tfs_token_key *key = c->key[worker];
	dump_ready *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->status = dump_make_views(&r->views, obj, key, c->reveal);
	r->uri = object_uri(c->tok, obj, key, r->why, sizeof(r->why));
	return r;
}

static void ready_free(void *ctx, void *result, const tfs_object *obj)
{
	(void)ctx;
	dump_ready *r = result;
	if (r == NULL)
		return;
	if (r->uri != NULL) /* may hold a decrypted label, like the output buffer */
		OPENSSL_cleanse(r->uri, strlen(r->uri));
	free(r->uri);
	dump_free_views(r->views, obj);
	free(r);
}

/* Dumps one token's objects through the sink; returns an exit status. */
static int dump_token(dump_opts *o, dump_sink *sink, const tfs_token *tok)
{
	tfs_token_key *key;
	dump_token_info info;
	int status = unlock_token(o, tok, &key, &info);
	char *token_uri = NULL;
	tfs_error uerr;
	if (tfs_token_uri(&token_uri, tok, &uerr) == TFS_OK)
		info.uri = token_uri;
	tfs_pairing *pairs = tfs_pairing_new();
	sink->token_begin(sink, tok, &info);
	free(token_uri);
	/* The selected objects, read and parsed ahead on a second thread, which
	 * also makes views when it is ahead. */
	tfs_token_key *key2 = NULL;
	tfs_error lerr;
	ready_ctx rctx = {.tok = tok, .key = {key, NULL}, .reveal = o->reveal};
	tfs_loader_step step = {.run = ready_run, .discard = ready_free, .ctx = &rctx};
	size_t count = tfs_token_object_count(tok), nsel = 0;
	size_t *sel = NULL;
	if (key == NULL || tfs_token_key_dup(&key2, key, &lerr) == TFS_OK) {
		rctx.key[1] = key2;
		sel = malloc((count ? count : 1) * sizeof(*sel));
	}
	tfs_loader *loader = NULL;
	if (sel != NULL) {
		for (size_t i = 0; i < count; i++)
			if (object_selected(o, tok, i))
				sel[nsel++] = i;
		(void)tfs_loader_new_with_step(&loader, tok, sel, nsel, &step, &lerr);
		free(sel);
	}
	if (loader == NULL) {
		cli_error("out of memory");
		nsel = 0;
		status = TFS_EXIT_USAGE;
	}
	for (size_t k = 0; k < nsel; k++) {
		size_t i;
		tfs_object *obj = NULL;
		void *result = NULL;
		char summary[1024] = "";
		tfs_error err;
		int rc = tfs_loader_next_result(loader, &i, &obj, &result, &err);
		dump_ready *r = result;
		if (rc == TFS_E_NOTFOUND)
			continue; /* destroyed since the listing by a live SoftHSM: gone */
		if (rc == TFS_OK) {
			const char *path = tfs_token_object_path(tok, i);
			if (report_anomalies(path, obj))
				status = max_status(status, TFS_EXIT_PROBLEM);
			if (r == NULL || r->views == NULL) {
				cli_error("out of memory");
				ready_free(NULL, r, obj);
				tfs_object_free(obj);
				status = TFS_EXIT_USAGE;
				break;
			}
			dump_report_views(r->views, obj, path);
			status = max_status(status, r->status);
			dump_pairing_add(pairs, tfs_token_object_uuid(tok, i), obj, r->views, summary,
			                 sizeof(summary));
			sink->object_uri = r->uri;
			sink->object_uri_unknown = r->uri == NULL ? r->why : NULL;
		} else {
			cli_report(&err);
			status = max_status(status, read_status(rc));
		}
		sink->object(sink, tok, i, obj, r != NULL ? r->views : NULL, summary,
		             rc == TFS_OK ? NULL : &err);
		sink->object_uri = sink->object_uri_unknown = NULL;
		ready_free(NULL, r, obj);
		tfs_object_free(obj);
	}
	tfs_loader_free(loader);
	tfs_token_key_free(key2);
	size_t nkeys = 0;
	const dump_key *keys = pairs != NULL ? tfs_pairing_keys(pairs, &nkeys) : NULL;
	sink->token_end(sink, tok, keys, nkeys);
	tfs_pairing_free(pairs);
	tfs_token_key_free(key);
	return status;
}

/* --format softhsm: raw bytes of every .object through the exact renderer.
 * Parsing them too decides the exit status. */
static int dump_raw(dump_opts *o, FILE *out, const char *path, const uint8_t *data, size_t size)
{
	/* Checked again here: a file may have changed since the first pass. */
	if (!o->reveal && tfs_softhsm_shows_key_material(data, size)) {
		cli_error("%s: holds key material; not shown without --reveal", path);
		return TFS_EXIT_USAGE;
	}
	tfs_softhsm_dump(out, path, data, size);
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

/* Every .object of a token through the exact softhsm2-dump-file renderer,
 * token.object first, each named by the path SoftHSM's tool would be given. */
static int dump_token_softhsm(dump_opts *o, FILE *out, const tfs_token *tok)
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
			status = dump_raw(o, out, path, data, size);
			free(path);
			free(data);
		} else if (read_status(rc) == TFS_EXIT_USAGE) {
			cli_report(&err);
			return TFS_EXIT_USAGE;
		} /* else the store's token.metadata-unreadable finding said it */
	}
	for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
		if (!object_selected(o, tok, i))
			continue;
		int rc = tfs_token_read_object(&data, &size, tok, i, &err);
		if (rc == TFS_E_NOTFOUND)
			continue; /* destroyed since the listing: gone */
		if (rc != TFS_OK) {
			cli_report(&err);
			status = max_status(status, read_status(rc));
			continue;
		}
		status = max_status(status, dump_raw(o, out, tfs_token_object_path(tok, i), data, size));
		free(data);
	}
	return status;
}

/*
 * --format softhsm prints files as stored, key material included: without
 * --reveal, refuse before any output when a selected file holds some.
 * Returns the number of such files (the first few named on stderr).
 */
static size_t softhsm_key_files(dump_opts *o, const char *path)
{
	tfs_open_options opts = {.lock_timeout_ms = o->co.lock_ms};
	tfs_store *store;
	tfs_error err;
	size_t found = 0;
	if (tfs_store_open(&store, path, &opts, &err) != TFS_OK)
		return 0; /* the real pass reports it */
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		if (!cli_token_selected(&o->co, tok))
			continue;
		for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
			uint8_t *data;
			size_t size;
			if (!object_selected(o, tok, i) ||
			    tfs_token_read_object(&data, &size, tok, i, &err) != TFS_OK)
				continue;
			if (tfs_softhsm_shows_key_material(data, size) && found++ < 5)
				cli_error("%s: holds key material", tfs_token_object_path(tok, i));
			OPENSSL_cleanse(data, size);
			free(data);
		}
	}
	tfs_store_free(store);
	return found;
}

static int dump_path(dump_opts *o, dump_sink *sink, const char *path)
{
	tfs_store *store;
	if (cli_open_store(&o->co, path, &store) != TFS_EXIT_OK)
		return TFS_EXIT_USAGE;
	o->kind = tfs_store_kind(store);
	int status = TFS_EXIT_OK;
	for (size_t i = 0; i < tfs_store_finding_count(store); i++) {
		const tfs_finding *f = tfs_store_finding(store, i);
		if (tfs_finding_severity(f) == TFS_SEV_INFO || !finding_selected(o, store, i))
			continue;
		cli_report_finding(f);
		status = max_status(status, TFS_EXIT_PROBLEM);
	}
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		if (!cli_token_selected(&o->co, tok))
			continue;
		int s = o->co.format == FMT_SOFTHSM ? dump_token_softhsm(o, sink->out, tok)
		                                 : dump_token(o, sink, tok);
		status = max_status(status, s);
	}
	/* One --lock-timeout for the whole run, over every PATH. */
	unsigned left = tfs_store_wait_left_ms(store);
	o->co.lock_ms = left > 0 ? left : 1;
	tfs_store_free(store);
	return status;
}

static void free_opts(dump_opts *o)
{
	cli_common_free(&o->co);
	free(o->objects);
}

int cmd_dump(int argc, char **argv)
{
	dump_opts o = {.co = {.cmd = "dump", .formats = dump_formats}};
	int first = parse_args(&o, argc, argv);
	if (first >= 0 && o.co.format == FMT_SOFTHSM && (o.co.want_user || o.co.want_so)) {
		cli_error("dump: --format softhsm shows files as stored; it takes no PIN");
		first = -1;
	}
	if (first >= 0 && o.brief && o.co.format != FMT_TEXT) {
		cli_error("dump: --brief is a form of the text output; scripts select from --format json");
		first = -1;
	}
	if (first >= 0 && o.co.format == FMT_SOFTHSM && !o.reveal) {
		size_t found = 0;
		for (int i = first; i < argc; i++)
			found += softhsm_key_files(&o, argv[i]);
		o.co.matched = 0;
		if (found > 0) {
			cli_error("dump: --format softhsm shows files as stored, and %zu file%s key "
			          "material (secret or private key values, encrypted or not); add "
			          "--reveal to print %s, or use the default format, which redacts it",
			          found, found == 1 ? " holds" : "s hold", found == 1 ? "it" : "them");
			free_opts(&o);
			return TFS_EXIT_USAGE;
		}
	}
	if (first < 0 || cli_prepare_pins(&o.co, argv + first, argc - first, false) != TFS_EXIT_OK) {
		free_opts(&o);
		return TFS_EXIT_USAGE;
	}
	/* Output may hold decrypted values: the buffer is wiped at the end. */
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	dump_sink sink;
	if (o.co.format == FMT_JSON)
		dump_json_init(&sink, stdout);
	else
		dump_text_init(&sink, stdout, o.brief);
	int status = TFS_EXIT_OK;
	for (int i = first; i < argc; i++)
		status = max_status(status, dump_path(&o, &sink, argv[i]));
	if (o.co.format != FMT_SOFTHSM)
		sink.finish(&sink);
	status = max_status(status, cli_check_selection(&o.co));
	status = max_status(status, check_objects_matched(&o));
	if (fflush(stdout) != 0) {
		cli_error("dump: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
	OPENSSL_cleanse(obuf, sizeof(obuf));
	free_opts(&o);
	return status;
}
