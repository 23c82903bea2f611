/*
 * h_vision.c - POST /api/vision/process and /api/vision/stream. The
 * request goes to the vision service (`sam vision`, found like any service,
 * with a short connect timeout); when that is down, times out or fails
 * (5xx), the api runs the same library in-process behind its own
 * heavy-work gate. The reply's "served_by" says which: "service" or
 * "in-process". Tasks "describe" and "ask" then give the analysis and the
 * OCR text to the LLM as a prompt with the user's question ("prompt").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/generate.h"
#include "sam/client.h"
#include "sam/vision.h"

#define CONNECT_TIMEOUT_MS 300
#define SERVICE_TIMEOUT_MS 60000

static bool is_json(const char *ct) { return !ct || !*ct || !strncasecmp(ct, "application/json", 16); }

/* Ask the vision service; 0 with *res, or non-zero when the caller should fall back (or *status says the error). */
static int via_service(json_t *req, json_t **res, int *status, char *msg, size_t cap)
{
	struct sam_client c;
	struct sam_error err = { 0 };
	char url[SAM_CLIENT_URL_MAX];
	*res = NULL;
	*status = 0;
	if (sam_service_url("vision", SAM_VISION_DEFAULT_PORT, url, sizeof url, &err)) return -1;
	if (sam_client_init(&c, url, &err)) return -1;
	c.connect_timeout_ms = CONNECT_TIMEOUT_MS;
	c.timeout_ms = SERVICE_TIMEOUT_MS;
	int rc = sam_client_json(&c, "/process", req, res, &err);
	if (rc && c.status >= 400 && c.status < 500) { /* the service's verdict on the request: pass it on */
		*status = (int)c.status;
		snprintf(msg, cap, "%s", err.msg);
		char *p = strstr(msg, " (HTTP ");
		if (p) *p = 0;
	} else if (rc) {
		sam_log(SAM_LOG_INFO, "api: vision service unavailable (%s); serving in-process", err.msg);
	}
	sam_client_free(&c);
	return rc;
}

struct vjob {
	json_t *req;       /* the JSON request ({"image": base64} made from a raw body) */
	const char *task;  /* as asked */
	const char *prompt;
	bool describe;
};

/* Analysis/OCR by the service or in-process. On failure responds and returns NULL. */
static json_t *vision_result(struct api *a, struct http_req *r, struct vjob *j)
{
	json_t *res = NULL;
	int status;
	char msg[512] = "";
	if (via_service(j->req, &res, &status, msg, sizeof msg) == 0) {
		json_object_del(res, "service");
		json_object_set_new(res, "served_by", json_string("service"));
		return res;
	}
	if (status) {
		http_error(r, status, "%s", msg);
		return NULL;
	}
	struct sam_vision_conf vc;
	struct sam_error err = { 0 };
	int rc = sam_vision_conf_load(&vc, &a->conf, &err);
	if (rc) {
		http_error(r, 500, "%s", err.msg);
		return NULL;
	}
	if (!sam_gate_acquire(&a->res, a->timeout_s)) {
		api_busy(r, 5, "heavy work is queued");
		return NULL;
	}
	char *text = json_dumps(j->req, JSON_COMPACT);
	rc = sam_vision_process(&vc, text, strlen(text), false, NULL, NULL, &res, &err);
	free(text);
	sam_gate_release(&a->res);
	if (rc) {
		http_error(r, sam_vision_status(rc), "%s", err.msg);
		return NULL;
	}
	json_object_set_new(res, "served_by", json_string("in-process"));
	return res;
}

/* Read the request into j (j->req owned by the caller). Responds 400 and returns false if bad. */
static bool parse(struct http_req *r, struct vjob *j)
{
	size_t len;
	const char *body = http_body(r, &len);
	if (is_json(http_header(r, "Content-Type"))) {
		if (!(j->req = http_body_json(r))) return false;
	} else {
		char *b64 = sam_base64_encode(body ? body : "", body ? len : 0);
		j->req = json_pack("{s:s}", "image", b64);
		free(b64);
		const char *t = http_query(r, "task"), *l = http_query(r, "lang"), *p = http_query(r, "prompt");
		if (t) json_object_set_new(j->req, "task", json_string(t));
		if (l) json_object_set_new(j->req, "lang", json_string(l));
		if (p) json_object_set_new(j->req, "prompt", json_string(p));
	}
	json_t *t = json_object_get(j->req, "task"), *p = json_object_get(j->req, "prompt");
	if (t && !json_is_string(t)) {
		http_error(r, 400, "field 'task' must be a string");
		return false;
	}
	if (p && !json_is_null(p) && !json_is_string(p)) {
		http_error(r, 400, "field 'prompt' must be a string");
		return false;
	}
	j->task = t ? json_string_value(t) : "ocr";
	j->prompt = p ? json_string_value(p) : NULL;
	j->describe = !strcmp(j->task, "describe") || !strcmp(j->task, "ask");
	/* the service answers describe/ask with analysis and OCR; the LLM part is ours */
	if (j->describe) json_object_set_new(j->req, "task", json_string("describe"));
	return true;
}

static void serve(struct http_req *r, struct api *a, bool stream)
{
	struct vjob j = { 0 };
	json_t *res = NULL;
	char *prompt_text = NULL;
	int32_t *prompt = NULL;
	if (!parse(r, &j)) goto out;
	if (!(res = vision_result(a, r, &j))) goto out;
	if (!j.describe && !stream) {
		http_respond_json(r, 200, res);
		res = NULL;
		goto out;
	}
	json_t *opts_src = is_json(http_header(r, "Content-Type")) ? j.req : NULL;
	json_t *empty = json_object();
	struct gen_opts o;
	bool ok = gen_parse_opts(r, opts_src ? opts_src : empty, &o, 0.3f, a->default_max_tokens);
	json_decref(empty);
	if (!ok) goto out;
	o.stream = stream;
	struct api_engine *e = api_pick_engine(a, r);
	if (!e) goto out;
	prompt_text = sam_vision_prompt(res, j.prompt);
	struct chat_msg msg = { "user", prompt_text };
	size_t n_msgs = 1;
	int n_prompt;
	if (!(prompt = gen_chat_prompt(a, r, e, &msg, &n_msgs, &o, &n_prompt))) goto out;
	struct gen_req *g = gen_submit(a, r, e, prompt, n_prompt, &o);
	if (!g) goto out;
	char model[256];
	gen_model_id(e, model, sizeof model);
	if (stream) {
		/* the answer streams as "token" events; the vision result rides on the final "done" event */
		json_t *meta = json_pack("{s:s, s:O}", "model", model, "vision", res);
		gen_stream(a, r, e, g, SSE_COGNITIVE, meta, false, NULL, NULL, NULL);
		goto out;
	}
	int fin, np, ng;
	char *answer = gen_finish(e, g, r, &fin, &np, &ng);
	if (answer) {
		json_object_set_new(res, "answer", json_string(answer));
		json_object_set_new(res, "model", json_string(model));
		json_object_set_new(res, "tokens", json_integer(ng));
		json_object_set_new(res, "finish_reason", json_string(gen_finish_name(fin == GEN_TIMEOUT ? GEN_LENGTH : fin)));
		http_respond_json(r, 200, res);
		res = NULL;
	}
	free(answer);
out:
	free(prompt);
	free(prompt_text);
	json_decref(res);
	json_decref(j.req);
}

void h_vision_process(struct http_req *r, void *ud) { serve(r, ud, false); }
void h_vision_stream(struct http_req *r, void *ud) { serve(r, ud, true); }
