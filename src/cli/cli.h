/*
 * cli.h - the subcommand table of the multi-call binary and the helpers
 * the commands share. Exit codes: 0 ok, 1 error, 2 usage error.
 */
#ifndef SAM_CLI_H
#define SAM_CLI_H

#include <stdbool.h>

#define EXIT_USAGE 2

struct sam_cmd {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;              /* one line for `sam help` */
	const char *usage;                /* full text for `sam CMD --help` */
};

/* The table, terminated by a zeroed entry. */
extern const struct sam_cmd sam_commands[];

const struct sam_cmd *cli_find(const char *name);

/* Print "usage: ..." of cmd to stderr and return EXIT_USAGE. */
int cli_usage_error(const struct sam_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help; prints cmd's usage to stdout. */
bool cli_wants_help(const struct sam_cmd *cmd, int argc, char **argv);

/* Strict number parsing for option values: false on garbage or overflow. */
bool cli_parse_int(const char *s, long long min, long long max, long long *out);
bool cli_parse_float(const char *s, double min, double max, double *out);

int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_gguf(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_api(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_ask(int argc, char **argv);
int cmd_pull(int argc, char **argv);

#endif
