/*
 * cmd_up.c - `sam up [--timeout S]`: start the supervisor in the background
 * (or attach to the one running) and return once the system is ready.
 *
 * Starting: fork, setsid, stdin from /dev/null, stdout and stderr appended
 * to $SAM_HOME/logs/supervisor.log, exec `sam supervise` of this very
 * binary. Then wait (at most SOCKET_WAIT_S) until its control socket
 * answers `ping` - if it exits meanwhile, show the end of its log - and
 * until its status says "ready" (every enabled service ready or given up).
 *
 * Exit status: 0 every enabled service is ready; 1 otherwise (the failed
 * ones are listed), or on any error or timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include "cli/cli.h"
#include "sam/core.h"
#include "sam/fs.h"
#include "sam/supervise.h"

#define SOCKET_WAIT_S 10.0
#define DEFAULT_TIMEOUT_S 300.0
#define LOG_TAIL_LINES 20
#define POLL_US (200 * 1000)
#define MAX_SEEN 64

bool cli_self_exe(char *buf, unsigned cap)
{
	char raw[PATH_MAX];
#ifdef __APPLE__
	uint32_t n = sizeof raw;
	if (_NSGetExecutablePath(raw, &n) != 0) return false;
#else
	ssize_t n = readlink("/proc/self/exe", raw, sizeof raw - 1);
	if (n <= 0) return false;
	raw[n] = 0;
#endif
	char real[PATH_MAX];
	const char *p = realpath(raw, real) ? real : raw;
	if (strlen(p) >= cap || p[0] != '/') return false;
	memcpy(buf, p, strlen(p) + 1);
	return true;
}

/* Print the last lines the supervisor wrote to its log since offset `from`. */
static void show_log_tail(const char *path, off_t from)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return;
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size <= from) {
		close(fd);
		fprintf(stderr, "(%s has nothing new)\n", path);
		return;
	}
	off_t start = st.st_size - from > 65536 ? st.st_size - 65536 : from;
	size_t len = (size_t)(st.st_size - start);
	char *buf = xmalloc(len + 1);
	ssize_t r = pread(fd, buf, len, start);
	close(fd);
	if (r <= 0) {
		free(buf);
		return;
	}
	len = (size_t)r;
	buf[len] = 0;
	size_t end = len;
	while (end && buf[end - 1] == '\n') end--;
	size_t b = end;
	int lines = 0;
	while (b > 0) {
		if (buf[b - 1] == '\n' && ++lines == LOG_TAIL_LINES) break;
		b--;
	}
	fprintf(stderr, "--- the end of %s ---\n%.*s\n---\n", path, (int)(end - b), buf + b);
	free(buf);
}

/* Start `sam supervise` in its own session; its pid, or -1 (message printed). */
static pid_t spawn_supervisor(const char *log_path)
{
	char exe[PATH_MAX];
	if (!cli_self_exe(exe, sizeof exe)) {
		fprintf(stderr, "sam up: cannot find the path of the sam binary\n");
		return -1;
	}
	int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0) {
		fprintf(stderr, "sam up: %s: %s\n", log_path, strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "sam up: fork: %s\n", strerror(errno));
		close(logfd);
		return -1;
	}
	if (pid == 0) {
		setsid(); /* no controlling terminal: Ctrl-C in this shell does not reach it */
		int in = open("/dev/null", O_RDONLY);
		if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
		    dup2(logfd, STDERR_FILENO) < 0)
			_exit(127);
		long maxfd = sysconf(_SC_OPEN_MAX);
		if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
		for (int fd = 3; fd < maxfd; fd++) close(fd); /* leak nothing of ours into the daemon */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execl(exe, exe, "supervise", (char *)NULL);
		dprintf(STDERR_FILENO, "sam up: exec %s supervise: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(logfd);
	return pid;
}

/*
 * Wait until the new supervisor answers ping. 0 when it does; 1 when it
 * exited or did not answer in time (reported, with the end of its log).
 */
static int wait_socket(pid_t pid, const char *log_path, off_t log_from)
{
	double deadline = sam_now() + SOCKET_WAIT_S;
	bool ours = true; /* the child has not been reaped yet */
	struct sam_error err = { 0 };
	for (;;) {
		json_t *r;
		int rc = cli_sup_call("ping", &r, 1.0, &err);
		if (!rc) {
			json_decref(r);
			return 0;
		}
		int st;
		if (ours && waitpid(pid, &st, WNOHANG) == pid) {
			ours = false;
			/* exit 0 may be a supervisor that daemonized itself: keep waiting for its socket */
			if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
				/* another `sam up` may have won the race: attach to its supervisor */
				if (!cli_sup_call("ping", &r, 1.0, &err)) {
					json_decref(r);
					return 0;
				}
				if (WIFEXITED(st))
					fprintf(stderr, "sam up: the supervisor exited with status %d\n", WEXITSTATUS(st));
				else fprintf(stderr, "sam up: the supervisor was killed by signal %d\n", WTERMSIG(st));
				show_log_tail(log_path, log_from);
				return 1;
			}
		}
		if (sam_now() > deadline) break;
		usleep(50 * 1000);
	}
	fprintf(stderr, "sam up: the supervisor did not answer on $SAM_HOME/%s within %.0f s (%s)\n", SUP_SOCK,
		SOCKET_WAIT_S, err.msg);
	if (ours) { /* a supervisor that cannot answer is of no use: stop it */
		kill(pid, SIGTERM);
		usleep(500 * 1000);
		waitpid(pid, NULL, WNOHANG);
	}
	show_log_tail(log_path, log_from);
	return 1;
}

/* The last state seen of each service, to print changes on a terminal. */
struct seen {
	char name[64], state[32];
};

static void show_progress(json_t *st, struct seen *seen, int *n_seen, double t0)
{
	json_t *svcs = json_object_get(st, "services"), *s;
	size_t i;
	json_array_foreach(svcs, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *state = json_string_value(json_object_get(s, "state"));
		if (!name || !state || json_is_false(json_object_get(s, "enabled"))) continue;
		if (json_is_true(json_object_get(s, "one_shot")) && !strcmp(state, "stopped")) continue; /* a job not asked for */
		int k;
		for (k = 0; k < *n_seen; k++)
			if (!strcmp(seen[k].name, name)) break;
		if (k == *n_seen) {
			if (*n_seen == MAX_SEEN) continue;
			snprintf(seen[k].name, sizeof seen[k].name, "%s", name);
			seen[k].state[0] = 0;
			(*n_seen)++;
		}
		if (strcmp(seen[k].state, state)) {
			snprintf(seen[k].state, sizeof seen[k].state, "%s", state);
			fprintf(stderr, "  [%5.1fs] %-18s %s\n", sam_now() - t0, name, state);
		}
	}
}

/* A service that should be up but is not: enabled, not one-shot, neither ready nor paused. */
static bool not_up(json_t *s)
{
	const char *state = json_string_value(json_object_get(s, "state"));
	if (json_is_false(json_object_get(s, "enabled")) || json_is_true(json_object_get(s, "one_shot"))) return false;
	if (state && (!strcmp(state, "disabled") || !strcmp(state, "done"))) return false;
	return !state || (strcmp(state, "ready") && strcmp(state, "paused"));
}

/* Wait until the status says ready, print the table; the exit status of `sam up`. */
static int wait_ready(double timeout_s, const char *log_path, off_t log_from)
{
	double t0 = sam_now(), deadline = t0 + timeout_s;
	bool tty = isatty(STDERR_FILENO);
	struct seen seen[MAX_SEEN];
	int n_seen = 0;
	struct sam_error err = { 0 };
	json_t *st = NULL;
	for (;;) {
		json_decref(st);
		int rc = cli_sup_call("status", &st, 10, &err);
		if (rc == SAM_ENOTFOUND) {
			fprintf(stderr, "sam up: the supervisor stopped while SAM was starting\n");
			if (log_path) show_log_tail(log_path, log_from);
			return 1;
		}
		if (!rc) {
			if (tty) show_progress(st, seen, &n_seen, t0);
			if (json_is_true(json_object_get(st, "ready"))) break;
		}
		if (sam_now() > deadline) {
			if (rc) {
				fprintf(stderr, "sam up: %s\n", err.msg);
				return 1;
			}
			cli_sup_print_table(st, cli_color());
			fprintf(stderr,
				"sam up: SAM is not ready after %.0f s (the supervisor keeps trying; see `sam status`)\n",
				timeout_s);
			json_decref(st);
			return 1;
		}
		usleep(POLL_US);
	}
	cli_sup_print_table(st, cli_color());
	int bad = 0;
	json_t *svcs = json_object_get(st, "services"), *s;
	size_t i;
	json_array_foreach(svcs, i, s)
	{
		if (!not_up(s)) continue;
		if (!bad++) fprintf(stderr, "sam up: not every service is ready:\n");
		cli_sup_print_problem(s);
	}
	if (bad) fprintf(stderr, "See `sam logs NAME` for why.\n");
	json_decref(st);
	return bad ? 1 : 0;
}

int cmd_up(int argc, char **argv)
{
	double timeout_s = DEFAULT_TIMEOUT_S;
	int usage = cli_sup_timeout_opts("up", argc, argv, &timeout_s);
	if (usage) return usage;

	struct sam_error err;
	json_t *r;
	int rc = cli_sup_call("status", &r, 5.0, &err);
	if (!rc && json_is_true(json_object_get(r, "shutting_down"))) {
		/* a `sam down` in progress: let it finish, then start afresh */
		fprintf(stderr, "SAM is shutting down; waiting for it to finish\n");
		double end = sam_now() + 120;
		while (rc != SAM_ENOTFOUND && sam_now() < end) {
			json_decref(r);
			usleep(100 * 1000);
			rc = cli_sup_call("ping", &r, 2.0, &err);
		}
		if (rc != SAM_ENOTFOUND) {
			json_decref(r);
			fprintf(stderr, "sam up: the supervisor is still shutting down; try again later\n");
			return 1;
		}
	}
	if (!rc) {
		fprintf(stderr, "SAM is already running (supervisor pid %lld)\n",
			(long long)json_integer_value(json_object_get(r, "pid")));
		json_decref(r);
		return wait_ready(timeout_s, NULL, 0);
	}
	if (rc != SAM_ENOTFOUND) {
		fprintf(stderr, "sam up: %s\n", err.msg);
		return 1;
	}

	if (sam_home_init(&err)) {
		fprintf(stderr, "sam up: %s\n", err.msg);
		return 1;
	}
	char log_path[1100];
	if (sam_home_path(log_path, sizeof log_path, "logs/supervisor.log")) {
		fprintf(stderr, "sam up: SAM_HOME is too long\n");
		return 1;
	}
	struct stat st;
	off_t log_from = stat(log_path, &st) == 0 ? st.st_size : 0;
	pid_t pid = spawn_supervisor(log_path);
	if (pid < 0) return 1;
	if (isatty(STDERR_FILENO)) fprintf(stderr, "Starting SAM (supervisor pid %d, log %s)\n", (int)pid, log_path);
	if (wait_socket(pid, log_path, log_from)) return 1;
	return wait_ready(timeout_s, log_path, log_from);
}
