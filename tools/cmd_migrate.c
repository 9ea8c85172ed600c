/*
 * tokenfs migrate: move tokens between SoftHSM's AES-CBC layout and the
 * AES-GCM layout of SoftHSMv2 pull request #627. The work is
 * tfs_migrate_token's (libtokenfs/migrate); this file parses options and
 * renders what happened.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "writer.h"

typedef struct migrate_opts {
	cli_common co; /* --token, --lock-timeout, PINs */
	tfs_migrate_options m;
} migrate_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs migrate --to gcm|cbc [OPTIONS] PATH...\n"
	        "\n"
	        "Re-encrypt SoftHSMv2 tokens in another layout, offline: gcm is the\n"
	        "authenticated AES-GCM layout of SoftHSMv2 pull request #627 (tampering\n"
	        "with a value becomes detectable), cbc is stock SoftHSM's AES-CBC. Every\n"
	        "encrypted value is re-encrypted under the same token key with a fresh IV,\n"
	        "and each PIN blob whose PIN is given is re-wrapped. Each token changes in\n"
	        "one crash-safe transaction (docs/writes.md): after a crash it is wholly as\n"
	        "before or wholly migrated once 'tokenfs recover' (or any write command)\n"
	        "has run. Anything already in the target layout is left alone, so running\n"
	        "it again completes an interrupted migration and otherwise writes nothing.\n"
	        "\n"
	        "SoftHSM must be stopped: a running SoftHSM writes its cached objects back\n"
	        "over the migrated ones. migrate refuses while any process has\n"
	        "libsofthsm2.so loaded, and names it.\n"
	        "\n"
	        "Options:\n"
	        "      --to LAYOUT       gcm or cbc (required)\n"
	        "      --user-pin [[TOKEN=]SPEC]  the user PIN; SPEC: pass:PIN, env:VAR,\n"
	        "      --so-pin [[TOKEN=]SPEC]    file:PATH, fd:N or stdin (first line), or\n"
	        "                        prompt; no SPEC: prompt.\n"
	        "                        One PIN unlocks the values; each PIN blob needs\n"
	        "                        its own PIN to be re-wrapped\n"
	        "      --keep-other-blob with one PIN only: leave the other PIN's blob in\n"
	        "                        its layout (the output says who can then log in)\n"
	        "  -n, --dry-run         say what would change; write and lock nothing\n"
	        "      --force           go on although a process has SoftHSM loaded\n"
	        "  -f, --format FMT      text (default) or json (docs/json.md)\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --lock-timeout MS how long to wait for locks, in all (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "Before writing, every value of the token must decrypt: a damaged or\n"
	        "tampered value is named and nothing is written, so a migration never turns\n"
	        "damage into valid-looking GCM. A seal (verify-integrity --seal) that held\n"
	        "before is made anew; one that did not is left alone and reported.\n"
	        "pass:PIN is for tests: other users see it in ps.\n"
	        CLI_PIN_TOKEN_HELP
	        "Every selected token's PINs are checked before anything is written: one\n"
	        "wrong PIN refuses the whole run.\n"
	        "\n"
	        "Exit codes: 0 done, or nothing to do; 1 refused because of the store\n"
	        "(damaged values, a pending transaction that cannot be recovered); 2 usage,\n"
	        "I/O, a lock held past --lock-timeout, a running SoftHSM, a wrong or\n"
	        "missing PIN.\n");
}

/* The command's own options (cli_parse handles the rest). */
static int migrate_option(void *ctx, int c, int argc, char **argv)
{
	migrate_opts *o = ctx;
	(void)argc;
	(void)argv;
	switch (c) {
	case 'T':
		return cli_parse_layout(o->co.cmd, optarg, &o->m.to);
	case 'K': o->m.keep_other_blob = true; break;
	default:
		break;
	}
	return 0;
}

/* Returns -1 on a usage error, else the index of the first PATH. */
static int parse_args(migrate_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"to", required_argument, NULL, 'T'},        {"keep-other-blob", no_argument, NULL, 'K'},
		CLI_DRY_RUN_LONGOPT,                         CLI_FORCE_LONGOPT,
		CLI_FORMAT_LONGOPT,    {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "nf:t:h", longopts, migrate_option, o, usage);
	if (first < 0)
		return -1;
	if (!o->co.want_user && !o->co.want_so) {
		cli_error("migrate: give --user-pin or --so-pin (or both): values are re-encrypted "
		          "under the token key a PIN unlocks");
		return -1;
	}
	return first;
}

/* Who can log in after a migration that kept one blob as it was. */
static void kept_blob_note(const tfs_change_result *r, tfs_layout to)
{
	for (int k = TFS_PIN_SO; k <= TFS_PIN_USER; k++) {
		if (r->blob[k] != TFS_BLOB_KEPT)
			continue;
		const char *kept = k == TFS_PIN_SO ? "SO" : "user", *other = k == TFS_PIN_SO ? "user" : "SO";
		printf("  the %s PIN blob was kept as it was (its layout cannot be told without the %s "
		       "PIN).\n", kept, kept);
		if (to == TFS_LAYOUT_GCM)
			printf("  A SoftHSM built with pull request #627 logs in with the %s PIN, and with "
			       "the %s PIN only\n  if that blob was already GCM; stock SoftHSM reads no "
			       "private value of this token any more.\n", other, kept);
		else
			printf("  Stock SoftHSM 2.6.1 logs in with the %s PIN, and with the %s PIN only if "
			       "that blob\n  was already CBC; a #627 build can no longer decrypt its values.\n",
			       other, kept);
		printf("  Run migrate again with --%s-pin to finish it.\n", k == TFS_PIN_SO ? "so" : "user");
	}
}

static void render_text(void *ctx, const tfs_token *tok, const tfs_change_result *r)
{
	const migrate_opts *o = ctx;
	char lb[200], sb[100], pb[4 * 4096 + 8];
	bool work = r->objects_rewritten > 0 || r->blob[0] == TFS_BLOB_REWRAPPED ||
	            r->blob[1] == TFS_BLOB_REWRAPPED;
	const char *to = tfs_layout_name(o->m.to);
	printf("token \"%s\" (serial %s, %s): %s\n", cli_safe(tfs_token_label(tok), lb, sizeof(lb)),
	       cli_safe(tfs_token_serial(tok), sb, sizeof(sb)), cli_safe(tfs_token_path(tok), pb, sizeof(pb)),
	       !work ? "already wholly in the target layout; nothing written"
	       : o->co.dry_run ? "would be migrated (dry run: nothing written)" : "migrated");
	if (r->pending)
		printf("  an interrupted transaction is pending: migrate (or recover) finishes it first\n");
	if (r->txn.recovered != TFS_RECOVERY_NONE)
		printf("  recovered an interrupted transaction first: %s\n", tfs_recovery_name(r->txn.recovered));
	printf("  objects: %zu, %s %zu; values: %zu %s %s, %zu already %s\n", r->objects,
	       o->co.dry_run ? "to rewrite" : "rewritten", r->objects_rewritten, r->values_reencrypted,
	       o->co.dry_run ? "to re-encrypt in" : "re-encrypted in", to, r->values_already, to);
	printf("  PIN blobs: SO %s, user %s\n", tfs_blob_action_name(r->blob[TFS_PIN_SO]),
	       tfs_blob_action_name(r->blob[TFS_PIN_USER]));
	if (!o->co.dry_run && work)
		printf("  written: %zu files, %llu bytes (and a %llu-byte journal)\n", r->txn.files_written,
		       (unsigned long long)r->txn.bytes_written, (unsigned long long)r->txn.journal_bytes);
	if (r->seal == TFS_SEAL_OUTCOME_REMADE)
		printf("  seal: it verified before the migration and was made anew\n");
	else if (r->seal == TFS_SEAL_OUTCOME_FAILED)
		printf("  seal: could NOT be made anew (see the message above); the old seal now "
		       "reports this change\n");
	else if (r->seal == TFS_SEAL_OUTCOME_NOT_VERIFIED)
		printf("  seal: it did NOT verify before the migration; left alone (check it with "
		       "verify-integrity --check-seal)\n");
	kept_blob_note(r, o->m.to);
}

static int migrate_one(void *ctx, const tfs_token *tok, tfs_change_result *r, tfs_error *err)
{
	migrate_opts *o = ctx;
	/* Each token with its own PINs, all checked before the first write
	 * (cli_prepare_pins). */
	tfs_migrate_options m = o->m;
	m.user_pin = cli_pin_for(&o->co, tok, TFS_PIN_USER, &m.user_pin_len);
	m.so_pin = cli_pin_for(&o->co, tok, TFS_PIN_SO, &m.so_pin_len);
	return tfs_migrate_token(r, tfs_token_path(tok), &m, err);
}

/* Every token migrate changes is re-encrypted under its token key. */
static bool migrate_pin_needed(cli_common *co, const tfs_token *tok)
{
	(void)co;
	(void)tok;
	return true;
}

/* Both blobs move to --to, unless --keep-other-blob leaves the one whose
 * PIN is not given (tfs_change_token's decide_blob). */
static bool migrate_blob_pin_needed(cli_common *co, const tfs_token *tok, tfs_pin_role role)
{
	(void)tok;
	(void)role;
	return !((const migrate_opts *)co)->m.keep_other_blob; /* co is its first member */
}

int cmd_migrate(int argc, char **argv)
{
	migrate_opts o = {.co = {.cmd = "migrate", .pin_needed = migrate_pin_needed,
	                         .blob_pin_needed = migrate_blob_pin_needed}};
	int status = TFS_EXIT_USAGE;
	int first = parse_args(&o, argc, argv);
	/* A running SoftHSM refuses before anyone is asked for a PIN. */
	if (first < 0 || writer_check_softhsm(&o.co) != TFS_EXIT_OK ||
	    cli_prepare_pins(&o.co, argv + first, argc - first, true) != TFS_EXIT_OK)
		goto out;
	writer_change_cmd w = {.co = &o.co, .json = o.co.json,
	                       .change = migrate_one, .render = render_text, .ctx = &o};
	o.m.lock_timeout_ms = o.co.lock_ms;
	o.m.dry_run = o.co.dry_run;
	o.m.progress = writer_on_progress;
	o.m.problem = writer_on_problem;
	o.m.ctx = &w;
	json_object *extra = json_object_new_object();
	json_object_object_add(extra, "to", json_object_new_string(tfs_layout_name(o.m.to)));
	status = writer_run_change(&w, argv + first, argc - first, extra);
out:
	cli_common_free(&o.co);
	return status;
}
