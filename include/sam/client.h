/*
 * client.h - an HTTP client for SAM's own command-line clients (`sam chat`,
 * `sam ask`, ...) over libcurl: service discovery, JSON requests, and
 * server-sent event streams read one event at a time.
 *
 * Discovery (SPEC section 2): a client finds service NAME at $SAM_<NAME>_URL,
 * else at the "url" of NAME in $SAM_HOME/run/services.json
 * ({"api": {"url": "http://127.0.0.1:8765"}}), else at the default port on
 * 127.0.0.1.
 *
 * A struct sam_client is one connection (kept alive between requests) used
 * by one thread at a time. Requests return 0 when the server answered 2xx;
 * otherwise a negative code with a sentence for a human in err, and the
 * fields status / unreachable / cancelled say what happened:
 *   - the server could not be reached: SAM_EIO, unreachable, and the message
 *     "cannot reach the SAM api at URL — is it running? start it with
 *     `sam api` (or `sam up`)";
 *   - an HTTP error status: SAM_ENOTFOUND (404), SAM_EINVAL (other 4xx) or
 *     SAM_EIO (5xx), the message being the server's error.message followed
 *     by "(HTTP STATUS)";
 *   - *cancel became non-zero: SAM_EIO and cancelled (the connection is
 *     closed, which makes the api cancel the generation at once);
 *   - a broken transfer or a malformed response: SAM_EIO / SAM_EFORMAT.
 */
#ifndef SAM_CLIENT_H
#define SAM_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sam/core.h"

#define SAM_API_DEFAULT_PORT 8765
#define SAM_CLIENT_URL_MAX 512
/* Largest response body read into memory (a JSON answer, an error, one SSE event). */
#define SAM_CLIENT_BODY_MAX (64u << 20)

/*
 * Write the base URL of service name ("api", "vision", ...) into buf, without
 * a trailing '/'. SAM_ERANGE when it does not fit. A services.json that
 * cannot be read or parsed is skipped with a warning in the log.
 */
int sam_service_url(const char *name, int default_port, char *buf, size_t cap, struct sam_error *err);

struct sam_client {
	char url[SAM_CLIENT_URL_MAX]; /* base URL, no trailing '/' */
	char *api_key;                /* sent as "Authorization: Bearer KEY"; owned; NULL = none */
	long connect_timeout_ms;      /* default 5000 */
	long timeout_ms;              /* whole request; 0 (default) = none, the api has its own */
	/* When set and *cancel becomes non-zero (e.g. from a SIGINT handler), the
	 * request in progress stops within ~poll_ms. Not owned. */
	volatile sig_atomic_t *cancel;
	/* How often a request in progress wakes to look at *cancel: 0 = 50 ms. A
	 * long-lived, mostly silent stream may choose longer, to sleep more. */
	long poll_ms;
	/* about the last request */
	long status;      /* HTTP status, 0 when there was no response */
	bool unreachable; /* could not resolve or connect */
	bool cancelled;   /* stopped through *cancel */
	/* private */
	void *easy, *multi;
};

/*
 * Set c up for the service at url (NULL: sam_service_url("api", ...)); the
 * API key comes from $SAM_API_KEY when set and non-empty. Nothing is
 * connected yet. Release with sam_client_free.
 */
int sam_client_init(struct sam_client *c, const char *url, struct sam_error *err);
void sam_client_free(struct sam_client *c);

/*
 * GET path, or POST body (not stolen; NULL = GET) to path as JSON. path
 * starts with '/'. On 0, *resp is the parsed JSON answer (caller decrefs);
 * it is NULL on failure. A 2xx answer that is not JSON is SAM_EFORMAT.
 */
int sam_client_json(struct sam_client *c, const char *path, json_t *body, json_t **resp, struct sam_error *err);

/* One server-sent event. The strings live until the callback returns. */
struct sam_sse_event {
	const char *event; /* "message" when the event has no "event:" line */
	const char *data;  /* "data:" lines joined with '\n' */
	size_t data_len;
	const char *id;    /* "" when none */
};
/* Return 0 to go on, non-zero to stop reading (the request then returns 0). */
typedef int (*sam_sse_fn)(void *arg, const struct sam_sse_event *ev);

/*
 * POST body (not stolen; NULL = GET) to path and call fn for each event of
 * the text/event-stream answer, in order, as it arrives. Returns 0 when the
 * stream ended (or fn stopped it); an HTTP error status is reported as above
 * and fn is never called for it.
 */
int sam_client_stream(struct sam_client *c, const char *path, json_t *body, sam_sse_fn fn, void *arg,
		      struct sam_error *err);

/* How sam_client_stream_get follows a long-lived stream (all fields optional: zero them). */
struct sam_sse_get {
	const char *last_event_id;  /* sent as "Last-Event-ID: ..." when not NULL (no CR or LF in it) */
	double idle_timeout_s;      /* > 0: a stream that sends nothing this long is dead: SAM_EIO */
	void (*on_open)(void *arg); /* called once, when a 2xx answer's headers are in, before any event */
};

/*
 * GET path as an event stream, like sam_client_stream, with the options of
 * o (may be NULL). idle_timeout_s finds a peer that vanished without closing
 * the connection (a server that pings regularly is never idle that long);
 * *cancel stops it as for any request.
 */
int sam_client_stream_get(struct sam_client *c, const char *path, const struct sam_sse_get *o, sam_sse_fn fn,
			  void *arg, struct sam_error *err);

/* A message to SAM's chat: POST /api/chat, or streamed, /api/cognitive/stream. */
struct sam_chat_request {
	const char *message;
	const char *session_id; /* NULL = start a new session */
	int max_tokens;         /* <= 0: the api's default */
	double temperature;     /* < 0: the api's default */
};

struct sam_chat_result {
	char session_id[65];   /* the session the turn went into */
	char finish_reason[16]; /* "stop", "length", ... */
	int tokens;             /* generated */
	char *response;         /* the whole answer (malloc'd; release with sam_chat_result_free) */
};
void sam_chat_result_free(struct sam_chat_result *r);

/* Text of the answer as it arrives (valid UTF-8 pieces). Return non-zero to stop. */
typedef int (*sam_text_fn)(void *arg, const char *text, size_t len);

/*
 * Send q. With on_text, the answer streams through on_text piece by piece
 * (/api/cognitive/stream); without, it comes whole (/api/chat). out is filled
 * on 0. An "error" event of the stream, or a stream that ends before its
 * "done" event, is SAM_EIO with the reason; stopping through on_text or
 * *cancel is SAM_EIO with c->cancelled.
 */
int sam_client_chat(struct sam_client *c, const struct sam_chat_request *q, sam_text_fn on_text, void *arg,
		    struct sam_chat_result *out, struct sam_error *err);

/* The message of an error object {"error": {"message": ...}} or {"error": "..."}, or NULL. */
const char *sam_client_error_message(json_t *j);

#endif
