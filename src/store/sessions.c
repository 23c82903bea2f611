/* sessions.c - chat memory: sessions and messages in sam.db (see sessions.h). */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/random.h>
#endif

#include "sam/sessions.h"

bool sam_session_id_valid(const char *id)
{
	if (!id) return false;
	size_t n = 0;
	for (const char *p = id; *p; p++, n++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
			  c == '.' || c == '-';
		if (!ok || n == SAM_SESSION_ID_MAX) return false;
	}
	return n > 0;
}

static int check_id(const char *id, struct sam_error *err)
{
	if (sam_session_id_valid(id)) return 0;
	return sam_errorf(err, SAM_EINVAL, "invalid session id \"%.70s\": want 1-%d characters of [A-Za-z0-9_.-]",
			  id ? id : "(null)", SAM_SESSION_ID_MAX);
}

static int random_bytes(void *buf, size_t n, struct sam_error *err)
{
	unsigned char *p = buf;
#ifdef __linux__
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) break; /* ENOSYS: an old kernel; use the device */
		p += r;
		n -= (size_t)r;
	}
	if (!n) return 0;
#endif
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0) return sam_errorf(err, SAM_EIO, "/dev/urandom: %s", strerror(errno));
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) {
			close(fd);
			return sam_errorf(err, SAM_EIO, "/dev/urandom: %s", r ? strerror(errno) : "end of file");
		}
		p += r;
		n -= (size_t)r;
	}
	close(fd);
	return 0;
}

/* INSERT OR IGNORE the session; *created says whether it was new. */
static int insert_session(struct sam_db *db, const char *id, bool *created, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, "INSERT OR IGNORE INTO sessions(id, created, updated) VALUES(?1, ?2, ?2)",
				err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, sam_db_time());
	int s = sqlite3_step(st);
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "create session %s", id);
	else if (created) *created = sqlite3_changes(sam_db_handle(db)) > 0;
	sqlite3_finalize(st);
	return rc;
}

int sam_session_create(struct sam_db *db, char id_out[SAM_SESSION_ID_MAX + 1], struct sam_error *err)
{
	static const char hex[] = "0123456789abcdef";
	/* a collision of 128 random bits does not happen; the loop is for form */
	for (int attempt = 0; attempt < 4; attempt++) {
		unsigned char r[16];
		int rc = random_bytes(r, sizeof r, err);
		if (rc) return rc;
		for (int i = 0; i < 16; i++) {
			id_out[2 * i] = hex[r[i] >> 4];
			id_out[2 * i + 1] = hex[r[i] & 15];
		}
		id_out[32] = 0;
		bool created;
		if ((rc = insert_session(db, id_out, &created, err))) return rc;
		if (created) return 0;
	}
	return sam_errorf(err, SAM_EIO, "could not find an unused session id");
}

int sam_session_ensure(struct sam_db *db, const char *id, bool *created, struct sam_error *err)
{
	int rc = check_id(id, err);
	return rc ? rc : insert_session(db, id, created, err);
}

/* Run a bound one-row UPDATE/DELETE; SAM_ENOTFOUND when it changed nothing. */
static int step_change(struct sam_db *db, sqlite3_stmt *st, const char *what, const char *id, struct sam_error *err)
{
	int s = sqlite3_step(st), rc = 0;
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "%s %s", what, id);
	else if (sqlite3_changes(sam_db_handle(db)) == 0)
		rc = sam_errorf(err, SAM_ENOTFOUND, "session %s does not exist", id);
	sqlite3_finalize(st);
	return rc;
}

int sam_session_set_title(struct sam_db *db, const char *id, const char *title, struct sam_error *err)
{
	int rc = check_id(id, err);
	if (rc) return rc;
	if (title && strlen(title) > SAM_SESSION_TITLE_MAX)
		return sam_errorf(err, SAM_ERANGE, "title longer than %d bytes", SAM_SESSION_TITLE_MAX);
	sqlite3_stmt *st;
	if ((rc = sam_db_prepare(db, &st, "UPDATE sessions SET title = ?2 WHERE id = ?1", err))) return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (title) sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
	return step_change(db, st, "set title of", id, err);
}

static bool role_valid(const char *role)
{
	return role && (!strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant"));
}

int sam_session_append(struct sam_db *db, const char *id, const char *role, const char *content, int tokens,
		       int64_t *msg_id, struct sam_error *err)
{
	int rc = check_id(id, err);
	if (rc) return rc;
	if (!role_valid(role))
		return sam_errorf(err, SAM_EINVAL, "invalid role \"%.32s\": want system, user or assistant",
				  role ? role : "(null)");
	if (!content) return sam_errorf(err, SAM_EINVAL, "message content is NULL");
	if (tokens < 0) return sam_errorf(err, SAM_EINVAL, "negative token count %d", tokens);
	size_t len = strlen(content);
	if (len > SAM_SESSION_CONTENT_MAX)
		return sam_errorf(err, SAM_ERANGE, "message of %zu bytes is larger than %u", len,
				  SAM_SESSION_CONTENT_MAX);

	double now = sam_db_time();
	sqlite3_stmt *st = NULL;
	if ((rc = sam_db_begin(db, err))) return rc;
	if ((rc = sam_db_prepare(db, &st, "UPDATE sessions SET updated = ?2 WHERE id = ?1", err))) goto fail;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, now);
	if ((rc = step_change(db, st, "update session", id, err))) goto fail;
	rc = sam_db_prepare(db, &st,
			    "INSERT INTO messages(session_id, role, content, tokens, created) VALUES(?1, ?2, ?3, ?4, ?5)",
			    err);
	if (rc) goto fail;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, content, (int)len, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, tokens);
	sqlite3_bind_double(st, 5, now);
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	if (s != SQLITE_DONE) {
		rc = sam_db_errorf(db, err, s, "append to session %s", id);
		goto fail;
	}
	if (msg_id) *msg_id = sqlite3_last_insert_rowid(sam_db_handle(db));
	return sam_db_commit(db, err);
fail:
	sam_db_rollback(db);
	return rc;
}

static int session_exists(struct sam_db *db, const char *id, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, "SELECT 1 FROM sessions WHERE id = ?1", err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_DONE) rc = sam_errorf(err, SAM_ENOTFOUND, "session %s does not exist", id);
	else if (s != SQLITE_ROW) rc = sam_db_errorf(db, err, s, "look up session %s", id);
	sqlite3_finalize(st);
	return rc;
}

/* A malloc'd copy of a text column; NULL when out of memory. */
static char *column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	char *s = malloc(n + 1);
	if (!s) return NULL;
	if (t) memcpy(s, t, n);
	s[t ? n : 0] = 0;
	return s;
}

int sam_session_history(struct sam_db *db, const char *id, size_t last_n, struct sam_message **msgs, size_t *n,
			struct sam_error *err)
{
	*msgs = NULL;
	*n = 0;
	int rc = check_id(id, err);
	if (rc) return rc;
	sqlite3_stmt *st;
	rc = sam_db_prepare(db, &st,
			    "SELECT id, role, content, tokens, created FROM"
			    " (SELECT * FROM messages WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2)"
			    " ORDER BY id",
			    err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, last_n ? (sqlite3_int64)last_n : -1);
	struct sam_message *v = NULL;
	size_t len = 0, cap = 0;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct sam_message *nv = realloc(v, nc * sizeof *v);
			if (!nv) {
				rc = sam_errorf(err, SAM_ENOMEM, "out of memory loading session %s", id);
				goto fail;
			}
			v = nv;
			cap = nc;
		}
		struct sam_message *m = &v[len];
		m->id = sqlite3_column_int64(st, 0);
		const unsigned char *role = sqlite3_column_text(st, 1);
		snprintf(m->role, sizeof m->role, "%s", role ? (const char *)role : "");
		m->content = column_dup(st, 2);
		if (!m->content) {
			rc = sam_errorf(err, SAM_ENOMEM, "out of memory loading session %s", id);
			goto fail;
		}
		m->tokens = sqlite3_column_int(st, 3);
		m->created = sqlite3_column_double(st, 4);
		len++;
	}
	if (s != SQLITE_DONE) {
		rc = sam_db_errorf(db, err, s, "load session %s", id);
		goto fail;
	}
	sqlite3_finalize(st);
	/* no messages: an empty session, or none at all */
	if (len == 0 && (rc = session_exists(db, id, err))) return rc;
	*msgs = v;
	*n = len;
	return 0;
fail:
	sqlite3_finalize(st);
	sam_messages_free(v, len);
	return rc;
}

void sam_messages_free(struct sam_message *msgs, size_t n)
{
	if (!msgs) return;
	for (size_t i = 0; i < n; i++) free(msgs[i].content);
	free(msgs);
}

int sam_session_delete(struct sam_db *db, const char *id, struct sam_error *err)
{
	int rc = check_id(id, err);
	if (rc) return rc;
	sqlite3_stmt *st;
	if ((rc = sam_db_prepare(db, &st, "DELETE FROM sessions WHERE id = ?1", err))) return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	return step_change(db, st, "delete session", id, err);
}

int sam_session_list(struct sam_db *db, size_t limit, struct sam_session_info **list, size_t *n,
		     struct sam_error *err)
{
	*list = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"SELECT s.id, s.created, s.updated, s.title,"
				" (SELECT count(*) FROM messages m WHERE m.session_id = s.id)"
				" FROM sessions s ORDER BY s.updated DESC, s.rowid DESC LIMIT ?1",
				err);
	if (rc) return rc;
	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	struct sam_session_info *v = NULL;
	size_t len = 0, cap = 0;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct sam_session_info *nv = realloc(v, nc * sizeof *v);
			if (!nv) {
				rc = sam_errorf(err, SAM_ENOMEM, "out of memory listing sessions");
				goto fail;
			}
			v = nv;
			cap = nc;
		}
		struct sam_session_info *si = &v[len];
		const unsigned char *sid = sqlite3_column_text(st, 0);
		snprintf(si->id, sizeof si->id, "%s", sid ? (const char *)sid : "");
		si->created = sqlite3_column_double(st, 1);
		si->updated = sqlite3_column_double(st, 2);
		si->title = NULL;
		if (sqlite3_column_type(st, 3) != SQLITE_NULL && !(si->title = column_dup(st, 3))) {
			rc = sam_errorf(err, SAM_ENOMEM, "out of memory listing sessions");
			goto fail;
		}
		si->n_messages = sqlite3_column_int64(st, 4);
		len++;
	}
	if (s != SQLITE_DONE) {
		rc = sam_db_errorf(db, err, s, "list sessions");
		goto fail;
	}
	sqlite3_finalize(st);
	*list = v;
	*n = len;
	return 0;
fail:
	sqlite3_finalize(st);
	sam_session_list_free(v, len);
	return rc;
}

void sam_session_list_free(struct sam_session_info *list, size_t n)
{
	if (!list) return;
	for (size_t i = 0; i < n; i++) free(list[i].title);
	free(list);
}
