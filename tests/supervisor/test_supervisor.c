/*
 * test_supervisor.c - the supervisor (build/sam-supervise): unit tests of
 * its service table, URL and command parsing, and integration tests with
 * real processes. Each integration test has its own SAM_HOME under
 * test_tmpdir(), its own free ports, a sam.conf whose services run the
 * fake_service helper (tests/helpers/fake_service.c) with the built-in api
 * disabled, and starts sam-supervise --foreground as a child. Whatever
 * happens (failure, timeout), everything the test started is killed at
 * the end: the supervisor by pid, the services by their command lines
 * (they all mention the test's directory).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sam/config.h"
#include "sam/db.h"
#include "sam/events.h"
#include "supervisor/sup.h"
#include "test.h"

/* ---- unit tests: the table ------------------------------------------------------------- */

static int load_text(struct sup *d, const char *text, struct sam_error *err)
{
	struct sam_conf c;
	memset(&c, 0, sizeof c);
	snprintf(c.path, sizeof c.path, "sam.conf");
	sup_init(d);
	int rc = sam_conf_parse(&c, text, err);
	if (!rc) rc = sup_table_load(d, &c, "/opt/sam/bin/sam", err);
	sam_conf_free(&c);
	return rc;
}

TEST(sup_table_defaults)
{
	struct sup *d = calloc(1, sizeof *d);
	struct sam_error err = { 0 };
	CHECKF(load_text(d, "", &err) == 0, "%s", err.msg);
	struct sup_service *api = sup_find(d, "api");
	CHECK(api && api->enabled && api->priority == SUP_CRITICAL && api->port == 8765);
	CHECK_STR(api->argv[0], "/opt/sam/bin/sam");
	CHECK_STR(api->argv[1], "api");
	CHECK_STR(api->argv[2], "--port");
	CHECK_STR(api->argv[3], "8765");
	CHECK(api->argv[4] == NULL);
	CHECK_INT(api->ready_kind, SUP_READY_HTTP);
	CHECK_STR(api->ready_url.text, "http://127.0.0.1:8765/api/ready");
	CHECK(api->has_health);
	CHECK_STR(api->health_url.text, "http://127.0.0.1:8765/api/health");
	CHECK(api->health_interval == 10 && api->stop_timeout == 10 && api->ready_timeout == 120);
	CHECK_INT(api->restart, SUP_RESTART_ALWAYS);
	CHECK_STR(api->url, "http://127.0.0.1:8765");
	struct sup_service *nt = sup_find(d, "notifier");
	CHECK(nt && nt->enabled && nt->priority == SUP_LOW && nt->port == 8770 && !nt->pausable);
	CHECK(nt->ndeps == 1 && &d->svc[nt->deps[0]] == api);
	CHECK_STR(nt->argv[1], "notify");
	CHECK_STR(nt->argv[3], "8770");
	CHECK_STR(nt->ready_url.text, "http://127.0.0.1:8770/health");
	CHECK_STR(nt->health_url.text, "http://127.0.0.1:8770/health");
	struct sup_service *vo = sup_find(d, "voice");
	CHECK(vo && vo->enabled && vo->ndeps == 0 && vo->priority == SUP_NORMAL && vo->port == 8767);
	CHECK_STR(vo->ready_url.text, "http://127.0.0.1:8767/health");
	CHECK_STR(vo->health_url.text, "http://127.0.0.1:8767/health");
	CHECK_STR(vo->argv[1], "voice");
	struct sup_service *lw = sup_find(d, "learn-watch");
	CHECK(lw->enabled && lw->ndeps == 0 && lw->priority == SUP_LOW && lw->port == 8768);
	CHECK_STR(lw->health_url.text, "http://127.0.0.1:8768/health");
	struct sup_service *lc = sup_find(d, "learn-curriculum");
	CHECK(lc->enabled && lc->ndeps == 1 && &d->svc[lc->deps[0]] == api && lc->priority == SUP_LOW);
	CHECK_STR(lc->health_url.text, "http://127.0.0.1:8769/health");
	CHECK(lc->pausable);
	struct sup_service *tr = sup_find(d, "train");
	CHECK(tr && tr->enabled && tr->one_shot && !tr->autostart && tr->restart == SUP_RESTART_NEVER);
	CHECK_INT(tr->priority, SUP_BACKGROUND);
	/* settings */
	CHECK(d->set.mem_poll == 2.0 && d->set.crash_loop_count == 5 && d->set.crash_loop_window == 60);
	CHECK(d->set.backoff_max == 30 && d->set.log_max == 1 << 20 && d->set.log_keep == 3);
	CHECK(d->set.pause_mb[SUP_LOW] == 2048 && d->set.pause_mb[SUP_BACKGROUND] == 2048);
	CHECK(d->set.pause_mb[SUP_NORMAL] == 1536 && d->set.pause_mb[SUP_HIGH] == 1024);
	CHECK(d->set.pause_mb[SUP_CRITICAL] == 0 && fabs(d->set.hysteresis_mb - 204.8) < 1e-9);
	/* dependency order: api before learn-curriculum */
	int pa = -1, pl = -1;
	for (int k = 0; k < d->n; k++) {
		if (d->order[k] == (int)(api - d->svc)) pa = k;
		if (d->order[k] == (int)(lc - d->svc)) pl = k;
	}
	CHECK(pa >= 0 && pl > pa);
	sup_free(d);
	free(d);
}

TEST(sup_table_defaults_give_way_to_a_disabled_dependency)
{
	/* turning the api off disables the built-ins that need it, unless the user enabled them */
	struct sup *d = calloc(1, sizeof *d);
	struct sam_error err = { 0 };
	CHECKF(load_text(d, "[service.api]\nenabled = false\n[service.a]\ncommand = x\ndepends = b\n"
			    "[service.b]\ncommand = y\ndepends = learn-curriculum\nenabled = true\n", &err) != 0,
	       "a chain the user enabled on top of a disabled default must be an error");
	sup_free(d);
	memset(d, 0, sizeof *d);
	CHECKF(load_text(d, "[service.api]\nenabled = false\n", &err) == 0, "%s", err.msg);
	struct sup_service *lc = sup_find(d, "learn-curriculum"), *lw = sup_find(d, "learn-watch");
	CHECK(!lc->enabled && lc->state == SUP_DISABLED);
	CHECK(!sup_find(d, "notifier")->enabled);
	CHECK(lw->enabled); /* needs nothing */
	sup_free(d);
	free(d);
}

TEST(sup_table_overrides)
{
	struct sup *d = calloc(1, sizeof *d);
	struct sam_error err = { 0 };
	CHECKF(load_text(d,
			 "[supervisor]\nmemory_poll_interval = 0.2\npause_low_gb = 3\nhysteresis_gb = 0.5\n"
			 "[service.api]\nport = 9100\n"
			 "[service.vision]\nenabled = true\n"
			 "[service.worker]\ncommand = sam learn  \"two words\" \"q\\\"uote\" x\npriority = low\n"
			 "depends = api, vision\nready = notify\nrestart = on-failure\nstop_timeout = 1.5\n"
			 "[service.job]\ncommand = /bin/true\none_shot = true\n",
			 &err) == 0,
	       "%s", err.msg);
	struct sup_service *api = sup_find(d, "api");
	CHECK_STR(api->argv[3], "9100"); /* the default command follows the port */
	CHECK_STR(api->ready_url.text, "http://127.0.0.1:9100/api/ready");
	CHECK(sup_find(d, "vision")->enabled);
	struct sup_service *w = sup_find(d, "worker");
	CHECK(w && w->enabled && w->priority == SUP_LOW && w->ndeps == 2 && w->ready_kind == SUP_READY_NOTIFY);
	CHECK_STR(w->argv[0], "/opt/sam/bin/sam"); /* "sam" means the binary next to the supervisor */
	CHECK_STR(w->argv[1], "learn");
	CHECK_STR(w->argv[2], "two words");
	CHECK_STR(w->argv[3], "q\"uote");
	CHECK_STR(w->argv[4], "x");
	CHECK(w->argv[5] == NULL);
	CHECK(w->restart == SUP_RESTART_ON_FAILURE && w->stop_timeout == 1.5 && w->port == 0 && !w->url[0]);
	struct sup_service *job = sup_find(d, "job");
	CHECK(job->one_shot && !job->autostart && job->restart == SUP_RESTART_NEVER);
	CHECK(d->set.mem_poll == 0.2 && d->set.pause_mb[SUP_LOW] == 3072 && d->set.hysteresis_mb == 512);
	sup_free(d);
	free(d);
}

static void expect_error(const char *conf, const char *want)
{
	struct sup *d = calloc(1, sizeof *d);
	struct sam_error err = { 0 };
	int rc = load_text(d, conf, &err);
	CHECKF(rc != 0, "config accepted, expected an error with '%s':\n%s", want, conf);
	CHECKF(strstr(err.msg, want), "error '%s' does not mention '%s'", err.msg, want);
	sup_free(d);
	free(d);
}

TEST(sup_table_errors)
{
	expect_error("[service.a]\ncommand = x\npriority = urgent\n", "priority = 'urgent'");
	expect_error("[service.a]\ncommand = x\nrestart = sometimes\n", "always|on-failure|never");
	expect_error("[service.a]\ncommand = x\ncomand = y\n", "no key 'comand'");
	expect_error("[supervisor]\npause_low_gb = 1\npause_normal_gb = 1.5\n", "pause thresholds");
	expect_error("[supervisor]\nbogus = 1\n", "no key 'bogus'");
	expect_error("[service.a]\ncommand = x\ndepends = ghost\n", "'ghost', which is no service");
	expect_error("[service.a]\ncommand = x\ndepends = b\n[service.b]\ncommand = y\ndepends = c\n"
		     "[service.c]\ncommand = z\ndepends = a\n",
		     "dependency cycle: a -> b -> c -> a");
	expect_error("[service.a]\ncommand = x\ndepends = a\n", "depends on itself");
	expect_error("[service.notifier]\nenabled = false\n[service.a]\ncommand = x\ndepends = notifier\n",
		     "'notifier', which is disabled");
	expect_error("[service.api]\nenabled = false\n[service.learn-curriculum]\nenabled = true\n",
		     "'api', which is disabled");
	expect_error("[service.a]\ncommand = x\ndepends = train\n", "one-shot");
	expect_error("[service.a]\npriority = low\n", "no command");
	expect_error("[service.a]\ncommand = x \"open\n", "unterminated");
	expect_error("[service.a]\ncommand = x\nready = ftp://x\n", "expected http://");
	expect_error("[service.a]\ncommand = x\nhealth = http://example.com/\n", "numeric address or localhost");
	expect_error("[service.Bad]\ncommand = x\n", "a service name is");
	expect_error("[service.a]\ncommand = x\nport = 70000\n", "port");
}

TEST(sup_url_parse_forms)
{
	struct sup_url u;
	struct sam_error err;
	CHECK(sup_url_parse(&u, "http://127.0.0.1:8765/api/ready", &err) == 0);
	CHECK_STR(u.hostport, "127.0.0.1:8765");
	CHECK_STR(u.path, "/api/ready");
	CHECK(sup_url_parse(&u, "http://localhost:99", &err) == 0);
	CHECK_STR(u.path, "/");
	CHECK_STR(u.hostport, "127.0.0.1:99");
	CHECK(sup_url_parse(&u, "http://[::1]:8080/x?y=1", &err) == 0);
	CHECK_STR(u.hostport, "[::1]:8080");
	CHECK_STR(u.path, "/x?y=1");
	CHECK(sup_url_parse(&u, "http://127.0.0.1:0/", &err) != 0);
	CHECK(sup_url_parse(&u, "http://127.0.0.1:80x/", &err) != 0);
	CHECK(sup_url_parse(&u, "https://127.0.0.1/", &err) != 0);
}

/* ---- integration harness --------------------------------------------------------------- */

struct harness {
	char home[512], conf[640], marks[640], memfile[640], log[640], fake[1024], supbin[1024];
	pid_t sup;
};
static struct harness H;

/* Kill every process whose command line mentions the test directory (the fake services). */
static void kill_strays(void)
{
	const char *dir = test_tmpdir();
	DIR *p = opendir("/proc");
	struct dirent *de;
	while (p && (de = readdir(p))) {
		if (!isdigit((unsigned char)de->d_name[0])) continue;
		pid_t pid = (pid_t)atol(de->d_name);
		if (pid == getpid()) continue;
		char path[300], buf[4096];
		snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0) continue;
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0) continue;
		for (ssize_t i = 0; i < n; i++)
			if (!buf[i]) buf[i] = ' ';
		buf[n] = 0;
		if (strstr(buf, dir)) {
			kill(pid, SIGCONT);
			kill(pid, SIGKILL);
		}
	}
	if (p) closedir(p);
}

static void harness_cleanup(void)
{
	if (H.sup > 0) {
		kill(H.sup, SIGKILL);
		waitpid(H.sup, NULL, 0);
		H.sup = 0;
	}
	if (H.home[0]) kill_strays();
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "    test timed out: killing the supervisor and its services\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	harness_cleanup();
	_exit(1);
}

static void dump_log(void)
{
	size_t len = 0;
	char *t = test_read_file(H.log, &len);
	if (!t) return;
	size_t off = len > 6000 ? len - 6000 : 0;
	fprintf(stderr, "---- supervisor log (tail) ----\n%s\n---- end ----\n", t + off);
	free(t);
}

#define SCHECK(c, ...)                                                                                                 \
	do {                                                                                                           \
		if (!(c)) {                                                                                            \
			dump_log();                                                                                    \
			test_fail(__FILE__, __LINE__, __VA_ARGS__);                                                    \
		}                                                                                                      \
	} while (0)

static void harness_init(void)
{
	memset(&H, 0, sizeof H);
	snprintf(H.home, sizeof H.home, "%s/home", test_tmpdir());
	mkdir(H.home, 0755);
	snprintf(H.conf, sizeof H.conf, "%s/sam.conf", H.home);
	snprintf(H.marks, sizeof H.marks, "%s/marks", test_tmpdir());
	snprintf(H.memfile, sizeof H.memfile, "%s/memavail", test_tmpdir());
	snprintf(H.log, sizeof H.log, "%s/supervisor.out", test_tmpdir());
	snprintf(H.fake, sizeof H.fake, "%s", test_helper("fake_service"));
	const char *sam = test_sam_bin();
	const char *slash = strrchr(sam, '/');
	snprintf(H.supbin, sizeof H.supbin, "%.*ssam-supervise", slash ? (int)(slash - sam + 1) : 0, sam);
	setenv("SAM_HOME", H.home, 1);
	setenv("SAM_DB_BUSY_MS", "10000", 1);
	atexit(harness_cleanup);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(120);
}

/* Write sam.conf: the built-in api disabled, then text (printf-style). */
static void write_conf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void write_conf(const char *fmt, ...)
{
	char body[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	char text[9000];
	/* the tests run their own fake services only (learn-curriculum gives way with the api) */
	int n = snprintf(text, sizeof text, "[service.api]\nenabled = false\n[service.learn-watch]\nenabled = false\n"
			 "[service.voice]\nenabled = false\n\n%s",
			 body);
	test_write_file(H.conf, text, (size_t)n);
}

/* "FAKE --name NAME --mark MARKS" for a command line. */
static const char *fake(const char *name)
{
	static char buf[8][2048];
	static int slot;
	char *b = buf[slot++ & 7];
	snprintf(b, sizeof buf[0], "%s --name %s --mark %s", H.fake, name, H.marks);
	return b;
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

static pid_t start_supervisor_with(const char *bin, const char *arg1)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* the test dies: the supervisor shuts down */
		int fd = open(H.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		alarm(0);
		signal(SIGALRM, SIG_DFL);
		if (arg1) execl(bin, bin, arg1, "--foreground", (char *)NULL);
		else execl(bin, bin, "--foreground", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One command on the control socket; the reply line (malloc'd) or NULL if nobody answers. */
static char *ctl(const char *cmd)
{
	struct sockaddr_un sa = { 0 };
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%.90s/run/samd.sock", H.home);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return NULL;
	}
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	size_t n = strlen(cmd);
	char *line = malloc(n + 2);
	memcpy(line, cmd, n);
	memcpy(line + n, "\n", 2);
	bool sent = write(fd, line, n + 1) == (ssize_t)(n + 1);
	free(line);
	if (!sent) {
		close(fd);
		return NULL;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r <= 0) break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	if (!len) {
		free(buf);
		return NULL;
	}
	return buf;
}

static json_t *ctl_json(const char *cmd)
{
	char *r = ctl(cmd);
	if (!r) return NULL;
	size_t l = strlen(r);
	SCHECK(l > 0 && r[l - 1] == '\n' && !memchr(r, '\n', l - 1), "reply to '%s' is not one line: %s", cmd, r);
	json_error_t je;
	json_t *j = json_loads(r, 0, &je);
	SCHECK(j, "reply to '%s' is not JSON (%s): %s", cmd, je.text, r);
	free(r);
	return j;
}

static pid_t start_supervisor(void)
{
	H.sup = start_supervisor_with(H.supbin, NULL);
	double t0 = now_s();
	for (;;) {
		char *r = ctl("ping");
		if (r) {
			free(r);
			return H.sup;
		}
		int st;
		SCHECK(waitpid(H.sup, &st, WNOHANG) == 0, "the supervisor exited at start");
		SCHECK(now_s() - t0 < 10, "the supervisor does not answer ping");
		sleep_s(0.01);
	}
}

/* The entry of name in a status reply (borrowed). */
static json_t *svc_of(json_t *status, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(status, "services"), i, s) if (!strcmp(
		json_string_value(json_object_get(s, "name")), name)) return s;
	return NULL;
}

static const char *svc_state(json_t *status, const char *name)
{
	json_t *s = svc_of(status, name);
	return s ? json_string_value(json_object_get(s, "state")) : "?";
}

static long long svc_int(json_t *status, const char *name, const char *field)
{
	return json_integer_value(json_object_get(svc_of(status, name), field));
}

/* Wait until name is in state (and, if not_pid, has a pid other than not_pid); the status (caller decrefs). */
static json_t *wait_state(const char *name, const char *state, double timeout, long long not_pid)
{
	double t0 = now_s();
	for (;;) {
		json_t *st = ctl_json("status");
		SCHECK(st, "no supervisor answers");
		if (!strcmp(svc_state(st, name), state) && (!not_pid || svc_int(st, name, "pid") != not_pid))
			return st;
		if (now_s() - t0 > timeout) {
			char *t = json_dumps(svc_of(st, name), JSON_COMPACT);
			SCHECK(0, "%s did not become %s within %g s: %s", name, state, timeout, t);
		}
		json_decref(st);
		sleep_s(0.01);
	}
}

static json_t *wait_ready(double timeout)
{
	double t0 = now_s();
	for (;;) {
		json_t *st = ctl_json("status");
		SCHECK(st, "no supervisor answers");
		if (json_is_true(json_object_get(st, "ready"))) return st;
		SCHECK(now_s() - t0 < timeout, "the supervisor never said ready");
		json_decref(st);
		sleep_s(0.02);
	}
}

/* Process state letter from /proc/PID/stat ('R', 'S', 'T', 'Z', ...), or 0 when there is no such process. */
static char proc_state(long pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return 0;
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] ? p[2] : '?';
}

static bool alive(long pid)
{
	char s = proc_state(pid);
	return s && s != 'Z' && s != 'X';
}

/* Wait until pid is gone (or a zombie of someone else); false on timeout. */
static bool wait_gone(long pid, double timeout)
{
	double t0 = now_s();
	while (alive(pid))
		if (now_s() - t0 > timeout) return false;
		else sleep_s(0.01);
	return true;
}

/* The n-th (0-based) mark "NAME EVENT PID TIME": its pid and time; false if there is none. */
static bool find_mark(const char *name, const char *event, int nth, long *pid, double *t)
{
	char *text = test_read_file(H.marks, NULL);
	if (!text) return false;
	bool found = false;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l && !found; l = strtok_r(NULL, "\n", &save)) {
		char n[64], e[64];
		long p;
		double tt;
		if (sscanf(l, "%63s %63s %ld %lf", n, e, &p, &tt) == 4 && !strcmp(n, name) && !strcmp(e, event) &&
		    nth-- == 0) {
			if (pid) *pid = p;
			if (t) *t = tt;
			found = true;
		}
	}
	free(text);
	return found;
}

/* find_mark, waiting up to timeout for the mark to be written (services write them as they start). */
static bool wait_mark(const char *name, const char *event, int nth, long *pid, double *t, double timeout)
{
	double t0 = now_s();
	while (!find_mark(name, event, nth, pid, t))
		if (now_s() - t0 > timeout) return false;
		else sleep_s(0.01);
	return true;
}

static int count_marks(const char *name, const char *event)
{
	int n = 0;
	while (find_mark(name, event, n, NULL, NULL)) n++;
	return n;
}

/* Events of type about service in sam.db; the data of the last one into data (may be NULL). */
static int count_events(const char *type, const char *service, char *data, size_t cap)
{
	char path[700], want[128];
	snprintf(path, sizeof path, "%s/sam.db", H.home);
	snprintf(want, sizeof want, "\"service\":\"%s\"", service);
	struct sam_db *db;
	struct sam_error err;
	if (sam_db_open(&db, path, &err)) return 0;
	struct sam_event *ev = NULL;
	size_t n = 0;
	int count = 0;
	if (sam_events_since(db, 0, 0, &ev, &n, &err) == 0)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(ev[i].type, type) && strstr(ev[i].data, want)) {
				count++;
				if (data) snprintf(data, cap, "%s", ev[i].data);
			}
	sam_events_free(ev, n);
	sam_db_close(db);
	return count;
}

static void set_mem(double mb)
{
	char t[64];
	int n = snprintf(t, sizeof t, "%.0f\n", mb);
	char tmp[700];
	snprintf(tmp, sizeof tmp, "%s.tmp", H.memfile);
	test_write_file(tmp, t, (size_t)n);
	rename(tmp, H.memfile);
}

/* Wait for the supervisor to exit; its exit status (or -1 on timeout). */
static int wait_exit(double timeout)
{
	double t0 = now_s();
	for (;;) {
		int st;
		pid_t r = waitpid(H.sup, &st, WNOHANG);
		if (r == H.sup) {
			H.sup = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		if (now_s() - t0 > timeout) return -1;
		sleep_s(0.01);
	}
}

static bool path_exists(const char *rel)
{
	char p[800];
	snprintf(p, sizeof p, "%s/%s", H.home, rel);
	return access(p, F_OK) == 0;
}

static json_t *services_json(void)
{
	char p[800];
	snprintf(p, sizeof p, "%s/run/services.json", H.home);
	json_error_t je;
	json_t *j = json_load_file(p, 0, &je);
	SCHECK(j && json_is_object(j), "services.json is not a JSON object: %s", je.text);
	return j;
}

/* ---- integration tests ------------------------------------------------------------------- */

TEST(sup_ordered_start_waits_for_readiness)
{
	harness_init();
	int pa = free_port(), pb = free_port();
	write_conf("[service.a]\ncommand = %s --port %d --ready-after 1.0\nready = http://127.0.0.1:%d/ready\n"
		   "[service.b]\ncommand = %s --port %d\nready = http://127.0.0.1:%d/ready\ndepends = a\n",
		   fake("a"), pa, pa, fake("b"), pb, pb);
	start_supervisor();
	json_t *st = wait_ready(20);
	SCHECK(!strcmp(svc_state(st, "a"), "ready") && !strcmp(svc_state(st, "b"), "ready"), "both ready");
	json_decref(st);
	double a_start, a_ready, b_start;
	SCHECK(find_mark("a", "started", 0, NULL, &a_start) && find_mark("a", "ready", 0, NULL, &a_ready) &&
		       find_mark("b", "started", 0, NULL, &b_start),
	       "marks missing");
	printf("    a started %.3f, a ready +%.3f s, b started +%.3f s\n", a_start, a_ready - a_start, b_start - a_start);
	SCHECK(b_start >= a_ready, "b started %.3f s before a was ready", a_ready - b_start);
	SCHECK(b_start - a_ready < 1.0, "b started %.3f s after a was ready (readiness is polled every 0.1 s)",
	       b_start - a_ready);
	CHECK_INT(count_marks("b", "started"), 1);
	CHECK(count_events("service.ready", "a", NULL, 0) == 1 && count_events("service.started", "b", NULL, 0) == 1);
}

TEST(sup_kill9_restarts_within_a_second)
{
	harness_init();
	int pa = free_port();
	write_conf("[service.a]\ncommand = %s --port %d\nready = http://127.0.0.1:%d/\nhealth = http://127.0.0.1:%d/\n",
		   fake("a"), pa, pa, pa);
	start_supervisor();
	json_t *st = wait_state("a", "ready", 10, 0);
	long long pid1 = svc_int(st, "a", "pid");
	json_decref(st);
	double t0 = now_s();
	CHECK(kill((pid_t)pid1, SIGKILL) == 0);
	st = wait_state("a", "ready", 10, pid1);
	double dt = now_s() - t0;
	long long pid2 = svc_int(st, "a", "pid");
	printf("    restart latency (kill -9 -> ready again): %.1f ms\n", dt * 1000);
	SCHECK(dt < 2.0, "restart took %.3f s", dt);
	CHECK_INT(svc_int(st, "a", "restarts"), 1);
	CHECK_INT(svc_int(st, "a", "last_exit"), 128 + 9);
	CHECK(pid2 != pid1 && alive(pid2) && !alive(pid1));
	json_decref(st);
	char data[512];
	CHECK_INT(count_events("service.crashed", "a", data, sizeof data), 1);
	CHECKF(strstr(data, "\"status\":137"), "crashed event: %s", data);
	CHECK_INT(count_events("service.restarted", "a", NULL, 0), 1);
	CHECK_INT(count_events("service.ready", "a", NULL, 0), 2);
	/* the pid file follows */
	char p[800];
	snprintf(p, sizeof p, "%s/run/a.pid", H.home);
	char *t = test_read_file(p, NULL);
	CHECK(t && atoll(t) == pid2);
	free(t);
}

TEST(sup_crash_loop_gives_up)
{
	harness_init();
	write_conf("[service.c]\ncommand = %s --crash-after 0.05\n[service.ok]\ncommand = %s\n", fake("c"), fake("ok"));
	start_supervisor();
	json_t *st = wait_state("c", "failed", 20, 0);
	const char *e = json_string_value(json_object_get(svc_of(st, "c"), "error"));
	SCHECK(e && strstr(e, "crash loop: 5 failures"), "error: %s", e ? e : "(none)");
	CHECK_INT(svc_int(st, "c", "restarts"), 4);
	CHECK_INT(svc_int(st, "c", "last_exit"), 3);
	CHECK_STR(svc_state(st, "ok"), "ready"); /* the rest runs */
	CHECK(json_is_true(json_object_get(st, "ready")));
	json_decref(st);
	CHECK_INT(count_marks("c", "started"), 5);
	/* backoff: immediately, then 0.5, 1, 2 s */
	double t[5];
	for (int i = 0; i < 5; i++) CHECK(find_mark("c", "started", i, NULL, &t[i]));
	printf("    restart gaps: %.2f %.2f %.2f %.2f s\n", t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3]);
	CHECK(t[1] - t[0] < 0.5 && t[2] - t[1] >= 0.5 && t[3] - t[2] >= 1.0 && t[4] - t[3] >= 2.0);
	char data[1024];
	CHECK_INT(count_events("service.failed", "c", data, sizeof data), 1);
	CHECKF(strstr(data, "crash loop"), "failed event: %s", data);
	CHECK_INT(count_events("service.crashed", "c", NULL, 0), 5);
	json_t *sj = services_json();
	CHECK_STR(json_string_value(json_object_get(json_object_get(sj, "c"), "state")), "failed");
	json_decref(sj);
	/* no more restarts on its own... */
	sleep_s(1.0);
	CHECK_INT(count_marks("c", "started"), 5);
	/* ...until `start` clears it */
	json_t *r = ctl_json("start c");
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	double t0 = now_s();
	while (count_marks("c", "started") < 6 && now_s() - t0 < 5) sleep_s(0.01);
	CHECK_INT(count_marks("c", "started"), 6);
}

TEST(sup_memory_guard_pauses_by_priority)
{
	harness_init();
	set_mem(4000);
	setenv("SAM_FAKE_MEMAVAILABLE_FILE", H.memfile, 1);
	int pl = free_port();
	write_conf("[supervisor]\nmemory_poll_interval = 0.2\n"
		   "[service.crit]\ncommand = %s\npriority = critical\n"
		   "[service.norm]\ncommand = %s\npriority = normal\n"
		   "[service.low]\ncommand = %s --port %d\npriority = low\nready = http://127.0.0.1:%d/\n"
		   "health = http://127.0.0.1:%d/\nhealth_interval = 0.1\nhealth_timeout = 0.2\n"
		   "[service.bg]\ncommand = %s\npriority = background\n"
		   "[service.keep]\ncommand = %s\npriority = low\npausable = false\n",
		   fake("crit"), fake("norm"), fake("low"), pl, pl, pl, fake("bg"), fake("keep"));
	start_supervisor();
	json_t *st = wait_ready(10);
	long crit = (long)svc_int(st, "crit", "pid"), norm = (long)svc_int(st, "norm", "pid");
	long low = (long)svc_int(st, "low", "pid"), bg = (long)svc_int(st, "bg", "pid");
	long keep = (long)svc_int(st, "keep", "pid");
	CHECK_STR(json_string_value(json_object_get(json_object_get(st, "memory"), "level")), "ok");
	json_decref(st);

	set_mem(1900); /* below 2.0 GB: background and low */
	json_decref(wait_state("low", "paused", 5, 0));
	st = wait_state("bg", "paused", 5, 0);
	CHECK(proc_state(low) == 'T' && proc_state(bg) == 'T');
	CHECK(proc_state(norm) != 'T' && proc_state(crit) != 'T');
	CHECK_STR(svc_state(st, "norm"), "ready");
	CHECK_STR(svc_state(st, "keep"), "ready"); /* low, but pausable = false */
	CHECK(proc_state(keep) != 'T');
	CHECK(json_is_true(json_object_get(svc_of(st, "low"), "paused")));
	CHECK_STR(json_string_value(json_object_get(json_object_get(st, "memory"), "level")), "medium");
	json_decref(st);

	set_mem(1400); /* below 1.5 GB: normal too */
	json_decref(wait_state("norm", "paused", 5, 0));
	CHECK(proc_state(norm) == 'T' && proc_state(crit) != 'T');

	set_mem(500); /* below 1.0 GB: everything but critical */
	sleep_s(0.6);
	st = ctl_json("status");
	CHECK_STR(svc_state(st, "crit"), "ready");
	CHECK_STR(json_string_value(json_object_get(json_object_get(st, "memory"), "level")), "critical");
	CHECK(proc_state(crit) != 'T');
	json_decref(st);

	set_mem(1600); /* above 1.5 GB but within the hysteresis (0.2 GB): normal stays paused */
	sleep_s(0.8);
	st = ctl_json("status");
	CHECK_STR(svc_state(st, "norm"), "paused");
	json_decref(st);
	CHECK(proc_state(norm) == 'T');

	set_mem(1800); /* >= 1.5 + 0.2 GB: normal resumes; low and background stay */
	json_decref(wait_state("norm", "ready", 5, 0));
	CHECK(proc_state(norm) != 'T' && proc_state(low) == 'T');
	set_mem(2150); /* above 2.0 GB, within the hysteresis */
	sleep_s(0.8);
	st = ctl_json("status");
	CHECK_STR(svc_state(st, "low"), "paused");
	json_decref(st);

	set_mem(2300); /* >= 2.2 GB: all back */
	json_decref(wait_state("low", "ready", 5, 0));
	st = wait_state("bg", "ready", 5, 0);
	CHECK(proc_state(low) != 'T' && proc_state(bg) != 'T');
	/* paused for seconds with a 0.1 s health check, yet never restarted: paused services are not checked */
	CHECK_INT(svc_int(st, "low", "restarts"), 0);
	CHECK_INT(svc_int(st, "low", "pid"), low);
	json_decref(st);
	CHECK_INT(count_events("service.paused", "low", NULL, 0), 1);
	CHECK_INT(count_events("service.resumed", "low", NULL, 0), 1);
	CHECK_INT(count_events("service.paused", "norm", NULL, 0), 1);
	CHECK_INT(count_events("service.paused", "crit", NULL, 0), 0);
	/* the low service answers again once resumed */
	sleep_s(0.5);
	st = ctl_json("status");
	CHECK_STR(svc_state(st, "low"), "ready");
	json_decref(st);
}

TEST(sup_shutdown_leaves_no_process)
{
	harness_init();
	set_mem(4000);
	setenv("SAM_FAKE_MEMAVAILABLE_FILE", H.memfile, 1);
	int pa = free_port();
	write_conf("[supervisor]\nmemory_poll_interval = 0.2\n"
		   "[service.a]\ncommand = %s --port %d\nready = http://127.0.0.1:%d/\n"
		   "[service.b]\ncommand = %s --ignore-term\ndepends = a\nstop_timeout = 1\n"
		   "[service.c]\ncommand = %s --grandchild\npriority = low\n"
		   "[service.d]\ncommand = %s --grandchild\n",
		   fake("a"), pa, pa, fake("b"), fake("c"), fake("d"));
	start_supervisor();
	json_decref(wait_ready(10));
	set_mem(1900);
	json_t *st = wait_state("c", "paused", 5, 0);
	long pids[4];
	const char *names[4] = { "a", "b", "c", "d" };
	for (int i = 0; i < 4; i++) pids[i] = (long)svc_int(st, names[i], "pid");
	json_decref(st);
	long gc, gd;
	CHECK(wait_mark("c", "grandchild", 0, &gc, NULL, 5) && wait_mark("d", "grandchild", 0, &gd, NULL, 5));
	CHECK(alive(gc) && alive(gd) && proc_state(pids[2]) == 'T');

	char *r = ctl("shutdown");
	CHECK(r);
	CHECK_STR(r, "{\"ok\":true}\n");
	free(r);
	double t0 = now_s();
	int rc = wait_exit(20);
	printf("    shutdown took %.2f s (b ignores SIGTERM, stop_timeout 1 s)\n", now_s() - t0);
	SCHECK(rc == 0, "supervisor exit status %d", rc);
	for (int i = 0; i < 4; i++)
		SCHECK(proc_state(pids[i]) == 0, "%s (pid %ld) is still there (state %c)", names[i], pids[i],
		       proc_state(pids[i]));
	SCHECK(wait_gone(gc, 2) && wait_gone(gd, 2), "a grandchild survived");
	/* reverse dependency order: b (which depends on a) was gone before a got SIGTERM */
	double b_term, a_term;
	CHECK(find_mark("b", "term-ignored", 0, NULL, &b_term) && find_mark("a", "term", 0, NULL, &a_term));
	SCHECK(a_term - b_term >= 0.9, "a got SIGTERM %.2f s after b", a_term - b_term);
	CHECK(find_mark("c", "term", 0, NULL, NULL)); /* the paused one was woken to handle SIGTERM */
	CHECK(!path_exists("run/samd.sock") && !path_exists("run/samd.pid"));
	for (int i = 0; i < 4; i++) {
		char rel[64];
		snprintf(rel, sizeof rel, "run/%s.pid", names[i]);
		CHECK(!path_exists(rel));
	}
	json_t *sj = services_json();
	for (int i = 0; i < 4; i++) {
		json_t *o = json_object_get(sj, names[i]);
		CHECK_STR(json_string_value(json_object_get(o, "state")), "stopped");
		CHECK_INT(json_integer_value(json_object_get(o, "pid")), 0);
	}
	json_decref(sj);
	/* nobody else is left either */
	kill_strays();
}

TEST(sup_restart_replaces_leftovers)
{
	harness_init();
	int pa = free_port(), pb = free_port();
	write_conf("[service.a]\ncommand = %s --port %d\nready = http://127.0.0.1:%d/\n"
		   "[service.b]\ncommand = %s --port %d --ignore-term\nready = http://127.0.0.1:%d/\nstop_timeout = 1\n",
		   fake("a"), pa, pa, fake("b"), pb, pb);
	start_supervisor();
	json_t *st = wait_ready(10);
	long a1 = (long)svc_int(st, "a", "pid"), b1 = (long)svc_int(st, "b", "pid");
	json_decref(st);
	kill(H.sup, SIGKILL);
	waitpid(H.sup, NULL, 0);
	H.sup = 0;
	/* a follows its supervisor (PR_SET_PDEATHSIG); b ignores SIGTERM and stays behind */
	SCHECK(wait_gone(a1, 3), "a (pid %ld) outlived its supervisor", a1);
	sleep_s(0.3);
	CHECK(alive(b1));
	start_supervisor();
	st = wait_ready(15);
	long a2 = (long)svc_int(st, "a", "pid"), b2 = (long)svc_int(st, "b", "pid");
	CHECK_STR(svc_state(st, "a"), "ready");
	CHECK_STR(svc_state(st, "b"), "ready");
	json_decref(st);
	CHECK(a2 != a1 && b2 != b1 && alive(a2) && alive(b2));
	SCHECK(!alive(b1), "the leftover b (pid %ld) is still alive", b1);
	char *log = test_read_file(H.log, NULL);
	SCHECK(log && strstr(log, "replacing leftover pid"), "no 'replacing leftover' in the log");
	free(log);
	/* the new b got the port only after the old one was gone */
	double b1_ignored, b2_start;
	CHECK(find_mark("b", "term-ignored", 0, NULL, &b1_ignored) && find_mark("b", "started", 1, NULL, &b2_start));
	CHECK(b2_start > b1_ignored);
}

TEST(sup_port_held_by_stranger)
{
	harness_init();
	int port = free_port(), po = free_port();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* the supervisor must not inherit it */
	struct sockaddr_in a = { 0 };
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 4) == 0);
	write_conf("[service.s]\ncommand = %s --port %d\nport = %d\nready = http://127.0.0.1:%d/\n"
		   "[service.o]\ncommand = %s --port %d\nport = %d\nready = http://127.0.0.1:%d/\n",
		   fake("s"), port, port, port, fake("o"), po, po, po);
	start_supervisor();
	json_t *st = wait_ready(10);
	char want[128];
	snprintf(want, sizeof want, "port %d is in use by another process (pid %ld", port, (long)getpid());
	const char *e = json_string_value(json_object_get(svc_of(st, "s"), "error"));
	CHECK_STR(svc_state(st, "s"), "failed");
	SCHECK(e && strstr(e, want), "error '%s' lacks '%s'", e ? e : "", want);
	CHECK_STR(svc_state(st, "o"), "ready");
	json_decref(st);
	json_t *sj = services_json();
	json_t *so = json_object_get(sj, "s");
	CHECK_STR(json_string_value(json_object_get(so, "state")), "failed");
	CHECK(strstr(json_string_value(json_object_get(so, "error")), want));
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	CHECK_STR(json_string_value(json_object_get(so, "url")), url);
	json_decref(sj);
	sleep_s(0.5);
	CHECK_INT(count_marks("s", "started"), 0); /* never started, never retried */
	char data[512];
	CHECK_INT(count_events("service.failed", "s", data, sizeof data), 1);
	/* the stranger leaves: `start` succeeds */
	close(fd);
	json_t *r = ctl_json("start s");
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	json_decref(wait_state("s", "ready", 5, 0));
}

TEST(sup_second_supervisor_refuses)
{
	harness_init();
	write_conf("[service.a]\ncommand = %s\n", fake("a"));
	pid_t first = start_supervisor();
	json_decref(wait_ready(10));
	struct test_proc p;
	const char *argv[] = { H.supbin, "--foreground", NULL };
	test_run(&p, argv, 10);
	CHECK_INT(p.status, 1);
	char want[700];
	snprintf(want, sizeof want, "already running for %s (pid %ld)", H.home, (long)first);
	CHECKF(strstr(p.err, want), "stderr: %s", p.err);
	test_proc_free(&p);
	/* the same through `sam supervise`, which execs sam-supervise */
	test_run_sam(&p, 10, "supervise", "--foreground", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "already running"), "stderr: %s", p.err);
	test_proc_free(&p);
	/* the first one is unharmed */
	json_t *r = ctl_json("ping");
	CHECK_INT(json_integer_value(json_object_get(r, "pid")), first);
	json_decref(r);
	CHECK(path_exists("run/samd.sock") && path_exists("run/samd.pid"));
}

TEST(sup_unhealthy_service_is_restarted)
{
	harness_init();
	int pa = free_port();
	write_conf("[service.a]\ncommand = %s --port %d --fail-health-after 0.8\nready = http://127.0.0.1:%d/\n"
		   "health = http://127.0.0.1:%d/health\nhealth_interval = 0.2\nhealth_timeout = 0.5\nstop_timeout = 2\n",
		   fake("a"), pa, pa, pa);
	start_supervisor();
	json_t *st = wait_state("a", "ready", 10, 0);
	long long pid1 = svc_int(st, "a", "pid");
	json_decref(st);
	double t0 = now_s();
	st = wait_state("a", "ready", 10, pid1);
	double dt = now_s() - t0;
	printf("    unhealthy -> restarted and ready after %.2f s (fails at 0.8 s, 3 checks 0.2 s apart)\n", dt);
	CHECK(svc_int(st, "a", "restarts") >= 1);
	json_decref(st);
	CHECK(!alive(pid1));
	char data[512];
	CHECK(count_events("service.crashed", "a", data, sizeof data) >= 1);
	CHECKF(strstr(data, "unhealthy: 3 health checks failed (last: HTTP 500)"), "crashed: %s", data);
	CHECK(count_events("service.restarted", "a", NULL, 0) >= 1);
	CHECK(find_mark("a", "term", 0, NULL, NULL)); /* stopped with SIGTERM, not killed */
}

TEST(sup_notify_readiness_and_timeouts)
{
	harness_init();
	write_conf("[service.n]\ncommand = %s --notify --ready-after 0.7\nready = notify\n"
		   "[service.after]\ncommand = %s\ndepends = n\n"
		   "[service.mute]\ncommand = %s\nready = notify\nready_timeout = 1\n"
		   "[service.blocked]\ncommand = %s\ndepends = mute\n"
		   "[service.free]\ncommand = %s\n",
		   fake("n"), fake("after"), fake("mute"), fake("blocked"), fake("free"));
	double t0 = wall_s();
	start_supervisor();
	sleep_s(0.3);
	json_t *st = ctl_json("status");
	CHECK_STR(svc_state(st, "n"), "starting");
	CHECK_STR(svc_state(st, "after"), "waiting");
	CHECK_STR(svc_state(st, "free"), "ready");
	json_decref(st);
	json_decref(wait_state("after", "ready", 5, 0));
	double n_ready, after_start;
	char *mk = test_read_file(H.marks, NULL);
	SCHECK(wait_mark("n", "ready", 0, NULL, &n_ready, 5) && wait_mark("after", "started", 0, NULL, &after_start, 5),
	       "marks:\n%s", mk ? mk : "");
	free(mk);
	SCHECK(after_start >= n_ready && after_start - n_ready < 0.5, "after started %.3f s after n was ready",
	       after_start - n_ready);
	st = wait_state("blocked", "failed", 5, 0);
	CHECK_STR(svc_state(st, "mute"), "failed");
	const char *e = json_string_value(json_object_get(svc_of(st, "mute"), "error"));
	CHECKF(e && strstr(e, "not ready within 1 s"), "mute: %s", e ? e : "");
	e = json_string_value(json_object_get(svc_of(st, "blocked"), "error"));
	CHECKF(e && strstr(e, "dependency mute failed"), "blocked: %s", e ? e : "");
	CHECK_STR(svc_state(st, "free"), "ready");
	CHECK(json_is_true(json_object_get(st, "ready")));
	json_decref(st);
	CHECK_INT(count_marks("blocked", "started"), 0);
	CHECK(count_events("service.failed", "mute", NULL, 0) == 1 && count_events("service.failed", "blocked", NULL, 0) == 1);
	(void)t0;
}

TEST(sup_files_logs_and_rotation)
{
	harness_init();
	int pa = free_port();
	write_conf("[supervisor]\nlog_max_bytes = 4096\nlog_keep = 2\n"
		   "[service.a]\ncommand = %s --port %d --print-lines 200\nready = http://127.0.0.1:%d/\nport = %d\n",
		   fake("a"), pa, pa, pa);
	pid_t sup = start_supervisor();
	json_t *st = wait_state("a", "ready", 10, 0);
	long pid = (long)svc_int(st, "a", "pid");
	json_decref(st);
	/* samd.pid, a.pid */
	char p[800];
	snprintf(p, sizeof p, "%s/run/samd.pid", H.home);
	char *t = test_read_file(p, NULL);
	CHECK(t && atol(t) == sup);
	free(t);
	snprintf(p, sizeof p, "%s/run/a.pid", H.home);
	t = test_read_file(p, NULL);
	CHECK(t && atol(t) == pid);
	free(t);
	/* services.json: the contract's fields with the right types */
	json_t *sj = services_json();
	json_t *a = json_object_get(sj, "a");
	CHECK(json_is_string(json_object_get(a, "name")) && json_is_integer(json_object_get(a, "pid")) &&
	      json_is_integer(json_object_get(a, "port")) && json_is_string(json_object_get(a, "url")) &&
	      json_is_string(json_object_get(a, "state")) && json_is_integer(json_object_get(a, "restarts")) &&
	      json_object_get(a, "last_exit") && json_is_string(json_object_get(a, "priority")));
	CHECK_INT(json_integer_value(json_object_get(a, "pid")), pid);
	CHECK_STR(json_string_value(json_object_get(a, "state")), "ready");
	CHECK(json_is_null(json_object_get(a, "last_exit")));
	CHECK(json_is_object(json_object_get(sj, "api")) && json_is_object(json_object_get(sj, "train")));
	json_decref(sj);
	/* logs: timestamped lines, rotated by size, 2 kept */
	double t0 = now_s();
	while (!path_exists("logs/a.log.2") && now_s() - t0 < 5) sleep_s(0.05);
	CHECK(path_exists("logs/a.log") && path_exists("logs/a.log.1") && path_exists("logs/a.log.2"));
	CHECK(!path_exists("logs/a.log.3"));
	struct stat sb;
	snprintf(p, sizeof p, "%s/logs/a.log.1", H.home);
	CHECK(stat(p, &sb) == 0 && sb.st_size <= 4096 && sb.st_size > 2000);
	snprintf(p, sizeof p, "%s/logs/a.log", H.home);
	t = test_read_file(p, NULL);
	CHECK(t);
	char *save = NULL;
	int lines = 0;
	for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++)
		CHECKF(strlen(l) > 25 && l[4] == '-' && l[10] == 'T' && l[23] == 'Z' && l[24] == ' ',
		       "not timestamped: %s", l);
	CHECK(lines > 0);
	free(t);
	t = test_read_file(H.log, NULL);
	CHECK(t && strstr(t, "a: started as pid"));
	free(t);
}

TEST(sup_control_protocol)
{
	harness_init();
	int pa = free_port();
	write_conf("[service.a]\ncommand = %s --port %d\nready = http://127.0.0.1:%d/\nport = %d\n"
		   "[service.job]\ncommand = %s --exit-after 0.2\none_shot = true\n",
		   fake("a"), pa, pa, pa, fake("job"));
	pid_t sup = start_supervisor();
	json_decref(wait_ready(10));

	json_t *r = ctl_json("ping");
	CHECK(json_is_true(json_object_get(r, "ok")));
	CHECK_INT(json_integer_value(json_object_get(r, "pid")), sup);
	CHECK(json_is_string(json_object_get(r, "version")));
	json_decref(r);

	r = ctl_json("status");
	CHECK(json_is_true(json_object_get(r, "ok")) && json_integer_value(json_object_get(r, "pid")) == sup);
	CHECK(json_is_real(json_object_get(r, "uptime_s")) && json_is_boolean(json_object_get(r, "ready")));
	json_t *m = json_object_get(r, "memory");
	CHECK(json_is_number(json_object_get(m, "available_mb")) && json_is_string(json_object_get(m, "level")));
	static const char *fields[] = { "name", "state", "enabled", "priority", "pid", "port", "url", "restarts",
					"last_exit", "since", "paused", "one_shot" };
	json_t *a = svc_of(r, "a");
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		CHECKF(json_object_get(a, fields[i]), "status lacks %s", fields[i]);
	CHECK_STR(json_string_value(json_object_get(svc_of(r, "api"), "state")), "disabled");
	CHECK_STR(json_string_value(json_object_get(svc_of(r, "job"), "state")), "stopped");
	CHECK(json_is_true(json_object_get(svc_of(r, "job"), "one_shot")));
	json_decref(r);

	char *raw = ctl("start nope");
	CHECK_STR(raw, "{\"ok\":false,\"error\":\"unknown service 'nope'\"}\n");
	free(raw);
	r = ctl_json("bogus");
	CHECK(json_is_false(json_object_get(r, "ok")) && json_is_string(json_object_get(r, "error")));
	json_decref(r);
	r = ctl_json("start");
	CHECK(json_is_false(json_object_get(r, "ok")));
	json_decref(r);
	r = ctl_json("start notifier");
	CHECK(json_is_false(json_object_get(r, "ok")));
	CHECK(strstr(json_string_value(json_object_get(r, "error")), "disabled"));
	json_decref(r);

	/* stop holds it down */
	r = ctl_json("stop a");
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	json_decref(wait_state("a", "stopped", 5, 0));
	CHECK(!path_exists("run/a.pid"));
	sleep_s(0.5);
	r = ctl_json("status");
	CHECK_STR(svc_state(r, "a"), "stopped");
	CHECK(json_is_true(json_object_get(r, "ready"))); /* a held-down service does not hold up "ready" */
	json_decref(r);
	/* start */
	r = ctl_json("start a");
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	json_t *st = wait_state("a", "ready", 5, 0);
	long long pid1 = svc_int(st, "a", "pid");
	json_decref(st);
	/* restart: a new process, counted */
	r = ctl_json("restart a");
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	st = wait_state("a", "ready", 5, pid1);
	CHECK_INT(svc_int(st, "a", "restarts"), 1);
	json_decref(st);
	/* a one-shot job: started on demand, done when it exits 0, never restarted */
	r = ctl_json("start job");
	CHECK(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	st = wait_state("job", "done", 5, 0);
	CHECK_INT(svc_int(st, "job", "last_exit"), 0);
	json_decref(st);
	sleep_s(0.3);
	CHECK_INT(count_marks("job", "started"), 1);
	/* a line without its newline, then EOF, is still answered; a long line is refused */
	raw = ctl("ping");
	CHECK(raw && strstr(raw, "\"ok\":true"));
	free(raw);
	char big[5000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	r = ctl_json(big);
	CHECK(json_is_false(json_object_get(r, "ok")));
	json_decref(r);
	/* shutdown */
	raw = ctl("shutdown");
	CHECK_STR(raw, "{\"ok\":true}\n");
	free(raw);
	CHECK_INT(wait_exit(10), 0);
	CHECK(!path_exists("run/samd.sock") && !path_exists("run/samd.pid"));
	CHECK(ctl("ping") == NULL);
}

TEST(sup_sd_notify_ready_watchdog_stopping)
{
	harness_init();
	char name[64];
	snprintf(name, sizeof name, "@sam-test-notify-%ld", (long)getpid());
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un sa = { 0 };
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
	CHECK(bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))) == 0);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "200000", 1);
	int pa = free_port();
	write_conf("[service.a]\ncommand = %s --port %d --ready-after 0.3\nready = http://127.0.0.1:%d/\n", fake("a"),
		   pa, pa);
	double t0 = now_s();
	start_supervisor();
	struct timeval tv = { 0, 100000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	double ready_at = -1;
	int watchdogs = 0;
	bool stopping = false, asked = false;
	while (now_s() - t0 < 10 && !stopping) {
		char buf[256];
		ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
		if (n > 0) {
			buf[n] = 0;
			if (!strncmp(buf, "READY=1", 7)) ready_at = now_s() - t0;
			if (!strcmp(buf, "WATCHDOG=1")) watchdogs++;
			if (!strcmp(buf, "STOPPING=1")) stopping = true;
		}
		if (ready_at > 0 && watchdogs >= 5 && !asked) {
			CHECK(kill(H.sup, SIGTERM) == 0);
			asked = true;
		}
	}
	printf("    READY=1 after %.2f s, %d watchdog pings\n", ready_at, watchdogs);
	CHECK(ready_at >= 0.3);
	CHECK(watchdogs >= 5);
	CHECK(stopping);
	CHECK_INT(wait_exit(10), 0);
	/* the service did not see NOTIFY_SOCKET (it is not the unit's main process) */
	CHECK_INT(count_marks("a", "started"), 1);
	CHECK_INT(count_marks("a", "saw-notify-socket"), 0);
	close(fd);
}

TEST(sup_bad_config_is_an_error)
{
	harness_init();
	write_conf("[service.a]\ncommand = x\ndepends = b\n[service.b]\ncommand = y\ndepends = a\n");
	struct test_proc p;
	const char *argv[] = { H.supbin, "--foreground", NULL };
	test_run(&p, argv, 10);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "dependency cycle: a -> b -> a"), "stderr: %s", p.err);
	test_proc_free(&p);
	write_conf("[service.a]\ncommand = x\npriority = top\n");
	test_run(&p, argv, 10);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "service.a.priority = 'top'"), "stderr: %s", p.err);
	test_proc_free(&p);
	CHECK(!path_exists("run/samd.sock") && !path_exists("run/samd.pid"));
	/* usage errors are 2, through `sam supervise` too */
	test_run_sam(&p, 10, "supervise", "--bogus", NULL);
	CHECK_INT(p.status, 2);
	CHECKF(strstr(p.err, "usage: sam supervise"), "stderr: %s", p.err);
	test_proc_free(&p);
	test_run_sam(&p, 10, "supervise", "--help", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "usage: sam supervise"));
	test_proc_free(&p);
}

TEST(sup_exec_failure_is_reported)
{
	harness_init();
	write_conf("[service.ghost]\ncommand = /nonexistent/program --x\n[service.ok]\ncommand = %s\n", fake("ok"));
	start_supervisor();
	json_t *st = wait_ready(10);
	CHECK_STR(svc_state(st, "ghost"), "failed");
	const char *e = json_string_value(json_object_get(svc_of(st, "ghost"), "error"));
	CHECKF(e && strstr(e, "cannot execute /nonexistent/program"), "error: %s", e ? e : "");
	CHECK_INT(svc_int(st, "ghost", "restarts"), 0);
	json_decref(st);
}
