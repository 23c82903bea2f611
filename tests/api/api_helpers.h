/*
 * api_helpers.h - integration-test helpers for `sam api`: start the real
 * binary on a free port (and always stop it, also when a test fails or
 * times out), HTTP requests over libcurl that return status, headers and
 * body, a server-sent-events parser, and small JSON/metrics accessors.
 *
 *   struct api_server s;
 *   api_start(&s, NULL, (const char *[]){ "--slots", "1", NULL }, NULL);
 *   struct api_resp r;
 *   api_post(&s, "/api/query", "{\"query\":\"hi\"}", &r);
 *   CHECK_INT(r.status, 200);
 *   api_resp_free(&r);
 *   api_stop(&s);       // fails the test if the server did not exit cleanly
 *
 * Every server gets SAM_HOME=<test_tmpdir()>/home (also set in the test
 * process, so library calls such as sam_event_publishf reach the same
 * sam.db) and SAM_LOG=warn; its stdout and stderr go to a log file whose
 * tail is printed when a check on it fails.
 */
#ifndef SAM_TEST_API_HELPERS_H
#define SAM_TEST_API_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

struct api_server {
	pid_t pid;
	int port;
	char url[64];     /* http://127.0.0.1:PORT */
	char log[512];    /* the server's stdout+stderr */
	char port_file[512];
};

/*
 * Start `sam api --port 0 --port-file F -m MODEL -c 512 ARGS...` with the
 * extra environment ENV ("NAME=value" strings). model NULL: stories260K.
 * args and env are NULL-terminated lists (or NULL). Waits (20 s at most)
 * for the port file and for /api/ready to answer 200; fails the test otherwise.
 */
void api_start(struct api_server *s, const char *model, const char *const *args, const char *const *env);
/* The same, but only waits for the port and /api/health (for servers that never become ready). */
void api_start_unready(struct api_server *s, const char *model, const char *const *args, const char *const *env);
/*
 * Start another service the same way, `sam CMD... --port 0 --port-file F
 * ARGS...` (cmd e.g. {"learn", "watch", NULL}), and wait for its /health.
 */
void svc_start(struct api_server *s, const char *const *cmd, const char *const *args, const char *const *env);
/*
 * SIGTERM, wait up to 15 s (then SIGKILL), reap. Fails the test unless the
 * server exited with status 0 (under the sanitizers: no leak, no UB).
 */
void api_stop(struct api_server *s);
/* SIGKILL the server (a crash, as far as it can tell) and reap it. */
void api_kill(struct api_server *s);
/* Print the last bytes of the server's log to stderr (for failure messages). */
void api_dump_log(const struct api_server *s);

struct api_resp {
	long status;      /* HTTP status; 0 when no response came */
	char *head;       /* raw response header block */
	char *body;       /* NUL-terminated */
	size_t len;
	double secs;      /* wall time of the request */
	bool aborted;     /* api_request_until stopped reading early */
	char error[256];  /* libcurl's error, if any */
};

/* One request. body NULL: none. headers: NULL-terminated "Name: value" list, or NULL. timeout_s <= 0: 60 s. */
void api_request(const struct api_server *s, const char *method, const char *path, const char *body,
		 const char *const *headers, int timeout_s, struct api_resp *r);
/*
 * The same, but after each piece of body stop(body, len, cls) is asked
 * whether to close the connection now (the client goes away mid-stream).
 */
void api_request_until(const struct api_server *s, const char *method, const char *path, const char *body,
		       const char *const *headers, int timeout_s, bool (*stop)(const char *body, size_t len, void *cls),
		       void *cls, struct api_resp *r);
void api_get(const struct api_server *s, const char *path, struct api_resp *r);
void api_post(const struct api_server *s, const char *path, const char *body, struct api_resp *r);
void api_resp_free(struct api_resp *r);

/* Value of a response header (case-insensitive name) copied into buf; NULL if absent. */
const char *api_header(const struct api_resp *r, const char *name, char *buf, size_t cap);
/* The body as JSON (caller decrefs); fails the test when it is not JSON. */
json_t *api_json(const struct api_resp *r);
/* Check status and a JSON error body {"error":{"message":...}}; returns the message (valid while r lives). */
const char *api_check_error(const struct api_resp *r, long status, const char *where);

/* GET path, expect 200 and JSON; caller decrefs. */
json_t *api_get_json(const struct api_server *s, const char *path);
/* POST path, expect 200 and JSON; caller decrefs. */
json_t *api_post_json(const struct api_server *s, const char *path, const char *body);

/* Dotted path into a JSON object ("resource.level"); NULL if absent. */
json_t *jpath(json_t *j, const char *path);
const char *jstr(json_t *j, const char *path);  /* NULL unless a string */
long long jint(json_t *j, const char *path);     /* -1 unless an integer */

/* One server-sent event. */
struct sse_event {
	char id[32];
	char event[64];   /* "" when the event had no event: line */
	char *data;       /* data lines joined by '\n' */
};
/* Parse complete events (each ended by a blank line) out of an SSE body; returns the count. */
int sse_parse(const char *body, size_t len, struct sse_event **out);
void sse_free(struct sse_event *ev, int n);

/* Value of the Prometheus sample whose line starts with series (name and labels exactly); -1 if absent. */
double metric_value(const char *text, const char *series);
/* The same, read from the server's GET /metrics (which must answer 200). */
double api_metric(const struct api_server *s, const char *series);

/* Write text to path atomically (temporary file + rename), for files a server polls. */
void write_file_atomic(const char *path, const char *text);

/* Seconds on a monotonic clock. */
double now_s(void);
/* Poll GET /api/status until jstr(status, path) equals want, up to timeout_s. Returns true on success. */
bool api_wait_status_str(const struct api_server *s, const char *path, const char *want, double timeout_s);

#endif
