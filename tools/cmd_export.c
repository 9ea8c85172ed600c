/*
 * tokenfs export: keys and certificates of SoftHSM tokens as standard files.
 * The work is libtokenfs/export's (tokenfs/export.h); this file parses
 * options, reads the PINs and the passphrase, unlocks the tokens and
 * renders what was written. Key material never reaches stdout or stderr:
 * the report names files, objects and fingerprints only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "writer.h"

enum { OPT_NO_ENCRYPT = 300, OPT_SECRET_FORMAT, OPT_PKCS12, OPT_INCLUDE, OPT_PASSOUT, OPT_ID,
       OPT_LABEL };

typedef struct export_opts {
	cli_common co; /* --token, --lock-timeout, PINs, --force */
	int pin_status; /* 1 when a token's PIN was wrong (pin.wrong) */
	tfs_export_options x;
	const char *out;
	bool want_pass, no_encrypt;
	const char *pass_spec; /* NULL: prompt twice */
	uint8_t *pass;
	size_t pass_len;
	const char **uuids, **ids, **labels;
	size_t nuuids, nids, nlabels;
} export_opts;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs export --out DIR [OPTIONS] PATH...\n"
	        "\n"
	        "Write the keys and certificates of SoftHSMv2 tokens as the files other\n"
	        "tools read, offline: a way out of SoftHSM to OpenSSL, another HSM or a\n"
	        "cloud KMS (README, \"Leaving SoftHSM\"). Read-only on the store.\n"
	        "\n"
	        "What is written, into DIR (created 0700 when missing), every file 0600:\n"
	        "  private keys   LABEL_ID.key.pem, PKCS#8 PEM; encrypted with AES-256-CBC\n"
	        "                 (PBKDF2-HMAC-SHA-256, OpenSSL's PKCS#8 defaults) unless\n"
	        "                 --no-encrypt. RSA, EC on any named curve OpenSSL knows,\n"
	        "                 Ed25519/Ed448, DSA; an EC or DSA public half the token\n"
	        "                 does not store is computed. A private key that does not\n"
	        "                 match the token's public key object or certificate of\n"
	        "                 the same key (paired as dump pairs them) is refused\n"
	        "  public keys    LABEL_ID.pub.pem, SubjectPublicKeyInfo PEM\n"
	        "  certificates   LABEL_ID.crt.pem, PEM, in the order found\n"
	        "  secret keys    LABEL_ID.secret.bin|.hex|.jwk (see --secret-format)\n"
	        "  export.json    the manifest: every file with its object, key type and\n"
	        "                 fingerprints, and what was not written and why\n"
	        "File names come from CKA_LABEL and CKA_ID made safe (letters, digits,\n"
	        "-_.+@; anything else becomes _), else from the object's uuid.\n"
	        "\n"
	        "Options:\n"
	        "      --out DIR         where to write (required)\n"
	        "      --user-pin [[TOKEN=]SPEC]  unlock private objects with the user PIN\n"
	        "      --so-pin [[TOKEN=]SPEC]    ... or with the SO PIN. A wrong PIN is a\n"
	        "                        finding about its token ([pin.wrong]): its private\n"
	        "                        objects are not exported, the others' are\n"
	        "      --passout [SPEC]  the passphrase for private keys and the PKCS#12\n"
	        "                        bundle; without SPEC (or without --passout at all)\n"
	        "                        it is prompted twice without echo\n"
	        "      --no-encrypt      write private keys as plaintext PKCS#8 instead;\n"
	        "                        required for that, never the default\n"
	        "      --secret-format F raw (default: the key bytes), hex (lowercase and a\n"
	        "                        newline) or jwk (RFC 7517 {\"kty\":\"oct\",\"k\":...})\n"
	        "      --pkcs12 FILE     also one PKCS#12 file holding each exported private\n"
	        "                        key with its certificate (friendly name: the\n"
	        "                        label), protected with --passout; a FILE without\n"
	        "                        a '/' goes into DIR\n"
	        "      --include-unextractable  also export keys whose CKA_EXTRACTABLE is\n"
	        "                        false or CKA_SENSITIVE is true (see Policy)\n"
	        "  -t, --token SEL       only tokens whose label, serial or directory is SEL\n"
	        "      --object UUID     only this object (repeatable)\n"
	        "      --id HEX          only objects with this CKA_ID (repeatable)\n"
	        "      --label TEXT      only objects with this CKA_LABEL (repeatable)\n"
	        "                        Without --object/--id/--label: every key and\n"
	        "                        certificate; with them, what any of them selects\n"
	        "      --force           replace files that exist (else: refuse, write\n"
	        "                        nothing)\n"
	        "  -f, --format FMT      report as text (default) or json (the manifest)\n"
	        "      --lock-timeout MS how long to wait for a SoftHSM writer (default 5000)\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "Policy: a key with CKA_EXTRACTABLE false or CKA_SENSITIVE true is one its\n"
	        "owner told the token never to release. tokenfs can read it from the files\n"
	        "with the PIN, but exports it only with --include-unextractable; otherwise\n"
	        "it is skipped and counted. Decide with whoever owns the key.\n"
	        "\n"
	        "SPEC: pass:TEXT, env:VAR, file:PATH, fd:N or stdin (first line); pass: is\n"
	        "for tests only (ps shows it). Key material is never printed; decrypted\n"
	        "values are wiped after encoding.\n"
	        "\n"
	        "Exit codes: 0 every selected object written; 1 something selected was not\n"
	        "(skipped by policy, an unsupported key type named in the report, a\n"
	        "mismatch, a value that does not decrypt, a wrong PIN); 2 usage, I/O, a\n"
	        "selector that matched nothing, a file that exists: nothing written.\n");
}

static void progress(void *ctx, const tfs_token *tok, const char *phase, size_t done,
                     size_t total)
{
	(void)ctx;
	writer_progress("export", tfs_token_label(tok), phase, done, total);
}

static int push(const char ***list, size_t *n, const char *v)
{
	const char **p = realloc(*list, (*n + 1) * sizeof(*p));
	if (p == NULL) {
		cli_error("out of memory");
		return -1;
	}
	p[(*n)++] = v;
	*list = p;
	return 0;
}

static int export_option(void *ctx, int c, int argc, char **argv)
{
	export_opts *o = ctx;
	switch (c) {
	case 'o': o->out = optarg; return 0;
	case OPT_NO_ENCRYPT: o->no_encrypt = true; return 0;
	case OPT_INCLUDE: o->x.include_unextractable = true; return 0;
	case OPT_PKCS12: o->x.pkcs12_file = optarg; return 0;
	case OPT_PASSOUT:
		o->want_pass = true;
		o->pass_spec = cli_spec_arg(&o->co, argc, argv);
		return 0;
	case OPT_SECRET_FORMAT:
		if (strcmp(optarg, "raw") == 0)
			o->x.secret_format = TFS_SECRET_RAW;
		else if (strcmp(optarg, "hex") == 0)
			o->x.secret_format = TFS_SECRET_HEX;
		else if (strcmp(optarg, "jwk") == 0)
			o->x.secret_format = TFS_SECRET_JWK;
		else {
			cli_error("export: --secret-format takes raw, hex or jwk");
			return -1;
		}
		return 0;
	case 'O': return push(&o->uuids, &o->nuuids, optarg);
	case OPT_ID:
		if (optarg[0] == '\0' || strspn(optarg, "0123456789abcdefABCDEF") != strlen(optarg) ||
		    strlen(optarg) % 2 != 0) {
			cli_error("export: --id takes the CKA_ID in hex, two digits a byte");
			return -1;
		}
		return push(&o->ids, &o->nids, optarg);
	case OPT_LABEL: return push(&o->labels, &o->nlabels, optarg);
	default: return -1;
	}
}

static int parse_args(export_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"out", required_argument, NULL, 'o'},
		CLI_FORMAT_LONGOPT,
		CLI_COMMON_LONGOPTS,
		CLI_FORCE_LONGOPT,
		{"passout", optional_argument, NULL, OPT_PASSOUT},
		{"no-encrypt", no_argument, NULL, OPT_NO_ENCRYPT},
		{"secret-format", required_argument, NULL, OPT_SECRET_FORMAT},
		{"pkcs12", required_argument, NULL, OPT_PKCS12},
		{"include-unextractable", no_argument, NULL, OPT_INCLUDE},
		{"object", required_argument, NULL, 'O'},
		{"id", required_argument, NULL, OPT_ID},
		{"label", required_argument, NULL, OPT_LABEL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse(&o->co, argc, argv, "f:t:h", longopts, export_option, o, usage);
	if (first < 0)
		return -1;
	if (o->out == NULL) {
		cli_error("export: --out DIR is required");
		return -1;
	}
	if (o->no_encrypt && o->want_pass) {
		cli_error("export: --passout and --no-encrypt contradict each other");
		return -1;
	}
	if (o->no_encrypt && o->x.pkcs12_file != NULL) {
		cli_error("export: a PKCS#12 bundle is always protected: --pkcs12 needs --passout, "
		          "not --no-encrypt");
		return -1;
	}
	return first;
}

typedef struct opened {
	tfs_store **stores;
	size_t nstores;
} opened;

/* Opens every PATH and plans the export of each selected token; nothing
 * is written here. */
static int plan(export_opts *o, tfs_export *ex, opened *op, int first, int argc, char **argv)
{
	op->stores = calloc((size_t)(argc - first) + 1, sizeof(*op->stores));
	if (op->stores == NULL) {
		cli_error("out of memory");
		return TFS_EXIT_USAGE;
	}
	for (int i = first; i < argc; i++) {
		tfs_error err;
		/* A directory, or an archive of one read in memory (a backup). */
		if (cli_open_store(&o->co, argv[i], &op->stores[op->nstores]) != TFS_EXIT_OK)
			return TFS_EXIT_USAGE;
		tfs_store *store = op->stores[op->nstores++];
		for (size_t t = 0; t < tfs_store_token_count(store); t++) {
			const tfs_token *tok = tfs_store_token(store, t);
			if (!cli_token_selected(&o->co, tok))
				continue;
			/* A wrong PIN for one token is a finding about it: its
			 * private objects are not exported (each named as not
			 * done), the other tokens' are. */
			tfs_token_key *key;
			int us = cli_unlock_token(&o->co, tok, "its private objects are not exported",
			                          &key, NULL, NULL);
			if (us == TFS_EXIT_USAGE) {
				tfs_token_key_free(key);
				return TFS_EXIT_USAGE;
			}
			o->pin_status = us > o->pin_status ? us : o->pin_status;
			int rc = tfs_export_add_token(ex, tok, key, &err);
			tfs_token_key_free(key);
			if (rc != TFS_OK) {
				cli_report(&err);
				return TFS_EXIT_USAGE;
			}
		}
	}
	int status = cli_check_selection(&o->co);
	for (size_t i = 0; i < tfs_export_unmatched_count(ex); i++) {
		cli_error("export: no object matches the selector '%s'; nothing was written",
		          tfs_export_unmatched(ex, i));
		status = TFS_EXIT_USAGE;
	}
	return status;
}

static const char *what(const tfs_export_item *it)
{
	if (strcmp(it->kind, "private_key") == 0)
		return "private key";
	if (strcmp(it->kind, "public_key") == 0)
		return "public key";
	if (strcmp(it->kind, "secret_key") == 0)
		return "secret key";
	if (strcmp(it->kind, "pkcs12") == 0)
		return "PKCS#12 bundle";
	return it->kind;
}

/* "private key RSA 2048 'web' id 01": what an item is, for one line. */
static void describe(const tfs_export_item *it, char *buf, size_t size)
{
	char lab[400];
	cli_safe(it->label, lab, sizeof(lab));
	snprintf(buf, size, "%s%s%s%s%s%s%s%s", what(it), it->key_type[0] ? " " : "", it->key_type,
	         it->label[0] ? " '" : "", lab, it->label[0] ? "'" : "", it->id[0] ? " id " : "", it->id);
}

/* One line per item; labels are untrusted text (cli_safe). */
static void render_text(const tfs_export *ex, const char *dir)
{
	size_t n[4] = {0};
	for (size_t i = 0; i < tfs_export_count(ex); i++) {
		const tfs_export_item *it = tfs_export_item_at(ex, i);
		char desc[1000], file[1200];
		n[it->status]++;
		describe(it, desc, sizeof(desc));
		if (it->status == TFS_EXPORT_READY) {
			printf("wrote %s: %s\n", cli_safe(it->file, file, sizeof(file)), desc);
			continue;
		}
		static const char *const words[] = {"", "skipped", "unsupported", "not exported"};
		if (it->object_uuid != NULL)
			printf("%s: %s (%s.object): %s\n", words[it->status], desc, it->object_uuid, it->reason);
		else
			printf("%s: %s: %s\n", words[it->status], desc, it->reason);
	}
	char d[1200];
	printf("%zu file%s written to %s (and export.json); %zu skipped as unextractable or "
	       "sensitive%s; %zu unsupported; %zu failed\n",
	       n[0], n[0] == 1 ? "" : "s", cli_safe(dir, d, sizeof(d)), n[1],
	       n[1] > 0 ? " (--include-unextractable exports them)" : "", n[2], n[3]);
}

/* What could not be exported, on stderr whatever the format, as every
 * command reports its problems. */
static void report_problems(const tfs_export *ex)
{
	for (size_t i = 0; i < tfs_export_count(ex); i++) {
		const tfs_export_item *it = tfs_export_item_at(ex, i);
		if (it->status != TFS_EXPORT_UNSUPPORTED && it->status != TFS_EXPORT_FAILED)
			continue;
		char desc[1000];
		describe(it, desc, sizeof(desc));
		if (it->object_uuid != NULL)
			cli_error("export: %s (%s.object) in token '%s': %s", desc, it->object_uuid,
			          it->token_label, it->reason);
		else
			cli_error("export: %s: %s", desc, it->reason);
	}
}

static int exit_status(const tfs_export *ex)
{
	for (size_t i = 0; i < tfs_export_count(ex); i++)
		if (tfs_export_item_at(ex, i)->status != TFS_EXPORT_READY)
			return TFS_EXIT_PROBLEM;
	return TFS_EXIT_OK;
}

static int read_passphrase(export_opts *o)
{
	if (o->no_encrypt)
		return 0;
	if (cli_read_new_pin(&o->co, "--passout", o->pass_spec, "Export passphrase: ", &o->pass,
	                     &o->pass_len) != 0) {
		if (!o->want_pass)
			cli_error("export: private keys are written encrypted: give --passout SPEC, or "
			          "--no-encrypt to write them in the clear");
		return -1;
	}
	if (o->pass_len == 0) {
		cli_error("export: the passphrase is empty; use --no-encrypt for plaintext keys");
		return -1;
	}
	o->x.passphrase = o->pass;
	o->x.passphrase_len = o->pass_len;
	return 0;
}

int cmd_export(int argc, char **argv)
{
	export_opts o = {.co = {.cmd = "export"}};
	opened op = {0};
	tfs_export *ex = NULL;
	int status = TFS_EXIT_USAGE;
	int first = parse_args(&o, argc, argv);
	if (first < 0 ||
	    cli_prepare_pins(&o.co, argv + first, argc - first, false) != TFS_EXIT_OK ||
	    read_passphrase(&o) != 0)
		goto out;
	o.x.uuids = o.uuids;
	o.x.nuuids = o.nuuids;
	o.x.ids = o.ids;
	o.x.nids = o.nids;
	o.x.labels = o.labels;
	o.x.nlabels = o.nlabels;
	o.x.progress = progress;
	tfs_error err;
	tfs_error_clear(&err);
	if (tfs_export_new(&ex, &o.x, &err) != TFS_OK) {
		cli_error("export: %s", err.what);
		goto out;
	}
	status = plan(&o, ex, &op, first, argc, argv);
	if (status != TFS_EXIT_OK)
		goto out;
	if (tfs_export_write(ex, o.out, o.co.force, &err) != TFS_OK) {
		cli_report(&err);
		status = TFS_EXIT_USAGE;
		goto out;
	}
	if (o.co.json) {
		char *doc = NULL;
		if (tfs_export_manifest(ex, o.out, &doc, &err) != TFS_OK) {
			cli_report(&err);
			status = TFS_EXIT_USAGE;
			goto out;
		}
		fputs(doc, stdout);
		free(doc);
	} else {
		render_text(ex, o.out);
	}
	report_problems(ex);
	status = exit_status(ex);
	status = o.pin_status > status ? o.pin_status : status;
	if (fflush(stdout) != 0) {
		cli_error("export: writing the report failed");
		status = TFS_EXIT_USAGE;
	}
out:
	tfs_export_free(ex);
	for (size_t i = 0; i < op.nstores; i++)
		tfs_store_free(op.stores[i]);
	free(op.stores);
	tfs_secure_free(o.pass, o.pass_len);
	free(o.uuids);
	free(o.ids);
	free(o.labels);
	cli_common_free(&o.co);
	return status;
}
