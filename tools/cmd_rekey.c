/*
 * tokenfs rekey: change or reset PINs offline, recover a lost SO PIN from the
 * user PIN, rotate the token key, relabel. The work is tfs_rekey_token's
 * (libtokenfs/change); this file parses options, reads the new PINs and
 * renders what happened.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "writer.h"

typedef struct rekey_opts {
	cli_common co; /* --token, --lock-timeout, current PINs */
	tfs_rekey_options r;
	bool want_new_user, want_new_so; /* the PINs are co's (cli_new_pin_for) */
	const tfs_token *untouched; /* the last token nothing was asked of */
} rekey_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs rekey [OPTIONS] PATH...\n"
	        "\n"
	        "Change PINs, rotate the token key or relabel SoftHSMv2 tokens, offline.\n"
	        "\n"
	        "Both PIN blobs of a SoftHSM token wrap the same token key, so whoever has\n"
	        "either PIN and the files can set the other: a lost SO PIN is recovered\n"
	        "with the user PIN, and a forgotten or locked user PIN is reset with the SO\n"
	        "PIN. (On a hardware token a lost SO PIN is final; here the files allow\n"
	        "it, which is also why they must be protected like the keys.)\n"
	        "\n"
	        "Unlock with one or both of:\n"
	        "      --user-pin [[TOKEN=]SPEC]  the current user PIN (of TOKEN)\n"
	        "      --so-pin [[TOKEN=]SPEC]    the current SO PIN (of TOKEN)\n"
	        "Change:\n"
	        "      --new-user-pin [[TOKEN=]SPEC]  set the user PIN (of TOKEN): with the\n"
	        "                        user PIN this is C_SetPIN, with the SO PIN\n"
	        "                        C_InitPIN (also on a token whose user PIN was\n"
	        "                        never set)\n"
	        "      --new-so-pin [[TOKEN=]SPEC]    set the SO PIN (of TOKEN), with the SO\n"
	        "                        PIN or with the user PIN when the SO PIN is lost.\n"
	        "                        A token no new PIN names (when each names its\n"
	        "                        TOKEN) is left as it is\n"
	        "      --rotate-token-key a fresh token key: every value re-encrypted under\n"
	        "                        it, both blobs re-wrapped; needs for each blob its\n"
	        "                        current PIN or a new one. SoftHSM itself never\n"
	        "                        changes the token key; rotate after a suspected\n"
	        "                        copy of the store (then change the PINs too)\n"
	        "      --new-label TEXT  the token label (UTF-8, at most 32 bytes); needs\n"
	        "                        no PIN\n"
	        "      --to LAYOUT       also migrate to gcm or cbc in the same transaction\n"
	        "Other options:\n"
	        "  -n, --dry-run         say what would change; write and lock nothing\n"
	        "      --force           go on although a process has SoftHSM loaded\n"
	        "  -f, --format FMT      text (default) or json (docs/json.md)\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --lock-timeout MS how long to wait for locks, in all (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "SPEC: pass:PIN, env:VAR, file:PATH, fd:N or stdin (first line). Without\n"
	        "SPEC (or with prompt) a current PIN is prompted once and a new PIN twice,\n"
	        "without echo.\n"
	        "pass:PIN is for tests only: other users see it in ps. New PINs have 4\n"
	        "to 255 bytes, as in SoftHSM. Like every write command, rekey runs in one\n"
	        "crash-safe transaction per token (docs/writes.md) and refuses while any\n"
	        "process has SoftHSM loaded: a running SoftHSM would write its cached\n"
	        "token.object, with the old PIN blobs, back over the new one.\n"
	        CLI_PIN_TOKEN_HELP
	        "Every selected token's current PINs are checked before anything is\n"
	        "written: one wrong PIN refuses the whole run.\n"
	        "\n"
	        "Exit codes: 0 done; 1 refused because of the store (damaged values, a\n"
	        "pending transaction that cannot be recovered); 2 usage, I/O, a lock, a\n"
	        "running SoftHSM, a wrong or missing PIN, a PIN of the wrong length.\n");
}

/* The command's own options (cli_parse handles the rest). */
static int rekey_option(void *ctx, int c, int argc, char **argv)
{
	rekey_opts *o = ctx;
	switch (c) {
	case 'u':
	case 's':
		*(c == 'u' ? &o->want_new_user : &o->want_new_so) = true;
		return cli_new_pin_option(&o->co, c == 'u' ? TFS_PIN_USER : TFS_PIN_SO, argc, argv) < 0
		       ? -1 : 0;
	case 'R': o->r.rotate_token_key = true; break;
	case 'l': o->r.new_label = optarg; break;
	case 'T':
		return cli_parse_layout(o->co.cmd, optarg, &o->r.to);
	default:
		break;
	}
	return 0;
}

/* Returns -1 on a usage error, else the index of the first PATH. */
static int parse_args(rekey_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"new-user-pin", optional_argument, NULL, 'u'}, {"new-so-pin", optional_argument, NULL, 's'},
		{"rotate-token-key", no_argument, NULL, 'R'},  {"new-label", required_argument, NULL, 'l'},
		{"to", required_argument, NULL, 'T'},          CLI_DRY_RUN_LONGOPT,
		CLI_FORCE_LONGOPT,                             CLI_FORMAT_LONGOPT,
		{"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "nf:t:h", longopts, rekey_option, o, usage);
	if (first < 0)
		return -1;
	if (!o->want_new_user && !o->want_new_so && !o->r.rotate_token_key && o->r.new_label == NULL &&
	    o->r.to == TFS_LAYOUT_NONE) {
		cli_error("rekey: nothing to change: give --new-user-pin, --new-so-pin, "
		          "--rotate-token-key, --new-label or --to");
		return -1;
	}
	bool need_key = o->want_new_user || o->want_new_so || o->r.rotate_token_key || o->r.to;
	if (need_key && !o->co.want_user && !o->co.want_so) {
		cli_error("rekey: give the current --user-pin or --so-pin: new PINs and a new token key "
		          "are wrapped with the token key a PIN unlocks");
		return -1;
	}
	return first;
}

static void render_text(void *ctx, const tfs_token *tok, const tfs_change_result *r)
{
	rekey_opts *o = ctx;
	char lb[200], sb[100], pb[4 * 4096 + 8];
	size_t n;
	bool user_given = cli_pin_for(&o->co, tok, TFS_PIN_USER, &n) != NULL;
	bool so_given = cli_pin_for(&o->co, tok, TFS_PIN_SO, &n) != NULL;
	if (tok == o->untouched) {
		printf("token \"%s\" (serial %s, %s): no --new-*-pin names it; left as it is\n",
		       cli_safe(tfs_token_label(tok), lb, sizeof(lb)),
		       cli_safe(tfs_token_serial(tok), sb, sizeof(sb)),
		       cli_safe(tfs_token_path(tok), pb, sizeof(pb)));
		return;
	}
	const char *will = o->co.dry_run ? "would be " : "";
	printf("token \"%s\" (serial %s, %s): %s\n", cli_safe(tfs_token_label(tok), lb, sizeof(lb)),
	       cli_safe(tfs_token_serial(tok), sb, sizeof(sb)), cli_safe(tfs_token_path(tok), pb, sizeof(pb)),
	       o->co.dry_run ? "dry run, nothing written" : "changed");
	if (r->txn.recovered != TFS_RECOVERY_NONE)
		printf("  recovered an interrupted transaction first: %s\n", tfs_recovery_name(r->txn.recovered));
	if (r->pin_set[TFS_PIN_USER])
		printf("  user PIN: %sset (%s)\n", will, user_given
		       ? "with the user PIN, as C_SetPIN" : "with the SO PIN, as C_InitPIN: a reset");
	if (r->pin_set[TFS_PIN_SO])
		printf("  SO PIN: %sset%s\n", will, so_given ? " with the SO PIN"
		       : " with the user PIN: possible offline because both PIN blobs wrap the same "
		         "token key");
	if (r->key_rotated)
		printf("  token key: %srotated; %zu values in %zu objects re-encrypted under the new key\n",
		       will, r->values_reencrypted, r->objects_rewritten);
	else if (r->values_reencrypted > 0)
		printf("  values: %zu in %zu objects %sre-encrypted in %s\n", r->values_reencrypted,
		       r->objects_rewritten, will, tfs_layout_name(o->r.to));
	if (r->label_set)
		printf("  label: %sset\n", will);
	printf("  PIN blobs: SO %s, user %s\n", tfs_blob_action_name(r->blob[TFS_PIN_SO]),
	       tfs_blob_action_name(r->blob[TFS_PIN_USER]));
	if (!o->co.dry_run && r->txn.files_written > 0)
		printf("  written: %zu files, %llu bytes (and a %llu-byte journal)\n", r->txn.files_written,
		       (unsigned long long)r->txn.bytes_written, (unsigned long long)r->txn.journal_bytes);
	else if (!o->co.dry_run)
		printf("  nothing needed changing; nothing written\n");
	if (r->seal == TFS_SEAL_OUTCOME_REMADE)
		printf("  seal: it verified before and was made anew\n");
	else if (r->seal == TFS_SEAL_OUTCOME_FAILED)
		printf("  seal: could NOT be made anew (see the message above); the old seal now "
		       "reports this change\n");
	else if (r->seal == TFS_SEAL_OUTCOME_NOT_VERIFIED)
		printf("  seal: it did NOT verify before (or no PIN could check it); left alone\n");
}

static int rekey_one(void *ctx, const tfs_token *tok, tfs_change_result *r, tfs_error *err)
{
	rekey_opts *o = ctx;
	/* Each token with its own current PINs, all checked before the first
	 * write (cli_prepare_pins). */
	tfs_rekey_options ro = o->r;
	ro.user_pin = cli_pin_for(&o->co, tok, TFS_PIN_USER, &ro.user_pin_len);
	ro.so_pin = cli_pin_for(&o->co, tok, TFS_PIN_SO, &ro.so_pin_len);
	ro.new_user_pin = cli_new_pin_for(&o->co, tok, TFS_PIN_USER, &ro.new_user_pin_len);
	ro.new_so_pin = cli_new_pin_for(&o->co, tok, TFS_PIN_SO, &ro.new_so_pin_len);
	/* New PINs given for other tokens only (TOKEN=): this one is left as
	 * it is, not refused. */
	if (ro.new_user_pin == NULL && ro.new_so_pin == NULL && !ro.rotate_token_key &&
	    ro.new_label == NULL && ro.to == TFS_LAYOUT_NONE) {
		memset(r, 0, sizeof(*r));
		r->blob[TFS_PIN_SO] = r->blob[TFS_PIN_USER] = TFS_BLOB_KEPT;
		o->untouched = tok;
		return TFS_OK;
	}
	return tfs_rekey_token(r, tfs_token_path(tok), &ro, err);
}

/* What rekey_one and tfs_rekey_token need a current PIN for: a new PIN
 * for tok, a new token key or layout (a new label alone needs none). */
static bool rekey_pin_needed(cli_common *co, const tfs_token *tok)
{
	const rekey_opts *o = (const rekey_opts *)co; /* co is its first member */
	size_t n;
	return o->r.rotate_token_key || o->r.to != TFS_LAYOUT_NONE ||
	       cli_new_pin_for(co, tok, TFS_PIN_USER, &n) != NULL ||
	       cli_new_pin_for(co, tok, TFS_PIN_SO, &n) != NULL;
}

/* A new token key or layout re-wraps every blob (tfs_change_token's
 * decide_blob): each needs its PIN or a new one. */
static bool rekey_blob_pin_needed(cli_common *co, const tfs_token *tok, tfs_pin_role role)
{
	(void)tok;
	(void)role;
	const rekey_opts *o = (const rekey_opts *)co;
	return o->r.rotate_token_key || o->r.to != TFS_LAYOUT_NONE;
}

int cmd_rekey(int argc, char **argv)
{
	rekey_opts o = {.co = {.cmd = "rekey", .pin_needed = rekey_pin_needed,
	                       .blob_pin_needed = rekey_blob_pin_needed}};
	int status = TFS_EXIT_USAGE;
	int first = parse_args(&o, argc, argv);
	/* A running SoftHSM refuses before anyone is asked for a PIN. */
	if (first < 0 || writer_check_softhsm(&o.co) != TFS_EXIT_OK ||
	    cli_prepare_pins(&o.co, argv + first, argc - first, true) != TFS_EXIT_OK)
		goto out;
	writer_change_cmd w = {.co = &o.co, .json = o.co.json,
	                       .change = rekey_one, .render = render_text, .ctx = &o};
	o.r.lock_timeout_ms = o.co.lock_ms;
	o.r.dry_run = o.co.dry_run;
	o.r.progress = writer_on_progress;
	o.r.problem = writer_on_problem;
	o.r.ctx = &w;
	status = writer_run_change(&w, argv + first, argc - first, json_object_new_object());
out:
	cli_common_free(&o.co);
	return status;
}
