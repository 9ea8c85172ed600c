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
	{"pin-audit", cmd_pin_audit, "how long the PINs survive an offline attack; recover a PIN"},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs COMMAND [OPTIONS] PATH...\n"
	        "\n"
	        "Offline inspection, migration, re-keying and recovery of SoftHSMv2 token\n"
	        "stores. PATH is a tokendir (the directories.tokendir of softhsm2.conf), one\n"
	        "token directory, or one .object file. dump and verify-integrity never\n"
	        "create, modify or write-lock anything. migrate, rekey and recover write,\n"
	        "crash-safe (docs/writes.md), and refuse while SoftHSM runs.\n"
	        "\n"
	        "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
	        "\n"
	        "Exit codes:\n"
	        "  0  done, nothing wrong\n"
	        "  1  something could not be parsed or is anomalous (reported on stderr)\n"
	        "  2  usage or I/O error, a wrong PIN, a lock, a running SoftHSM\n"
	        "\n"
	        "Run 'tokenfs COMMAND --help' for a command's options.\n");
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
	if (strcmp(argv[1], "--version") == 0) {
		printf("tokenfs %s\n", TFS_VERSION_STRING);
		return TFS_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	cli_error("unknown command '%s'; see 'tokenfs --help'", argv[1]);
	return TFS_EXIT_USAGE;
}
