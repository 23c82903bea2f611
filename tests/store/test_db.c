/* test_db.c - sam.db: open, pragmas, migrations, transactions, sessions, concurrent writers. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/db.h"
#include "sam/events.h"
#include "sam/fs.h"
#include "sam/sessions.h"
#include "test.h"

/* SAM_HOME in the test's directory, not yet created. */
static const char *fresh_home(void)
{
	static char home[512];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	setenv("SAM_HOME", home, 1);
	unsetenv("SAM_DB_BUSY_MS");
	return home;
}

static struct sam_db *open_ok(const char *path)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	int rc = sam_db_open(&db, path, &err);
	CHECKF(rc == 0, "sam_db_open: %d %s", rc, err.msg);
	return db;
}

/* The first column of the first row of sql, as an integer or as text into buf. */
static long long q_int(struct sam_db *db, const char *sql)
{
	sqlite3_stmt *st;
	CHECK(sam_db_prepare(db, &st, sql, NULL) == 0);
	CHECKF(sqlite3_step(st) == SQLITE_ROW, "no row from %s", sql);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static const char *q_text(struct sam_db *db, const char *sql, char *buf, size_t cap)
{
	sqlite3_stmt *st;
	CHECK(sam_db_prepare(db, &st, sql, NULL) == 0);
	CHECKF(sqlite3_step(st) == SQLITE_ROW, "no row from %s", sql);
	snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return buf;
}

TEST(db_open_creates_wal_database_and_migrates_once)
{
	const char *home = fresh_home();
	struct sam_db *db = open_ok(NULL);
	char path[600], buf[64];
	snprintf(path, sizeof path, "%s/sam.db", home);
	CHECK_STR(sam_db_path(db), path);
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_STR(q_text(db, "PRAGMA journal_mode", buf, sizeof buf), "wal");
	CHECK(q_int(db, "PRAGMA busy_timeout") >= 10000);
	CHECK_INT(q_int(db, "PRAGMA busy_timeout"), SAM_DB_BUSY_MS_DEFAULT);
	CHECK_INT(q_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
	CHECK_INT(q_int(db, "PRAGMA foreign_keys"), 1);
	CHECK(sam_db_schema_version() >= 1);
	CHECK_INT(q_int(db, "PRAGMA user_version"), sam_db_schema_version());
	CHECK_INT(sam_db_migrations_applied(db), sam_db_schema_version());
	CHECK_INT(q_int(db, "SELECT count(*) FROM schema_migrations"), sam_db_schema_version());
	CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN"
			    " ('sessions','messages','events','messages_session','events_type')"),
		  5);
	sam_db_close(db);

	/* reopening finds the schema current and applies nothing */
	db = open_ok(path);
	CHECK_INT(sam_db_migrations_applied(db), 0);
	CHECK_INT(q_int(db, "PRAGMA user_version"), sam_db_schema_version());
	CHECK_INT(q_int(db, "SELECT count(*) FROM schema_migrations"), sam_db_schema_version());
	/* pragmas are per connection: set again on every open */
	CHECK_INT(q_int(db, "PRAGMA foreign_keys"), 1);
	CHECK_INT(q_int(db, "PRAGMA busy_timeout"), SAM_DB_BUSY_MS_DEFAULT);
	sam_db_close(db);
	sam_db_close(NULL);
}

TEST(db_busy_timeout_from_env)
{
	fresh_home();
	setenv("SAM_DB_BUSY_MS", "25000", 1);
	struct sam_db *db = open_ok(NULL);
	CHECK_INT(q_int(db, "PRAGMA busy_timeout"), 25000);
	sam_db_close(db);
	setenv("SAM_DB_BUSY_MS", "-5", 1); /* ignored, with a warning */
	CHECK_INT(sam_db_busy_ms(), SAM_DB_BUSY_MS_DEFAULT);
	setenv("SAM_DB_BUSY_MS", "12x", 1);
	CHECK_INT(sam_db_busy_ms(), SAM_DB_BUSY_MS_DEFAULT);
}

TEST(db_newer_schema_is_unsupported)
{
	char path[600];
	snprintf(path, sizeof path, "%s/new.db", test_tmpdir());
	sqlite3 *h;
	CHECK(sqlite3_open(path, &h) == SQLITE_OK);
	CHECK(sqlite3_exec(h, "CREATE TABLE x(a); PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);
	struct sam_db *db = (struct sam_db *)1;
	struct sam_error err = { 0 };
	CHECK_INT(sam_db_open(&db, path, &err), SAM_EUNSUPPORTED);
	CHECK(db == NULL);
	CHECKF(strstr(err.msg, "999") && strstr(err.msg, "newer"), "message: %s", err.msg);
	/* and it was left alone */
	CHECK(sqlite3_open(path, &h) == SQLITE_OK);
	sqlite3_stmt *st;
	CHECK(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(st, 0), 999);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

TEST(db_rejects_garbage_and_unwritable_paths)
{
	char path[600];
	snprintf(path, sizeof path, "%s/junk.db", test_tmpdir());
	char junk[4096];
	memset(junk, 'x', sizeof junk);
	test_write_file(path, junk, sizeof junk);
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECK_INT(sam_db_open(&db, path, &err), SAM_EFORMAT);
	CHECKF(strstr(err.msg, "not a database"), "message: %s", err.msg);
	CHECK_INT(sam_db_open(&db, "/nonexistent/dir/sam.db", &err), SAM_EIO);
	CHECKF(strstr(err.msg, "/nonexistent/dir/sam.db"), "message: %s", err.msg);
}

TEST(db_transactions_nest_and_roll_back)
{
	fresh_home();
	struct sam_db *db = open_ok(NULL);
	struct sam_error err;
	CHECK(sam_db_begin(db, &err) == 0);
	CHECK(sam_session_ensure(db, "outer", NULL, &err) == 0);
	CHECK(sam_db_begin(db, &err) == 0);
	CHECK(sam_session_ensure(db, "inner", NULL, &err) == 0);
	sam_db_rollback(db);
	/* appends open their own nested level inside ours */
	CHECK(sam_session_append(db, "outer", "user", "hi", 1, NULL, &err) == 0);
	CHECK(sam_db_commit(db, &err) == 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sessions WHERE id = 'outer'"), 1);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sessions WHERE id = 'inner'"), 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM messages"), 1);
	CHECK_INT(sam_db_commit(db, &err), SAM_EINVAL);
	/* an abandoned transaction is rolled back by close */
	CHECK(sam_db_begin(db, &err) == 0);
	CHECK(sam_session_ensure(db, "lost", NULL, &err) == 0);
	sam_db_close(db);
	db = open_ok(NULL);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sessions WHERE id = 'lost'"), 0);
	/* errors carry SQLite's message */
	CHECK_INT(sam_db_exec(db, "SELECT nonsense FROM nowhere", &err), SAM_EIO);
	CHECKF(strstr(err.msg, "no such table"), "message: %s", err.msg);
	sam_db_close(db);
}

TEST(sessions_create_ensure_and_validate_ids)
{
	fresh_home();
	struct sam_db *db = open_ok(NULL);
	struct sam_error err;
	char id[SAM_SESSION_ID_MAX + 1], id2[SAM_SESSION_ID_MAX + 1];
	CHECK(sam_session_create(db, id, &err) == 0);
	CHECK(sam_session_create(db, id2, &err) == 0);
	CHECK_INT(strlen(id), 32);
	CHECK(strspn(id, "0123456789abcdef") == 32);
	CHECK(strcmp(id, id2) != 0);
	bool created = false;
	CHECK(sam_session_ensure(db, id, &created, &err) == 0);
	CHECK(!created);
	CHECK(sam_session_ensure(db, "My_session.2-b", &created, &err) == 0);
	CHECK(created);
	char longest[SAM_SESSION_ID_MAX + 2];
	memset(longest, 'a', sizeof longest);
	longest[SAM_SESSION_ID_MAX] = 0;
	CHECK(sam_session_ensure(db, longest, NULL, &err) == 0);
	longest[SAM_SESSION_ID_MAX] = 'a';
	longest[SAM_SESSION_ID_MAX + 1] = 0;
	static const char *bad[] = { "", "a b", "../x", "a/b", "x;drop", "\xc3\xa9t\xc3\xa9", "tab\t", "q'" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECKF(sam_session_ensure(db, bad[i], NULL, &err) == SAM_EINVAL, "accepted \"%s\"", bad[i]);
		CHECK(sam_session_append(db, bad[i], "user", "x", 0, NULL, &err) == SAM_EINVAL);
	}
	CHECK_INT(sam_session_ensure(db, longest, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_session_ensure(db, NULL, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_session_delete(db, "", &err), SAM_EINVAL);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sessions"), 4);
	sam_db_close(db);
}

TEST(sessions_history_in_order_and_cascade_delete)
{
	fresh_home();
	struct sam_db *db = open_ok(NULL);
	struct sam_error err;
	CHECK(sam_session_ensure(db, "a", NULL, &err) == 0);
	CHECK(sam_session_ensure(db, "b", NULL, &err) == 0);
	static const char *roles[] = { "system", "user", "assistant" };
	int64_t last = 0;
	for (int i = 0; i < 30; i++) {
		char text[64];
		snprintf(text, sizeof text, "message %d with 'quotes' and \"more\"", i);
		int64_t mid;
		CHECK(sam_session_append(db, i % 2 ? "b" : "a", roles[i % 3], text, i, &mid, &err) == 0);
		CHECK(mid > last);
		last = mid;
	}
	/* bad roles, contents and missing sessions */
	CHECK_INT(sam_session_append(db, "a", "robot", "x", 0, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_session_append(db, "a", NULL, "x", 0, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_session_append(db, "a", "user", NULL, 0, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_session_append(db, "a", "user", "x", -1, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_session_append(db, "nobody", "user", "x", 0, NULL, &err), SAM_ENOTFOUND);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sessions WHERE id = 'nobody'"), 0);

	struct sam_message *m;
	size_t n;
	CHECK(sam_session_history(db, "a", 0, &m, &n, &err) == 0);
	CHECK_INT(n, 15);
	for (size_t i = 0; i < n; i++) {
		char want[64];
		int k = (int)i * 2;
		snprintf(want, sizeof want, "message %d with 'quotes' and \"more\"", k);
		CHECK_STR(m[i].content, want);
		CHECK_STR(m[i].role, roles[k % 3]);
		CHECK_INT(m[i].tokens, k);
		CHECK(m[i].created > 1.6e9);
		if (i) CHECK(m[i].id > m[i - 1].id && m[i].created >= m[i - 1].created);
	}
	sam_messages_free(m, n);
	/* the last 4, still oldest first */
	CHECK(sam_session_history(db, "b", 4, &m, &n, &err) == 0);
	CHECK_INT(n, 4);
	CHECK_STR(m[0].content, "message 23 with 'quotes' and \"more\"");
	CHECK_STR(m[3].content, "message 29 with 'quotes' and \"more\"");
	sam_messages_free(m, n);

	/* list: most recently updated first, with counts */
	CHECK(sam_session_ensure(db, "empty", NULL, &err) == 0);
	CHECK(sam_session_set_title(db, "a", "First chat", &err) == 0);
	CHECK_INT(sam_session_set_title(db, "zzz", "x", &err), SAM_ENOTFOUND);
	CHECK(sam_session_append(db, "a", "user", "latest", 2, NULL, &err) == 0);
	struct sam_session_info *l;
	CHECK(sam_session_list(db, 0, &l, &n, &err) == 0);
	CHECK_INT(n, 3);
	CHECK_STR(l[0].id, "a");
	CHECK_INT(l[0].n_messages, 16);
	CHECK_STR(l[0].title, "First chat");
	CHECK_STR(l[1].id, "empty");
	CHECK_INT(l[1].n_messages, 0);
	CHECK(l[1].title == NULL);
	CHECK_STR(l[2].id, "b");
	CHECK_INT(l[2].n_messages, 15);
	CHECK(l[0].updated >= l[1].updated && l[1].updated >= l[2].updated);
	sam_session_list_free(l, n);
	CHECK(sam_session_list(db, 2, &l, &n, &err) == 0);
	CHECK_INT(n, 2);
	sam_session_list_free(l, n);

	/* an empty session has an empty history; a missing one is not found */
	CHECK(sam_session_history(db, "empty", 0, &m, &n, &err) == 0);
	CHECK(n == 0 && m == NULL);
	CHECK_INT(sam_session_history(db, "nobody", 0, &m, &n, &err), SAM_ENOTFOUND);

	/* delete cascades to the messages and only to them */
	CHECK(sam_session_delete(db, "a", &err) == 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM messages WHERE session_id = 'a'"), 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM messages WHERE session_id = 'b'"), 15);
	CHECK_INT(sam_session_delete(db, "a", &err), SAM_ENOTFOUND);
	CHECKF(strstr(err.msg, "a"), "message: %s", err.msg);
	CHECK_INT(sam_session_history(db, "a", 0, &m, &n, &err), SAM_ENOTFOUND);
	sam_db_close(db);
}

TEST(sessions_large_message_round_trips_and_cap)
{
	fresh_home();
	struct sam_db *db = open_ok(NULL);
	struct sam_error err;
	size_t big = 3u << 20;
	char *s = malloc(SAM_SESSION_CONTENT_MAX + 2);
	for (size_t i = 0; i < big; i++) s[i] = (char)('a' + i % 26);
	s[big] = 0;
	CHECK(sam_session_ensure(db, "big", NULL, &err) == 0);
	CHECK(sam_session_append(db, "big", "user", s, 0, NULL, &err) == 0);
	struct sam_message *m;
	size_t n;
	CHECK(sam_session_history(db, "big", 0, &m, &n, &err) == 0);
	CHECK_INT(n, 1);
	CHECK(strlen(m[0].content) == big && !memcmp(m[0].content, s, big));
	sam_messages_free(m, n);
	memset(s, 'x', SAM_SESSION_CONTENT_MAX + 1);
	s[SAM_SESSION_CONTENT_MAX + 1] = 0;
	CHECK_INT(sam_session_append(db, "big", "user", s, 0, NULL, &err), SAM_ERANGE);
	free(s);
	sam_db_close(db);
}

#define WRITERS 4
#define PER_WRITER 200

/*
 * One writer process: wait at the barrier, open the (new) database, then
 * append PER_WRITER messages and events. Exit code: 10 + migrations applied,
 * or 1 after printing the error.
 */
static void writer(int id, int barrier_fd)
{
	char c;
	if (read(barrier_fd, &c, 1) < 0) _exit(1); /* EOF: everyone starts at once */
	struct sam_db *db;
	struct sam_error err = { 0 };
	int rc = sam_db_open(&db, NULL, &err);
	if (rc) goto fail;
	char sid[32];
	snprintf(sid, sizeof sid, "writer-%d", id);
	if ((rc = sam_session_ensure(db, sid, NULL, &err)) || (rc = sam_session_ensure(db, "shared", NULL, &err)))
		goto fail;
	for (int i = 0; i < PER_WRITER; i++) {
		char text[64], json[64];
		snprintf(text, sizeof text, "%d:%d", id, i);
		snprintf(json, sizeof json, "{\"writer\":%d,\"i\":%d}", id, i);
		if ((rc = sam_session_append(db, i % 2 ? sid : "shared", "user", text, i, NULL, &err))) goto fail;
		if ((rc = sam_event_publish(db, "test", "test.write", json, NULL, &err))) goto fail;
	}
	int applied = sam_db_migrations_applied(db);
	sam_db_close(db);
	_exit(10 + applied);
fail:
	fprintf(stderr, "    writer %d: %s (%d)\n", id, err.msg, rc);
	_exit(1);
}

TEST(db_concurrent_processes_open_new_database_and_write)
{
	fresh_home();
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t pids[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0) {
			close(fds[1]);
			writer(i, fds[0]);
		}
	}
	close(fds[0]);
	usleep(50 * 1000);
	close(fds[1]); /* release them all */
	int migrations = 0;
	for (int i = 0; i < WRITERS; i++) {
		int st;
		CHECK(waitpid(pids[i], &st, 0) == pids[i]);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) >= 10, "writer %d failed (status %d)", i, st);
		migrations += WEXITSTATUS(st) - 10;
	}
	CHECK_INT(migrations, sam_db_schema_version());
	struct sam_db *db = open_ok(NULL);
	CHECK_INT(sam_db_migrations_applied(db), 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM schema_migrations"), sam_db_schema_version());
	CHECK_INT(q_int(db, "SELECT count(*) FROM messages"), WRITERS * PER_WRITER);
	CHECK_INT(q_int(db, "SELECT count(DISTINCT content) FROM messages"), WRITERS * PER_WRITER);
	CHECK_INT(q_int(db, "SELECT count(*) FROM messages WHERE session_id = 'shared'"), WRITERS * PER_WRITER / 2);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sessions"), WRITERS + 1);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events"), WRITERS * PER_WRITER);
	int64_t last;
	CHECK(sam_events_last_seq(db, &last, NULL) == 0);
	CHECK_INT(last, WRITERS * PER_WRITER);
	/* each writer's events are in its own order */
	for (int w = 0; w < WRITERS; w++) {
		char sql[400];
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM events a JOIN events b ON json_extract(a.data,'$.writer') = %d"
			 " AND json_extract(b.data,'$.writer') = %d AND a.seq < b.seq"
			 " AND json_extract(a.data,'$.i') > json_extract(b.data,'$.i')",
			 w, w);
		CHECK_INT(q_int(db, sql), 0);
	}
	sam_db_close(db);
}

static pthread_barrier_t all_open;

struct thread_arg {
	int id;
	struct sam_db *db;
	int rc;
	char msg[512];
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	struct sam_error err = { 0 };
	struct sam_db *again;
	a->rc = sam_db_thread(&a->db, NULL, &err);
	if (!a->rc) a->rc = sam_db_thread(&again, NULL, &err);
	if (!a->rc && again != a->db) a->rc = -100;
	pthread_barrier_wait(&all_open); /* all connections live at once: distinct pointers */
	for (int i = 0; i < 100 && !a->rc; i++) {
		char sid[32];
		snprintf(sid, sizeof sid, "t%d", a->id);
		a->rc = sam_session_ensure(a->db, sid, NULL, &err);
		if (!a->rc) a->rc = sam_session_append(a->db, sid, "assistant", "x", 1, NULL, &err);
		if (!a->rc) a->rc = sam_event_publishp("test", "test.thread", "{s:i, s:i}", "t", a->id, "i", i);
	}
	snprintf(a->msg, sizeof a->msg, "%s", err.msg);
	return NULL; /* the thread's connection is closed as it exits */
}

TEST(db_thread_connections_are_per_thread)
{
	fresh_home();
	struct thread_arg args[4];
	pthread_t th[4];
	CHECK(pthread_barrier_init(&all_open, NULL, 4) == 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .id = i };
		CHECK(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		CHECK(pthread_join(th[i], NULL) == 0);
		CHECKF(args[i].rc == 0, "thread %d: %d %s", i, args[i].rc, args[i].msg);
	}
	for (int i = 1; i < 4; i++) CHECK(args[i].db != args[0].db);
	struct sam_db *db, *db2;
	CHECK(sam_db_thread(&db, NULL, NULL) == 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM messages"), 400);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events WHERE type = 'test.thread'"), 400);
	/* another path is another connection; release closes both */
	char other[600];
	snprintf(other, sizeof other, "%s/other.db", test_tmpdir());
	CHECK(sam_db_thread(&db2, other, NULL) == 0);
	CHECK(db2 != db);
	CHECK_STR(sam_db_path(db2), other);
	sam_db_thread_release();
	CHECK(sam_db_thread(&db2, other, NULL) == 0);
	sam_db_thread_release();
}

TEST(db_second_connection_keeps_the_first_ones_locks)
{
	/* A process with two connections (a service's main one and a thread's)
	 * must keep its POSIX locks when it opens the second: else another
	 * process closing its connection believes it is the last one, deletes
	 * the WAL, and what the first connection commits afterwards is lost. */
	fresh_home();
	struct sam_db *probe = open_ok(NULL); /* creates and migrates the database */
	sam_db_close(probe);
	int ready[2], go[2];
	CHECK(pipe(ready) == 0 && pipe(go) == 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]), close(go[1]);
		struct sam_db *a, *b;
		char id[SAM_SESSION_ID_MAX + 1], c;
		if (sam_db_open(&a, NULL, NULL) || sam_session_create(a, id, NULL)) _exit(1);
		if (sam_db_open(&b, NULL, NULL)) _exit(1);
		sam_db_close(b);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
		if (sam_session_create(a, id, NULL)) _exit(1);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
		sam_db_close(a);
		_exit(0);
	}
	close(ready[1]), close(go[0]); /* a child that fails ends our reads */
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	sam_db_close(open_ok(NULL)); /* another process comes and goes */
	CHECK(write(go[1], "g", 1) == 1);
	CHECK(read(ready[0], &c, 1) == 1);
	struct sam_db *t = open_ok(NULL);
	CHECK_INT(q_int(t, "SELECT count(*) FROM sessions"), 2);
	sam_db_close(t);
	CHECK(write(go[1], "g", 1) == 1);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	t = open_ok(NULL);
	CHECK_INT(q_int(t, "SELECT count(*) FROM sessions"), 2);
	sam_db_close(t);
	close(ready[0]), close(go[1]);
}
