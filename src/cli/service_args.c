/*
 * service_args.c - the command line of a service that takes only --port
 * and --port-file (see cli.h).
 */
#include <getopt.h>

#include "cli/cli.h"

int cli_service_args(const struct sam_cmd *cmd, int argc, char **argv, long long *port, const char **port_file)
{
	static const struct option lo[] = { { "port", required_argument, NULL, 'p' },
					    { "port-file", required_argument, NULL, 'F' },
					    { 0 } };
	*port = -1;
	*port_file = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_int(optarg, 0, 65535, port)) return cli_usage_error(cmd, "--port: expected 0..65535");
			break;
		case 'F': *port_file = optarg; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}
