/*
 * server.c - `sam api`: the route table, authentication, the model loader
 * and resource poller threads, and the policy helpers handlers share.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/server.h"
#include "sam/db.h"
#include "sam/events.h"
#include "sam/fs.h"
#include "sam/vision.h"

static const struct http_route routes[] = {
	{ "GET", "/api/health", h_health },
	{ "GET", "/api/ready", h_ready },
	{ "GET", "/api/status", h_status },
	{ "GET", "/metrics", h_metrics },
	{ "POST", "/api/chat", h_chat },
	{ "POST", "/api/query", h_query },
	{ "POST", "/api/cognitive/stream", h_cognitive_stream },
	{ "POST", "/api/think/stream", h_think_stream },
	{ "GET", "/api/sessions/*", h_session_get },
	{ "DELETE", "/api/sessions/*", h_session_delete },
	{ "GET", "/api/events", h_events },
	{ "GET", "/api/suggestions", h_suggestions },
	{ "POST", "/api/feedback", h_feedback },
	{ "GET", "/api/approvals", h_approvals_list },
	{ "POST", "/api/approvals", h_approvals_propose },
	{ "GET", "/api/approvals/*", h_approval_get },
	{ "POST", "/api/approvals/*/approve", h_approval_approve },
	{ "POST", "/api/approvals/*/reject", h_approval_reject },
	{ "POST", "/v1/chat/completions", h_chat_completions },
	{ "POST", "/v1/completions", h_completions },
	{ "GET", "/v1/models", h_models },
	{ "GET", "/api/adapters", h_adapters_list },
	{ "POST", "/api/adapters/reload", h_adapters_reload },
	{ "POST", "/api/vision/process", h_vision_process },
	{ "POST", "/api/vision/stream", h_vision_stream },
	{ "POST", "/api/speak", h_speak },
	{ "POST", "/api/voice/stream", h_voice_stream },
	{ NULL, NULL, NULL },
};

const char *api_busy_text(char *buf, size_t cap, const char *reason)
{
	snprintf(buf, cap, "I need a moment - %s. Try again shortly.", reason);
	return buf;
}

void api_busy(struct http_req *r, int retry_after_s, const char *reason)
{
	char ra[16], msg[600];
	snprintf(ra, sizeof ra, "%d", retry_after_s);
	http_set_header(r, "Retry-After", ra);
	http_error(r, 503, "%s", api_busy_text(msg, sizeof msg, reason));
}

struct api_engine *api_main_engine(struct api *a, struct http_req *r)
{
	struct api_engine *e = atomic_load(&a->main);
	if (e) return e;
	if (a->load_error[0]) api_busy(r, 30, a->load_error);
	else api_busy(r, 5, "the model is still loading");
	return NULL;
}

struct api_engine *api_pick_engine(struct api *a, struct http_req *r)
{
	struct api_engine *main_e = api_main_engine(a, r);
	if (!main_e) return NULL;
	int level = sam_resource_level(&a->res);
	if (level == SAM_LEVEL_CRITICAL) {
		api_busy(r, 10, "memory is critically low");
		return NULL;
	}
	if (level == SAM_LEVEL_LOW && a->small_path) { /* without the adapter: it was trained for the main model */
		struct api_engine *s = atomic_load(&a->small);
		if (!s) {
			/* loaded on first need; the mapping costs little until pages are touched */
			pthread_mutex_lock(&a->small_mu);
			s = atomic_load(&a->small);
			if (!s) {
				struct sam_error err;
				struct engine_opts o = a->eo;
				if (engine_start(&s, a->small_path, &o, &a->res, &err) == 0) {
					atomic_store(&a->small, s);
					sam_log(SAM_LOG_INFO, "api: memory is low, serving with the small model %s", a->small_path);
				} else {
					sam_log(SAM_LOG_ERROR, "api: small model: %s", err.msg);
					s = NULL;
				}
			}
			pthread_mutex_unlock(&a->small_mu);
		}
		if (s) return s;
	}
	return main_e;
}

int api_cap_tokens(struct api *a, int wanted)
{
	int level = sam_resource_level(&a->res);
	int cap = level >= SAM_LEVEL_OK ? wanted : level == SAM_LEVEL_MEDIUM ? a->medium_max_tokens : a->low_max_tokens;
	return wanted < cap ? wanted : cap;
}

static bool authorize(struct http_req *r, void *ud)
{
	struct api *a = ud;
	if (!a->api_key || !strcmp(http_path(r), "/api/health")) return true;
	const char *h = http_header(r, "Authorization");
	const char *k = h && !strncasecmp(h, "Bearer ", 7) ? h + 7 : http_header(r, "X-API-Key");
	if (k && strlen(k) == strlen(a->api_key)) {
		unsigned diff = 0; /* constant time: the key is a secret */
		for (size_t i = 0; k[i]; i++) diff |= (unsigned)(k[i] ^ a->api_key[i]);
		if (!diff) return true;
	}
	http_set_header(r, "WWW-Authenticate", "Bearer");
	http_error(r, 401, "a valid API key is required (Authorization: Bearer KEY)");
	return false;
}

/* Images come base64-encoded in the body: the vision routes take what [vision] max_bytes allows. */
static size_t route_max_body(const struct http_route *rt, void *ud)
{
	struct api *a = ud;
	return rt->fn == h_vision_process || rt->fn == h_vision_stream ? a->vision_max_body : 0;
}

static void on_done(void *ud, const char *route, int status, double secs)
{
	(void)secs;
	struct api *a = ud;
	metrics_count(&a->metrics, route, status);
}

static void *loader_main(void *arg)
{
	struct api *a = arg;
	struct sam_error err;
	struct api_engine *e = NULL;
	double t0 = sam_now();
	if (engine_start(&e, a->model_path, &a->eo, &a->res, &err)) {
		snprintf(a->load_error, sizeof a->load_error, "the model failed to load: %.400s", err.msg);
		sam_log(SAM_LOG_ERROR, "api: %s", err.msg);
		return NULL;
	}
	/* the adapter first, so that no request is served without it; a reload meanwhile waits for the lock */
	pthread_mutex_lock(&a->adapter_mu);
	api_adapter_startup(a, e);
	atomic_store(&a->main, e);
	pthread_mutex_unlock(&a->adapter_mu);
	sam_log(SAM_LOG_INFO, "api: model %s ready in %.2f s (context %d, %d slots)", a->model_path, sam_now() - t0,
		engine_n_ctx(e), a->eo.n_slots);
	return NULL;
}

/*
 * Keep the event log bounded: the newest [events] keep rows (default
 * 100000; 0 keeps all). Sequence numbers are never reused, so a client
 * resuming from a pruned id still gets everything newer that is left.
 */
static void prune_events(struct api *a)
{
	struct sam_db *db;
	struct sam_error err;
	int64_t deleted = 0;
	if (!a->events_keep) return;
	if (sam_db_thread(&db, NULL, &err) || sam_events_prune(db, (size_t)a->events_keep, &deleted, &err))
		sam_log(SAM_LOG_WARN, "api: pruning events: %s", err.msg);
	else if (deleted)
		sam_log(SAM_LOG_INFO, "api: pruned %lld old events (keeping %lld)", (long long)deleted, a->events_keep);
}

static void *poller_main(void *arg)
{
	struct api *a = arg;
	int previous = sam_resource_level(&a->res);
	double next_prune = sam_now() + 60; /* not in the way of the start */
	while (!atomic_load(&a->stopping)) {
		bool changed;
		int level = sam_resource_poll(&a->res, &changed);
		if (changed) {
			sam_log(SAM_LOG_WARN, "api: memory level is now %s (%.0f MB available)", sam_level_name(level),
				a->res.avail_mb);
			sam_event_publishp("api", SAM_EV_RESOURCE_LEVEL, "{s:s, s:s, s:i, s:f}", "level",
					   sam_level_name(level), "previous", sam_level_name(previous), "available_mb",
					   (int)(a->res.avail_mb + 0.5), "total_mb", sam_mem_total_mb());
			previous = level;
		}
		if (sam_now() >= next_prune) {
			prune_events(a);
			next_prune = sam_now() + 3600;
		}
		for (int i = 0; i < 10 && !atomic_load(&a->stopping); i++) usleep(100000);
	}
	sam_db_thread_release();
	return NULL;
}

int api_main(const struct api_options *opt)
{
	struct api *a = xcalloc(1, sizeof *a);
	struct sam_error err = { 0 };
	int status = 1;
	a->t_start = sam_now();
	pthread_mutex_init(&a->metrics.mu, NULL);
	pthread_mutex_init(&a->small_mu, NULL);
	pthread_mutex_init(&a->adapter_mu, NULL);
	long long port, slots, ctx, threads, queue, maxtok, medtok, lowtok, max_body;
	double timeout, lora_scale;
	if (sam_home_init(&err) || sam_conf_load(&a->conf, NULL, &err) ||
	    sam_conf_int(&a->conf, "api", "port", 8765, 0, 65535, &port, &err) ||
	    sam_conf_int(&a->conf, "api", "slots", 4, 1, 64, &slots, &err) ||
	    sam_conf_int(&a->conf, "api", "ctx", 0, 0, 1 << 20, &ctx, &err) ||
	    sam_conf_int(&a->conf, "api", "threads", 0, 0, 1024, &threads, &err) ||
	    sam_conf_int(&a->conf, "api", "queue", 16, 1, 100000, &queue, &err) ||
	    sam_conf_int(&a->conf, "api", "max_tokens", 512, 1, 1 << 20, &maxtok, &err) ||
	    sam_conf_int(&a->conf, "api", "medium_max_tokens", 256, 1, 1 << 20, &medtok, &err) ||
	    sam_conf_int(&a->conf, "api", "low_max_tokens", 128, 1, 1 << 20, &lowtok, &err) ||
	    sam_conf_int(&a->conf, "api", "max_body", 1 << 20, 1024, 1 << 30, &max_body, &err) ||
	    sam_conf_float(&a->conf, "api", "timeout", 120, &timeout, &err) ||
	    sam_conf_float(&a->conf, "api", "lora_scale", 1.0, &lora_scale, &err) ||
	    sam_conf_int(&a->conf, "events", "keep", 100000, 0, 1LL << 40, &a->events_keep, &err) ||
	    sam_resource_init(&a->res, &a->conf, &err)) {
		fprintf(stderr, "sam api: %s\n", err.msg);
		goto out;
	}
	const char *host = opt->host ? opt->host : sam_conf_str(&a->conf, "api", "host", "127.0.0.1");
	if (opt->port >= 0) port = opt->port;
	if (opt->slots > 0) slots = opt->slots;
	if (opt->ctx > 0) ctx = opt->ctx;
	if (opt->threads > 0) threads = opt->threads;
	if (opt->queue > 0) queue = opt->queue;
	a->model_path = sam_conf_model_path(&a->conf, opt->model);
	const char *sm = opt->small_model ? opt->small_model : sam_conf_str(&a->conf, "api", "small_model", NULL);
	a->small_path = sm && *sm ? xstrdup(sm) : NULL;
	const char *key = opt->api_key ? opt->api_key : getenv("SAM_API_KEY");
	if (!key) key = sam_conf_str(&a->conf, "api", "api_key", NULL);
	a->api_key = key && *key ? xstrdup(key) : NULL;
	a->eo = (struct engine_opts){ .n_ctx = (int)ctx, .n_slots = (int)slots, .n_threads = (int)threads,
				      .queue_max = (int)queue };
	a->default_max_tokens = (int)maxtok;
	a->medium_max_tokens = (int)medtok;
	a->low_max_tokens = (int)lowtok;
	a->timeout_s = timeout;
	a->lora_scale = (float)lora_scale;
	if (!isfinite(a->lora_scale)) {
		fprintf(stderr, "sam api: config api.lora_scale: expected a finite number\n");
		goto out;
	}

	/* signals are taken by sigwait below; every thread inherits the mask */
	sigset_t set;
	sam_service_signals(&set, 0);

	struct sam_vision_conf *vc = xmalloc(sizeof *vc);
	if (sam_vision_conf_load(vc, &a->conf, &err)) /* vision requests will say so; the rest of the api works */
		sam_log(SAM_LOG_WARN, "api: %s", err.msg);
	else if (sam_vision_max_body(vc) > (size_t)max_body)
		a->vision_max_body = sam_vision_max_body(vc);
	free(vc);
	struct http_opts ho = { .max_body = (size_t)max_body, .route_max_body = route_max_body, .authorize = authorize,
				.on_done = on_done };
	if (http_start(&a->http, host, (int)port, routes, a, &ho, &err)) {
		fprintf(stderr, "sam api: %s\n", err.msg);
		goto out;
	}
	sam_log(SAM_LOG_INFO, "api: listening on http://%s:%d", host, http_port(a->http));
	if (opt->port_file && http_write_port_file(a->http, opt->port_file, &err))
		sam_log(SAM_LOG_WARN, "api: %s", err.msg);
	/* before the model can be ready: a client that saw /api/ready never sees this event as new */
	sam_event_service_started("api", http_port(a->http));
	if (a->model_path) {
		a->loader_started = pthread_create(&a->loader, NULL, loader_main, a) == 0;
	} else {
		snprintf(a->load_error, sizeof a->load_error,
			 "no model is installed: run `sam pull`, or start with -m MODEL.gguf or SAM_MODEL");
		sam_log(SAM_LOG_WARN, "api: %s", a->load_error);
	}
	a->poller_started = pthread_create(&a->poller, NULL, poller_main, a) == 0;

	int sig = 0;
	sigwait(&set, &sig);
	sam_log(SAM_LOG_INFO, "api: signal %d, shutting down", sig);
	status = 0;
out:
	atomic_store(&a->stopping, true);
	if (a->http) http_stop(a->http); /* no handler runs after this */
	if (a->loader_started) pthread_join(a->loader, NULL);
	if (a->poller_started) pthread_join(a->poller, NULL);
	engine_stop(atomic_load(&a->main));
	engine_stop(atomic_load(&a->small));
	if (a->res.gate_cap) sam_resource_free(&a->res);
	sam_conf_free(&a->conf);
	free(a->model_path);
	free(a->small_path);
	free(a->api_key);
	pthread_mutex_destroy(&a->metrics.mu);
	pthread_mutex_destroy(&a->small_mu);
	pthread_mutex_destroy(&a->adapter_mu);
	free(a);
	return status;
}
