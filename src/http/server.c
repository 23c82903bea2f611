/*
 * server.c - the http.h layer over libmicrohttpd, thread per connection.
 * The access handler collects the body (413 past its route's cap), then
 * matches the route table (404, 405 with Allow) and calls the handler,
 * which queues exactly one response.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "sam/fs.h"
#include "sam/http.h"

#define MAX_HEADERS 8

struct http_server {
	struct MHD_Daemon *d;
	const struct http_route *routes;
	void *ud;
	struct http_opts o;
	int port;
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method, *path, *route;
	char *arg; /* the "*" segment */
	char *body;
	size_t body_len, body_cap, max_body;
	bool too_large, responded;
	int status;
	double t0;
	char *hdr_name[MAX_HEADERS], *hdr_value[MAX_HEADERS];
	int n_hdr;
	/* streaming */
	http_stream_fn stream_fn;
	void *stream_cls;
	void (*stream_done)(void *, bool);
	bool stream_client_gone;
};

const char *http_method(const struct http_req *r) { return r->method; }
const char *http_path(const struct http_req *r) { return r->path; }
const char *http_path_arg(const struct http_req *r) { return r->arg; }

const char *http_header(const struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_body(const struct http_req *r, size_t *len)
{
	if (len) *len = r->body_len;
	return r->body ? r->body : "";
}

void http_set_header(struct http_req *r, const char *name, const char *value)
{
	if (r->n_hdr == MAX_HEADERS) return;
	r->hdr_name[r->n_hdr] = xstrdup(name);
	r->hdr_value[r->n_hdr++] = xstrdup(value);
}

static void queue(struct http_req *r, int status, struct MHD_Response *resp)
{
	if (r->responded) SAM_BUG("two responses for %s %s", r->method, r->path);
	r->responded = true;
	r->status = status;
	for (int i = 0; i < r->n_hdr; i++) MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
	MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
}

void http_respond(struct http_req *r, int status, const char *content_type, const char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", content_type);
	queue(r, status, resp);
}

void http_respond_json(struct http_req *r, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s) {
		http_respond(r, 500, "application/json", "{\"error\":{\"message\":\"cannot encode the reply\"}}", 47);
		return;
	}
	size_t n = strlen(s);
	s = xrealloc(s, n + 2); /* a newline makes curl output readable */
	s[n] = '\n';
	struct MHD_Response *resp = MHD_create_response_from_buffer(n + 1, s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	queue(r, status, resp);
}

static const char *error_type(int status)
{
	switch (status) {
	case 400: return "invalid_request_error";
	case 401: return "authentication_error";
	case 404: return "not_found_error";
	case 405: return "method_not_allowed";
	case 409: return "conflict_error";
	case 413: return "request_too_large";
	case 429: case 503: return "overloaded_error";
	default: return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

json_t *http_error_body(int status, const char *msg)
{
	return json_pack("{s:{s:s, s:s, s:i}}", "error", "message", msg, "type", error_type(status), "code", status);
}

void http_error(struct http_req *r, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	http_respond_json(r, status, http_error_body(status, msg));
}

json_t *http_body_json(struct http_req *r)
{
	json_error_t je;
	if (!r->body_len) {
		http_error(r, 400, "the request body must be a JSON object");
		return NULL;
	}
	json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!j) {
		http_error(r, 400, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_error(r, 400, "the request body must be a JSON object");
		return NULL;
	}
	return j;
}

static int conn_fd(struct http_req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

bool http_client_gone(struct http_req *r)
{
	int fd = conn_fd(r);
	if (fd < 0) return true;
	struct pollfd p = { .fd = fd, .events = POLLIN
#ifdef POLLRDHUP
					       | POLLRDHUP
#endif
	};
	if (poll(&p, 1, 0) <= 0) return false;
	if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
#ifdef POLLRDHUP
	if (p.revents & POLLRDHUP) return true;
#endif
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct http_req *r = cls;
	for (;;) {
		ssize_t n = r->stream_fn(r->stream_cls, buf, max);
		if (n > 0) return n;
		if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
		if (http_client_gone(r)) {
			r->stream_client_gone = true;
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
}

void http_respond_stream(struct http_req *r, int status, const char *content_type, http_stream_fn fn, void *cls,
			 void (*done)(void *cls, bool client_gone))
{
	r->stream_fn = fn;
	r->stream_cls = cls;
	r->stream_done = done;
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, r, NULL);
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	queue(r, status, resp);
}

/* ---- dispatch -------------------------------------------------------------- */

/* Does pattern match path? "*" matches one segment, copied to *arg. */
static bool path_match(const char *pattern, const char *path, char **arg)
{
	while (*pattern && *path) {
		if (pattern[0] == '*' && (pattern[1] == '/' || pattern[1] == 0)) {
			const char *end = strchr(path, '/');
			size_t n = end ? (size_t)(end - path) : strlen(path);
			if (n == 0) return false;
			if (arg) {
				free(*arg);
				*arg = xmalloc(n + 1);
				memcpy(*arg, path, n);
				(*arg)[n] = 0;
			}
			path += n;
			pattern++;
			continue;
		}
		if (*pattern != *path) return false;
		pattern++;
		path++;
	}
	return *pattern == 0 && *path == 0;
}

static bool route_takes(const struct http_route *rt, const char *method)
{
	return !strcmp(rt->method, method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"));
}

/*
 * Set r's body cap from its route, before any of the body arrives. A
 * route that takes more than max_body first has the client authorized,
 * so a stranger cannot make the server store that much (false after
 * responding).
 */
static bool set_body_cap(struct http_server *s, struct http_req *r)
{
	r->max_body = s->o.max_body;
	if (!s->o.route_max_body) return true;
	for (const struct http_route *rt = s->routes; rt->path; rt++) {
		if (!path_match(rt->path, r->path, NULL) || !route_takes(rt, r->method)) continue;
		size_t cap = s->o.route_max_body(rt, s->ud);
		if (cap <= s->o.max_body) return true;
		r->max_body = cap;
		r->route = rt->path;
		if (!s->o.authorize || s->o.authorize(r, s->ud)) return true;
		if (!r->responded) http_error(r, 401, "unauthorized");
		return false;
	}
	return true;
}

static void dispatch(struct http_req *r)
{
	struct http_server *s = r->srv;
	if (r->too_large) {
		http_error(r, 413, "request body too large (limit %zu bytes)", r->max_body);
		return;
	}
	const struct http_route *hit = NULL;
	char allow[128] = "";
	for (const struct http_route *rt = s->routes; rt->path; rt++) {
		if (!path_match(rt->path, r->path, NULL)) continue;
		if (route_takes(rt, r->method)) {
			hit = rt;
			break;
		}
		if (strlen(allow) + strlen(rt->method) + 3 < sizeof allow) {
			if (*allow) strcat(allow, ", ");
			strcat(allow, rt->method);
		}
	}
	if (!hit && *allow) {
		r->route = "unmatched";
		http_set_header(r, "Allow", allow);
		http_error(r, 405, "method %s is not allowed on %s (allowed: %s)", r->method, r->path, allow);
		return;
	}
	if (!hit) {
		r->route = "unmatched";
		http_error(r, 404, "no such endpoint: %s %s", r->method, r->path);
		return;
	}
	r->route = hit->path;
	path_match(hit->path, r->path, &r->arg);
	if (s->o.authorize && !s->o.authorize(r, s->ud)) {
		if (!r->responded) http_error(r, 401, "unauthorized");
		return;
	}
	hit->fn(r, s->ud);
	if (!r->responded) SAM_BUG("handler for %s %s sent no response", r->method, r->path);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	if (!r) {
		r = xcalloc(1, sizeof *r);
		r->srv = s;
		r->conn = conn;
		r->method = method;
		r->path = url;
		r->route = "unmatched";
		r->t0 = sam_now();
		*con_cls = r;
		if (!set_body_cap(s, r)) return MHD_YES; /* answered; the body will not be stored */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > r->max_body) {
			r->too_large = true;
			dispatch(r); /* answer before reading the body; MHD closes the connection */
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_large && !r->responded) {
			if (r->body_len + *upload_size > r->max_body) {
				r->too_large = true;
				free(r->body);
				r->body = NULL;
				r->body_len = 0;
			} else {
				if (r->body_len + *upload_size + 1 > r->body_cap) {
					r->body_cap = (r->body_len + *upload_size + 1) * 2;
					if (r->body_cap > r->max_body + 1) r->body_cap = r->max_body + 1;
					r->body = xrealloc(r->body, r->body_cap);
				}
				memcpy(r->body + r->body_len, upload, *upload_size);
				r->body_len += *upload_size;
				r->body[r->body_len] = 0;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (!r->responded) dispatch(r);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)conn;
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	if (!r) return;
	if (r->stream_done)
		r->stream_done(r->stream_cls, r->stream_client_gone || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
	if (s->o.on_done && r->responded) s->o.on_done(s->ud, r->route, r->status, sam_now() - r->t0);
	for (int i = 0; i < r->n_hdr; i++) {
		free(r->hdr_name[i]);
		free(r->hdr_value[i]);
	}
	free(r->arg);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n') line[--n] = 0;
	sam_log(SAM_LOG_DEBUG, "http: %s", line);
}

int http_start(struct http_server **out, const char *host, int port, const struct http_route *routes, void *ud,
	       const struct http_opts *opts, struct sam_error *err)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (!strcmp(host, "localhost")) host = "127.0.0.1";
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		slen = sizeof *a4;
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		slen = sizeof *a6;
		flags |= MHD_USE_IPv6;
	} else {
		return sam_errorf(err, SAM_EINVAL, "bad listen address '%s' (use an IP address)", host);
	}
	/* bind once ourselves: MHD does not say why it failed */
	int probe = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (probe >= 0 && port && bind(probe, (struct sockaddr *)&ss, slen) != 0) {
		int e = errno;
		close(probe);
		return sam_errorf(err, SAM_EIO, "cannot listen on %s:%d: %s", host, port, strerror(e));
	}
	if (probe >= 0) close(probe);

	struct http_server *s = xcalloc(1, sizeof *s);
	s->routes = routes;
	s->ud = ud;
	if (opts) s->o = *opts;
	if (!s->o.max_body) s->o.max_body = 1 << 20;
	if (!s->o.conn_limit) s->o.conn_limit = 256;
	if (!s->o.idle_timeout_s) s->o.idle_timeout_s = 60;
	s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.conn_limit, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)s->o.idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
				MHD_OPTION_END);
	if (!s->d) {
		free(s);
		return sam_errorf(err, SAM_EIO, "cannot start the HTTP server on %s:%d", host, port);
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : port;
	*out = s;
	return 0;
}

int http_port(const struct http_server *s)
{
	return s->port;
}

int http_write_port_file(const struct http_server *s, const char *path, struct sam_error *err)
{
	char p[32];
	int n = snprintf(p, sizeof p, "%d\n", s->port);
	return sam_write_file_atomic(path, p, (size_t)n, err);
}

void http_stop(struct http_server *s)
{
	if (!s) return;
	MHD_stop_daemon(s->d);
	free(s);
}
