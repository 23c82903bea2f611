/* api_helpers.c - see api_helpers.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <curl/curl.h>

#include "api_helpers.h"
#include "test.h"

/* ---- servers --------------------------------------------------------------- */

#define MAX_SERVERS 16

/* Servers this test process started and has not reaped: killed at exit and on the runner's timeout alarm. */
static volatile pid_t live[MAX_SERVERS];
static char live_log[MAX_SERVERS][512];
static bool hooks_installed;
static int n_started;

static void kill_live(void)
{
	for (int i = 0; i < MAX_SERVERS; i++)
		if (live[i] > 0) kill(live[i], SIGKILL);
}

static void reap_at_exit(void)
{
	for (int i = 0; i < MAX_SERVERS; i++) {
		if (live[i] <= 0) continue;
		/* a server still running at exit means the test failed before api_stop: show what it said */
		kill(live[i], SIGKILL);
		while (waitpid(live[i], NULL, 0) < 0 && errno == EINTR) {
		}
		live[i] = 0;
		struct api_server s;
		memset(&s, 0, sizeof s);
		memcpy(s.log, live_log[i], sizeof s.log); /* same size, NUL-terminated */
		api_dump_log(&s);
	}
}

static void on_alarm(int sig)
{
	kill_live(); /* async-signal-safe; then die of the alarm as the runner expects */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_hooks(void)
{
	if (hooks_installed) return;
	hooks_installed = true;
	atexit(reap_at_exit); /* registered after the runner's tmpdir cleanup, so it runs first */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void track(pid_t pid, const char *log, bool add)
{
	for (int i = 0; i < MAX_SERVERS; i++) {
		if (add && live[i] <= 0) {
			live[i] = pid;
			snprintf(live_log[i], sizeof live_log[i], "%s", log);
			return;
		}
		if (!add && live[i] == pid) {
			live[i] = 0;
			return;
		}
	}
	if (add) test_fail(__FILE__, __LINE__, "too many api servers in one test");
}

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

void api_dump_log(const struct api_server *s)
{
	size_t len = 0;
	char *text = test_read_file(s->log, &len);
	if (!text) return;
	size_t from = len > 3000 ? len - 3000 : 0;
	fprintf(stderr, "    --- sam api log (%s), last %zu bytes ---\n%s\n    --- end of log ---\n", s->log,
		len - from, text + from);
	free(text);
}

static void fail_server(struct api_server *s, int line, const char *what)
{
	api_dump_log(s);
	test_fail(__FILE__, line, "sam api: %s", what);
}

/* Start `sam CMD... --port 0 --port-file F PRE... ARGS...` and wait for its port file. */
static void spawn(struct api_server *s, const char *const *cmd, const char *const *pre, const char *const *args,
		  const char *const *env)
{
	install_hooks();
	memset(s, 0, sizeof *s);
	int n = ++n_started;
	char home[512];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	mkdir(home, 0700);
	setenv("SAM_HOME", home, 1); /* the test's own library calls use the same state */
	snprintf(s->port_file, sizeof s->port_file, "%s/port-%d", test_tmpdir(), n);
	snprintf(s->log, sizeof s->log, "%s/%s-%d.log", test_tmpdir(), cmd[0], n);
	unlink(s->port_file);

	const char *argv[64];
	int k = 0;
	argv[k++] = test_sam_bin();
	for (int i = 0; cmd[i] && k < 8; i++) argv[k++] = cmd[i];
	argv[k++] = "--port";
	argv[k++] = "0";
	argv[k++] = "--port-file";
	argv[k++] = s->port_file;
	for (int i = 0; pre && pre[i] && k < 63; i++) argv[k++] = pre[i];
	for (int i = 0; args && args[i] && k < 63; i++) argv[k++] = args[i];
	argv[k] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, whatever kills it */
		if (getppid() == 1) _exit(126);
#endif
		signal(SIGALRM, SIG_DFL);
		alarm(0);
		int in = open("/dev/null", O_RDONLY);
		int out = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (in < 0 || out < 0) _exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		setenv("SAM_HOME", home, 1);
		setenv("SAM_LOG", "warn", 1);
		for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	track(pid, s->log, true);

	/* the port file appears once the server listens */
	double t0 = now_s();
	for (;;) {
		char *p = test_read_file(s->port_file, NULL);
		if (p) {
			s->port = atoi(p);
			free(p);
			if (s->port > 0) break;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			track(pid, NULL, false);
			s->pid = 0;
			fail_server(s, __LINE__, "exited before listening");
		}
		if (now_s() - t0 > 20) fail_server(s, __LINE__, "no port file after 20 s");
		sleep_ms(20);
	}
	snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
}

static bool wait_for(struct api_server *s, const char *path, double timeout_s)
{
	double t0 = now_s();
	while (now_s() - t0 < timeout_s) {
		struct api_resp r;
		api_request(s, "GET", path, NULL, NULL, 5, &r);
		long st = r.status;
		api_resp_free(&r);
		if (st == 200) return true;
		sleep_ms(25);
	}
	return false;
}

/* -m MODEL -c 512: the api's arguments before the caller's */
#define API_PRE(model) ((const char *const[]){ "-m", (model) ? (model) : test_model("stories260K.gguf"), "-c", "512", NULL })

void api_start(struct api_server *s, const char *model, const char *const *args, const char *const *env)
{
	spawn(s, (const char *const[]){ "api", NULL }, API_PRE(model), args, env);
	if (!wait_for(s, "/api/ready", 20)) fail_server(s, __LINE__, "/api/ready did not answer 200 within 20 s");
}

void api_start_unready(struct api_server *s, const char *model, const char *const *args, const char *const *env)
{
	spawn(s, (const char *const[]){ "api", NULL }, API_PRE(model), args, env);
	if (!wait_for(s, "/api/health", 20)) fail_server(s, __LINE__, "/api/health did not answer 200 within 20 s");
}

void svc_start(struct api_server *s, const char *const *cmd, const char *const *args, const char *const *env)
{
	spawn(s, cmd, NULL, args, env);
	if (!wait_for(s, "/health", 20)) fail_server(s, __LINE__, "/health did not answer 200 within 20 s");
}

void api_kill(struct api_server *s)
{
	if (s->pid <= 0) return;
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {}
	track(s->pid, NULL, false);
	s->pid = 0;
}

void api_stop(struct api_server *s)
{
	if (s->pid <= 0) return;
	kill(s->pid, SIGTERM);
	int st = 0;
	double t0 = now_s();
	bool killed = false;
	for (;;) {
		pid_t w = waitpid(s->pid, &st, WNOHANG);
		if (w == s->pid) break;
		if (w < 0 && errno != EINTR) break;
		if (!killed && now_s() - t0 > 15) {
			kill(s->pid, SIGKILL);
			killed = true;
		}
		sleep_ms(20);
	}
	track(s->pid, NULL, false);
	s->pid = 0;
	if (killed) fail_server(s, __LINE__, "did not exit within 15 s of SIGTERM");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char what[128];
		if (WIFEXITED(st)) snprintf(what, sizeof what, "exited with status %d after SIGTERM (sanitizer report?)", WEXITSTATUS(st));
		else snprintf(what, sizeof what, "died of signal %d after SIGTERM", WTERMSIG(st));
		fail_server(s, __LINE__, what);
	}
}

/* ---- HTTP ---------------------------------------------------------------------- */

struct grow {
	char *s;
	size_t n, cap;
};

static void grow_add(struct grow *g, const char *p, size_t n)
{
	if (g->n + n + 1 > g->cap) {
		g->cap = (g->n + n + 1) * 2;
		g->s = realloc(g->s, g->cap);
		if (!g->s) abort();
	}
	memcpy(g->s + g->n, p, n);
	g->n += n;
	g->s[g->n] = 0;
}

struct xfer {
	struct grow body, head;
	bool (*stop)(const char *, size_t, void *);
	void *cls;
	bool aborted;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	grow_add(&x->body, p, size * nmemb);
	if (x->stop && x->stop(x->body.s, x->body.n, x->cls)) {
		x->aborted = true;
		return 0; /* ends the transfer: the connection is closed */
	}
	return size * nmemb;
}

static size_t on_head(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	grow_add(&x->head, p, size * nmemb);
	return size * nmemb;
}

void api_request_until(const struct api_server *s, const char *method, const char *path, const char *body,
		       const char *const *headers, int timeout_s, bool (*stop)(const char *body, size_t len, void *cls),
		       void *cls, struct api_resp *r)
{
	memset(r, 0, sizeof *r);
	struct xfer x = { .stop = stop, .cls = cls };
	grow_add(&x.body, "", 0);
	grow_add(&x.head, "", 0);
	CURL *c = curl_easy_init();
	if (!c) test_fail(__FILE__, __LINE__, "curl_easy_init failed");
	char url[1024];
	snprintf(url, sizeof url, "%s%s", s->url, path);
	struct curl_slist *hl = NULL;
	hl = curl_slist_append(hl, "Expect:");
	if (body) hl = curl_slist_append(hl, "Content-Type: application/json");
	for (int i = 0; headers && headers[i]; i++) hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(timeout_s > 0 ? timeout_s : 60));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (strcmp(method, body ? "POST" : "GET")) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	double t0 = now_s();
	curl_easy_perform(c);
	r->secs = now_s() - t0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	r->body = x.body.s;
	r->len = x.body.n;
	r->head = x.head.s;
	r->aborted = x.aborted;
}

void api_request(const struct api_server *s, const char *method, const char *path, const char *body,
		 const char *const *headers, int timeout_s, struct api_resp *r)
{
	api_request_until(s, method, path, body, headers, timeout_s, NULL, NULL, r);
}

void api_get(const struct api_server *s, const char *path, struct api_resp *r)
{
	api_request(s, "GET", path, NULL, NULL, 0, r);
}

void api_post(const struct api_server *s, const char *path, const char *body, struct api_resp *r)
{
	api_request(s, "POST", path, body, NULL, 0, r);
}

void api_resp_free(struct api_resp *r)
{
	free(r->body);
	free(r->head);
	memset(r, 0, sizeof *r);
}

const char *api_header(const struct api_resp *r, const char *name, char *buf, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = r->head; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t') v++;
			size_t vl = (size_t)(p + len - v);
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
			snprintf(buf, cap, "%.*s", (int)vl, v);
			return buf;
		}
		p = eol ? eol + 1 : p + len;
	}
	return NULL;
}

json_t *api_json(const struct api_resp *r)
{
	json_error_t je;
	json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, &je);
	if (!j) test_fail(__FILE__, __LINE__, "response (status %ld) is not JSON (%s): %.500s", r->status, je.text,
			  r->body ? r->body : "");
	return j;
}

const char *api_check_error(const struct api_resp *r, long status, const char *where)
{
	if (r->status != status)
		test_fail(__FILE__, __LINE__, "%s: status %ld, expected %ld; body: %.500s", where, r->status, status,
			  r->body ? r->body : "");
	char ct[128];
	if (!api_header(r, "Content-Type", ct, sizeof ct) || strncmp(ct, "application/json", 16))
		test_fail(__FILE__, __LINE__, "%s: error is not application/json", where);
	json_t *j = api_json(r);
	const char *m = jstr(j, "error.message");
	if (!m || !*m) test_fail(__FILE__, __LINE__, "%s: no error.message in %.300s", where, r->body);
	long long code = jint(j, "error.code");
	if (code != status) test_fail(__FILE__, __LINE__, "%s: error.code %lld, expected %ld", where, code, status);
	/* the message points into r->body's JSON copy: find it in the raw body instead, to outlive j */
	const char *in_body = strstr(r->body, "\"message\":\"");
	json_decref(j);
	return in_body ? in_body + 11 : "";
}

json_t *api_get_json(const struct api_server *s, const char *path)
{
	struct api_resp r;
	api_get(s, path, &r);
	if (r.status != 200)
		test_fail(__FILE__, __LINE__, "GET %s: status %ld (%s): %.500s", path, r.status, r.error, r.body);
	json_t *j = api_json(&r);
	api_resp_free(&r);
	return j;
}

json_t *api_post_json(const struct api_server *s, const char *path, const char *body)
{
	struct api_resp r;
	api_post(s, path, body, &r);
	if (r.status != 200)
		test_fail(__FILE__, __LINE__, "POST %s %s: status %ld (%s): %.500s", path, body, r.status, r.error,
			  r.body);
	json_t *j = api_json(&r);
	api_resp_free(&r);
	return j;
}

/* ---- JSON ------------------------------------------------------------------------- */

json_t *jpath(json_t *j, const char *path)
{
	char key[128];
	while (j && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof key) return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		if (json_is_array(j)) {
			char *end;
			long i = strtol(key, &end, 10);
			j = *end ? NULL : json_array_get(j, (size_t)i);
		} else {
			j = json_object_get(j, key);
		}
		path += n + (dot ? 1 : 0);
	}
	return j;
}

const char *jstr(json_t *j, const char *path)
{
	json_t *v = jpath(j, path);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long jint(json_t *j, const char *path)
{
	json_t *v = jpath(j, path);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* ---- SSE --------------------------------------------------------------------------- */

int sse_parse(const char *body, size_t len, struct sse_event **out)
{
	struct sse_event *ev = NULL, cur;
	int n = 0, cap = 0;
	struct grow data = { 0 };
	bool have = false;
	memset(&cur, 0, sizeof cur);
	const char *p = body, *end = body + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol) break; /* an incomplete line: the event is not complete either */
		size_t l = (size_t)(eol - p);
		if (l && p[l - 1] == '\r') l--;
		if (l == 0) { /* blank line: dispatch */
			if (have) {
				if (n == cap) {
					cap = cap ? cap * 2 : 16;
					ev = realloc(ev, (size_t)cap * sizeof *ev);
					if (!ev) abort();
				}
				cur.data = data.s ? data.s : strdup("");
				ev[n++] = cur;
				memset(&cur, 0, sizeof cur);
				memset(&data, 0, sizeof data);
				have = false;
			}
		} else if (p[0] != ':') {
			const char *colon = memchr(p, ':', l);
			size_t fl = colon ? (size_t)(colon - p) : l;
			const char *v = colon ? colon + 1 : p + l;
			if (v < p + l && *v == ' ') v++;
			size_t vl = (size_t)(p + l - v);
			if (fl == 4 && !memcmp(p, "data", 4)) {
				if (have && data.s) grow_add(&data, "\n", 1);
				grow_add(&data, v, vl);
				have = true;
			} else if (fl == 5 && !memcmp(p, "event", 5)) {
				snprintf(cur.event, sizeof cur.event, "%.*s", (int)vl, v);
				have = true;
			} else if (fl == 2 && !memcmp(p, "id", 2)) {
				snprintf(cur.id, sizeof cur.id, "%.*s", (int)vl, v);
				have = true;
			}
		}
		p = eol + 1;
	}
	free(data.s);
	*out = ev;
	return n;
}

void sse_free(struct sse_event *ev, int n)
{
	for (int i = 0; i < n; i++) free(ev[i].data);
	free(ev);
}

/* ---- misc ---------------------------------------------------------------------------- */

double api_metric(const struct api_server *s, const char *series)
{
	struct api_resp r;
	api_get(s, "/metrics", &r);
	CHECK_INT(r.status, 200);
	double v = metric_value(r.body, series);
	api_resp_free(&r);
	return v;
}

double metric_value(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p;) {
		if (!strncmp(p, series, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p) p++;
	}
	return -1;
}

void write_file_atomic(const char *path, const char *text)
{
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	test_write_file(tmp, text, strlen(text));
	if (rename(tmp, path) != 0) test_fail(__FILE__, __LINE__, "rename %s: %s", tmp, strerror(errno));
}

bool api_wait_status_str(const struct api_server *s, const char *path, const char *want, double timeout_s)
{
	double t0 = now_s();
	do {
		json_t *st = api_get_json(s, "/api/status");
		const char *v = jstr(st, path);
		bool ok = v && !strcmp(v, want);
		json_decref(st);
		if (ok) return true;
		sleep_ms(50);
	} while (now_s() - t0 < timeout_s);
	return false;
}
