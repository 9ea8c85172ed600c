/* Error reporting shared by the subcommands. */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
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

bool cli_is_pin_spec(const char *s)
{
	return strncmp(s, "pass:", 5) == 0 || strncmp(s, "env:", 4) == 0 ||
	       strncmp(s, "file:", 5) == 0 || strncmp(s, "fd:", 3) == 0 || strcmp(s, "stdin") == 0;
}

bool cli_token_matches(const char *sel, const tfs_token *tok)
{
	return strcmp(sel, tfs_token_label(tok)) == 0 || strcmp(sel, tfs_token_serial(tok)) == 0 ||
	       strcmp(sel, tfs_token_dirname(tok)) == 0;
}

int cli_read_pin(const char *cmd, const char *option, const char *spec, const char *prompt,
                 uint8_t **pin, size_t *len)
{
	tfs_error err;
	if (tfs_pin_from_spec(pin, len, spec, prompt, &err) == TFS_OK)
		return 0;
	cli_error("%s: %s: %s", cmd, option, err.what);
	return -1;
}
