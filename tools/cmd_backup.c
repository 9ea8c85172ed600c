/*
 * tokenfs backup: a consistent archive of a live store (tfs_backup,
 * libtokenfs/backup). Reads the store like dump does (read locks only) and
 * writes one file: the archive, atomically, 0600.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "writer.h"

typedef struct backup_opts {
	cli_common co;
	const char *out;
	unsigned max_reads;
} backup_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs backup --out FILE [OPTIONS] PATH\n"
	        "\n"
	        "Archive a SoftHSMv2 store while SoftHSM keeps running, as one state each\n"
	        "token really had: every file is read under SoftHSM's read locks, and a token\n"
	        "is read again until two whole reads agree byte for byte (SoftHSM rewrites\n"
	        "files in place, so a plain tar can hold torn objects). Members are\n"
	        "<token dir>/<file> with modes, owners and mtimes, so 'tar x -C TOKENDIR'\n"
	        "restores them (stop SoftHSM first). The archive is written to a temporary\n"
	        "file (0600) beside FILE, fsync'd and renamed into place. With a PIN, each\n"
	        "token's seal of the archived bytes goes in as <token dir>/tokenfs.seal, so\n"
	        "'verify-integrity --check-seal' proves every byte of it later. Without a\n"
	        "PIN a tokenfs.seal already in the token directory is archived as it is\n"
	        "(it is part of the store), with a note that nothing checked it against the\n"
	        "archived bytes.\n"
	        "\n"
	        "Options:\n"
	        "  -o, --out FILE        the archive; its name says the format: .tar,\n"
	        "                        .tar.gz or .tgz, .tar.xz, .tar.zst, .zip\n"
	        "      --force           replace FILE when it exists\n"
	        "  -n, --dry-run         read and check everything, write nothing; report\n"
	        "                        what would be archived\n"
	        "      --user-pin [[TOKEN=]SPEC]  seal each token with its user PIN (or its\n"
	        "      --so-pin [[TOKEN=]SPEC]    SO PIN); SPEC: pass:PIN, env:VAR, file:PATH,\n"
	        "                        fd:N or stdin (first line), or prompt; no SPEC:\n"
	        "                        prompt. A token whose PIN is wrong is archived\n"
	        "                        without a seal ([pin.wrong], exit 1)\n"
	        "      --max-reads N     whole reads of a token before giving up on one\n"
	        "                        that never holds still (default 100, 25 ms apart)\n"
	        "  -f, --format FMT      report as text (default) or json (docs/json.md)\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --lock-timeout MS how long to wait for a SoftHSM writer (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "An object file that stays torn or unparsable over several reads is damage,\n"
	        "not a write in flux: it is archived as it is, named in a warning, and the\n"
	        "exit is 1.\n"
	        "\n"
	        "Exit codes: 0 archived (or, with --dry-run, would be); 1 archived, but with\n"
	        "damaged object files (warned about) or a token unsealed for a wrong PIN;\n"
	        "2 usage or I/O error, FILE exists, or a token that never held still.\n");
}

enum { OPT_MAX_READS = 300 };

static int backup_option(void *ctx, int c, int argc, char **argv)
{
	backup_opts *o = ctx;
	(void)argc;
	(void)argv;
	switch (c) {
	case 'o':
		o->out = optarg;
		break;
	case OPT_MAX_READS: {
		char *end;
		unsigned long v = strtoul(optarg, &end, 10);
		if (*optarg == '\0' || *end != '\0' || v < 2 || v > 100000) {
			cli_error("backup: --max-reads takes a number from 2 to 100000");
			return -1;
		}
		o->max_reads = (unsigned)v;
		break;
	}
	default:
		break;
	}
	return 0;
}

static int parse_args(backup_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		CLI_FORCE_LONGOPT,
		CLI_DRY_RUN_LONGOPT,
		{"out", required_argument, NULL, 'o'},
		{"max-reads", required_argument, NULL, OPT_MAX_READS},
		CLI_FORMAT_LONGOPT,
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "o:nf:t:h", longopts, backup_option, o, usage);
	if (first < 0)
		return -1;
	if (o->out == NULL) {
		cli_error("backup: --out FILE is required");
		return -1;
	}
	if (argc - first != 1) {
		cli_error("backup: takes one PATH (a tokendir or a token directory)");
		return -1;
	}
	tfs_archive_format f;
	if (!tfs_archive_format_of(o->out, &f)) {
		cli_error("backup: --out '%s': the name must end in .tar, .tar.gz, .tgz, .tar.xz, "
		          ".tar.zst or .zip", o->out);
		return -1;
	}
	return first;
}

static bool select_token(void *ctx, const tfs_token *tok)
{
	return cli_token_selected(&((backup_opts *)ctx)->co, tok);
}

/* Each token is sealed with its own PINs (cli_pin_for). */
static void token_pins(void *ctx, const tfs_token *tok, const uint8_t **user_pin,
                       size_t *user_pin_len, const uint8_t **so_pin, size_t *so_pin_len)
{
	backup_opts *o = ctx;
	*user_pin = cli_pin_for(&o->co, tok, TFS_PIN_USER, user_pin_len);
	*so_pin = cli_pin_for(&o->co, tok, TFS_PIN_SO, so_pin_len);
}

/* A wrong PIN for one token is a finding about it: archived unsealed. */
static bool report_unsealed(const tfs_backup_result *r, const char *store_path)
{
	bool any = false;
	for (size_t i = 0; i < r->ntokens; i++)
		if (r->tokens[i].seal_error != NULL) {
			cli_error("error: %s/%s/token.object: %s; the token is archived without a seal "
			          "[pin.wrong]", store_path, r->tokens[i].dir, r->tokens[i].seal_error);
			any = true;
		}
	return any;
}

static void on_progress(void *ctx, const char *label, size_t done, size_t total)
{
	(void)ctx;
	writer_progress("backup", label, "reading", done, total);
}

/* A damaged file is archived (it is what the store holds), but the backup
 * is not a healthy state: each one is named on stderr and the exit is 1. */
static bool warn_damage(const tfs_backup_result *r)
{
	char db[1200], fb[1200], wb[1200];
	bool any = false;
	for (size_t i = 0; i < r->ntokens; i++) {
		const tfs_backup_token *t = &r->tokens[i];
		for (size_t k = 0; k < t->ndamaged; k++) {
			cli_warning("backup: %s/%s: %s; archived as it is (the store holds it so; "
			            "'tokenfs verify-integrity' tells more)",
			            cli_safe(t->dir, db, sizeof(db)),
			            cli_safe(t->damaged[k].file, fb, sizeof(fb)),
			            cli_safe(t->damaged[k].defect, wb, sizeof(wb)));
			any = true;
		}
	}
	return any;
}

static void render_text(const backup_opts *o, const tfs_backup_result *r)
{
	char lb[200], db[1200];
	for (size_t i = 0; i < r->ntokens; i++) {
		const tfs_backup_token *t = &r->tokens[i];
		printf("token \"%s\" (%s): %zu objects, %zu files, %" PRIu64 " bytes%s; the same "
		       "state in %u reads",
		       cli_safe(t->label, lb, sizeof(lb)), cli_safe(t->dir, db, sizeof(db)), t->objects,
		       t->files, t->bytes, t->sealed ? ", sealed" : "", t->reads);
		if (t->has_generation)
			printf(", generation %" PRIu64, t->generation);
		printf("\n");
		if (t->skipped > 0)
			printf("  %zu entries that are not regular files were left out\n", t->skipped);
		if (t->old_seal_unchecked)
			printf("  note: the token's existing tokenfs.seal is archived as it was, not "
			       "checked against the archived bytes (a PIN makes a new one)\n");
		if (t->ndamaged > 0)
			printf("  %zu damaged object files archived as they are (see the warnings)\n",
			       t->ndamaged);
	}
	char ob[1200];
	if (o->co.dry_run)
		printf("dry run: would archive %zu tokens, %zu objects, %zu files, %" PRIu64
		       " bytes as %s into %s\n", r->ntokens, r->objects, r->files, r->bytes,
		       tfs_archive_format_name(r->format), cli_safe(o->out, ob, sizeof(ob)));
	else
		printf("archived %zu tokens, %zu objects, %zu files, %" PRIu64 " bytes into %s (%s, %"
		       PRIu64 " bytes)\n", r->ntokens, r->objects, r->files, r->bytes,
		       cli_safe(o->out, ob, sizeof(ob)), tfs_archive_format_name(r->format),
		       r->archive_bytes);
}

static void render_json(const backup_opts *o, const tfs_backup_result *r, int status)
{
	json_object *tokens = json_object_new_array(), *extra = json_object_new_object();
	for (size_t i = 0; i < r->ntokens; i++) {
		const tfs_backup_token *t = &r->tokens[i];
		json_object *j = json_object_new_object();
		json_object_object_add(j, "dir", cli_json_string(t->dir));
		json_object_object_add(j, "label", cli_json_string(t->label));
		json_object_object_add(j, "serial", cli_json_string(t->serial));
		json_object_object_add(j, "objects", json_object_new_uint64(t->objects));
		json_object_object_add(j, "files", json_object_new_uint64(t->files));
		json_object_object_add(j, "bytes", json_object_new_uint64(t->bytes));
		json_object_object_add(j, "reads", json_object_new_uint64(t->reads));
		json_object_object_add(j, "sealed", json_object_new_boolean(t->sealed));
		json_object_object_add(j, "generation",
		                       t->has_generation ? json_object_new_uint64(t->generation) : NULL);
		json_object_object_add(j, "skipped", json_object_new_uint64(t->skipped));
		json_object_object_add(j, "old_seal_unchecked",
		                       json_object_new_boolean(t->old_seal_unchecked));
		json_object *dam = json_object_new_array();
		for (size_t k = 0; k < t->ndamaged; k++) {
			json_object *d = json_object_new_object();
			json_object_object_add(d, "file", cli_json_string(t->damaged[k].file));
			json_object_object_add(d, "defect", cli_json_string(t->damaged[k].defect));
			json_object_array_add(dam, d);
		}
		json_object_object_add(j, "damaged", dam);
		json_object_array_add(tokens, j);
	}
	json_object_object_add(extra, "archive", cli_json_string(o->out));
	json_object_object_add(extra, "archive_format",
	                       json_object_new_string(tfs_archive_format_name(r->format)));
	json_object_object_add(extra, "dry_run", json_object_new_boolean(o->co.dry_run));
	json_object_object_add(extra, "objects", json_object_new_uint64(r->objects));
	json_object_object_add(extra, "files", json_object_new_uint64(r->files));
	json_object_object_add(extra, "bytes", json_object_new_uint64(r->bytes));
	json_object_object_add(extra, "archive_bytes", json_object_new_uint64(r->archive_bytes));
	writer_print_json("backup", extra, tokens, status);
}

int cmd_backup(int argc, char **argv)
{
	backup_opts o = {.co = {.cmd = "backup"}};
	int status = TFS_EXIT_USAGE;
	int first = parse_args(&o, argc, argv);
	if (first < 0 || cli_prepare_pins(&o.co, argv + first, 1, false) != TFS_EXIT_OK)
		goto out;
	tfs_store *store = NULL;
	tfs_error err;
	if (cli_open_store(&o.co, argv[first], &store) != TFS_EXIT_OK)
		goto out;
	if (tfs_store_is_archive(store)) {
		/* Snapshots are read from the file system, with SoftHSM's locks. */
		cli_error("backup: %s: not a token store: expected a tokendir or a token directory "
		          "(an archive is a backup already)", argv[first]);
		tfs_store_free(store);
		goto out;
	}
	tfs_backup_options bo = {
		.out = o.out, .force = o.co.force, .dry_run = o.co.dry_run,
		.max_reads = o.max_reads, .select = select_token, .progress = on_progress, .ctx = &o,
		.pins = token_pins,
	};
	tfs_backup_result r;
	int rc = tfs_backup(&r, store, &bo, &err);
	status = rc == TFS_OK ? TFS_EXIT_OK : TFS_EXIT_USAGE;
	if (rc != TFS_OK)
		cli_report(&err);
	else
		status = cli_check_selection(&o.co);
	if (rc == TFS_OK && warn_damage(&r) && status == TFS_EXIT_OK)
		status = TFS_EXIT_PROBLEM;
	if (rc == TFS_OK && report_unsealed(&r, tfs_store_path(store)) && status == TFS_EXIT_OK)
		status = TFS_EXIT_PROBLEM;
	if (o.co.json)
		render_json(&o, &r, status);
	else if (rc == TFS_OK && status != TFS_EXIT_USAGE)
		render_text(&o, &r);
	tfs_backup_result_free(&r);
	tfs_store_free(store);
	if (fflush(stdout) != 0) {
		cli_error("backup: writing the output failed");
		status = TFS_EXIT_USAGE;
	}
out:
	cli_common_free(&o.co);
	return status;
}
