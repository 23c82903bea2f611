/*
 * h_chat.c - SAM's own endpoints: /api/chat (with session memory in
 * sam.db), /api/query (one turn), the SSE streams /api/cognitive/stream
 * and /api/think/stream, and session history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/generate.h"
#include "sam/db.h"
#include "sam/sessions.h"

#define HISTORY_MAX 200 /* messages loaded; the context trims further */

static const char *think_system =
	"Think step by step before answering. Write your reasoning between <think> and </think>, "
	"then write the final answer after </think>.";

/* What is saved once an answer is complete. */
struct turn {
	char *session_id;
	char *user;
	int user_tokens;
};

static void turn_free(void *p)
{
	struct turn *t = p;
	if (!t) return;
	free(t->session_id);
	free(t->user);
	free(t);
}

static void save_turn(struct api *a, void *user, const char *text, int finish, int n_prompt, int n_gen)
{
	(void)a, (void)finish, (void)n_prompt;
	struct turn *t = user;
	struct sam_db *db;
	struct sam_error err;
	if (!t || !t->session_id) return;
	if (sam_db_thread(&db, NULL, &err) || sam_session_append(db, t->session_id, "user", t->user, t->user_tokens, NULL, &err) ||
	    sam_session_append(db, t->session_id, "assistant", text, n_gen, NULL, &err))
		sam_log(SAM_LOG_ERROR, "api: saving session %s: %s", t->session_id, err.msg);
}

/* A required non-empty string field; 400 naming it otherwise. */
static const char *str_field(struct http_req *r, json_t *body, const char *key, const char *alt, bool required)
{
	json_t *v = json_object_get(body, key);
	if (!v && alt && (v = json_object_get(body, alt))) key = alt; /* name the alternative only if it was given */
	if (!v || json_is_null(v)) {
		if (required) http_error(r, 400, "field '%s' is required", key);
		return NULL;
	}
	if (!json_is_string(v) || (required && !json_string_length(v))) {
		http_error(r, 400, "field '%s' must be a non-empty string", key);
		return NULL;
	}
	return json_string_value(v);
}

enum mode { MODE_CHAT, MODE_QUERY, MODE_COGNITIVE, MODE_THINK };

static void serve(struct http_req *r, struct api *a, enum mode mode)
{
	json_t *body = http_body_json(r);
	if (!body) return;
	struct sam_message *hist = NULL;
	size_t n_hist = 0;
	struct chat_msg *msgs = NULL;
	int32_t *prompt = NULL;
	struct turn *turn = NULL;
	char sid[SAM_SESSION_ID_MAX + 1] = "";
	bool sessions = mode != MODE_QUERY;
	const char *text = str_field(r, body, mode == MODE_QUERY ? "query" : "message",
				     mode == MODE_QUERY ? "message" : "query", true);
	if (!text) goto out;
	const char *system = NULL;
	if (json_object_get(body, "system")) {
		system = str_field(r, body, "system", NULL, true);
		if (!system) goto out;
	}
	json_t *sv = json_object_get(body, "session_id");
	if (sessions && sv && !json_is_null(sv)) {
		if (!json_is_string(sv) || !sam_session_id_valid(json_string_value(sv))) {
			http_error(r, 400, "field 'session_id' must be 1-64 characters of A-Z a-z 0-9 _ . -");
			goto out;
		}
		snprintf(sid, sizeof sid, "%s", json_string_value(sv));
	}
	struct gen_opts o;
	if (!gen_parse_opts(r, body, &o, 0.7f, a->default_max_tokens)) goto out;
	if (mode == MODE_COGNITIVE || mode == MODE_THINK) o.stream = true;
	struct api_engine *e = api_pick_engine(a, r);
	if (!e) goto out;

	struct sam_db *db = NULL;
	struct sam_error err;
	if (sessions) {
		bool created;
		if (sam_db_thread(&db, NULL, &err) ||
		    (sid[0] ? sam_session_ensure(db, sid, &created, &err) : sam_session_create(db, sid, &err)) ||
		    sam_session_history(db, sid, HISTORY_MAX, &hist, &n_hist, &err)) {
			http_error(r, 503, "the session store is unavailable: %s", err.msg);
			goto out;
		}
	}
	msgs = xcalloc(n_hist + 3, sizeof *msgs);
	size_t n = 0;
	if (mode == MODE_THINK) msgs[n++] = (struct chat_msg){ "system", system ? system : think_system };
	else if (system) msgs[n++] = (struct chat_msg){ "system", system };
	for (size_t i = 0; i < n_hist; i++) msgs[n++] = (struct chat_msg){ hist[i].role, hist[i].content };
	msgs[n++] = (struct chat_msg){ "user", text };
	int n_prompt;
	prompt = gen_chat_prompt(a, r, e, msgs, &n, &o, &n_prompt);
	if (!prompt) goto out;
	struct gen_req *g = gen_submit(a, r, e, prompt, n_prompt, &o);
	if (!g) goto out;
	if (sessions) {
		turn = xcalloc(1, sizeof *turn);
		turn->session_id = xstrdup(sid);
		turn->user = xstrdup(text);
	}
	char model[256];
	gen_model_id(e, model, sizeof model);
	if (o.stream) {
		json_t *meta = json_pack("{s:s}", "model", model);
		if (sessions) json_object_set_new(meta, "session_id", json_string(sid));
		gen_stream(a, r, e, g, mode == MODE_THINK ? SSE_THINK : SSE_COGNITIVE, meta, false, save_turn, turn,
			   turn_free);
		turn = NULL; /* the stream owns it */
		goto out;
	}
	int fin, np, ng;
	char *answer = gen_finish(e, g, r, &fin, &np, &ng);
	if (answer) {
		if (turn) save_turn(a, turn, answer, fin, np, ng);
		json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:s}", "response", answer, "model", model, "tokens", ng,
				      "prompt_tokens", np, "finish_reason", gen_finish_name(fin == GEN_TIMEOUT ? GEN_LENGTH : fin));
		if (sessions) json_object_set_new(j, "session_id", json_string(sid));
		http_respond_json(r, 200, j);
	}
	free(answer);
out:
	turn_free(turn);
	free(prompt);
	free(msgs);
	sam_messages_free(hist, n_hist);
	json_decref(body);
}

void h_chat(struct http_req *r, void *ud) { serve(r, ud, MODE_CHAT); }
void h_query(struct http_req *r, void *ud) { serve(r, ud, MODE_QUERY); }
void h_cognitive_stream(struct http_req *r, void *ud) { serve(r, ud, MODE_COGNITIVE); }
void h_think_stream(struct http_req *r, void *ud) { serve(r, ud, MODE_THINK); }

static bool session_arg(struct http_req *r, struct sam_db **db)
{
	struct sam_error err;
	if (!sam_session_id_valid(http_path_arg(r))) {
		http_error(r, 400, "invalid session id");
		return false;
	}
	if (sam_db_thread(db, NULL, &err)) {
		http_error(r, 503, "the session store is unavailable: %s", err.msg);
		return false;
	}
	return true;
}

void h_session_get(struct http_req *r, void *ud)
{
	(void)ud;
	struct sam_db *db;
	if (!session_arg(r, &db)) return;
	struct sam_message *m = NULL;
	size_t n = 0;
	struct sam_error err;
	int rc = sam_session_history(db, http_path_arg(r), 0, &m, &n, &err);
	if (rc == SAM_ENOTFOUND) {
		http_error(r, 404, "no session '%s'", http_path_arg(r));
		return;
	}
	if (rc) {
		http_error(r, 503, "the session store is unavailable: %s", err.msg);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:f}", "role", m[i].role, "content", m[i].content,
						     "tokens", m[i].tokens, "created", m[i].created));
	sam_messages_free(m, n);
	http_respond_json(r, 200, json_pack("{s:s, s:o}", "session_id", http_path_arg(r), "messages", arr));
}

void h_session_delete(struct http_req *r, void *ud)
{
	(void)ud;
	struct sam_db *db;
	if (!session_arg(r, &db)) return;
	struct sam_error err;
	int rc = sam_session_delete(db, http_path_arg(r), &err);
	if (rc == SAM_ENOTFOUND) http_error(r, 404, "no session '%s'", http_path_arg(r));
	else if (rc) http_error(r, 503, "the session store is unavailable: %s", err.msg);
	else http_respond_json(r, 200, json_pack("{s:s, s:b}", "session_id", http_path_arg(r), "deleted", 1));
}
