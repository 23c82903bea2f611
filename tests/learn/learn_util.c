/* learn_util.c - helpers of the learning tests (learn_util.h). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "learn/learn_util.h"
#include "test.h"

const char *learn_test_home(void)
{
	static char home[4096];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	setenv("SAM_HOME", home, 1);
	return home;
}

long long learn_q_int(struct sam_db *db, const char *sql)
{
	sqlite3_stmt *st;
	CHECK(sam_db_prepare(db, &st, sql, NULL) == 0);
	long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return v;
}
