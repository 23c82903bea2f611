/*
 * chat_client.c - what `sam ask` and `sam chat` share: their options
 * --session, --max-tokens and --temperature, and stdout as an answer
 * streams into it.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "sam/client.h"
#include "sam/sessions.h"

int cli_chat_opt(const struct sam_cmd *cmd, int c, struct sam_chat_request *q)
{
	long long v;
	double d;
	switch (c) {
	case CLI_OPT_SESSION:
		if (!sam_session_id_valid(optarg))
			return cli_usage_error(cmd, "--session: expected 1-64 characters of A-Z a-z 0-9 _ . -");
		q->session_id = optarg;
		return 0;
	case CLI_OPT_MAX_TOKENS:
		if (!cli_parse_int(optarg, 1, 1 << 24, &v)) return cli_usage_error(cmd, "--max-tokens: expected a number >= 1");
		q->max_tokens = (int)v;
		return 0;
	case CLI_OPT_TEMPERATURE:
		if (!cli_parse_float(optarg, 0, 2, &d)) return cli_usage_error(cmd, "--temperature: expected 0..2");
		q->temperature = d;
		return 0;
	default: return 1;
	}
}

int cli_print_piece(void *arg, const char *text, size_t len)
{
	struct cli_out *o = arg;
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	if (len) {
		o->last = text[len - 1];
		o->any = true;
	}
	return 0;
}

void cli_end_line(struct cli_out *o)
{
	if (!o->any || o->last != '\n') putchar('\n');
	fflush(stdout);
	o->any = false;
}
