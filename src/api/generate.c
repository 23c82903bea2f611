/* generate.c - shared machinery of the generating endpoints (see generate.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/generate.h"
#include "sam/utf8.h"

/* ---- options -------------------------------------------------------------- */

static bool bad(struct http_req *r, const char *field, const char *want)
{
	http_error(r, 400, "field '%s' must be %s", field, want);
	return false;
}

/* A number field in [min, max]; absent or null leaves *out. */
static bool num_field(struct http_req *r, json_t *body, const char *key, double min, double max, double *out)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v)) return true;
	if (!json_is_number(v)) return bad(r, key, "a number");
	double d = json_number_value(v);
	if (d < min || d > max) {
		char want[96];
		snprintf(want, sizeof want, "a number in [%g, %g]", min, max);
		return bad(r, key, want);
	}
	*out = d;
	return true;
}

static bool int_field(struct http_req *r, json_t *body, const char *key, long long min, long long max, long long *out)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v)) return true;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		char want[96];
		snprintf(want, sizeof want, "an integer in [%lld, %lld]", min, max);
		return bad(r, key, want);
	}
	*out = json_integer_value(v);
	return true;
}

static uint64_t random_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &s, sizeof s) != sizeof s) s = 0;
		close(fd);
	}
	return s ^ (uint64_t)(sam_now() * 1e9);
}

bool gen_parse_opts(struct http_req *r, json_t *body, struct gen_opts *o, float default_temp, int default_max)
{
	memset(o, 0, sizeof *o);
	sam_sampler_defaults(&o->sp);
	o->sp.temp = default_temp;
	o->sp.seed = random_seed();
	long long mt = default_max, topk = o->sp.top_k, seed = 0, n = 1;
	double temp = default_temp, top_p = o->sp.top_p, min_p = o->sp.min_p, rp = o->sp.repeat_penalty, ignored = 0;
	if (!int_field(r, body, "max_tokens", 1, 1 << 24, &mt) ||
	    !int_field(r, body, "max_completion_tokens", 1, 1 << 24, &mt) ||
	    !num_field(r, body, "temperature", 0, 2, &temp) || !num_field(r, body, "top_p", 0, 1, &top_p) ||
	    !int_field(r, body, "top_k", 0, 1 << 30, &topk) || !num_field(r, body, "min_p", 0, 1, &min_p) ||
	    !num_field(r, body, "repeat_penalty", 0.01, 10, &rp) ||
	    !num_field(r, body, "frequency_penalty", -2, 2, &ignored) ||
	    !num_field(r, body, "presence_penalty", -2, 2, &ignored) || !int_field(r, body, "n", 1, 1, &n))
		return false;
	json_t *sv = json_object_get(body, "seed");
	if (sv && !json_is_null(sv)) {
		if (!json_is_integer(sv)) return bad(r, "seed", "an integer");
		seed = json_integer_value(sv);
		o->sp.seed = (uint64_t)seed;
	}
	json_t *st = json_object_get(body, "stream");
	if (st && !json_is_null(st)) {
		if (!json_is_boolean(st)) return bad(r, "stream", "true or false");
		o->stream = json_is_true(st);
	}
	json_t *so = json_object_get(body, "stream_options");
	if (so && !json_is_null(so)) {
		if (!json_is_object(so)) return bad(r, "stream_options", "an object");
		json_t *iu = json_object_get(so, "include_usage");
		if (iu && !json_is_boolean(iu)) return bad(r, "stream_options.include_usage", "true or false");
		o->include_usage = iu && json_is_true(iu);
	}
	json_t *stop = json_object_get(body, "stop");
	if (stop && !json_is_null(stop)) {
		if (json_is_string(stop)) {
			if (!json_string_length(stop)) return bad(r, "stop", "a non-empty string or an array of them");
			o->stop[o->n_stop++] = json_string_value(stop);
		} else if (json_is_array(stop) && json_array_size(stop) <= GEN_MAX_STOP) {
			size_t i;
			json_t *s;
			json_array_foreach(stop, i, s) {
				if (!json_is_string(s) || !json_string_length(s))
					return bad(r, "stop", "a non-empty string or an array of up to 8 of them");
				o->stop[o->n_stop++] = json_string_value(s);
			}
		} else {
			return bad(r, "stop", "a non-empty string or an array of up to 8 of them");
		}
	}
	o->max_tokens = (int)mt;
	o->sp.temp = (float)temp;
	o->sp.top_p = (float)top_p;
	o->sp.top_k = (int)topk;
	o->sp.min_p = (float)min_p;
	o->sp.repeat_penalty = (float)rp;
	return true;
}

/* ---- prompts ---------------------------------------------------------------- */

static int32_t *tokenize(struct http_req *r, struct api_engine *e, const char *text, size_t len, int *n_out)
{
	const struct sam_model *m = engine_model(e);
	int32_t *ids = NULL;
	size_t n = 0;
	struct sam_error err;
	if (tok_encode(&m->vocab, text, len, true, true, &ids, &n, &err)) {
		http_error(r, 400, "cannot tokenize the prompt: %s", err.msg);
		return NULL;
	}
	*n_out = (int)n;
	return ids;
}

/* Lower max_tokens to what the context leaves; false (after a 400) when nothing is left. */
static bool fit(struct http_req *r, struct api_engine *e, int n, int *max_tokens)
{
	int room = engine_n_ctx(e) - n;
	if (room < 1) {
		http_error(r, 400, "the prompt is %d tokens long; the context holds %d", n, engine_n_ctx(e));
		return false;
	}
	if (*max_tokens > room) *max_tokens = room;
	return true;
}

int32_t *gen_text_prompt(struct api *a, struct http_req *r, struct api_engine *e, const char *text, int *max_tokens,
			 int *n_out)
{
	(void)a;
	int32_t *ids = tokenize(r, e, text, strlen(text), n_out);
	if (ids && !fit(r, e, *n_out, max_tokens)) {
		free(ids);
		return NULL;
	}
	return ids;
}

int32_t *gen_chat_prompt(struct api *a, struct http_req *r, struct api_engine *e, struct chat_msg *msgs, size_t *n_msgs,
			 struct gen_opts *o, int *n_out)
{
	(void)a;
	size_t first = *n_msgs && !strcmp(msgs[0].role, "system") ? 1 : 0;
	for (;;) {
		int32_t *ids = NULL;
		size_t n = 0;
		bool known;
		struct sam_error err;
		if (chat_tokenize(engine_model(e), msgs, *n_msgs, true, &ids, &n, o->stop_ids, &o->n_stop_ids, &known,
				  &err)) {
			http_error(r, 400, "cannot format the conversation: %s", err.msg);
			return NULL;
		}
		*n_out = (int)n;
		/* keep at least the last message; drop from the oldest after the system prompt */
		if (*n_out + o->max_tokens <= engine_n_ctx(e) || *n_msgs <= first + 1) {
			if (!fit(r, e, *n_out, &o->max_tokens)) {
				free(ids);
				return NULL;
			}
			return ids;
		}
		free(ids);
		memmove(&msgs[first], &msgs[first + 1], (*n_msgs - first - 1) * sizeof *msgs);
		(*n_msgs)--;
	}
}

int gen_try_submit(struct api *a, struct api_engine *e, const int32_t *prompt, int n, const struct gen_opts *o,
		   struct gen_req **out, int *retry_after, struct sam_error *err)
{
	struct gen_params p = { .max_tokens = api_cap_tokens(a, o->max_tokens), .sp = o->sp, .n_stop = o->n_stop,
				.timeout_s = a->timeout_s };
	for (int i = 0; i < o->n_stop; i++) p.stop[i] = o->stop[i];
	for (int i = 0; i < o->n_stop_ids; i++) p.stop_ids[p.n_stop_ids++] = o->stop_ids[i];
	*retry_after = 0;
	int rc = engine_submit(e, prompt, n, &p, out, err);
	if (rc == SAM_EUNSUPPORTED) {
		*retry_after = 2;
		sam_errorf(err, rc, "too many requests are waiting");
		return 503;
	}
	return rc ? rc == SAM_ENOMEM ? 503 : 400 : 0;
}

struct gen_req *gen_submit(struct api *a, struct http_req *r, struct api_engine *e, const int32_t *prompt, int n,
			   const struct gen_opts *o)
{
	struct gen_req *g;
	struct sam_error err;
	int retry, status = gen_try_submit(a, e, prompt, n, o, &g, &retry, &err);
	if (!status) return g;
	if (retry) api_busy(r, retry, err.msg);
	else http_error(r, status, "%s", err.msg);
	return NULL;
}

char *gen_collect(struct api_engine *e, struct gen_req *g, struct http_req *r, bool *gone)
{
	size_t cap = 4096, len = 0;
	char *all = xmalloc(cap);
	bool finished = false;
	*gone = false;
	while (!finished) {
		gen_wait(e, g, 100);
		for (;;) {
			if (cap - len < 1024) all = xrealloc(all, cap *= 2);
			size_t n = gen_take(e, g, all + len, cap - len - 1, &finished);
			len += n;
			if (!n) break;
		}
		if (!finished && !*gone && http_client_gone(r)) {
			*gone = true;
			gen_cancel(e, g);
		}
	}
	char *clean = utf8_sanitize(all, len, NULL);
	free(all);
	return clean;
}

char *gen_finish(struct api_engine *e, struct gen_req *g, struct http_req *r, int *fin, int *np, int *ng)
{
	bool gone;
	char *text = gen_collect(e, g, r, &gone);
	gen_result(e, g, fin, np, ng);
	gen_release(e, g);
	if (gone || *fin == GEN_CANCELLED) http_error(r, 503, "the request was cancelled");
	else if (*fin == GEN_ERROR) http_error(r, 500, "the engine failed");
	else if (*fin == GEN_TIMEOUT && !*ng) api_busy(r, 5, "the engine is busy");
	else return text;
	free(text);
	return NULL;
}

const char *gen_openai_finish(int finish)
{
	return finish == GEN_STOP ? "stop" : "length";
}

const char *gen_model_id(struct api_engine *e, char *buf, size_t cap)
{
	const char *p = engine_model_path(e), *b = strrchr(p, '/');
	b = b ? b + 1 : p;
	size_t n = strlen(b);
	if (n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
	snprintf(buf, cap, "%.*s", (int)n, b);
	return buf;
}

/* ---- SSE --------------------------------------------------------------------- */

struct sbuf {
	char *s;
	size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

struct sse_stream {
	struct api *a;
	struct api_engine *e;
	struct gen_req *g;
	enum sse_kind kind;
	json_t *meta;
	bool include_usage, started, ended;
	sse_finish_fn on_finish;
	void *user;
	void (*free_user)(void *);
	struct sbuf out;   /* bytes for the wire */
	size_t out_off;
	struct sbuf all;   /* the whole answer */
	struct sbuf think; /* SSE_THINK: unparsed text, reasoning seen */
	struct sbuf reasoning, answer;
	int think_state;   /* 0 answer, 1 inside <think> */
};

/* "event: NAME\ndata: JSON\n\n" (no event line when name is NULL); j is stolen. */
static void emit(struct sse_stream *s, const char *name, json_t *j)
{
	char *d = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (name) {
		sb_add(&s->out, "event: ", 7);
		sb_add(&s->out, name, strlen(name));
		sb_add(&s->out, "\n", 1);
	}
	sb_add(&s->out, "data: ", 6);
	sb_add(&s->out, d, strlen(d));
	sb_add(&s->out, "\n\n", 2);
	free(d);
}

static json_t *meta_copy(struct sse_stream *s)
{
	return json_deep_copy(s->meta);
}

static json_t *openai_chunk(struct sse_stream *s, json_t *choice)
{
	json_t *j = meta_copy(s);
	json_object_set_new(j, "object", json_string(s->kind == SSE_OPENAI_CHAT ? "chat.completion.chunk" : "text_completion"));
	json_object_set_new(j, "choices", choice ? json_pack("[o]", choice) : json_array());
	return j;
}

/* Split THINK text into reasoning and answer pieces, holding back a partial tag. */
static void think_feed(struct sse_stream *s, const char *t, size_t n, bool flush)
{
	sb_add(&s->think, t, n);
	for (;;) {
		const char *tag = s->think_state ? "</think>" : "<think>";
		size_t tl = strlen(tag);
		char *hit = s->think.n ? strstr(s->think.s, tag) : NULL;
		size_t cut = hit ? (size_t)(hit - s->think.s) : s->think.n;
		if (!hit && !flush) {
			for (size_t k = tl - 1; k > 0; k--) /* a suffix that could start the tag waits */
				if (cut >= k && !memcmp(s->think.s + cut - k, tag, k)) {
					cut -= k;
					break;
				}
			cut = utf8_safe_end(s->think.s, cut);
		}
		if (cut) {
			char *piece = utf8_sanitize(s->think.s, cut, NULL);
			sb_add(s->think_state ? &s->reasoning : &s->answer, piece, strlen(piece));
			emit(s, s->think_state ? "reasoning" : "token", json_pack("{s:s}", "text", piece));
			free(piece);
		}
		size_t consumed = cut + (hit ? tl : 0);
		memmove(s->think.s, s->think.s + consumed, s->think.n - consumed + 1);
		s->think.n -= consumed;
		if (!hit) return;
		s->think_state = !s->think_state;
	}
}

static void on_piece(struct sse_stream *s, const char *raw, size_t n)
{
	sb_add(&s->all, raw, n);
	if (s->kind == SSE_THINK) {
		think_feed(s, raw, n, false);
		return;
	}
	char *t = utf8_sanitize(raw, n, NULL);
	switch (s->kind) {
	case SSE_COGNITIVE: emit(s, "token", json_pack("{s:s}", "text", t)); break;
	case SSE_OPENAI_CHAT:
		emit(s, NULL, openai_chunk(s, json_pack("{s:i, s:{s:s}, s:n, s:n}", "index", 0, "delta", "content", t,
						       "logprobs", "finish_reason")));
		break;
	case SSE_OPENAI_COMPLETION:
		emit(s, NULL, openai_chunk(s, json_pack("{s:s, s:i, s:n, s:n}", "text", t, "index", 0, "logprobs",
						       "finish_reason")));
		break;
	default: break;
	}
	free(t);
}

static void on_end(struct sse_stream *s)
{
	int fin, np, ng;
	gen_result(s->e, s->g, &fin, &np, &ng);
	char *text = utf8_sanitize(s->all.s ? s->all.s : "", s->all.n, NULL);
	if (s->kind == SSE_THINK) think_feed(s, "", 0, true);
	if (fin == GEN_ERROR || fin == GEN_CANCELLED || (fin == GEN_TIMEOUT && !ng)) {
		json_t *err = json_pack("{s:s, s:s}", "message",
					fin == GEN_ERROR ? "the engine failed" : fin == GEN_TIMEOUT ? "timed out waiting for the engine" : "cancelled",
					"type", fin == GEN_ERROR ? "server_error" : "overloaded_error");
		emit(s, s->kind == SSE_OPENAI_CHAT || s->kind == SSE_OPENAI_COMPLETION ? NULL : "error",
		     json_pack("{s:o}", "error", err));
	} else if (s->kind == SSE_OPENAI_CHAT || s->kind == SSE_OPENAI_COMPLETION) {
		const char *fr = gen_openai_finish(fin);
		emit(s, NULL, openai_chunk(s, s->kind == SSE_OPENAI_CHAT
					   ? json_pack("{s:i, s:{}, s:n, s:s}", "index", 0, "delta", "logprobs", "finish_reason", fr)
					   : json_pack("{s:s, s:i, s:n, s:s}", "text", "", "index", 0, "logprobs", "finish_reason", fr)));
		if (s->include_usage) {
			json_t *u = openai_chunk(s, NULL);
			json_object_set_new(u, "usage", json_pack("{s:i, s:i, s:i}", "prompt_tokens", np, "completion_tokens",
								  ng, "total_tokens", np + ng));
			emit(s, NULL, u);
		}
	} else {
		json_t *d = meta_copy(s);
		json_object_set_new(d, "response", json_string(s->kind == SSE_THINK ? (s->answer.s ? s->answer.s : "") : text));
		if (s->kind == SSE_THINK) json_object_set_new(d, "reasoning", json_string(s->reasoning.s ? s->reasoning.s : ""));
		json_object_set_new(d, "tokens", json_integer(ng));
		json_object_set_new(d, "prompt_tokens", json_integer(np));
		json_object_set_new(d, "finish_reason", json_string(gen_finish_name(fin == GEN_TIMEOUT ? GEN_LENGTH : fin)));
		emit(s, "done", d);
	}
	if (s->kind == SSE_OPENAI_CHAT || s->kind == SSE_OPENAI_COMPLETION) sb_add(&s->out, "data: [DONE]\n\n", 14);
	if (s->on_finish && (fin == GEN_STOP || fin == GEN_LENGTH || fin == GEN_TIMEOUT))
		s->on_finish(s->a, s->user, s->kind == SSE_THINK && s->answer.s ? s->answer.s : text, fin, np, ng);
	free(text);
	s->ended = true;
}

ssize_t gen_stream_read(struct sse_stream *s, char *buf, size_t max)
{
	if (s->out_off == s->out.n) {
		s->out.n = s->out_off = 0;
		if (s->ended) return -1;
		if (!s->started) {
			s->started = true;
			if (s->kind == SSE_OPENAI_CHAT)
				emit(s, NULL, openai_chunk(s, json_pack("{s:i, s:{s:s, s:s}, s:n, s:n}", "index", 0, "delta", "role",
								      "assistant", "content", "", "logprobs", "finish_reason")));
		}
		if (!s->out.n) {
			gen_wait(s->e, s->g, 100);
			char piece[4096];
			bool finished = false;
			size_t n;
			while ((n = gen_take(s->e, s->g, piece, sizeof piece, &finished)) > 0) on_piece(s, piece, n);
			if (finished) on_end(s);
		}
		if (s->out.n == 0) return 0;
	}
	size_t n = s->out.n - s->out_off;
	if (n > max) n = max;
	memcpy(buf, s->out.s + s->out_off, n);
	s->out_off += n;
	return (ssize_t)n;
}

void gen_stream_close(struct sse_stream *s, bool client_gone)
{
	if (!s->ended || client_gone) gen_cancel(s->e, s->g); /* frees the slot at the next step */
	gen_release(s->e, s->g);
	json_decref(s->meta);
	free(s->out.s);
	free(s->all.s);
	free(s->think.s);
	free(s->reasoning.s);
	free(s->answer.s);
	if (s->free_user) s->free_user(s->user);
	free(s);
}

struct sse_stream *gen_stream_open(struct api *a, struct api_engine *e, struct gen_req *g, enum sse_kind kind,
				   json_t *meta, bool include_usage, sse_finish_fn on_finish, void *user,
				   void (*free_user)(void *))
{
	struct sse_stream *s = xcalloc(1, sizeof *s);
	s->a = a;
	s->e = e;
	s->g = g;
	s->kind = kind;
	s->meta = meta;
	s->include_usage = include_usage;
	s->on_finish = on_finish;
	s->user = user;
	s->free_user = free_user;
	return s;
}

static ssize_t sse_read(void *cls, char *buf, size_t max) { return gen_stream_read(cls, buf, max); }
static void sse_done(void *cls, bool client_gone) { gen_stream_close(cls, client_gone); }

void gen_stream(struct api *a, struct http_req *r, struct api_engine *e, struct gen_req *g, enum sse_kind kind,
		json_t *meta, bool include_usage, sse_finish_fn on_finish, void *user, void (*free_user)(void *))
{
	struct sse_stream *s = gen_stream_open(a, e, g, kind, meta, include_usage, on_finish, user, free_user);
	http_respond_stream(r, 200, "text/event-stream", sse_read, s, sse_done);
}
