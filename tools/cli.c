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
	       strncmp(s, "file:", 5) == 0 || strncmp(s, "fd:", 3) == 0 || strcmp(s, "stdin") == 0;
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
	return spec;
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

int cli_open_store(cli_common *co, const char *path, tfs_store **out)
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

int cli_common_option(cli_common *co, int c, int argc, char **argv)
{
	switch (c) {
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
	case 'S': {
		const char *spec = cli_spec_arg(co, argc, argv);
		*(c == 'U' ? &co->want_user : &co->want_so) = true;
		*(c == 'U' ? &co->user_spec : &co->so_spec) = spec;
		return 1;
	}
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
		if (fn(ctx, c, argc, argv) != 0)
			return -1;
	}
	if (optind >= argc) {
		cli_error("%s: no PATH given; see 'tokenfs %s --help'", co->cmd, co->cmd);
		return -1;
	}
	return optind;
}

bool cli_token_selected(cli_common *co, const tfs_token *tok)
{
	if (co->ntokens == 0)
		return true;
	for (size_t i = 0; i < co->ntokens; i++) {
		const char *sel = co->tokens[i];
		if (strcmp(sel, tfs_token_label(tok)) == 0 || strcmp(sel, tfs_token_serial(tok)) == 0 ||
		    strcmp(sel, tfs_token_dirname(tok)) == 0) {
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

int cli_read_pins(cli_common *co)
{
	if (co->want_user &&
	    read_pin(co, "--user-pin", co->user_spec, "User PIN: ", &co->user_pin, &co->user_len) != 0)
		return -1;
	if (co->want_so && read_pin(co, "--so-pin", co->so_spec, "SO PIN: ", &co->so_pin, &co->so_len) != 0)
		return -1;
	return 0;
}

void cli_common_free(cli_common *co)
{
	tfs_secure_free(co->user_pin, co->user_len);
	tfs_secure_free(co->so_pin, co->so_len);
	co->user_pin = co->so_pin = NULL;
	free(co->tokens);
	co->tokens = NULL;
}

int cli_parse_format(const char *arg, bool *json)
{
	if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0) {
		cli_error("unknown format '%s': use text or json", arg);
		return -1;
	}
	*json = strcmp(arg, "json") == 0;
	return 0;
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
		cli_error("%s: %s is an archive; tokenfs changes stores only in place: check it "
		          "(verify-integrity --check-seal), unpack it with SoftHSM stopped, then run "
		          "%s on the directory", co->cmd, path, co->cmd);
		tfs_store_free(store);
		return TFS_EXIT_USAGE;
	}
	int status = TFS_EXIT_OK;
	if (tfs_store_kind(store) == TFS_PATH_OBJECT_FILE) {
		cli_error("%s: %s is one object file; give its token directory or the tokendir", co->cmd,
		          path);
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
