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

enum format { FMT_TEXT, FMT_JSON, FMT_SOFTHSM };

typedef struct dump_opts {
	cli_common co;   /* --token, --lock-timeout, PINs */
	enum format format;
	char **objects;  /* --object selectors */
	size_t nobjects;
	size_t objects_matched;
	bool reveal;     /* print key material and token keys */
	bool brief;      /* text: one line per object, no attributes */
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
	        "      --user-pin [SPEC] decrypt private objects with the user PIN\n"
	        "      --so-pin [SPEC]   ... or the SO PIN; with both, check that they\n"
	        "                        unwrap the same token key\n"
	        "                        SPEC: pass:PIN, env:VAR, file:PATH, fd:N or stdin\n"
	        "                        (first line); without SPEC, prompt without echo\n"
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
	        "pass:PIN puts the PIN on the command line, where other users can see it\n"
	        "in ps: prefer env:, file: or the prompt.\n"
	        "\n"
	        "Exit codes: 0 clean; 1 something could not be parsed, decrypted or is\n"
	        "anomalous (each problem on stderr, the rest still dumped); 2 usage or I/O\n"
	        "error, or a wrong PIN.\n");
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
		{"format", required_argument, NULL, 'f'},
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

/* One unlock attempt; reports a failure and returns its exit status. */
static int try_unlock(tfs_token_key **key, const tfs_token *tok, tfs_pin_role role,
                      const uint8_t *pin, size_t len, tfs_layout *layout)
{
	tfs_error err;
	int rc = tfs_token_unlock(key, tok, role, pin, len, &err);
	if (rc == TFS_OK) {
		*layout = tfs_token_key_layout(*key);
		return TFS_EXIT_OK;
	}
	cli_report(&err);
	/* A damaged blob is a finding about the store; a wrong PIN or a
	 * missing blob is the caller's mistake. */
	return rc == TFS_E_DAMAGED ? TFS_EXIT_PROBLEM : TFS_EXIT_USAGE;
}

/* Unlocks a token with the PINs given; *key is NULL when none worked. */
static int unlock_token(dump_opts *o, const tfs_token *tok, tfs_token_key **key,
                        dump_token_info *info)
{
	*key = NULL;
	memset(info, 0, sizeof(*info));
	if ((!o->co.want_user && !o->co.want_so) || tfs_token_metadata(tok) == NULL)
		return TFS_EXIT_OK;
	tfs_token_key *user = NULL, *so = NULL;
	int status = TFS_EXIT_OK;
	if (o->co.want_user)
		status = try_unlock(&user, tok, TFS_PIN_USER, o->co.user_pin, o->co.user_len, &info->user_layout);
	if (o->co.want_so)
		status = max_status(status, try_unlock(&so, tok, TFS_PIN_SO, o->co.so_pin, o->co.so_len,
		                                       &info->so_layout));
	if (user != NULL && so != NULL && !tfs_token_key_equal(user, so)) {
		cli_error("%s/token.object: the SO and user PIN blobs of token '%s' wrap different "
		          "token keys; objects are decrypted with the user's", tfs_token_path(tok),
		          tfs_token_label(tok));
		status = max_status(status, TFS_EXIT_PROBLEM);
	}
	*key = user != NULL ? user : so;
	tfs_token_key_free(user != NULL ? so : NULL);
	if (*key != NULL && o->reveal)
		info->token_key = tfs_token_key_bytes(*key);
	return status;
}

/* Dumps one token's objects through the sink; returns an exit status. */
static int dump_token(dump_opts *o, dump_sink *sink, const tfs_token *tok)
{
	tfs_token_key *key;
	dump_token_info info;
	int status = unlock_token(o, tok, &key, &info);
	tfs_pairing *pairs = tfs_pairing_new();
	sink->token_begin(sink, tok, &info);
	/* The selected objects, read and parsed ahead on a second thread. */
	size_t count = tfs_token_object_count(tok), nsel = 0;
	size_t *sel = malloc((count ? count : 1) * sizeof(*sel));
	tfs_loader *loader = NULL;
	tfs_error lerr;
	if (sel != NULL) {
		for (size_t i = 0; i < count; i++)
			if (object_selected(o, tok, i))
				sel[nsel++] = i;
		(void)tfs_loader_new(&loader, tok, sel, nsel, &lerr);
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
		dump_value *views = NULL;
		char summary[1024] = "";
		tfs_error err;
		int rc = tfs_loader_next(loader, &i, &obj, &err);
		if (rc == TFS_E_NOTFOUND)
			continue; /* destroyed since the listing by a live SoftHSM: gone */
		if (rc == TFS_OK) {
			const char *path = tfs_token_object_path(tok, i);
			if (report_anomalies(path, obj))
				status = max_status(status, TFS_EXIT_PROBLEM);
			int vs = dump_make_views(&views, path, obj, key, o->reveal);
			if (views == NULL) {
				cli_error("out of memory");
				tfs_object_free(obj);
				status = TFS_EXIT_USAGE;
				break;
			}
			status = max_status(status, vs);
			dump_pairing_add(pairs, tfs_token_object_uuid(tok, i), obj, views, summary,
			                 sizeof(summary));
		} else {
			cli_report(&err);
			status = max_status(status, read_status(rc));
		}
		sink->object(sink, tok, i, obj, views, summary, rc == TFS_OK ? NULL : &err);
		if (obj != NULL)
			dump_free_views(views, obj);
		tfs_object_free(obj);
	}
	tfs_loader_free(loader);
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
		int s = o->format == FMT_SOFTHSM ? dump_token_softhsm(o, sink->out, tok)
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
	dump_opts o = {.format = FMT_TEXT, .co = {.cmd = "dump"}};
	int first = parse_args(&o, argc, argv);
	if (first >= 0 && o.format == FMT_SOFTHSM && (o.co.want_user || o.co.want_so)) {
		cli_error("dump: --format softhsm shows files as stored; it takes no PIN");
		first = -1;
	}
	if (first >= 0 && o.brief && o.format != FMT_TEXT) {
		cli_error("dump: --brief is a form of the text output; scripts select from --format json");
		first = -1;
	}
	if (first >= 0 && o.format == FMT_SOFTHSM && !o.reveal) {
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
	if (first < 0 || cli_read_pins(&o.co) != 0) {
		free_opts(&o);
		return TFS_EXIT_USAGE;
	}
	/* Output may hold decrypted values: the buffer is wiped at the end. */
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	dump_sink sink;
	if (o.format == FMT_JSON)
		dump_json_init(&sink, stdout);
	else
		dump_text_init(&sink, stdout, o.brief);
	int status = TFS_EXIT_OK;
	for (int i = first; i < argc; i++)
		status = max_status(status, dump_path(&o, &sink, argv[i]));
	if (o.format != FMT_SOFTHSM)
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
