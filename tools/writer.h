/*
 * What every command that changes a store shares in the tool: the
 * running-SoftHSM refusal, walking the selected token directories of each
 * PATH, progress at a terminal, and mapping library errors to exit codes.
 */
#ifndef TFS_TOOLS_WRITER_H
#define TFS_TOOLS_WRITER_H

#include <stdbool.h>

#include "cli.h"

/* Refuses (returns TFS_EXIT_USAGE, reported) while a process has SoftHSM
 * loaded, naming each, unless --force; with --force it only warns. A dry
 * run writes nothing and is not checked. */
int writer_check_softhsm(const cli_common *co);

/* The exit code for a library error of a write command: 1 for a refusal
 * caused by the store itself (damage), 2 for everything else. */
int writer_exit_code(int rc);

/* cli_each_token for a command that changes the store: an archive is
 * refused, as is a single .object file. */
typedef cli_token_fn writer_token_fn;
int writer_each_token(cli_common *co, const char *path, writer_token_fn fn, void *ctx);

/* Progress on stderr at a terminal only, at most every 1/10 s; done ==
 * total clears the line. */
void writer_progress(const char *cmd, const char *label, const char *phase, size_t done,
                     size_t total);

/*
 * The flow of a command that changes tokens (migrate, rekey), once it has
 * checked for a running SoftHSM and read the PINs: for every selected token of every
 * PATH run `change`, report its error or render its result (text through
 * `render`, or JSON), then print the JSON document with `extra`'s members.
 * Returns the exit status.
 */
typedef struct writer_change_cmd {
	cli_common *co;    /* with --force and --dry-run */
	bool json;
	int (*change)(void *ctx, const tfs_token *tok, tfs_change_result *r, tfs_error *err);
	void (*render)(void *ctx, const tfs_token *tok, const tfs_change_result *r);
	void *ctx;
	/* set while running: */
	struct json_object *tokens;
	const char *label; /* of the token being changed, for progress */
	char **seen;       /* real paths of the token directories done */
	size_t nseen;
} writer_change_cmd;

int writer_run_change(writer_change_cmd *w, char **paths, int npaths, struct json_object *extra);

/* Progress and problem callbacks for tfs_migrate_options/tfs_rekey_options;
 * ctx is the writer_change_cmd. */
void writer_on_progress(void *ctx, const char *phase, size_t done, size_t total);
void writer_on_problem(void *ctx, const tfs_error *err);

/* A token's tfs_change_result as JSON (docs/json.md). */
struct json_object;
struct json_object *writer_change_json(const tfs_token *tok, const tfs_change_result *r, int status);

/* The JSON document of a write command: {"format_version", "command",
 * extra members, "tokens", "exit"}; takes ownership of extra and tokens. */
void writer_print_json(const char *cmd, struct json_object *extra, struct json_object *tokens,
                       int status);

#endif
