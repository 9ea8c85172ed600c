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
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tokenfs COMMAND [OPTIONS] PATH...\n"
	        "\n"
	        "Offline inspection of SoftHSMv2 token stores. PATH is a tokendir (the\n"
	        "directories.tokendir of softhsm2.conf), one token directory, or one\n"
	        ".object file. Read-only commands never create, modify or write-lock\n"
	        "anything.\n"
	        "\n"
	        "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
	        "\n"
	        "Exit codes:\n"
	        "  0  done, nothing wrong\n"
	        "  1  something could not be parsed or is anomalous (reported on stderr)\n"
	        "  2  usage or I/O error\n"
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
