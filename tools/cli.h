/* What every tokenfs subcommand shares: exit codes and error reporting. */
#ifndef TFS_TOOLS_CLI_H
#define TFS_TOOLS_CLI_H

#include <stdarg.h>
#include <stdbool.h>

#include "tokenfs/tokenfs.h"

/* Exit codes scripts can trust (docs/cli.md, `tokenfs --help`). */
enum {
	TFS_EXIT_OK = 0,      /* everything read, nothing wrong */
	TFS_EXIT_PROBLEM = 1, /* something could not be parsed or is anomalous (reported on stderr) */
	TFS_EXIT_USAGE = 2    /* usage, I/O or wrong-PIN error: nothing (more) could be done */
};

/* "tokenfs: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "tokenfs: warning: <message>" on stderr. */
void cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A tfs_error as one line: "tokenfs: where: offset N: what". */
void cli_report(const tfs_error *err);
/* A finding as one line: "tokenfs: <severity>: path: offset N: message [code]". */
void cli_report_finding(const tfs_finding *f);

/* Whether a word is a PIN SPEC (pass:, env:, file:, fd: or stdin), so that
 * "--user-pin SPEC" and a bare "--user-pin PATH" can be told apart. */
bool cli_is_pin_spec(const char *word);
/* Whether a --token selector names tok (label, serial or directory name). */
bool cli_token_matches(const char *selector, const tfs_token *tok);
/* Reads a PIN from SPEC (NULL: prompt); on failure reports "<cmd>: <option>: why". */
int cli_read_pin(const char *cmd, const char *option, const char *spec, const char *prompt,
                 uint8_t **pin, size_t *len);

int cmd_dump(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif
