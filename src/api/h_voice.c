/*
 * h_voice.c - POST /api/speak and POST /api/voice/stream: text to speech.
 * The request is checked here (voice.h), then sent to the voice service
 * (`sam voice`, found like any service: $SAM_VOICE_URL, run/services.json,
 * port 8767). When the service cannot be reached or fails (5xx), the same
 * library runs in this process. X-Served-By says which: "voice" or
 * "in-process". The service's own 4xx answers (an unknown voice) are passed on.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "sam/client.h"
#include "sam/voice.h"

#define VOICE_BODY_MAX ((size_t)128 << 20)

struct buf {
	char *p;
	size_t len, cap;
	bool toobig;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	size_t add = size * n;
	if (b->len + add + 1 > VOICE_BODY_MAX) {
		b->toobig = true;
		return 0;
	}
	char *p = sam_grow(b->p, &b->cap, b->len + add + 1, 1);
	if (!p) return 0;
	b->p = p;
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = 0;
	return add;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	char *cache = ud; /* "hit"/"miss", 8 bytes */
	size_t len = size * n;
	if (len > 8 && !strncasecmp(data, "X-Cache:", 8)) {
		const char *v = data + 8;
		while (*v == ' ') v++;
		snprintf(cache, 8, "%.*s", (int)strcspn(v, "\r\n"), v);
	}
	return len;
}

/* The outcome of one speak, whoever served it. */
struct spoken {
	int status;           /* 200, or the error status */
	char served_by[16];   /* "voice" or "in-process" */
	char cache[8];        /* "hit" / "miss" */
	uint8_t *wav;         /* malloc'd on 200 */
	size_t len;
	char *error_json;     /* malloc'd: the service's JSON error body, passed on as it is */
	char error[512];      /* our own error message */
};

/* Ask the voice service. True when it answered (200 or 4xx); false: fall back. */
static bool via_service(json_t *body, struct spoken *o)
{
	char url[SAM_CLIENT_URL_MAX + 16];
	struct sam_error err = { 0 };
	if (sam_service_url("voice", SAM_VOICE_DEFAULT_PORT, url, SAM_CLIENT_URL_MAX, &err)) return false;
	strcat(url, "/speak");
	char *text = json_dumps(body, JSON_COMPACT);
	CURL *c = curl_easy_init();
	if (!c || !text) {
		free(text);
		if (c) curl_easy_cleanup(c);
		return false;
	}
	struct buf b = { 0 };
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, o->cache);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(text);
	bool answered = false;
	if (rc != CURLE_OK || status >= 500 || status < 200) {
		sam_log(SAM_LOG_INFO, "api: voice service at %s: %s; speaking in-process", url,
			rc != CURLE_OK ? curl_easy_strerror(rc) : "server error");
	} else if (status == 200) {
		if (sam_voice_wav_seconds((uint8_t *)b.p, b.len) > 0) {
			o->wav = (uint8_t *)b.p;
			o->len = b.len;
			b.p = NULL;
			answered = true;
		} else {
			sam_log(SAM_LOG_WARN, "api: voice service at %s sent something that is not a WAV", url);
		}
	} else {
		o->error_json = b.p; /* the service's JSON error */
		b.p = NULL;
		answered = true;
	}
	free(b.p);
	if (answered) {
		o->status = (int)status;
		snprintf(o->served_by, sizeof o->served_by, "voice");
	}
	return answered;
}

static int status_of(int rc)
{
	return rc == SAM_ERANGE ? 413 : rc == SAM_EINVAL || rc == SAM_ENOTFOUND ? 400 : 500;
}

/* Check body; 0 with q filled, else an HTTP status with the message in err. */
static int check(struct api *a, json_t *body, struct sam_voice_conf *vc, struct sam_voice_req *q,
		 struct sam_error *err)
{
	int rc;
	if ((rc = sam_voice_conf_load(vc, &a->conf, err))) return 500;
	if ((rc = sam_voice_req_parse(body, vc, q, err))) return status_of(rc);
	return 0;
}

/* Speak a checked request: the service first, else in-process. */
static void speak(const struct sam_voice_conf *vc, const struct sam_voice_req *q, json_t *body, struct spoken *o)
{
	memset(o, 0, sizeof *o);
	if (via_service(body, o)) return;
	memset(o, 0, sizeof *o);
	struct sam_error err = { 0 };
	bool hit = false;
	snprintf(o->served_by, sizeof o->served_by, "in-process");
	int rc = sam_voice_speak(vc, q, &o->wav, &o->len, &hit, &err);
	o->status = rc ? status_of(rc) : 200;
	snprintf(o->cache, sizeof o->cache, "%s", hit ? "hit" : "miss");
	if (rc) snprintf(o->error, sizeof o->error, "%s", err.msg);
}

void h_speak(struct http_req *r, void *ud)
{
	struct api *a = ud;
	json_t *body = http_body_json(r);
	if (!body) return;
	struct sam_voice_conf vc;
	struct sam_voice_req q;
	struct sam_error err = { 0 };
	int st = check(a, body, &vc, &q, &err);
	if (st) {
		http_error(r, st, "%s", err.msg);
		json_decref(body);
		return;
	}
	struct spoken o;
	speak(&vc, &q, body, &o);
	json_decref(body);
	http_set_header(r, "X-Served-By", o.served_by);
	if (o.status == 200) {
		char secs[32];
		snprintf(secs, sizeof secs, "%.3f", sam_voice_wav_seconds(o.wav, o.len));
		if (o.cache[0]) http_set_header(r, "X-Cache", o.cache);
		http_set_header(r, "X-Audio-Seconds", secs);
		http_respond(r, 200, "audio/wav", (const char *)o.wav, o.len);
	} else if (o.error_json) {
		http_respond(r, o.status, "application/json", o.error_json, strlen(o.error_json));
	} else {
		http_error(r, o.status, "%s", o.error);
	}
	free(o.wav);
	free(o.error_json);
}

/*
 * The stream: "queued" at once, "synthesizing" next, then "done" with the
 * WAV as base64 (or "error"). The synthesis runs inside the stream callback,
 * between two events; it is bounded by [voice] max_chars.
 */
struct vstream {
	int step;
	json_t *body;
	struct sam_voice_conf vc;
	struct sam_voice_req q;
	char *out;
	size_t len, off;
};

static void emit(struct vstream *s, const char *event, json_t *data)
{
	char *d = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	size_t n = strlen(event) + strlen(d) + 32;
	s->out = xrealloc(s->out, s->len + n);
	s->len += (size_t)snprintf(s->out + s->len, n, "event: %s\ndata: %s\n\n", event, d);
	free(d);
}

static json_t *error_json(const struct spoken *o)
{
	json_t *e = o->error_json ? json_loads(o->error_json, 0, NULL) : NULL;
	const char *msg = e ? sam_client_error_message(e) : NULL;
	json_t *j = json_pack("{s:s, s:i, s:s}", "message", msg ? msg : o->error, "status", o->status, "served_by",
			      o->served_by);
	json_decref(e);
	return j;
}

static ssize_t vs_read(void *cls, char *buf, size_t max)
{
	struct vstream *s = cls;
	if (s->off == s->len) {
		s->off = s->len = 0;
		switch (s->step++) {
		case 0: emit(s, "synthesizing", json_pack("{s:s, s:i, s:i}", "voice", s->q.voice, "speed", s->q.speed,
							 "pitch", s->q.pitch));
			break;
		case 1: {
			struct spoken o;
			speak(&s->vc, &s->q, s->body, &o);
			if (o.status != 200) {
				emit(s, "error", error_json(&o));
			} else {
				size_t b64len = 4 * ((o.len + 2) / 3) + 1;
				char *b64 = malloc(b64len);
				if (!b64) {
					emit(s, "error", json_pack("{s:s, s:i}", "message", "out of memory", "status", 500));
				} else {
					EVP_EncodeBlock((unsigned char *)b64, o.wav, (int)o.len);
					emit(s, "done",
					     json_pack("{s:s, s:s, s:s, s:I, s:f, s:s}", "format", "wav", "served_by",
						       o.served_by, "cache", o.cache[0] ? o.cache : "miss", "bytes",
						       (json_int_t)o.len, "duration_s", sam_voice_wav_seconds(o.wav, o.len),
						       "audio_base64", b64));
					free(b64);
				}
			}
			free(o.wav);
			free(o.error_json);
			break;
		}
		default: return -1;
		}
	}
	size_t n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(buf, s->out + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void vs_done(void *cls, bool gone)
{
	(void)gone;
	struct vstream *s = cls;
	json_decref(s->body);
	free(s->out);
	free(s);
}

void h_voice_stream(struct http_req *r, void *ud)
{
	struct api *a = ud;
	json_t *body = http_body_json(r);
	if (!body) return;
	struct vstream *s = xcalloc(1, sizeof *s);
	struct sam_error err = { 0 };
	int st = check(a, body, &s->vc, &s->q, &err);
	if (st) {
		http_error(r, st, "%s", err.msg);
		json_decref(body);
		free(s);
		return;
	}
	s->body = body; /* s->q points into it */
	emit(s, "queued", json_pack("{s:I}", "chars", (json_int_t)strlen(s->q.text)));
	http_respond_stream(r, 200, "text/event-stream", vs_read, s, vs_done);
}
