/*
 * test_chat.c - the clients of the api hub as a user meets them: `sam ask`
 * and `sam chat` (the real binary) against the real `sam api` on
 * stories260K, and the client library (src/net/client.c) against a scripted
 * server: discovery, the SSE parser, error statuses, and cancellation with
 * Ctrl-C, which must close the request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api_helpers.h"
#include "sam/client.h"
#include "test.h"

/* ---- running the clients ------------------------------------------------------- */

/* Run sam with args, stdin from input (a string, NULL = /dev/null); like test_run_sam. */
static void run_in(struct test_proc *p, const char *input, int timeout_s, const char *const *args)
{
	char inp[400], outp[400], errp[400];
	snprintf(inp, sizeof inp, "%s/.stdin", test_tmpdir());
	snprintf(outp, sizeof outp, "%s/.stdout", test_tmpdir());
	snprintf(errp, sizeof errp, "%s/.stderr", test_tmpdir());
	test_write_file(inp, input ? input : "", input ? strlen(input) : 0);
	const char *argv[64];
	int n = 0;
	argv[n++] = test_sam_bin();
	for (int i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
	argv[n] = NULL;
	memset(p, 0, sizeof *p);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open(input ? inp : "/dev/null", O_RDONLY);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		signal(SIGALRM, SIG_DFL);
		alarm((unsigned)timeout_s);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	p->out = test_read_file(outp, &p->out_len);
	p->err = test_read_file(errp, NULL);
	if (!p->out || !p->err) test_fail(__FILE__, __LINE__, "cannot read the output of sam");
}

#define RUN(p, input, ...) run_in(p, input, 60, (const char *const[]){ __VA_ARGS__, NULL })

/* What the clients print for an answer: the text, newline-terminated. */
static char *as_printed(const char *answer)
{
	size_t n = strlen(answer);
	char *s = malloc(n + 2);
	memcpy(s, answer, n + 1);
	if (!n || answer[n - 1] != '\n') strcat(s, "\n");
	return s;
}

/* The greedy /api/chat answer to message in a fresh session (the test's own HTTP client). */
static char *api_answer(const char *message, int max_tokens)
{
	struct sam_client c;
	struct sam_error err;
	struct sam_chat_result res;
	struct sam_chat_request q = { .message = message, .max_tokens = max_tokens, .temperature = 0 };
	CHECKF(!sam_client_init(&c, NULL, &err), "%s", err.msg);
	CHECKF(!sam_client_chat(&c, &q, NULL, NULL, &res, &err), "/api/chat: %s", err.msg);
	char *s = strdup(res.response);
	CHECK(res.session_id[0] != 0);
	sam_chat_result_free(&res);
	sam_client_free(&c);
	return s;
}

/* The messages of a session (GET /api/sessions/ID); caller decrefs. */
static json_t *session_messages(const struct api_server *s, const char *id)
{
	char path[200];
	snprintf(path, sizeof path, "/api/sessions/%s", id);
	json_t *j = api_get_json(s, path);
	json_t *m = json_incref(json_object_get(j, "messages"));
	json_decref(j);
	CHECKF(json_is_array(m), "GET %s: no messages array", path);
	return m;
}

/* The ids in "sam chat: session ID" lines of err, in order; returns the count. */
static int session_ids(const char *err, char ids[][80], int max)
{
	int n = 0;
	const char *p = err;
	while (n < max && (p = strstr(p, "sam chat: session "))) {
		p += strlen("sam chat: session ");
		size_t len = strcspn(p, " \n");
		if (len < 80 && p[len] == '\n') {
			memcpy(ids[n], p, len);
			ids[n++][len] = 0;
		}
		p += len;
	}
	return n;
}

static void start_api(struct api_server *s)
{
	api_start(s, test_model("stories260K.gguf"), NULL, NULL);
	setenv("SAM_API_URL", s->url, 1);
}

/* ---- against the real api ---------------------------------------------------------- */

TEST(ask_prints_the_greedy_answer)
{
	struct api_server s;
	start_api(&s);
	const char *question = "Once upon a time there was a cat";
	char *want = api_answer(question, 40);
	CHECK(want[0] != 0);
	char *printed = as_printed(want);

	struct test_proc p;
	RUN(&p, NULL, "ask", "--temperature", "0", "--max-tokens", "40", "Once", "upon", "a time there was a cat");
	CHECKF(p.status == 0, "sam ask: status %d: %s", p.status, p.err);
	CHECK_STR(p.out, printed);
	test_proc_free(&p);

	RUN(&p, NULL, "ask", "--no-stream", "--temperature", "0", "--max-tokens", "40", question);
	CHECKF(p.status == 0, "sam ask --no-stream: status %d: %s", p.status, p.err);
	CHECK_STR(p.out, printed);
	test_proc_free(&p);

	/* the question from stdin: absent, or "-" */
	RUN(&p, "Once upon a time there was a cat\n", "ask", "--temperature", "0", "--max-tokens", "40");
	CHECKF(p.status == 0, "sam ask < stdin: status %d: %s", p.status, p.err);
	CHECK_STR(p.out, printed);
	test_proc_free(&p);
	RUN(&p, question, "ask", "--temperature", "0", "--max-tokens", "40", "-");
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, printed);
	test_proc_free(&p);

	free(printed);
	free(want);
	api_stop(&s);
}

TEST(chat_piped_keeps_one_session)
{
	struct api_server s;
	start_api(&s);
	struct test_proc p;
	RUN(&p, "Hello\nHow are you\n/quit\nnever sent\n", "chat", "--temperature", "0", "--max-tokens", "24");
	CHECKF(p.status == 0, "sam chat: status %d: %s", p.status, p.err);
	CHECK(strstr(p.out, "you>") == NULL); /* no prompt when stdin is not a terminal */
	char ids[4][80];
	CHECKF(session_ids(p.err, ids, 4) == 1, "expected one session line in: %s", p.err);

	json_t *m = session_messages(&s, ids[0]);
	CHECK_INT(json_array_size(m), 4);
	CHECK_STR(jstr(json_array_get(m, 0), "role"), "user");
	CHECK_STR(jstr(json_array_get(m, 0), "content"), "Hello");
	CHECK_STR(jstr(json_array_get(m, 1), "role"), "assistant");
	CHECK_STR(jstr(json_array_get(m, 2), "content"), "How are you");
	CHECK_STR(jstr(json_array_get(m, 3), "role"), "assistant");
	/* stdout is exactly the two answers, each newline-terminated */
	char *a1 = as_printed(jstr(json_array_get(m, 1), "content"));
	char *a2 = as_printed(jstr(json_array_get(m, 3), "content"));
	CHECK(strlen(a1) > 1 && strlen(a2) > 1);
	char *both = malloc(strlen(a1) + strlen(a2) + 1);
	strcat(strcpy(both, a1), a2);
	CHECK_STR(p.out, both);
	free(both);
	free(a1);
	free(a2);
	json_decref(m);
	test_proc_free(&p);

	/* --session continues a session, also across sam ask */
	RUN(&p, "Hello\n", "chat", "--session", ids[0], "--max-tokens", "8");
	CHECKF(p.status == 0, "sam chat --session: %s", p.err);
	CHECK(strstr(p.err, "sam chat: session ") == NULL); /* no new session */
	test_proc_free(&p);
	RUN(&p, NULL, "ask", "--session", ids[0], "--max-tokens", "8", "Bye");
	CHECKF(p.status == 0, "sam ask --session: %s", p.err);
	test_proc_free(&p);
	m = session_messages(&s, ids[0]);
	CHECK_INT(json_array_size(m), 8);
	CHECK_STR(jstr(json_array_get(m, 6), "content"), "Bye");
	json_decref(m);
	api_stop(&s);
}

TEST(chat_reset_starts_a_new_session)
{
	struct api_server s;
	start_api(&s);
	struct test_proc p;
	/* EOF ends the chat like /quit; /help and unknown commands go to stderr */
	RUN(&p, "Hello\n/help\n/nonsense\n\n/reset\nHello\n", "chat", "--temperature", "0", "--max-tokens", "16");
	CHECKF(p.status == 0, "sam chat: status %d: %s", p.status, p.err);
	char ids[4][80];
	CHECKF(session_ids(p.err, ids, 4) == 2, "expected two session lines in: %s", p.err);
	CHECK(strcmp(ids[0], ids[1]) != 0);
	CHECK(strstr(p.err, "new session") != NULL);
	CHECK(strstr(p.err, "/reset") != NULL);           /* the help text */
	CHECK(strstr(p.err, "unknown command") != NULL);
	for (int i = 0; i < 2; i++) {
		json_t *m = session_messages(&s, ids[i]);
		CHECK_INT(json_array_size(m), 2);
		CHECK_STR(jstr(json_array_get(m, 0), "content"), "Hello");
		json_decref(m);
	}
	/* the same greedy answer twice: the second session did not see the first */
	char *answer = api_answer("Hello", 16), *want = as_printed(answer);
	free(answer);
	char *twice = malloc(2 * strlen(want) + 1);
	strcat(strcpy(twice, want), want);
	CHECK_STR(p.out, twice);
	free(twice);
	free(want);
	test_proc_free(&p);
	api_stop(&s);
}

TEST(ask_and_chat_send_the_api_key)
{
	struct api_server s;
	unsetenv("SAM_API_KEY");
	/* /api/ready needs the key too: wait for it with the key */
	api_start_unready(&s, test_model("stories260K.gguf"), (const char *const[]){ "--api-key", "sekrit-1", NULL },
			  NULL);
	setenv("SAM_API_URL", s.url, 1);
	struct sam_client c;
	struct sam_error err;
	json_t *ready = NULL;
	CHECK(sam_client_init(&c, NULL, &err) == 0);
	c.api_key = strdup("sekrit-1");
	for (int i = 0; i < 400 && sam_client_json(&c, "/api/ready", NULL, &ready, &err); i++) usleep(25000);
	CHECKF(ready != NULL, "not ready: %s", err.msg);
	json_decref(ready);
	sam_client_free(&c);
	struct test_proc p;
	RUN(&p, NULL, "ask", "--max-tokens", "4", "hi");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "HTTP 401") && strstr(p.err, "SAM_API_KEY"), "%s", p.err);
	test_proc_free(&p);
	setenv("SAM_API_KEY", "sekrit-1", 1);
	RUN(&p, NULL, "ask", "--max-tokens", "4", "hi");
	CHECKF(p.status == 0, "%s", p.err);
	test_proc_free(&p);
	RUN(&p, "hi\n", "chat", "--max-tokens", "4");
	CHECKF(p.status == 0, "%s", p.err);
	test_proc_free(&p);
	setenv("SAM_API_KEY", "wrong", 1);
	RUN(&p, "hi\n", "chat", "--max-tokens", "4");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "check SAM_API_KEY") != NULL, "%s", p.err);
	test_proc_free(&p);
	unsetenv("SAM_API_KEY");
	api_stop(&s);
}

/* ---- without an api ------------------------------------------------------------------ */

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

TEST(ask_and_chat_when_the_api_is_down)
{
	char url[64], want[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port());
	setenv("SAM_API_URL", url, 1);
	snprintf(want, sizeof want, "cannot reach the SAM api at %s", url);
	struct test_proc p;
	RUN(&p, NULL, "ask", "hello");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, want) && strstr(p.err, "is it running? start it with `sam api` (or `sam up`)"), "%s", p.err);
	CHECK_INT(p.out_len, 0);
	test_proc_free(&p);
	RUN(&p, NULL, "ask", "--no-stream", "hello");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, want) != NULL, "%s", p.err);
	test_proc_free(&p);
	RUN(&p, "hello\n", "chat");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, want) != NULL, "%s", p.err);
	test_proc_free(&p);
}

TEST(ask_and_chat_usage_errors_exit_2)
{
	setenv("SAM_API_URL", "http://127.0.0.1:1", 1); /* never reached */
	struct test_proc p;
	const char *const *cases[] = {
		(const char *const[]){ "ask", "--max-tokens", "0", "hi", NULL },
		(const char *const[]){ "ask", "--max-tokens", NULL },
		(const char *const[]){ "ask", "--temperature", "3", "hi", NULL },
		(const char *const[]){ "ask", "--session", "bad id!", "hi", NULL },
		(const char *const[]){ "ask", "--bogus", "hi", NULL },
		(const char *const[]){ "ask", "  ", NULL },
		(const char *const[]){ "ask", NULL }, /* stdin is /dev/null: an empty question */
		(const char *const[]){ "chat", "hello", NULL },
		(const char *const[]){ "chat", "--temperature", "x", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		run_in(&p, NULL, 10, cases[i]);
		CHECKF(p.status == 2, "case %zu (%s %s): status %d", i, cases[i][0], cases[i][1] ? cases[i][1] : "",
		       p.status);
		CHECKF(strstr(p.err, "usage: sam ") != NULL, "case %zu: %s", i, p.err);
		test_proc_free(&p);
	}
	RUN(&p, NULL, "ask", "--help");
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "--no-stream") != NULL);
	test_proc_free(&p);
}

TEST(client_discovers_the_api)
{
	char home[400], run[420], buf[SAM_CLIENT_URL_MAX];
	struct sam_error err;
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	snprintf(run, sizeof run, "%s/run", home);
	CHECK(mkdir(home, 0700) == 0 && mkdir(run, 0700) == 0);
	setenv("SAM_HOME", home, 1);
	unsetenv("SAM_API_URL");
	unsetenv("SAM_VOICE_URL");

	/* nothing: the default port */
	CHECK(sam_service_url("api", 8765, buf, sizeof buf, &err) == 0);
	CHECK_STR(buf, "http://127.0.0.1:8765");
	/* services.json */
	char sj[440];
	snprintf(sj, sizeof sj, "%s/services.json", run);
	const char *text = "{\"api\": {\"url\": \"http://127.0.0.1:9000/\", \"pid\": 1}, \"voice\": {\"url\": \"http://h:8767\"}}";
	test_write_file(sj, text, strlen(text));
	CHECK(sam_service_url("api", 8765, buf, sizeof buf, &err) == 0);
	CHECK_STR(buf, "http://127.0.0.1:9000");
	CHECK(sam_service_url("voice", 8767, buf, sizeof buf, &err) == 0);
	CHECK_STR(buf, "http://h:8767");
	CHECK(sam_service_url("vision", 8766, buf, sizeof buf, &err) == 0);
	CHECK_STR(buf, "http://127.0.0.1:8766");
	/* the environment wins */
	setenv("SAM_API_URL", "http://10.0.0.2:1234//", 1);
	CHECK(sam_service_url("api", 8765, buf, sizeof buf, &err) == 0);
	CHECK_STR(buf, "http://10.0.0.2:1234");
	struct sam_client c;
	CHECK(sam_client_init(&c, NULL, &err) == 0);
	CHECK_STR(c.url, "http://10.0.0.2:1234");
	sam_client_free(&c);
	unsetenv("SAM_API_URL");
	/* a malformed services.json is skipped (with a warning, silenced here) */
	test_write_file(sj, "{\"api\": ", 8);
	sam_log_set_level(SAM_LOG_ERROR);
	CHECK(sam_service_url("api", 8765, buf, sizeof buf, &err) == 0);
	sam_log_set_level(SAM_LOG_INFO);
	CHECK_STR(buf, "http://127.0.0.1:8765");
	/* a URL that does not fit */
	char small[16];
	setenv("SAM_API_URL", "http://127.0.0.1:8765/a/long/prefix", 1);
	CHECK(sam_service_url("api", 8765, small, sizeof small, &err) == SAM_ERANGE);
	unsetenv("SAM_API_URL");
}

/* ---- a scripted server ------------------------------------------------------------------- */

/*
 * Answers the k-th connection with reply[k] (raw bytes, then the connection
 * is closed), or, when reply[k] ends with the marker STALL, sends what is
 * before it and waits for the client to close the connection (recorded in
 * closed_by_client). Requests are recorded.
 */
#define STALL "<<stall>>"
struct fake {
	int fd, port;
	const char *reply[8];
	int n_reply;
	char request[8][2048];
	atomic_int served, closed_by_client;
	pthread_t thread;
};

static void read_request(int c, char *buf, size_t cap)
{
	size_t n = 0;
	long body = -1;
	for (;;) {
		ssize_t r = recv(c, buf + n, cap - n - 1, 0);
		if (r <= 0) break;
		n += (size_t)r;
		buf[n] = 0;
		char *end = strstr(buf, "\r\n\r\n");
		if (!end) continue;
		if (body < 0) {
			char *cl = strstr(buf, "Content-Length:");
			body = cl ? atol(cl + 15) : 0;
		}
		if (n >= (size_t)(end + 4 - buf) + (size_t)body || n + 1 >= cap) break;
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	for (int k = 0; k < f->n_reply; k++) {
		int c = accept(f->fd, NULL, NULL);
		if (c < 0) break;
		read_request(c, f->request[k], sizeof f->request[k]);
		const char *r = f->reply[k];
		const char *stall = strstr(r, STALL);
		size_t len = stall ? (size_t)(stall - r) : strlen(r);
		if (send(c, r, len, MSG_NOSIGNAL) < 0) {
		}
		if (stall) {
			struct pollfd pfd = { .fd = c, .events = POLLIN };
			char b[256];
			while (poll(&pfd, 1, 20000) > 0) {
				ssize_t got = recv(c, b, sizeof b, 0);
				if (got == 0) {
					atomic_store(&f->closed_by_client, 1);
					break;
				}
				if (got < 0) break;
			}
		}
		close(c);
		atomic_fetch_add(&f->served, 1);
	}
	return NULL;
}

static void fake_start(struct fake *f)
{
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	CHECK(f->fd >= 0 && bind(f->fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(f->fd, 8) == 0);
	CHECK(getsockname(f->fd, (struct sockaddr *)&a, &len) == 0);
	f->port = ntohs(a.sin_port);
	CHECK(pthread_create(&f->thread, NULL, fake_main, f) == 0);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
	setenv("SAM_API_URL", url, 1);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	pthread_join(f->thread, NULL);
}

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

/* A whole response with body into buf; status is the status line's tail (plus any header lines). */
static const char *http_reply(char *buf, size_t cap, const char *status, const char *body)
{
	snprintf(buf, cap, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", status, strlen(body), body);
	return buf;
}

struct seen {
	char log[4096];
	int n;
};

static int record(void *arg, const struct sam_sse_event *ev)
{
	struct seen *s = arg;
	size_t used = strlen(s->log);
	snprintf(s->log + used, sizeof s->log - used, "[%s|%s|%s]", ev->event, ev->data, ev->id);
	s->n++;
	return !strcmp(ev->data, "stop here");
}

TEST(client_parses_server_sent_events)
{
	struct fake f = { .n_reply = 2 };
	/* CRLF and CR line ends, comments, multi-line data, no space after ':', ids, an event without data */
	f.reply[0] = SSE_HEAD ": a comment\r\n\r\nevent: token\r\ndata: {\"text\":\"a\"}\r\n\r\n"
			      "data:two\ndata: lines\nid: 7\n\n"
			      "event: empty\n\n"
			      "event: x\rdata: cr\r\r"
			      "data:  spaced\n\n"
			      "data: stop here\n\n"
			      "data: never seen\n\n";
	f.reply[1] = SSE_HEAD "data: cut off without the blank line";
	fake_start(&f);
	struct sam_client c;
	struct sam_error err;
	CHECK(sam_client_init(&c, NULL, &err) == 0);
	struct seen s = { "", 0 };
	json_t *body = json_pack("{s:s}", "message", "hi");
	CHECKF(sam_client_stream(&c, "/api/cognitive/stream", body, record, &s, &err) == 0, "%s", err.msg);
	CHECK_INT(c.status, 200);
	CHECK_STR(s.log, "[token|{\"text\":\"a\"}|][message|two\nlines|7][x|cr|7][message| spaced|7][message|stop here|7]");
	CHECK(strstr(f.request[0], "POST /api/cognitive/stream HTTP/1.1\r\n") == f.request[0]);
	CHECK(strstr(f.request[0], "Accept: text/event-stream") != NULL);
	CHECK(strstr(f.request[0], "{\"message\":\"hi\"}") != NULL);
	CHECK(strstr(f.request[0], "Authorization:") == NULL);
	memset(&s, 0, sizeof s);
	CHECK(sam_client_stream(&c, "/x", body, record, &s, &err) == 0);
	CHECK_INT(s.n, 0); /* an unfinished event is dropped */
	json_decref(body);
	sam_client_free(&c);
	fake_stop(&f);
}

TEST(client_reports_http_errors)
{
	struct fake f = { .n_reply = 4 };
	char r0[512], r1[256], r2[256], r3[256];
	f.reply[0] = http_reply(r0, sizeof r0, "503 Service Unavailable\r\nRetry-After: 5",
				"{\"error\":{\"message\":\"I need a moment - the model is still loading. Try again shortly.\","
				"\"type\":\"overloaded_error\",\"code\":503}}");
	f.reply[1] = http_reply(r1, sizeof r1, "404 Not Found", "not json!");
	f.reply[2] = http_reply(r2, sizeof r2, "200 OK", "not json");
	f.reply[3] = http_reply(r3, sizeof r3, "401 Unauthorized",
				"{\"error\":{\"message\":\"a valid API key is required\",\"code\":401}}");
	fake_start(&f);
	setenv("SAM_API_KEY", "k123", 1);
	struct sam_client c;
	struct sam_error err;
	json_t *resp;
	CHECK(sam_client_init(&c, NULL, &err) == 0);
	CHECK_STR(c.api_key, "k123");
	struct sam_chat_result res;
	struct sam_chat_request q = { .message = "hi", .temperature = -1 };
	CHECK(sam_client_chat(&c, &q, NULL, NULL, &res, &err) == SAM_EIO);
	CHECK_INT(c.status, 503);
	CHECK_STR(err.msg, "I need a moment - the model is still loading. Try again shortly. (HTTP 503)");
	CHECK(strstr(f.request[0], "Authorization: Bearer k123\r\n") != NULL);
	CHECK(strstr(f.request[0], "POST /api/chat ") == f.request[0]);
	CHECK(sam_client_json(&c, "/nope", NULL, &resp, &err) == SAM_ENOTFOUND);
	CHECK(resp == NULL);
	CHECKF(strstr(err.msg, "answered HTTP 404") != NULL, "%s", err.msg);
	CHECK(strstr(f.request[1], "GET /nope ") == f.request[1]);
	CHECK(sam_client_json(&c, "/x", NULL, &resp, &err) == SAM_EFORMAT);
	CHECK(sam_client_json(&c, "/x", NULL, &resp, &err) == SAM_EINVAL);
	CHECK_STR(err.msg, "a valid API key is required (HTTP 401; check SAM_API_KEY)");
	sam_client_free(&c);
	unsetenv("SAM_API_KEY");
	fake_stop(&f);
}

/* Wait until the file at path contains needle (10 s at most). */
static bool wait_file(const char *path, const char *needle)
{
	for (int i = 0; i < 1000; i++) {
		char *t = test_read_file(path, NULL);
		bool hit = t && strstr(t, needle);
		free(t);
		if (hit) return true;
		usleep(10000);
	}
	return false;
}

/* Start sam with stdin from a pipe (*in_fd) and stdout/stderr into files under the tmpdir. */
static pid_t spawn_sam(const char *const *args, int *in_fd, char *outp, char *errp, size_t cap)
{
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	snprintf(outp, cap, "%s/chat.out", test_tmpdir());
	snprintf(errp, cap, "%s/chat.err", test_tmpdir());
	const char *argv[16];
	int n = 0;
	argv[n++] = test_sam_bin();
	for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
	argv[n] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(pfd[0], 0);
		dup2(o, 1);
		dup2(e, 2);
		close(pfd[1]);
		signal(SIGALRM, SIG_DFL);
		alarm(30);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[0]);
	*in_fd = pfd[1];
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(chat_ctrl_c_cancels_the_answer_then_leaves_at_the_prompt)
{
	signal(SIGPIPE, SIG_IGN);
	struct fake f = { .n_reply = 3 };
	char health[256];
	f.reply[0] = http_reply(health, sizeof health, "200 OK", "{\"status\":\"ok\"}");
	/* the first answer starts, then never ends: Ctrl-C must close the request */
	f.reply[1] = SSE_HEAD "event: token\ndata: {\"text\":\"partial\"}\n\n" STALL;
	f.reply[2] = SSE_HEAD "event: token\ndata: {\"text\":\"whole\"}\n\n"
			      "event: done\ndata: {\"response\":\"whole\",\"session_id\":\"s-2\",\"tokens\":1,"
			      "\"finish_reason\":\"stop\"}\n\n";
	fake_start(&f);
	int in;
	char outp[400], errp[400];
	pid_t pid = spawn_sam((const char *const[]){ "chat", NULL }, &in, outp, errp, sizeof outp);
	CHECK(write(in, "first\nsecond\n", 13) == 13);
	CHECKF(wait_file(outp, "partial"), "the first answer did not start");
	kill(pid, SIGINT);
	CHECKF(wait_file(errp, "sam chat: session s-2\n"), "the second answer did not come");
	CHECK(atomic_load(&f.closed_by_client) == 1);
	/* back at the prompt (reading stdin): Ctrl-C leaves */
	kill(pid, SIGINT);
	int status = wait_status(pid);
	close(in);
	char *out = test_read_file(outp, NULL), *err = test_read_file(errp, NULL);
	CHECKF(status == 130, "status %d: %s", status, err);
	CHECK_STR(out, "partial\nwhole\n");
	CHECKF(strstr(err, "answer stopped") != NULL, "%s", err);
	CHECK(strstr(f.request[2], "\"message\":\"second\"") != NULL);
	CHECK(strstr(f.request[2], "session_id") == NULL); /* the cancelled answer started no session */
	free(out);
	free(err);
	fake_stop(&f);
}

TEST(chat_refuses_a_line_over_1_MiB)
{
	struct fake f = { .n_reply = 1 };
	char health[256];
	f.reply[0] = http_reply(health, sizeof health, "200 OK", "{\"status\":\"ok\"}");
	fake_start(&f);
	size_t n = (1u << 20) + 10;
	char *input = malloc(n + 8);
	memset(input, 'x', n);
	strcpy(input + n, "\nhi\n");
	struct test_proc p;
	RUN(&p, input, "chat");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "longer than 1048576 bytes") != NULL, "%s", p.err);
	CHECK_INT(atomic_load(&f.served), 1); /* the health check only: nothing was sent */
	test_proc_free(&p);
	free(input);
	fake_stop(&f);
}
