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
#include "pinspec.h"
#include "render_softhsm.h"

#define CKA_CLASS 0x0
#define CKA_KEY_TYPE 0x100
#define CKA_CERTIFICATE_TYPE 0x80

enum format { FMT_TEXT, FMT_JSON, FMT_SOFTHSM };

typedef struct dump_opts {
	cli_common co;   /* --token, --lock-timeout, PINs */
	enum format format;
	char **objects;  /* --object selectors */
	size_t nobjects;
	bool reveal;     /* print key material and token keys */
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
	        "      --user-pin [SPEC] decrypt private objects with the user PIN\n"
	        "      --so-pin [SPEC]   ... or the SO PIN; with both, check that they\n"
	        "                        unwrap the same token key\n"
	        "                        SPEC: pass:PIN, env:VAR, file:PATH, fd:N or stdin\n"
	        "                        (first line); without SPEC, prompt without echo\n"
	        "      --reveal          also print key material and the token key, which\n"
	        "                        are otherwise shown as <redacted: N bytes> with a\n"
	        "                        fingerprint (key check value or SHA-256 prefix)\n"
	        "      --lock-timeout MS how long to wait for a SoftHSM writer (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "Without a PIN, private objects' byte strings are shown as ciphertext,\n"
	        "marked encrypted. Key material stored in plaintext is redacted too.\n"
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
		CLI_COMMON_LONGOPTS,
		{"object", required_argument, NULL, 'o'},
		{"reveal", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "f:t:o:h", longopts, dump_option, o, usage);
	if (first < 0)
		return -1;
	return first;
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
static bool finding_selected(dump_opts *o, const tfs_store *store, const tfs_finding *f)
{
	if (o->co.ntokens == 0)
		return true;
	const char *p = tfs_finding_path(f);
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		size_t n = strlen(tfs_token_path(tok));
		if (strncmp(p, tfs_token_path(tok), n) == 0 && (p[n] == '\0' || p[n] == '/'))
			return cli_token_selected(&o->co, tok);
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

static int max_status(int a, int b)
{
	return a > b ? a : b;
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

static uint64_t ulong_or(const tfs_object *obj, uint64_t type, uint64_t fallback)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : fallback;
}

/* Makes DER values, dates and moduli readable; bad DER keeps its hex and
 * gets a one-line reason. */
static void decode_value(dump_value *v, uint64_t type, uint64_t cls, uint64_t sub_type)
{
	tfs_error err;
	int rc = tfs_decode_attribute(&v->decoded, type, cls, sub_type, v->bytes, v->len, &err);
	if (rc == TFS_OK || rc == TFS_E_NOTFOUND)
		return;
	char buf[700];
	v->decode_error = strdup(tfs_error_format(&err, buf, sizeof(buf)));
}

/*
 * Decides how each byte string of obj is shown: decrypted with key where it
 * is ciphertext, redacted where it is key material (unless --reveal).
 * Reports values that do not decrypt; returns an exit status.
 */
static int make_views(const dump_opts *o, const char *path, const tfs_object *obj,
                      const tfs_token_key *key, dump_value *views)
{
	int status = TFS_EXIT_OK;
	uint64_t cls = ulong_or(obj, CKA_CLASS, UINT64_MAX);
	uint64_t key_type = ulong_or(obj, CKA_KEY_TYPE, UINT64_MAX);
	uint64_t cert_type = ulong_or(obj, CKA_CERTIFICATE_TYPE, UINT64_MAX);
	for (size_t k = 0; k < tfs_object_attr_count(obj); k++) {
		const tfs_attr *a = tfs_object_attr(obj, k);
		dump_value *v = &views[k];
		memset(v, 0, sizeof(*v));
		if (tfs_attr_kind(a) != TFS_KIND_BYTES)
			continue;
		v->bytes = tfs_attr_bytes(a, &v->len);
		v->encrypted = tfs_object_attr_encrypted(obj, a);
		if (v->encrypted && key != NULL) {
			uint8_t *pt;
			size_t n;
			tfs_error err;
			if (tfs_token_key_decrypt(key, &pt, &n, &v->layout, v->bytes, v->len, &err) == TFS_OK) {
				v->bytes = pt;
				v->len = n;
				v->decrypted = true;
			} else {
				const char *name = tfs_name(TFS_NS_CKA, tfs_attr_type(a));
				cli_error("%s: offset %llu: value of %s does not decrypt: %s", path,
				          (unsigned long long)tfs_attr_value_offset(a), name ? name : "attribute",
				          err.what);
				v->error = "does not decrypt with the token key";
				status = TFS_EXIT_PROBLEM;
			}
		}
		bool plain = !v->encrypted || v->decrypted;
		if (plain && !o->reveal && v->len > 0 && tfs_object_attr_is_key_material(obj, a)) {
			tfs_error err;
			v->redacted = true;
			if (tfs_key_fingerprint(v->fingerprint, key_type, tfs_attr_type(a), v->bytes, v->len,
			                        &err) != TFS_OK)
				snprintf(v->fingerprint, sizeof(v->fingerprint), "(no fingerprint)");
		} else if (plain) {
			decode_value(v, tfs_attr_type(a), cls, cert_type != UINT64_MAX ? cert_type : key_type);
		}
	}
	return status;
}

static void free_views(dump_value *views, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (views[k].decrypted)
			tfs_secure_free((void *)views[k].bytes, views[k].len);
		tfs_decoded_free(views[k].decoded);
		free(views[k].decode_error);
	}
	free(views);
}

/* Dumps one token's objects through the sink; returns an exit status. */
static int dump_token(dump_opts *o, dump_sink *sink, const tfs_token *tok)
{
	tfs_token_key *key;
	dump_token_info info;
	int status = unlock_token(o, tok, &key, &info);
	tfs_pairing *pairs = tfs_pairing_new();
	sink->token_begin(sink, tok, &info);
	for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
		if (!object_selected(o, tok, i))
			continue;
		tfs_object *obj = NULL;
		dump_value *views = NULL;
		char summary[256] = "";
		tfs_error err;
		int rc = tfs_token_load_object(&obj, tok, i, &err);
		if (rc == TFS_OK) {
			const char *path = tfs_token_object_path(tok, i);
			if (report_anomalies(path, obj))
				status = max_status(status, TFS_EXIT_PROBLEM);
			views = calloc(tfs_object_attr_count(obj) + 1, sizeof(*views));
			if (views == NULL) {
				cli_error("out of memory");
				tfs_object_free(obj);
				status = TFS_EXIT_USAGE;
				break;
			}
			status = max_status(status, make_views(o, path, obj, key, views));
			dump_pairing_add(pairs, tfs_token_object_uuid(tok, i), obj, views, summary,
			                 sizeof(summary));
		} else {
			cli_report(&err);
			bool fatal = rc == TFS_E_NOMEM || rc == TFS_E_LOCKED || rc == TFS_E_IO;
			status = max_status(status, fatal ? TFS_EXIT_USAGE : TFS_EXIT_PROBLEM);
		}
		sink->object(sink, tok, i, obj, views, summary, rc == TFS_OK ? NULL : &err);
		if (obj != NULL)
			free_views(views, tfs_object_attr_count(obj));
		tfs_object_free(obj);
	}
	size_t nkeys = 0;
	const dump_key *keys = pairs != NULL ? tfs_pairing_keys(pairs, &nkeys) : NULL;
	sink->token_end(sink, tok, keys, nkeys);
	tfs_pairing_free(pairs);
	tfs_token_key_free(key);
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

static int dump_path(dump_opts *o, dump_sink *sink, const char *path)
{
	tfs_open_options opts = {.lock_timeout_ms = o->co.lock_ms};
	tfs_store *store;
	tfs_error err;
	if (tfs_store_open(&store, path, &opts, &err) != TFS_OK) {
		cli_report_open(&o->co, path, &err);
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
		if (!cli_token_selected(&o->co, tok))
			continue;
		int s = o->format == FMT_SOFTHSM ? dump_token_softhsm(o, sink->out, tok)
		                                 : dump_token(o, sink, tok);
		status = max_status(status, s);
	}
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
	if (first >= 0 && o.format == FMT_SOFTHSM && (o.co.want_user || o.co.want_so || o.reveal)) {
		cli_error("dump: --format softhsm shows files as stored; it takes no PIN and no --reveal");
		first = -1;
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
		dump_text_init(&sink, stdout);
	int status = TFS_EXIT_OK;
	for (int i = first; i < argc; i++)
		status = max_status(status, dump_path(&o, &sink, argv[i]));
	if (o.format != FMT_SOFTHSM)
		sink.finish(&sink);
	status = max_status(status, cli_check_selection(&o.co));
	if (fflush(stdout) != 0) {
		cli_error("dump: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
	OPENSSL_cleanse(obuf, sizeof(obuf));
	free_opts(&o);
	return status;
}
