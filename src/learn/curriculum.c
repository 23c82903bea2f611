/*
 * curriculum.c - the curriculum tables (curriculum.h): seeding tasks from
 * JSONL, leases on tasks, the streams' rows, and recording attempts.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/curriculum.h"
#include "sam/fs.h"
#include "sam/learn.h"

void sam_curriculum_task_free(struct sam_curriculum_task *t)
{
	free(t->question);
	free(t->reference);
	free(t->category);
	memset(t, 0, sizeof *t);
}

/* ---- seeding ------------------------------------------------------------------ */

struct seed_line {
	json_t *obj;     /* owns the strings below */
	const char *question, *reference, *category;
	bool has_reference, has_category; /* stated on the line (a null reference too) */
};

/* A string field of at most SAM_CURRICULUM_TEXT_MAX bytes; *out NULL when absent (or a null reference). */
static int text_field(json_t *o, const char *key, bool null_ok, const char **out, const char *name, size_t line,
		      struct sam_error *err)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || (null_ok && json_is_null(v))) return 0;
	if (!json_is_string(v)) return sam_errorf(err, SAM_EFORMAT, "%s:%zu: \"%s\" must be a string", name, line, key);
	if (json_string_length(v) > SAM_CURRICULUM_TEXT_MAX)
		return sam_errorf(err, SAM_EFORMAT, "%s:%zu: \"%s\" is longer than %d bytes", name, line, key,
				  SAM_CURRICULUM_TEXT_MAX);
	*out = json_string_value(v);
	return 0;
}

static int parse_line(const char *s, size_t n, const char *name, size_t line, struct seed_line *out,
		      struct sam_error *err)
{
	json_error_t je;
	json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
	if (!o) return sam_errorf(err, SAM_EFORMAT, "%s:%zu: not JSON (%s)", name, line, je.text);
	int rc = SAM_EFORMAT;
	if (!json_is_object(o)) {
		sam_errorf(err, rc, "%s:%zu: expected an object {\"question\", \"reference\"?, \"category\"?}", name,
			   line);
		goto fail;
	}
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "question") && strcmp(key, "reference") && strcmp(key, "category")) {
			sam_errorf(err, rc, "%s:%zu: unknown key \"%.100s\" (expected question, reference, category)",
				   name, line, key);
			goto fail;
		}
	}
	*out = (struct seed_line){ .obj = o, .has_reference = json_object_get(o, "reference") != NULL,
				   .has_category = json_object_get(o, "category") != NULL };
	if ((rc = text_field(o, "question", false, &out->question, name, line, err)) ||
	    (rc = text_field(o, "reference", true, &out->reference, name, line, err)) ||
	    (rc = text_field(o, "category", false, &out->category, name, line, err)))
		goto fail;
	rc = SAM_EFORMAT;
	if (!out->question || !*out->question) {
		sam_errorf(err, rc, "%s:%zu: \"question\" must be a non-empty string", name, line);
		goto fail;
	}
	if (!out->category || !*out->category) out->category = "general";
	return 0;
fail:
	json_decref(o);
	return rc;
}

static int seed_one(struct sam_db *db, sqlite3_stmt *ins, sqlite3_stmt *upd, const struct seed_line *l,
		    int64_t *added, int64_t *updated, struct sam_error *err)
{
	sqlite3 *h = sam_db_handle(db);
	sqlite3_reset(ins);
	sqlite3_bind_text(ins, 1, l->question, -1, SQLITE_STATIC);
	if (l->reference) sqlite3_bind_text(ins, 2, l->reference, -1, SQLITE_STATIC);
	else sqlite3_bind_null(ins, 2);
	sqlite3_bind_text(ins, 3, l->category, -1, SQLITE_STATIC);
	sqlite3_bind_double(ins, 4, sam_db_time());
	int s = sqlite3_step(ins);
	if (s != SQLITE_DONE) return sam_db_errorf(db, err, s, "adding a curriculum task");
	if (sqlite3_changes(h)) {
		(*added)++;
		return 0;
	}
	sqlite3_reset(upd);
	sqlite3_bind_text(upd, 1, l->question, -1, SQLITE_STATIC);
	if (l->reference) sqlite3_bind_text(upd, 2, l->reference, -1, SQLITE_STATIC);
	else sqlite3_bind_null(upd, 2);
	sqlite3_bind_text(upd, 3, l->category, -1, SQLITE_STATIC);
	sqlite3_bind_int(upd, 4, l->has_reference);
	sqlite3_bind_int(upd, 5, l->has_category);
	s = sqlite3_step(upd);
	if (s != SQLITE_DONE) return sam_db_errorf(db, err, s, "updating a curriculum task");
	*updated += sqlite3_changes(h);
	return 0;
}

int sam_curriculum_seed(struct sam_db *db, const char *text, size_t len, const char *name, int64_t *added,
			int64_t *updated, struct sam_error *err)
{
	struct seed_line *lines = NULL;
	size_t n = 0, cap = 0, line = 0;
	int64_t n_added = 0, n_updated = 0;
	sqlite3_stmt *ins = NULL, *upd = NULL;
	int rc = 0;
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(text + p, '\n', len - p);
		size_t end = nl ? (size_t)(nl - text) : len, a = p, b = end;
		line++;
		p = end + 1;
		while (a < b && strchr(" \t\r", text[a])) a++;
		while (b > a && strchr(" \t\r", text[b - 1])) b--;
		if (a == b) continue;
		struct seed_line *grown = sam_grow(lines, &cap, n + 1, sizeof *lines);
		if (!grown) {
			rc = sam_errorf(err, SAM_ENOMEM, "%s: out of memory", name);
			goto out;
		}
		lines = grown;
		if ((rc = parse_line(text + a, b - a, name, line, &lines[n], err))) goto out;
		n++;
	}
	if ((rc = sam_db_prepare(db, &ins,
				 "INSERT INTO curriculum_tasks(question, reference, category, created) VALUES(?,?,?,?)"
				 " ON CONFLICT(question) DO NOTHING",
				 err)) ||
	    (rc = sam_db_prepare(db, &upd,
				 "UPDATE curriculum_tasks SET reference = CASE WHEN ?4 THEN ?2 ELSE reference END,"
				 " category = CASE WHEN ?5 THEN ?3 ELSE category END WHERE question = ?1"
				 " AND ((?4 AND reference IS NOT ?2) OR (?5 AND category IS NOT ?3))",
				 err)) ||
	    (rc = sam_db_begin(db, err)))
		goto out;
	for (size_t i = 0; i < n && !rc; i++) rc = seed_one(db, ins, upd, &lines[i], &n_added, &n_updated, err);
	if (rc) sam_db_rollback(db);
	else rc = sam_db_commit(db, err);
	if (!rc) {
		if (added) *added = n_added;
		if (updated) *updated = n_updated;
	}
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	for (size_t i = 0; i < n; i++) json_decref(lines[i].obj);
	free(lines);
	return rc;
}

int sam_curriculum_seed_file(struct sam_db *db, const char *path, int64_t *added, int64_t *updated,
			     struct sam_error *err)
{
	char *data;
	size_t len;
	int rc = sam_read_file(path, SAM_CURRICULUM_FILE_MAX, &data, &len, err);
	if (rc) return rc;
	rc = sam_curriculum_seed(db, data, len, path, added, updated, err);
	free(data);
	return rc;
}

/* ---- leases ------------------------------------------------------------------- */

static char *column_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? xstrdup((const char *)s) : NULL;
}

/* Run a claiming UPDATE ... RETURNING id, question, reference, category. */
static int claim_step(struct sam_db *db, sqlite3_stmt *st, struct sam_curriculum_task *t, struct sam_error *err)
{
	int s = sqlite3_step(st);
	if (s == SQLITE_DONE) return SAM_ENOTFOUND;
	if (s != SQLITE_ROW) return sam_db_errorf(db, err, s, "claiming a curriculum task");
	t->id = sqlite3_column_int64(st, 0);
	t->question = column_dup(st, 1);
	t->reference = column_dup(st, 2);
	t->category = column_dup(st, 3);
	s = sqlite3_step(st); /* run it to the end, so the statement is finished before the commit */
	if (s != SQLITE_DONE) {
		sam_curriculum_task_free(t);
		return sam_db_errorf(db, err, s, "claiming a curriculum task");
	}
	return 0;
}

static int stream_set_task(struct sam_db *db, int stream, int64_t task_id, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"INSERT INTO curriculum_streams(stream, task_id, updated) VALUES(?,?,?)"
				" ON CONFLICT(stream) DO UPDATE SET task_id = excluded.task_id,"
				" updated = excluded.updated",
				err);
	if (rc) return rc;
	sqlite3_bind_int(st, 1, stream);
	sqlite3_bind_int64(st, 2, task_id);
	sqlite3_bind_double(st, 3, sam_db_time());
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "saving curriculum stream %d", stream);
	sqlite3_finalize(st);
	return rc;
}

int sam_curriculum_claim(struct sam_db *db, int stream, int64_t want, double lease_s,
			 struct sam_curriculum_task *t, struct sam_error *err)
{
	static const char *const sql_want =
		"UPDATE curriculum_tasks SET claimed_by = ?1, claimed_until = ?2"
		" WHERE id = ?4 AND claimed_until <= ?3 RETURNING id, question, reference, category";
	static const char *const sql_any =
		"UPDATE curriculum_tasks SET claimed_by = ?1, claimed_until = ?2"
		" WHERE id = (SELECT id FROM curriculum_tasks WHERE claimed_until <= ?3"
		"             ORDER BY attempts, last_attempt, id LIMIT 1)"
		" RETURNING id, question, reference, category";
	memset(t, 0, sizeof *t);
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, want > 0 ? sql_want : sql_any, err);
	if (rc) return rc;
	double now = sam_db_time();
	sqlite3_bind_int(st, 1, stream);
	sqlite3_bind_double(st, 2, now + lease_s);
	sqlite3_bind_double(st, 3, now);
	if (want > 0) sqlite3_bind_int64(st, 4, want);
	/* the pick and the lease in one write transaction: no other writer runs in between */
	if ((rc = sam_db_begin(db, err))) goto out;
	rc = claim_step(db, st, t, err);
	if (!rc) rc = stream_set_task(db, stream, t->id, err);
	if (rc) {
		sam_db_rollback(db);
		sam_curriculum_task_free(t);
	} else if ((rc = sam_db_commit(db, err))) {
		sam_curriculum_task_free(t);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/* Run a lease UPDATE bound (until, task, stream); SAM_ENOTFOUND when it changed nothing. */
static int lease_update(struct sam_db *db, const char *sql, double until, int64_t task_id, int stream,
			struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, sql, err);
	if (rc) return rc;
	sqlite3_bind_double(st, 1, until);
	sqlite3_bind_int64(st, 2, task_id);
	sqlite3_bind_int(st, 3, stream);
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE)
		rc = sam_db_errorf(db, err, s, "updating the lease on curriculum task %lld", (long long)task_id);
	else if (!sqlite3_changes(sam_db_handle(db))) rc = SAM_ENOTFOUND;
	sqlite3_finalize(st);
	return rc;
}

int sam_curriculum_renew(struct sam_db *db, int stream, int64_t task_id, double lease_s, struct sam_error *err)
{
	int rc = lease_update(db, "UPDATE curriculum_tasks SET claimed_until = ?1 WHERE id = ?2 AND claimed_by = ?3",
			      sam_db_time() + lease_s, task_id, stream, err);
	if (rc == SAM_ENOTFOUND)
		sam_errorf(err, rc, "curriculum task %lld is no longer held by stream %d", (long long)task_id, stream);
	return rc;
}

int sam_curriculum_release(struct sam_db *db, int stream, int64_t task_id, struct sam_error *err)
{
	int rc = lease_update(db, "UPDATE curriculum_tasks SET claimed_until = ?1 WHERE id = ?2 AND claimed_by = ?3", 0,
			      task_id, stream, err);
	return rc == SAM_ENOTFOUND ? 0 : rc;
}

/* ---- streams ------------------------------------------------------------------ */

int sam_curriculum_stream_load(struct sam_db *db, int stream, struct sam_curriculum_stream *out,
			       struct sam_error *err)
{
	*out = (struct sam_curriculum_stream){ .stream = stream };
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, "SELECT task_id, failures, next_try FROM curriculum_streams WHERE stream = ?",
				err);
	if (rc) return rc;
	sqlite3_bind_int(st, 1, stream);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		out->task_id = sqlite3_column_int64(st, 0); /* NULL reads as 0: no task */
		out->failures = sqlite3_column_int(st, 1);
		out->next_try = sqlite3_column_double(st, 2);
	} else if (s != SQLITE_DONE) {
		rc = sam_db_errorf(db, err, s, "reading curriculum stream %d", stream);
	}
	sqlite3_finalize(st);
	return rc;
}

int sam_curriculum_stream_save(struct sam_db *db, const struct sam_curriculum_stream *in, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"INSERT OR REPLACE INTO curriculum_streams(stream, task_id, failures, next_try,"
				" updated) VALUES(?,?,?,?,?)",
				err);
	if (rc) return rc;
	sqlite3_bind_int(st, 1, in->stream);
	if (in->task_id > 0) sqlite3_bind_int64(st, 2, in->task_id);
	else sqlite3_bind_null(st, 2);
	sqlite3_bind_int(st, 3, in->failures);
	sqlite3_bind_double(st, 4, in->next_try);
	sqlite3_bind_double(st, 5, sam_db_time());
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "saving curriculum stream %d", in->stream);
	sqlite3_finalize(st);
	return rc;
}

/* ---- attempts ----------------------------------------------------------------- */

/* Store the question and answer as a chat example; *hash gets its hash, "" when the answer is unusable. */
static int keep_example(struct sam_db *db, const struct sam_curriculum_attempt *a, char *hash, bool *added,
			struct sam_error *err)
{
	const struct sam_curriculum_task *t = a->task;
	json_t *j = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "messages", "role", "user", "content", t->question,
			      "role", "assistant", "content", a->answer);
	if (!j) return sam_errorf(err, SAM_EINVAL, "curriculum task %lld: the answer is not UTF-8", (long long)t->id);
	struct sam_example ex;
	struct sam_error e;
	int rc = sam_example_from_json(j, &ex, &e);
	json_decref(j);
	if (rc) { /* e.g. an answer of white space: graded wrong anyway, nothing to keep */
		sam_log(SAM_LOG_DEBUG, "curriculum task %lld: not an example: %s", (long long)t->id, e.msg);
		return 0;
	}
	char origin[48];
	snprintf(origin, sizeof origin, "curriculum:%lld", (long long)t->id);
	rc = sam_example_add(db, &ex, "curriculum", t->category, a->score, origin, added, err);
	if (!rc) memcpy(hash, ex.hash, sizeof ex.hash);
	sam_example_free(&ex);
	return rc;
}

static int insert_attempt(struct sam_db *db, const struct sam_curriculum_attempt *a, const char *hash,
			  struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"INSERT INTO curriculum_attempts(task_id, stream, answer, score, correct, example_hash,"
				" created) VALUES(?,?,?,?,?,?,?)",
				err);
	if (rc) return rc;
	sqlite3_bind_int64(st, 1, a->task->id);
	sqlite3_bind_int(st, 2, a->stream);
	if (a->answer) sqlite3_bind_text(st, 3, a->answer, -1, SQLITE_STATIC);
	else sqlite3_bind_null(st, 3);
	sqlite3_bind_double(st, 4, a->score);
	sqlite3_bind_int(st, 5, a->correct);
	if (*hash) sqlite3_bind_text(st, 6, hash, -1, SQLITE_STATIC);
	else sqlite3_bind_null(st, 6);
	sqlite3_bind_double(st, 7, sam_db_time());
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "recording a curriculum attempt");
	sqlite3_finalize(st);
	return rc;
}

static int count_attempt(struct sam_db *db, const struct sam_curriculum_attempt *a, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"UPDATE curriculum_tasks SET attempts = attempts + 1, correct = correct + ?1,"
				" last_attempt = ?2,"
				" claimed_until = CASE WHEN claimed_by = ?3 THEN 0 ELSE claimed_until END"
				" WHERE id = ?4",
				err);
	if (rc) return rc;
	sqlite3_bind_int(st, 1, a->correct);
	sqlite3_bind_double(st, 2, sam_db_time());
	sqlite3_bind_int(st, 3, a->stream);
	sqlite3_bind_int64(st, 4, a->task->id);
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "counting a curriculum attempt");
	sqlite3_finalize(st);
	return rc;
}

int sam_curriculum_record(struct sam_db *db, const struct sam_curriculum_attempt *a, bool *example_added,
			  struct sam_error *err)
{
	char hash[SAM_SHA256_HEX_LEN + 1] = "";
	bool added = false;
	struct sam_curriculum_stream row = { .stream = a->stream, .next_try = a->next_try };
	int rc = sam_db_begin(db, err);
	if (rc) return rc;
	if ((a->correct && a->answer && (rc = keep_example(db, a, hash, &added, err))) ||
	    (rc = insert_attempt(db, a, hash, err)) || (rc = count_attempt(db, a, err)) ||
	    (rc = sam_curriculum_stream_save(db, &row, err))) {
		sam_db_rollback(db);
		return rc;
	}
	if ((rc = sam_db_commit(db, err))) return rc;
	if (example_added) *example_added = added;
	return 0;
}

int sam_curriculum_stats(struct sam_db *db,
			 void (*fn)(void *ctx, const char *category, int64_t tasks, int64_t attempts, int64_t correct),
			 void *ctx, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"SELECT category, count(*), sum(attempts), sum(correct) FROM curriculum_tasks"
				" GROUP BY category ORDER BY category",
				err);
	if (rc) return rc;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
		   sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "reading curriculum statistics");
	sqlite3_finalize(st);
	return rc;
}
