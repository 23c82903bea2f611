/*
 * test_api_approvals.c - the approval queue through the real `sam api`
 * (/api/approvals...: shapes, decisions, 400/404/405/409/503 with JSON
 * bodies) and through the CLI (`sam approvals`, `sam approve`, `sam
 * reject`) run as a subprocess. Neither needs a model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_helpers.h"
#include "approvals/appr_util.h"
#include "sam/db.h"
#include "sam/events.h"
#include "test.h"

#define MEM_OK "SAM_FAKE_MEMAVAILABLE_MB=8000"

/* An api with no model (it serves the queue all the same) and /bin/echo on the allowlist. */
static void start(struct api_server *s, const char *extra_env)
{
	char missing[600];
	snprintf(missing, sizeof missing, "%s/no-model.gguf", test_tmpdir());
	api_start_unready(s, missing, NULL,
			  (const char *[]){ MEM_OK, "SAM_APPROVALS_COMMANDS=/bin/echo", extra_env, NULL });
}

/* method path body -> expect status, return the JSON (caller decrefs). */
static json_t *call(struct api_server *s, const char *method, const char *path, const char *body, long status)
{
	struct api_resp r;
	api_request(s, method, path, body, (const char *const[]){ "Content-Type: application/json", NULL }, 60, &r);
	CHECKF(r.status == status, "%s %s: HTTP %ld, expected %ld: %s", method, path, r.status, status, r.body);
	json_t *j = api_json(&r);
	api_resp_free(&r);
	return j;
}

/* Expect an error status whose JSON message contains want. */
static void call_error(struct api_server *s, const char *method, const char *path, const char *body, long status,
		       const char *want)
{
	struct api_resp r;
	api_request(s, method, path, body, (const char *const[]){ "Content-Type: application/json", NULL }, 60, &r);
	char where[600];
	snprintf(where, sizeof where, "%s %s %s", method, path, body ? body : "");
	const char *m = api_check_error(&r, status, where);
	CHECKF(strstr(m, want), "%s: the message does not say '%s': %s", where, want, m);
	api_resp_free(&r);
}

TEST(api_approvals_endpoints)
{
	struct api_server s;
	start(&s, NULL);
	/* propose: 201 with the proposal and its first audit row */
	json_t *p = call(&s, "POST", "/api/approvals",
			 "{\"kind\":\"note\",\"title\":\"Remember\",\"payload\":{\"text\":\"milk\"}}", 201);
	long long id = jint(p, "id");
	CHECK(id > 0);
	CHECK_STR(jstr(p, "kind"), "note");
	CHECK_STR(jstr(p, "title"), "Remember");
	CHECK_STR(jstr(p, "payload.text"), "milk");
	CHECK_STR(jstr(p, "proposer"), "api");
	CHECK_STR(jstr(p, "status"), "pending");
	CHECK(json_is_number(jpath(p, "created")) && json_is_number(jpath(p, "updated")));
	CHECK(json_number_value(jpath(p, "expires")) > json_number_value(jpath(p, "created")));
	CHECK(json_is_null(jpath(p, "result")));
	CHECK_INT(json_array_size(jpath(p, "audit")), 1);
	CHECK(json_is_null(jpath(p, "audit.0.from")));
	CHECK_STR(jstr(p, "audit.0.to"), "pending");
	json_decref(p);
	/* a proposal that never expires, by another proposer */
	p = call(&s, "POST", "/api/approvals",
		 "{\"kind\":\"command\",\"title\":\"Say hi\",\"payload\":{\"argv\":[\"/bin/echo\",\"hi\"]},\"proposer\":\"learn\","
		 "\"ttl\":100}",
		 201);
	long long cmd = jint(p, "id");
	CHECK_STR(jstr(p, "proposer"), "learn");
	CHECK(json_number_value(jpath(p, "expires")) - json_number_value(jpath(p, "created")) < 101);
	json_decref(p);

	/* list: pending by default, newest first */
	json_t *l = call(&s, "GET", "/api/approvals", NULL, 200);
	CHECK_INT(json_array_size(jpath(l, "approvals")), 2);
	CHECK_INT(jint(l, "approvals.0.id"), cmd);
	CHECK_INT(jint(l, "approvals.1.id"), id);
	json_decref(l);
	l = call(&s, "GET", "/api/approvals?limit=1&status=all", NULL, 200);
	CHECK_INT(json_array_size(jpath(l, "approvals")), 1);
	json_decref(l);

	/* approve with a reason and an actor: executed, with the audit trail */
	char path[128];
	snprintf(path, sizeof path, "/api/approvals/%lld/approve", id);
	json_t *a = call(&s, "POST", path, "{\"reason\":\"fine\",\"actor\":\"carol\"}", 200);
	CHECK_STR(jstr(a, "status"), "executed");
	CHECK_STR(jstr(a, "result.summary"), "noted");
	CHECK_INT(json_array_size(jpath(a, "audit")), 3);
	CHECK_STR(jstr(a, "audit.1.actor"), "carol");
	CHECK_STR(jstr(a, "audit.1.reason"), "fine");
	CHECK_STR(jstr(a, "audit.2.to"), "executed");
	json_decref(a);
	call_error(&s, "POST", path, NULL, 409, "already executed");
	struct api_resp r;
	api_post(&s, path, "", &r);
	json_t *ej = api_json(&r);
	CHECK_STR(jstr(ej, "error.type"), "conflict_error");
	json_decref(ej);
	api_resp_free(&r);

	/* the command runs with no body at all; its output is in the result */
	snprintf(path, sizeof path, "/api/approvals/%lld/approve", cmd);
	a = call(&s, "POST", path, NULL, 200);
	CHECK_STR(jstr(a, "status"), "executed");
	CHECK_STR(jstr(a, "result.stdout"), "hi\n");
	CHECK_INT(jint(a, "result.exit_status"), 0);
	json_decref(a);

	/* get one */
	snprintf(path, sizeof path, "/api/approvals/%lld", cmd);
	json_t *g = call(&s, "GET", path, NULL, 200);
	CHECK_STR(jstr(g, "status"), "executed");
	CHECK_STR(jstr(g, "audit.2.detail.stdout"), "hi\n");
	json_decref(g);

	/* reject */
	p = call(&s, "POST", "/api/approvals", "{\"kind\":\"note\",\"title\":\"No\",\"payload\":{\"text\":\"x\"}}", 201);
	long long rej = jint(p, "id");
	json_decref(p);
	snprintf(path, sizeof path, "/api/approvals/%lld/reject", rej);
	a = call(&s, "POST", path, "{\"reason\":\"not today\"}", 200);
	CHECK_STR(jstr(a, "status"), "rejected");
	CHECK_STR(jstr(a, "audit.1.reason"), "not today");
	CHECK_STR(jstr(a, "audit.1.actor"), "api");
	json_decref(a);
	snprintf(path, sizeof path, "/api/approvals/%lld/approve", rej);
	call_error(&s, "POST", path, NULL, 409, "already rejected");
	l = call(&s, "GET", "/api/approvals?status=rejected", NULL, 200);
	CHECK_INT(json_array_size(jpath(l, "approvals")), 1);
	json_decref(l);
	l = call(&s, "GET", "/api/approvals", NULL, 200);
	CHECK_INT(json_array_size(jpath(l, "approvals")), 0);
	json_decref(l);

	/* the events went into sam.db with the transitions */
	struct sam_db *db;
	struct sam_error err;
	CHECKF(sam_db_open(&db, NULL, &err) == 0, "%s", err.msg);
	json_t *ev = appr_events(db);
	int decided = 0;
	for (size_t i = 0; i < json_array_size(ev); i++) {
		json_t *e = json_array_get(ev, i);
		if (strcmp(jstr(e, "type"), "approval.decided")) continue;
		decided++;
		if (jint(e, "data.id") == id) CHECK_STR(jstr(e, "data.actor"), "carol");
	}
	CHECK_INT(decided, 3);
	json_decref(ev);
	sam_db_close(db);

	/* errors */
	call_error(&s, "POST", "/api/approvals/999/approve", NULL, 404, "no approval 999");
	call_error(&s, "GET", "/api/approvals/999", NULL, 404, "no approval 999");
	call_error(&s, "POST", "/api/approvals/999/reject", NULL, 404, "no approval 999");
	call_error(&s, "GET", "/api/approvals/abc", NULL, 400, "not a positive integer");
	call_error(&s, "POST", "/api/approvals/-1/approve", NULL, 400, "not a positive integer");
	call_error(&s, "GET", "/api/approvals/1/approve", NULL, 405, "not allowed");
	call_error(&s, "POST", "/api/approvals/1/execute", NULL, 404, "no such endpoint");
	call_error(&s, "GET", "/api/approvals?status=bogus", NULL, 400, "unknown status");
	call_error(&s, "GET", "/api/approvals?limit=0", NULL, 400, "limit");
	call_error(&s, "POST", "/api/approvals", "{\"kind\":\"shell\",\"title\":\"t\",\"payload\":{}}", 400,
		   "unknown kind");
	call_error(&s, "POST", "/api/approvals", "{\"kind\":\"note\",\"payload\":{\"text\":\"a\"}}", 400, "'title'");
	call_error(&s, "POST", "/api/approvals", "{\"kind\":\"note\",\"title\":\"t\",\"payload\":\"{}\"}", 400,
		   "'payload'");
	call_error(&s, "POST", "/api/approvals", "{\"kind\":\"note\",\"title\":\"t\",\"payload\":{}}", 400,
		   "'text' is required");
	call_error(&s, "POST", "/api/approvals", "{\"kind\":\"note\",\"title\":\"t\",\"payload\":{\"text\":\"a\"},\"ttl\":-5}",
		   400, "'ttl'");
	call_error(&s, "POST", "/api/approvals",
		   "{\"kind\":\"command\",\"title\":\"t\",\"payload\":{\"argv\":[\"touch\",\"/tmp/x\"]}}", 400, "not allowed");
	call_error(&s, "POST", "/api/approvals", "{\"kind\":", 400, "malformed JSON");
	call_error(&s, "POST", "/api/approvals/1/approve", "[1]", 400, "JSON object");
	call_error(&s, "POST", "/api/approvals/1/approve", "{\"reason\": 5}", 400, "'reason'");
	api_stop(&s);
}

TEST(api_approvals_store_busy_is_503)
{
	struct api_server s;
	start(&s, "SAM_DB_BUSY_MS=300");
	/* another process holds the write lock for longer than the api waits */
	struct sam_db *db;
	struct sam_error err;
	CHECKF(sam_db_open(&db, NULL, &err) == 0, "%s", err.msg);
	CHECK(sam_db_begin(db, &err) == 0);
	struct api_resp r;
	api_post(&s, "/api/approvals", "{\"kind\":\"note\",\"title\":\"t\",\"payload\":{\"text\":\"a\"}}", &r);
	const char *m = api_check_error(&r, 503, "POST /api/approvals while locked");
	CHECKF(strstr(m, "unavailable"), "%s", m);
	char ra[16];
	CHECK(api_header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) > 0);
	api_resp_free(&r);
	/* reading still works under WAL */
	json_t *l = call(&s, "GET", "/api/approvals", NULL, 200);
	json_decref(l);
	sam_db_rollback(db);
	json_decref(call(&s, "POST", "/api/approvals", "{\"kind\":\"note\",\"title\":\"t\",\"payload\":{\"text\":\"a\"}}",
			 201));
	sam_db_close(db);
	api_stop(&s);
}

/* Run `sam ARGS...`; stdout/stderr/status in p (caller frees). */
#define SAM(p, ...) test_run_sam(p, 60, __VA_ARGS__, NULL)

TEST(cli_approvals_approve_reject)
{
	const char *home = appr_home();
	char conf[4200];
	snprintf(conf, sizeof conf, "%s/sam.conf", home);
	const char *allow_echo = "[approvals]\ncommands = /bin/echo\n";
	test_write_file(conf, allow_echo, strlen(allow_echo));
	setenv("USER", "dave", 1);
	struct sam_db *db = appr_db();
	struct sam_conf c;
	struct sam_error err;
	CHECK(sam_conf_load(&c, NULL, &err) == 0);
	int64_t note = appr_propose(db, &c, "note", "{\"text\":\"milk\"}");
	int64_t cmd = appr_propose(db, &c, "command", "{\"argv\":[\"/bin/echo\",\"hello from echo\"]}");
	int64_t rej = appr_propose(db, &c, "note", "{\"text\":\"no\"}");
	int64_t later = appr_propose(db, &c, "command", "{\"argv\":[\"/bin/echo\",\"never\"]}");
	sam_conf_free(&c);

	struct test_proc p;
	SAM(&p, "approvals");
	CHECKF(p.status == 0, "sam approvals: %d %s", p.status, p.err);
	CHECKF(strstr(p.out, "ID") && strstr(p.out, "STATUS") && strstr(p.out, "TITLE"), "%s", p.out);
	CHECKF(strstr(p.out, "a test proposal") && strstr(p.out, "pending") && strstr(p.out, "command"), "%s", p.out);
	test_proc_free(&p);
	SAM(&p, "approvals", "--json");
	CHECK_INT(p.status, 0);
	json_t *arr = json_loads(p.out, 0, NULL);
	CHECKF(json_is_array(arr) && json_array_size(arr) == 4, "%s", p.out);
	CHECK_INT(jint(arr, "0.id"), later);
	CHECK_STR(jstr(arr, "0.status"), "pending");
	CHECK_STR(jstr(arr, "0.payload.argv.1"), "never");
	json_decref(arr);
	test_proc_free(&p);

	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)note);
	SAM(&p, "approve", id, "--reason", "fine by me");
	CHECKF(p.status == 0, "sam approve: %d %s %s", p.status, p.out, p.err);
	CHECKF(strstr(p.out, "executed") && strstr(p.out, "noted"), "%s", p.out);
	test_proc_free(&p);
	SAM(&p, "approve", id);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "already executed"), "%s", p.err);
	test_proc_free(&p);
	/* the decider is $USER, with the reason */
	struct sam_approval_audit *au;
	size_t na;
	CHECK(sam_approval_audit(db, note, &au, &na, &err) == 0);
	CHECK_INT(na, 3);
	CHECK_STR(au[1].actor, "dave");
	CHECK_STR(au[1].reason, "fine by me");
	sam_approval_audit_free(au, na);

	snprintf(id, sizeof id, "%lld", (long long)cmd);
	SAM(&p, "approve", id);
	CHECKF(p.status == 0, "sam approve: %d %s %s", p.status, p.out, p.err);
	CHECKF(strstr(p.out, "exit status 0") && strstr(p.out, "hello from echo"), "%s", p.out);
	test_proc_free(&p);

	snprintf(id, sizeof id, "%lld", (long long)rej);
	SAM(&p, "reject", id, "--reason", "nope");
	CHECKF(p.status == 0, "sam reject: %d %s", p.status, p.err);
	CHECKF(strstr(p.out, "rejected"), "%s", p.out);
	test_proc_free(&p);
	SAM(&p, "approve", id);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "already rejected"), "%s", p.err);
	test_proc_free(&p);

	/* the allowlist changed since: the command fails and is not run */
	const char *allow_none = "[approvals]\ncommands =\n";
	test_write_file(conf, allow_none, strlen(allow_none));
	snprintf(id, sizeof id, "%lld", (long long)later);
	SAM(&p, "approve", id);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.out, "failed") && strstr(p.out, "not allowed") && !strstr(p.out, "never"), "%s", p.out);
	test_proc_free(&p);

	SAM(&p, "approvals");
	CHECK_INT(p.status, 0);
	CHECKF(strstr(p.out, "(no pending approvals)"), "%s", p.out);
	test_proc_free(&p);
	SAM(&p, "approvals", "--status", "rejected");
	CHECK_INT(p.status, 0);
	CHECKF(strstr(p.out, "rejected") && !strstr(p.out, "executed"), "%s", p.out);
	test_proc_free(&p);
	SAM(&p, "approvals", "--all", "--json");
	arr = json_loads(p.out, 0, NULL);
	CHECK_INT(json_array_size(arr), 4);
	json_decref(arr);
	test_proc_free(&p);

	/* usage and missing ids */
	SAM(&p, "approve", "abc");
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	SAM(&p, "approve");
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	SAM(&p, "approvals", "--status", "bogus");
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	SAM(&p, "reject", "999");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "no approval 999"), "%s", p.err);
	test_proc_free(&p);
	sam_db_close(db);
}
