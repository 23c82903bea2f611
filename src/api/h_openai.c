/* h_openai.c - OpenAI-compatible /v1/chat/completions and /v1/completions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/generate.h"

static void new_id(char *buf, size_t cap, const char *prefix)
{
	static _Atomic unsigned long counter;
	unsigned long c = ++counter;
	snprintf(buf, cap, "%s%lx%08lx", prefix, (unsigned long)time(NULL), c);
}

/* Text of a message's content: a string, or an array of {"type":"text","text":...} parts. */
static char *content_text(json_t *c)
{
	if (json_is_string(c)) return xstrdup(json_string_value(c));
	if (!json_is_array(c)) return NULL;
	size_t len = 0, i;
	json_t *part;
	json_array_foreach(c, i, part) {
		json_t *t = json_object_get(part, "text");
		if (!json_is_string(t) || !json_is_string(json_object_get(part, "type"))) return NULL;
		len += json_string_length(t);
	}
	char *s = xmalloc(len + 1), *p = s;
	json_array_foreach(c, i, part) {
		json_t *t = json_object_get(part, "text");
		memcpy(p, json_string_value(t), json_string_length(t));
		p += json_string_length(t);
	}
	*p = 0;
	return s;
}

static json_t *usage(int np, int ng)
{
	return json_pack("{s:i, s:i, s:i}", "prompt_tokens", np, "completion_tokens", ng, "total_tokens", np + ng);
}

/* Shared tail: stream, or collect and answer in OpenAI's shape. */
static void finish_request(struct api *a, struct http_req *r, struct api_engine *e, struct gen_req *g,
			   const struct gen_opts *o, bool chat)
{
	char id[64], model[256];
	new_id(id, sizeof id, chat ? "chatcmpl-" : "cmpl-");
	gen_model_id(e, model, sizeof model);
	json_int_t created = (json_int_t)time(NULL);
	if (o->stream) {
		json_t *meta = json_pack("{s:s, s:I, s:s, s:s}", "id", id, "created", created, "model", model,
					 "system_fingerprint", "sam-" SAM_VERSION);
		gen_stream(a, r, e, g, chat ? SSE_OPENAI_CHAT : SSE_OPENAI_COMPLETION, meta, o->include_usage, NULL, NULL,
			   NULL);
		return;
	}
	int fin, np, ng;
	char *text = gen_finish(e, g, r, &fin, &np, &ng);
	if (!text) return;
	json_t *choice = chat ? json_pack("{s:i, s:{s:s, s:s}, s:n, s:s}", "index", 0, "message", "role", "assistant",
					  "content", text, "logprobs", "finish_reason", gen_openai_finish(fin))
			      : json_pack("{s:s, s:i, s:n, s:s}", "text", text, "index", 0, "logprobs", "finish_reason",
					  gen_openai_finish(fin));
	http_respond_json(r, 200,
			  json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", id, "object",
				    chat ? "chat.completion" : "text_completion", "created", created, "model", model,
				    "system_fingerprint", "sam-" SAM_VERSION, "choices", choice, "usage", usage(np, ng)));
	free(text);
}

void h_chat_completions(struct http_req *r, void *ud)
{
	struct api *a = ud;
	json_t *body = http_body_json(r);
	if (!body) return;
	struct chat_msg *msgs = NULL;
	char **texts = NULL;
	size_t n = 0;
	int32_t *prompt = NULL;
	json_t *jm = json_object_get(body, "messages");
	if (!json_is_array(jm) || !json_array_size(jm)) {
		http_error(r, 400, "field 'messages' must be a non-empty array");
		goto out;
	}
	size_t count = json_array_size(jm), i;
	msgs = xcalloc(count, sizeof *msgs);
	texts = xcalloc(count, sizeof *texts);
	json_t *m;
	json_array_foreach(jm, i, m) {
		json_t *role = json_object_get(m, "role");
		const char *rs = json_is_string(role) ? json_string_value(role) : NULL;
		if (rs && !strcmp(rs, "developer")) rs = "system";
		if (!rs || (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant"))) {
			http_error(r, 400, "messages[%zu].role must be one of system, developer, user, assistant", i);
			goto out;
		}
		texts[i] = content_text(json_object_get(m, "content"));
		if (!texts[i]) {
			http_error(r, 400, "messages[%zu].content must be a string or an array of text parts", i);
			goto out;
		}
		msgs[n++] = (struct chat_msg){ rs, texts[i] };
	}
	struct gen_opts o;
	if (!gen_parse_opts(r, body, &o, 1.0f, a->default_max_tokens)) goto out;
	struct api_engine *e = api_pick_engine(a, r);
	if (!e) goto out;
	int n_prompt;
	prompt = gen_chat_prompt(a, r, e, msgs, &n, &o, &n_prompt);
	if (!prompt) goto out;
	struct gen_req *g = gen_submit(a, r, e, prompt, n_prompt, &o);
	if (g) finish_request(a, r, e, g, &o, true);
out:
	for (size_t k = 0; texts && k < count; k++) free(texts[k]);
	free(texts);
	free(msgs);
	free(prompt);
	json_decref(body);
}

void h_completions(struct http_req *r, void *ud)
{
	struct api *a = ud;
	json_t *body = http_body_json(r);
	if (!body) return;
	int32_t *ids = NULL;
	json_t *p = json_object_get(body, "prompt");
	if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
	if (!json_is_string(p)) {
		http_error(r, 400, "field 'prompt' must be a string");
		goto out;
	}
	struct gen_opts o;
	if (!gen_parse_opts(r, body, &o, 1.0f, 16)) goto out; /* OpenAI's default max_tokens here is 16 */
	struct api_engine *e = api_pick_engine(a, r);
	if (!e) goto out;
	int n;
	ids = gen_text_prompt(a, r, e, json_string_value(p), &o.max_tokens, &n);
	if (!ids) goto out;
	struct gen_req *g = gen_submit(a, r, e, ids, n, &o);
	if (g) finish_request(a, r, e, g, &o, false);
out:
	free(ids);
	json_decref(body);
}
