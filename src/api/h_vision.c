/*
 * h_vision.c - POST /api/vision/process and /api/vision/stream. The
 * request is checked here first (the image decoded from base64 or read
 * from its path), so bad input gets its 4xx before any work and before a
 * stream starts. The vision part goes to the vision service (`sam vision`,
 * found like any service, with a short connect timeout); when that is
 * down, times out or fails (5xx), the api runs the same job in-process
 * behind its own heavy-work gate. "served_by" says which: "service" or
 * "in-process". Tasks "describe" and "ask" then give the analysis and as
 * much OCR text as the model's context allows to the LLM, with the user's
 * question ("prompt").
 *
 * The stream reports each stage as it begins. Its read callback is a
 * state machine that does one stage per call and returns that stage's
 * event, so every event is on the wire before the next stage's work
 * starts; waiting for the heavy-work gate happens in short slices, so a
 * client that leaves is noticed (http.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/generate.h"
#include "sam/client.h"
#include "sam/vision.h"

#define CONNECT_TIMEOUT_MS 300
#define PROBE_TIMEOUT_MS 2000
#define SERVICE_TIMEOUT_MS 60000
#define GATE_SLICE_S 0.1

/* One request to either endpoint, checked. */
struct vreq {
	json_t *req;                /* as the service gets it: a raw body's image is added when it is asked */
	const char *raw;            /* the raw image body (the request's), or NULL for JSON */
	size_t raw_len;
	struct sam_vision_conf *vc; /* on the heap: it is large */
	struct sam_vision_job job;  /* the same request for the in-process fallback */
	const char *question;       /* "prompt" (in req), NULL for the default */
	bool describe;              /* describe/ask: the LLM answers */
	struct gen_opts o;          /* describe only */
	struct api_engine *e;       /* describe only */
};

static void vreq_free(struct vreq *v)
{
	json_decref(v->req);
	sam_vision_job_free(&v->job);
	free(v->vc);
}

/* The image, in every form, is no longer needed once its result is known: free it before the answer. */
static void drop_image(struct vreq *v)
{
	sam_vision_job_free(&v->job);
	json_object_del(v->req, "image");
}

/* Read and check the request into v (free it also on failure). Responds and returns false when it is bad. */
static bool vreq_parse(struct http_req *r, struct api *a, struct vreq *v)
{
	memset(v, 0, sizeof *v);
	size_t len;
	const char *body = http_body(r, &len);
	struct sam_error err = { 0 };
	v->vc = xmalloc(sizeof *v->vc);
	if (sam_vision_conf_load(v->vc, &a->conf, &err)) {
		http_error(r, 500, "%s", err.msg);
		return false;
	}
	int rc;
	if (sam_vision_body_is_json(http_header(r, "Content-Type"), body, len)) {
		if (!(v->req = http_body_json(r))) return false;
		rc = sam_vision_job_json(&v->job, v->vc, v->req, &err);
	} else {
		static const char *const keys[] = { "task", "lang", "prompt" };
		v->raw = body;
		v->raw_len = len;
		v->req = json_object();
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
			const char *q = http_query(r, keys[i]);
			if (q && json_object_set_new(v->req, keys[i], json_string(q))) {
				http_error(r, 400, "query parameter '%s' is not valid UTF-8", keys[i]);
				return false;
			}
		}
		rc = sam_vision_job_raw(&v->job, v->vc, body, len, http_query(r, "task"), http_query(r, "lang"), &err);
	}
	if (rc) {
		http_error(r, sam_vision_status(rc), "%s", err.msg);
		return false;
	}
	json_t *q = json_object_get(v->req, "prompt");
	if (q && !json_is_null(q) && !json_is_string(q)) {
		http_error(r, 400, "field 'prompt' must be a string");
		return false;
	}
	v->question = json_string_value(q);
	v->describe = v->job.task == SAM_VISION_DESCRIBE;
	if (!v->describe) return true;
	/* the model is needed: say so now rather than after the image's work */
	json_t *empty = json_object();
	bool ok = gen_parse_opts(r, v->raw ? empty : v->req, &v->o, 0.3f, a->default_max_tokens);
	json_decref(empty);
	return ok && (v->e = api_pick_engine(a, r));
}

/* ---- the vision part -------------------------------------------------------- */

static bool service_client(struct sam_client *c)
{
	char url[SAM_CLIENT_URL_MAX];
	struct sam_error err = { 0 };
	if (sam_service_url("vision", SAM_VISION_DEFAULT_PORT, url, sizeof url, &err) ||
	    sam_client_init(c, url, &err)) {
		sam_log(SAM_LOG_WARN, "api: vision service: %s", err.msg);
		return false;
	}
	c->connect_timeout_ms = CONNECT_TIMEOUT_MS;
	c->timeout_ms = SERVICE_TIMEOUT_MS;
	return true;
}

/*
 * Ask the vision service for v's result: 0 with *res; an HTTP status
 * (4xx: the service's verdict on the request, to pass on) with msg; or
 * < 0 when the caller should serve it in-process.
 */
static int via_service(struct sam_client *c, struct vreq *v, json_t **res, char *msg, size_t cap)
{
	struct sam_error err = { 0 };
	if (v->raw && !json_object_get(v->req, "image")) {
		char *b64 = sam_base64_encode(v->raw, v->raw_len);
		json_object_set_new(v->req, "image", json_string(b64));
		free(b64);
	}
	int rc = sam_client_json(c, "/process", v->req, res, &err);
	if (!rc) {
		json_object_del(*res, "service");
		json_object_set_new(*res, "served_by", json_string("service"));
		return 0;
	}
	if (c->status >= 400 && c->status < 500) {
		snprintf(msg, cap, "%s", err.msg);
		char *p = strstr(msg, " (HTTP ");
		if (p) *p = 0;
		return (int)c->status;
	}
	sam_log(SAM_LOG_INFO, "api: vision service unavailable (%s); serving in-process", err.msg);
	return -1;
}

static json_t *in_process_result(struct vreq *v)
{
	json_t *res = sam_vision_job_result(&v->job);
	json_object_set_new(res, "served_by", json_string("in-process"));
	return res;
}

/* The vision part at once: the service, else in-process. NULL after responding. */
static json_t *vision_now(struct api *a, struct http_req *r, struct vreq *v)
{
	struct sam_client c;
	json_t *res = NULL;
	char msg[512] = "";
	int st = -1;
	if (service_client(&c)) {
		st = via_service(&c, v, &res, msg, sizeof msg);
		sam_client_free(&c);
	}
	if (st == 0) return res;
	if (st > 0) {
		http_error(r, st, "%s", msg);
		return NULL;
	}
	if (!sam_gate_acquire(&a->res, a->timeout_s)) {
		api_busy(r, 5, "heavy work is queued");
		return NULL;
	}
	struct sam_error err = { 0 };
	int rc = 0;
	while (!rc && v->job.stage != SAM_VISION_DONE) rc = sam_vision_job_step(&v->job, v->vc, &err);
	sam_gate_release(&a->res);
	if (rc) {
		http_error(r, sam_vision_status(rc), "%s", err.msg);
		return NULL;
	}
	return in_process_result(v);
}

/* ---- the prompt ------------------------------------------------------------- */

struct fit {
	const struct sam_model *m;
	int budget; /* tokens the prompt may take */
	int last;   /* tokens of the prompt counted last */
	struct sam_error err;
};

static int fits(const char *prompt, void *ud)
{
	struct fit *f = ud;
	struct chat_msg msg = { "user", prompt };
	int32_t *ids, stop[CHAT_MAX_STOP_IDS];
	size_t n;
	int n_stop;
	bool known;
	int rc = chat_tokenize(f->m, &msg, 1, true, &ids, &n, stop, &n_stop, &known, &f->err);
	if (rc) return rc;
	free(ids);
	f->last = (int)n;
	return f->last <= f->budget;
}

struct vprompt {
	int32_t *ids;
	int n;
	size_t words, kept; /* of the OCR text, in the prompt */
};

/*
 * The prompt for v's question about res, tokenized, with as much OCR text
 * as leaves the answer room for max_tokens, but for no more than a
 * quarter of the context (a small model's context could not hold the
 * question otherwise); lowers v->o.max_tokens to what is left and sets its
 * stop ids. 0, or an HTTP status with msg.
 */
static int vision_prompt(struct api *a, struct vreq *v, json_t *res, struct vprompt *p, char *msg, size_t cap)
{
	memset(p, 0, sizeof *p);
	int ctx = engine_n_ctx(v->e);
	int room = api_cap_tokens(a, v->o.max_tokens);
	if (room > ctx / 4) room = ctx / 4 > 0 ? ctx / 4 : 1;
	struct fit f = { .m = engine_model(v->e), .budget = ctx - room };
	char *text;
	int rc = sam_vision_prompt_fit(res, v->question, fits, &f, &text, &p->words, &p->kept);
	if (rc == SAM_ERANGE) {
		snprintf(msg, cap,
			 "the question is too long: without the image's text the prompt is %d tokens; "
			 "the context holds %d, %d of them kept for the answer",
			 f.last, ctx, room);
		return 400;
	}
	if (rc) {
		snprintf(msg, cap, "cannot format the prompt: %s", f.err.msg);
		return 400;
	}
	struct chat_msg m = { "user", text };
	size_t n;
	bool known;
	struct sam_error err = { 0 };
	rc = chat_tokenize(f.m, &m, 1, true, &p->ids, &n, v->o.stop_ids, &v->o.n_stop_ids, &known, &err);
	free(text);
	if (rc) {
		snprintf(msg, cap, "cannot format the prompt: %s", err.msg);
		return 400;
	}
	p->n = (int)n;
	if (v->o.max_tokens > ctx - p->n) v->o.max_tokens = ctx - p->n;
	return 0;
}

/* What the reply says about the prompt's OCR text. */
static void add_prompt_info(json_t *j, const struct vprompt *p)
{
	json_object_set_new(j, "ocr_truncated", json_boolean(p->kept < p->words));
	json_object_set_new(j, "ocr_words_in_prompt", json_integer((json_int_t)p->kept));
}

/* ---- POST /api/vision/process --------------------------------------------- */

void h_vision_process(struct http_req *r, void *ud)
{
	struct api *a = ud;
	struct vreq v;
	struct vprompt p = { 0 };
	json_t *res = NULL;
	char msg[512];
	if (!vreq_parse(r, a, &v) || !(res = vision_now(a, r, &v))) goto out;
	drop_image(&v);
	if (!v.describe) {
		http_respond_json(r, 200, res);
		res = NULL;
		goto out;
	}
	int st = vision_prompt(a, &v, res, &p, msg, sizeof msg);
	if (st) {
		http_error(r, st, "%s", msg);
		goto out;
	}
	struct gen_req *g = gen_submit(a, r, v.e, p.ids, p.n, &v.o);
	if (!g) goto out;
	int fin, np, ng;
	char *answer = gen_finish(v.e, g, r, &fin, &np, &ng);
	if (answer) {
		char model[256];
		json_object_set_new(res, "answer", json_string(answer));
		json_object_set_new(res, "model", json_string(gen_model_id(v.e, model, sizeof model)));
		json_object_set_new(res, "tokens", json_integer(ng));
		json_object_set_new(res, "prompt_tokens", json_integer(np));
		json_object_set_new(res, "finish_reason",
				    json_string(gen_finish_name(fin == GEN_TIMEOUT ? GEN_LENGTH : fin)));
		add_prompt_info(res, &p);
		http_respond_json(r, 200, res);
		res = NULL;
	}
	free(answer);
out:
	free(p.ids);
	json_decref(res);
	vreq_free(&v);
}

/* ---- POST /api/vision/stream ---------------------------------------------- */

enum vs_state {
	VS_PROBE,   /* is the vision service there? */
	VS_SERVICE, /* the service does the vision part */
	VS_GATE,    /* in-process: waiting for the heavy-work gate */
	VS_STEP,    /* in-process: one stage of the job per call */
	VS_ANSWER,  /* the model's answer, from generate.c's stream */
	VS_END,
};

struct vstream {
	struct api *a;
	struct vreq v;
	enum vs_state state;
	struct sam_client c;
	bool have_client, gate_held;
	double gate_deadline;
	struct sse_stream *gen;
	char *out; /* bytes for the wire */
	size_t len, off;
};

/* "event: NAME\ndata: JSON\n\n"; data is stolen. */
static void emit(struct vstream *s, const char *event, json_t *data)
{
	char *d = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (!d) sam_die("out of memory encoding an event");
	size_t n = strlen(event) + strlen(d) + 32;
	s->out = xrealloc(s->out, s->len + n);
	s->len += (size_t)snprintf(s->out + s->len, n, "event: %s\ndata: %s\n\n", event, d);
	free(d);
}

/* A progress event p (stolen), saying who does the vision part. */
static void progress(struct vstream *s, json_t *p, const char *served_by)
{
	if (served_by) json_object_set_new(p, "served_by", json_string(served_by));
	emit(s, "progress", p);
}

static void fail(struct vstream *s, int status, const char *msg)
{
	emit(s, "error", http_error_body(status, msg));
	s->state = VS_END;
}

/* The vision part is done (res stolen): the model answers, or the result is the answer. */
static void vision_done(struct vstream *s, json_t *res)
{
	struct vreq *v = &s->v;
	drop_image(v);
	const char *served = json_string_value(json_object_get(res, "served_by"));
	if (!v->describe) {
		const char *text = json_string_value(json_object_get(json_object_get(res, "ocr"), "text"));
		if (text && *text) emit(s, "token", json_pack("{s:s}", "text", text));
		emit(s, "done", json_pack("{s:O?, s:s, s:o}", "task", json_object_get(res, "task"), "response",
					  text ? text : "", "vision", res));
		s->state = VS_END;
		return;
	}
	struct vprompt p;
	struct gen_req *g = NULL;
	char msg[600];
	int st = vision_prompt(s->a, v, res, &p, msg, sizeof msg);
	if (!st) {
		struct sam_error err = { 0 };
		int retry;
		if ((st = gen_try_submit(s->a, v->e, p.ids, p.n, &v->o, &g, &retry, &err))) {
			if (retry) api_busy_text(msg, sizeof msg, err.msg);
			else snprintf(msg, sizeof msg, "%s", err.msg);
		}
	}
	free(p.ids);
	if (st) {
		json_decref(res);
		fail(s, st, msg);
		return;
	}
	char model[256];
	gen_model_id(v->e, model, sizeof model);
	json_t *t = json_pack("{s:s, s:s, s:i, s:i, s:I}", "stage", "thinking", "model", model, "prompt_tokens", p.n,
			      "max_tokens", api_cap_tokens(s->a, v->o.max_tokens), "ocr_words", (json_int_t)p.words);
	add_prompt_info(t, &p);
	progress(s, t, served);
	/* the answer streams as "token" events; the vision result rides on the final "done" event */
	json_t *meta = json_pack("{s:s, s:o}", "model", model, "vision", res);
	add_prompt_info(meta, &p);
	s->gen = gen_stream_open(s->a, v->e, g, SSE_COGNITIVE, meta, false, NULL, NULL, NULL);
	s->state = VS_ANSWER;
}

/* Is the service there? A quick GET /health, so a missing service costs no "service" event. */
static void vs_probe(struct vstream *s)
{
	json_t *h = NULL;
	struct sam_error err = { 0 };
	s->state = VS_GATE;
	s->gate_deadline = sam_now() + s->a->timeout_s;
	if (!(s->have_client = service_client(&s->c))) return;
	s->c.timeout_ms = PROBE_TIMEOUT_MS;
	int rc = sam_client_json(&s->c, "/health", NULL, &h, &err);
	json_decref(h);
	s->c.timeout_ms = SERVICE_TIMEOUT_MS;
	if (rc) return;
	progress(s, json_pack("{s:s, s:I}", "stage", "decoding", "bytes", (json_int_t)s->v.job.len), "service");
	s->state = VS_SERVICE;
}

static void vs_service(struct vstream *s)
{
	json_t *res;
	char msg[512] = "";
	int st = via_service(&s->c, &s->v, &res, msg, sizeof msg);
	if (st == 0) vision_done(s, res);
	else if (st > 0) fail(s, st, msg);
	else s->state = VS_GATE; /* its deadline was set by the probe */
}

static void vs_gate(struct vstream *s)
{
	if (sam_gate_acquire(&s->a->res, GATE_SLICE_S)) {
		s->gate_held = true;
		progress(s, sam_vision_job_progress(&s->v.job), "in-process");
		s->state = VS_STEP;
	} else if (sam_now() > s->gate_deadline) {
		char msg[200];
		fail(s, 503, api_busy_text(msg, sizeof msg, "heavy work is queued"));
	}
}

static void vs_step(struct vstream *s)
{
	struct sam_error err = { 0 };
	int rc = sam_vision_job_step(&s->v.job, s->v.vc, &err);
	if (rc || s->v.job.stage == SAM_VISION_DONE) {
		sam_gate_release(&s->a->res);
		s->gate_held = false;
	}
	if (rc) fail(s, sam_vision_status(rc), err.msg);
	else if (s->v.job.stage == SAM_VISION_DONE) vision_done(s, in_process_result(&s->v));
	else progress(s, sam_vision_job_progress(&s->v.job), "in-process");
}

static ssize_t vs_read(void *cls, char *buf, size_t max)
{
	struct vstream *s = cls;
	if (s->off == s->len) {
		s->off = s->len = 0;
		switch (s->state) {
		case VS_PROBE: vs_probe(s); break;
		case VS_SERVICE: vs_service(s); break;
		case VS_GATE: vs_gate(s); break;
		case VS_STEP: vs_step(s); break;
		case VS_ANSWER: return gen_stream_read(s->gen, buf, max);
		case VS_END: return -1;
		}
		if (!s->len) return 0;
	}
	size_t n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(buf, s->out + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void vs_done(void *cls, bool client_gone)
{
	struct vstream *s = cls;
	if (s->gen) gen_stream_close(s->gen, client_gone);
	if (s->gate_held) sam_gate_release(&s->a->res);
	if (s->have_client) sam_client_free(&s->c);
	vreq_free(&s->v);
	free(s->out);
	free(s);
}

void h_vision_stream(struct http_req *r, void *ud)
{
	struct api *a = ud;
	struct vstream *s = xcalloc(1, sizeof *s);
	s->a = a;
	if (!vreq_parse(r, a, &s->v)) {
		vreq_free(&s->v);
		free(s);
		return;
	}
	emit(s, "progress", json_pack("{s:s, s:s, s:I}", "stage", "queued", "task", sam_vision_task_name(s->v.job.task),
				      "bytes", (json_int_t)s->v.job.len));
	http_respond_stream(r, 200, "text/event-stream", vs_read, s, vs_done);
}
