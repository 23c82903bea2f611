/*
 * h_approvals.c - the approval queue over HTTP (approvals.h, docs/api.md):
 *
 *   GET  /api/approvals?status=NAME|all&limit=N   list (default: pending)
 *   POST /api/approvals                           propose (201)
 *   GET  /api/approvals/{id}                      one, with its audit trail
 *   POST /api/approvals/{id}/approve              approve and execute
 *   POST /api/approvals/{id}/reject               reject
 *
 * Approving executes in the request's own thread (one thread per
 * connection): a command may hold its request for up to [approvals]
 * command_timeout, and nothing else waits for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "sam/approvals.h"
#include "sam/db.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

/* Answer a library error with the status that fits it. */
static void fail(struct http_req *r, int rc, const struct sam_error *err)
{
	switch (rc) {
	case SAM_EINVAL:
	case SAM_EUNSUPPORTED: http_error(r, 400, "%s", err->msg); return;
	case SAM_ENOTFOUND: http_error(r, 404, "%s", err->msg); return;
	case SAM_ECONFLICT: http_error(r, 409, "%s", err->msg); return;
	case SAM_EIO:
	case SAM_EBUSY:
	case SAM_ENOMEM:
		/* locked for longer than the busy timeout, a full disk: worth retrying */
		http_set_header(r, "Retry-After", "5");
		http_error(r, 503, "the approval store is unavailable: %s", err->msg);
		return;
	default: http_error(r, 500, "%s", err->msg); return;
	}
}

static struct sam_db *store(struct http_req *r)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	int rc = sam_db_thread(&db, NULL, &err);
	if (!rc) return db;
	fail(r, rc == SAM_EFORMAT ? rc : SAM_EIO, &err);
	return NULL;
}

/* The {id} of the path; responds 400 and returns false when it is not a positive integer. */
static bool path_id(struct http_req *r, int64_t *id)
{
	const char *s = http_path_arg(r);
	char *end;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || v <= 0 || s[0] == '+') {
		http_error(r, 400, "approval id '%.40s' is not a positive integer", s ? s : "");
		return false;
	}
	*id = v;
	return true;
}

/* An optional string field of body (NULL when absent); responds 400 and returns false when it is not a string. */
static bool opt_str(struct http_req *r, json_t *body, const char *name, const char **out)
{
	json_t *v = json_object_get(body, name);
	*out = NULL;
	if (!v || json_is_null(v)) return true;
	if (!json_is_string(v)) {
		http_error(r, 400, "field '%s' must be a string", name);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

void h_approvals_list(struct http_req *r, void *ud)
{
	struct api *a = ud;
	const char *st = http_query(r, "status"), *lim = http_query(r, "limit");
	int status = SAM_APPROVAL_PENDING;
	if (st && !strcmp(st, "all")) status = -1;
	else if (st && (status = sam_approval_status_parse(st)) < 0) {
		http_error(r, 400,
			   "unknown status '%.40s' (expected all, pending, approved, rejected, expired, executed or failed)",
			   st);
		return;
	}
	long long limit = LIST_DEFAULT;
	if (lim) {
		char *end;
		limit = strtoll(lim, &end, 10);
		if (!*lim || *end || limit < 1 || limit > LIST_MAX) {
			http_error(r, 400, "limit must be an integer in [1, %d]", LIST_MAX);
			return;
		}
	}
	struct sam_db *db = store(r);
	if (!db) return;
	struct sam_error err = { 0 };
	struct sam_approval *list = NULL;
	size_t n = 0;
	/* the full sweep, so a proposal whose executor died shows as failed, not approved for ever */
	int rc = sam_approvals_sweep(db, &a->conf, NULL, &err);
	if (!rc) rc = sam_approval_list(db, status, (size_t)limit, &list, &n, &err);
	if (rc) {
		fail(r, rc, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) json_array_append_new(arr, sam_approval_to_json(&list[i]));
	sam_approvals_free(list, n);
	http_respond_json(r, 200, json_pack("{s:o}", "approvals", arr));
}

/* The proposal with its audit trail, as GET /api/approvals/{id} gives it; responds itself on failure. */
static void respond_one(struct http_req *r, struct sam_db *db, int64_t id, int status)
{
	struct sam_approval ap;
	struct sam_approval_audit *audit = NULL;
	size_t n = 0;
	struct sam_error err = { 0 };
	int rc = sam_approval_get(db, id, &ap, &err);
	if (rc) {
		fail(r, rc, &err);
		return;
	}
	if ((rc = sam_approval_audit(db, id, &audit, &n, &err))) {
		sam_approval_clear(&ap);
		fail(r, rc, &err);
		return;
	}
	json_t *j = sam_approval_to_json(&ap), *arr = json_array();
	for (size_t i = 0; i < n; i++) json_array_append_new(arr, sam_approval_audit_to_json(&audit[i]));
	json_object_set_new(j, "audit", arr);
	sam_approval_audit_free(audit, n);
	sam_approval_clear(&ap);
	http_respond_json(r, status, j);
}

void h_approvals_propose(struct http_req *r, void *ud)
{
	struct api *a = ud;
	json_t *body = http_body_json(r);
	if (!body) return;
	const char *kind, *title, *proposer;
	json_t *payload = json_object_get(body, "payload"), *ttl = json_object_get(body, "ttl");
	char *payload_s = NULL;
	if (!opt_str(r, body, "kind", &kind) || !opt_str(r, body, "title", &title) ||
	    !opt_str(r, body, "proposer", &proposer))
		goto out;
	if (!kind || !title) {
		http_error(r, 400, "field '%s' is required", !kind ? "kind" : "title");
		goto out;
	}
	if (!json_is_object(payload)) {
		http_error(r, 400, "field 'payload' must be a JSON object");
		goto out;
	}
	if (ttl && !json_is_null(ttl) && (!json_is_number(ttl) || json_number_value(ttl) < 0)) {
		http_error(r, 400, "field 'ttl' must be a number of seconds >= 0 (0: the default)");
		goto out;
	}
	struct sam_db *db = store(r);
	if (!db) goto out;
	payload_s = json_dumps(payload, JSON_COMPACT);
	struct sam_error err = { 0 };
	int64_t id;
	int rc = payload_s ? sam_approval_propose(db, &a->conf, kind, title, payload_s, proposer ? proposer : "api",
						  json_number_value(ttl), &id, &err)
			   : sam_errorf(&err, SAM_ENOMEM, "out of memory encoding the payload");
	if (rc) fail(r, rc, &err);
	else respond_one(r, db, id, 201);
out:
	free(payload_s);
	json_decref(body);
}

void h_approval_get(struct http_req *r, void *ud)
{
	(void)ud;
	int64_t id;
	if (!path_id(r, &id)) return;
	struct sam_db *db = store(r);
	if (db) respond_one(r, db, id, 200);
}

/* approve (true) or reject: {"reason"?, "actor"?}, the body itself optional. */
static void decide(struct http_req *r, struct api *a, bool approve)
{
	int64_t id;
	if (!path_id(r, &id)) return;
	size_t len = 0;
	http_body(r, &len);
	json_t *body = len ? http_body_json(r) : json_object();
	if (!body) return;
	const char *reason, *actor;
	if (opt_str(r, body, "reason", &reason) && opt_str(r, body, "actor", &actor)) {
		struct sam_db *db = store(r);
		struct sam_error err = { 0 };
		int rc = 0;
		if (db && approve) rc = sam_approval_approve(db, &a->conf, id, actor ? actor : "api", reason, NULL, &err);
		else if (db) rc = sam_approval_reject(db, id, actor ? actor : "api", reason, &err);
		if (db && rc) fail(r, rc, &err);
		else if (db) respond_one(r, db, id, 200);
	}
	json_decref(body);
}

void h_approval_approve(struct http_req *r, void *ud)
{
	decide(r, ud, true);
}

void h_approval_reject(struct http_req *r, void *ud)
{
	decide(r, ud, false);
}
