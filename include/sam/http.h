/*
 * http.h - a small HTTP/1.1 server layer over libmicrohttpd for SAM's
 * services: a route table, request bodies with a size cap, JSON and error
 * responses, streamed responses (SSE), and detection of clients that went
 * away.
 *
 * Threading: one thread per connection (keep-alive connections keep their
 * thread), so handlers and stream callbacks may block. A handler must call
 * exactly one http_respond* function before returning.
 *
 * Ownership: a struct http_req lives from the first byte of the request to
 * the end of its response (also for streams); the server frees it.
 */
#ifndef SAM_HTTP_H
#define SAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "sam/core.h"

struct http_server;
struct http_req;

typedef void (*http_handler)(struct http_req *r, void *ud);

/* A route: method and path. A path segment "*" matches any one segment (http_path_arg). */
struct http_route {
	const char *method;
	const char *path;
	http_handler fn;
};

struct http_opts {
	size_t max_body;      /* bytes; larger bodies get 413 (default 1 MiB) */
	/*
	 * The cap for requests to route rt when it is not max_body (return 0
	 * for max_body), e.g. for uploads. Asked before the body is read.
	 */
	size_t (*route_max_body)(const struct http_route *rt, void *ud);
	int conn_limit;       /* simultaneous connections (default 256) */
	int idle_timeout_s;   /* keep-alive idle timeout (default 60) */
	/* Called before dispatch for every request; return false after responding (e.g. 401). */
	bool (*authorize)(struct http_req *r, void *ud);
	/* Called when a response is done: route path ("unmatched" if none), status, seconds. */
	void (*on_done)(void *ud, const char *route, int status, double secs);
};

/* Listen on host:port (port 0 = any free port) and serve routes until http_stop. */
int http_start(struct http_server **out, const char *host, int port, const struct http_route *routes, void *ud,
	       const struct http_opts *opts, struct sam_error *err);
int http_port(const struct http_server *s);
/* Write the bound port and a newline to path, atomically (how tests and scripts learn a --port 0 service's port). */
int http_write_port_file(const struct http_server *s, const char *path, struct sam_error *err);
void http_stop(struct http_server *s);

/* Request accessors. Strings stay valid for the life of the request. */
const char *http_method(const struct http_req *r);
const char *http_path(const struct http_req *r);
const char *http_path_arg(const struct http_req *r); /* the segment matched by "*", or NULL */
const char *http_header(const struct http_req *r, const char *name);
const char *http_query(const struct http_req *r, const char *name);
const char *http_body(const struct http_req *r, size_t *len);
/* Parse the body as a JSON object; on failure responds 400 itself and returns NULL. Caller decrefs. */
json_t *http_body_json(struct http_req *r);

/* Add a response header to the response about to be sent (e.g. Retry-After). */
void http_set_header(struct http_req *r, const char *name, const char *value);

void http_respond(struct http_req *r, int status, const char *content_type, const char *body, size_t len);
/* Send j (stolen: decref'd here) as application/json. */
void http_respond_json(struct http_req *r, int status, json_t *j);
/* {"error": {"message": ..., "type": ..., "code": status}} */
void http_error(struct http_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* That body as a new object (e.g. for an SSE "error" event). Caller decrefs. */
json_t *http_error_body(int status, const char *msg);

/*
 * A streamed body. fn fills buf (up to max bytes) and returns the count;
 * it may block (waiting for data) and should return 0 after at most ~100 ms
 * of waiting so the server can notice a gone client; -1 ends the stream.
 * done(cls, client_gone) is called exactly once when the stream ends.
 */
typedef ssize_t (*http_stream_fn)(void *cls, char *buf, size_t max);
void http_respond_stream(struct http_req *r, int status, const char *content_type, http_stream_fn fn, void *cls,
			 void (*done)(void *cls, bool client_gone));

/* True once the client has closed its connection (checked on the socket). */
bool http_client_gone(struct http_req *r);

#endif
