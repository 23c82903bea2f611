/*
 * cli.h - the subcommand table of the multi-call binary and the helpers
 * the commands share. Exit codes: 0 ok, 1 error, 2 usage error.
 */
#ifndef SAM_CLI_H
#define SAM_CLI_H

#include <stdbool.h>
#include <stddef.h>

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
/*
 * The options of a service that takes only --port N (0..65535; *port -1
 * when absent) and --port-file F (*port_file NULL when absent): 0, or the
 * exit status of a usage error, already reported.
 */
int cli_service_args(const struct sam_cmd *cmd, int argc, char **argv, long long *port, const char **port_file);

int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_gguf(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_api(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_ask(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_up(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_install_service(int argc, char **argv);
int cmd_supervise(int argc, char **argv);
int cmd_learn(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_adapters(int argc, char **argv);
int cmd_voice(int argc, char **argv);
int cmd_speak(int argc, char **argv);
int cmd_vision(int argc, char **argv);
int cmd_see(int argc, char **argv);
int cmd_approvals(int argc, char **argv);
int cmd_approve(int argc, char **argv);
int cmd_reject(int argc, char **argv);
int cmd_notify(int argc, char **argv);
/* `sam learn watch` / `sam learn curriculum`: argv[0] is "watch" / "curriculum". */
int learn_watch(const struct sam_cmd *cmd, int argc, char **argv);
int learn_curriculum(const struct sam_cmd *cmd, int argc, char **argv);

/*
 * What `sam ask` and `sam chat` share (chat_client.c). Their long options
 * start with CLI_CHAT_OPTS (codes CLI_OPT_*; a command's own start at
 * CLI_OPT_NEXT); cli_chat_opt handles those codes into q: 0 handled, 1 not
 * one of them, EXIT_USAGE after printing a usage error. q->session_id
 * points into argv.
 */
enum { CLI_OPT_SESSION = 256, CLI_OPT_MAX_TOKENS, CLI_OPT_TEMPERATURE, CLI_OPT_NEXT };
#define CLI_CHAT_OPTS                                                                \
	{ "session", required_argument, NULL, CLI_OPT_SESSION },                     \
	{ "max-tokens", required_argument, NULL, CLI_OPT_MAX_TOKENS },               \
	{ "temperature", required_argument, NULL, CLI_OPT_TEMPERATURE }
struct sam_chat_request;
int cli_chat_opt(const struct sam_cmd *cmd, int c, struct sam_chat_request *q);
/* stdout as an answer streams into it: remembers the last byte written. */
struct cli_out {
	char last;
	bool any;
};
/* A sam_client_chat piece callback (arg: a struct cli_out): writes and flushes it. */
int cli_print_piece(void *arg, const char *text, size_t len);
/* End the answer's line unless it already ends one. */
void cli_end_line(struct cli_out *o);

/*
 * Talking to the supervisor (cmd_status.c), shared by up, down, status,
 * start, stop and restart. `sam status` exits EXIT_NOT_RUNNING when no
 * supervisor runs (like systemctl's "inactive").
 */
#define EXIT_NOT_RUNNING 3
struct json_t;
struct sam_error;
/*
 * Send cmd over the control socket and parse the JSON reply into *reply
 * (caller decrefs; NULL on failure). SAM_ENOTFOUND when no supervisor
 * listens; SAM_EINVAL with the supervisor's "error" when it answered
 * {"ok":false}; SAM_EIO / SAM_EFORMAT otherwise.
 */
int cli_sup_call(const char *cmd, struct json_t **reply, double timeout_s, struct sam_error *err);
/*
 * The options of `sam up` and `sam down` (command name): [--timeout S],
 * no arguments; S into *timeout_s (left alone when not given). 0, or
 * EXIT_USAGE after printing the usage error.
 */
int cli_sup_timeout_opts(const char *name, int argc, char **argv, double *timeout_s);
/* The entry of service name in a status reply (borrowed), or NULL. */
struct json_t *cli_sup_service(struct json_t *status, const char *name);
/* Print the status reply as a table (header line, then one row per service). */
void cli_sup_print_table(struct json_t *status, bool color);
/* How service svc last ended ("exit 1", "signal 9 (Killed)", or "-") into buf. */
const char *cli_sup_last_exit(struct json_t *svc, char *buf, unsigned cap);
/* "  NAME: STATE (last exit: ...): the supervisor's error" on stderr. */
void cli_sup_print_problem(struct json_t *svc);
/* True when stdout should get colours (a terminal, no NO_COLOR). */
bool cli_color(void);
/* Absolute path of the running sam binary into buf (cmd_up.c); false if unknown. */
bool cli_self_exe(char *buf, unsigned cap);

#endif
