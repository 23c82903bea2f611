/*
 * h_suggestions.c - GET /api/suggestions: what deserves the user's
 * attention now, derived from state at the time of asking (the approval
 * queue, the newest event of each service, the training runs, files the
 * learner could not read, memory), so there is nothing to keep in step.
 */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "sam/approvals.h"
#include "sam/db.h"

enum { SEV_INFO, SEV_WARNING, SEV_CRITICAL };
static const char *const sev_names[] = { "info", "warning", "critical" };

struct sugg {
	json_t *list[3]; /* by severity, so the reply lists the most urgent first */
};

static void add(struct sugg *s, int sev, const char *kind, double since, json_t *ref, const char *action,
		const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void add(struct sugg *s, int sev, const char *kind, double since, json_t *ref, const char *action,
		const char *fmt, ...)
{
	char title[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(title, sizeof title, fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "kind", kind, "severity", sev_names[sev], "title", title,
			      "since", since > 0 ? json_real(since) : json_null(), "ref", ref ? ref : json_object());
	if (action) json_object_set_new(o, "action", json_string(action));
	json_array_append_new(s->list[sev], o);
}

static void approvals(struct sugg *s, struct sam_db *db)
{
	struct sam_approval *p = NULL;
	size_t n = 0;
	struct sam_error err;
	if (sam_approval_list(db, SAM_APPROVAL_PENDING, 100, &p, &n, &err)) {
		sam_log(SAM_LOG_WARN, "api: suggestions: %s", err.msg);
		return;
	}
	for (size_t i = n; i-- > 0;) { /* oldest first: it has waited longest */
		char action[64];
		snprintf(action, sizeof action, "sam approve %lld", (long long)p[i].id);
		bool deploy = !strcmp(p[i].kind, "training_deploy");
		add(s, SEV_WARNING, deploy ? "training" : "approval", p[i].created,
		    json_pack("{s:I, s:s}", "approval", (json_int_t)p[i].id, "kind", p[i].kind), action, "%s%s",
		    deploy ? "A finished training waits for your approval to deploy: " : "Waiting for your approval: ",
		    p[i].title);
	}
	sam_approvals_free(p, n);
}

/* A service whose newest event says it crashed or failed, and nothing since has said it came back. */
static void services(struct sugg *s, struct sam_db *db)
{
	sqlite3_stmt *st;
	struct sam_error err;
	if (sam_db_prepare(db, &st,
			   "SELECT e.type, e.time, json_extract(e.data, '$.service'),"
			   " coalesce(json_extract(e.data, '$.error'), json_extract(e.data, '$.reason'), '')"
			   " FROM events e JOIN (SELECT max(seq) AS seq FROM events WHERE type LIKE 'service.%'"
			   " AND json_extract(data, '$.service') IS NOT NULL GROUP BY json_extract(data, '$.service')) l"
			   " ON e.seq = l.seq WHERE e.type IN ('service.crashed', 'service.failed') ORDER BY e.seq",
			   &err)) {
		sam_log(SAM_LOG_WARN, "api: suggestions: %s", err.msg);
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 2);
		const char *why = (const char *)sqlite3_column_text(st, 3);
		bool failed = !strcmp(type, "service.failed");
		char action[96];
		snprintf(action, sizeof action, "sam logs %s", name);
		add(s, failed ? SEV_CRITICAL : SEV_WARNING, "service", sqlite3_column_double(st, 1),
		    json_pack("{s:s}", "service", name), action, "Service %s %s%s%s", name,
		    failed ? "has failed and is not being restarted" : "crashed and is being restarted", *why ? ": " : "",
		    why);
	}
	sqlite3_finalize(st);
}

/* The newest training run, when it failed for a reason other than being stopped or interrupted. */
static void training(struct sugg *s, struct sam_db *db)
{
	sqlite3_stmt *st;
	struct sam_error err;
	if (sam_db_prepare(db, &st,
			   "SELECT id, coalesce(finished, started), coalesce(error, '') FROM training_runs"
			   " WHERE status = 'failed' AND coalesce(error, '') <> 'interrupted'"
			   " AND started = (SELECT max(started) FROM training_runs)",
			   &err)) {
		sam_log(SAM_LOG_WARN, "api: suggestions: %s", err.msg);
		return;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		add(s, SEV_WARNING, "training", sqlite3_column_double(st, 1),
		    json_pack("{s:s}", "run", (const char *)sqlite3_column_text(st, 0)), "sam train",
		    "The last training run %s failed: %s", (const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
}

static void files(struct sugg *s, struct sam_db *db)
{
	sqlite3_stmt *st;
	struct sam_error err;
	if (sam_db_prepare(db, &st, "SELECT count(*), max(updated), min(path) FROM files WHERE status = 'error'", &err)) {
		sam_log(SAM_LOG_WARN, "api: suggestions: %s", err.msg);
		return;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
		int64_t n = sqlite3_column_int64(st, 0);
		add(s, SEV_INFO, "learning", sqlite3_column_double(st, 1), json_pack("{s:I}", "files", (json_int_t)n),
		    "sam learn stats", "%lld file%s could not be learned from (%s%s)", (long long)n, n == 1 ? "" : "s",
		    (const char *)sqlite3_column_text(st, 2), n > 1 ? ", ..." : "");
	}
	sqlite3_finalize(st);
}

static void memory(struct sugg *s, struct api *a)
{
	pthread_mutex_lock(&a->res.mu);
	int level = a->res.level;
	double avail = a->res.avail_mb;
	pthread_mutex_unlock(&a->res.mu);
	if (level == SAM_LEVEL_CRITICAL)
		add(s, SEV_CRITICAL, "memory", 0, json_pack("{s:s, s:f}", "level", "critical", "available_mb", avail), NULL,
		    "Memory is critically low (%.0f MB available): SAM answers only when it recovers; close something",
		    avail);
	else if (level == SAM_LEVEL_LOW)
		add(s, SEV_WARNING, "memory", 0, json_pack("{s:s, s:f}", "level", "low", "available_mb", avail), NULL,
		    "Memory is low (%.0f MB available): answers are shorter%s", avail,
		    a->small_path ? " and come from the small model" : "");
	if (a->load_error[0])
		add(s, SEV_CRITICAL, "model", 0, json_pack("{s:s}", "model", a->model_path ? a->model_path : ""),
		    "sam pull", "The model could not be loaded: %s", a->load_error);
}

void h_suggestions(struct http_req *r, void *ud)
{
	struct api *a = ud;
	struct sam_db *db;
	struct sam_error err;
	if (sam_db_thread(&db, NULL, &err)) {
		http_set_header(r, "Retry-After", "5");
		http_error(r, 503, "the state database is unavailable: %s", err.msg);
		return;
	}
	struct sugg s;
	for (int i = 0; i < 3; i++) s.list[i] = json_array();
	memory(&s, a);
	services(&s, db);
	approvals(&s, db);
	training(&s, db);
	files(&s, db);
	json_t *all = json_array();
	for (int i = 2; i >= 0; i--) json_array_extend(all, s.list[i]), json_decref(s.list[i]);
	http_respond_json(r, 200, json_pack("{s:o, s:I, s:f}", "suggestions", all, "count", (json_int_t)json_array_size(all),
					    "time", sam_db_time()));
}
