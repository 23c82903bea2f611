/*
 * test_notify_service.c - the real `sam notify` with the command backend
 * (a script the test writes, appending "TITLE|BODY" lines to a file),
 * against a real `sam api` and, at the end, under a real supervisor: events
 * published into the test's sam.db must come out as notifications exactly
 * once, across a crash and restart of the api (found again on its new port
 * through services.json), a restart of the notifier, and with no api at
 * all (read from sam.db); the rate limit must hold; SIGTERM must end it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api_helpers.h"
#include "sam/db.h"
#include "sam/events.h"
#include "test.h"

static char home[512], out_file[600], script[600];

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

/* SAM_HOME (also this process's), the notification script, and sam.conf: [notify] with extra lines. */
static void setup(const char *notify_conf)
{
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	mkdir(home, 0700);
	setenv("SAM_HOME", home, 1);
	snprintf(out_file, sizeof out_file, "%s/notifications.txt", test_tmpdir());
	snprintf(script, sizeof script, "%s/notify.sh", test_tmpdir());
	char text[2048];
	int n = snprintf(text, sizeof text, "#!/bin/sh\nprintf '%%s|%%s\\n' \"$1\" \"$2\" >> '%s'\n", out_file);
	test_write_file(script, text, (size_t)n);
	CHECK(chmod(script, 0755) == 0);
	char conf[600];
	snprintf(conf, sizeof conf, "%s/sam.conf", home);
	n = snprintf(text, sizeof text, "[notify]\nbackend = command\ncommand = %s\n%s", script, notify_conf);
	test_write_file(conf, text, (size_t)n);
}

/* Where clients find the api: run/services.json, as the supervisor keeps it. */
static void publish_api_url(const char *url)
{
	char dir[600], path[700], text[256];
	snprintf(dir, sizeof dir, "%s/run", home);
	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/services.json", dir);
	snprintf(text, sizeof text, "{\"api\": {\"name\": \"api\", \"url\": \"%s\"}}\n", url);
	write_file_atomic(path, text);
}

static int64_t publish(const char *type, const char *data)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	int64_t seq = -1;
	CHECKF(sam_db_thread(&db, NULL, &err) == 0, "sam_db_thread: %s", err.msg);
	CHECKF(sam_event_publish(db, "test", type, data, &seq, &err) == 0, "publish: %s", err.msg);
	return seq;
}

static void publish_n(int from, int to)
{
	for (int i = from; i <= to; i++) {
		char data[64];
		snprintf(data, sizeof data, "{\"n\":%d}", i);
		publish("test.ev", data);
	}
}

static int count_lines(const char *text)
{
	int n = 0;
	for (const char *p = text; p && *p; p++) n += *p == '\n';
	return n;
}

/* Wait until the notifications file has at least want lines; its text (caller frees). */
static char *wait_lines(int want, double timeout_s, const struct api_server *svc)
{
	double t0 = now_s();
	for (;;) {
		char *t = test_read_file(out_file, NULL);
		if (count_lines(t) >= want) return t;
		if (now_s() - t0 > timeout_s) {
			if (svc) api_dump_log(svc);
			test_fail(__FILE__, __LINE__, "%d notifications after %g s, expected %d:\n%s", count_lines(t),
				  timeout_s, want, t ? t : "(none)");
		}
		free(t);
		sleep_s(0.02);
	}
}

/* Each of n = from..to was notified exactly once ("SAM: test.ev|n: N"), and nothing else. */
static void expect_each_once(const char *text, int from, int to)
{
	CHECKF(count_lines(text) == to - from + 1, "expected %d notifications:\n%s", to - from + 1, text);
	for (int i = from; i <= to; i++) {
		char line[64];
		snprintf(line, sizeof line, "SAM: test.ev|n: %d\n", i);
		const char *p = strstr(text, line);
		CHECKF(p && (p == text || p[-1] == '\n'), "n %d was not notified:\n%s", i, text);
		CHECKF(!strstr(p + 1, line), "n %d was notified twice:\n%s", i, text);
	}
}

static json_t *health(const struct api_server *s)
{
	return api_get_json(s, "/health");
}

static bool wait_connected(const struct api_server *s, bool want, double timeout_s)
{
	double t0 = now_s();
	do {
		json_t *h = health(s);
		bool c = json_is_true(json_object_get(h, "connected"));
		json_decref(h);
		if (c == want) return true;
		sleep_s(0.02);
	} while (now_s() - t0 < timeout_s);
	return false;
}

static void start_notifier(struct api_server *s, const char *const *env)
{
	svc_start(s, (const char *const[]){ "notify", NULL }, NULL, env);
}

TEST(notify_service_follows_the_api_across_its_restart)
{
	setup("events = test.*\nrate = 1000\ndedup_window = 0\ndb_fallback = false\n");
	struct api_server api, ns;
	api_start(&api, NULL, NULL, NULL);
	publish_api_url(api.url);
	start_notifier(&ns, NULL);
	CHECKF(wait_connected(&ns, true, 10), "the notifier never connected to the api");
	json_t *h = health(&ns);
	CHECK_STR(jstr(h, "backend"), "command");
	CHECK_STR(jstr(h, "api_url"), api.url);
	CHECK_STR(jstr(h, "service"), "notifier");
	json_decref(h);
	publish_n(1, 5);
	free(wait_lines(5, 10, &ns));

	/* the api dies; what is published meanwhile waits in sam.db ... */
	api_kill(&api);
	CHECKF(wait_connected(&ns, false, 10), "the notifier did not notice the api's death");
	publish_n(6, 10);
	sleep_s(0.5);
	char *t = test_read_file(out_file, NULL);
	CHECKF(count_lines(t) == 5, "notified without an api, but db_fallback is off:\n%s", t);
	free(t);
	/* ... and arrives once the api is back, on another port, found through services.json */
	api_start(&api, NULL, NULL, NULL);
	publish_api_url(api.url);
	t = wait_lines(10, 40, &ns);
	free(t);
	publish_n(11, 12);
	free(wait_lines(12, 10, &ns));
	sleep_s(0.5); /* nothing more comes: no repeats */
	t = test_read_file(out_file, NULL);
	expect_each_once(t, 1, 12);
	free(t);
	h = health(&ns);
	CHECK(json_is_true(json_object_get(h, "connected")));
	CHECK_STR(jstr(h, "api_url"), api.url);
	CHECK(jint(h, "notifications.sent") == 12 && jint(h, "notifications.delivered") == 12);
	CHECK(jint(h, "stream.connects") >= 2 && jint(h, "stream.from_db") == 0);
	json_decref(h);
	api_stop(&ns);
	api_stop(&api);
}

TEST(notify_service_restart_misses_nothing)
{
	setup("events = test.*\nrate = 1000\ndedup_window = 0\n");
	struct api_server api, ns;
	api_start(&api, NULL, NULL, NULL);
	publish_api_url(api.url);
	start_notifier(&ns, NULL);
	publish_n(1, 3);
	free(wait_lines(3, 10, &ns));
	double t0 = now_s();
	api_stop(&ns); /* SIGTERM: exit 0, position saved */
	double stop_s = now_s() - t0;
	printf("    SIGTERM -> exit while following a silent stream: %.0f ms\n", stop_s * 1000);
	CHECKF(stop_s < 3, "the notifier took %.2f s to stop", stop_s);
	char state[700];
	snprintf(state, sizeof state, "%s/run/notify.state", home);
	char *s = test_read_file(state, NULL);
	CHECKF(s && atoll(s) >= 3, "state file: %s", s ? s : "(none)");
	free(s);

	publish_n(4, 6); /* while the notifier is down */
	start_notifier(&ns, NULL);
	free(wait_lines(6, 10, &ns));
	publish_n(7, 7);
	free(wait_lines(7, 10, &ns));
	sleep_s(0.5);
	char *t = test_read_file(out_file, NULL);
	expect_each_once(t, 1, 7);
	free(t);
	api_stop(&ns);
	api_stop(&api);
}

TEST(notify_service_reads_sam_db_while_the_api_is_away)
{
	setup("events = test.*\nrate = 1000\ndedup_window = 0\n");
	struct api_server ns;
	/* nothing listens on port 1: the api is unreachable all along */
	start_notifier(&ns, (const char *const[]){ "SAM_API_URL=http://127.0.0.1:1", NULL });
	publish_n(1, 4);
	free(wait_lines(4, 15, &ns));
	sleep_s(0.3);
	char *t = test_read_file(out_file, NULL);
	expect_each_once(t, 1, 4);
	free(t);
	json_t *h = health(&ns);
	CHECK(json_is_false(json_object_get(h, "connected")));
	CHECK(jint(h, "stream.from_db") >= 4 && jint(h, "stream.failures") >= 1);
	const char *e = jstr(h, "stream.last_error");
	CHECKF(e && strstr(e, "cannot reach"), "last_error: %s", e ? e : "(none)");
	json_decref(h);
	api_stop(&ns);
}

TEST(notify_service_rate_limit_holds)
{
	setup("events = test.*\nrate = 3\nrate_window = 2\ndedup_window = 0\n");
	struct api_server api, ns;
	api_start(&api, NULL, NULL, NULL);
	publish_api_url(api.url);
	start_notifier(&ns, NULL);
	CHECKF(wait_connected(&ns, true, 10), "the notifier never connected to the api");
	double t0 = now_s();
	publish_n(1, 10);
	free(wait_lines(3, 10, &ns));
	/* the rest is held back until the window has room, then summed up in one */
	sleep_s(1.0);
	char *t = test_read_file(out_file, NULL);
	CHECKF(count_lines(t) == 3 || now_s() - t0 >= 2, "more than 3 within the window:\n%s", t);
	free(t);
	t = wait_lines(4, 10, &ns);
	CHECKF(strstr(t, "SAM: 7 more events|7 notifications were held back (at most 3 per 2 s)"), "%s", t);
	free(t);
	sleep_s(2.5);
	t = test_read_file(out_file, NULL);
	CHECKF(count_lines(t) == 4, "one summary, then nothing:\n%s", t);
	free(t);
	json_t *h = health(&ns);
	CHECK(jint(h, "notifications.sent") == 3 && jint(h, "notifications.suppressed") == 7);
	CHECK(jint(h, "notifications.summaries") == 1);
	json_decref(h);
	api_stop(&ns);
	api_stop(&api);
}

/* ---- under the supervisor ---------------------------------------------------------------- */

static pid_t sup_pid;

static void stop_supervisor(void)
{
	if (sup_pid <= 0) return;
	kill(sup_pid, SIGTERM); /* it stops its services */
	for (int i = 0; i < 1500 && waitpid(sup_pid, NULL, WNOHANG) == 0; i++) sleep_s(0.01);
	kill(sup_pid, SIGKILL);
	waitpid(sup_pid, NULL, 0);
	sup_pid = 0;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { 0 };
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof a;
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* The "pid" of service name in run/services.json once it is ready; 0 until then. */
static long ready_pid(const char *name)
{
	char path[700];
	snprintf(path, sizeof path, "%s/run/services.json", home);
	char *t = test_read_file(path, NULL);
	json_t *j = t ? json_loads(t, 0, NULL) : NULL;
	free(t);
	json_t *s = json_object_get(j, name);
	const char *state = json_string_value(json_object_get(s, "state"));
	long pid = state && !strcmp(state, "ready") ? (long)json_integer_value(json_object_get(s, "pid")) : 0;
	json_decref(j);
	return pid;
}

TEST(notify_service_supervised_kill9_is_notified)
{
	const char *model = test_model("stories260K.gguf");
	setup("");
	int pa = free_port(), pn = free_port(), pv = free_port();
	char conf[600], text[4096];
	snprintf(conf, sizeof conf, "%s/sam.conf", home);
	char *old = test_read_file(conf, NULL);
	int n = snprintf(text, sizeof text,
			 "%s[api]\nmodel = %s\n[service.api]\nport = %d\n[service.notifier]\nport = %d\n"
			 "[service.learn-watch]\nenabled = false\n[service.learn-curriculum]\nenabled = false\n"
			 "[service.voice]\nenabled = false\n[service.vision]\nenabled = false\n"
			 "[service.victim]\ncommand = %s --port %d\nport = %d\nready = http://127.0.0.1:%d/\n",
			 old, model, pa, pn, test_helper("fake_service"), pv, pv, pv);
	free(old);
	test_write_file(conf, text, (size_t)n);
	char log[600];
	snprintf(log, sizeof log, "%s/supervisor.log", test_tmpdir());
	const char *sam = test_sam_bin();
	char supbin[1024];
	const char *slash = strrchr(sam, '/');
	snprintf(supbin, sizeof supbin, "%.*ssam-supervise", slash ? (int)(slash - sam + 1) : 0, sam);
	atexit(stop_supervisor);
	sup_pid = fork();
	CHECK(sup_pid >= 0);
	if (sup_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* the test dies: the supervisor stops everything */
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644), nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		alarm(0);
		setenv("SAM_FAKE_MEMAVAILABLE_MB", "8000", 1); /* the memory guard stays out of it */
		execl(supbin, supbin, "--foreground", (char *)NULL);
		_exit(127);
	}
	double t0 = now_s();
	while (!ready_pid("victim") || !ready_pid("notifier") || !ready_pid("api")) {
		if (now_s() - t0 > 60) {
			char *l = test_read_file(log, NULL);
			test_fail(__FILE__, __LINE__, "the services did not become ready:\n%s", l ? l : "");
		}
		sleep_s(0.05);
	}
	struct api_server ns = { .port = pn };
	snprintf(ns.url, sizeof ns.url, "http://127.0.0.1:%d", pn);
	CHECKF(wait_connected(&ns, true, 20), "the supervised notifier never connected to the api");
	long victim = ready_pid("victim");
	double tk = now_s();
	CHECK(kill((pid_t)victim, SIGKILL) == 0);
	t0 = now_s();
	char *t = NULL;
	for (;;) {
		t = test_read_file(out_file, NULL);
		if (t && strstr(t, "SAM: victim crashed|signal 9 (Killed).")) break;
		if (now_s() - t0 > 30) {
			char *l = test_read_file(log, NULL);
			test_fail(__FILE__, __LINE__, "no notification of the crash after 30 s:\n%s\nsupervisor log:\n%s",
				  t ? t : "(none)", l ? l : "");
		}
		free(t);
		sleep_s(0.005);
	}
	printf("    kill -9 -> notification: %.0f ms\n", (now_s() - tk) * 1000);
	free(t);
	stop_supervisor();
}
