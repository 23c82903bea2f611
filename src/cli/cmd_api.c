/* cmd_api.c - `sam api`: option parsing for the api hub (src/api/server.c). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "api/server.h"
#include "cli/cli.h"

int cmd_api(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("api");
	struct api_options o = { .port = -1 };
	static const struct option lo[] = {
		{ "host", required_argument, NULL, 'H' },    { "port", required_argument, NULL, 'P' },
		{ "model", required_argument, NULL, 'm' },   { "small-model", required_argument, NULL, 'S' },
		{ "api-key", required_argument, NULL, 'K' }, { "slots", required_argument, NULL, 's' },
		{ "ctx-size", required_argument, NULL, 'c' }, { "threads", required_argument, NULL, 't' },
		{ "queue", required_argument, NULL, 'q' },   { "port-file", required_argument, NULL, 'F' },
		{ 0 },
	};
	long long v;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:c:t:", lo, NULL)) != -1) {
		switch (c) {
		case 'H': o.host = optarg; break;
		case 'm': o.model = optarg; break;
		case 'S': o.small_model = optarg; break;
		case 'K': o.api_key = optarg; break;
		case 'F': o.port_file = optarg; break;
		case 'P':
			if (!cli_parse_int(optarg, 0, 65535, &v)) return cli_usage_error(cmd, "--port: expected 0..65535");
			o.port = (int)v;
			break;
		case 's':
			if (!cli_parse_int(optarg, 1, 64, &v)) return cli_usage_error(cmd, "--slots: expected 1..64");
			o.slots = (int)v;
			break;
		case 'c':
			if (!cli_parse_int(optarg, 16, 1 << 20, &v)) return cli_usage_error(cmd, "-c: expected a context size");
			o.ctx = (int)v;
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 1024, &v)) return cli_usage_error(cmd, "-t: expected 1..1024");
			o.threads = (int)v;
			break;
		case 'q':
			if (!cli_parse_int(optarg, 1, 100000, &v)) return cli_usage_error(cmd, "--queue: expected >= 1");
			o.queue = (int)v;
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return api_main(&o);
}
