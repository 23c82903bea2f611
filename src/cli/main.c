/* main.c - the multi-call binary: dispatch on the first argument. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		cmd_help(1, argv);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) name = "version";
	if (!strcmp(name, "--help") || !strcmp(name, "-h")) name = "help";
	const struct sam_cmd *cmd = cli_find(name);
	if (!cmd) {
		fprintf(stderr, "sam: unknown command '%s' (see 'sam help')\n", argv[1]);
		return EXIT_USAGE;
	}
	if (cmd->fn != cmd_help && cli_wants_help(cmd, argc - 1, argv + 1)) return 0;
	return cmd->fn(argc - 1, argv + 1);
}
