/*
 * client.c - the HTTP client of SAM's command-line clients (see client.h).
 *
 * One easy handle inside one multi handle per client: the multi interface
 * lets a request be driven in short polls (50 ms by default) so that *cancel is seen
 * at once, and removing an unfinished transfer closes its connection, which
 * is what tells the api to stop generating. Finished transfers leave their
 * connection in the multi handle's cache for the next request.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sam/client.h"
#include "sam/fs.h"

#define SERVICES_JSON_MAX (1u << 20)
#define POLL_MS 50

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- discovery --------------------------------------------------------------- */

static int put_url(char *buf, size_t cap, const char *url, struct sam_error *err)
{
	size_t n = strlen(url);
	while (n && url[n - 1] == '/') n--;
	if (n + 1 > cap) return sam_errorf(err, SAM_ERANGE, "the URL %.200s is too long", url);
	memcpy(buf, url, n);
	buf[n] = 0;
	return 0;
}

/* The "url" of name in $SAM_HOME/run/services.json, or NULL (malloc'd). */
static char *services_json_url(const char *name)
{
	char path[1100];
	if (sam_home_path(path, sizeof path, "run/services.json") || access(path, F_OK)) return NULL;
	char *text = NULL;
	size_t len = 0;
	struct sam_error err;
	if (sam_read_file(path, SERVICES_JSON_MAX, &text, &len, &err)) {
		sam_log(SAM_LOG_WARN, "%s: %s (using the default address)", path, err.msg);
		return NULL;
	}
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);
	free(text);
	char *url = NULL;
	json_t *u = json_object_get(json_object_get(root, name), "url");
	if (!root) sam_log(SAM_LOG_WARN, "%s: line %d: %s (using the default address)", path, jerr.line, jerr.text);
	else if (json_is_string(u) && json_string_length(u)) url = xstrdup(json_string_value(u));
	json_decref(root);
	return url;
}

int sam_service_url(const char *name, int default_port, char *buf, size_t cap, struct sam_error *err)
{
	char env[96];
	int n = snprintf(env, sizeof env, "SAM_%s_URL", name);
	if (n < 0 || (size_t)n >= sizeof env) return sam_errorf(err, SAM_EINVAL, "service name %.40s is too long", name);
	for (char *p = env + 4; *p; p++) *p = *p == '-' || *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	const char *v = getenv(env);
	if (v && *v) return put_url(buf, cap, v, err);
	char *u = services_json_url(name);
	if (u) {
		int rc = put_url(buf, cap, u, err);
		free(u);
		return rc;
	}
	char def[64];
	snprintf(def, sizeof def, "http://127.0.0.1:%d", default_port);
	return put_url(buf, cap, def, err);
}

/* ---- the client ------------------------------------------------------------------ */

int sam_client_init(struct sam_client *c, const char *url, struct sam_error *err)
{
	memset(c, 0, sizeof *c);
	c->connect_timeout_ms = 5000;
	int rc = url ? put_url(c->url, sizeof c->url, url, err)
		     : sam_service_url("api", SAM_API_DEFAULT_PORT, c->url, sizeof c->url, err);
	if (rc) return rc;
	const char *k = getenv("SAM_API_KEY");
	if (k && *k) c->api_key = xstrdup(k);
	return 0;
}

void sam_client_free(struct sam_client *c)
{
	if (c->multi) curl_multi_cleanup(c->multi);
	if (c->easy) curl_easy_cleanup(c->easy);
	free(c->api_key);
	memset(c, 0, sizeof *c);
}

const char *sam_client_error_message(json_t *j)
{
	json_t *e = json_object_get(j, "error");
	if (json_is_string(e)) return json_string_value(e);
	json_t *m = json_object_get(e, "message");
	return json_is_string(m) ? json_string_value(m) : NULL;
}

/* True when the URL's host is this machine: proxies from the environment are then bypassed. */
static bool loopback_url(const char *url)
{
	const char *h = strstr(url, "://");
	h = h ? h + 3 : url;
	static const char *const names[] = { "127.", "localhost:", "localhost/", "[::1]" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strncasecmp(h, names[i], strlen(names[i]))) return true;
	return !strcasecmp(h, "localhost");
}

/* ---- one transfer ---------------------------------------------------------------- */

struct buf {
	char *s;
	size_t n, cap;
};

/* Append; false past SAM_CLIENT_BODY_MAX. Keeps s NUL-terminated. */
static bool buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > SAM_CLIENT_BODY_MAX) return false;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->n + n + 1) cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
	return true;
}

struct xfer {
	struct sam_client *c;
	bool checked, http_error; /* status looked at; >= 300 */
	struct buf body;          /* a JSON answer or an error body */
	bool toobig;
	/* SSE */
	sam_sse_fn fn;
	void *arg;
	bool stopped;             /* fn asked to stop */
	const struct sam_sse_get *get; /* a GET stream's options, or NULL */
	bool opened;              /* a 2xx answer's headers are in */
	bool idle;                /* given up: nothing arrived for get->idle_timeout_s */
	double last_data;         /* sam_now() of the last byte received */
	bool skip_lf;             /* the last line ended with CR: a following LF is part of it */
	struct buf line, event, data, id;
};

static void sse_dispatch(struct xfer *x)
{
	if (x->data.n) {
		x->data.s[--x->data.n] = 0; /* the last '\n' */
		struct sam_sse_event ev = { .event = x->event.n ? x->event.s : "message", .data = x->data.s,
					    .data_len = x->data.n, .id = x->id.n ? x->id.s : "" };
		if (x->fn(x->arg, &ev)) x->stopped = true;
	}
	x->event.n = x->data.n = 0;
}

/* One line of the stream (without its end), as in the WHATWG event-stream grammar. */
static bool sse_line(struct xfer *x, const char *s, size_t n)
{
	if (!n) {
		sse_dispatch(x);
		return true;
	}
	if (s[0] == ':') return true; /* a comment */
	const char *colon = memchr(s, ':', n);
	size_t fl = colon ? (size_t)(colon - s) : n;
	const char *v = colon ? colon + 1 : s + n;
	size_t vl = (size_t)(s + n - v);
	if (vl && *v == ' ') v++, vl--;
	if (fl == 5 && !memcmp(s, "event", 5)) {
		x->event.n = 0;
		return buf_add(&x->event, v, vl);
	}
	if (fl == 4 && !memcmp(s, "data", 4)) return buf_add(&x->data, v, vl) && buf_add(&x->data, "\n", 1);
	if (fl == 2 && !memcmp(s, "id", 2) && !memchr(v, 0, vl)) {
		x->id.n = 0;
		return buf_add(&x->id, v, vl);
	}
	return true; /* "retry" and unknown fields are ignored */
}

static bool sse_feed(struct xfer *x, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !x->stopped; i++) {
		char ch = p[i];
		if (x->skip_lf) {
			x->skip_lf = false;
			if (ch == '\n') continue;
		}
		if (ch == '\r' || ch == '\n') {
			x->skip_lf = ch == '\r';
			bool ok = sse_line(x, x->line.s ? x->line.s : "", x->line.n);
			x->line.n = 0;
			if (!ok) return false;
			continue;
		}
		/* the rest of the line in one piece */
		size_t j = i;
		while (j < n && p[j] != '\r' && p[j] != '\n') j++;
		if (!buf_add(&x->line, p + i, j - i)) return false;
		i = j - 1;
	}
	return true;
}

/* The end of the headers (an empty line) is when a stream has opened. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	x->last_data = sam_now();
	if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) {
		long st = 0;
		curl_easy_getinfo(x->c->easy, CURLINFO_RESPONSE_CODE, &st);
		if (st >= 200 && st < 300 && !x->opened) {
			x->opened = true;
			if (x->get && x->get->on_open) x->get->on_open(x->arg);
		}
	}
	return n;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	x->last_data = sam_now();
	if (!x->checked) {
		long st = 0;
		curl_easy_getinfo(x->c->easy, CURLINFO_RESPONSE_CODE, &st);
		x->checked = true;
		x->http_error = st >= 300;
	}
	if (x->fn && !x->http_error) {
		if (!sse_feed(x, p, n)) {
			x->toobig = true;
			return 0;
		}
		return x->stopped ? 0 : n;
	}
	if (!buf_add(&x->body, p, n)) {
		x->toobig = true;
		return 0;
	}
	return n;
}

static void xfer_free(struct xfer *x)
{
	free(x->body.s);
	free(x->line.s);
	free(x->event.s);
	free(x->data.s);
	free(x->id.s);
}

static int unreachable(struct sam_client *c, struct sam_error *err)
{
	c->unreachable = true;
	return sam_errorf(err, SAM_EIO,
			  "cannot reach the SAM api at %s \xe2\x80\x94 is it running? start it with `sam api` (or `sam up`)",
			  c->url);
}

/* The error for an HTTP status >= 300, from the body when it is SAM's JSON error. */
static int http_status_error(struct sam_client *c, struct xfer *x, struct sam_error *err)
{
	json_t *j = x->body.n ? json_loadb(x->body.s, x->body.n, 0, NULL) : NULL;
	const char *m = sam_client_error_message(j);
	int code = c->status == 404 ? SAM_ENOTFOUND : c->status >= 400 && c->status < 500 ? SAM_EINVAL : SAM_EIO;
	const char *hint = c->status == 401 ? (c->api_key ? "; check SAM_API_KEY" : "; set SAM_API_KEY") : "";
	if (m) sam_errorf(err, code, "%s (HTTP %ld%s)", m, c->status, hint);
	else sam_errorf(err, code, "the api at %s answered HTTP %ld%s", c->url, c->status, hint);
	json_decref(j);
	return code;
}

/*
 * Run one request: GET path, or POST json. Fills c->status and friends. On
 * an HTTP status >= 300 the error body is in x->body and the return is the
 * status's error.
 */
static int perform(struct sam_client *c, const char *path, const char *json, struct xfer *x, struct sam_error *err)
{
	c->status = 0;
	c->unreachable = c->cancelled = false;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc) return sam_errorf(err, SAM_EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	if (!c->easy && !(c->easy = curl_easy_init())) return sam_errorf(err, SAM_ENOMEM, "libcurl: out of memory");
	if (!c->multi && !(c->multi = curl_multi_init())) return sam_errorf(err, SAM_ENOMEM, "libcurl: out of memory");
	char url[SAM_CLIENT_URL_MAX + 1024];
	if (snprintf(url, sizeof url, "%s%s", c->url, path) >= (int)sizeof url)
		return sam_errorf(err, SAM_ERANGE, "the URL is too long");

	CURL *e = c->easy;
	struct curl_slist *h = NULL;
	char auth[1100], last_id[160];
	h = curl_slist_append(h, x->fn ? "Accept: text/event-stream" : "Accept: application/json");
	if (x->get && x->get->last_event_id) {
		const char *id = x->get->last_event_id;
		if (strpbrk(id, "\r\n") || snprintf(last_id, sizeof last_id, "Last-Event-ID: %s", id) >= (int)sizeof last_id) {
			curl_slist_free_all(h);
			return sam_errorf(err, SAM_EINVAL, "a Last-Event-ID must be one short line");
		}
		h = curl_slist_append(h, last_id);
	}
	h = curl_slist_append(h, "Expect:");
	if (json) h = curl_slist_append(h, "Content-Type: application/json");
	if (c->api_key) {
		if (snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->api_key) >= (int)sizeof auth) {
			curl_slist_free_all(h);
			return sam_errorf(err, SAM_ERANGE, "SAM_API_KEY is too long");
		}
		h = curl_slist_append(h, auth);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "sam/" SAM_VERSION);
	if (loopback_url(c->url)) curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (json) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}

	CURLcode res = CURLE_OK;
	bool done = false;
	double idle = x->get && x->get->idle_timeout_s > 0 ? x->get->idle_timeout_s : 0;
	x->last_data = sam_now();
	CURLMcode mc = curl_multi_add_handle(c->multi, e);
	while (!mc) {
		int running = 0, q;
		mc = curl_multi_perform(c->multi, &running);
		CURLMsg *m;
		while ((m = curl_multi_info_read(c->multi, &q)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == e) {
				res = m->data.result;
				done = true;
			}
		if (mc || done) break;
		if (c->cancel && *c->cancel) break;
		mc = curl_multi_poll(c->multi, NULL, 0, c->poll_ms > 0 ? (int)c->poll_ms : POLL_MS, NULL);
		if (c->cancel && *c->cancel) break;
		if (idle && sam_now() - x->last_data > idle) {
			x->idle = true;
			break;
		}
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
	/* removing an unfinished transfer closes its connection */
	curl_multi_remove_handle(c->multi, e);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);

	if (mc) return sam_errorf(err, SAM_EIO, "libcurl: %s", curl_multi_strerror(mc));
	if (!done && x->idle)
		return sam_errorf(err, SAM_EIO, "the api at %s sent nothing for %g s: the connection is dead", c->url, idle);
	if (!done) {
		c->cancelled = true;
		return sam_errorf(err, SAM_EIO, "cancelled");
	}
	if (x->toobig) return sam_errorf(err, SAM_EFORMAT, "the api's answer is larger than %u bytes", SAM_CLIENT_BODY_MAX);
	if (res == CURLE_WRITE_ERROR && x->stopped) res = CURLE_OK;
	if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST || res == CURLE_COULDNT_RESOLVE_PROXY ||
	    (res == CURLE_OPERATION_TIMEDOUT && !c->status))
		return unreachable(c, err);
	if (c->status >= 300 && (res == CURLE_OK || x->http_error)) return http_status_error(c, x, err);
	if (res) return sam_errorf(err, SAM_EIO, "the connection to the api at %s failed: %s", c->url, curl_easy_strerror(res));
	return 0;
}

int sam_client_json(struct sam_client *c, const char *path, json_t *body, json_t **resp, struct sam_error *err)
{
	*resp = NULL;
	char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !json) return sam_errorf(err, SAM_EINVAL, "the request cannot be encoded as JSON");
	struct xfer x = { .c = c };
	int rc = perform(c, path, json, &x, err);
	free(json);
	if (!rc) {
		json_error_t jerr;
		*resp = x.body.n ? json_loadb(x.body.s, x.body.n, 0, &jerr) : NULL;
		if (!*resp)
			rc = sam_errorf(err, SAM_EFORMAT, "the api at %s answered HTTP %ld with something that is not JSON",
					c->url, c->status);
	}
	xfer_free(&x);
	return rc;
}

int sam_client_stream(struct sam_client *c, const char *path, json_t *body, sam_sse_fn fn, void *arg,
		      struct sam_error *err)
{
	char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !json) return sam_errorf(err, SAM_EINVAL, "the request cannot be encoded as JSON");
	struct xfer x = { .c = c, .fn = fn, .arg = arg };
	int rc = perform(c, path, json, &x, err);
	free(json);
	xfer_free(&x);
	return rc;
}

int sam_client_stream_get(struct sam_client *c, const char *path, const struct sam_sse_get *o, sam_sse_fn fn,
			  void *arg, struct sam_error *err)
{
	struct xfer x = { .c = c, .fn = fn, .arg = arg, .get = o };
	int rc = perform(c, path, NULL, &x, err);
	xfer_free(&x);
	return rc;
}

/* ---- SAM's chat ------------------------------------------------------------------ */

void sam_chat_result_free(struct sam_chat_result *r)
{
	free(r->response);
	memset(r, 0, sizeof *r);
}

/* Copy the reply's fields from a /api/chat answer or a "done" event. */
static void chat_fill(struct sam_chat_result *out, json_t *j)
{
	json_t *v = json_object_get(j, "session_id");
	if (json_is_string(v)) snprintf(out->session_id, sizeof out->session_id, "%s", json_string_value(v));
	v = json_object_get(j, "finish_reason");
	if (json_is_string(v)) snprintf(out->finish_reason, sizeof out->finish_reason, "%s", json_string_value(v));
	v = json_object_get(j, "tokens");
	if (json_is_integer(v)) out->tokens = (int)json_integer_value(v);
	v = json_object_get(j, "response");
	free(out->response);
	out->response = xstrdup(json_is_string(v) ? json_string_value(v) : "");
}

struct chat_stream {
	sam_text_fn on_text;
	void *arg;
	struct sam_chat_result *out;
	bool done, user_stopped;
	char error[400];
};

static int chat_event(void *arg, const struct sam_sse_event *ev)
{
	struct chat_stream *s = arg;
	json_t *j = json_loadb(ev->data, ev->data_len, 0, NULL);
	int stop = 0;
	if (!strcmp(ev->event, "token")) {
		json_t *t = json_object_get(j, "text");
		if (json_is_string(t) && json_string_length(t) &&
		    s->on_text(s->arg, json_string_value(t), json_string_length(t))) {
			s->user_stopped = true;
			stop = 1;
		}
	} else if (!strcmp(ev->event, "done")) {
		chat_fill(s->out, j);
		s->done = true;
		stop = 1;
	} else if (!strcmp(ev->event, "error")) {
		const char *m = sam_client_error_message(j);
		snprintf(s->error, sizeof s->error, "%s", m ? m : "the api reported an error");
		stop = 1;
	}
	json_decref(j);
	return stop;
}

int sam_client_chat(struct sam_client *c, const struct sam_chat_request *q, sam_text_fn on_text, void *arg,
		    struct sam_chat_result *out, struct sam_error *err)
{
	memset(out, 0, sizeof *out);
	json_t *body = json_pack("{s:s}", "message", q->message ? q->message : "");
	if (!body) return sam_errorf(err, SAM_EINVAL, "the message is not valid UTF-8");
	if (q->session_id) json_object_set_new(body, "session_id", json_string(q->session_id));
	if (q->max_tokens > 0) json_object_set_new(body, "max_tokens", json_integer(q->max_tokens));
	if (q->temperature >= 0) json_object_set_new(body, "temperature", json_real(q->temperature));
	int rc;
	if (!on_text) {
		json_t *resp = NULL;
		rc = sam_client_json(c, "/api/chat", body, &resp, err);
		if (!rc) chat_fill(out, resp);
		json_decref(resp);
	} else {
		struct chat_stream s = { .on_text = on_text, .arg = arg, .out = out };
		rc = sam_client_stream(c, "/api/cognitive/stream", body, chat_event, &s, err);
		if (!rc && s.user_stopped) {
			c->cancelled = true;
			rc = sam_errorf(err, SAM_EIO, "cancelled");
		} else if (!rc && s.error[0]) {
			rc = sam_errorf(err, SAM_EIO, "%s", s.error);
		} else if (!rc && !s.done) {
			rc = sam_errorf(err, SAM_EIO, "the answer was cut off: the api closed the stream before it ended");
		}
	}
	json_decref(body);
	if (rc) sam_chat_result_free(out);
	return rc;
}
