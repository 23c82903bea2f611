/* appr_util.c - helpers of the approval tests (appr_util.h). */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "approvals/appr_util.h"
#include "sam/events.h"
#include "test.h"

const char *appr_home(void)
{
	static char home[4096];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	mkdir(home, 0700);
	setenv("SAM_HOME", home, 1);
	static const char *const keys[] = { "SAM_APPROVALS_ALLOWED_DIRS", "SAM_APPROVALS_COMMANDS",
					    "SAM_APPROVALS_COMMAND_TIMEOUT", "SAM_APPROVALS_TTL" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) unsetenv(keys[i]);
	return home;
}

const char *appr_files(void)
{
	static char files[PATH_MAX];
	char p[4200];
	snprintf(p, sizeof p, "%s/files", appr_home());
	mkdir(p, 0755);
	CHECK(realpath(p, files) != NULL);
	return files;
}

struct sam_db *appr_db(void)
{
	appr_home();
	struct sam_db *db;
	struct sam_error err;
	CHECKF(sam_db_open(&db, NULL, &err) == 0, "sam.db: %s", err.msg);
	return db;
}

void appr_conf(struct sam_conf *c, const char *text)
{
	struct sam_error err;
	memset(c, 0, sizeof *c);
	CHECKF(sam_conf_parse(c, text, &err) == 0, "config: %s", err.msg);
}

int64_t appr_propose(struct sam_db *db, const struct sam_conf *c, const char *kind, const char *payload)
{
	int64_t id = 0;
	struct sam_error err = { 0 };
	int rc = sam_approval_propose(db, c, kind, "a test proposal", payload, "test", 0, &id, &err);
	CHECKF(rc == 0, "propose %s %s: %s", kind, payload, err.msg);
	CHECK(id > 0);
	return id;
}

json_t *appr_result(const struct sam_approval *a)
{
	CHECKF(a->result != NULL, "approval %lld has no result", (long long)a->id);
	json_t *j = json_loads(a->result, 0, NULL);
	CHECKF(json_is_object(j), "result is not a JSON object: %s", a->result);
	return j;
}

json_t *appr_events(struct sam_db *db)
{
	struct sam_event *ev;
	size_t n;
	struct sam_error err;
	CHECKF(sam_events_since(db, 0, 0, &ev, &n, &err) == 0, "%s", err.msg);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (strncmp(ev[i].type, "approval.", 9)) continue;
		CHECKF(!strcmp(ev[i].source, "approvals"), "event source %s", ev[i].source);
		json_array_append_new(arr, json_pack("{s:s, s:o}", "type", ev[i].type, "data", json_loads(ev[i].data, 0, NULL)));
	}
	sam_events_free(ev, n);
	return arr;
}

long long appr_q_int(struct sam_db *db, const char *sql)
{
	sqlite3_stmt *st;
	CHECK(sam_db_prepare(db, &st, sql, NULL) == 0);
	long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return v;
}
