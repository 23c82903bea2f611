/*
 * api.h - the api hub's shared state, seen by its route handlers.
 *
 * The HTTP server starts first (so /api/health answers at once); models load
 * on a background thread and are published through atomic pointers, so a
 * handler sees either no engine (503 "loading") or a ready one.
 */
#ifndef SAM_API_API_H
#define SAM_API_API_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "api/engine.h"
#include "sam/config.h"
#include "sam/http.h"
#include "sam/resource.h"

#define API_MAX_ROUTES 48

struct api_metrics {
	pthread_mutex_t mu;
	struct {
		const char *route;
		int status;
		uint64_t count;
	} rows[API_MAX_ROUTES * 8];
	int n_rows;
};

struct api {
	struct sam_conf conf;
	struct sam_resource res;
	struct http_server *http;
	_Atomic(struct api_engine *) main, small;
	char *model_path, *small_path;
	char *api_key;
	char load_error[512];
	struct engine_opts eo;
	int default_max_tokens, medium_max_tokens, low_max_tokens;
	double timeout_s;
	double t_start;
	struct api_metrics metrics;
	atomic_bool stopping;
	pthread_t loader, poller;
	bool loader_started, poller_started;
	pthread_mutex_t small_mu;
	/*
	 * The deployed adapter (h_adapters.c). The main engine holds the loaded
	 * one; adapter_mu serialises loading adapters/current (so two reloads
	 * cannot install an older link last) and guards adapter_error.
	 */
	pthread_mutex_t adapter_mu;
	char adapter_error[512]; /* why the last load of adapters/current failed; "" when it did not */
	float lora_scale;        /* [api] lora_scale */
	long long events_keep;   /* [events] keep: rows of the event log kept by the hourly prune; 0 all */
	size_t vision_max_body;  /* body cap of the vision routes (from [vision] max_bytes); 0: [api] max_body */
	atomic_uint_least64_t reloads_ok, reloads_failed;
};

/* Metrics */
void metrics_count(struct api_metrics *m, const char *route, int status);
void metrics_render(struct api *a, struct http_req *r);

/* Handlers, by file. */
void h_health(struct http_req *r, void *ud);
void h_ready(struct http_req *r, void *ud);
void h_status(struct http_req *r, void *ud);
void h_metrics(struct http_req *r, void *ud);
void h_models(struct http_req *r, void *ud);
void h_chat(struct http_req *r, void *ud);
void h_query(struct http_req *r, void *ud);
void h_cognitive_stream(struct http_req *r, void *ud);
void h_think_stream(struct http_req *r, void *ud);
void h_session_get(struct http_req *r, void *ud);
void h_session_delete(struct http_req *r, void *ud);
void h_chat_completions(struct http_req *r, void *ud);
void h_completions(struct http_req *r, void *ud);
void h_events(struct http_req *r, void *ud);
void h_suggestions(struct http_req *r, void *ud);
void h_feedback(struct http_req *r, void *ud);
void h_approvals_list(struct http_req *r, void *ud);
void h_approvals_propose(struct http_req *r, void *ud);
void h_approval_get(struct http_req *r, void *ud);
void h_approval_approve(struct http_req *r, void *ud);
void h_approval_reject(struct http_req *r, void *ud);
void h_adapters_list(struct http_req *r, void *ud);
void h_adapters_reload(struct http_req *r, void *ud);
void h_vision_process(struct http_req *r, void *ud);
void h_vision_stream(struct http_req *r, void *ud);
void h_speak(struct http_req *r, void *ud);
void h_voice_stream(struct http_req *r, void *ud);

/*
 * Load adapters/current for the main engine e and make it e's adapter (no
 * link: none), with adapter_mu held. 0 with *loaded the new adapter (a
 * reference for the caller, NULL for none); else the loader's error, and
 * e keeps the adapter it had.
 */
int api_adapter_reload(struct api *a, struct api_engine *e, struct api_adapter **loaded, struct sam_error *err);
/* At start, before e is published (adapter_mu held): load adapters/current, or log why not and serve without. */
void api_adapter_startup(struct api *a, struct api_engine *e);
/* {"id","path","rank","alpha","scale"} of the adapter the main model serves with, or JSON null. */
json_t *api_adapter_json(struct api *a);

/* The main engine, or NULL after responding 503 with Retry-After (still loading, or it failed to). */
struct api_engine *api_main_engine(struct api *a, struct http_req *r);
/*
 * The engine to serve a request with, given the resource level: the small
 * model at LOW when configured, none at CRITICAL. On failure responds
 * (503 with Retry-After) and returns NULL.
 */
struct api_engine *api_pick_engine(struct api *a, struct http_req *r);
/* Max tokens allowed now (the request's wish capped by the level). */
int api_cap_tokens(struct api *a, int wanted);
/* 503 + Retry-After + "I need a moment - <reason>. Try again shortly." */
void api_busy(struct http_req *r, int retry_after_s, const char *reason);
/* That sentence, into buf (for a stream already under way, which can only send it as an event). Returns buf. */
const char *api_busy_text(char *buf, size_t cap, const char *reason);

#endif
