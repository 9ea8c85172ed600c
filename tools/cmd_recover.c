/*
 * tokenfs recover: finish or undo what an interrupted write left in each
 * token directory (tfs_txn_recover, libtokenfs/txn). Needs no PIN: a
 * committed transaction's new files are already staged in full.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "writer.h"

typedef struct recover_opts {
	cli_common co;
	json_object *tokens;
} recover_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs recover [OPTIONS] PATH...\n"
	        "\n"
	        "Finish or undo a tokenfs write (migrate, rekey) that was interrupted by a\n"
	        "crash, a kill or a full disk. A transaction that reached its commit point\n"
	        "is finished (rolled forward); one that did not is undone (its staged files\n"
	        "are removed). Either way each token is then wholly as before or wholly as\n"
	        "after (docs/writes.md). No PIN is needed. Every write command runs this\n"
	        "first; dump and verify-integrity report a pending transaction.\n"
	        "\n"
	        "Options:\n"
	        "      --force           go on although a process has SoftHSM loaded\n"
	        "  -f, --format FMT      text (default) or json (docs/json.md)\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --lock-timeout MS how long to wait for locks, in all (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "Exit codes: 0 done (also when nothing was pending); 1 a journal that cannot\n"
	        "be trusted (nothing changed: see docs/writes.md); 2 usage, I/O, a lock, a\n"
	        "running SoftHSM.\n");
}

/* Returns -1 on a usage error, else the index of the first PATH. */
static int parse_args(recover_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		CLI_FORCE_LONGOPT,
		CLI_FORMAT_LONGOPT,
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "f:t:h", longopts, NULL, NULL, usage);
	if (first < 0)
		return -1;
	if (o->co.want_user || o->co.want_so) {
		cli_error("recover: needs no PIN");
		return -1;
	}
	return first;
}

static int recover_one(void *ctx, const tfs_token *tok)
{
	recover_opts *o = ctx;
	tfs_txn_options to = {.lock_timeout_ms = o->co.lock_ms};
	tfs_recovery what;
	tfs_error err;
	int rc = tfs_txn_recover(&what, tfs_token_path(tok), &to, &err);
	int status = writer_exit_code(rc);
	if (rc != TFS_OK)
		cli_report(&err);
	if (o->co.json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "dir", cli_json_string(tfs_token_path(tok)));
		json_object_object_add(j, "label", cli_json_string(tfs_token_label(tok)));
		json_object_object_add(j, "serial", cli_json_string(tfs_token_serial(tok)));
		json_object_object_add(j, "recovered", rc == TFS_OK ? json_object_new_string(tfs_recovery_name(what)) : NULL);
		json_object_object_add(j, "exit", json_object_new_int(status));
		json_object_array_add(o->tokens, j);
	} else if (rc == TFS_OK) {
		char lb[200], pb[4 * 4096 + 8];
		printf("token \"%s\" (%s): %s\n", cli_safe(tfs_token_label(tok), lb, sizeof(lb)),
		       cli_safe(tfs_token_path(tok), pb, sizeof(pb)),
		       what == TFS_RECOVERY_ROLLED_FORWARD ? "finished an interrupted transaction (rolled forward)"
		       : what == TFS_RECOVERY_ROLLED_BACK ? "undid an interrupted transaction (rolled back)"
		       : "nothing pending");
	}
	return status;
}

int cmd_recover(int argc, char **argv)
{
	recover_opts o = {.co = {.cmd = "recover"}};
	int status = TFS_EXIT_USAGE;
	int first = parse_args(&o, argc, argv);
	if (first < 0 || (status = writer_check_softhsm(&o.co)) != TFS_EXIT_OK)
		goto out;
	o.tokens = json_object_new_array();
	for (int i = first; i < argc; i++) {
		int s = writer_each_token(&o.co, argv[i], recover_one, &o);
		status = s > status ? s : status;
	}
	int sel = cli_check_selection(&o.co);
	status = sel > status ? sel : status;
	if (o.co.json)
		writer_print_json("recover", NULL, o.tokens, status);
	else
		json_object_put(o.tokens);
	if (fflush(stdout) != 0) {
		cli_error("recover: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
out:
	cli_common_free(&o.co);
	return status;
}
