/*
 * test_api_feedback.c - POST /api/feedback on the real `sam api`: a
 * well-rated or corrected answer of a /api/chat session lands in the
 * example store (deduplicated), every feedback is a row of its own, and
 * bad requests get JSON errors.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_helpers.h"
#include "learn/learn_util.h"
#include "sam/db.h"
#include "sam/sessions.h"
#include "test.h"

#define MEM_OK "SAM_FAKE_MEMAVAILABLE_MB=8000"

/* The answer of one greedy /api/chat turn in session sid (caller frees). */
static char *chat(struct api_server *s, const char *sid, const char *message)
{
	char body[512];
	snprintf(body, sizeof body, "{\"message\":\"%s\",\"session_id\":\"%s\",\"temperature\":0,\"max_tokens\":8}",
		 message, sid);
	json_t *j = api_post_json(s, "/api/chat", body);
	CHECK(jstr(j, "response") != NULL);
	char *answer = strdup(jstr(j, "response"));
	json_decref(j);
	return answer;
}

/* s without leading and trailing white space, as the example store keeps it (static buffer). */
static const char *trimmed(const char *s)
{
	static char buf[4096];
	while (*s && strchr(" \t\n\v\f\r", *s)) s++;
	snprintf(buf, sizeof buf, "%s", s);
	size_t n = strlen(buf);
	while (n && strchr(" \t\n\v\f\r", buf[n - 1])) buf[--n] = '\0';
	return buf;
}

static struct sam_db *open_store(void)
{
	struct sam_db *db;
	struct sam_error err;
	CHECKF(sam_db_open(&db, NULL, &err) == 0, "sam.db: %s", err.msg);
	return db;
}

/* The stored example with this hash: its messages (caller decrefs), quality and origin. */
static json_t *stored_example(struct sam_db *db, const char *hash, double *quality, char origin[128])
{
	sqlite3_stmt *st;
	CHECK(sam_db_prepare(db, &st,
			     "SELECT content, quality, origin FROM examples WHERE hash = ? AND source = 'feedback'",
			     NULL) == 0);
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	CHECKF(sqlite3_step(st) == SQLITE_ROW, "no feedback example with hash %s", hash);
	json_t *ex = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	*quality = sqlite3_column_double(st, 1);
	snprintf(origin, 128, "%s", (const char *)sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
	CHECK(ex != NULL);
	json_t *msgs = json_incref(json_object_get(ex, "messages"));
	json_decref(ex);
	CHECK(json_is_array(msgs));
	return msgs;
}

static const char *role_at(json_t *msgs, size_t i)
{
	return json_string_value(json_object_get(json_array_get(msgs, i), "role"));
}

static const char *content_at(json_t *msgs, size_t i)
{
	return json_string_value(json_object_get(json_array_get(msgs, i), "content"));
}

/* POST body, expect 200 with an example; returns its hash (static) and whether it was added. */
static const char *feedback_example(struct api_server *s, const char *body, bool *added)
{
	static char hash[80];
	json_t *j = api_post_json(s, "/api/feedback", body);
	CHECK(json_is_true(jpath(j, "ok")));
	CHECK(jint(j, "feedback_id") > 0);
	CHECKF(json_is_object(jpath(j, "example")), "no example for %s: %s", body, jstr(j, "reason"));
	CHECK(jstr(j, "example.hash") && strlen(jstr(j, "example.hash")) == 64);
	CHECK(json_is_boolean(jpath(j, "example.added")));
	CHECK(jpath(j, "reason") == NULL);
	*added = json_is_true(jpath(j, "example.added"));
	snprintf(hash, sizeof hash, "%s", jstr(j, "example.hash"));
	json_decref(j);
	return hash;
}

TEST(api_feedback_turns_answers_into_examples)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, NULL });
	char *answer = chat(&s, "fb1", "Hello");
	struct sam_db *db = open_store();
	bool added;
	double q;
	char origin[128];

	/* a thumbs-up: the conversation with the answer as it was */
	const char *h = feedback_example(&s, "{\"session_id\":\"fb1\",\"message_index\":1,\"rating\":1}", &added);
	CHECK(added);
	char up_hash[80];
	snprintf(up_hash, sizeof up_hash, "%s", h);
	json_t *msgs = stored_example(db, up_hash, &q, origin);
	CHECK_INT(json_array_size(msgs), 2);
	CHECK_STR(role_at(msgs, 0), "user");
	CHECK_STR(content_at(msgs, 0), "Hello");
	CHECK_STR(role_at(msgs, 1), "assistant");
	CHECK_STR(content_at(msgs, 1), trimmed(answer));
	CHECK(q == 1.0);
	CHECK_STR(origin, "session:fb1#1");
	json_decref(msgs);

	/* the same again: one example, two feedback rows */
	h = feedback_example(&s, "{\"session_id\":\"fb1\",\"message_index\":1,\"rating\":1}", &added);
	CHECK(!added);
	CHECK_STR(h, up_hash);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM examples WHERE source = 'feedback'"), 1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM feedback WHERE session_id = 'fb1' AND message_index = 1"), 2);

	/* a correction replaces the answer, whatever the rating */
	h = feedback_example(&s,
			     "{\"session_id\":\"fb1\",\"message_index\":1,\"rating\":-1,\"correction\":"
			     "\"  Hello! How can I help you?\\n\"}",
			     &added);
	CHECK(added);
	msgs = stored_example(db, h, &q, origin);
	CHECK_INT(json_array_size(msgs), 2);
	CHECK_STR(content_at(msgs, 0), "Hello");
	CHECK_STR(role_at(msgs, 1), "assistant");
	CHECK_STR(content_at(msgs, 1), "Hello! How can I help you?");
	CHECK(q == 1.0);
	json_decref(msgs);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM feedback WHERE correction = "
				  "'  Hello! How can I help you?\n' AND rating = -1 AND example_hash IS NOT NULL"),
		  1);

	/* a thumbs-down without a correction is recorded but teaches nothing */
	json_t *j = api_post_json(&s, "/api/feedback", "{\"session_id\":\"fb1\",\"message_index\":1,\"rating\":-1}");
	CHECK(json_is_true(jpath(j, "ok")));
	CHECK(jpath(j, "example") && json_is_null(jpath(j, "example")));
	CHECK_STR(jstr(j, "reason"), "rating below 0.5 and no correction");
	long long id = jint(j, "feedback_id");
	json_decref(j);
	char sql[512];
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM feedback WHERE id = %lld AND example_hash IS NULL AND correction IS NULL"
		 " AND rating = -1 AND session_id = 'fb1' AND message_index = 1",
		 id);
	CHECK_INT(learn_q_int(db, sql), 1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM feedback"), 4);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM examples WHERE source = 'feedback'"), 2);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM events WHERE type = 'feedback.received'"), 4);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM events WHERE type = 'feedback.received' AND json_extract(data, '$.example') = 0"
		 " AND json_extract(data, '$.rating') = -1 AND json_extract(data, '$.session_id') = 'fb1'"
		 " AND json_extract(data, '$.message_index') = 1 AND json_extract(data, '$.feedback_id') = %lld",
		 id);
	CHECK_INT(learn_q_int(db, sql), 1);

	/* a fraction at the threshold still counts, with the rating as its quality */
	char *answer2 = chat(&s, "fb1", "Who are you?");
	h = feedback_example(&s, "{\"session_id\":\"fb1\",\"message_index\":3,\"rating\":0.5}", &added);
	CHECK(added);
	msgs = stored_example(db, h, &q, origin);
	CHECK(q == 0.5);
	CHECK_STR(origin, "session:fb1#3");
	CHECK_INT(json_array_size(msgs), 4);
	CHECK_STR(content_at(msgs, 3), trimmed(answer2));
	json_decref(msgs);

	/* a later turn: the whole conversation before it, then the correction */
	h = feedback_example(&s,
			     "{\"session_id\":\"fb1\",\"message_index\":3,\"rating\":0,\"correction\":\"I am SAM.\"}",
			     &added);
	CHECK(added);
	msgs = stored_example(db, h, &q, origin);
	CHECK_INT(json_array_size(msgs), 4);
	const char *roles[] = { "user", "assistant", "user", "assistant" };
	for (size_t i = 0; i < 4; i++) CHECK_STR(role_at(msgs, i), roles[i]);
	CHECK_STR(content_at(msgs, 0), "Hello");
	CHECK_STR(content_at(msgs, 1), trimmed(answer));
	CHECK_STR(content_at(msgs, 2), "Who are you?");
	CHECK_STR(content_at(msgs, 3), "I am SAM.");
	json_decref(msgs);

	sam_db_close(db);
	free(answer);
	free(answer2);
	api_stop(&s);
}

TEST(api_feedback_keeps_the_last_64_messages)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, NULL });
	struct sam_db *db = open_store();
	struct sam_error err;
	CHECK(sam_session_ensure(db, "long", NULL, &err) == 0);
	char text[32];
	for (int i = 0; i < 140; i++) {
		snprintf(text, sizeof text, "m%d", i);
		CHECK(sam_session_append(db, "long", i % 2 ? "assistant" : "user", text, 0, NULL, &err) == 0);
	}
	bool added;
	double q;
	char origin[128];
	const char *h = feedback_example(&s, "{\"session_id\":\"long\",\"message_index\":139,\"rating\":1}", &added);
	json_t *msgs = stored_example(db, h, &q, origin);
	CHECK_INT(json_array_size(msgs), 65);
	CHECK_STR(content_at(msgs, 0), "m75");
	CHECK_STR(role_at(msgs, 0), "assistant");
	CHECK_STR(content_at(msgs, 64), "m139");
	json_decref(msgs);
	/* in the middle of the session: the messages after the rated one play no part */
	h = feedback_example(&s, "{\"session_id\":\"long\",\"message_index\":5,\"rating\":1}", &added);
	msgs = stored_example(db, h, &q, origin);
	CHECK_INT(json_array_size(msgs), 6);
	CHECK_STR(content_at(msgs, 0), "m0");
	CHECK_STR(content_at(msgs, 5), "m5");
	json_decref(msgs);

	/* an empty answer cannot be learned as it is, but a correction of it can */
	CHECK(sam_session_ensure(db, "empty", NULL, &err) == 0);
	CHECK(sam_session_append(db, "empty", "user", "Hi", 0, NULL, &err) == 0);
	CHECK(sam_session_append(db, "empty", "assistant", " ", 0, NULL, &err) == 0);
	json_t *j = api_post_json(&s, "/api/feedback", "{\"session_id\":\"empty\",\"message_index\":1,\"rating\":1}");
	CHECK(json_is_null(jpath(j, "example")));
	CHECK_STR(jstr(j, "reason"), "the answer is empty");
	json_decref(j);
	feedback_example(&s, "{\"session_id\":\"empty\",\"message_index\":1,\"rating\":1,\"correction\":\"Hello!\"}",
			 &added);
	CHECK(added);
	sam_db_close(db);
	api_stop(&s);
}

TEST(api_feedback_errors)
{
	struct api_server s;
	/* the threshold comes from [learn] feedback_min_rating (here from the environment) */
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, "SAM_LEARN_FEEDBACK_MIN_RATING=0.9", NULL });
	free(chat(&s, "fb2", "Hello"));
	static const struct {
		long status;
		const char *body, *in_message;
	} cases[] = {
		{ 404, "{\"session_id\":\"nope\",\"message_index\":1,\"rating\":1}", "no session 'nope'" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":0,\"rating\":1}",
		  "message 0 is a user message; feedback rates assistant answers" },
		{ 404, "{\"session_id\":\"fb2\",\"message_index\":99,\"rating\":1}", "has no message 99" },
		{ 404, "{\"session_id\":\"fb2\",\"message_index\":2,\"rating\":1}", "has no message 2" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":-1,\"rating\":1}", "message_index" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1.0,\"rating\":1}", "message_index" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":\"1\",\"rating\":1}", "message_index" },
		{ 400, "{\"session_id\":\"fb2\",\"rating\":1}", "field 'message_index' is required" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":2}", "[-1, 1]" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":-1.5}", "[-1, 1]" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":\"1\"}", "[-1, 1]" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1}", "field 'rating' is required" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":null}", "field 'rating' is required" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":1,\"correction\":\"\"}", "correction" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":1,\"correction\":\" \\n\\t\"}",
		  "correction" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":1,\"correction\":7}", "correction" },
		{ 400, "{\"session_id\":\"fb2\",\"message_index\":1,", "malformed JSON" },
		{ 400, "[1]", "JSON object" },
		{ 400, "{\"session_id\":\"bad id!\",\"message_index\":1,\"rating\":1}", "session_id" },
		{ 400, "{\"session_id\":7,\"message_index\":1,\"rating\":1}", "session_id" },
		{ 400, "{\"message_index\":1,\"rating\":1}", "field 'session_id' is required" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct api_resp r;
		api_post(&s, "/api/feedback", cases[i].body, &r);
		const char *msg = api_check_error(&r, cases[i].status, cases[i].body);
		CHECKF(strstr(msg, cases[i].in_message) != NULL, "%s: message %.200s does not say '%s'", cases[i].body,
		       msg, cases[i].in_message);
		api_resp_free(&r);
	}
	struct api_resp r;
	api_request(&s, "GET", "/api/feedback", NULL, NULL, 0, &r);
	api_check_error(&r, 405, "GET /api/feedback");
	api_resp_free(&r);

	/* none of them was recorded; a rating under the configured threshold is, without an example */
	struct sam_db *db = open_store();
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM feedback"), 0);
	json_t *j = api_post_json(&s, "/api/feedback", "{\"session_id\":\"fb2\",\"message_index\":1,\"rating\":0.8}");
	CHECK(json_is_null(jpath(j, "example")));
	CHECK_STR(jstr(j, "reason"), "rating below 0.9 and no correction");
	json_decref(j);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM feedback WHERE rating = 0.8 AND example_hash IS NULL"), 1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM examples"), 0);
	sam_db_close(db);
	api_stop(&s);
}
