/* What every tokenfs subcommand shares: exit codes and error reporting. */
#ifndef TFS_TOOLS_CLI_H
#define TFS_TOOLS_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "tokenfs/tokenfs.h"

/* Exit codes scripts can trust (docs/cli.md, `tokenfs --help`). */
enum {
	TFS_EXIT_OK = 0,      /* everything read, nothing wrong */
	TFS_EXIT_PROBLEM = 1, /* something could not be parsed or is anomalous, or a
	                       * reader's wrong PIN (reported on stderr) */
	TFS_EXIT_USAGE = 2    /* usage or I/O error, a writer's wrong PIN: nothing (more) could be done */
};

/* "tokenfs: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "tokenfs: warning: <message>" on stderr. */
void cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A tfs_error as one line: "tokenfs: where: offset N: what". */
void cli_report(const tfs_error *err);
/* A finding as one line: "tokenfs: <severity>: path: offset N: message [code]". */
void cli_report_finding(const tfs_finding *f);

/* The options every command that reads stores takes. */
typedef struct cli_common {
	const char *cmd;         /* "dump", for messages */
	char **tokens;           /* --token selectors */
	size_t ntokens;
	unsigned lock_ms;        /* --lock-timeout; 0: the library's default */
	bool want_user, want_so; /* some --user-pin, --so-pin given */
	struct cli_pin *pins;    /* every --user-pin/--so-pin [TOKEN=]SPEC: see cli_pin_for */
	size_t npins;
	struct tfs_store **prepared; /* stores cli_prepare_pins opened, by PATH */
	const char **prepared_path;
	size_t nprepared;
	size_t matched;          /* tokens --token selected so far */
	const char *suspect;     /* the word after a bare --user-pin/--so-pin: maybe a mistyped PIN */
	bool force, dry_run;     /* write commands: --force, --dry-run */
	tfs_archive_limits limits; /* --max-unpacked, --max-members, --max-member-size */
	bool limits_set;
	/* -f/--format (CLI_FORMAT_LONGOPT): format is the index of the word
	 * given in formats (NULL: "text", "json"), 0 when none was given;
	 * json is true for "json". */
	const char *const *formats;
	unsigned format;
	bool json;
	/* A command that changes the store: it opens stores strictly (an I/O
	 * error is a refusal, not a finding) and refuses archives. */
	bool writes;
	/* A writer: whether it changes tok so that it needs a current PIN
	 * (NULL: never). cli_prepare_pins refuses the run up front when such a
	 * token has none, rather than write the tokens before it. */
	bool (*pin_needed)(struct cli_common *co, const tfs_token *tok);
	/* A writer: whether each PIN blob of tok must be re-wrapped, so that it
	 * needs its own PIN or a new one (NULL: never); refused up front too. */
	bool (*blob_pin_needed)(struct cli_common *co, const tfs_token *tok, tfs_pin_role role);
} cli_common;

/* getopt_long entries for the common options (option letters t, L, U, S). */
#define CLI_COMMON_LONGOPTS                                   \
	{"token", required_argument, NULL, 't'},              \
	{"lock-timeout", required_argument, NULL, 'L'},       \
	{"user-pin", optional_argument, NULL, 'U'},           \
	{"so-pin", optional_argument, NULL, 'S'}

/* The optional SPEC of an option like --user-pin: optarg, or the next word
 * when it is a SPEC (consumed); NULL: prompt. */
const char *cli_spec_arg(cli_common *co, int argc, char **argv);
/* Reads a new PIN as spec says; without spec, prompts twice and refuses a
 * mismatch. -1 (reported) on failure; free with tfs_secure_free. */
int cli_read_new_pin(const cli_common *co, const char *option, const char *spec,
                     const char *prompt, uint8_t **pin, size_t *len);

/*
 * The option loop of every command: getopt_long over argv with longopts
 * (which include CLI_COMMON_LONGOPTS and "help"), the common options handled
 * here, -h/--help printing usage and exiting 0, and every other option
 * handed to fn (0: taken, -1: a usage error it reported; NULL: the
 * command has no options of its own). Returns the index
 * of the first PATH, or -1 (reported) on a usage error or when no PATH was
 * given.
 */
typedef int (*cli_option_fn)(void *ctx, int c, int argc, char **argv);
int cli_parse(cli_common *co, int argc, char **argv, const char *shortopts,
              const struct option *longopts, cli_option_fn fn, void *ctx,
              void (*usage)(FILE *out));

/* The options of the commands that write: --force (no short form; its code
 * is out of the letters' range) and -n/--dry-run (recover has no dry run). */
enum { CLI_OPT_FORCE = 256, CLI_OPT_MAX_UNPACKED, CLI_OPT_MAX_MEMBERS, CLI_OPT_MAX_MEMBER_SIZE };
#define CLI_FORCE_LONGOPT {"force", no_argument, NULL, CLI_OPT_FORCE}
#define CLI_DRY_RUN_LONGOPT {"dry-run", no_argument, NULL, 'n'}
#define CLI_FORMAT_LONGOPT {"format", required_argument, NULL, 'f'}

/* What every command that takes PINs says about them in --help. */
#define CLI_PIN_TOKEN_HELP                                                        \
	"Each token may have its own PIN: --user-pin TOKEN=SPEC (TOKEN: a label,\n"  \
	"serial or directory name, as --token), repeated for each token. The entry\n" \
	"naming a token wins over the one without TOKEN, which is for every other\n" \
	"token. A TOKEN naming no token is a usage error, reported before any PIN\n" \
	"is read. SPEC prompt (or none) prompts without echo, naming the token.\n"

/* The caps on an archive PATH, for the commands that read (see CLI_ARCHIVE_HELP). */
#define CLI_ARCHIVE_LONGOPTS                                              \
	{"max-unpacked", required_argument, NULL, CLI_OPT_MAX_UNPACKED},  \
	{"max-members", required_argument, NULL, CLI_OPT_MAX_MEMBERS},    \
	{"max-member-size", required_argument, NULL, CLI_OPT_MAX_MEMBER_SIZE}
#define CLI_ARCHIVE_HELP                                                          \
	"      --max-unpacked SIZE  caps on an archive PATH, against archive bombs:\n" \
	"                        bytes unpacked in all (suffix K, M, G; default 1G),\n" \
	"      --max-members N   members (default 1000000)\n"                         \
	"      --max-member-size SIZE  and bytes of one member (default 64M)\n"

/* Opens PATH (a directory, a .object file or an archive: tfs_store_open_path)
 * with the common options. Reports a failure; returns an exit status. */
/* Opens PATH and calls fn for each token --token selects; the largest exit
 * status wins. A single .object file is refused; unless archives_ok (a
 * command that changes the store in place) an archive is refused too and
 * the store is opened strictly (co->writes). */
typedef int (*cli_token_fn)(void *ctx, const tfs_token *tok);
int cli_each_token(cli_common *co, const char *path, bool archives_ok, cli_token_fn fn,
                   void *ctx);

int cli_open_store(cli_common *co, const char *path, tfs_store **out);

/* Handles getopt result c when it is a common option: returns 1 when it was
 * (and consumed it), 0 when it is not, -1 on a usage error (reported). */
int cli_common_option(cli_common *co, int c, int argc, char **argv);
/* Whether tok is selected by --token (everything is when none was given). */
bool cli_token_selected(cli_common *co, const tfs_token *tok);
/* After all PATHs: a --token that selected nothing is a usage error (a
 * typo must not turn a check into a silent pass). Returns an exit status. */
int cli_check_selection(const cli_common *co);
/* Reports that PATH could not be opened, without echoing PATH when it may
 * be a PIN typed after a bare --user-pin or --so-pin. */
void cli_report_open(const cli_common *co, const char *path, const tfs_error *err);
/*
 * PINs, one per token: --user-pin and --so-pin take [TOKEN=]SPEC and repeat.
 * TOKEN is a label, serial or directory name, as --token; without it the
 * PIN is for every token that has none of its own (an entry naming the
 * token wins). SPEC: pass:PIN, env:VAR, file:PATH, fd:N, stdin, or prompt
 * (a bare option prompts too). A word that starts with a SPEC form is a
 * SPEC, never TOKEN= (a label such as "env:x=..." is given by serial).
 */
typedef struct cli_pin {
	tfs_pin_role role;
	char *token;        /* TOKEN, or NULL: every token without its own */
	const char *spec;   /* NULL: prompt */
	bool fresh;         /* a new PIN (rekey --new-user-pin, --new-so-pin): asked
	                     * twice when prompted, never tried */
	bool named;         /* TOKEN names a selected token (cli_prepare_pins) */
	size_t uses;        /* selected tokens it is for (cli_prepare_pins) */
	const tfs_token *first; /* the first of them, named by its prompt (valid
	                         * only during cli_prepare_pins) */
	bool read;
	uint8_t *pin;       /* tfs_secure_free'd by cli_common_free */
	size_t len;
} cli_pin;

/* The option name of a role: "--user-pin" or "--so-pin". */
const char *cli_pin_option(tfs_pin_role role);

/*
 * Before any token is read: opens every PATH (the stores are kept for
 * cli_open_store), gives each token --token selects its PIN of each role,
 * refuses a TOKEN= that names none of them (exit 2, before any PIN is
 * tried or read) and reads every PIN some token uses, a prompt naming the
 * token. With check (the commands that write), also opens each token's
 * PIN blobs with its PINs: a wrong PIN (or a damaged blob) refuses the
 * whole run before anything is written. Two entries of one role naming the
 * same token (by label and by serial, say) are a usage error, and so is a
 * TOKEN= naming two tokens of one PATH (two tokens with one label, or a
 * label that is another token's serial): a PIN, let alone a new PIN, must
 * not reach a token it was not meant for. With check, a token the command
 * needs a PIN for (co->pin_needed) and that has none refuses the run too.
 * Without any PIN it only does that last check. Returns an exit status
 * (reported).
 */
int cli_prepare_pins(cli_common *co, char **paths, int npaths, bool check);
/* The PIN of role for tok: from the entry naming tok, else from the one
 * without TOKEN; NULL when neither was given. Read on first use. */
const uint8_t *cli_pin_for(cli_common *co, const tfs_token *tok, tfs_pin_role role,
                           size_t *len);
/* --new-user-pin/--new-so-pin [TOKEN=]SPEC (rekey), by the same rules:
 * the option handler, returning 1 or -1 (reported); and the new PIN of a
 * token. */
int cli_new_pin_option(cli_common *co, tfs_pin_role role, int argc, char **argv);
const uint8_t *cli_new_pin_for(cli_common *co, const tfs_token *tok, tfs_pin_role role,
                               size_t *len);
/*
 * Unlocks tok with its PIN of role (*key NULL when none was given or the
 * token has no token.object). A wrong PIN is a finding about that token,
 * reported as such ([pin.wrong]): TFS_EXIT_PROBLEM, with `then` saying what
 * happens instead ("its private values are shown encrypted"). A damaged blob
 * is reported, TFS_EXIT_PROBLEM; a blob the token lacks, TFS_EXIT_USAGE.
 */
typedef enum cli_pin_result {
	CLI_PIN_NONE,   /* no PIN given for it (or no token.object to try) */
	CLI_PIN_OPENED, /* the PIN unwrapped the blob */
	CLI_PIN_WRONG,  /* the PIN does not unwrap it: pin.wrong */
	CLI_PIN_FAILED  /* the blob is damaged or absent */
} cli_pin_result;

/* What a PIN did with one blob: its result, and the blob's layout once
 * opened (TFS_LAYOUT_NONE otherwise). */
typedef struct cli_blob_use {
	cli_pin_result result;
	tfs_layout layout;
} cli_blob_use;

/* "opened", "wrong", "failed"; NULL for CLI_PIN_NONE. */
const char *cli_pin_result_name(cli_pin_result r);

int cli_unlock(cli_common *co, const tfs_token *tok, tfs_pin_role role, const char *then,
               tfs_token_key **key, cli_pin_result *result);
/* The key of tok through its user PIN, else its SO PIN, each reported as
 * cli_unlock does; both opening and wrapping different keys is reported
 * too (the user's is kept). What each PIN did goes into *user and *so (may
 * be NULL). Returns an exit status. */
int cli_unlock_token(cli_common *co, const tfs_token *tok, const char *then,
                     tfs_token_key **key, cli_blob_use *user, cli_blob_use *so);
/* Wipes the PINs and frees the lists. */
void cli_common_free(cli_common *co);

/*
 * Text read from a store is untrusted. cli_safe copies s into buf for a
 * terminal under escape.h's rule (controls, invalid UTF-8 and bidi controls
 * escaped), so a label cannot move the cursor, retitle the window or
 * reorder the line. Returns buf (cut to fit). cli_utf8 is the JSON rule:
 * invalid UTF-8 and bidi controls escaped (JSON escapes the other
 * controls itself); free() the result.
 */
const char *cli_safe(const char *s, char *buf, size_t size);
char *cli_utf8(const char *s);
/* A json-c string of s under the JSON rule above (NULL s gives JSON null). */
struct json_object;
struct json_object *cli_json_string(const char *s);

/* --to gcm|cbc: sets *layout; -1 (reported) for anything else. */
int cli_parse_layout(const char *cmd, const char *arg, tfs_layout *layout);

int cmd_dump(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_rekey(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_pin_audit(int argc, char **argv);

#endif
