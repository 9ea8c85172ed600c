/* tokenfs: one command, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"dump", cmd_dump, "show every token and object of a store"},
	{"verify-integrity", cmd_verify, "prove a store or a backup intact; find what is wrong"},
	{"migrate", cmd_migrate, "re-encrypt tokens in AES-GCM (PR #627) or AES-CBC, crash-safe"},
	{"rekey", cmd_rekey, "change or reset PINs, recover an SO PIN, rotate the token key"},
	{"recover", cmd_recover, "finish or undo an interrupted write"},
	{"backup", cmd_backup, "archive a live store consistently, sealed with a PIN"},
	{"diff", cmd_diff, "what changed between two states of a store"},
	{"export", cmd_export, "write keys and certificates as PEM, PKCS#8, PKCS#12"},
	{"pin-audit", cmd_pin_audit, "how long the PINs survive an offline attack; recover a PIN"},
};

static size_t ncommands(void) { return sizeof(commands) / sizeof(commands[0]); }

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs COMMAND [OPTIONS] PATH...\n"
	        "\n"
	        "Offline inspection, migration, re-keying and recovery of SoftHSMv2 token\n"
	        "stores. PATH is a tokendir (the directories.tokendir of softhsm2.conf), one\n"
	        "token directory, or one .object file; to the read commands also a tar\n"
	        "(.gz, .xz, .zst) or zip archive of them, read in memory. dump,\n"
	        "verify-integrity and diff never create, modify or write-lock anything;\n"
	        "backup writes only its archive. migrate, rekey and recover write,\n"
	        "crash-safe (docs/writes.md), and refuse while SoftHSM runs.\n"
	        "\n"
	        "Commands:\n");
	for (size_t i = 0; i < ncommands(); i++)
		fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
	        "\n"
	        "Exit codes:\n"
	        "  0  done, nothing wrong\n"
	        "  1  something could not be parsed or is anomalous, or a reader's wrong PIN\n"
	        "     (pin.wrong: that token, the others still read; reported on stderr)\n"
	        "  2  usage or I/O error, a writer's wrong or missing PIN, a lock, a running\n"
	        "     SoftHSM\n"
	        "\n"
	        "Run 'tokenfs help COMMAND' (or 'tokenfs COMMAND --help') for a command's options.\n");
}

/* Levenshtein distance, for "did you mean"; names are short. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The command a mistyped name most likely meant: the only one it begins,
 * or the nearest within two edits; NULL when nothing is close. */
static const char *nearest_command(const char *name)
{
	const char *prefixed = NULL;
	size_t nprefixed = 0;
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < ncommands(); i++) {
		if (name[0] != '\0' && strncmp(commands[i].name, name, strlen(name)) == 0) {
			prefixed = commands[i].name;
			nprefixed++;
		}
		size_t d = distance(name, commands[i].name);
		if (d < best_d) {
			best_d = d;
			best = commands[i].name;
		}
	}
	return nprefixed == 1 ? prefixed : best;
}

static int run_command(const char *name, int argc, char **argv)
{
	for (size_t i = 0; i < ncommands(); i++)
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].run(argc, argv);
	const char *near = nearest_command(name);
	if (near != NULL)
		cli_error("unknown command '%s'; did you mean '%s'? See 'tokenfs --help'", name, near);
	else
		cli_error("unknown command '%s'; see 'tokenfs --help'", name);
	return TFS_EXIT_USAGE;
}

/* "tokenfs help" is --help; "tokenfs help COMMAND" is COMMAND --help. */
static int help(int argc, char **argv)
{
	if (argc < 3) {
		usage(stdout);
		return TFS_EXIT_OK;
	}
	char *args[] = {argv[2], "--help", NULL};
	return run_command(argv[2], 2, args);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return TFS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return TFS_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0)
		return help(argc, argv);
	if (strcmp(argv[1], "--version") == 0) {
		printf("tokenfs %s\n", TFS_VERSION_STRING);
		return TFS_EXIT_OK;
	}
	/* Before any command can read a PIN: no core dump will hold it. */
	tfs_error err;
	if (tfs_protect_process(&err) != TFS_OK) {
		cli_report(&err);
		return TFS_EXIT_USAGE;
	}
	return run_command(argv[1], argc - 1, argv + 1);
}
