/*
 * ingest.c - one file into the example store (see learn.h): JSONL chat
 * exports line by line, JSON arrays item by item, text cut into chunks,
 * and the file's outcome recorded in the same transaction as its examples.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sam/events.h"
#include "sam/fs.h"
#include "sam/learn.h"
#include "sam/utf8.h"

struct ingest {
	struct sam_db *db;
	const char *path;
	struct sam_ingest_result *res;
	int64_t good;     /* usable examples seen (new or not) */
};

/* Add "where: reason" to the result's error summary (the first ones that fit). */
static void reject(struct ingest *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reject(struct ingest *in, const char *fmt, ...)
{
	in->res->bad++;
	char *e = in->res->errors;
	size_t used = strlen(e), cap = sizeof in->res->errors;
	if (used + 8 >= cap) return;
	if (used) used += (size_t)snprintf(e + used, cap - used, "; ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e + used, cap - used, fmt, ap);
	va_end(ap);
}

/* Store one normalised example; errors other than a bad example abort the file. */
static int keep(struct ingest *in, struct sam_example *ex, const char *where, struct sam_error *err)
{
	char origin[PATH_MAX + 32];
	snprintf(origin, sizeof origin, "%s%s%s", in->path, where ? ":" : "", where ? where : "");
	bool added = false;
	int rc = sam_example_add(in->db, ex, "file", "", -1, origin, &added, err);
	sam_example_free(ex);
	if (rc) return rc;
	in->good++;
	if (added) in->res->added++;
	else in->res->duplicates++;
	return 0;
}

static int one_json(struct ingest *in, const json_t *j, const char *where, struct sam_error *err)
{
	struct sam_example ex;
	struct sam_error e = { 0 };
	if (sam_example_from_json(j, &ex, &e)) {
		reject(in, "%s: %s", where, e.msg);
		return 0;
	}
	return keep(in, &ex, where, err);
}

static int ingest_jsonl(struct ingest *in, const char *data, size_t len, struct sam_error *err)
{
	size_t line = 0;
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(data + p, '\n', len - p);
		size_t end = nl ? (size_t)(nl - data) : len, a = p, b = end;
		line++;
		p = end + 1;
		while (a < b && strchr(" \t\r", data[a])) a++;
		while (b > a && strchr(" \t\r", data[b - 1])) b--;
		if (a == b) continue;
		char where[32];
		snprintf(where, sizeof where, "line %zu", line);
		json_error_t je;
		json_t *j = json_loadb(data + a, b - a, JSON_REJECT_DUPLICATES, &je);
		if (!j) {
			reject(in, "%s: not JSON (%s)", where, je.text);
			continue;
		}
		int rc = one_json(in, j, where, err);
		json_decref(j);
		if (rc) return rc;
	}
	return 0;
}

static int ingest_json(struct ingest *in, const char *data, size_t len, struct sam_error *err)
{
	json_error_t je;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		reject(in, "line %d: not JSON (%s)", je.line, je.text);
		return 0;
	}
	int rc = 0;
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) {
			char where[32];
			snprintf(where, sizeof where, "item %zu", i);
			if ((rc = one_json(in, v, where, err))) break;
		}
	} else {
		rc = one_json(in, j, NULL, err);
	}
	json_decref(j);
	return rc;
}

/* Where to end a chunk starting at p of at most max bytes: a paragraph, a line, a word, a character. */
static size_t chunk_end(const char *s, size_t p, size_t n, size_t max)
{
	if (n - p <= max) return n;
	size_t lim = p + max, half = p + max / 2;
	for (size_t i = lim; i > half; i--)
		if (s[i - 1] == '\n' && i >= 2 && s[i - 2] == '\n') return i;
	for (size_t i = lim; i > half; i--)
		if (s[i - 1] == '\n') return i;
	for (size_t i = lim; i > half; i--)
		if (s[i - 1] == ' ' || s[i - 1] == '\t') return i;
	return p + utf8_safe_end(s + p, max);
}

static int ingest_text(struct ingest *in, const char *data, size_t len, int chunk_chars, struct sam_error *err)
{
	size_t max = (size_t)(chunk_chars > 0 ? chunk_chars : SAM_LEARN_CHUNK_DEFAULT);
	int chunk = 0;
	for (size_t p = 0; p < len;) {
		size_t e = chunk_end(data, p, len, max);
		if (e <= p) e = p + 1; /* cannot happen with max >= 4; never loop */
		struct sam_example ex;
		struct sam_error te = { 0 };
		if (!sam_example_from_text(data + p, e - p, &ex, &te)) {
			char where[32];
			snprintf(where, sizeof where, "chunk %d", chunk);
			int rc = keep(in, &ex, where, err);
			if (rc) return rc;
		}
		chunk++;
		p = e;
	}
	return 0;
}

static bool has_ext(const char *path, const char *ext)
{
	size_t n = strlen(path), e = strlen(ext);
	return n > e && !strcasecmp(path + n - e, ext);
}

/* Whether data is UTF-8 text: no NUL bytes, no invalid sequences. */
static bool is_text(const char *data, size_t len)
{
	return !memchr(data, '\0', len) && utf8_valid(data, len);
}

/* The files row of path: *found and, when found, its size, mtime and hash. */
static int seen(struct sam_db *db, const char *path, bool *found, int64_t *size, double *mtime,
		char hash[SAM_SHA256_HEX_LEN + 1], struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, "SELECT size, mtime, hash FROM files WHERE path = ?", err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	*found = s == SQLITE_ROW;
	if (*found) {
		*size = sqlite3_column_int64(st, 0);
		*mtime = sqlite3_column_double(st, 1);
		const unsigned char *h = sqlite3_column_text(st, 2);
		snprintf(hash, SAM_SHA256_HEX_LEN + 1, "%s", h ? (const char *)h : "");
	}
	sqlite3_finalize(st);
	if (s != SQLITE_ROW && s != SQLITE_DONE) return sam_db_errorf(db, err, s, "reading the files table");
	return 0;
}

static int record(struct sam_db *db, const char *path, int64_t size, double mtime, const char *hash,
		  const char *status, const char *error, int64_t examples, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"INSERT INTO files(path, size, mtime, hash, status, error, examples, updated)"
				" VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET size = excluded.size,"
				" mtime = excluded.mtime, hash = excluded.hash, status = excluded.status,"
				" error = excluded.error, examples = excluded.examples, updated = excluded.updated",
				err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, size);
	sqlite3_bind_double(st, 3, mtime);
	if (hash) sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
	else sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, status, -1, SQLITE_STATIC);
	if (error && *error) sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
	else sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, examples);
	sqlite3_bind_double(st, 8, sam_db_time());
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	return s == SQLITE_DONE ? 0 : sam_db_errorf(db, err, s, "recording %s", path);
}

/* ingest.error, in the file's transaction: the event and the files row say the same, or neither is there. */
static int publish_error(struct sam_db *db, const char *path, const char *status, const struct sam_ingest_result *res,
			 struct sam_error *err)
{
	json_t *v = json_pack("{s:s, s:s, s:s, s:I, s:I}", "path", path, "status", status, "error", res->errors, "added",
			      (json_int_t)res->added, "rejected", (json_int_t)res->bad);
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!text) return sam_errorf(err, SAM_ENOMEM, "out of memory");
	int rc = sam_event_publish(db, "learn", SAM_EV_INGEST_ERROR, text, NULL, err);
	free(text);
	return rc;
}

int sam_ingest_file(struct sam_db *db, const char *path, int chunk_chars, struct sam_ingest_result *res,
		    struct sam_error *err)
{
	memset(res, 0, sizeof *res);
	char abs[PATH_MAX];
	if (!realpath(path, abs)) return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
	struct stat sb;
	if (stat(abs, &sb)) return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode)) return sam_errorf(err, SAM_EINVAL, "%s: not a regular file", path);
	double mtime = (double)sb.st_mtim.tv_sec + (double)sb.st_mtim.tv_nsec * 1e-9;
	bool found;
	int64_t osize;
	double omtime;
	char ohash[SAM_SHA256_HEX_LEN + 1];
	/* The watcher's rescans look at every file again: an unchanged size and
	 * mtime (nanoseconds) skip it without reading it. */
	int rc = seen(db, abs, &found, &osize, &omtime, ohash, err);
	if (rc) return rc;
	if (found && osize == (int64_t)sb.st_size && omtime == mtime) {
		res->skipped = true;
		return 0;
	}
	char *data = NULL;
	size_t len = 0;
	struct sam_error rerr = { 0 };
	rc = sam_read_file(abs, SAM_LEARN_FILE_MAX, &data, &len, &rerr);
	char hash[SAM_SHA256_HEX_LEN + 1] = "";
	if (!rc) sam_sha256_hex(data, len, hash);

	if ((rc = sam_db_begin(db, err))) goto out_free;
	/* Again under the write lock: another process may have ingested it meanwhile. */
	if ((rc = seen(db, abs, &found, &osize, &omtime, ohash, err))) goto rollback;
	if (found && data && osize == (int64_t)sb.st_size && omtime == mtime && !strcmp(ohash, hash)) {
		res->skipped = true;
		sam_db_rollback(db);
		goto out_free;
	}
	struct ingest in = { .db = db, .path = abs, .res = res };
	int status_rc = 0;
	if (!data) {
		snprintf(res->errors, sizeof res->errors, "%s", rerr.msg);
		status_rc = rerr.code ? rerr.code : SAM_EIO;
	} else if (!is_text(data, len)) {
		snprintf(res->errors, sizeof res->errors, "not a UTF-8 text file");
		status_rc = SAM_EINVAL;
	} else {
		if (has_ext(abs, ".jsonl")) rc = ingest_jsonl(&in, data, len, err);
		else if (has_ext(abs, ".json")) rc = ingest_json(&in, data, len, err);
		else rc = ingest_text(&in, data, len, chunk_chars, err);
		if (rc) goto rollback;
		if (!in.good && res->bad) status_rc = SAM_EINVAL;
	}
	const char *status = status_rc ? "error" : res->bad ? "partial" : "ok";
	if ((rc = record(db, abs, (int64_t)sb.st_size, mtime, data ? hash : NULL, status, res->errors, res->added, err)))
		goto rollback;
	if (strcmp(status, "ok") && (rc = publish_error(db, abs, status, res, err))) goto rollback;
	if ((rc = sam_db_commit(db, err))) goto out_free;
	if (status_rc) rc = sam_errorf(err, status_rc, "%s: %s", path, res->errors);
	goto out_free;
rollback:
	sam_db_rollback(db);
out_free:
	free(data);
	return rc;
}
