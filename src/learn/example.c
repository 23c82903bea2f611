/*
 * example.c - normalising examples to their canonical JSON and hash, and
 * storing them deduplicated (see learn.h).
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sam/learn.h"
#include "sam/utf8.h"

/*
 * A malloc'd copy of s[0..n) with CRLF and CR turned into LF and leading
 * and trailing white space dropped; NULL if s is not valid UTF-8.
 */
static char *norm_text(const char *s, size_t n, size_t *out_len)
{
	if (!utf8_valid(s, n)) return NULL;
	char *o = xmalloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			o[k++] = '\n';
			if (i + 1 < n && s[i + 1] == '\n') i++;
		} else {
			o[k++] = s[i];
		}
	}
	size_t a = 0;
	while (a < k && strchr(" \t\n\v\f", o[a])) a++;
	while (k > a && strchr(" \t\n\v\f", o[k - 1])) k--;
	memmove(o, o + a, k - a);
	o[k - a] = '\0';
	*out_len = k - a;
	return o;
}

/* Normalised JSON string of s (a json string), or NULL if it is not valid UTF-8. */
static json_t *norm_string(const char *s, size_t n)
{
	size_t len;
	char *t = norm_text(s, n, &len);
	if (!t) return NULL;
	json_t *j = json_stringn_nocheck(t, len);
	free(t);
	return j;
}

/* OpenAI content: a string, or an array of parts whose text parts are joined. */
static json_t *content_of(const json_t *c)
{
	if (json_is_string(c)) return norm_string(json_string_value(c), json_string_length(c));
	if (!json_is_array(c)) return NULL;
	size_t cap = 0, len = 0, i;
	char *buf = NULL;
	const json_t *part;
	json_array_foreach(c, i, part) {
		const json_t *t = json_object_get(part, "text");
		const char *type = json_string_value(json_object_get(part, "type"));
		if (!json_is_string(t) || (type && strcmp(type, "text"))) continue;
		size_t n = json_string_length(t);
		char *nb = sam_grow(buf, &cap, len + n + 2, 1);
		if (!nb) {
			free(buf);
			return NULL;
		}
		buf = nb;
		if (len) buf[len++] = '\n';
		memcpy(buf + len, json_string_value(t), n);
		len += n;
	}
	json_t *j = buf ? norm_string(buf, len) : NULL;
	free(buf);
	return j;
}

static const char *role_of(const char *r)
{
	static const struct {
		const char *in, *out;
	} map[] = { { "system", "system" }, { "user", "user" },	    { "human", "user" },
		    { "assistant", "assistant" }, { "gpt", "assistant" }, { "bot", "assistant" },
		    { "model", "assistant" } };
	for (size_t i = 0; r && i < sizeof map / sizeof map[0]; i++)
		if (!strcasecmp(r, map[i].in)) return map[i].out;
	return NULL;
}

/* Canonical JSON and hash of a normalised object. */
static int finish(json_t *o, enum sam_example_kind kind, struct sam_example *ex, struct sam_error *err)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s) return sam_errorf(err, SAM_ENOMEM, "no memory for an example");
	size_t n = strlen(s);
	if (n > SAM_EXAMPLE_MAX) {
		free(s);
		return sam_errorf(err, SAM_ERANGE, "example of %zu bytes (at most %u)", n, SAM_EXAMPLE_MAX);
	}
	ex->kind = kind;
	ex->json = s;
	sam_sha256_hex(s, n, ex->hash);
	return 0;
}

/* messages: array of objects with role_key/content_key (OpenAI or ShareGPT names). */
static int from_messages(const json_t *arr, const char *key, const char *role_key, const char *content_key,
			 struct sam_example *ex, struct sam_error *err)
{
	if (!json_is_array(arr) || !json_array_size(arr))
		return sam_errorf(err, SAM_EINVAL, "'%s' is not a non-empty array", key);
	json_t *msgs = json_array();
	bool answered = false;
	size_t i;
	const json_t *m;
	json_array_foreach(arr, i, m) {
		const char *r = json_string_value(json_object_get(m, role_key));
		const char *role = role_of(r);
		if (!role) {
			json_decref(msgs);
			return sam_errorf(err, SAM_EINVAL, "message %zu: %s '%.40s' is not system, user or assistant", i,
					  role_key, r ? r : "(missing)");
		}
		json_t *c = content_of(json_object_get(m, content_key));
		if (!c) {
			json_decref(msgs);
			return sam_errorf(err, SAM_EINVAL, "message %zu: '%s' is missing or not UTF-8 text", i, content_key);
		}
		if (!strcmp(role, "assistant") && json_string_length(c)) answered = true;
		json_t *o = json_object();
		json_object_set_new(o, "role", json_string(role));
		json_object_set_new(o, "content", c);
		json_array_append_new(msgs, o);
	}
	if (!answered) {
		json_decref(msgs);
		return sam_errorf(err, SAM_EINVAL, "no assistant answer to learn from");
	}
	json_t *o = json_object();
	json_object_set_new(o, "messages", msgs);
	return finish(o, SAM_EXAMPLE_CHAT, ex, err);
}

int sam_example_from_text(const char *text, size_t len, struct sam_example *ex, struct sam_error *err)
{
	memset(ex, 0, sizeof *ex);
	json_t *t = norm_string(text, len);
	if (!t) return sam_errorf(err, SAM_EINVAL, "text is not valid UTF-8");
	if (!json_string_length(t)) {
		json_decref(t);
		return sam_errorf(err, SAM_EINVAL, "empty text");
	}
	json_t *o = json_object();
	json_object_set_new(o, "text", t);
	return finish(o, SAM_EXAMPLE_TEXT, ex, err);
}

int sam_example_from_json(const json_t *obj, struct sam_example *ex, struct sam_error *err)
{
	memset(ex, 0, sizeof *ex);
	if (!json_is_object(obj)) return sam_errorf(err, SAM_EINVAL, "not a JSON object");
	const json_t *v;
	if ((v = json_object_get(obj, "messages"))) return from_messages(v, "messages", "role", "content", ex, err);
	if ((v = json_object_get(obj, "conversations"))) return from_messages(v, "conversations", "from", "value", ex, err);
	if ((v = json_object_get(obj, "text"))) {
		if (!json_is_string(v)) return sam_errorf(err, SAM_EINVAL, "'text' is not a string");
		return sam_example_from_text(json_string_value(v), json_string_length(v), ex, err);
	}
	return sam_errorf(err, SAM_EINVAL, "no 'messages', 'conversations' or 'text'");
}

void sam_example_free(struct sam_example *ex)
{
	free(ex->json);
	memset(ex, 0, sizeof *ex);
}

int sam_example_add(struct sam_db *db, const struct sam_example *ex, const char *source, const char *category,
		    double quality, const char *origin, bool *added, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_cached(db, &st,
				"INSERT INTO examples(kind, content, hash, source, category, quality, origin, created)"
				" VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(hash) DO NOTHING",
				err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, ex->kind == SAM_EXAMPLE_CHAT ? "chat" : "text", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ex->json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ex->hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, category ? category : "", -1, SQLITE_STATIC);
	if (quality >= 0) sqlite3_bind_double(st, 6, quality);
	else sqlite3_bind_null(st, 6);
	if (origin) sqlite3_bind_text(st, 7, origin, -1, SQLITE_STATIC);
	else sqlite3_bind_null(st, 7);
	sqlite3_bind_double(st, 8, sam_db_time());
	int s = sqlite3_step(st);
	rc = s == SQLITE_DONE ? 0 : sam_db_errorf(db, err, s, "storing an example");
	sqlite3_reset(st);
	if (rc) return rc;
	if (added) *added = sqlite3_changes(sam_db_handle(db)) > 0;
	return 0;
}
