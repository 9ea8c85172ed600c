/* Error reporting shared by the subcommands. */
#include "cli.h"

#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinspec.h"

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "tokenfs: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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
	fprintf(stderr, "tokenfs: %s: %s%s%s%s [%s]\n", tfs_severity_name(tfs_finding_severity(f)),
	        tfs_finding_path(f), tfs_finding_path(f)[0] ? ": " : "", off,
	        tfs_finding_message(f), tfs_finding_code(f));
}

/* Whether a word is a PIN SPEC, so that "--user-pin SPEC" and a bare
 * "--user-pin" followed by a PATH can be told apart. */
static bool is_pin_spec(const char *s)
{
	return strncmp(s, "pass:", 5) == 0 || strncmp(s, "env:", 4) == 0 ||
	       strncmp(s, "file:", 5) == 0 || strncmp(s, "fd:", 3) == 0 || strcmp(s, "stdin") == 0;
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
	case 'U':
	case 'S': {
		/* "--user-pin SPEC" as well as "--user-pin=SPEC"; a bare
		 * --user-pin (next word not a SPEC) prompts. */
		const char *spec = optarg;
		if (spec == NULL && optind < argc && is_pin_spec(argv[optind]))
			spec = argv[optind++];
		*(c == 'U' ? &co->want_user : &co->want_so) = true;
		*(c == 'U' ? &co->user_spec : &co->so_spec) = spec;
		return 1;
	}
	default:
		return 0;
	}
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
