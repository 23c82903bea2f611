/*
 * db.h - the state database, $SAM_HOME/sam.db (SQLite). See docs/store.md.
 *
 * Every connection is opened the same way: WAL journal, busy_timeout of at
 * least 10 s (SAM_DB_BUSY_MS overrides it, for tests), synchronous=NORMAL,
 * foreign_keys=ON, and the schema migrated to the version this code knows.
 *
 * Migrations are an ordered list of SQL steps in db.c; PRAGMA user_version
 * counts the steps applied. Each step runs in its own BEGIN IMMEDIATE
 * transaction that re-reads the version first, so when several processes
 * open a new database at once exactly one applies each step and the others
 * see the bumped version. A database newer than the code is refused
 * (SAM_EUNSUPPORTED), never downgraded.
 *
 * Threads: a struct sam_db is ONE connection and belongs to one thread at a
 * time (it carries that thread's transaction). Threads that touch the
 * database each use their own connection; sam_db_thread() hands every
 * thread its own, opened on first use and closed when the thread exits.
 * Connections are opened SQLITE_OPEN_FULLMUTEX, so sharing one by mistake
 * is slow and mixes transactions but does not corrupt memory. Never use a
 * connection in a child after fork(): open a new one there.
 */
#ifndef SAM_DB_H
#define SAM_DB_H

#include <stdint.h>

#include "sam/core.h"

struct sqlite3;      /* sqlite3 in <sqlite3.h> */
struct sqlite3_stmt; /* sqlite3_stmt in <sqlite3.h> */
struct sam_db;       /* one connection; opaque */

/* Default busy_timeout in milliseconds; SAM_DB_BUSY_MS (1..86400000) overrides it. */
#define SAM_DB_BUSY_MS_DEFAULT 10000

/*
 * Open (creating if needed) the database at path, or $SAM_HOME/sam.db when
 * path is NULL (SAM_HOME is created then). A new file is created mode 0600.
 * Applies the pragmas and migrations above. On success *out is the
 * connection, to be released with sam_db_close(). Errors: SAM_EIO (cannot
 * open or lock), SAM_EFORMAT (not a database), SAM_EUNSUPPORTED (schema
 * newer than this code), SAM_ERANGE (path too long).
 */
int sam_db_open(struct sam_db **out, const char *path, struct sam_error *err);
/* Close the connection (rolling back an open transaction). NULL is a no-op. */
void sam_db_close(struct sam_db *db);

/*
 * The calling thread's own connection to path (NULL = $SAM_HOME/sam.db),
 * opened on the first call from this thread and returned again afterwards.
 * The thread owns it: do not sam_db_close() it; it is closed when the
 * thread exits or calls sam_db_thread_release(). Safe after fork(): the
 * child gets fresh connections (the parent's are abandoned, not closed).
 */
int sam_db_thread(struct sam_db **out, const char *path, struct sam_error *err);
/* Close every connection sam_db_thread() opened for the calling thread. */
void sam_db_thread_release(void);

/* The sqlite3 handle, for queries this API does not cover. Owned by db. */
struct sqlite3 *sam_db_handle(struct sam_db *db);
/* The file name the connection was opened with. Owned by db. */
const char *sam_db_path(const struct sam_db *db);
/* Schema version this code migrates to (the number of migration steps). */
int sam_db_schema_version(void);
/* How many migration steps this connection applied when it was opened. */
int sam_db_migrations_applied(const struct sam_db *db);
/* The busy_timeout (ms) new connections get: SAM_DB_BUSY_MS or the default. */
int sam_db_busy_ms(void);

/* Wall-clock time in seconds since the epoch, as stored in the tables. */
double sam_db_time(void);

/*
 * Fill err from the connection's last SQLite error: "<what>: <sqlite3_errmsg>"
 * and return the SAM_E* code that fits sqlite_rc (SQLITE_NOMEM: SAM_ENOMEM,
 * SQLITE_CORRUPT/NOTADB: SAM_EFORMAT, SQLITE_CONSTRAINT: SAM_EINVAL,
 * SQLITE_TOOBIG: SAM_ERANGE, anything else: SAM_EIO).
 */
int sam_db_errorf(struct sam_db *db, struct sam_error *err, int sqlite_rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Run one or more SQL statements that return no rows. */
int sam_db_exec(struct sam_db *db, const char *sql, struct sam_error *err);
/* Prepare one statement; the caller sqlite3_finalize()s *stmt. */
int sam_db_prepare(struct sam_db *db, struct sqlite3_stmt **stmt, const char *sql, struct sam_error *err);
/*
 * A prepared statement kept by the connection for reuse, for statements
 * run once per row in a loop (one per example of a 100 MB file): prepared
 * on the first call with this SQL text, reset with its bindings cleared on
 * every later one. db owns it: do not finalize it; reset it when done
 * reading rows so it holds no read snapshot. At most 8 different texts per
 * connection (SAM_ERANGE beyond); pass string literals.
 */
int sam_db_cached(struct sam_db *db, struct sqlite3_stmt **stmt, const char *sql, struct sam_error *err);
/* Run a query (no parameters) for one integer: the first column of its first row, 0 when it has no row. */
int sam_db_query_int(struct sam_db *db, const char *sql, int64_t *out, struct sam_error *err);

/*
 * Write transactions that nest. The outermost sam_db_begin() is BEGIN
 * IMMEDIATE (it takes the write lock at once, waiting up to busy_timeout,
 * so a later write in it never fails with SQLITE_BUSY); inner ones are
 * SAVEPOINTs. Each begin is ended by exactly one commit or rollback.
 * A failing commit rolls its level back before returning the error.
 */
int sam_db_begin(struct sam_db *db, struct sam_error *err);
int sam_db_commit(struct sam_db *db, struct sam_error *err);
void sam_db_rollback(struct sam_db *db);

#endif
