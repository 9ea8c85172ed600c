/* Error reporting shared by the subcommands. */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>

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
