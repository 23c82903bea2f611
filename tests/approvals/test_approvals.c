/*
 * test_approvals.c - the approval queue as a library (approvals.h): the
 * life cycle and its audit trail and events, conflicts, expiry, two
 * deciders at once, and what each kind may and may not do.
 */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "approvals/appr_util.h"
#include "test.h"

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static int get_status(struct sam_db *db, int64_t id)
{
	struct sam_approval a;
	struct sam_error err;
	CHECKF(sam_approval_get(db, id, &a, &err) == 0, "%s", err.msg);
	int st = a.status;
	sam_approval_clear(&a);
	return st;
}

/* Approve id, expecting the approval to be recorded; out is the proposal afterwards. */
static void approve_ok(struct sam_db *db, const struct sam_conf *c, int64_t id, struct sam_approval *out)
{
	struct sam_error err = { 0 };
	int rc = sam_approval_approve(db, c, id, "tester", NULL, out, &err);
	CHECKF(rc == 0, "approve %lld: %s", (long long)id, err.msg);
}

static const char *str_at(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static char *read_text(const char *path)
{
	return test_read_file(path, NULL);
}

TEST(approvals_life_cycle_with_audit_and_events)
{
	struct sam_db *db = appr_db();
	struct sam_error err = { 0 };
	int64_t id;
	CHECKF(sam_approval_propose(db, NULL, "note", "Remember the milk", "{ \"text\" : \"milk\" }", "learn", 0, &id,
				    &err) == 0,
	       "%s", err.msg);
	struct sam_approval a;
	CHECK(sam_approval_get(db, id, &a, &err) == 0);
	CHECK_INT(a.id, id);
	CHECK_STR(a.kind, "note");
	CHECK_STR(a.title, "Remember the milk");
	CHECK_STR(a.payload, "{\"text\":\"milk\"}"); /* stored compactly */
	CHECK_STR(a.proposer, "learn");
	CHECK_INT(a.status, SAM_APPROVAL_PENDING);
	CHECK(a.result == NULL);
	/* the default ttl: 7 days */
	CHECKF(a.expires > a.created + 604799 && a.expires < a.created + 604801, "expires %f created %f", a.expires,
	       a.created);
	sam_approval_clear(&a);
	int64_t n;
	CHECK(sam_approvals_pending(db, &n, &err) == 0);
	CHECK_INT(n, 1);

	CHECKF(sam_approval_approve(db, NULL, id, "alice", "looks right", &a, &err) == 0, "%s", err.msg);
	CHECK_INT(a.status, SAM_APPROVAL_EXECUTED);
	json_t *res = appr_result(&a);
	CHECK_STR(str_at(res, "summary"), "noted");
	json_decref(res);
	CHECK(a.updated >= a.created);
	sam_approval_clear(&a);
	CHECK(sam_approvals_pending(db, &n, &err) == 0);
	CHECK_INT(n, 0);

	/* the audit trail, in order */
	struct sam_approval_audit *au;
	size_t na;
	CHECK(sam_approval_audit(db, id, &au, &na, &err) == 0);
	CHECK_INT(na, 3);
	CHECK_INT(au[0].from, -1);
	CHECK_INT(au[0].to, SAM_APPROVAL_PENDING);
	CHECK_STR(au[0].actor, "learn");
	CHECK_INT(au[1].from, SAM_APPROVAL_PENDING);
	CHECK_INT(au[1].to, SAM_APPROVAL_APPROVED);
	CHECK_STR(au[1].actor, "alice");
	CHECK_STR(au[1].reason, "looks right");
	CHECK(au[1].detail == NULL);
	CHECK_INT(au[2].from, SAM_APPROVAL_APPROVED);
	CHECK_INT(au[2].to, SAM_APPROVAL_EXECUTED);
	CHECK_STR(au[2].actor, "system");
	CHECK_STR(au[2].reason, "noted");
	CHECK(au[2].detail != NULL && strstr(au[2].detail, "\"summary\":\"noted\""));
	CHECK(au[0].seq < au[1].seq && au[1].seq < au[2].seq);
	CHECK(au[0].time <= au[1].time && au[1].time <= au[2].time);
	json_t *aj = sam_approval_audit_to_json(&au[0]);
	CHECK(json_is_null(json_object_get(aj, "from")));
	CHECK_STR(str_at(aj, "to"), "pending");
	json_decref(aj);
	sam_approval_audit_free(au, na);

	/* the events, with their payloads */
	json_t *ev = appr_events(db);
	CHECK_INT(json_array_size(ev), 3);
	json_t *e0 = json_array_get(ev, 0), *e1 = json_array_get(ev, 1), *e2 = json_array_get(ev, 2);
	CHECK_STR(str_at(e0, "type"), "approval.pending");
	json_t *d = json_object_get(e0, "data");
	CHECK_INT(json_integer_value(json_object_get(d, "id")), id);
	CHECK_STR(str_at(d, "kind"), "note");
	CHECK_STR(str_at(d, "title"), "Remember the milk");
	CHECK_STR(str_at(d, "proposer"), "learn");
	CHECK(json_is_real(json_object_get(d, "expires")));
	CHECK_STR(str_at(e1, "type"), "approval.decided");
	d = json_object_get(e1, "data");
	CHECK_INT(json_integer_value(json_object_get(d, "id")), id);
	CHECK_STR(str_at(d, "decision"), "approved");
	CHECK_STR(str_at(d, "actor"), "alice");
	CHECK_STR(str_at(d, "reason"), "looks right");
	CHECK_STR(str_at(e2, "type"), "approval.executed");
	d = json_object_get(e2, "data");
	CHECK_STR(str_at(d, "status"), "executed");
	CHECK_STR(str_at(d, "summary"), "noted");
	CHECK_STR(str_at(d, "kind"), "note");
	json_decref(ev);

	/* nothing more can happen to it */
	CHECK(sam_approval_approve(db, NULL, id, "bob", NULL, NULL, &err) == SAM_ECONFLICT);
	CHECKF(strstr(err.msg, "already executed"), "%s", err.msg);
	CHECK(sam_approval_reject(db, id, "bob", NULL, &err) == SAM_ECONFLICT);
	CHECK(sam_approval_approve(db, NULL, id + 100, "bob", NULL, NULL, &err) == SAM_ENOTFOUND);
	CHECK(sam_approval_get(db, id + 100, &a, &err) == SAM_ENOTFOUND);
	CHECK(sam_approval_audit(db, id + 100, &au, &na, &err) == SAM_ENOTFOUND);
	/* a refused decision leaves no trace */
	ev = appr_events(db);
	CHECK_INT(json_array_size(ev), 3);
	json_decref(ev);
	CHECK_INT(appr_q_int(db, "SELECT count(*) FROM approval_audit"), 3);
	sam_db_close(db);
}

TEST(approvals_reject_then_nothing_else)
{
	struct sam_db *db = appr_db();
	struct sam_error err = { 0 };
	int64_t id = appr_propose(db, NULL, "note", "{\"text\": \"t\"}");
	CHECK(sam_approval_reject(db, id, "", NULL, &err) == SAM_EINVAL); /* an actor is needed */
	CHECK(sam_approval_reject(db, id, "bob\nx", NULL, &err) == SAM_EINVAL);
	CHECKF(sam_approval_reject(db, id, "bob", "not now", &err) == 0, "%s", err.msg);
	CHECK_INT(get_status(db, id), SAM_APPROVAL_REJECTED);
	CHECK(sam_approval_approve(db, NULL, id, "alice", NULL, NULL, &err) == SAM_ECONFLICT);
	CHECKF(strstr(err.msg, "already rejected"), "%s", err.msg);
	CHECK(sam_approval_reject(db, id, "bob", NULL, &err) == SAM_ECONFLICT);
	struct sam_approval_audit *au;
	size_t na;
	CHECK(sam_approval_audit(db, id, &au, &na, &err) == 0);
	CHECK_INT(na, 2);
	CHECK_INT(au[1].to, SAM_APPROVAL_REJECTED);
	CHECK_STR(au[1].actor, "bob");
	CHECK_STR(au[1].reason, "not now");
	sam_approval_audit_free(au, na);
	json_t *ev = appr_events(db);
	CHECK_INT(json_array_size(ev), 2);
	json_t *d = json_object_get(json_array_get(ev, 1), "data");
	CHECK_STR(str_at(json_array_get(ev, 1), "type"), "approval.decided");
	CHECK_STR(str_at(d, "decision"), "rejected");
	CHECK_STR(str_at(d, "reason"), "not now");
	json_decref(ev);
	sam_db_close(db);
}

TEST(approvals_expire)
{
	struct sam_db *db = appr_db();
	struct sam_error err = { 0 };
	struct sam_conf never;
	appr_conf(&never, "[approvals]\nttl = 0\n");
	int64_t id, keep, bad;
	CHECK(sam_approval_propose(db, NULL, "note", "soon gone", "{\"text\":\"x\"}", "test", 0.2, &id, &err) == 0);
	CHECK(sam_approval_propose(db, &never, "note", "for ever", "{\"text\":\"y\"}", "test", 0, &keep, &err) == 0);
	struct sam_approval a;
	CHECK(sam_approval_get(db, keep, &a, &err) == 0);
	CHECK(a.expires == 0);
	json_t *j = sam_approval_to_json(&a);
	CHECK(json_is_null(json_object_get(j, "expires")));
	json_decref(j);
	sam_approval_clear(&a);
	CHECK(sam_approval_propose(db, NULL, "note", "t", "{\"text\":\"x\"}", "test", -1, &bad, &err) == SAM_EINVAL);
	CHECK_INT(get_status(db, id), SAM_APPROVAL_PENDING);
	sleep_s(0.4);
	CHECK(sam_approval_approve(db, NULL, id, "alice", NULL, NULL, &err) == SAM_ECONFLICT);
	CHECKF(strstr(err.msg, "expired"), "%s", err.msg);
	/* the refused approval recorded the expiry it found (before anything else looked) */
	json_t *ev = appr_events(db);
	json_t *last = json_array_get(ev, json_array_size(ev) - 1);
	CHECK_STR(str_at(last, "type"), "approval.decided");
	CHECK_STR(str_at(json_object_get(last, "data"), "decision"), "expired");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(last, "data"), "id")), id);
	json_decref(ev);
	CHECK_INT(get_status(db, id), SAM_APPROVAL_EXPIRED);
	CHECK_INT(get_status(db, keep), SAM_APPROVAL_PENDING);
	int64_t n;
	CHECK(sam_approvals_pending(db, &n, &err) == 0);
	CHECK_INT(n, 1);
	/* expired by the system, in the audit trail */
	struct sam_approval_audit *au;
	size_t na;
	CHECK(sam_approval_audit(db, id, &au, &na, &err) == 0);
	CHECK_INT(na, 2);
	CHECK_INT(au[1].to, SAM_APPROVAL_EXPIRED);
	CHECK_STR(au[1].actor, "system");
	sam_approval_audit_free(au, na);
	sam_conf_free(&never);
	sam_db_close(db);
}

/* Fork two processes that approve id at the same moment; returns how many executed and how many met a conflict. */
static void race(int64_t id, int *won, int *lost)
{
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			char c;
			struct sam_db *db;
			struct sam_error err;
			if (sam_db_open(&db, NULL, &err)) _exit(1);
			if (read(go[0], &c, 1) < 0) _exit(1); /* EOF: go */
			int rc = sam_approval_approve(db, NULL, id, i ? "two" : "one", NULL, NULL, &err);
			sam_db_close(db);
			_exit(rc == 0 ? 0 : rc == SAM_ECONFLICT ? 3 : 1);
		}
	}
	close(go[0]);
	usleep(20000);
	close(go[1]);
	*won = *lost = 0;
	for (int i = 0; i < 2; i++) {
		int st;
		CHECK(waitpid(pids[i], &st, 0) == pids[i]);
		CHECKF(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3), "approver %d: status %d", i, st);
		if (WEXITSTATUS(st) == 0) ++*won;
		else ++*lost;
	}
}

TEST(approvals_concurrent_approve_executes_once)
{
	struct sam_db *db = appr_db();
	char path[4200];
	snprintf(path, sizeof path, "%s/count.txt", appr_files());
	for (int round = 0; round < 6; round++) {
		int64_t id = appr_propose(db, NULL, "file_write", "{\"path\":\"count.txt\",\"content\":\"x\\n\",\"append\":true}");
		int won, lost;
		race(id, &won, &lost);
		CHECK_INT(won, 1);
		CHECK_INT(lost, 1);
		CHECK_INT(get_status(db, id), SAM_APPROVAL_EXECUTED);
	}
	char *text = read_text(path);
	CHECK_STR(text, "x\nx\nx\nx\nx\nx\n");
	free(text);
	/* each proposal approved once in the audit trail */
	CHECK_INT(appr_q_int(db, "SELECT count(*) FROM approval_audit WHERE to_status = 'approved'"), 6);
	CHECK_INT(appr_q_int(db, "SELECT count(*) FROM approval_audit WHERE to_status = 'executed'"), 6);
	sam_db_close(db);
}

/* Whether dir holds a leftover temporary file of an atomic write. */
static bool has_temp(const char *dir)
{
	char cmd[4300];
	snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q '^\\.sam-write'", dir);
	return system(cmd) == 0;
}

TEST(approvals_file_write_inside)
{
	struct sam_db *db = appr_db();
	const char *files = appr_files();
	char path[4200], payload[5000];
	snprintf(path, sizeof path, "%s/a.txt", files);
	/* relative: inside the first allowed directory */
	int64_t id = appr_propose(db, NULL, "file_write", "{\"path\":\"a.txt\",\"content\":\"hello\\n\"}");
	struct sam_approval a;
	approve_ok(db, NULL, id, &a);
	CHECK_INT(a.status, SAM_APPROVAL_EXECUTED);
	json_t *res = appr_result(&a);
	CHECK_STR(str_at(res, "path"), path);
	CHECK_INT(json_integer_value(json_object_get(res, "bytes")), 6);
	json_decref(res);
	sam_approval_clear(&a);
	char *text = read_text(path);
	CHECK_STR(text, "hello\n");
	free(text);
	/* absolute, replacing: the file keeps its permissions */
	CHECK(chmod(path, 0600) == 0);
	snprintf(payload, sizeof payload, "{\"path\":\"%s\",\"content\":\"new\"}", path);
	approve_ok(db, NULL, appr_propose(db, NULL, "file_write", payload), &a);
	CHECK_INT(a.status, SAM_APPROVAL_EXECUTED);
	sam_approval_clear(&a);
	text = read_text(path);
	CHECK_STR(text, "new");
	free(text);
	struct stat st;
	CHECK(stat(path, &st) == 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	/* append */
	snprintf(payload, sizeof payload, "{\"path\":\"%s\",\"content\":\" and more\",\"append\":true}", path);
	approve_ok(db, NULL, appr_propose(db, NULL, "file_write", payload), &a);
	sam_approval_clear(&a);
	text = read_text(path);
	CHECK_STR(text, "new and more");
	free(text);
	CHECK(!has_temp(files));
	/* a subdirectory must exist */
	struct sam_error err;
	int64_t bad;
	CHECK(sam_approval_propose(db, NULL, "file_write", "t", "{\"path\":\"sub/x\",\"content\":\"\"}", "test", 0, &bad,
				   &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "no directory"), "%s", err.msg);
	/* a directory is not a file name */
	CHECK(sam_approval_propose(db, NULL, "file_write", "t", "{\"path\":\"sub/\",\"content\":\"\"}", "test", 0, &bad,
				   &err) == SAM_EINVAL);
	sam_db_close(db);
}

/* Propose a file_write to path, expecting the policy to refuse it with a message containing want. */
static void refused(struct sam_db *db, const struct sam_conf *c, const char *path, const char *want)
{
	char payload[5000];
	snprintf(payload, sizeof payload, "{\"path\":\"%s\",\"content\":\"bad\"}", path);
	int64_t id;
	struct sam_error err = { 0 };
	int rc = sam_approval_propose(db, c, "file_write", "t", payload, "test", 0, &id, &err);
	CHECKF(rc == SAM_EINVAL, "%s: rc %d (%s)", path, rc, err.msg);
	CHECKF(strstr(err.msg, want), "%s: %s", path, err.msg);
}

TEST(approvals_file_write_stays_inside)
{
	struct sam_db *db = appr_db();
	const char *files = appr_files();
	char outside[4200], path[4300], target[4300];
	snprintf(outside, sizeof outside, "%s/outside", test_tmpdir());
	CHECK(mkdir(outside, 0755) == 0);
	snprintf(target, sizeof target, "%s/target.txt", outside);
	test_write_file(target, "orig", 4);

	refused(db, NULL, "../x", "'..'");
	snprintf(path, sizeof path, "%s/../x", files);
	refused(db, NULL, path, "'..'");
	snprintf(path, sizeof path, "%s/x", outside);
	refused(db, NULL, path, "outside");
	refused(db, NULL, "/etc/passwd", "outside");
	/* a symlinked directory inside that leads out */
	char link[4300];
	snprintf(link, sizeof link, "%s/out", files);
	CHECK(symlink(outside, link) == 0);
	refused(db, NULL, "out/target.txt", "outside");
	refused(db, NULL, "out/new.txt", "outside");

	/* a symlink at the name itself is replaced, never followed */
	snprintf(link, sizeof link, "%s/evil", files);
	CHECK(symlink(target, link) == 0);
	struct sam_approval a;
	approve_ok(db, NULL, appr_propose(db, NULL, "file_write", "{\"path\":\"evil\",\"content\":\"mine\"}"), &a);
	CHECK_INT(a.status, SAM_APPROVAL_EXECUTED);
	sam_approval_clear(&a);
	char *text = read_text(target);
	CHECK_STR(text, "orig");
	free(text);
	struct stat st;
	CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode));
	text = read_text(link);
	CHECK_STR(text, "mine");
	free(text);
	/* appending to such a link does not read what it points at either */
	CHECK(unlink(link) == 0 && symlink(target, link) == 0);
	approve_ok(db, NULL,
		   appr_propose(db, NULL, "file_write", "{\"path\":\"evil\",\"content\":\"+\",\"append\":true}"), &a);
	CHECK_INT(a.status, SAM_APPROVAL_EXECUTED);
	sam_approval_clear(&a);
	text = read_text(link);
	CHECK_STR(text, "+");
	free(text);
	text = read_text(target);
	CHECK_STR(text, "orig");
	free(text);

	struct sam_error err;
	/* a directory swapped for a link after the proposal: the write fails, nothing lands outside */
	char sub[4300];
	snprintf(sub, sizeof sub, "%s/sub", files);
	CHECK(mkdir(sub, 0755) == 0);
	int64_t id = appr_propose(db, NULL, "file_write", "{\"path\":\"sub/planted.txt\",\"content\":\"x\"}");
	CHECK(rmdir(sub) == 0 && symlink(outside, sub) == 0);
	approve_ok(db, NULL, id, &a);
	CHECK_INT(a.status, SAM_APPROVAL_FAILED);
	json_t *res = appr_result(&a);
	CHECKF(strstr(str_at(res, "error"), "outside"), "%s", a.result);
	json_decref(res);
	sam_approval_clear(&a);
	snprintf(path, sizeof path, "%s/planted.txt", outside);
	CHECK(access(path, F_OK) != 0);

	/* the allowed directories changed between the proposal and the approval */
	id = appr_propose(db, NULL, "file_write", "{\"path\":\"later.txt\",\"content\":\"x\"}");
	CHECK(sam_approval_get(db, id, &a, &err) == 0);
	snprintf(path, sizeof path, "{\"path\":\"%s/later.txt\",\"content\":\"x\"}", files);
	CHECK_STR(a.payload, path); /* made absolute when proposed: what is approved is where it goes */
	sam_approval_clear(&a);
	struct sam_conf c;
	char text_conf[4400];
	snprintf(text_conf, sizeof text_conf, "[approvals]\nallowed_dirs = %s\n", outside);
	appr_conf(&c, text_conf);
	approve_ok(db, &c, id, &a);
	CHECK_INT(a.status, SAM_APPROVAL_FAILED);
	CHECKF(strstr(a.result, "refused") && strstr(a.result, "outside"), "%s", a.result);
	sam_approval_clear(&a);
	snprintf(path, sizeof path, "%s/later.txt", files);
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof path, "%s/later.txt", outside);
	CHECK(access(path, F_OK) != 0);
	/* and with none at all, nothing may be written */
	sam_conf_free(&c);
	appr_conf(&c, "[approvals]\nallowed_dirs =\n");
	refused(db, &c, "x.txt", "no [approvals] allowed_dirs");
	refused(db, &c, path, "outside");
	sam_conf_free(&c);
	CHECK(!has_temp(files) && !has_temp(outside));
	sam_db_close(db);
}

/* Approve a command proposal (argv as JSON) under config c; returns the result (caller decrefs) and its status. */
static json_t *run_cmd(struct sam_db *db, const struct sam_conf *c, const char *argv_json, const char *extra,
		       int *status)
{
	char payload[4400];
	snprintf(payload, sizeof payload, "{\"argv\":%s%s}", argv_json, extra ? extra : "");
	int64_t id = appr_propose(db, c, "command", payload);
	struct sam_approval a;
	approve_ok(db, c, id, &a);
	*status = a.status;
	json_t *res = appr_result(&a);
	sam_approval_clear(&a);
	return res;
}

TEST(approvals_command_runs_allowlisted)
{
	struct sam_db *db = appr_db();
	struct sam_conf c;
	appr_conf(&c, "[approvals]\ncommands = /bin/echo, printf : /bin/sh,false,/bin/pwd, /nonexistent/prog\n");
	int st;
	json_t *r = run_cmd(db, &c, "[\"/bin/echo\", \"hello\", \"world\"]", NULL, &st);
	CHECK_INT(st, SAM_APPROVAL_EXECUTED);
	CHECK_INT(json_integer_value(json_object_get(r, "exit_status")), 0);
	CHECK_STR(str_at(r, "stdout"), "hello world\n");
	CHECK_STR(str_at(r, "stderr"), "");
	CHECK(json_is_false(json_object_get(r, "truncated")));
	CHECK(json_number_value(json_object_get(r, "seconds")) >= 0);
	CHECK_STR(str_at(r, "summary"), "exit status 0");
	json_decref(r);
	/* the output is in the audit trail too */
	struct sam_approval_audit *au;
	size_t na;
	struct sam_error err;
	CHECK(sam_approval_audit(db, 1, &au, &na, &err) == 0);
	CHECK_INT(na, 3);
	CHECKF(au[2].detail && strstr(au[2].detail, "hello world"), "%s", au[2].detail ? au[2].detail : "(null)");
	sam_approval_audit_free(au, na);

	/* a name is looked up in PATH; no shell sees the arguments */
	r = run_cmd(db, &c, "[\"printf\", \"%s-%s\", \"a;b\", \"$HOME\"]", NULL, &st);
	CHECK_INT(st, SAM_APPROVAL_EXECUTED);
	CHECK_STR(str_at(r, "stdout"), "a;b-$HOME");
	json_decref(r);
	/* stderr, a non-zero exit and more output than is kept */
	r = run_cmd(db, &c, "[\"/bin/sh\", \"-c\", \"echo oops >&2; yes | head -c 100000; exit 3\"]", NULL, &st);
	CHECK_INT(st, SAM_APPROVAL_FAILED);
	CHECK_INT(json_integer_value(json_object_get(r, "exit_status")), 3);
	CHECK_STR(str_at(r, "stderr"), "oops\n");
	CHECK(json_is_true(json_object_get(r, "truncated")));
	CHECK_INT(json_string_length(json_object_get(r, "stdout")), SAM_APPROVAL_OUTPUT_MAX);
	CHECK_INT(json_integer_value(json_object_get(r, "stdout_bytes")), 100000);
	CHECK_STR(str_at(r, "summary"), "exit status 3");
	json_decref(r);
	r = run_cmd(db, &c, "[\"false\"]", NULL, &st);
	CHECK_INT(st, SAM_APPROVAL_FAILED);
	json_decref(r);
	/* cwd */
	char real[4200];
	CHECK(realpath(test_tmpdir(), real) != NULL);
	char extra[4400];
	snprintf(extra, sizeof extra, ", \"cwd\": \"%s\"", real);
	r = run_cmd(db, &c, "[\"/bin/pwd\"]", extra, &st);
	CHECK_INT(st, SAM_APPROVAL_EXECUTED);
	CHECK(!strncmp(str_at(r, "stdout"), real, strlen(real)));
	json_decref(r);
	r = run_cmd(db, &c, "[\"/bin/pwd\"]", ", \"cwd\": \"/no/such/dir\"", &st);
	CHECK_INT(st, SAM_APPROVAL_FAILED);
	CHECKF(strstr(str_at(r, "error"), "/no/such/dir"), "%s", str_at(r, "error"));
	json_decref(r);
	/* allowed but absent */
	r = run_cmd(db, &c, "[\"/nonexistent/prog\"]", NULL, &st);
	CHECK_INT(st, SAM_APPROVAL_FAILED);
	CHECKF(strstr(str_at(r, "error"), "/nonexistent/prog' does not exist"), "%s", str_at(r, "error"));
	json_decref(r);
	sam_conf_free(&c);
	sam_db_close(db);
}

TEST(approvals_command_killed_at_timeout)
{
	struct sam_db *db = appr_db();
	struct sam_conf c;
	appr_conf(&c, "[approvals]\ncommands = /bin/sh\ncommand_timeout = 5\n");
	char pidfile[4200], argv[4600];
	snprintf(pidfile, sizeof pidfile, "%s/bg.pid", test_tmpdir());
	/* the group goes: the background sleep as well as the shell */
	snprintf(argv, sizeof argv, "[\"/bin/sh\", \"-c\", \"sleep 30 & echo $! > %s; echo started; wait\"]", pidfile);
	double t0 = sam_now();
	int st;
	json_t *r = run_cmd(db, &c, argv, ", \"timeout\": 0.5", &st);
	double took = sam_now() - t0;
	CHECK_INT(st, SAM_APPROVAL_FAILED);
	CHECK(json_is_true(json_object_get(r, "timed_out")));
	CHECK_INT(json_integer_value(json_object_get(r, "signal")), SIGKILL);
	CHECK(json_object_get(r, "exit_status") == NULL);
	CHECK_STR(str_at(r, "stdout"), "started\n");
	CHECKF(took < 4, "took %.1f s", took);
	json_decref(r);
	char *p = test_read_file(pidfile, NULL);
	CHECK(p != NULL);
	pid_t bg = (pid_t)atoi(p);
	free(p);
	CHECK(bg > 0);
	bool gone = false;
	for (int i = 0; i < 100 && !gone; i++) { /* reparented: init reaps it a moment later */
		gone = kill(bg, 0) != 0 && errno == ESRCH;
		if (!gone) sleep_s(0.02);
	}
	CHECKF(gone, "the background process %d outlived the timeout", (int)bg);
	/* a timeout above the limit is refused when proposed */
	int64_t id;
	struct sam_error err;
	CHECK(sam_approval_propose(db, &c, "command", "t", "{\"argv\":[\"/bin/sh\"],\"timeout\":6}", "test", 0, &id,
				   &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "command_timeout"), "%s", err.msg);
	/* what a command leaves running with the pipes open is killed soon after it exits */
	t0 = sam_now();
	r = run_cmd(db, &c, "[\"/bin/sh\", \"-c\", \"sleep 30 & exit 0\"]", NULL, &st);
	CHECK_INT(st, SAM_APPROVAL_EXECUTED);
	CHECKF(sam_now() - t0 < 4, "took %.1f s", sam_now() - t0);
	json_decref(r);
	sam_conf_free(&c);
	sam_db_close(db);
}

TEST(approvals_command_policy_rechecked)
{
	struct sam_db *db = appr_db();
	char marker[4200], payload[4600];
	snprintf(marker, sizeof marker, "%s/marker", test_tmpdir());
	snprintf(payload, sizeof payload, "{\"argv\":[\"touch\", \"%s\"]}", marker);
	struct sam_conf echo_only, touch_ok;
	appr_conf(&echo_only, "[approvals]\ncommands = /bin/echo\n");
	appr_conf(&touch_ok, "[approvals]\ncommands = touch\n");
	int64_t id;
	struct sam_error err;
	/* not allowed: refused when proposed, with nothing recorded */
	CHECK(sam_approval_propose(db, &echo_only, "command", "t", payload, "test", 0, &id, &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "not allowed") && strstr(err.msg, "touch"), "%s", err.msg);
	CHECK(sam_approval_propose(db, NULL, "command", "t", payload, "test", 0, &id, &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "no [approvals] commands"), "%s", err.msg);
	/* only the exact argv[0] */
	CHECK(sam_approval_propose(db, &touch_ok, "command", "t", "{\"argv\":[\"/usr/bin/touch\",\"x\"]}", "test", 0, &id,
				   &err) == SAM_EINVAL);
	CHECK_INT(appr_q_int(db, "SELECT count(*) FROM approvals"), 0);
	/* allowed when proposed, not any more when approved: never run */
	id = appr_propose(db, &touch_ok, "command", payload);
	struct sam_approval a;
	approve_ok(db, &echo_only, id, &a);
	CHECK_INT(a.status, SAM_APPROVAL_FAILED);
	CHECKF(strstr(a.result, "not allowed"), "%s", a.result);
	sam_approval_clear(&a);
	CHECK(access(marker, F_OK) != 0);
	int64_t id2 = appr_propose(db, &touch_ok, "command", payload);
	approve_ok(db, NULL, id2, &a);
	CHECK_INT(a.status, SAM_APPROVAL_FAILED);
	sam_approval_clear(&a);
	CHECK(access(marker, F_OK) != 0);
	/* the control: allowed both times, it runs */
	approve_ok(db, &touch_ok, appr_propose(db, &touch_ok, "command", payload), &a);
	CHECKF(a.status == SAM_APPROVAL_EXECUTED, "%s", a.result);
	sam_approval_clear(&a);
	CHECK(access(marker, F_OK) == 0);
	json_t *ev = appr_events(db);
	json_t *last = json_array_get(ev, json_array_size(ev) - 1);
	CHECK_STR(str_at(last, "type"), "approval.executed");
	CHECK_STR(str_at(json_object_get(last, "data"), "status"), "executed");
	json_decref(ev);
	sam_conf_free(&echo_only);
	sam_conf_free(&touch_ok);
	sam_db_close(db);
}

/* Propose, expecting rc and a message that contains want. */
static void bad(struct sam_db *db, const char *kind, const char *title, const char *payload, int want_rc,
		const char *want)
{
	int64_t id;
	struct sam_error err = { 0 };
	int rc = sam_approval_propose(db, NULL, kind, title, payload, "test", 0, &id, &err);
	CHECKF(rc == want_rc, "%s %s: rc %d, expected %d (%s)", kind, payload, rc, want_rc, err.msg);
	CHECKF(strstr(err.msg, want), "%s %s: \"%s\" does not say \"%s\"", kind, payload, err.msg, want);
}

TEST(approvals_refuse_bad_proposals)
{
	struct sam_db *db = appr_db();
	bad(db, "shell", "t", "{\"cmd\":\"rm -rf /\"}", SAM_EUNSUPPORTED, "unknown kind 'shell'");
	bad(db, "shell", "t", "not json", SAM_EUNSUPPORTED, "unknown kind");
	bad(db, "note", "t", "not json", SAM_EINVAL, "not JSON");
	bad(db, "note", "t", "[1]", SAM_EINVAL, "JSON object");
	bad(db, "note", "t", "{}", SAM_EINVAL, "'text' is required");
	bad(db, "note", "t", "{\"text\": 5}", SAM_EINVAL, "'text' must be a string");
	bad(db, "note", "t", "{\"text\": \"a\", \"txet\": 1}", SAM_EINVAL, "'txet'");
	bad(db, "note", "t", "{\"text\": \"a\", \"text\": \"b\"}", SAM_EINVAL, "duplicate");
	bad(db, "note", "", "{\"text\": \"a\"}", SAM_EINVAL, "title");
	bad(db, "note", "two\nlines", "{\"text\": \"a\"}", SAM_EINVAL, "title must be one line");
	bad(db, "note", "\xff\xfe", "{\"text\": \"a\"}", SAM_EINVAL, "UTF-8");
	bad(db, "file_write", "t", "{\"path\": \"a\"}", SAM_EINVAL, "'content' is required");
	bad(db, "file_write", "t", "{\"path\": \"a\", \"content\": \"\", \"append\": \"yes\"}", SAM_EINVAL, "'append'");
	bad(db, "file_write", "t", "{\"path\": \"a\\u0000b\", \"content\": \"\"}", SAM_EINVAL, "NUL");
	bad(db, "command", "t", "{\"argv\": \"ls\"}", SAM_EINVAL, "'argv' must be a non-empty array");
	bad(db, "command", "t", "{\"argv\": []}", SAM_EINVAL, "'argv'");
	bad(db, "command", "t", "{\"argv\": [\"ls\", 1]}", SAM_EINVAL, "'argv[1]'");
	bad(db, "command", "t", "{\"argv\": [\"ls\"], \"cwd\": \"rel\"}", SAM_EINVAL, "'cwd'");
	bad(db, "command", "t", "{\"argv\": [\"ls\"], \"timeout\": -1}", SAM_EINVAL, "'timeout'");
	bad(db, "training_deploy", "t", "{\"run\": \"../etc\"}", SAM_EINVAL, "'run'");
	bad(db, "training_deploy", "t", "{}", SAM_EINVAL, "'run' is required");
	int64_t id;
	struct sam_error err;
	CHECK(sam_approval_propose(db, NULL, "note", "t", "{\"text\":\"a\"}", "", 0, &id, &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "proposer"), "%s", err.msg);
	CHECK(sam_approval_propose(db, NULL, "note", "t", NULL, "x", 0, &id, &err) == SAM_EINVAL);
	/* a broken [approvals] section is named */
	struct sam_conf c;
	appr_conf(&c, "[approvals]\ncommand_timeout = soon\n");
	CHECK(sam_approval_propose(db, &c, "note", "t", "{\"text\":\"a\"}", "x", 0, &id, &err) == SAM_EFORMAT);
	CHECKF(strstr(err.msg, "approvals.command_timeout"), "%s", err.msg);
	sam_conf_free(&c);
	appr_conf(&c, "[approvals]\ncommands = bin/ls\n");
	CHECK(sam_approval_propose(db, &c, "note", "t", "{\"text\":\"a\"}", "x", 0, &id, &err) == SAM_EFORMAT);
	CHECKF(strstr(err.msg, "approvals.commands"), "%s", err.msg);
	sam_conf_free(&c);
	/* nothing was recorded, nothing published */
	CHECK_INT(appr_q_int(db, "SELECT count(*) FROM approvals"), 0);
	CHECK_INT(appr_q_int(db, "SELECT count(*) FROM approval_audit"), 0);
	json_t *ev = appr_events(db);
	CHECK_INT(json_array_size(ev), 0);
	json_decref(ev);
	sam_db_close(db);
}

TEST(approvals_training_deploy_of_unknown_run_fails)
{
	struct sam_db *db = appr_db();
	int64_t id = appr_propose(db, NULL, "training_deploy", "{\"run\":\"no-such-run\"}");
	struct sam_approval a;
	approve_ok(db, NULL, id, &a);
	CHECK_INT(a.status, SAM_APPROVAL_FAILED);
	CHECKF(strstr(a.result, "no-such-run"), "%s", a.result);
	sam_approval_clear(&a);
	sam_db_close(db);
}

TEST(approvals_list_and_sweep)
{
	struct sam_db *db = appr_db();
	struct sam_error err = { 0 };
	int64_t ids[5];
	for (int i = 0; i < 5; i++) ids[i] = appr_propose(db, NULL, "note", "{\"text\":\"n\"}");
	CHECK(sam_approval_reject(db, ids[1], "bob", NULL, &err) == 0);
	struct sam_approval *list;
	size_t n;
	CHECK(sam_approval_list(db, SAM_APPROVAL_PENDING, 0, &list, &n, &err) == 0);
	CHECK_INT(n, 4);
	CHECK_INT(list[0].id, ids[4]); /* newest first */
	CHECK_INT(list[3].id, ids[0]);
	sam_approvals_free(list, n);
	CHECK(sam_approval_list(db, -1, 2, &list, &n, &err) == 0);
	CHECK_INT(n, 2);
	CHECK_INT(list[1].id, ids[3]);
	json_t *j = sam_approval_to_json(&list[0]);
	CHECK_STR(str_at(j, "status"), "pending");
	CHECK_STR(str_at(json_object_get(j, "payload"), "text"), "n");
	CHECK(json_is_null(json_object_get(j, "result")));
	json_decref(j);
	sam_approvals_free(list, n);
	CHECK(sam_approval_list(db, SAM_APPROVAL_REJECTED, 0, &list, &n, &err) == 0);
	CHECK_INT(n, 1);
	sam_approvals_free(list, n);
	CHECK(sam_approval_list(db, SAM_APPROVAL_EXECUTED, 0, &list, &n, &err) == 0);
	CHECK_INT(n, 0);
	CHECK(list == NULL);
	CHECK(sam_approval_list(db, 17, 0, &list, &n, &err) == SAM_EINVAL);

	/* an executor that died after approving: failed by the sweep once the longest command could be over */
	char sql[200];
	snprintf(sql, sizeof sql, "UPDATE approvals SET status = 'approved', updated = %f WHERE id = %lld",
		 sam_db_time() - 100, (long long)ids[2]);
	CHECK(sam_db_exec(db, sql, &err) == 0);
	snprintf(sql, sizeof sql, "UPDATE approvals SET status = 'approved', updated = %f WHERE id = %lld",
		 sam_db_time() - 10, (long long)ids[3]);
	CHECK(sam_db_exec(db, sql, &err) == 0);
	struct sam_conf c;
	appr_conf(&c, "[approvals]\ncommand_timeout = 1\n");
	int64_t changed;
	CHECKF(sam_approvals_sweep(db, &c, &changed, &err) == 0, "%s", err.msg);
	CHECK_INT(changed, 1);
	CHECK_INT(get_status(db, ids[2]), SAM_APPROVAL_FAILED);
	CHECK_INT(get_status(db, ids[3]), SAM_APPROVAL_APPROVED); /* may still be running */
	json_t *ev = appr_events(db);
	json_t *last = json_array_get(ev, json_array_size(ev) - 1);
	CHECK_STR(str_at(last, "type"), "approval.executed");
	CHECK_STR(str_at(json_object_get(last, "data"), "status"), "failed");
	CHECKF(strstr(str_at(json_object_get(last, "data"), "summary"), "interrupted"), "summary");
	json_decref(ev);
	sam_conf_free(&c);
	CHECK(sam_approval_status_parse("executed") == SAM_APPROVAL_EXECUTED);
	CHECK(sam_approval_status_parse("bogus") == -1);
	CHECK_STR(sam_approval_status_name(SAM_APPROVAL_EXPIRED), "expired");
	sam_db_close(db);
}
