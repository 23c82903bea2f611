/*
 * cmd_chat.c - `sam chat`: a conversation with the api hub. Each line of
 * input is a message; its answer streams to stdout as it is generated. The
 * conversation is one session of the api (its memory lives in sam.db), so
 * the model sees the history; /reset starts a new one.
 *
 * On a terminal the prompt "you> " and notices go to stderr; with stdin
 * piped there is no prompt and stdout holds only the answers, one per
 * message, each ending with a newline. Ctrl-C during an answer closes that
 * request (the api cancels the generation) and returns to the prompt;
 * Ctrl-C at the prompt leaves (status 130).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/select.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/client.h"
#include "sam/sessions.h"

#define LINE_MAX_BYTES (1u << 20)

static const struct option chat_opts[] = {
	CLI_CHAT_OPTS,
	{ 0 },
};

static const char chat_help[] = "  /reset   forget the conversation and start a new session\n"
				"  /help    this list\n"
				"  /quit    leave (also /exit, Ctrl-D; Ctrl-C at the prompt)\n"
				"  //text   send a message that starts with '/'\n"
				"  Ctrl-C while an answer streams stops that answer.\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/*
 * Input is read from fd 0 directly (not stdio) so that waiting for it and
 * Ctrl-C cannot race: SIGINT stays blocked except inside pselect(), so a
 * Ctrl-C that comes just before the wait still ends it.
 */
struct input {
	char buf[65536];
	size_t start, end;
	bool eof;
};

enum { LINE_OK = 0, LINE_EOF = -1, LINE_INTERRUPTED = -2, LINE_ERROR = -3 };

/* Refill in->buf once; waits with SIGINT deliverable. */
static int fill(struct input *in)
{
	if (in->start == in->end) in->start = in->end = 0;
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	int rc = LINE_OK;
	for (;;) {
		if (interrupted) {
			rc = LINE_INTERRUPTED;
			break;
		}
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(STDIN_FILENO, &rd);
		if (pselect(STDIN_FILENO + 1, &rd, NULL, NULL, NULL, &old) < 0) {
			if (errno == EINTR) continue;
			rc = LINE_ERROR;
			break;
		}
		ssize_t n = read(STDIN_FILENO, in->buf + in->end, sizeof in->buf - in->end);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
		if (n < 0) rc = LINE_ERROR;
		else if (n == 0) in->eof = true;
		else in->end += (size_t)n;
		break;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/*
 * The next line (without its '\n') into *line, grown as needed; at most max
 * bytes are kept and a longer line is read to its end with *too_long set.
 * Returns LINE_OK, or LINE_EOF / LINE_INTERRUPTED / LINE_ERROR (errno).
 */
static int read_line(struct input *in, char **line, size_t *cap, size_t max, bool *too_long)
{
	size_t n = 0;
	*too_long = false;
	for (;;) {
		char *nl = memchr(in->buf + in->start, '\n', in->end - in->start);
		size_t take = nl ? (size_t)(nl - (in->buf + in->start)) : in->end - in->start;
		size_t keep = n + take > max ? (n < max ? max - n : 0) : take;
		if (keep < take) *too_long = true;
		if (n + keep + 1 > *cap) {
			*cap = n + keep + 1 > 256 ? (n + keep + 1) * 2 : 256;
			*line = xrealloc(*line, *cap);
		}
		memcpy(*line + n, in->buf + in->start, keep);
		n += keep;
		in->start += take + (nl ? 1 : 0);
		if (nl) break;
		if (in->eof) {
			if (!n && !*too_long) return LINE_EOF;
			break; /* a last line without '\n' */
		}
		int rc = fill(in);
		if (rc) return rc;
	}
	(*line)[n] = 0;
	return LINE_OK;
}

/* Strip the line end and surrounding blanks in place; returns the start. */
static char *trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
	while (*s == ' ' || *s == '\t') s++;
	return s;
}

int cmd_chat(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("chat");
	struct sam_chat_request q = { .temperature = -1 };
	char sid[SAM_SESSION_ID_MAX + 1] = "";
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", chat_opts, NULL)) != -1) {
		int rc = cli_chat_opt(cmd, c, &q);
		if (rc == 0) continue;
		if (rc == EXIT_USAGE) return rc;
		switch (c) {
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s' (type messages after it starts)", argv[optind]);
	if (q.session_id) snprintf(sid, sizeof sid, "%s", q.session_id);

	struct sam_client cl;
	struct sam_error err;
	json_t *health = NULL;
	if (sam_client_init(&cl, NULL, &err) || sam_client_json(&cl, "/api/health", NULL, &health, &err)) {
		fprintf(stderr, "sam chat: %s\n", err.msg);
		sam_client_free(&cl);
		return 1;
	}
	json_decref(health);

	bool tty = isatty(STDIN_FILENO);
	/* SIGINT only sets the flag: it stops a streaming answer (cl.cancel) or, at the prompt, the wait in fill() */
	struct sigaction sa = { 0 };
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	cl.cancel = &interrupted;
	if (tty)
		fprintf(stderr, "Chatting with SAM at %s%s%s. /help lists the commands, /quit leaves.\n", cl.url,
			sid[0] ? ", session " : "", sid);

	int status = 0;
	char *line = NULL;
	size_t cap = 0;
	static struct input in; /* 64 KiB: not on the stack */
	for (;;) {
		if (tty) {
			fputs("you> ", stderr);
			fflush(stderr);
		}
		bool too_long = false;
		int rc = read_line(&in, &line, &cap, LINE_MAX_BYTES, &too_long);
		if (rc) {
			if (rc == LINE_INTERRUPTED) {
				if (tty) fputc('\n', stderr);
				status = 130;
			} else if (rc == LINE_ERROR) {
				fprintf(stderr, "sam chat: reading stdin: %s\n", strerror(errno));
				status = 1;
			} else if (tty) {
				fputc('\n', stderr);
			}
			break;
		}
		if (too_long) {
			fprintf(stderr, "sam chat: the message is longer than %u bytes; not sent\n", LINE_MAX_BYTES);
			if (!tty) {
				status = 1;
				break;
			}
			continue;
		}
		char *msg = trim(line);
		if (!*msg) continue;
		if (msg[0] == '/' && msg[1] != '/') {
			if (!strcmp(msg, "/quit") || !strcmp(msg, "/exit")) break;
			if (!strcmp(msg, "/reset")) {
				if (sid[0]) fprintf(stderr, "sam chat: session %s set aside; a new session starts\n", sid);
				else fprintf(stderr, "sam chat: a new session starts\n");
				sid[0] = 0;
			} else if (!strcmp(msg, "/help")) {
				fputs(chat_help, stderr);
			} else {
				fprintf(stderr, "sam chat: unknown command '%s' (/help lists them)\n", msg);
			}
			continue;
		}
		if (msg[0] == '/') msg++; /* "//text" sends "/text" */

		q.message = msg;
		q.session_id = sid[0] ? sid : NULL;
		struct sam_chat_result res;
		struct cli_out o = { 0 };
		interrupted = 0;
		rc = sam_client_chat(&cl, &q, cli_print_piece, &o, &res, &err);
		if (o.any || !rc) cli_end_line(&o);
		interrupted = 0; /* a Ctrl-C that came as the answer ended only meant the answer */
		if (rc && cl.cancelled) {
			fprintf(stderr, "sam chat: answer stopped\n");
			continue;
		}
		if (rc) {
			fprintf(stderr, "sam chat: %s\n", err.msg);
			if (!tty) {
				status = 1;
				break;
			}
			continue;
		}
		if (!sid[0] && res.session_id[0]) {
			snprintf(sid, sizeof sid, "%s", res.session_id);
			fprintf(stderr, "sam chat: session %s\n", sid);
		}
		sam_chat_result_free(&res);
		if (ferror(stdout)) {
			fprintf(stderr, "sam chat: writing the answer failed\n");
			status = 1;
			break;
		}
	}
	free(line);
	sam_client_free(&cl);
	return status;
}
