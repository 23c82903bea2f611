/*
 * cmd_service.c - `sam start|stop|restart NAME`: send the command to the
 * supervisor, then wait until the service got there - ready (a one-shot
 * job: running or done) after start and restart (a restart: a new process),
 * stopped after stop - and print its new state.
 *
 * Exit status: 0 done; 1 the supervisor refused (unknown service, ...), is
 * not running, the service failed, or the timeout passed; 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "sam/core.h"
#include "sam/supervise.h"

#define DEFAULT_TIMEOUT_S 120.0
#define POLL_US (100 * 1000)
/* A "failed" seen this soon after the command may be the state before it. */
#define FAILED_GRACE_S 3.0

enum verb { V_START, V_STOP, V_RESTART };

static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64 || s[0] == '-' || s[0] == '.') return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static long long svc_pid(json_t *s)
{
	json_t *p = json_object_get(s, "pid");
	return json_is_integer(p) ? (long long)json_integer_value(p) : 0;
}

static const char *svc_state(json_t *s)
{
	const char *st = json_string_value(json_object_get(s, "state"));
	return st ? st : "?";
}

static void print_state(const char *name, json_t *s)
{
	long long pid = svc_pid(s);
	json_t *port = json_object_get(s, "port");
	printf("%s: %s", name, svc_state(s));
	if (pid > 0) printf(" (pid %lld", pid);
	if (pid > 0 && json_is_integer(port) && json_integer_value(port) > 0)
		printf(", port %lld", (long long)json_integer_value(port));
	if (pid > 0) printf(")");
	printf("\n");
	fflush(stdout);
}

/*
 * Has service s reached what verb asks for? old_pid: its pid before the
 * command; moved: its state changed since the command.
 */
static bool arrived(enum verb v, json_t *s, long long old_pid, bool moved)
{
	const char *st = svc_state(s);
	long long pid = svc_pid(s);
	if (v == V_STOP) return !strcmp(st, "stopped") || !strcmp(st, "done") || !strcmp(st, "disabled");
	bool fresh = v == V_START || old_pid <= 0 || (pid > 0 && pid != old_pid);
	if (json_is_true(json_object_get(s, "one_shot"))) /* a job: running, or already finished */
		return (fresh && (!strcmp(st, "starting") || !strcmp(st, "ready"))) || (moved && !strcmp(st, "done"));
	return fresh && !strcmp(st, "ready");
}

static const struct option svc_opts[] = {
	{ "timeout", required_argument, NULL, 't' },
	{ "no-wait", no_argument, NULL, 'W' },
	{ 0 },
};

static int service_cmd(enum verb v, int argc, char **argv)
{
	static const char *verbs[] = { "start", "stop", "restart" };
	const char *verb = verbs[v];
	const struct sam_cmd *cmd = cli_find(verb);
	double timeout_s = DEFAULT_TIMEOUT_S;
	bool wait = true;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", svc_opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!cli_parse_float(optarg, 0, 1e7, &timeout_s))
				return cli_usage_error(cmd, "--timeout: expected seconds >= 0");
			break;
		case 'W': wait = false; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc) return cli_usage_error(cmd, "which service?");
	if (argc - optind > 1) return cli_usage_error(cmd, "one service at a time");
	const char *name = argv[optind];
	if (!name_valid(name)) return cli_usage_error(cmd, "'%s' is not a service name", name);

	/* where it stands before, to tell the new state from the old */
	struct sam_error err;
	json_t *st = NULL;
	int rc = cli_sup_call("status", &st, 10, &err);
	if (rc == SAM_ENOTFOUND) {
		fprintf(stderr, "sam %s: SAM is not running (start it with `sam up`)\n", verb);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "sam %s: %s\n", verb, err.msg);
		return 1;
	}
	json_t *s = cli_sup_service(st, name);
	long long old_pid = s ? svc_pid(s) : 0;
	json_t *old_since = s ? json_incref(json_object_get(s, "since")) : NULL;
	char old_state[32];
	snprintf(old_state, sizeof old_state, "%s", s ? svc_state(s) : "");
	json_decref(st);
	st = NULL;

	char line[128];
	snprintf(line, sizeof line, "%s %s", verb, name);
	json_t *r;
	rc = cli_sup_call(line, &r, 30, &err);
	if (rc) {
		fprintf(stderr, "sam %s: %s\n", verb, err.msg);
		json_decref(old_since);
		return 1;
	}
	json_decref(r);
	if (!wait) {
		json_decref(old_since);
		return 0;
	}

	double t0 = sam_now();
	bool moved = false; /* the state changed since the command */
	int status = 1;
	for (;;) {
		json_decref(st);
		rc = cli_sup_call("status", &st, 10, &err);
		if (rc == SAM_ENOTFOUND) {
			fprintf(stderr, "sam %s: the supervisor stopped\n", verb);
			st = NULL;
			break;
		}
		s = rc ? NULL : cli_sup_service(st, name);
		if (!rc && !s) {
			fprintf(stderr, "sam %s: the supervisor no longer lists '%s'\n", verb, name);
			break;
		}
		if (s) {
			const char *state = svc_state(s);
			json_t *since = json_object_get(s, "since");
			if (strcmp(state, old_state) || (old_since && since && !json_equal(since, old_since))) moved = true;
			if (arrived(v, s, old_pid, moved)) {
				print_state(name, s);
				status = 0;
				break;
			}
			if (v != V_STOP && !strcmp(state, "failed") && (moved || sam_now() - t0 > FAILED_GRACE_S)) {
				print_state(name, s);
				fprintf(stderr, "sam %s: %s failed; see `sam logs %s`\n", verb, name, name);
				cli_sup_print_problem(s);
				break;
			}
		}
		if (sam_now() - t0 > timeout_s) {
			if (s) print_state(name, s);
			if (rc) fprintf(stderr, "sam %s: %s\n", verb, err.msg);
			fprintf(stderr, "sam %s: %s is not %s after %.0f s\n", verb, name,
				v == V_STOP ? "stopped" : "ready", timeout_s);
			break;
		}
		usleep(POLL_US);
	}
	json_decref(st);
	json_decref(old_since);
	return status;
}

int cmd_start(int argc, char **argv)
{
	return service_cmd(V_START, argc, argv);
}

int cmd_stop(int argc, char **argv)
{
	return service_cmd(V_STOP, argc, argv);
}

int cmd_restart(int argc, char **argv)
{
	return service_cmd(V_RESTART, argc, argv);
}
