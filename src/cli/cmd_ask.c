/*
 * cmd_ask.c - `sam ask`: one question to the api hub, one answer on
 * stdout, streamed as it is generated (/api/cognitive/stream) or whole
 * with --no-stream (/api/chat). Errors go to stderr with exit status 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/client.h"
#include "sam/sessions.h"

#define QUESTION_MAX (1u << 20) /* the api's default body cap */

enum { OPT_NO_STREAM = CLI_OPT_NEXT };

static const struct option ask_opts[] = {
	CLI_CHAT_OPTS,
	{ "no-stream", no_argument, NULL, OPT_NO_STREAM },
	{ 0 },
};

/* The whole of stdin (at most QUESTION_MAX bytes) without trailing white space; NULL on error. */
static char *read_stdin(void)
{
	size_t cap = 4096, n = 0;
	char *s = xmalloc(cap);
	size_t r;
	while ((r = fread(s + n, 1, cap - n - 1, stdin)) > 0) {
		n += r;
		if (n > QUESTION_MAX) {
			fprintf(stderr, "sam ask: the question is longer than %u bytes\n", QUESTION_MAX);
			free(s);
			return NULL;
		}
		if (cap - n - 1 == 0) s = xrealloc(s, cap *= 2);
	}
	if (ferror(stdin)) {
		perror("sam ask: reading stdin");
		free(s);
		return NULL;
	}
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
	s[n] = 0;
	return s;
}

int cmd_ask(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("ask");
	struct sam_chat_request q = { .temperature = -1 };
	bool stream = true;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", ask_opts, NULL)) != -1) {
		int rc = cli_chat_opt(cmd, c, &q);
		if (rc == 0) continue;
		if (rc == EXIT_USAGE) return rc;
		switch (c) {
		case OPT_NO_STREAM: stream = false; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s' (put the question after --)", argv[optind - 1]);
		}
	}

	char *question = NULL;
	bool from_stdin = optind == argc || (optind == argc - 1 && !strcmp(argv[optind], "-"));
	if (from_stdin) {
		if (optind == argc && isatty(STDIN_FILENO)) return cli_usage_error(cmd, "what is the question?");
		if (!(question = read_stdin())) return 1;
	} else {
		size_t len = 0;
		for (int i = optind; i < argc; i++) len += strlen(argv[i]) + 1;
		question = xmalloc(len + 1);
		question[0] = 0;
		for (int i = optind; i < argc; i++) {
			if (i > optind) strcat(question, " ");
			strcat(question, argv[i]);
		}
	}
	if (!question[strspn(question, " \t\r\n")]) {
		free(question);
		return cli_usage_error(cmd, "the question is empty");
	}
	q.message = question;

	struct sam_client cl;
	struct sam_error err;
	struct sam_chat_result res;
	struct cli_out o = { 0 };
	int status = 1;
	if (sam_client_init(&cl, NULL, &err)) {
		fprintf(stderr, "sam ask: %s\n", err.msg);
		free(question);
		return 1;
	}
	if (sam_client_chat(&cl, &q, stream ? cli_print_piece : NULL, &o, &res, &err)) {
		if (o.any) cli_end_line(&o);
		fprintf(stderr, "sam ask: %s\n", err.msg);
		goto out;
	}
	if (!stream) cli_print_piece(&o, res.response, strlen(res.response));
	cli_end_line(&o);
	sam_chat_result_free(&res);
	status = ferror(stdout) ? 1 : 0;
	if (status) fprintf(stderr, "sam ask: writing the answer failed\n");
out:
	sam_client_free(&cl);
	free(question);
	return status;
}
