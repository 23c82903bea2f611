/* h_status.c - liveness, readiness, status, metrics and the model list. */
#include <string.h>
#include <time.h>

#include "api/api.h"

void h_health(struct http_req *r, void *ud)
{
	(void)ud;
	http_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void h_ready(struct http_req *r, void *ud)
{
	struct api *a = ud;
	struct api_engine *e = atomic_load(&a->main);
	if (e) {
		http_respond_json(r, 200, json_pack("{s:s, s:s}", "status", "ready", "model", engine_model_path(e)));
		return;
	}
	http_set_header(r, "Retry-After", "5");
	http_respond_json(r, 503, json_pack("{s:s, s:s}", "status", "loading", "reason",
					    a->load_error[0] ? a->load_error : "the model is still loading"));
}

static json_t *engine_json(struct api_engine *e, const char *path)
{
	if (!e) return path ? json_pack("{s:s, s:b}", "path", path, "loaded", 0) : json_null();
	const struct sam_model *m = engine_model(e);
	struct engine_stats st;
	engine_get_stats(e, &st);
	return json_pack("{s:s, s:b, s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:f}", "path", engine_model_path(e),
			 "loaded", 1, "arch", m->hp.arch_name, "n_ctx", engine_n_ctx(e), "slots", st.slots, "queued",
			 st.queued, "active", st.active, "requests", (json_int_t)st.requests, "prompt_tokens",
			 (json_int_t)st.prompt_tokens, "tokens_generated", (json_int_t)st.gen_tokens,
			 "generation_tokens_per_second", st.last_gen_tps);
}

void h_status(struct http_req *r, void *ud)
{
	struct api *a = ud;
	struct api_engine *m = atomic_load(&a->main), *s = atomic_load(&a->small);
	struct engine_stats ms = { 0 }, ss = { 0 };
	if (m) engine_get_stats(m, &ms);
	if (s) engine_get_stats(s, &ss);
	pthread_mutex_lock(&a->res.mu);
	int level = a->res.level;
	double avail = a->res.avail_mb;
	pthread_mutex_unlock(&a->res.mu);
	uint64_t requests = 0;
	pthread_mutex_lock(&a->metrics.mu);
	for (int i = 0; i < a->metrics.n_rows; i++) requests += a->metrics.rows[i].count;
	pthread_mutex_unlock(&a->metrics.mu);
	json_t *j = json_pack("{s:s, s:s, s:o, s:o, s:o, s:{s:s, s:f, s:f}, s:i, s:i, s:{s:I, s:I, s:I}, s:f, s:I}",
			      "status", m ? "ready" : "loading", "version", SAM_VERSION, "model",
			      engine_json(m, a->model_path), "small_model", engine_json(s, a->small_path), "adapter",
			      api_adapter_json(a), "resource", "level", sam_level_name(level), "available_mb", avail, "total_mb",
			      sam_mem_total_mb(), "queue_depth", ms.queued + ss.queued, "active_generations",
			      ms.active + ss.active, "counters", "requests", (json_int_t)requests, "prompt_tokens",
			      (json_int_t)(ms.prompt_tokens + ss.prompt_tokens), "tokens_generated",
			      (json_int_t)(ms.gen_tokens + ss.gen_tokens), "uptime_s", sam_now() - a->t_start, "rss_bytes",
			      (json_int_t)sam_rss_bytes());
	if (a->load_error[0]) json_object_set_new(j, "error", json_string(a->load_error));
	http_respond_json(r, 200, j);
}

void h_metrics(struct http_req *r, void *ud)
{
	metrics_render(ud, r);
}

/* The id clients use: the file name without directory and extension. */
static json_t *model_entry(const char *path, double created)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
	return json_pack("{s:s%, s:s, s:I, s:s}", "id", base, n, "object", "model", "created", (json_int_t)created,
			 "owned_by", "sam");
}

void h_models(struct http_req *r, void *ud)
{
	struct api *a = ud;
	json_t *data = json_array();
	double started = (double)time(NULL) - (sam_now() - a->t_start); /* t_start is monotonic: Unix time here */
	if (a->model_path) json_array_append_new(data, model_entry(a->model_path, started));
	if (a->small_path) json_array_append_new(data, model_entry(a->small_path, started));
	http_respond_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
