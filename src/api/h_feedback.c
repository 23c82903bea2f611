/*
 * h_feedback.c - POST /api/feedback: a user rates or corrects an answer
 * stored in a session, and a corrected or well-rated answer becomes a
 * training example (learn.h). Every feedback is kept as a row of its own,
 * written in the same transaction as its example, so the table never names
 * an example that was not stored and no feedback example lacks its row.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "sam/db.h"
#include "sam/events.h"
#include "sam/learn.h"
#include "sam/sessions.h"

/* Earlier messages an example keeps: a long session must not become one huge example. */
#define CONTEXT_MAX 64

struct feedback {
	const char *sid;
	int64_t index;
	double rating;
	const char *correction; /* NULL: none */
};

static bool blank(const char *s)
{
	while (*s && strchr(" \t\n\v\f\r", *s)) s++;
	return !*s;
}

/* Read and check the body's fields into f (strings point into body); responds 400 and returns false if bad. */
static bool parse(struct http_req *r, json_t *body, struct feedback *f)
{
	json_t *sid = json_object_get(body, "session_id"), *idx = json_object_get(body, "message_index"),
	       *rating = json_object_get(body, "rating"), *corr = json_object_get(body, "correction");
	static const char *const required[] = { "session_id", "message_index", "rating" };
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		json_t *j = json_object_get(body, required[i]);
		if (!j || json_is_null(j)) {
			http_error(r, 400, "field '%s' is required", required[i]);
			return false;
		}
	}
	if (!json_is_string(sid) || !sam_session_id_valid(json_string_value(sid))) {
		http_error(r, 400, "field 'session_id' must be 1-64 characters of A-Z a-z 0-9 _ . -");
		return false;
	}
	if (!json_is_integer(idx) || json_integer_value(idx) < 0) {
		http_error(r, 400, "field 'message_index' must be an integer >= 0");
		return false;
	}
	double v = json_number_value(rating);
	if (!json_is_number(rating) || !(v >= -1 && v <= 1)) {
		http_error(r, 400, "field 'rating' must be a number in [-1, 1]");
		return false;
	}
	*f = (struct feedback){ json_string_value(sid), json_integer_value(idx), v, NULL };
	if (!corr || json_is_null(corr)) return true;
	/* jansson has already refused invalid UTF-8 and NUL bytes in strings */
	if (!json_is_string(corr) || blank(json_string_value(corr))) {
		http_error(r, 400, "field 'correction' must be a non-empty string");
		return false;
	}
	if (json_string_length(corr) > SAM_SESSION_CONTENT_MAX) {
		http_error(r, 400, "field 'correction' is longer than %u bytes", SAM_SESSION_CONTENT_MAX);
		return false;
	}
	f->correction = json_string_value(corr);
	return true;
}

static json_t *message_json(const char *role, const char *content)
{
	/* the normaliser checks the UTF-8 and says which message is bad, which json_string would not */
	return json_pack("{s:s, s:o}", "role", role, "content", json_string_nocheck(content));
}

/* The example: messages [start, idx) of m, then answer as the assistant's turn. */
static int example_of(const struct sam_message *m, size_t start, size_t idx, const char *answer,
		      struct sam_example *ex, struct sam_error *err)
{
	json_t *msgs = json_array();
	for (size_t i = start; i < idx; i++) json_array_append_new(msgs, message_json(m[i].role, m[i].content));
	json_array_append_new(msgs, message_json("assistant", answer));
	json_t *o = json_pack("{s:o}", "messages", msgs);
	int rc = sam_example_from_json(o, ex, err);
	json_decref(o);
	return rc;
}

/* The example (if any) and the feedback row; the caller holds the transaction. */
static int store(struct sam_db *db, const struct feedback *f, const struct sam_example *ex, double quality,
		 bool *added, int64_t *id, struct sam_error *err)
{
	char origin[SAM_SESSION_ID_MAX + 32];
	snprintf(origin, sizeof origin, "session:%s#%lld", f->sid, (long long)f->index);
	int rc;
	if (ex->json && (rc = sam_example_add(db, ex, "feedback", "", quality, origin, added, err))) return rc;
	sqlite3_stmt *st;
	if ((rc = sam_db_prepare(db, &st,
				 "INSERT INTO feedback(session_id, message_index, rating, correction, example_hash,"
				 " created) VALUES(?,?,?,?,?,?)",
				 err)))
		return rc;
	sqlite3_bind_text(st, 1, f->sid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, f->index);
	sqlite3_bind_double(st, 3, f->rating);
	if (f->correction) sqlite3_bind_text(st, 4, f->correction, -1, SQLITE_STATIC);
	if (ex->json) sqlite3_bind_text(st, 5, ex->hash, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 6, sam_db_time());
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	if (s != SQLITE_DONE) return sam_db_errorf(db, err, s, "recording feedback");
	*id = sqlite3_last_insert_rowid(sam_db_handle(db));
	return 0;
}

/* A store that fails is locked or out of space: worth retrying, not a bug. */
static void store_unavailable(struct http_req *r, const struct sam_error *err)
{
	http_set_header(r, "Retry-After", "5");
	http_error(r, 503, "the session store is unavailable: %s", err->msg);
}

void h_feedback(struct http_req *r, void *ud)
{
	struct api *a = ud;
	json_t *body = http_body_json(r);
	if (!body) return;
	struct sam_message *m = NULL;
	size_t n = 0;
	struct sam_example ex = { 0 };
	struct feedback f;
	struct sam_db *db;
	struct sam_error err;
	double min_rating;
	char reason[600] = "";
	if (!parse(r, body, &f)) goto out;
	if (sam_conf_float(&a->conf, "learn", "feedback_min_rating", 0.5, &min_rating, &err)) {
		http_error(r, 500, "%s", err.msg);
		goto out;
	}
	if (sam_db_thread(&db, NULL, &err)) {
		store_unavailable(r, &err);
		goto out;
	}
	/* all of it: message_index counts from the start, and last_n counts from the end */
	int rc = sam_session_history(db, f.sid, 0, &m, &n, &err);
	if (rc == SAM_ENOTFOUND) {
		http_error(r, 404, "no session '%s'", f.sid);
		goto out;
	}
	if (rc) {
		store_unavailable(r, &err);
		goto out;
	}
	if ((uint64_t)f.index >= n) {
		http_error(r, 404, "session '%s' has no message %lld (it has %zu)", f.sid, (long long)f.index, n);
		goto out;
	}
	size_t idx = (size_t)f.index;
	if (strcmp(m[idx].role, "assistant")) {
		http_error(r, 400, "message %zu is a %s message; feedback rates assistant answers", idx, m[idx].role);
		goto out;
	}

	const char *answer = f.correction ? f.correction : m[idx].content;
	if (!f.correction && f.rating < min_rating) {
		snprintf(reason, sizeof reason, "rating below %g and no correction", min_rating);
	} else if (blank(answer)) {
		snprintf(reason, sizeof reason, "the answer is empty");
	} else {
		size_t start = idx > CONTEXT_MAX ? idx - CONTEXT_MAX : 0;
		/* an example too large to store loses its oldest half of context until it fits or has one turn left */
		while ((rc = example_of(m, start, idx, answer, &ex, &err)) == SAM_ERANGE && idx - start > 1)
			start += (idx - start) / 2;
		if (rc == SAM_EINVAL || rc == SAM_ERANGE) {
			snprintf(reason, sizeof reason, "%s", err.msg);
		} else if (rc) {
			http_error(r, 500, "building the example: %s", err.msg);
			goto out;
		}
	}

	bool added = false;
	int64_t id = 0;
	if (!(rc = sam_db_begin(db, &err))) {
		if ((rc = store(db, &f, &ex, f.correction ? 1.0 : f.rating, &added, &id, &err))) sam_db_rollback(db);
		else rc = sam_db_commit(db, &err); /* a failed commit has rolled back itself */
	}
	if (rc) {
		store_unavailable(r, &err);
		goto out;
	}
	sam_event_publishp("api", "feedback.received", "{s:I, s:s, s:I, s:f, s:b}", "feedback_id", (json_int_t)id,
			   "session_id", f.sid, "message_index", (json_int_t)f.index, "rating", f.rating, "example",
			   ex.json != NULL);
	json_t *j = json_pack("{s:b, s:I, s:o}", "ok", 1, "feedback_id", (json_int_t)id, "example",
			      ex.json ? json_pack("{s:s, s:b}", "hash", ex.hash, "added", added) : json_null());
	if (reason[0]) json_object_set_new(j, "reason", json_string(reason));
	http_respond_json(r, 200, j);
out:
	sam_example_free(&ex);
	sam_messages_free(m, n);
	json_decref(body);
}
