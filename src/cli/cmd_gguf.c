/* cmd_gguf.c - placeholder until implemented. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_gguf(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sam gguf: not implemented yet\n");
	return 1;
}
