/* metrics.c - request counters and the Prometheus text of GET /metrics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

void metrics_count(struct api_metrics *m, const char *route, int status)
{
	pthread_mutex_lock(&m->mu);
	int i = 0;
	while (i < m->n_rows && !(m->rows[i].status == status && !strcmp(m->rows[i].route, route))) i++;
	if (i == m->n_rows && m->n_rows < (int)(sizeof m->rows / sizeof m->rows[0])) {
		m->rows[i].route = route; /* route strings are the static route table's */
		m->rows[i].status = status;
		m->rows[i].count = 0;
		m->n_rows++;
	}
	if (i < m->n_rows) m->rows[i].count++;
	pthread_mutex_unlock(&m->mu);
}

struct buf {
	char *s;
	size_t n, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->n) {
			b->n += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 64);
		b->s = xrealloc(b->s, b->cap);
	}
}

static void engine_metrics(struct buf *b, const char *which, struct api_engine *e)
{
	if (!e) return;
	struct engine_stats st;
	engine_get_stats(e, &st);
	bprintf(b, "sam_queue_depth{model=\"%s\"} %d\n", which, st.queued);
	bprintf(b, "sam_active_generations{model=\"%s\"} %d\n", which, st.active);
	bprintf(b, "sam_generation_requests_total{model=\"%s\"} %llu\n", which, (unsigned long long)st.requests);
	bprintf(b, "sam_queue_rejections_total{model=\"%s\"} %llu\n", which, (unsigned long long)st.rejected_full);
	bprintf(b, "sam_prompt_tokens_total{model=\"%s\"} %llu\n", which, (unsigned long long)st.prompt_tokens);
	bprintf(b, "sam_tokens_generated_total{model=\"%s\"} %llu\n", which, (unsigned long long)st.gen_tokens);
	bprintf(b, "sam_generation_tokens_per_second{model=\"%s\"} %.3f\n", which, st.last_gen_tps);
	uint64_t cum = 0;
	for (int i = 0; i < 11; i++) {
		cum += st.wait_buckets[i];
		bprintf(b, "sam_engine_wait_seconds_bucket{model=\"%s\",le=\"%g\"} %llu\n", which, engine_wait_bounds[i],
			(unsigned long long)cum);
	}
	cum += st.wait_buckets[11];
	bprintf(b, "sam_engine_wait_seconds_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", which, (unsigned long long)cum);
	bprintf(b, "sam_engine_wait_seconds_sum{model=\"%s\"} %.6f\n", which, st.wait_sum);
	bprintf(b, "sam_engine_wait_seconds_count{model=\"%s\"} %llu\n", which, (unsigned long long)st.wait_count);
}

void metrics_render(struct api *a, struct http_req *r)
{
	struct buf b = { xmalloc(4096), 0, 4096 };
	bprintf(&b, "# HELP sam_http_requests_total HTTP requests by route and status.\n"
		    "# TYPE sam_http_requests_total counter\n");
	pthread_mutex_lock(&a->metrics.mu);
	for (int i = 0; i < a->metrics.n_rows; i++)
		bprintf(&b, "sam_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", a->metrics.rows[i].route,
			a->metrics.rows[i].status, (unsigned long long)a->metrics.rows[i].count);
	pthread_mutex_unlock(&a->metrics.mu);
	bprintf(&b, "# TYPE sam_queue_depth gauge\n# TYPE sam_active_generations gauge\n"
		    "# TYPE sam_tokens_generated_total counter\n# TYPE sam_prompt_tokens_total counter\n"
		    "# TYPE sam_generation_tokens_per_second gauge\n"
		    "# HELP sam_engine_wait_seconds Time a request waited in the queue for the engine.\n"
		    "# TYPE sam_engine_wait_seconds histogram\n");
	engine_metrics(&b, "main", atomic_load(&a->main));
	engine_metrics(&b, "small", atomic_load(&a->small));
	bprintf(&b, "# HELP sam_adapter_reloads_total POST /api/adapters/reload by result.\n"
		    "# TYPE sam_adapter_reloads_total counter\n"
		    "sam_adapter_reloads_total{result=\"ok\"} %llu\nsam_adapter_reloads_total{result=\"failed\"} %llu\n",
		(unsigned long long)atomic_load(&a->reloads_ok), (unsigned long long)atomic_load(&a->reloads_failed));
	pthread_mutex_lock(&a->res.mu);
	int level = a->res.level;
	double avail = a->res.avail_mb;
	int gate = a->res.gate_used;
	pthread_mutex_unlock(&a->res.mu);
	bprintf(&b, "# HELP sam_resource_level 0 critical, 1 low, 2 medium, 3 ok.\n# TYPE sam_resource_level gauge\n"
		    "sam_resource_level %d\n# TYPE sam_memory_available_bytes gauge\nsam_memory_available_bytes %.0f\n"
		    "# TYPE sam_heavy_gate_in_use gauge\nsam_heavy_gate_in_use %d\n"
		    "# TYPE sam_resident_memory_bytes gauge\nsam_resident_memory_bytes %zu\n"
		    "# TYPE sam_uptime_seconds gauge\nsam_uptime_seconds %.3f\n",
		level, avail * 1048576.0, gate, sam_rss_bytes(), sam_now() - a->t_start);
	http_respond(r, 200, "text/plain; version=0.0.4", b.s, b.n);
	free(b.s);
}
