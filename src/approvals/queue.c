/*
 * queue.c - the approval queue in sam.db (see approvals.h): proposals,
 * their transitions and audit trail. Every transition is an UPDATE that
 * names the status it leaves (WHERE status = from), so of two deciders
 * only one changes the row; the audit row and the event go into the same
 * transaction, so a transition is never recorded without its trace.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/approvals_int.h"
#include "sam/events.h"
#include "sam/utf8.h"

#define SOURCE "approvals" /* the events' source */
#define SYSTEM "system"    /* the actor of expiries and outcomes */
#define LIST_DEFAULT 1000
#define COLUMNS "id, kind, title, payload, proposer, status, created, expires, updated, result"

static const char *const status_names[SAM_APPROVAL_NSTATUS] = { "pending",  "approved", "rejected",
								"expired",  "executed", "failed" };

const char *sam_approval_status_name(int status)
{
	return status >= 0 && status < SAM_APPROVAL_NSTATUS ? status_names[status] : "unknown";
}

int sam_approval_status_parse(const char *name)
{
	for (int i = 0; name && i < SAM_APPROVAL_NSTATUS; i++)
		if (!strcmp(name, status_names[i])) return i;
	return -1;
}

/* min..max bytes of UTF-8; one_line also refuses control characters. */
static int check_text(const char *what, const char *s, size_t min, size_t max, bool one_line, struct sam_error *err)
{
	size_t n = s ? strlen(s) : 0;
	if (n < min || n > max) return sam_errorf(err, SAM_EINVAL, "%s must be %zu-%zu bytes", what, min, max);
	if (!utf8_valid(s, n)) return sam_errorf(err, SAM_EINVAL, "%s is not valid UTF-8", what);
	for (size_t i = 0; one_line && i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return sam_errorf(err, SAM_EINVAL, "%s must be one line of printable text", what);
	return 0;
}

static int check_decider(const char *actor, const char *reason, struct sam_error *err)
{
	int rc = check_text("actor", actor, 1, SAM_APPROVAL_ACTOR_MAX, true, err);
	return rc ? rc : check_text("reason", reason ? reason : "", 0, SAM_APPROVAL_REASON_MAX, false, err);
}

/* ---- rows ---- */

static int dup_col(sqlite3_stmt *st, int col, char **out, struct sam_error *err)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	*out = NULL;
	if (!t) return 0;
	if (!(*out = strdup((const char *)t))) return sam_errorf(err, SAM_ENOMEM, "out of memory reading approvals");
	return 0;
}

static int row_of(sqlite3_stmt *st, struct sam_approval *a, struct sam_error *err)
{
	memset(a, 0, sizeof *a);
	a->id = sqlite3_column_int64(st, 0);
	snprintf(a->kind, sizeof a->kind, "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(a->proposer, sizeof a->proposer, "%s", (const char *)sqlite3_column_text(st, 4));
	a->status = sam_approval_status_parse((const char *)sqlite3_column_text(st, 5));
	a->created = sqlite3_column_double(st, 6);
	a->expires = sqlite3_column_double(st, 7); /* NULL reads as 0: never */
	a->updated = sqlite3_column_double(st, 8);
	int rc;
	if ((rc = dup_col(st, 2, &a->title, err)) || (rc = dup_col(st, 3, &a->payload, err)) ||
	    (rc = dup_col(st, 9, &a->result, err)))
		sam_approval_clear(a);
	return rc;
}

void sam_approval_clear(struct sam_approval *a)
{
	free(a->title);
	free(a->payload);
	free(a->result);
	a->title = a->payload = a->result = NULL;
}

void sam_approvals_free(struct sam_approval *a, size_t n)
{
	for (size_t i = 0; i < n; i++) sam_approval_clear(&a[i]);
	free(a);
}

void sam_approval_audit_free(struct sam_approval_audit *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].reason);
		free(rows[i].detail);
	}
	free(rows);
}

/* The status of proposal id into *status; SAM_ENOTFOUND when there is none. */
static int status_of(struct sam_db *db, int64_t id, int *status, char kind[SAM_APPROVAL_KIND_MAX + 1],
		     struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, "SELECT status, kind FROM approvals WHERE id = ?1", err);
	if (rc) return rc;
	sqlite3_bind_int64(st, 1, id);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		*status = sam_approval_status_parse((const char *)sqlite3_column_text(st, 0));
		if (kind) snprintf(kind, SAM_APPROVAL_KIND_MAX + 1, "%s", (const char *)sqlite3_column_text(st, 1));
	} else if (s == SQLITE_DONE) {
		rc = sam_errorf(err, SAM_ENOTFOUND, "no approval %lld", (long long)id);
	} else {
		rc = sam_db_errorf(db, err, s, "reading approval %lld", (long long)id);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Why proposal id is not in status from: SAM_ECONFLICT saying what it is, or SAM_ENOTFOUND. */
static int conflict(struct sam_db *db, int64_t id, struct sam_error *err)
{
	int status;
	int rc = status_of(db, id, &status, NULL, err);
	if (rc) return rc;
	if (status == SAM_APPROVAL_EXPIRED) return sam_errorf(err, SAM_ECONFLICT, "approval %lld has expired", (long long)id);
	if (status == SAM_APPROVAL_PENDING)
		return sam_errorf(err, SAM_ECONFLICT, "approval %lld is still pending", (long long)id);
	return sam_errorf(err, SAM_ECONFLICT, "approval %lld is already %s", (long long)id, sam_approval_status_name(status));
}

/* ---- transitions ---- */

struct step {
	int64_t id;
	int from, to;        /* from -1: the proposal itself (no UPDATE) */
	const char *actor, *reason;
	const char *detail;  /* JSON for the audit row, or NULL */
	const char *result;  /* JSON for the row's result, or NULL to leave it */
	const char *event;   /* the event's type */
	json_t *data;        /* its data (borrowed) */
};

static int audit_insert(struct sam_db *db, const struct step *s, double now, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"INSERT INTO approval_audit(approval_id, time, from_status, to_status, actor, reason, detail)"
				" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				err);
	if (rc) return rc;
	sqlite3_bind_int64(st, 1, s->id);
	sqlite3_bind_double(st, 2, now);
	if (s->from >= 0) sqlite3_bind_text(st, 3, status_names[s->from], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, status_names[s->to], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, s->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, s->reason ? s->reason : "", -1, SQLITE_STATIC);
	if (s->detail) sqlite3_bind_text(st, 7, s->detail, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	return r == SQLITE_DONE ? 0 : sam_db_errorf(db, err, r, "recording the audit of approval %lld", (long long)s->id);
}

static int publish(struct sam_db *db, const struct step *s, struct sam_error *err)
{
	char *data = json_dumps(s->data, JSON_COMPACT);
	if (!data) return sam_errorf(err, SAM_ENOMEM, "out of memory encoding an event");
	int rc = sam_event_publish(db, SOURCE, s->event, data, NULL, err);
	free(data);
	return rc;
}

/* One transition with its audit row and event; the caller holds the transaction. */
static int apply(struct sam_db *db, const struct step *s, struct sam_error *err)
{
	double now = sam_db_time();
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"UPDATE approvals SET status = ?1, updated = ?2, result = coalesce(?3, result)"
				" WHERE id = ?4 AND status = ?5",
				err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, status_names[s->to], -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, now);
	if (s->result) sqlite3_bind_text(st, 3, s->result, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, s->id);
	sqlite3_bind_text(st, 5, status_names[s->from], -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) return sam_db_errorf(db, err, r, "updating approval %lld", (long long)s->id);
	if (sqlite3_changes(sam_db_handle(db)) == 0) return conflict(db, s->id, err);
	if ((rc = audit_insert(db, s, now, err))) return rc;
	return publish(db, s, err);
}

static json_t *decided(int64_t id, const char *kind, const char *decision, const char *actor, const char *reason)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)id, "kind", kind, "decision", decision, "actor",
			 actor, "reason", reason ? reason : "");
}

static json_t *executed(int64_t id, const char *kind, int status, const char *summary)
{
	return json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "kind", kind, "status", status_names[status],
			 "summary", summary);
}

/* ---- sweeps ---- */

struct due {
	int64_t id;
	char kind[SAM_APPROVAL_KIND_MAX + 1];
};

/* The rows of sql (one parameter, a time: id, kind) into *out. */
static int collect(struct sam_db *db, const char *sql, double t, struct due **out, size_t *n, struct sam_error *err)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, sql, err), s;
	if (rc) return rc;
	sqlite3_bind_double(st, 1, t);
	size_t cap = 0;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct due *g = sam_grow(*out, &cap, *n + 1, sizeof **out);
		if (!g) {
			rc = sam_errorf(err, SAM_ENOMEM, "out of memory");
			break;
		}
		*out = g;
		g[*n].id = sqlite3_column_int64(st, 0);
		snprintf(g[*n].kind, sizeof g[*n].kind, "%s", (const char *)sqlite3_column_text(st, 1));
		(*n)++;
	}
	if (!rc && s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "reading approvals");
	sqlite3_finalize(st);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int count_at(struct sam_db *db, const char *sql, double t, int64_t *n, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, sql, err);
	if (rc) return rc;
	sqlite3_bind_double(st, 1, t);
	int s = sqlite3_step(st);
	*n = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (s != SQLITE_ROW) rc = sam_db_errorf(db, err, s, "counting approvals");
	sqlite3_finalize(st);
	return rc;
}

/*
 * Move every proposal that where (one parameter, a time) selects from
 * `from` to `to` (expired or failed), each with its audit row and event,
 * in one transaction. Looks first without a write lock, so the common
 * case (nothing due) costs a read; inside a caller's transaction it is a
 * savepoint of it.
 */
static int sweep_rows(struct sam_db *db, const char *where, double t, int from, int to, const char *why,
		      const char *result, int64_t *changed, struct sam_error *err)
{
	char sql[200];
	int64_t due;
	snprintf(sql, sizeof sql, "SELECT count(*)%s", where);
	int rc = count_at(db, sql, t, &due, err);
	if (rc || !due) return rc;
	if ((rc = sam_db_begin(db, err))) return rc;
	struct due *rows;
	size_t n;
	snprintf(sql, sizeof sql, "SELECT id, kind%s ORDER BY id", where);
	if ((rc = collect(db, sql, t, &rows, &n, err))) goto fail;
	bool expiry = to == SAM_APPROVAL_EXPIRED;
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *data = expiry ? decided(rows[i].id, rows[i].kind, "expired", SYSTEM, why)
				      : executed(rows[i].id, rows[i].kind, to, why);
		struct step s = { rows[i].id, from, to, SYSTEM, why, result, result,
				  expiry ? SAM_EV_APPROVAL_DECIDED : SAM_EV_APPROVAL_EXECUTED, data };
		rc = apply(db, &s, err);
		json_decref(data);
	}
	free(rows);
	if (rc) goto fail;
	if (changed) *changed += (int64_t)n;
	return sam_db_commit(db, err);
fail:
	sam_db_rollback(db);
	return rc;
}

/* Pending proposals whose expiry has passed: expired. */
static int expire_due(struct sam_db *db, int64_t *changed, struct sam_error *err)
{
	return sweep_rows(db, " FROM approvals WHERE status = 'pending' AND expires <= ?1", sam_db_time(),
			  SAM_APPROVAL_PENDING, SAM_APPROVAL_EXPIRED, "expired", NULL, changed, err);
}

/* Approved proposals whose executor died before recording the outcome: failed. */
static int fail_interrupted(struct sam_db *db, double older_than, int64_t *changed, struct sam_error *err)
{
	static const char *const why = "interrupted: the execution ended without recording an outcome";
	json_t *res = json_pack("{s:s, s:s}", "error", why, "summary", why);
	char *res_s = res ? json_dumps(res, JSON_COMPACT) : NULL;
	json_decref(res);
	if (!res_s) return sam_errorf(err, SAM_ENOMEM, "out of memory encoding a result");
	int rc = sweep_rows(db, " FROM approvals WHERE status = 'approved' AND updated <= ?1", older_than,
			    SAM_APPROVAL_APPROVED, SAM_APPROVAL_FAILED, why, res_s, changed, err);
	free(res_s);
	return rc;
}

int sam_approvals_sweep(struct sam_db *db, const struct sam_conf *conf, int64_t *n, struct sam_error *err)
{
	if (n) *n = 0;
	struct appr_policy p;
	int rc = appr_policy_load(&p, conf, err);
	if (rc) return rc;
	double grace = p.command_timeout + 60;
	appr_policy_free(&p);
	if ((rc = expire_due(db, n, err))) return rc;
	return fail_interrupted(db, sam_db_time() - grace, n, err);
}

/* ---- the API ---- */

int sam_approval_propose(struct sam_db *db, const struct sam_conf *conf, const char *kind, const char *title,
			 const char *payload, const char *proposer, double ttl_s, int64_t *id, struct sam_error *err)
{
	if (id) *id = 0;
	int rc;
	if (!kind) return sam_errorf(err, SAM_EINVAL, "kind is required");
	if ((rc = check_text("title", title, 1, SAM_APPROVAL_TITLE_MAX, true, err)) ||
	    (rc = check_text("proposer", proposer, 1, SAM_APPROVAL_ACTOR_MAX, true, err)))
		return rc;
	if (!(ttl_s >= 0 && ttl_s <= 3650.0 * 86400))
		return sam_errorf(err, SAM_EINVAL, "ttl must be 0 (the default) or a number of seconds up to ten years");
	if (!payload) return sam_errorf(err, SAM_EINVAL, "payload is required");
	size_t len = strlen(payload);
	if (len > SAM_APPROVAL_PAYLOAD_MAX)
		return sam_errorf(err, SAM_EINVAL, "payload is %zu bytes; at most %u are allowed", len,
				  SAM_APPROVAL_PAYLOAD_MAX);
	struct appr_policy p;
	if ((rc = appr_policy_load(&p, conf, err))) return rc;
	json_error_t je;
	char *canon = NULL;
	json_t *pl = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &je), *data = NULL;
	if (!pl && appr_kind_known(kind))
		rc = sam_errorf(err, SAM_EINVAL, "payload is not JSON: %s (at %d)", je.text, je.position);
	if (rc || (rc = appr_check(&p, kind, pl, err)) || (rc = appr_canonical(&p, kind, pl, err))) goto out;
	if (!(canon = json_dumps(pl, JSON_COMPACT))) {
		rc = sam_errorf(err, SAM_ENOMEM, "out of memory encoding the payload");
		goto out;
	}
	double now = sam_db_time();
	double ttl = ttl_s > 0 ? ttl_s : p.ttl;
	if ((rc = sam_db_begin(db, err))) goto out;
	sqlite3_stmt *st;
	if ((rc = sam_db_prepare(db, &st,
				 "INSERT INTO approvals(kind, title, payload, proposer, status, created, expires, updated)"
				 " VALUES(?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?5)",
				 err)))
		goto fail;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, canon, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, proposer, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 5, now);
	if (ttl > 0) sqlite3_bind_double(st, 6, now + ttl);
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	if (s != SQLITE_DONE) {
		rc = sam_db_errorf(db, err, s, "recording the proposal");
		goto fail;
	}
	int64_t new_id = sqlite3_last_insert_rowid(sam_db_handle(db));
	data = json_pack("{s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)new_id, "kind", kind, "title", title, "proposer",
			 proposer, "expires", ttl > 0 ? json_real(now + ttl) : json_null());
	struct step step = { new_id, -1, SAM_APPROVAL_PENDING, proposer, "", NULL, NULL, SAM_EV_APPROVAL_PENDING, data };
	if ((rc = audit_insert(db, &step, now, err)) || (rc = publish(db, &step, err))) goto fail;
	if ((rc = sam_db_commit(db, err))) goto out;
	if (id) *id = new_id;
	goto out;
fail:
	sam_db_rollback(db);
out:
	json_decref(data);
	free(canon);
	json_decref(pl);
	appr_policy_free(&p);
	return rc;
}

int sam_approval_get(struct sam_db *db, int64_t id, struct sam_approval *out, struct sam_error *err)
{
	memset(out, 0, sizeof *out);
	int rc = expire_due(db, NULL, err);
	if (rc) return rc;
	sqlite3_stmt *st;
	if ((rc = sam_db_prepare(db, &st, "SELECT " COLUMNS " FROM approvals WHERE id = ?1", err))) return rc;
	sqlite3_bind_int64(st, 1, id);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) rc = row_of(st, out, err);
	else if (s == SQLITE_DONE) rc = sam_errorf(err, SAM_ENOTFOUND, "no approval %lld", (long long)id);
	else rc = sam_db_errorf(db, err, s, "reading approval %lld", (long long)id);
	sqlite3_finalize(st);
	return rc;
}

int sam_approval_list(struct sam_db *db, int status, size_t limit, struct sam_approval **out, size_t *n,
		      struct sam_error *err)
{
	*out = NULL;
	*n = 0;
	if (status < -1 || status >= SAM_APPROVAL_NSTATUS)
		return sam_errorf(err, SAM_EINVAL, "unknown approval status %d", status);
	int rc = expire_due(db, NULL, err), s;
	if (rc) return rc;
	sqlite3_stmt *st;
	if ((rc = sam_db_prepare(db, &st,
				 "SELECT " COLUMNS " FROM approvals WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC LIMIT ?2",
				 err)))
		return rc;
	if (status >= 0) sqlite3_bind_text(st, 1, status_names[status], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(limit ? limit : LIST_DEFAULT));
	size_t cap = 0;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct sam_approval *g = sam_grow(*out, &cap, *n + 1, sizeof **out);
		if (!g) {
			rc = sam_errorf(err, SAM_ENOMEM, "out of memory listing approvals");
			break;
		}
		*out = g;
		if ((rc = row_of(st, &g[*n], err))) break;
		(*n)++;
	}
	if (!rc && s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "listing approvals");
	sqlite3_finalize(st);
	if (rc) {
		sam_approvals_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int sam_approval_audit(struct sam_db *db, int64_t id, struct sam_approval_audit **out, size_t *n,
		       struct sam_error *err)
{
	*out = NULL;
	*n = 0;
	int status, rc = status_of(db, id, &status, NULL, err), s;
	if (rc) return rc;
	sqlite3_stmt *st;
	if ((rc = sam_db_prepare(db, &st,
				 "SELECT seq, time, from_status, to_status, actor, reason, detail FROM approval_audit"
				 " WHERE approval_id = ?1 ORDER BY seq",
				 err)))
		return rc;
	sqlite3_bind_int64(st, 1, id);
	size_t cap = 0;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct sam_approval_audit *g = sam_grow(*out, &cap, *n + 1, sizeof **out);
		if (!g) {
			rc = sam_errorf(err, SAM_ENOMEM, "out of memory reading the audit trail");
			break;
		}
		*out = g;
		struct sam_approval_audit *r = &g[*n];
		memset(r, 0, sizeof *r);
		r->seq = sqlite3_column_int64(st, 0);
		r->time = sqlite3_column_double(st, 1);
		r->from = sam_approval_status_parse((const char *)sqlite3_column_text(st, 2));
		r->to = sam_approval_status_parse((const char *)sqlite3_column_text(st, 3));
		snprintf(r->actor, sizeof r->actor, "%s", (const char *)sqlite3_column_text(st, 4));
		(*n)++; /* counted before the strings, so a failure frees what was copied */
		if ((rc = dup_col(st, 5, &r->reason, err)) || (rc = dup_col(st, 6, &r->detail, err))) break;
	}
	if (!rc && s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "reading the audit trail");
	sqlite3_finalize(st);
	if (rc) {
		sam_approval_audit_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* Decide a pending proposal (approve or reject) in one transaction with the due expiries. */
static int decide(struct sam_db *db, int64_t id, int to, const char *actor, const char *reason,
		  char kind[SAM_APPROVAL_KIND_MAX + 1], struct sam_error *err)
{
	int rc = check_decider(actor, reason, err), status;
	if (rc) return rc;
	if ((rc = sam_db_begin(db, err))) return rc;
	/* expiries first, in the same transaction: a proposal due now cannot be approved a moment later */
	if ((rc = expire_due(db, NULL, err))) goto fail;
	if (!(rc = status_of(db, id, &status, kind, err))) {
		json_t *data = decided(id, kind, status_names[to], actor, reason);
		struct step s = { id, SAM_APPROVAL_PENDING, to, actor, reason, NULL, NULL, SAM_EV_APPROVAL_DECIDED, data };
		rc = apply(db, &s, err);
		json_decref(data);
	}
	if (rc && rc != SAM_ECONFLICT && rc != SAM_ENOTFOUND) goto fail;
	/* a refused decision wrote nothing, but the expiries found on the way stand (the one refused, maybe) */
	struct sam_error cerr;
	int crc = sam_db_commit(db, rc ? &cerr : err);
	return rc ? rc : crc;
fail:
	sam_db_rollback(db);
	return rc;
}

int sam_approval_reject(struct sam_db *db, int64_t id, const char *actor, const char *reason, struct sam_error *err)
{
	char kind[SAM_APPROVAL_KIND_MAX + 1];
	return decide(db, id, SAM_APPROVAL_REJECTED, actor, reason, kind, err);
}

/* Record the outcome of an execution: approved -> executed | failed, with the result in the row and the audit. */
static int record_outcome(struct sam_db *db, int64_t id, const char *kind, bool ok, json_t *result,
			  struct sam_error *err)
{
	char *res = json_dumps(result, JSON_COMPACT);
	if (!res) return sam_errorf(err, SAM_ENOMEM, "out of memory encoding the result");
	const char *summary = json_string_value(json_object_get(result, "summary"));
	int to = ok ? SAM_APPROVAL_EXECUTED : SAM_APPROVAL_FAILED;
	json_t *data = executed(id, kind, to, summary ? summary : "");
	struct step s = { id, SAM_APPROVAL_APPROVED, to, SYSTEM, summary, res, res, SAM_EV_APPROVAL_EXECUTED, data };
	int rc = sam_db_begin(db, err);
	if (!rc) {
		if ((rc = apply(db, &s, err))) sam_db_rollback(db);
		else rc = sam_db_commit(db, err);
	}
	json_decref(data);
	free(res);
	return rc;
}

int sam_approval_approve(struct sam_db *db, const struct sam_conf *conf, int64_t id, const char *actor,
			 const char *reason, struct sam_approval *out, struct sam_error *err)
{
	if (out) memset(out, 0, sizeof *out);
	struct appr_policy p;
	int rc = appr_policy_load(&p, conf, err);
	if (rc) return rc;
	char kind[SAM_APPROVAL_KIND_MAX + 1];
	struct sam_approval a = { 0 };
	json_t *result = NULL;
	if ((rc = decide(db, id, SAM_APPROVAL_APPROVED, actor, reason, kind, err))) goto out;
	/* decided and committed: from here on this caller alone executes it */
	if ((rc = sam_approval_get(db, id, &a, err))) goto out;
	bool ok = appr_execute(&p, a.kind, a.payload, &result);
	struct sam_error rerr = { 0 };
	if ((rc = record_outcome(db, id, a.kind, ok, result, &rerr))) {
		sam_error_prefix(&rerr, "the outcome of the approved execution could not be recorded");
		sam_log(SAM_LOG_ERROR, "approval %lld: %s", (long long)id, rerr.msg);
		if (err) *err = rerr;
		goto out;
	}
	if (out) rc = sam_approval_get(db, id, out, err);
out:
	json_decref(result);
	sam_approval_clear(&a);
	appr_policy_free(&p);
	return rc;
}

int sam_approvals_pending(struct sam_db *db, int64_t *n, struct sam_error *err)
{
	*n = 0;
	int rc = expire_due(db, NULL, err);
	return rc ? rc : sam_db_query_int(db, "SELECT count(*) FROM approvals WHERE status = 'pending'", n, err);
}
