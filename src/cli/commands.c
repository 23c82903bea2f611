/* commands.c - the subcommand table and the helpers every command uses. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/core.h"

const struct sam_cmd sam_commands[] = {
	{ "run", cmd_run, "generate text from a GGUF model",
	  "usage: sam run -m MODEL.gguf -p PROMPT [options]\n"
	  "\n"
	  "Generate a continuation of PROMPT. The continuation goes to stdout,\n"
	  "timings to stderr.\n"
	  "\n"
	  "  -m, --model FILE        GGUF model (required)\n"
	  "  -p, --prompt TEXT       prompt text (or -f FILE)\n"
	  "  -f, --file FILE         read the prompt from FILE\n"
	  "      --chat              make the prompt a user message in the model's chat template\n"
	  "                          (ChatML when the model has none) and answer it\n"
	  "      --system TEXT       with --chat: a system message before the prompt\n"
	  "  -n, --n-predict N       tokens to generate (default 128; -1 = until EOS or context end)\n"
	  "  -c, --ctx-size N        context length (default: max(model context, prompt + N))\n"
	  "      --temp T            temperature (default 0.8; 0 = greedy)\n"
	  "      --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"
	  "      --top-p P           nucleus sampling (default 0.95; 1 = off)\n"
	  "      --min-p P           drop tokens below P x the top probability (default 0.05; 0 = off)\n"
	  "      --repeat-penalty R  penalise recent tokens (default 1.0 = off)\n"
	  "      --repeat-last-n N   window of the penalty (default 64)\n"
	  "      --seed S            random seed (default: from the clock)\n"
	  "  -t, --threads N         threads (default: number of cores)\n"
	  "      --no-bos            do not add BOS even if the model asks for it\n"
	  "      --ignore-eos        keep generating after end-of-sequence\n"
	  "  -v, --verbose           print the prompt tokens and model details to stderr\n" },
	{ "api", cmd_api, "serve chat, streaming and OpenAI-compatible endpoints (the hub)",
	  "usage: sam api [--host ADDR] [--port N] [-m MODEL.gguf] [--small-model MODEL.gguf] [--api-key KEY]\n"
	  "               [--slots N] [-c CTX] [-t THREADS] [--queue N]\n"
	  "\n"
	  "Serve the api hub on http://127.0.0.1:8765 (see docs/api.md).\n"
	  "\n"
	  "  --host ADDR          listen address (default 127.0.0.1; config [api] host)\n"
	  "  --port N             port (default 8765; 0 = any free port)\n"
	  "  -m, --model FILE     model (else $SAM_MODEL, [api] model, the first *.gguf in $SAM_HOME/models)\n"
	  "  --small-model FILE   model used when memory is LOW ([api] small_model)\n"
	  "  --api-key KEY        require 'Authorization: Bearer KEY' (or $SAM_API_KEY, [api] api_key)\n"
	  "  --slots N            requests decoded together (default 4)\n"
	  "  -c, --ctx-size N     context per request (default: the model's, at most 4096)\n"
	  "  -t, --threads N      engine threads (default: all cores)\n"
	  "  --queue N            waiting requests before 503 (default 16)\n"
	  "  --port-file FILE     write the port here once listening\n" },
	{ "chat", cmd_chat, "chat with SAM in the terminal (through the api)",
	  "usage: sam chat [--session ID] [--max-tokens N] [--temperature T]\n"
	  "\n"
	  "Talk with SAM: each line you type is a message, and the answer streams\n"
	  "back as it is generated. The conversation is one session of the api, so\n"
	  "SAM remembers it; the session id is printed to stderr when it starts.\n"
	  "With stdin not a terminal, each input line is a message, no prompt is\n"
	  "shown and stdout holds only the answers.\n"
	  "\n"
	  "  --session ID        continue the session ID (default: a new one)\n"
	  "  --max-tokens N      longest answer in tokens (default: the api's)\n"
	  "  --temperature T     0 = greedy .. 2 (default: the api's, 0.7)\n"
	  "\n"
	  "Commands: /reset starts a new session, /help, /quit (or Ctrl-D).\n"
	  "Ctrl-C stops an answer; at the prompt it leaves.\n"
	  "The api is found at $SAM_API_URL, else $SAM_HOME/run/services.json,\n"
	  "else http://127.0.0.1:8765; $SAM_API_KEY is sent as a Bearer token.\n" },
	{ "ask", cmd_ask, "ask SAM one question and print the answer",
	  "usage: sam ask [--session ID] [--max-tokens N] [--temperature T] [--no-stream] [--] QUESTION...\n"
	  "       sam ask [options] [-] < FILE\n"
	  "\n"
	  "Print SAM's answer to QUESTION (the words joined by spaces; read from\n"
	  "stdin when QUESTION is - or absent and stdin is not a terminal). The\n"
	  "answer streams to stdout as it is generated and ends with a newline;\n"
	  "errors go to stderr with status 1.\n"
	  "\n"
	  "  --session ID        ask within the session ID (default: a new one)\n"
	  "  --max-tokens N      longest answer in tokens (default: the api's)\n"
	  "  --temperature T     0 = greedy .. 2 (default: the api's, 0.7)\n"
	  "  --no-stream         wait for the whole answer (POST /api/chat)\n"
	  "\n"
	  "The api is found at $SAM_API_URL, else $SAM_HOME/run/services.json,\n"
	  "else http://127.0.0.1:8765; $SAM_API_KEY is sent as a Bearer token.\n" },
	{ "tokenize", cmd_tokenize, "print the token ids of a text",
	  "usage: sam tokenize -m MODEL.gguf [--no-bos] [--parse-special] [-f FILE | TEXT]\n"
	  "\n"
	  "Print the token ids of TEXT (or of FILE's contents), space-separated on\n"
	  "one line. BOS is added when the model's metadata asks for it, unless\n"
	  "--no-bos. Special-token text such as <s> is only recognised with\n"
	  "--parse-special.\n" },
	{ "gguf", cmd_gguf, "print a GGUF file's metadata and tensor table",
	  "usage: sam gguf [--all] FILE.gguf\n"
	  "\n"
	  "Print the header, every metadata key with its type and value, and the\n"
	  "tensor table. Long arrays and strings are abbreviated unless --all.\n" },
	{ "pull", cmd_pull, "download a GGUF model into $SAM_HOME/models",
	  "usage: sam pull [NAME | URL] [--sha256 HEX] [-o FILE] [--force]\n"
	  "       sam pull --list\n"
	  "\n"
	  "Download a GGUF model into $SAM_HOME/models (default ~/.local/share/sam/models).\n"
	  "NAME is a model of the built-in catalogue (see --list; default: tinyllama);\n"
	  "URL is the http(s) URL of any GGUF file. The download goes to FILE.part and\n"
	  "is resumed by running the same command again; size and sha256 are checked\n"
	  "when known, and a file that fails the check is deleted.\n"
	  "\n"
	  "  -o, --output FILE   save as FILE (a name without '/' goes into $SAM_HOME/models)\n"
	  "      --sha256 HEX    check the file's SHA-256 (instead of the catalogue's)\n"
	  "      --force         download again even if the file is already there\n"
	  "      --list          list the catalogue and which models are present\n"
	  "\n"
	  "Offline? Use a GGUF file you have directly: sam run -m FILE, SAM_MODEL=FILE,\n"
	  "or copy it into $SAM_HOME/models/. See docs/models.md.\n" },
	{ "help", cmd_help, "show the commands, or one command's help",
	  "usage: sam help [COMMAND]\n" },
	{ "version", cmd_version, "print the version", "usage: sam version\n" },
	{ 0 },
};

const struct sam_cmd *cli_find(const char *name)
{
	for (const struct sam_cmd *c = sam_commands; c->name; c++)
		if (!strcmp(c->name, name)) return c;
	return NULL;
}

int cli_usage_error(const struct sam_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sam %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fputs(cmd->usage, stderr);
	return EXIT_USAGE;
}

bool cli_wants_help(const struct sam_cmd *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(cmd->usage, stdout);
			return true;
		}
	}
	return false;
}

bool cli_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) return false;
	*out = v;
	return true;
}

bool cli_parse_float(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max) return false;
	*out = v;
	return true;
}

int cmd_help(int argc, char **argv)
{
	if (argc > 1) {
		const struct sam_cmd *c = cli_find(argv[1]);
		if (!c) {
			fprintf(stderr, "sam help: unknown command '%s'\n", argv[1]);
			return EXIT_USAGE;
		}
		fputs(c->usage, stdout);
		return 0;
	}
	printf("usage: sam [--version] [--help] COMMAND [ARGS]\n\nCommands:\n");
	for (const struct sam_cmd *c = sam_commands; c->name; c++) printf("  %-10s %s\n", c->name, c->summary);
	printf("\nRun 'sam COMMAND --help' for a command's options.\n");
	return 0;
}

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("sam %s\n", SAM_VERSION);
	return 0;
}
