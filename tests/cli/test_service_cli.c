/*
 * test_service_cli.c - the supervisor's clients as a user meets them:
 * sup_request() against a fake control socket; `sam up|status|start|stop|
 * restart|logs|down` against the real supervisor (build/sam-supervise behind
 * `sam supervise`) running test_helper("fake_service") services in a
 * temporary SAM_HOME; `sam logs` and `sam install-service` on files alone.
 *
 * Tests that start a supervisor always stop it at the end, even when they
 * fail or time out: `sam down`, then SIGKILL to every pid left in
 * run/services.json and run/samd.pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "sam/core.h"
#include "sam/supervise.h"
#include "test.h"

/* ---- helpers ---------------------------------------------------------------- */

/* A SAM_HOME of its own under the test's temporary directory, set in the environment. */
static const char *fresh_home(void)
{
	static char home[512];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	mkdir(home, 0755);
	char run[600];
	snprintf(run, sizeof run, "%s/run", home);
	mkdir(run, 0755);
	snprintf(run, sizeof run, "%s/logs", home);
	mkdir(run, 0755);
	setenv("SAM_HOME", home, 1);
	setenv("SAM_FAKE_MEMAVAILABLE_MB", "100000", 1); /* no memory guard pauses on a busy test machine */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	return home;
}

static void home_file(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/%s", getenv("SAM_HOME"), rel);
}

/* Alive and not a zombie. */
static bool pid_alive(long long pid)
{
	if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM)) return false;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%lld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f) return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

static bool wait_gone(long long pid, double timeout_s)
{
	double end = sam_now() + timeout_s;
	while (pid_alive(pid)) {
		if (sam_now() > end) return false;
		usleep(20 * 1000);
	}
	return true;
}

/* A TCP port on 127.0.0.1 that nobody listens on right now. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* The JSON of `sam status --json` (fails the test unless it exits 0). */
static json_t *status_json(void)
{
	struct test_proc p;
	test_run_sam(&p, 20, "status", "--json", NULL);
	CHECKF(p.status == 0, "sam status --json: %d, %s", p.status, p.err);
	json_t *j = json_loads(p.out, 0, NULL);
	CHECKF(json_is_object(j), "sam status --json printed: %s", p.out);
	test_proc_free(&p);
	return j;
}

static json_t *find_svc(json_t *st, const char *name)
{
	json_t *svcs = json_object_get(st, "services"), *s;
	size_t i;
	json_array_foreach(svcs, i, s)
	{
		const char *n = json_string_value(json_object_get(s, "name"));
		if (n && !strcmp(n, name)) return s;
	}
	test_fail(__FILE__, __LINE__, "service %s is not in the status", name);
}

static const char *svc_state(json_t *st, const char *name)
{
	const char *s = json_string_value(json_object_get(find_svc(st, name), "state"));
	return s ? s : "?";
}

static long long svc_pid(json_t *st, const char *name)
{
	return (long long)json_integer_value(json_object_get(find_svc(st, name), "pid"));
}

/* ---- a supervisor of our own, always stopped at the end --------------------------------- */

static bool sup_started;

/* Kill whatever is left: `sam down`, then every pid the supervisor recorded. */
static void stop_everything(void)
{
	if (!sup_started) return;
	sup_started = false;
	const char *argv[] = { test_sam_bin(), "down", "--timeout", "20", NULL };
	struct test_proc p;
	test_run(&p, argv, 30);
	test_proc_free(&p);
	char path[700];
	home_file(path, sizeof path, "run/services.json");
	json_t *j = json_load_file(path, 0, NULL), *s;
	const char *k;
	json_object_foreach(j, k, s)
	{
		long long pid = (long long)json_integer_value(json_object_get(s, "pid"));
		if (pid > 0 && pid_alive(pid)) {
			fprintf(stderr, "    cleanup: killing service %s (pid %lld)\n", k, pid);
			kill(-(pid_t)pid, SIGKILL);
			kill((pid_t)pid, SIGKILL);
		}
	}
	json_decref(j);
	home_file(path, sizeof path, "run/samd.pid");
	char *t = test_read_file(path, NULL);
	long long pid = t ? atoll(t) : 0;
	free(t);
	if (pid > 0 && pid_alive(pid)) {
		fprintf(stderr, "    cleanup: killing the supervisor (pid %lld)\n", pid);
		kill((pid_t)pid, SIGKILL);
	}
}

static void on_alarm(int sig)
{
	(void)sig;
	fprintf(stderr, "    timeout: stopping the supervisor\n");
	stop_everything();
	_exit(1);
}

/*
 * A SAM_HOME whose sam.conf disables the built-in services and runs
 * fake_service as "alpha" (and "beta" when two: ready after 0.3 s, and it
 * ignores SIGTERM, so stopping it takes the SIGKILL after stop_timeout),
 * each on a free port.
 */
static void setup_services(int n, int *ports)
{
	const char *home = fresh_home();
	const char *fake = test_helper("fake_service");
	char conf[4096];
	int len = snprintf(conf, sizeof conf,
			   "[service.api]\nenabled = false\n"
			   "[service.vision]\nenabled = false\n"
			   "[service.voice]\nenabled = false\n"
			   "[service.learn-watch]\nenabled = false\n"
			   "[service.learn-curriculum]\nenabled = false\n"
			   "[service.notifier]\nenabled = false\n");
	static const char *names[] = { "alpha", "beta" };
	for (int i = 0; i < n; i++) {
		ports[i] = free_port();
		len += snprintf(conf + len, sizeof conf - (size_t)len,
				"[service.%s]\n"
				"command = %s --port %d%s\n"
				"port = %d\n"
				"ready = http://127.0.0.1:%d/health\n"
				"priority = normal\n"
				"stop_timeout = 2\n",
				names[i], fake, ports[i], i ? " --ready-after 0.3 --ignore-term" : " --print-lines 3", ports[i],
				ports[i]);
	}
	char path[700];
	snprintf(path, sizeof path, "%s/sam.conf", home);
	test_write_file(path, conf, (size_t)len);
	sup_started = true;
	atexit(stop_everything);
	signal(SIGALRM, on_alarm);
	alarm(150); /* before the runner's: our handler still cleans up */
}

static void dump_supervisor_log(void)
{
	char path[700];
	home_file(path, sizeof path, "logs/supervisor.log");
	char *t = test_read_file(path, NULL);
	fprintf(stderr, "    --- supervisor.log ---\n%s    ---\n", t ? t : "(none)");
	free(t);
}

/* ---- sup_request against a fake control socket ------------------------------------------ */

enum fake_mode { FAKE_ANSWER, FAKE_SILENT, FAKE_CLOSE };

struct fake_sup {
	int listen_fd;
	enum fake_mode mode;
	char got[256]; /* the command line it read */
};

static void *fake_sup_thread(void *arg)
{
	struct fake_sup *f = arg;
	int c = accept(f->listen_fd, NULL, NULL);
	if (c < 0) return NULL;
	size_t n = 0;
	char ch;
	while (n + 1 < sizeof f->got && read(c, &ch, 1) == 1 && ch != '\n') f->got[n++] = ch;
	f->got[n] = 0;
	if (f->mode == FAKE_ANSWER) {
		const char *r = "{\"ok\":true,\"pid\":42,\"version\":\"test\"}\n";
		if (write(c, r, strlen(r)) < 0) perror("fake supervisor: write");
	} else if (f->mode == FAKE_SILENT) {
		sleep(30); /* never answers; the test process ends first */
	}
	close(c);
	return NULL;
}

/* Listen on $SAM_HOME/run/samd.sock and serve one connection in a thread. */
static void fake_sup_start(struct fake_sup *f, pthread_t *t, enum fake_mode mode)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	home_file(a.sun_path, sizeof a.sun_path, SUP_SOCK);
	memset(f, 0, sizeof *f);
	f->mode = mode;
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(f->listen_fd >= 0);
	unlink(a.sun_path);
	CHECKF(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) == 0, "bind %s: %s", a.sun_path, strerror(errno));
	CHECK(listen(f->listen_fd, 4) == 0);
	CHECK(pthread_create(t, NULL, fake_sup_thread, f) == 0);
}

TEST(sup_request_sends_a_line_and_reads_the_answer)
{
	fresh_home();
	struct fake_sup f;
	pthread_t t;
	fake_sup_start(&f, &t, FAKE_ANSWER);
	char *reply = NULL;
	struct sam_error err = { 0 };
	int rc = sup_request("ping", &reply, 5, &err);
	CHECKF(rc == 0, "sup_request: %d %s", rc, err.msg);
	CHECK_STR(reply, "{\"ok\":true,\"pid\":42,\"version\":\"test\"}");
	pthread_join(t, NULL);
	CHECK_STR(f.got, "ping");
	free(reply);
	close(f.listen_fd);
}

TEST(sup_request_without_supervisor_is_enotfound)
{
	fresh_home();
	char *reply = (char *)"x";
	struct sam_error err = { 0 };
	/* no socket file at all */
	CHECK_INT(sup_request("status", &reply, 2, &err), SAM_ENOTFOUND);
	CHECK(reply == NULL);
	CHECKF(strstr(err.msg, "not running") != NULL, "message: %s", err.msg);
	/* a stale socket file nobody listens on (a supervisor killed by SIGKILL) */
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	home_file(a.sun_path, sizeof a.sun_path, SUP_SOCK);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	close(fd);
	struct stat st;
	CHECK(stat(a.sun_path, &st) == 0);
	CHECK_INT(sup_request("status", &reply, 2, &err), SAM_ENOTFOUND);
	CHECK(reply == NULL);
}

TEST(sup_request_times_out_when_nobody_answers)
{
	fresh_home();
	struct fake_sup f;
	pthread_t t;
	fake_sup_start(&f, &t, FAKE_SILENT);
	char *reply = NULL;
	struct sam_error err = { 0 };
	double t0 = sam_now();
	int rc = sup_request("status", &reply, 0.3, &err);
	double dt = sam_now() - t0;
	CHECK_INT(rc, SAM_EIO);
	CHECK(reply == NULL);
	CHECKF(dt >= 0.25 && dt < 2.0, "took %.2f s for a 0.3 s timeout", dt);
	CHECKF(strstr(err.msg, "did not answer within") != NULL, "message: %s", err.msg);
	CHECK_STR(f.got, "status");
}

TEST(sup_request_connection_closed_and_bad_commands)
{
	fresh_home();
	struct fake_sup f;
	pthread_t t;
	fake_sup_start(&f, &t, FAKE_CLOSE);
	char *reply = NULL;
	struct sam_error err = { 0 };
	CHECK_INT(sup_request("ping", &reply, 2, &err), SAM_EIO);
	CHECKF(strstr(err.msg, "without answering") != NULL, "message: %s", err.msg);
	pthread_join(t, NULL);
	close(f.listen_fd);
	CHECK_INT(sup_request("start a\nstop b", &reply, 2, &err), SAM_EINVAL);
	CHECK_INT(sup_request("", &reply, 2, &err), SAM_EINVAL);
	CHECK(reply == NULL);
}

/* ---- without a supervisor --------------------------------------------------------------- */

TEST(service_cli_when_nothing_runs)
{
	fresh_home();
	struct test_proc p;
	test_run_sam(&p, 10, "status", NULL);
	CHECK_INT(p.status, 3);
	CHECKF(strstr(p.out, "SAM is not running (start it with `sam up`)") != NULL, "stdout: %s", p.out);
	test_proc_free(&p);
	test_run_sam(&p, 10, "status", "--json", NULL);
	CHECK_INT(p.status, 3);
	CHECK_STR(p.out, "");
	CHECK(strstr(p.err, "SAM is not running") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 10, "down", NULL);
	CHECK_INT(p.status, 0);
	CHECKF(strstr(p.err, "not running") != NULL, "stderr: %s", p.err);
	test_proc_free(&p);
	test_run_sam(&p, 10, "stop", "alpha", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "not running") != NULL, "stderr: %s", p.err);
	test_proc_free(&p);
}

TEST(service_cli_usage_errors_exit_2)
{
	fresh_home();
	static const char *bad[][5] = {
		{ "up", "extra" },
		{ "up", "--timeout", "soon" },
		{ "up", "--bogus" },
		{ "down", "--timeout" },
		{ "down", "now" },
		{ "status", "--bogus" },
		{ "status", "alpha" },
		{ "start" },
		{ "stop", "alpha", "beta" },
		{ "restart", "--timeout", "-1", "alpha" },
		{ "start", "bad name" },
		{ "logs" },
		{ "logs", "-n", "many", "alpha" },
		{ "logs", "../../etc/passwd" },
		{ "logs", "alpha", "beta" },
		{ "install-service", "--bogus" },
		{ "install-service", "extra" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *argv[7] = { test_sam_bin() };
		for (int k = 0; k < 5 && bad[i][k]; k++) argv[k + 1] = bad[i][k];
		struct test_proc p;
		test_run(&p, argv, 10);
		CHECKF(p.status == 2, "sam %s %s: exit %d (%s)", bad[i][0], bad[i][1] ? bad[i][1] : "", p.status, p.err);
		CHECKF(strstr(p.err, "usage:") != NULL, "sam %s: stderr: %s", bad[i][0], p.err);
		test_proc_free(&p);
	}
}

/* ---- sam logs on files alone ------------------------------------------------------------- */

static void write_lines(const char *path, int from, int to, bool final_newline)
{
	char buf[8192];
	size_t n = 0;
	for (int i = from; i <= to; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "line %d%s", i, i < to || final_newline ? "\n" : "");
	test_write_file(path, buf, n);
}

TEST(logs_prints_the_last_lines)
{
	fresh_home();
	char path[700], old[710];
	home_file(path, sizeof path, "logs/alpha.log");
	write_lines(path, 1, 100, true);
	struct test_proc p;
	test_run_sam(&p, 10, "logs", "alpha", NULL); /* default: 50 */
	CHECK_INT(p.status, 0);
	CHECK(!strncmp(p.out, "line 51\n", 8));
	CHECK(strstr(p.out, "line 50\n") == NULL);
	CHECK(p.out_len >= 9 && !strcmp(p.out + p.out_len - 9, "line 100\n"));
	test_proc_free(&p);
	test_run_sam(&p, 10, "logs", "-n", "3", "alpha", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "line 98\nline 99\nline 100\n");
	test_proc_free(&p);
	test_run_sam(&p, 10, "logs", "alpha", "-n", "0", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "");
	test_proc_free(&p);
	test_run_sam(&p, 10, "logs", "--lines=1000", "alpha", NULL); /* more than there are: all */
	CHECK_INT(p.status, 0);
	CHECK(!strncmp(p.out, "line 1\nline 2\n", 14));
	test_proc_free(&p);

	/* a last line without its newline yet */
	write_lines(path, 1, 5, false);
	test_run_sam(&p, 10, "logs", "-n", "2", "alpha", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "line 4\nline 5");
	test_proc_free(&p);

	/* just rotated: the lines before come from alpha.log.1 */
	snprintf(old, sizeof old, "%s.1", path);
	write_lines(old, 1, 10, true);
	write_lines(path, 11, 12, true);
	test_run_sam(&p, 10, "logs", "-n", "4", "alpha", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "line 9\nline 10\nline 11\nline 12\n");
	test_proc_free(&p);

	/* the supervisor's own log has a name too */
	home_file(path, sizeof path, "logs/supervisor.log");
	write_lines(path, 1, 1, true);
	test_run_sam(&p, 10, "logs", "supervisor", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "line 1\n");
	test_proc_free(&p);

	/* a service without a log */
	test_run_sam(&p, 10, "logs", "nosuch", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "no log for 'nosuch'") != NULL, "stderr: %s", p.err);
	CHECKF(strstr(p.err, "alpha") != NULL, "the logs there are should be listed: %s", p.err);
	test_proc_free(&p);
}

/* Read from fd into buf (appending) until it contains want or timeout_s passes. */
static bool read_until(int fd, char *buf, size_t cap, size_t *n, const char *want, double timeout_s)
{
	double end = sam_now() + timeout_s;
	while (!strstr(buf, want)) {
		if (sam_now() > end || *n + 1 >= cap) return false;
		ssize_t r = read(fd, buf + *n, cap - *n - 1);
		if (r > 0) {
			*n += (size_t)r;
			buf[*n] = 0;
		} else if (r == 0) {
			return false;
		} else {
			usleep(20 * 1000);
		}
	}
	return true;
}

static void append_line(const char *path, const char *line)
{
	FILE *f = fopen(path, "a");
	CHECK(f != NULL);
	fprintf(f, "%s\n", line);
	CHECK(fclose(f) == 0);
}

TEST(logs_follow_survives_rotation_and_truncation)
{
	fresh_home();
	char path[700], old[710];
	home_file(path, sizeof path, "logs/alpha.log");
	snprintf(old, sizeof old, "%s.1", path);
	write_lines(path, 1, 3, true);
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(pfd[1], 1);
		dup2(null, 2); /* "was truncated" */
		close(pfd[0]);
		execl(test_sam_bin(), test_sam_bin(), "logs", "-f", "-n", "1", "alpha", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char buf[8192] = "";
	size_t n = 0;
	bool ok = read_until(pfd[0], buf, sizeof buf, &n, "line 3\n", 5);
	if (ok) {
		append_line(path, "after 1");
		ok = read_until(pfd[0], buf, sizeof buf, &n, "after 1\n", 5);
	}
	if (ok) { /* rotation: the last line of the old file, then the new file */
		append_line(path, "before rotation");
		CHECK(rename(path, old) == 0);
		append_line(old, "late in the old file");
		append_line(path, "new file 1");
		ok = read_until(pfd[0], buf, sizeof buf, &n, "new file 1\n", 5);
	}
	if (ok) { /* truncated in place: read again from the start */
		FILE *f = fopen(path, "w");
		CHECK(f != NULL);
		fclose(f);
		usleep(600 * 1000);
		append_line(path, "after truncation");
		ok = read_until(pfd[0], buf, sizeof buf, &n, "after truncation\n", 5);
	}
	kill(pid, SIGINT);
	int st;
	waitpid(pid, &st, 0);
	CHECKF(ok, "sam logs -f printed: %s", buf);
	CHECK(strstr(buf, "line 2") == NULL); /* -n 1 */
	char *a = strstr(buf, "before rotation"), *b = strstr(buf, "late in the old file"), *c = strstr(buf, "new file 1");
	CHECKF(a && b && c && a < b && b < c, "order across the rotation: %s", buf);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sam logs -f after Ctrl-C: status %d", st);
}

/* ---- sam install-service ------------------------------------------------------------------ */

static void self_path(char *buf, size_t cap)
{
	char real[PATH_MAX];
	CHECK(realpath(test_sam_bin(), real) != NULL);
	snprintf(buf, cap, "%s", real);
}

TEST(install_service_print_is_a_notify_unit_for_this_binary)
{
	fresh_home();
	char exe[PATH_MAX], want[PATH_MAX + 64];
	self_path(exe, sizeof exe);
	struct test_proc p;
	test_run_sam(&p, 10, "install-service", "--print", NULL);
	CHECK_INT(p.status, 0);
#ifdef __APPLE__
	CHECK(strstr(p.out, "<string>ai.sam.supervisor</string>") != NULL);
	snprintf(want, sizeof want, "<string>%s</string>", exe);
	CHECK(strstr(p.out, want) != NULL);
	CHECK(strstr(p.out, "<string>supervise</string>") != NULL);
#else
	CHECKF(strstr(p.out, "\nType=notify\n") != NULL, "unit: %s", p.out);
	snprintf(want, sizeof want, "\nExecStart=%s supervise --foreground\n", exe);
	CHECKF(strstr(p.out, want) != NULL, "want %s in: %s", want, p.out);
	char env[800];
	snprintf(env, sizeof env, "\nEnvironment=SAM_HOME=%s\n", getenv("SAM_HOME"));
	CHECKF(strstr(p.out, env) != NULL, "want %s in: %s", env, p.out);
	const char *keys[] = { "Restart=on-failure", "RestartSec=1", "WatchdogSec=30", "TimeoutStopSec=60",
			       "KillMode=mixed", "WantedBy=default.target" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		CHECKF(strstr(p.out, keys[i]) != NULL, "%s missing from: %s", keys[i], p.out);
#endif
	test_proc_free(&p);

	/* without SAM_HOME: no Environment line */
	unsetenv("SAM_HOME");
	test_run_sam(&p, 10, "install-service", "--print", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "SAM_HOME") == NULL);
	test_proc_free(&p);
}

TEST(install_service_writes_into_home_and_refuses_to_overwrite)
{
	fresh_home();
	char home[600], unit[800];
	snprintf(home, sizeof home, "%s/fakehome", test_tmpdir());
	mkdir(home, 0755);
	setenv("HOME", home, 1);
	unsetenv("XDG_CONFIG_HOME");
#ifdef __APPLE__
	snprintf(unit, sizeof unit, "%s/Library/LaunchAgents/ai.sam.supervisor.plist", home);
	const char *hint = "launchctl load -w";
#else
	snprintf(unit, sizeof unit, "%s/.config/systemd/user/sam.service", home);
	const char *hint = "systemctl --user enable --now sam.service";
#endif
	struct test_proc p;
	test_run_sam(&p, 10, "install-service", "--dry-run", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, unit) != NULL);
	CHECK(access(unit, F_OK) != 0); /* a dry run writes nothing */
	test_proc_free(&p);

	test_run_sam(&p, 10, "install-service", NULL);
	CHECKF(p.status == 0, "exit %d: %s", p.status, p.err);
	CHECKF(strstr(p.out, hint) != NULL, "stdout: %s", p.out);
	CHECK(strstr(p.out, unit) != NULL);
	char *text = test_read_file(unit, NULL);
	CHECKF(text != NULL, "%s was not written", unit);
	CHECK(strstr(text, "supervise") != NULL);
#ifndef __APPLE__
	CHECK(strstr(p.out, "loginctl enable-linger") != NULL);
	CHECK(strstr(text, "Type=notify") != NULL);
#endif
	test_proc_free(&p);

	/* an existing file stays as it is without --force */
	test_write_file(unit, "mine\n", 5);
	test_run_sam(&p, 10, "install-service", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "--force") != NULL, "stderr: %s", p.err);
	free(text);
	text = test_read_file(unit, NULL);
	CHECK_STR(text, "mine\n");
	test_proc_free(&p);
	test_run_sam(&p, 10, "install-service", "--force", NULL);
	CHECK_INT(p.status, 0);
	free(text);
	text = test_read_file(unit, NULL);
	CHECK(text && strstr(text, "supervise") != NULL);
	free(text);
	test_proc_free(&p);
}

/* ---- with the real supervisor ------------------------------------------------------------- */

/* `sam up` that must succeed; dumps the supervisor's log when it does not. */
static void sam_up(void)
{
	struct test_proc p;
	test_run_sam(&p, 90, "up", "--timeout", "60", NULL);
	if (p.status != 0) {
		dump_supervisor_log();
		test_fail(__FILE__, __LINE__, "sam up: exit %d\nstdout: %s\nstderr: %s", p.status, p.out, p.err);
	}
	CHECKF(strstr(p.out, "alpha") && strstr(p.out, "ready"), "sam up printed: %s", p.out);
	test_proc_free(&p);
}

TEST(up_status_down_lifecycle)
{
	int ports[2];
	setup_services(2, ports);

	/* up starts the supervisor in the background and returns once everything is ready */
	double t0 = sam_now();
	sam_up();
	double up_s = sam_now() - t0;
	json_t *st = status_json();
	CHECK(json_is_true(json_object_get(st, "ready")));
	long long sup_pid = (long long)json_integer_value(json_object_get(st, "pid"));
	long long a_pid = svc_pid(st, "alpha"), b_pid = svc_pid(st, "beta");
	CHECK(pid_alive(sup_pid));
	CHECKF(getsid((pid_t)sup_pid) == (pid_t)sup_pid, "the supervisor is not in its own session");
	CHECK_STR(svc_state(st, "alpha"), "ready");
	CHECK_STR(svc_state(st, "beta"), "ready");
	CHECK(pid_alive(a_pid) && pid_alive(b_pid));
	CHECK_INT(json_integer_value(json_object_get(find_svc(st, "alpha"), "port")), ports[0]);
	json_decref(st);

	/* a second up attaches to it, quickly */
	struct test_proc p;
	t0 = sam_now();
	test_run_sam(&p, 30, "up", NULL);
	double attach_s = sam_now() - t0;
	CHECKF(p.status == 0, "second sam up: %d %s", p.status, p.err);
	CHECKF(attach_s < 3.0, "attaching took %.2f s", attach_s);
	CHECKF(strstr(p.err, "already running") != NULL, "stderr: %s", p.err);
	test_proc_free(&p);
	st = status_json();
	CHECK_INT(json_integer_value(json_object_get(st, "pid")), sup_pid);
	json_decref(st);

	/* the table */
	test_run_sam(&p, 10, "status", NULL);
	CHECK_INT(p.status, 0);
	const char *head = strstr(p.out, "NAME");
	CHECKF(head != NULL, "status: %s", p.out);
	const char *cols[] = { "STATE", "PID", "PORT", "RESTARTS", "UPTIME", "LAST-EXIT" };
	for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) CHECK(strstr(head, cols[i]) != NULL);
	char row[128];
	snprintf(row, sizeof row, "%lld", a_pid);
	const char *arow = strstr(p.out, "\nalpha ");
	CHECKF(arow && strstr(arow, "ready") && strstr(arow, row), "status: %s", p.out);
	CHECK(strchr(p.out, '\033') == NULL); /* no colours when not on a terminal */
	/* aligned: STATE starts at the same column in the header and the rows */
	const char *hs = strstr(head, "STATE"), *rs = strstr(arow + 1, "ready");
	CHECK_INT(hs - head, rs - (arow + 1));
	test_proc_free(&p);

	/* down: nothing left */
	t0 = sam_now();
	test_run_sam(&p, 60, "down", NULL);
	CHECKF(p.status == 0, "sam down: %d %s", p.status, p.err);
	test_proc_free(&p);
	CHECK(!pid_alive(sup_pid));
	CHECKF(wait_gone(a_pid, 2) && wait_gone(b_pid, 2), "a service outlived sam down");
	char sock[700];
	home_file(sock, sizeof sock, SUP_SOCK);
	CHECK(access(sock, F_OK) != 0);
	test_run_sam(&p, 10, "status", NULL);
	CHECK_INT(p.status, 3);
	test_proc_free(&p);
	fprintf(stderr, "    sam up %.2f s, second sam up %.2f s, sam down %.2f s\n", up_s, attach_s, sam_now() - t0);
	sup_started = false;
}

/* `sam VERB alpha` succeeds saying "alpha: ready", and the status says ready too; alpha's pid then. */
static long long alpha_ready_after(const char *verb)
{
	struct test_proc p;
	test_run_sam(&p, 60, verb, "alpha", NULL);
	CHECKF(p.status == 0, "sam %s: %d %s", verb, p.status, p.err);
	CHECKF(strstr(p.out, "alpha: ready") != NULL, "stdout: %s", p.out);
	test_proc_free(&p);
	json_t *st = status_json();
	CHECK_STR(svc_state(st, "alpha"), "ready");
	long long pid = svc_pid(st, "alpha");
	json_decref(st);
	return pid;
}

TEST(start_stop_restart_and_logs_of_a_service)
{
	int ports[1];
	setup_services(1, ports);
	sam_up();
	json_t *st = status_json();
	long long pid1 = svc_pid(st, "alpha");
	json_decref(st);
	CHECK(pid_alive(pid1));

	struct test_proc p;
	test_run_sam(&p, 60, "stop", "alpha", NULL);
	CHECKF(p.status == 0, "sam stop: %d %s", p.status, p.err);
	CHECKF(strstr(p.out, "alpha: stopped") != NULL, "stdout: %s", p.out);
	test_proc_free(&p);
	CHECK(wait_gone(pid1, 2));
	st = status_json();
	CHECK_STR(svc_state(st, "alpha"), "stopped");
	json_decref(st);

	long long pid2 = alpha_ready_after("start");
	CHECK(pid2 != pid1 && pid_alive(pid2));

	long long pid3 = alpha_ready_after("restart");
	CHECK(pid3 != pid2 && pid_alive(pid3));
	CHECK(wait_gone(pid2, 2));

	/* the supervisor's refusal is the error */
	test_run_sam(&p, 20, "start", "nosuch", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "nosuch") != NULL, "stderr: %s", p.err);
	test_proc_free(&p);

	/* logs: the service's own file, last lines */
	char path[700];
	home_file(path, sizeof path, "logs/alpha.log");
	size_t len = 0;
	char *text = test_read_file(path, &len);
	CHECKF(text && len > 0, "logs/alpha.log is empty or missing");
	int lines = 0;
	for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
	CHECKF(lines >= 2, "logs/alpha.log: %s", text);
	/* the last two complete lines */
	size_t end = len;
	while (end && text[end - 1] != '\n') end--; /* a partial line may be in flight */
	size_t start = end - 1;
	int seen = 0;
	while (start > 0 && !(text[start - 1] == '\n' && ++seen == 2)) start--;
	test_run_sam(&p, 10, "logs", "-n", "2", "alpha", NULL);
	CHECK_INT(p.status, 0);
	CHECKF(!strncmp(p.out, text + start, end - start), "sam logs -n 2: %s\nthe file ends: %s", p.out, text + start);
	test_proc_free(&p);
	free(text);
	test_run_sam(&p, 10, "logs", "alpha", NULL);
	CHECK_INT(p.status, 0);
	CHECK(p.out_len > 0);
	test_proc_free(&p);

	test_run_sam(&p, 60, "down", NULL);
	CHECK_INT(p.status, 0);
	test_proc_free(&p);
	CHECK(wait_gone(pid3, 2));
	sup_started = false;
}

TEST(learn_watch_under_the_supervisor_trains_through_its_job)
{
	int ports[1];
	setup_services(1, ports);
	/* the built-in learn-watch, on a free port, with a low trigger threshold */
	char path[700], section[256];
	home_file(path, sizeof path, "sam.conf");
	char *conf = test_read_file(path, NULL);
	int wport = free_port();
	snprintf(section, sizeof section, "[service.learn-watch]\nenabled = true\nport = %d\n", wport);
	const char *off = "[service.learn-watch]\nenabled = false\n";
	char *all = malloc(strlen(conf) + strlen(section) + 1), *at;
	strcpy(all, conf);
	if ((at = strstr(all, off))) memmove(at, at + strlen(off), strlen(at + strlen(off)) + 1);
	strcat(all, section);
	test_write_file(path, all, strlen(all));
	free(all);
	free(conf);
	setenv("SAM_TRAIN_MIN_NEW_EXAMPLES", "3", 1);
	setenv("SAM_LEARN_WATCH_DEBOUNCE_MS", "50", 1);
	setenv("SAM_FAKE_MEMAVAILABLE_MB", "6000", 1);
	setenv("SAM_MODEL", test_model("stories260K.gguf"), 1); /* what the train job trains */
	sam_up();
	unsetenv("SAM_MODEL");
	unsetenv("SAM_TRAIN_MIN_NEW_EXAMPLES");
	unsetenv("SAM_LEARN_WATCH_DEBOUNCE_MS");
	unsetenv("SAM_FAKE_MEMAVAILABLE_MB");
	json_t *st = status_json();
	CHECK_STR(svc_state(st, "learn-watch"), "ready");
	json_decref(st);

	const char *ex = "{\"text\":\"one\"}\n{\"text\":\"two\"}\n{\"text\":\"three\"}\n";
	home_file(path, sizeof path, "inbox/drop.jsonl");
	test_write_file(path, ex, strlen(ex));
	/* the watcher asks the supervisor, which runs its one-shot train job to the end */
	double t0 = sam_now();
	for (;;) {
		st = status_json();
		bool done = !strcmp(svc_state(st, "train"), "done");
		json_decref(st);
		if (done) break;
		if (sam_now() - t0 > 30) {
			dump_supervisor_log();
			CHECKF(0, "the train job did not run within 30 s");
		}
		usleep(100 * 1000);
	}
	struct test_proc p;
	test_run_sam(&p, 20, "learn", "stats", NULL);
	CHECKF(p.status == 0 && strstr(p.out, "last training run: ") && strstr(p.out, ", finished ("), "learn stats: %s",
	       p.out);
	CHECKF(strstr(p.out, "0 waiting for training"), "learn stats: %s", p.out);
	test_proc_free(&p);
	home_file(path, sizeof path, "logs/learn-watch.log");
	char *log = test_read_file(path, NULL);
	CHECKF(log && strstr(log, "training started (supervisor job 'train')"), "learn-watch.log: %s", log ? log : "");
	free(log);
	test_run_sam(&p, 60, "down", NULL);
	CHECKF(p.status == 0, "sam down: %d %s", p.status, p.err);
	test_proc_free(&p);
	sup_started = false;
}
