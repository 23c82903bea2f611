/* db.c - the state database: open, pragmas, migrations, transactions, per-thread connections (see db.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sam/db.h"
#include "sam/fs.h"

/*
 * The schema, as an ordered list of steps: step i takes user_version i to
 * i+1. Adding a table is appending one string here (and a line in
 * docs/store.md); a released step is never edited, since databases in the
 * field have already run it. The runner records each step in
 * schema_migrations, which step 1 creates.
 */
#define MIGRATION_1                                                                        \
	"CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, applied REAL NOT NULL);" \
	"CREATE TABLE sessions(id TEXT PRIMARY KEY, created REAL NOT NULL,"                   \
	" updated REAL NOT NULL, title TEXT);"                                                 \
	"CREATE INDEX sessions_updated ON sessions(updated);"                                  \
	"CREATE TABLE messages(id INTEGER PRIMARY KEY,"                                        \
	" session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"                 \
	" role TEXT NOT NULL CHECK(role IN ('system','user','assistant')),"                    \
	" content TEXT NOT NULL, tokens INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);"   \
	"CREATE INDEX messages_session ON messages(session_id, id);"                           \
	"CREATE TABLE events(seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,"       \
	" source TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');"         \
	"CREATE INDEX events_type ON events(type);"

/* The example store (learn.h): examples deduplicated by hash, and the files ingested. */
#define MIGRATION_2                                                                               \
	"CREATE TABLE examples(id INTEGER PRIMARY KEY,"                                              \
	" kind TEXT NOT NULL CHECK(kind IN ('chat','text')), content TEXT NOT NULL,"                 \
	" hash TEXT NOT NULL UNIQUE, source TEXT NOT NULL, category TEXT NOT NULL DEFAULT '',"       \
	" quality REAL, origin TEXT, created REAL NOT NULL);"                                        \
	"CREATE INDEX examples_source ON examples(source, category);"                                \
	"CREATE TABLE files(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL,"      \
	" hash TEXT, status TEXT NOT NULL CHECK(status IN ('ok','partial','error')), error TEXT,"    \
	" examples INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL);"

/* Training runs (train.h). */
#define MIGRATION_3                                                                                \
	"CREATE TABLE training_runs(id TEXT PRIMARY KEY,"                                             \
	" status TEXT NOT NULL CHECK(status IN ('running','finished','failed','exported')),"         \
	" started REAL NOT NULL, finished REAL, pid INTEGER NOT NULL, examples_upto INTEGER NOT NULL," \
	" n_train INTEGER NOT NULL DEFAULT 0, n_valid INTEGER NOT NULL DEFAULT 0, data_dir TEXT,"     \
	" trainer TEXT, adapter TEXT, valid_loss_base REAL, valid_loss REAL, error TEXT);"           \
	"CREATE INDEX training_runs_started ON training_runs(started);"

/*
 * Training runs that stop on request and resume (status 'stopped'), with
 * the steps done and a note on the outcome: SQLite cannot alter a CHECK,
 * so the table is rebuilt.
 */
#define MIGRATION_5                                                                                \
	"CREATE TABLE training_runs_5(id TEXT PRIMARY KEY,"                                           \
	" status TEXT NOT NULL CHECK(status IN ('running','finished','failed','exported','stopped')),"\
	" started REAL NOT NULL, finished REAL, pid INTEGER NOT NULL, examples_upto INTEGER NOT NULL," \
	" n_train INTEGER NOT NULL DEFAULT 0, n_valid INTEGER NOT NULL DEFAULT 0, data_dir TEXT,"     \
	" trainer TEXT, adapter TEXT, valid_loss_base REAL, valid_loss REAL, error TEXT,"            \
	" steps INTEGER NOT NULL DEFAULT 0, note TEXT);"                                              \
	"INSERT INTO training_runs_5(id, status, started, finished, pid, examples_upto, n_train,"     \
	" n_valid, data_dir, trainer, adapter, valid_loss_base, valid_loss, error)"                  \
	" SELECT id, status, started, finished, pid, examples_upto, n_train, n_valid, data_dir,"     \
	" trainer, adapter, valid_loss_base, valid_loss, error FROM training_runs;"                  \
	"DROP TABLE training_runs;"                                                                  \
	"ALTER TABLE training_runs_5 RENAME TO training_runs;"                                        \
	"CREATE INDEX training_runs_started ON training_runs(started);"

/* Feedback on answers (POST /api/feedback) and the curriculum: tasks, attempts, each stream's place. */
#define MIGRATION_4                                                                                  \
	"CREATE TABLE feedback(id INTEGER PRIMARY KEY, session_id TEXT NOT NULL,"                       \
	" message_index INTEGER NOT NULL, rating REAL NOT NULL, correction TEXT,"                       \
	" example_hash TEXT, created REAL NOT NULL);"                                                  \
	"CREATE INDEX feedback_session ON feedback(session_id, message_index);"                        \
	"CREATE TABLE curriculum_tasks(id INTEGER PRIMARY KEY, question TEXT NOT NULL UNIQUE,"          \
	" reference TEXT, category TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,"      \
	" correct INTEGER NOT NULL DEFAULT 0, last_attempt REAL, claimed_by INTEGER,"                   \
	" claimed_until REAL NOT NULL DEFAULT 0, created REAL NOT NULL);"                               \
	"CREATE INDEX curriculum_tasks_pick ON curriculum_tasks(attempts, last_attempt);"               \
	"CREATE TABLE curriculum_attempts(id INTEGER PRIMARY KEY,"                                      \
	" task_id INTEGER NOT NULL REFERENCES curriculum_tasks(id) ON DELETE CASCADE,"                 \
	" stream INTEGER NOT NULL, answer TEXT, score REAL NOT NULL, correct INTEGER NOT NULL,"          \
	" example_hash TEXT, created REAL NOT NULL);"                                                  \
	"CREATE INDEX curriculum_attempts_task ON curriculum_attempts(task_id);"                       \
	"CREATE TABLE curriculum_streams(stream INTEGER PRIMARY KEY, task_id INTEGER,"                  \
	" failures INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, updated REAL NOT NULL);"

/*
 * The approval queue (approvals.h): proposals and their audit trail, one
 * row per transition (from_status NULL for the proposal itself).
 */
#define MIGRATION_6                                                                                  \
	"CREATE TABLE approvals(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, title TEXT NOT NULL,"        \
	" payload TEXT NOT NULL, proposer TEXT NOT NULL,"                                               \
	" status TEXT NOT NULL CHECK(status IN"                                                         \
	" ('pending','approved','rejected','expired','executed','failed')),"                            \
	" created REAL NOT NULL, expires REAL, updated REAL NOT NULL, result TEXT);"                    \
	"CREATE INDEX approvals_status ON approvals(status, id);"                                       \
	"CREATE TABLE approval_audit(seq INTEGER PRIMARY KEY,"                                          \
	" approval_id INTEGER NOT NULL REFERENCES approvals(id), time REAL NOT NULL,"                   \
	" from_status TEXT, to_status TEXT NOT NULL, actor TEXT NOT NULL,"                              \
	" reason TEXT NOT NULL DEFAULT '', detail TEXT);"                                               \
	"CREATE INDEX approval_audit_approval ON approval_audit(approval_id, seq);"

static const char *const migrations[] = {
	MIGRATION_1, /* 1: sessions, messages, events */
	MIGRATION_2, /* 2: examples, files */
	MIGRATION_3, /* 3: training_runs */
	MIGRATION_4, /* 4: feedback, curriculum_tasks, curriculum_attempts, curriculum_streams */
	MIGRATION_5, /* 5: training_runs: 'stopped', steps, note */
	MIGRATION_6, /* 6: approvals, approval_audit */
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

#define MAX_NEST 32
#define DB_CACHE 8 /* statements kept by sam_db_cached: the few run once per example or row */

struct sam_db {
	sqlite3 *h;
	char *path;
	pid_t pid;      /* the process that opened it: never used in another */
	int busy_ms;
	int migrated;   /* steps applied by this open */
	int depth;      /* open sam_db_begin() levels */
	unsigned char savepoint[MAX_NEST]; /* level i is a SAVEPOINT (else BEGIN) */
	struct {
		const char *sql;   /* the caller's text, compared by address, then by content */
		sqlite3_stmt *st;
	} cache[DB_CACHE];
};

int sam_db_schema_version(void)
{
	return N_MIGRATIONS;
}

double sam_db_time(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sam_db_busy_ms(void)
{
	const char *s = getenv("SAM_DB_BUSY_MS");
	if (!s || !*s) return SAM_DB_BUSY_MS_DEFAULT;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 86400000) {
		sam_log(SAM_LOG_WARN, "SAM_DB_BUSY_MS=%s is not 1..86400000 ms; using %d", s,
			SAM_DB_BUSY_MS_DEFAULT);
		return SAM_DB_BUSY_MS_DEFAULT;
	}
	return (int)v;
}

static int code_of(int sqlite_rc)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_NOMEM: return SAM_ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return SAM_EFORMAT;
	case SQLITE_CONSTRAINT: return SAM_EINVAL;
	case SQLITE_TOOBIG: return SAM_ERANGE;
	}
	return SAM_EIO;
}

int sam_db_errorf(struct sam_db *db, struct sam_error *err, int sqlite_rc, const char *fmt, ...)
{
	int code = code_of(sqlite_rc);
	if (err) {
		char what[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof what, fmt, ap);
		va_end(ap);
		const char *msg = db && db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(sqlite_rc);
		sam_errorf(err, code, "%s: %s: %s", db && db->path ? db->path : "sam.db", what, msg);
	}
	return code;
}

struct sqlite3 *sam_db_handle(struct sam_db *db)
{
	return db->h;
}

const char *sam_db_path(const struct sam_db *db)
{
	return db->path;
}

int sam_db_migrations_applied(const struct sam_db *db)
{
	return db->migrated;
}

int sam_db_exec(struct sam_db *db, const char *sql, struct sam_error *err)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) return sam_db_errorf(db, err, rc, "%.80s", sql);
	return 0;
}

int sam_db_prepare(struct sam_db *db, struct sqlite3_stmt **stmt, const char *sql, struct sam_error *err)
{
	int rc = sqlite3_prepare_v2(db->h, sql, -1, stmt, NULL);
	if (rc != SQLITE_OK) {
		*stmt = NULL;
		return sam_db_errorf(db, err, rc, "prepare %.80s", sql);
	}
	return 0;
}

int sam_db_cached(struct sam_db *db, struct sqlite3_stmt **stmt, const char *sql, struct sam_error *err)
{
	int i;
	for (i = 0; i < DB_CACHE && db->cache[i].sql; i++) {
		if (db->cache[i].sql == sql || !strcmp(db->cache[i].sql, sql)) {
			*stmt = db->cache[i].st;
			sqlite3_reset(*stmt);
			sqlite3_clear_bindings(*stmt);
			return 0;
		}
	}
	int rc = sam_db_prepare(db, stmt, sql, err);
	if (rc) return rc;
	if (i == DB_CACHE) {
		sqlite3_finalize(*stmt);
		*stmt = NULL;
		return sam_errorf(err, SAM_ERANGE, "statement cache full (%.60s)", sql);
	}
	db->cache[i].sql = sql;
	db->cache[i].st = *stmt;
	return 0;
}

int sam_db_query_int(struct sam_db *db, const char *sql, int64_t *out, struct sam_error *err)
{
	*out = 0;
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, sql, err);
	if (rc) return rc;
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
	else if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "%s", sql);
	sqlite3_finalize(st);
	return rc;
}

int sam_db_begin(struct sam_db *db, struct sam_error *err)
{
	if (db->depth == MAX_NEST) return sam_errorf(err, SAM_ERANGE, "transactions nested deeper than %d", MAX_NEST);
	/* a transaction opened through the raw handle counts as an outer level */
	int sp = db->depth > 0 || !sqlite3_get_autocommit(db->h);
	char sql[48];
	if (sp) snprintf(sql, sizeof sql, "SAVEPOINT sam_%d", db->depth);
	else snprintf(sql, sizeof sql, "BEGIN IMMEDIATE");
	int rc = sam_db_exec(db, sql, err);
	if (rc) return rc;
	db->savepoint[db->depth++] = (unsigned char)sp;
	return 0;
}

void sam_db_rollback(struct sam_db *db)
{
	if (db->depth == 0) return;
	int d = --db->depth;
	char sql[80];
	if (db->savepoint[d]) snprintf(sql, sizeof sql, "ROLLBACK TO sam_%d; RELEASE sam_%d", d, d);
	else snprintf(sql, sizeof sql, "ROLLBACK");
	/* fails harmlessly when SQLite already rolled back (after SQLITE_FULL, ...) */
	sqlite3_exec(db->h, sql, NULL, NULL, NULL);
}

int sam_db_commit(struct sam_db *db, struct sam_error *err)
{
	if (db->depth == 0) return sam_errorf(err, SAM_EINVAL, "commit without a transaction");
	int d = db->depth - 1;
	char sql[48];
	if (db->savepoint[d]) snprintf(sql, sizeof sql, "RELEASE sam_%d", d);
	else snprintf(sql, sizeof sql, "COMMIT");
	int rc = sam_db_exec(db, sql, err);
	if (rc) {
		sam_db_rollback(db);
		return rc;
	}
	db->depth = d;
	return 0;
}

/*
 * Run one statement, returning its first column (text) in out if given.
 * Setting the journal mode of a new file can report SQLITE_BUSY without
 * consulting the busy handler when other processes open it at the same
 * moment, so these retry on their own for up to busy_ms.
 */
static int setup_stmt(struct sam_db *db, const char *sql, char *out, size_t cap, struct sam_error *err)
{
	double deadline = sam_now() + db->busy_ms / 1000.0;
	for (;;) {
		sqlite3_stmt *st = NULL;
		int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				if (out) {
					const unsigned char *t = sqlite3_column_text(st, 0);
					snprintf(out, cap, "%s", t ? (const char *)t : "");
				}
				rc = SQLITE_DONE;
			}
		}
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE) return 0;
		int busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
		if (!busy || sam_now() > deadline) return sam_db_errorf(db, err, rc, "%s", sql);
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static int user_version(struct sam_db *db, int *v, struct sam_error *err)
{
	char buf[32];
	int rc = setup_stmt(db, "PRAGMA user_version", buf, sizeof buf, err);
	if (rc) return rc;
	*v = atoi(buf);
	return 0;
}

static int too_new(struct sam_db *db, int v, struct sam_error *err)
{
	return sam_errorf(err, SAM_EUNSUPPORTED,
			  "%s: schema version %d is newer than this SAM knows (%d); "
			  "upgrade SAM or use another SAM_HOME",
			  db->path, v, N_MIGRATIONS);
}

static int migrate(struct sam_db *db, struct sam_error *err)
{
	int v, rc = user_version(db, &v, err);
	if (rc) return rc;
	if (v > N_MIGRATIONS) return too_new(db, v, err);
	while (v < N_MIGRATIONS) {
		if ((rc = sam_db_begin(db, err))) return rc;
		/* another process may have migrated while we waited for the lock */
		if ((rc = user_version(db, &v, err))) goto fail;
		if (v > N_MIGRATIONS) {
			rc = too_new(db, v, err);
			goto fail;
		}
		if (v == N_MIGRATIONS) {
			sam_db_rollback(db);
			break;
		}
		rc = sqlite3_exec(db->h, migrations[v], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			rc = sam_db_errorf(db, err, rc, "migration %d", v + 1);
			goto fail;
		}
		char sql[128];
		snprintf(sql, sizeof sql,
			 "INSERT INTO schema_migrations(version, applied) VALUES(%d, %.6f);"
			 "PRAGMA user_version = %d",
			 v + 1, sam_db_time(), v + 1);
		if ((rc = sam_db_exec(db, sql, err))) goto fail;
		if ((rc = sam_db_commit(db, err))) return rc;
		v++;
		db->migrated++;
		sam_log(SAM_LOG_DEBUG, "%s: migrated to schema version %d", db->path, v);
	}
	return 0;
fail:
	sam_db_rollback(db);
	return rc;
}

/*
 * sam_home() rewrites one static buffer on every call, so threads opening
 * their connections at once could read it half-written: take copies under
 * a lock.
 */
static pthread_mutex_t home_lock = PTHREAD_MUTEX_INITIALIZER;

/* $SAM_HOME/sam.db into buf; creates SAM_HOME when mkdir is set. */
static int default_path(char *buf, size_t cap, int mkdir, struct sam_error *err)
{
	char home[1024];
	pthread_mutex_lock(&home_lock);
	int rc = sam_home_path(buf, cap, "sam.db");
	snprintf(home, sizeof home, "%s", sam_home());
	pthread_mutex_unlock(&home_lock);
	if (rc) return sam_errorf(err, SAM_ERANGE, "SAM_HOME is too long");
	return mkdir ? sam_mkdirs(home, err) : 0;
}

int sam_db_open(struct sam_db **out, const char *path, struct sam_error *err)
{
	char buf[1100];
	int rc;
	*out = NULL;
	if (!path) {
		if ((rc = default_path(buf, sizeof buf, 1, err))) return rc;
		path = buf;
	}
	struct sam_db *db = xcalloc(1, sizeof *db);
	db->path = xstrdup(path);
	db->pid = getpid();
	db->busy_ms = sam_db_busy_ms();
	if (strcmp(path, ":memory:") != 0) {
		/* Chat history is private: SQLite would create the file (and its -wal,
		 * -shm) 0644. Only ever create it here: closing a descriptor of a
		 * database this process already has open would drop all its POSIX
		 * locks on it, and another process closing its last connection would
		 * then delete the WAL under us, losing what we commit afterwards. */
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) close(fd);
		else if (errno != EEXIST) {
			rc = sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
			goto fail;
		}
	}
	rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = sam_db_errorf(db, err, rc, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, db->busy_ms);
	char mode[32];
	if ((rc = setup_stmt(db, "PRAGMA journal_mode=WAL", mode, sizeof mode, err))) goto fail;
	if (strcmp(mode, "wal") != 0 && strcmp(path, ":memory:") != 0)
		sam_log(SAM_LOG_WARN, "%s: cannot use WAL (journal_mode is %s): writers will block readers",
			path, mode);
	if ((rc = setup_stmt(db, "PRAGMA synchronous=NORMAL", NULL, 0, err))) goto fail;
	if ((rc = setup_stmt(db, "PRAGMA foreign_keys=ON", NULL, 0, err))) goto fail;
	if ((rc = migrate(db, err))) goto fail;
	*out = db;
	return 0;
fail:
	sam_db_close(db);
	return rc;
}

void sam_db_close(struct sam_db *db)
{
	if (!db) return;
	while (db->depth) sam_db_rollback(db);
	for (int i = 0; i < DB_CACHE && db->cache[i].sql; i++) sqlite3_finalize(db->cache[i].st);
	if (db->h) sqlite3_close_v2(db->h);
	free(db->path);
	free(db);
}

/* Per-thread connections: a list per thread, keyed by path. */
struct db_slot {
	struct sam_db *db;
	struct db_slot *next;
};

static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void slots_free(void *p)
{
	pid_t me = getpid();
	for (struct db_slot *s = p, *next; s; s = next) {
		next = s->next;
		/*
		 * A connection inherited over fork() belongs to the parent:
		 * closing it here could checkpoint or unlink its WAL. Abandon it.
		 */
		if (s->db->pid == me) sam_db_close(s->db);
		free(s);
	}
}

static void slot_key_init(void)
{
	if (pthread_key_create(&slot_key, slots_free) != 0) sam_die("pthread_key_create failed");
}

int sam_db_thread(struct sam_db **out, const char *path, struct sam_error *err)
{
	char buf[1100];
	int rc;
	*out = NULL;
	if (!path) {
		if ((rc = default_path(buf, sizeof buf, 0, err))) return rc;
		path = buf;
	}
	pthread_once(&slot_once, slot_key_init);
	struct db_slot *head = pthread_getspecific(slot_key);
	pid_t me = getpid();
	for (struct db_slot *s = head; s; s = s->next) {
		if (s->db->pid == me && !strcmp(s->db->path, path)) {
			*out = s->db;
			return 0;
		}
	}
	struct sam_db *db;
	/* opening the default path by NULL also creates SAM_HOME */
	if ((rc = sam_db_open(&db, path == buf ? NULL : path, err))) return rc;
	struct db_slot *s = xmalloc(sizeof *s);
	s->db = db;
	s->next = head;
	pthread_setspecific(slot_key, s);
	*out = db;
	return 0;
}

void sam_db_thread_release(void)
{
	pthread_once(&slot_once, slot_key_init);
	struct db_slot *head = pthread_getspecific(slot_key);
	pthread_setspecific(slot_key, NULL);
	slots_free(head);
}
