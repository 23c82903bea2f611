/* events.c - the event log in sam.db (see events.h). */
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sam/events.h"

static bool lower_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool sam_event_type_valid(const char *type)
{
	if (!type) return false;
	size_t n = strlen(type);
	if (n == 0 || n > SAM_EVENT_NAME_MAX) return false;
	int dots = 0;
	for (size_t i = 0; i < n; i++) {
		if (type[i] == '.') {
			/* no leading, trailing or doubled dot */
			if (i == 0 || i == n - 1 || type[i - 1] == '.') return false;
			dots++;
		} else if (!lower_word_char(type[i])) {
			return false;
		}
	}
	return dots > 0;
}

bool sam_event_source_valid(const char *source)
{
	if (!source) return false;
	size_t n = 0;
	for (const char *p = source; *p; p++, n++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
			  c == '.' || c == ':' || c == '-';
		if (!ok || n == SAM_EVENT_NAME_MAX) return false;
	}
	return n > 0;
}

/* Validate json (one JSON value) and return it re-encoded compactly (malloc'd). */
static int compact_json(const char *json, char **out, struct sam_error *err)
{
	size_t len = strlen(json);
	if (len > SAM_EVENT_DATA_MAX)
		return sam_errorf(err, SAM_EINVAL, "event data of %zu bytes is larger than %u", len, SAM_EVENT_DATA_MAX);
	json_error_t jerr;
	json_t *j = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
	if (!j) return sam_errorf(err, SAM_EINVAL, "event data is not JSON: %s (at %d)", jerr.text, jerr.position);
	*out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!*out) return sam_errorf(err, SAM_ENOMEM, "out of memory encoding event data");
	return 0;
}

int sam_event_publish(struct sam_db *db, const char *source, const char *type, const char *json_data,
		      int64_t *seq_out, struct sam_error *err)
{
	if (!sam_event_source_valid(source))
		return sam_errorf(err, SAM_EINVAL, "invalid event source \"%.70s\": want 1-%d characters of [A-Za-z0-9_.:-]",
				  source ? source : "(null)", SAM_EVENT_NAME_MAX);
	if (!sam_event_type_valid(type))
		return sam_errorf(err, SAM_EINVAL, "invalid event type \"%.70s\": want dotted lowercase like service.ready",
				  type ? type : "(null)");
	char *data;
	int rc = compact_json(json_data ? json_data : "{}", &data, err);
	if (rc) return rc;
	sqlite3_stmt *st;
	rc = sam_db_prepare(db, &st, "INSERT INTO events(time, source, type, data) VALUES(?1, ?2, ?3, ?4)", err);
	if (rc) goto out;
	sqlite3_bind_double(st, 1, sam_db_time());
	sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, data, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "publish %s", type);
	else if (seq_out) *seq_out = sqlite3_last_insert_rowid(sam_db_handle(db));
	sqlite3_finalize(st);
out:
	free(data);
	return rc;
}

/* Publish on this thread's default connection; log a failure. */
static int publish_default(const char *source, const char *type, const char *json)
{
	struct sam_error err = { 0 };
	struct sam_db *db;
	int rc = sam_db_thread(&db, NULL, &err);
	if (!rc) rc = sam_event_publish(db, source, type, json, NULL, &err);
	if (rc) sam_log(SAM_LOG_WARN, "event %s from %s not published: %s", type ? type : "(null)",
			source ? source : "(null)", err.msg);
	return rc;
}

int sam_event_publishf(const char *source, const char *type, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > SAM_EVENT_DATA_MAX) {
		sam_log(SAM_LOG_WARN, "event %s from %s not published: data too large", type, source);
		return SAM_EINVAL;
	}
	char *json = malloc((size_t)n + 1);
	if (!json) return SAM_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(json, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = publish_default(source, type, json);
	free(json);
	return rc;
}

int sam_event_publishp(const char *source, const char *type, const char *fmt, ...)
{
	json_error_t jerr;
	va_list ap;
	va_start(ap, fmt);
	json_t *j = json_vpack_ex(&jerr, 0, fmt, ap);
	va_end(ap);
	if (!j) {
		sam_log(SAM_LOG_WARN, "event %s from %s not published: json_pack: %s", type, source, jerr.text);
		return SAM_EINVAL;
	}
	char *json = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!json) return SAM_ENOMEM;
	int rc = publish_default(source, type, json);
	free(json);
	return rc;
}

void sam_event_service_started(const char *service, int port)
{
	if (getenv("SAM_SERVICE")) return; /* a child of the supervisor, which says it itself */
	sam_event_publishp(service, SAM_EV_SERVICE_STARTED, "{s:s, s:i, s:i}", "service", service, "pid", (int)getpid(),
			   "port", port);
}

int sam_events_since(struct sam_db *db, int64_t after_seq, size_t limit, struct sam_event **events, size_t *n,
		     struct sam_error *err)
{
	*events = NULL;
	*n = 0;
	if (limit == 0 || limit > SAM_EVENTS_BATCH_MAX) limit = SAM_EVENTS_BATCH_MAX;
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"SELECT seq, time, source, type, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
				err);
	if (rc) return rc;
	sqlite3_bind_int64(st, 1, after_seq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	struct sam_event *v = NULL;
	size_t len = 0, cap = 0;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct sam_event *nv = realloc(v, nc * sizeof *v);
			if (!nv) goto nomem;
			v = nv;
			cap = nc;
		}
		struct sam_event *e = &v[len];
		e->seq = sqlite3_column_int64(st, 0);
		e->time = sqlite3_column_double(st, 1);
		const unsigned char *t = sqlite3_column_text(st, 2);
		snprintf(e->source, sizeof e->source, "%s", t ? (const char *)t : "");
		t = sqlite3_column_text(st, 3);
		snprintf(e->type, sizeof e->type, "%s", t ? (const char *)t : "");
		t = sqlite3_column_text(st, 4);
		size_t dl = (size_t)sqlite3_column_bytes(st, 4);
		if (!t) {
			t = (const unsigned char *)"{}";
			dl = 2;
		}
		if (!(e->data = malloc(dl + 1))) goto nomem;
		memcpy(e->data, t, dl);
		e->data[dl] = 0;
		len++;
	}
	if (s != SQLITE_DONE) {
		rc = sam_db_errorf(db, err, s, "read events");
		goto fail;
	}
	sqlite3_finalize(st);
	*events = v;
	*n = len;
	return 0;
nomem:
	rc = sam_errorf(err, SAM_ENOMEM, "out of memory reading events");
fail:
	sqlite3_finalize(st);
	sam_events_free(v, len);
	return rc;
}

void sam_events_free(struct sam_event *events, size_t n)
{
	if (!events) return;
	for (size_t i = 0; i < n; i++) free(events[i].data);
	free(events);
}

int sam_events_last_seq(struct sam_db *db, int64_t *seq, struct sam_error *err)
{
	/* sqlite_sequence remembers the highest seq after the rows are pruned */
	return sam_db_query_int(db,
				"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
				" coalesce((SELECT max(seq) FROM events), 0))",
				seq, err);
}

int sam_events_prune(struct sam_db *db, size_t keep_last_n, int64_t *deleted, struct sam_error *err)
{
	if (deleted) *deleted = 0;
	sqlite3_stmt *st;
	/* the (keep+1)-th newest and everything older go; fewer rows: the subquery is NULL */
	int rc = sam_db_prepare(db, &st,
				"DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
				err);
	if (rc) return rc;
	sqlite3_bind_int64(st, 1, keep_last_n > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)keep_last_n);
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "prune events");
	else if (deleted) *deleted = sqlite3_changes(sam_db_handle(db));
	sqlite3_finalize(st);
	return rc;
}
