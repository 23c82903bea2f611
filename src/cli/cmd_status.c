/*
 * cmd_status.c - `sam status [--json]`: the supervisor's view of every
 * service, as a table or as its raw JSON. Also the helpers the other
 * supervisor clients share (cli.h): one request with a parsed reply, the
 * table, and how a service last exited.
 *
 * Exit status: 0 running, 1 error, EXIT_NOT_RUNNING (3) when no supervisor
 * answers (like `systemctl status` of an inactive unit).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "sam/core.h"
#include "sam/supervise.h"

#define MAX_ROWS 64

int cli_sup_call(const char *cmd, json_t **reply, double timeout_s, struct sam_error *err)
{
	char *text;
	*reply = NULL;
	int rc = sup_request(cmd, &text, timeout_s, err);
	if (rc) return rc;
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!json_is_object(j)) {
		rc = sam_errorf(err, SAM_EFORMAT, "the supervisor's answer to '%s' is not a JSON object: %.200s", cmd, text);
		json_decref(j);
		free(text);
		return rc;
	}
	free(text);
	if (!json_is_true(json_object_get(j, "ok"))) {
		const char *e = json_string_value(json_object_get(j, "error"));
		rc = sam_errorf(err, SAM_EINVAL, "%s", e && *e ? e : "the supervisor refused the command");
		json_decref(j);
		return rc;
	}
	*reply = j;
	return 0;
}

json_t *cli_sup_service(json_t *status, const char *name)
{
	json_t *svcs = json_object_get(status, "services"), *s;
	size_t i;
	json_array_foreach(svcs, i, s)
	{
		const char *n = json_string_value(json_object_get(s, "name"));
		if (n && !strcmp(n, name)) return s;
	}
	return NULL;
}

const char *cli_sup_last_exit(json_t *svc, char *buf, unsigned cap)
{
	json_t *v = json_object_get(svc, "last_exit");
	const char *text = json_string_value(json_object_get(svc, "last_exit_text")); /* "signal 9 (Killed)" */
	if (text && *text) snprintf(buf, cap, "%s", text);
	else if (json_is_string(v) && *json_string_value(v)) snprintf(buf, cap, "%s", json_string_value(v));
	else if (json_is_integer(v)) snprintf(buf, cap, "exit %lld", (long long)json_integer_value(v));
	else snprintf(buf, cap, "-");
	return buf;
}

void cli_sup_print_problem(json_t *svc)
{
	char how[160];
	const char *e = json_string_value(json_object_get(svc, "error"));
	const char *name = json_string_value(json_object_get(svc, "name"));
	const char *state = json_string_value(json_object_get(svc, "state"));
	cli_sup_last_exit(svc, how, sizeof how);
	fprintf(stderr, "  %s: %s", name ? name : "?", state ? state : "?");
	if (strcmp(how, "-")) fprintf(stderr, " (last exit: %s)", how);
	if (e && *e) fprintf(stderr, ": %s", e);
	fputc('\n', stderr);
}

bool cli_color(void)
{
	const char *t = getenv("TERM");
	return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && !(t && !strcmp(t, "dumb"));
}

/* 5s, 3m07s, 2h05m, 4d03h */
static void fmt_duration(double s, char *buf, size_t cap)
{
	long long t = (long long)s;
	if (t < 0) t = 0;
	if (t < 60) snprintf(buf, cap, "%llds", t);
	else if (t < 3600) snprintf(buf, cap, "%lldm%02llds", t / 60, t % 60);
	else if (t < 86400) snprintf(buf, cap, "%lldh%02lldm", t / 3600, t % 3600 / 60);
	else snprintf(buf, cap, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
}

/* Wall-clock seconds now. */
static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void num_or_dash(json_t *v, char *buf, size_t cap)
{
	if (json_is_integer(v) && json_integer_value(v) > 0) snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
	else snprintf(buf, cap, "-");
}

enum { C_NAME, C_STATE, C_PID, C_PORT, C_RESTARTS, C_UPTIME, C_LAST, N_COLS };

void cli_sup_print_table(json_t *status, bool color)
{
	static const char *head[N_COLS] = { "NAME", "STATE", "PID", "PORT", "RESTARTS", "UPTIME", "LAST-EXIT" };
	static char cell[MAX_ROWS][N_COLS][160];
	const char *hl[MAX_ROWS];
	size_t width[N_COLS];
	int rows = 0;

	/* the supervisor itself */
	char up[32] = "?", mem[96] = "";
	json_t *u = json_object_get(status, "uptime_s");
	if (json_is_number(u)) fmt_duration(json_number_value(u), up, sizeof up);
	json_t *m = json_object_get(status, "memory");
	json_t *avail = json_object_get(m, "available_mb");
	const char *level = json_string_value(json_object_get(m, "level"));
	if (json_is_number(avail))
		snprintf(mem, sizeof mem, ", memory %.0f MB available (%s)", json_number_value(avail), level ? level : "?");
	printf("SAM is running: supervisor pid %lld, up %s%s%s\n",
	       (long long)json_integer_value(json_object_get(status, "pid")), up, mem,
	       json_is_false(json_object_get(status, "ready")) ? ", still starting" : "");

	for (int c = 0; c < N_COLS; c++) width[c] = strlen(head[c]);
	json_t *svcs = json_object_get(status, "services"), *s;
	size_t i;
	double now = wall_now();
	json_array_foreach(svcs, i, s)
	{
		if (rows == MAX_ROWS) break;
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *state = json_string_value(json_object_get(s, "state"));
		json_t *pid = json_object_get(s, "pid");
		bool running = json_is_integer(pid) && json_integer_value(pid) > 0;
		snprintf(cell[rows][C_NAME], 160, "%s", name ? name : "?");
		snprintf(cell[rows][C_STATE], 160, "%s", state ? state : "?");
		num_or_dash(pid, cell[rows][C_PID], 160);
		num_or_dash(json_object_get(s, "port"), cell[rows][C_PORT], 160);
		json_t *r = json_object_get(s, "restarts");
		snprintf(cell[rows][C_RESTARTS], 160, "%lld", json_is_integer(r) ? (long long)json_integer_value(r) : 0LL);
		/* "since": when the service entered its state, in seconds since the epoch */
		json_t *since = json_object_get(s, "since");
		if (running && json_is_number(since) && json_number_value(since) > 1e9)
			fmt_duration(now - json_number_value(since), cell[rows][C_UPTIME], 160);
		else snprintf(cell[rows][C_UPTIME], 160, "-");
		cli_sup_last_exit(s, cell[rows][C_LAST], 160);
		hl[rows] = NULL;
		if (color && state) {
			if (!strcmp(state, "failed")) hl[rows] = "\033[1;31m";
			else if (!strcmp(state, "paused") || !strcmp(state, "backoff")) hl[rows] = "\033[1;33m";
		}
		for (int c = 0; c < N_COLS; c++)
			if (strlen(cell[rows][c]) > width[c]) width[c] = strlen(cell[rows][c]);
		rows++;
	}
	for (int c = 0; c < N_COLS - 1; c++) printf("%-*s  ", (int)width[c], head[c]);
	printf("%s\n", head[N_COLS - 1]);
	for (int rw = 0; rw < rows; rw++) {
		for (int c = 0; c < N_COLS; c++) {
			const char *t = cell[rw][c];
			if (c == N_COLS - 1) printf("%s\n", t);
			else if (c == C_STATE && hl[rw]) printf("%s%s\033[0m%*s  ", hl[rw], t, (int)(width[c] - strlen(t)), "");
			else printf("%-*s  ", (int)width[c], t);
		}
	}
	if (!rows) printf("(no services)\n");
	/* why a service failed, waits or backs off (the supervisor's "error") */
	json_array_foreach(svcs, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *e = json_string_value(json_object_get(s, "error"));
		const char *state = json_string_value(json_object_get(s, "state"));
		if (name && e && *e && !(state && !strcmp(state, "disabled"))) printf("  %s: %s\n", name, e);
	}
	fflush(stdout);
}

static const struct option timeout_opts[] = {
	{ "timeout", required_argument, NULL, 't' },
	{ 0 },
};

int cli_sup_timeout_opts(const char *name, int argc, char **argv, double *timeout_s)
{
	const struct sam_cmd *cmd = cli_find(name);
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", timeout_opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!cli_parse_float(optarg, 0, 1e7, timeout_s))
				return cli_usage_error(cmd, "--timeout: expected seconds >= 0");
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

static const struct option status_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ 0 },
};

int cmd_status(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("status");
	bool as_json = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", status_opts, NULL)) != -1) {
		switch (c) {
		case 'j': as_json = true; break;
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);

	struct sam_error err;
	char *text;
	int rc = sup_request("status", &text, 10, &err);
	if (rc == SAM_ENOTFOUND) {
		/* the status itself: stdout for a human, stderr with --json so stdout stays JSON or empty */
		fputs("SAM is not running (start it with `sam up`)\n", as_json ? stderr : stdout);
		return EXIT_NOT_RUNNING;
	}
	if (rc) {
		fprintf(stderr, "sam status: %s\n", err.msg);
		return 1;
	}
	json_t *j = json_loads(text, 0, NULL);
	if (!json_is_object(j) || !json_is_true(json_object_get(j, "ok"))) {
		const char *e = json_string_value(json_object_get(j, "error"));
		fprintf(stderr, "sam status: %s%.300s\n", e ? "" : "unexpected answer from the supervisor: ", e ? e : text);
		json_decref(j);
		free(text);
		return 1;
	}
	if (as_json) printf("%s\n", text);
	else cli_sup_print_table(j, cli_color());
	json_decref(j);
	free(text);
	if (fflush(stdout) || ferror(stdout)) return 1;
	return 0;
}
