/* Error reporting shared by the subcommands. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tokenfs/text.h"
#include "tokenfs/pinspec.h"

const char *cli_safe(const char *s, char *buf, size_t size)
{
	s = s != NULL ? s : "";
	tfs_escape(buf, size, (const uint8_t *)s, strlen(s), TFS_ESC_TERMINAL);
	return buf;
}

char *cli_utf8(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(TFS_ESCAPE_SIZE(n));
	if (out != NULL)
		tfs_escape(out, TFS_ESCAPE_SIZE(n), (const uint8_t *)s, n, TFS_ESC_JSON);
	return out;
}

struct json_object *cli_json_string(const char *s)
{
	if (s == NULL)
		return NULL;
	char *u = cli_utf8(s);
	json_object *j = json_object_new_string(u != NULL ? u : "");
	free(u);
	return j;
}

__attribute__((format(printf, 2, 0)))
static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	/* Messages carry paths and labels from the store: make them safe. */
	char raw[2048], safe[4 * 2048 + 8];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	fprintf(stderr, "tokenfs: %s%s\n", prefix, cli_safe(raw, safe, sizeof(safe)));
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
}

void cli_warning(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("warning: ", fmt, ap);
	va_end(ap);
}

void cli_report(const tfs_error *err)
{
	char buf[1200];
	cli_error("%s", tfs_error_format(err, buf, sizeof(buf)));
}

void cli_report_finding(const tfs_finding *f)
{
	char off[40] = "";
	if (tfs_finding_offset(f) != TFS_NO_OFFSET)
		snprintf(off, sizeof(off), "offset %" PRIu64 ": ", tfs_finding_offset(f));
	cli_error("%s: %s%s%s%s [%s]", tfs_severity_name(tfs_finding_severity(f)), tfs_finding_path(f),
	          tfs_finding_path(f)[0] ? ": " : "", off, tfs_finding_message(f), tfs_finding_code(f));
}

/* Whether a word is a PIN SPEC, so that "--user-pin SPEC" and a bare
 * "--user-pin" followed by a PATH can be told apart. */
static bool is_pin_spec(const char *s)
{
	return strncmp(s, "pass:", 5) == 0 || strncmp(s, "env:", 4) == 0 ||
	       strncmp(s, "file:", 5) == 0 || strncmp(s, "fd:", 3) == 0 || strcmp(s, "stdin") == 0 ||
	       strcmp(s, "prompt") == 0;
}

/* Where TOKEN ends in TOKEN=SPEC: the first '=' followed by a SPEC form, so
 * that a label holding '=' still works; 0 when s is no TOKEN=SPEC. A word
 * that is a SPEC itself is never split ("pass:a=env:b" is a PIN). */
static size_t token_prefix(const char *s)
{
	if (is_pin_spec(s))
		return 0;
	for (const char *eq = strchr(s, '='); eq != NULL; eq = strchr(eq + 1, '='))
		if (eq > s && is_pin_spec(eq + 1))
			return (size_t)(eq - s);
	return 0;
}

const char *cli_spec_arg(cli_common *co, int argc, char **argv)
{
	/* "--user-pin SPEC" as well as "--user-pin=SPEC"; a bare --user-pin
	 * (next word not a SPEC) prompts. */
	const char *spec = optarg;
	if (spec == NULL && optind < argc && is_pin_spec(argv[optind]))
		spec = argv[optind++];
	else if (spec == NULL && optind < argc)
		co->suspect = argv[optind];
	return spec != NULL && strcmp(spec, "prompt") == 0 ? NULL : spec;
}

const char *cli_pin_option(tfs_pin_role role)
{
	return role == TFS_PIN_USER ? "--user-pin" : "--so-pin";
}

static const char *entry_option(const cli_pin *e)
{
	if (e->fresh)
		return e->role == TFS_PIN_USER ? "--new-user-pin" : "--new-so-pin";
	return cli_pin_option(e->role);
}

/* --user-pin/--so-pin (fresh: --new-user-pin/--new-so-pin) [TOKEN=]SPEC:
 * one more entry of co->pins. */
static int add_pin(cli_common *co, tfs_pin_role role, bool fresh, int argc, char **argv)
{
	const cli_pin proto = {.role = role, .fresh = fresh};
	const char *arg = optarg;
	if (arg == NULL && optind < argc &&
	    (is_pin_spec(argv[optind]) || token_prefix(argv[optind]) > 0))
		arg = argv[optind++];
	else if (arg == NULL && optind < argc)
		co->suspect = argv[optind];
	size_t cut = arg != NULL ? token_prefix(arg) : 0;
	if (arg != NULL && cut == 0 && !is_pin_spec(arg)) {
		/* Never quoted: it may be the PIN itself. */
		cli_error("%s: %s takes [TOKEN=]SPEC, SPEC being pass:PIN, env:VAR, file:PATH, fd:N, "
		          "stdin or prompt; what was given is none of them (not shown, in case it is "
		          "a PIN)", co->cmd, entry_option(&proto));
		return -1;
	}
	cli_pin *p = realloc(co->pins, (co->npins + 1) * sizeof(*p));
	if (p == NULL) {
		cli_error("out of memory");
		return -1;
	}
	co->pins = p;
	cli_pin *e = &p[co->npins];
	*e = proto;
	e->spec = arg != NULL ? arg + (cut > 0 ? cut + 1 : 0) : NULL;
	if (e->spec != NULL && strcmp(e->spec, "prompt") == 0)
		e->spec = NULL;
	if (cut > 0 && (e->token = strndup(arg, cut)) == NULL) {
		cli_error("out of memory");
		return -1;
	}
	co->npins++;
	if (!fresh)
		*(role == TFS_PIN_USER ? &co->want_user : &co->want_so) = true;
	/* One PIN per token and role: a second entry for the same would be
	 * a guess at which one is meant. */
	for (size_t i = 0; i + 1 < co->npins; i++) {
		const cli_pin *o = &co->pins[i];
		if (o->role != role || o->fresh != fresh || (o->token == NULL) != (e->token == NULL) ||
		    (o->token != NULL && strcmp(o->token, e->token) != 0))
			continue;
		if (e->token != NULL)
			cli_error("%s: %s %s= is given twice: one PIN per token", co->cmd,
			          entry_option(e), e->token);
		else
			cli_error("%s: %s without TOKEN= is given twice: give the others as TOKEN=SPEC",
			          co->cmd, entry_option(e));
		return -1;
	}
	return 1;
}

int cli_new_pin_option(cli_common *co, tfs_pin_role role, int argc, char **argv)
{
	return add_pin(co, role, true, argc, argv);
}

/* --max-unpacked SIZE, --max-members N, --max-member-size SIZE. */
static int archive_cap(cli_common *co, int c)
{
	const char *name = c == CLI_OPT_MAX_UNPACKED ? "--max-unpacked"
	                 : c == CLI_OPT_MAX_MEMBERS ? "--max-members" : "--max-member-size";
	char *end;
	errno = 0;
	unsigned long long v = strtoull(optarg, &end, 10);
	unsigned shift = 0;
	if (c != CLI_OPT_MAX_MEMBERS && end[0] != '\0' && end[1] == '\0')
		shift = end[0] == 'K' ? 10 : end[0] == 'M' ? 20 : end[0] == 'G' ? 30 : 0;
	if (shift != 0)
		end++;
	if (!isdigit((unsigned char)optarg[0]) || *end != '\0' || errno != 0 || v == 0 ||
	    v > (UINT64_MAX >> shift)) {
		cli_error("%s: %s takes a positive %s", co->cmd, name,
		          c == CLI_OPT_MAX_MEMBERS ? "count" : "size in bytes (suffix K, M or G)");
		return -1;
	}
	if (!co->limits_set)
		tfs_archive_limits_default(&co->limits);
	co->limits_set = true;
	uint64_t n = (uint64_t)v << shift;
	*(c == CLI_OPT_MAX_UNPACKED ? &co->limits.max_total_bytes
	  : c == CLI_OPT_MAX_MEMBERS ? &co->limits.max_members : &co->limits.max_member_bytes) = n;
	return 1;
}

/* Opens PATH with the common options; a failure is reported here. */
static int open_store(cli_common *co, const char *path, tfs_store **out)
{
	tfs_open_options oo = {.lock_timeout_ms = co->lock_ms,
	                       .archive_limits = co->limits_set ? &co->limits : NULL,
	                       .strict_io = co->writes};
	tfs_error err;
	/* An archive is unpacked in memory before anything is shown: at a
	 * terminal, say so while it takes. */
	struct stat st;
	bool note = isatty(STDERR_FILENO) && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	            st.st_size > (1 << 20) && co->suspect != path;
	if (note) {
		char pb[4 * 1024 + 8];
		fprintf(stderr, "tokenfs: reading %s (%lld MB)...\r", cli_safe(path, pb, sizeof(pb)),
		        (long long)(st.st_size >> 20));
	}
	int rc = tfs_store_open_path(out, path, &oo, &err);
	if (note)
		fprintf(stderr, "\033[K");
	if (rc != TFS_OK) {
		cli_report_open(co, path, &err);
		return TFS_EXIT_USAGE;
	}
	return TFS_EXIT_OK;
}

int cli_open_store(cli_common *co, const char *path, tfs_store **out)
{
	/* Opened already, before the PINs were read (cli_prepare_pins): the
	 * store, or a failure reported then. One PATH is opened once, so a
	 * transient I/O error is never papered over by a second try. */
	for (size_t i = 0; i < co->nprepared; i++)
		if (co->prepared_path[i] == path) {
			*out = co->prepared[i];
			co->prepared[i] = NULL;
			co->prepared_path[i] = NULL;
			return *out != NULL ? TFS_EXIT_OK : TFS_EXIT_USAGE;
		}
	return open_store(co, path, out);
}

/* --format WORD: one of co->formats (text and json unless a command has more). */
static int parse_format(cli_common *co, const char *arg)
{
	static const char *const text_json[] = {"text", "json", NULL};
	const char *const *words = co->formats != NULL ? co->formats : text_json;
	char list[128] = "";
	for (unsigned i = 0; words[i] != NULL; i++) {
		if (strcmp(arg, words[i]) == 0) {
			co->format = i;
			co->json = strcmp(arg, "json") == 0;
			return 0;
		}
		size_t n = strlen(list);
		snprintf(list + n, sizeof(list) - n, "%s%s", i == 0 ? "" : words[i + 1] ? ", " : " or ",
		         words[i]);
	}
	char safe[64];
	cli_error("%s: unknown format '%s': use %s", co->cmd, cli_safe(arg, safe, sizeof(safe)), list);
	return -1;
}

int cli_common_option(cli_common *co, int c, int argc, char **argv)
{
	switch (c) {
	case 'f': /* only commands that list CLI_FORMAT_LONGOPT and "f:" get here */
		return parse_format(co, optarg) == 0 ? 1 : -1;
	case 't': {
		char **p = realloc(co->tokens, (co->ntokens + 1) * sizeof(*p));
		if (p == NULL) {
			cli_error("out of memory");
			return -1;
		}
		p[co->ntokens++] = optarg;
		co->tokens = p;
		return 1;
	}
	case 'L': {
		char *end;
		unsigned long v = strtoul(optarg, &end, 10);
		if (*optarg == '\0' || *end != '\0' || v == 0 || v > 3600000) {
			cli_error("%s: --lock-timeout takes milliseconds from 1 to 3600000", co->cmd);
			return -1;
		}
		co->lock_ms = (unsigned)v;
		return 1;
	}
	case CLI_OPT_FORCE:
		co->force = true;
		return 1;
	case 'n': /* only commands that list CLI_DRY_RUN_LONGOPT and "n" get here */
		co->dry_run = true;
		return 1;
	case CLI_OPT_MAX_UNPACKED:
	case CLI_OPT_MAX_MEMBERS:
	case CLI_OPT_MAX_MEMBER_SIZE:
		return archive_cap(co, c);
	case 'U':
	case 'S':
		return add_pin(co, c == 'U' ? TFS_PIN_USER : TFS_PIN_SO, false, argc, argv);
	default:
		return 0;
	}
}

int cli_parse(cli_common *co, int argc, char **argv, const char *shortopts,
              const struct option *longopts, cli_option_fn fn, void *ctx,
              void (*usage)(FILE *out))
{
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		int common = cli_common_option(co, c, argc, argv);
		if (common < 0)
			return -1;
		if (common > 0)
			continue;
		if (c == 'h') {
			usage(stdout);
			exit(TFS_EXIT_OK);
		}
		if (c == '?' || c == ':') {
			fprintf(stderr, "Try 'tokenfs %s --help'.\n", co->cmd);
			return -1;
		}
		if (fn != NULL && fn(ctx, c, argc, argv) != 0)
			return -1;
	}
	if (optind >= argc) {
		cli_error("%s: no PATH given; see 'tokenfs %s --help'", co->cmd, co->cmd);
		return -1;
	}
	return optind;
}

/* The one rule by which --token and TOKEN= name a token. */
static bool token_named(const char *sel, const tfs_token *tok)
{
	return strcmp(sel, tfs_token_label(tok)) == 0 || strcmp(sel, tfs_token_serial(tok)) == 0 ||
	       strcmp(sel, tfs_token_dirname(tok)) == 0;
}

bool cli_token_selected(cli_common *co, const tfs_token *tok)
{
	if (co->ntokens == 0)
		return true;
	for (size_t i = 0; i < co->ntokens; i++) {
		const char *sel = co->tokens[i];
		if (token_named(sel, tok)) {
			co->matched++;
			return true;
		}
	}
	return false;
}

int cli_check_selection(const cli_common *co)
{
	if (co->ntokens == 0 || co->matched > 0)
		return TFS_EXIT_OK;
	cli_error("%s: no token matches --token %s (give a label, serial or directory name)",
	          co->cmd, co->tokens[0]);
	return TFS_EXIT_USAGE;
}

static int read_pin(const cli_common *co, const char *option, const char *spec,
                    const char *prompt, uint8_t **pin, size_t *len)
{
	tfs_error err;
	if (tfs_pin_from_spec(pin, len, spec, prompt, &err) == TFS_OK)
		return 0;
	cli_error("%s: %s: %s", co->cmd, option, err.what);
	return -1;
}

int cli_read_new_pin(const cli_common *co, const char *option, const char *spec,
                     const char *prompt, uint8_t **pin, size_t *len)
{
	if (read_pin(co, option, spec, prompt, pin, len) != 0)
		return -1;
	if (spec != NULL)
		return 0;
	/* Typed blind: ask again, as softhsm2-util does. */
	uint8_t *again = NULL;
	size_t again_len = 0;
	char prompt2[128];
	snprintf(prompt2, sizeof(prompt2), "Repeat %s", prompt);
	int rc = read_pin(co, option, NULL, prompt2, &again, &again_len);
	if (rc == 0 && (again_len != *len || CRYPTO_memcmp(again, *pin, *len) != 0)) {
		cli_error("%s: %s: the two entries differ; nothing was changed", co->cmd, option);
		rc = -1;
	}
	tfs_secure_free(again, again_len);
	if (rc != 0) {
		tfs_secure_free(*pin, *len);
		*pin = NULL;
		*len = 0;
	}
	return rc;
}

void cli_report_open(const cli_common *co, const char *path, const tfs_error *err)
{
	if (co->suspect != NULL && path == co->suspect)
		cli_error("%s: the PATH after a bare --user-pin/--so-pin cannot be opened (%s); not "
		          "shown, in case it is a PIN: PINs go in env:VAR, file:PATH or the prompt",
		          co->cmd, err->what);
	else
		cli_report(err);
}

/* The entry that gives tok its PIN of role: the one naming tok wins. */
static cli_pin *pin_entry(cli_common *co, const tfs_token *tok, tfs_pin_role role, bool fresh)
{
	cli_pin *any = NULL;
	for (size_t i = 0; i < co->npins; i++) {
		cli_pin *e = &co->pins[i];
		if (e->role != role || e->fresh != fresh)
			continue;
		if (e->token == NULL)
			any = e;
		else if (token_named(e->token, tok))
			return e;
	}
	return any;
}

/* Reads entry e, a prompt naming the token(s) it is for. */
static int read_entry(cli_common *co, cli_pin *e, const tfs_token *tok)
{
	if (e->read)
		return 0;
	char prompt[512], lb[200], sb[100];
	const char *who = e->fresh ? (e->role == TFS_PIN_USER ? "New user" : "New SO")
	                           : (e->role == TFS_PIN_USER ? "User" : "SO");
	if (tok == NULL)
		snprintf(prompt, sizeof(prompt), "%s PIN: ", who);
	else if (e->uses > 1)
		snprintf(prompt, sizeof(prompt), "%s PIN for token '%s' (serial %s) and %zu other%s: ",
		         who, cli_safe(tfs_token_label(tok), lb, sizeof(lb)),
		         cli_safe(tfs_token_serial(tok), sb, sizeof(sb)), e->uses - 1,
		         e->uses == 2 ? "" : "s");
	else
		snprintf(prompt, sizeof(prompt), "%s PIN for token '%s' (serial %s): ", who,
		         cli_safe(tfs_token_label(tok), lb, sizeof(lb)),
		         cli_safe(tfs_token_serial(tok), sb, sizeof(sb)));
	char option[160];
	snprintf(option, sizeof(option), "%s%s%s", entry_option(e), e->token ? " " : "",
	         e->token ? e->token : "");
	/* A new PIN typed blind is asked twice. */
	if (e->fresh ? cli_read_new_pin(co, option, e->spec, prompt, &e->pin, &e->len) != 0
	             : read_pin(co, option, e->spec, prompt, &e->pin, &e->len) != 0)
		return -1;
	e->read = true;
	return 0;
}

static const uint8_t *entry_pin(cli_common *co, const tfs_token *tok, tfs_pin_role role,
                                bool fresh, size_t *len)
{
	cli_pin *e = pin_entry(co, tok, role, fresh);
	*len = 0;
	if (e == NULL)
		return NULL;
	if (!e->read && read_entry(co, e, tok) != 0)
		return NULL;
	*len = e->len;
	return e->pin;
}

const uint8_t *cli_pin_for(cli_common *co, const tfs_token *tok, tfs_pin_role role, size_t *len)
{
	return entry_pin(co, tok, role, false, len);
}

const uint8_t *cli_new_pin_for(cli_common *co, const tfs_token *tok, tfs_pin_role role,
                               size_t *len)
{
	return entry_pin(co, tok, role, true, len);
}

/* What a command that changes stores refuses, before any PIN is tried. */
static void archive_refused(const cli_common *co, const char *path)
{
	cli_error("%s: %s is an archive; tokenfs changes stores only in place: check it "
	          "(verify-integrity --check-seal), unpack it with SoftHSM stopped, then run "
	          "%s on the directory", co->cmd, path, co->cmd);
}

static void object_file_refused(const cli_common *co, const char *path)
{
	cli_error("%s: %s is one object file; give its token directory or the tokendir", co->cmd,
	          path);
}

/* Opens PATH for cli_prepare_pins and keeps the result, a store or a failure
 * (reported here), for cli_open_store. NULL: it did not open. */
static tfs_store *prepare_open(cli_common *co, const char *path)
{
	tfs_store *store = NULL;
	if (open_store(co, path, &store) != TFS_EXIT_OK)
		store = NULL;
	const char **pp = realloc(co->prepared_path, (co->nprepared + 1) * sizeof(*pp));
	if (pp != NULL)
		co->prepared_path = pp;
	tfs_store **ps = pp != NULL ? realloc(co->prepared, (co->nprepared + 1) * sizeof(*ps)) : NULL;
	if (ps == NULL) {
		cli_error("out of memory");
		tfs_store_free(store);
		return NULL;
	}
	co->prepared = ps;
	co->prepared[co->nprepared] = store;
	co->prepared_path[co->nprepared++] = path;
	if (store == NULL)
		return NULL;
	unsigned left = tfs_store_wait_left_ms(store);
	co->lock_ms = left > 0 ? left : 1;
	return store;
}

/* A writer's check of one token's PINs; false (reported) when one fails. */
static bool check_token(cli_common *co, const tfs_token *tok)
{
	bool ok = true;
	for (int role = TFS_PIN_SO; role <= TFS_PIN_USER; role++) {
		size_t len;
		const uint8_t *pin = cli_pin_for(co, tok, (tfs_pin_role)role, &len);
		if (pin == NULL)
			continue;
		tfs_token_key *key = NULL;
		tfs_error err;
		int rc = tfs_token_unlock(&key, tok, (tfs_pin_role)role, pin, len, &err);
		/* A blob the token lacks (a user PIN never set) is for the
		 * command to judge: rekey sets it, migrate has nothing to
		 * re-wrap. A PIN that does not open its blob is a refusal. */
		if (rc != TFS_OK && rc != TFS_E_NOTFOUND) {
			cli_report(&err);
			ok = false;
		}
		tfs_token_key_free(key);
	}
	return ok;
}

/* A writer's check that tok has the PINs the change needs: some PIN at all
 * (co->pin_needed), and for each blob to be re-wrapped its own PIN or a new
 * one (co->blob_pin_needed), as tfs_change_token would refuse it. False
 * (reported) when one is missing. */
static bool has_needed_pins(cli_common *co, const tfs_token *tok)
{
	char lb[200], sb[100];
	cli_safe(tfs_token_label(tok), lb, sizeof(lb));
	cli_safe(tfs_token_serial(tok), sb, sizeof(sb));
	size_t n;
	bool pin[2];
	for (int r = TFS_PIN_SO; r <= TFS_PIN_USER; r++)
		pin[r] = cli_pin_for(co, tok, (tfs_pin_role)r, &n) != NULL;
	if (!pin[TFS_PIN_SO] && !pin[TFS_PIN_USER] && co->pin_needed != NULL &&
	    co->pin_needed(co, tok)) {
		cli_error("%s: %s: no --user-pin or --so-pin is for token '%s' (serial %s), and "
		          "changing it needs one: give one without TOKEN= or as TOKEN=SPEC", co->cmd,
		          tfs_token_path(tok), lb, sb);
		return false;
	}
	bool ok = true;
	for (int r = TFS_PIN_SO; r <= TFS_PIN_USER && co->blob_pin_needed != NULL; r++) {
		tfs_pin_role role = (tfs_pin_role)r;
		if (pin[r] || tfs_token_pin_blob(tok, role, &n) == NULL ||
		    cli_new_pin_for(co, tok, role, &n) != NULL || !co->blob_pin_needed(co, tok, role))
			continue;
		/* The words of tfs_change_token's own refusal, said before any
		 * token is written. */
		const char *who = r == TFS_PIN_SO ? "SO" : "user", *opt = r == TFS_PIN_SO ? "so" : "user";
		if (strcmp(co->cmd, "migrate") == 0)
			cli_error("%s: %s: the %s PIN blob can only be re-wrapped with the %s PIN (token "
			          "'%s', serial %s): give --%s-pin, or --keep-other-blob to leave that "
			          "blob in its layout", co->cmd, tfs_token_path(tok), who, who, lb, sb, opt);
		else
			cli_error("%s: %s: a new token key or layout must be wrapped into the %s PIN blob "
			          "too (token '%s', serial %s): give the %s PIN (--%s-pin) or a new one "
			          "(--new-%s-pin)", co->cmd, tfs_token_path(tok), who, lb, sb, who, opt, opt);
		ok = false;
	}
	return ok;
}

int cli_prepare_pins(cli_common *co, char **paths, int npaths, bool check)
{
	if (co->npins == 0 && !(check && (co->pin_needed != NULL || co->blob_pin_needed != NULL)))
		return TFS_EXIT_OK;
	if (check)
		co->writes = true;
	size_t matched = co->matched;
	bool ambiguous = false;
	tfs_store **stores = calloc((size_t)npaths + 1, sizeof(*stores));
	/* Per entry, the token of the current PATH it named first. */
	const tfs_token **named_here = calloc(co->npins + 1, sizeof(*named_here));
	if (stores == NULL || named_here == NULL) {
		free(stores);
		free(named_here);
		cli_error("out of memory");
		return TFS_EXIT_USAGE;
	}
	/* Which entry each selected token takes: TOKEN= entries are matched
	 * before any PIN is read, let alone tried. */
	bool unopened = false;
	for (int i = 0; i < npaths; i++) {
		stores[i] = prepare_open(co, paths[i]);
		unopened |= stores[i] == NULL;
		if (check && stores[i] == NULL) {
			cli_error("%s: a PATH cannot be opened (see above); nothing was written to any "
			          "token", co->cmd);
			free(stores);
			free(named_here);
			return TFS_EXIT_USAGE;
		}
		if (check && stores[i] != NULL && (tfs_store_is_archive(stores[i]) ||
		                                   tfs_store_kind(stores[i]) == TFS_PATH_OBJECT_FILE)) {
			if (tfs_store_is_archive(stores[i]))
				archive_refused(co, paths[i]);
			else
				object_file_refused(co, paths[i]);
			free(stores);
			free(named_here);
			return TFS_EXIT_USAGE;
		}
		memset(named_here, 0, (co->npins + 1) * sizeof(*named_here));
		for (size_t t = 0; stores[i] != NULL && t < tfs_store_token_count(stores[i]); t++) {
			const tfs_token *tok = tfs_store_token(stores[i], t);
			if (!cli_token_selected(co, tok))
				continue;
			size_t naming[2][2] = {{0, 0}, {0, 0}};
			for (size_t k = 0; k < co->npins; k++)
				if (co->pins[k].token != NULL && token_named(co->pins[k].token, tok)) {
					co->pins[k].named = true; /* even when it needs no PIN */
					/* Label, serial and directory are matched alike, so
					 * one TOKEN can be the serial of one token and the
					 * label of another: never guess which is meant. */
					if (named_here[k] != NULL) {
						char l1[200], l2[200];
						cli_error("%s: %s %s= names two tokens of %s, '%s' and '%s' (by "
						          "label, serial or directory): name the one meant by its "
						          "directory", co->cmd, entry_option(&co->pins[k]),
						          co->pins[k].token, paths[i],
						          cli_safe(tfs_token_label(named_here[k]), l1, sizeof(l1)),
						          cli_safe(tfs_token_label(tok), l2, sizeof(l2)));
						ambiguous = true;
					}
					named_here[k] = tok;
					if (naming[co->pins[k].fresh][co->pins[k].role]++ == 1) {
						char lb[200];
						cli_error("%s: two %s entries name token '%s' (by label, serial "
						          "or directory): one PIN per token", co->cmd,
						          entry_option(&co->pins[k]),
						          cli_safe(tfs_token_label(tok), lb, sizeof(lb)));
						ambiguous = true;
					}
				}
			for (int k = 0; k < 4; k++) {
				cli_pin *e = pin_entry(co, tok, (tfs_pin_role)(k % 2), k >= 2);
				if (e == NULL || tfs_token_metadata(tok) == NULL)
					continue;
				if (e->uses++ == 0)
					e->first = tok;
			}
		}
	}
	co->matched = matched;
	int status = ambiguous ? TFS_EXIT_USAGE : TFS_EXIT_OK;
	/* A PATH that did not open may hold the token: its own error (above)
	 * says more than "no token matches". */
	for (size_t k = 0; k < co->npins && !unopened; k++)
		if (co->pins[k].token != NULL && !co->pins[k].named) {
			cli_error("%s: no token matches %s %s=... (give a label, serial or directory name "
			          "of a token %s)", co->cmd, entry_option(&co->pins[k]),
			          co->pins[k].token, co->ntokens > 0 ? "that --token selects" : "in PATH");
			status = TFS_EXIT_USAGE;
		}
	/* Every PIN a token uses is read now, prompts naming their token. */
	for (size_t k = 0; k < co->npins && status == TFS_EXIT_OK; k++)
		if (co->pins[k].first != NULL && read_entry(co, &co->pins[k], co->pins[k].first) != 0)
			status = TFS_EXIT_USAGE;
	/* A writer refuses rather than guess: every selected token's PINs open
	 * their blobs before anything is written to any of them. */
	bool refused = false;
	for (int i = 0; i < npaths && check && status == TFS_EXIT_OK; i++)
		for (size_t t = 0; stores[i] != NULL && t < tfs_store_token_count(stores[i]); t++) {
			const tfs_token *tok = tfs_store_token(stores[i], t);
			if (cli_token_selected(co, tok) && tfs_token_metadata(tok) != NULL &&
			    !check_token(co, tok))
				refused = true;
		}
	/* A token the writer would change without a PIN is refused now, not
	 * after the tokens before it were written. */
	for (int i = 0; i < npaths && check && status == TFS_EXIT_OK; i++)
		for (size_t t = 0; stores[i] != NULL && t < tfs_store_token_count(stores[i]); t++) {
			const tfs_token *tok = tfs_store_token(stores[i], t);
			if (cli_token_selected(co, tok) && tfs_token_metadata(tok) != NULL &&
			    !has_needed_pins(co, tok))
				refused = true;
		}
	co->matched = matched;
	free(stores);
	free(named_here);
	if (refused) {
		cli_error("%s: a token's PIN is wrong or missing (see above); nothing was written "
		          "to any token", co->cmd);
		status = TFS_EXIT_USAGE;
	}
	return status;
}

const char *cli_pin_result_name(cli_pin_result r)
{
	switch (r) {
	case CLI_PIN_OPENED: return "opened";
	case CLI_PIN_WRONG: return "wrong";
	case CLI_PIN_FAILED: return "failed";
	default: return NULL;
	}
}

int cli_unlock(cli_common *co, const tfs_token *tok, tfs_pin_role role, const char *then,
               tfs_token_key **key, cli_pin_result *result)
{
	*key = NULL;
	cli_pin_result none;
	if (result == NULL)
		result = &none;
	*result = CLI_PIN_NONE;
	size_t len;
	const uint8_t *pin = cli_pin_for(co, tok, role, &len);
	if (pin == NULL || tfs_token_metadata(tok) == NULL)
		return pin == NULL && pin_entry(co, tok, role, false) != NULL ? TFS_EXIT_USAGE
		                                                               : TFS_EXIT_OK;
	tfs_error err;
	int rc = tfs_token_unlock(key, tok, role, pin, len, &err);
	*result = rc == TFS_OK ? CLI_PIN_OPENED : rc == TFS_E_WRONG_PIN ? CLI_PIN_WRONG : CLI_PIN_FAILED;
	if (rc == TFS_OK)
		return TFS_EXIT_OK;
	if (rc == TFS_E_WRONG_PIN) {
		/* One token's wrong PIN is a finding about that token: the
		 * others are still read. */
		cli_error("error: %s: %s; %s [pin.wrong]", err.where, err.what, then);
		return TFS_EXIT_PROBLEM;
	}
	cli_report(&err);
	/* A damaged blob is a finding about the store; a missing blob is the
	 * caller's mistake. */
	return rc == TFS_E_DAMAGED ? TFS_EXIT_PROBLEM : TFS_EXIT_USAGE;
}

int cli_unlock_token(cli_common *co, const tfs_token *tok, const char *then,
                     tfs_token_key **key, cli_blob_use *user_use, cli_blob_use *so_use)
{
	tfs_token_key *user = NULL, *so = NULL;
	cli_blob_use u = {CLI_PIN_NONE, TFS_LAYOUT_NONE}, s = u;
	int su = cli_unlock(co, tok, TFS_PIN_USER, then, &user, &u.result);
	int ss = cli_unlock(co, tok, TFS_PIN_SO, then, &so, &s.result);
	int status = su > ss ? su : ss;
	if (user != NULL)
		u.layout = tfs_token_key_layout(user);
	if (so != NULL)
		s.layout = tfs_token_key_layout(so);
	if (user_use != NULL)
		*user_use = u;
	if (so_use != NULL)
		*so_use = s;
	if (user != NULL && so != NULL && !tfs_token_key_equal(user, so)) {
		char lb[200];
		cli_error("%s/token.object: the SO and user PIN blobs of token '%s' wrap different "
		          "token keys; the user's is used", tfs_token_path(tok),
		          cli_safe(tfs_token_label(tok), lb, sizeof(lb)));
		status = status > TFS_EXIT_PROBLEM ? status : TFS_EXIT_PROBLEM;
	}
	*key = user != NULL ? user : so;
	tfs_token_key_free(user != NULL ? so : NULL);
	return status;
}

void cli_common_free(cli_common *co)
{
	for (size_t i = 0; i < co->npins; i++) {
		tfs_secure_free(co->pins[i].pin, co->pins[i].len);
		free(co->pins[i].token);
	}
	free(co->pins);
	co->pins = NULL;
	co->npins = 0;
	for (size_t i = 0; i < co->nprepared; i++)
		tfs_store_free(co->prepared[i]);
	free(co->prepared);
	free(co->prepared_path);
	co->prepared = NULL;
	co->prepared_path = NULL;
	co->nprepared = 0;
	free(co->tokens);
	co->tokens = NULL;
}

int cli_parse_layout(const char *cmd, const char *arg, tfs_layout *layout)
{
	if (strcmp(arg, "gcm") != 0 && strcmp(arg, "cbc") != 0) {
		cli_error("%s: --to takes gcm or cbc", cmd);
		return -1;
	}
	*layout = strcmp(arg, "gcm") == 0 ? TFS_LAYOUT_GCM : TFS_LAYOUT_CBC;
	return 0;
}

int cli_each_token(cli_common *co, const char *path, bool archives_ok, cli_token_fn fn,
                   void *ctx)
{
	tfs_store *store;
	co->writes = !archives_ok; /* a writer reads strictly: see cli.h */
	if (cli_open_store(co, path, &store) != TFS_EXIT_OK)
		return TFS_EXIT_USAGE;
	if (!archives_ok && tfs_store_is_archive(store)) {
		archive_refused(co, path);
		tfs_store_free(store);
		return TFS_EXIT_USAGE;
	}
	int status = TFS_EXIT_OK;
	if (tfs_store_kind(store) == TFS_PATH_OBJECT_FILE) {
		object_file_refused(co, path);
		tfs_store_free(store);
		return TFS_EXIT_USAGE;
	}
	/* One token failing does not stop the others: each is its own
	 * transaction, and each failure is reported. */
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		if (!cli_token_selected(co, tok))
			continue;
		int s = fn(ctx, tok);
		status = s > status ? s : status;
	}
	tfs_store_free(store);
	return status;
}
