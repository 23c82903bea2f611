/*
 * format.c - an event as a notification a person understands (notify.h).
 * The texts avoid what changes from one occurrence to the next (pids,
 * uptimes) where it does not matter, so that de-duplication can fold a
 * repeated problem into one notification.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/notify.h"
#include "sam/utf8.h"

/* Copy src into dst (cap bytes): invalid UTF-8 becomes '?', control characters spaces; too long: cut + "...". */
static void clean(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src), o = 0;
	bool cut = false;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_valid_len(src + i, n - i);
		if (o + (l ? l : 1) + 1 > cap) {
			cut = true;
			break;
		}
		if (!l) {
			dst[o++] = '?';
			i++;
		} else if (l == 1 && ((unsigned char)src[i] < 0x20 || src[i] == 0x7f)) {
			dst[o++] = ' ';
			i++;
		} else {
			memcpy(dst + o, src + i, l);
			o += l;
			i += l;
		}
	}
	if (cut) { /* cap is a few hundred bytes: room for "..." */
		o = utf8_safe_end(dst, o < cap - 4 ? o : cap - 4);
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = 0;
}

void sam_notification_set(struct sam_notification *out, int urgency, const char *title, const char *body_fmt, ...)
{
	char body[2 * SAM_NOTIFY_BODY_MAX];
	va_list ap;
	va_start(ap, body_fmt);
	vsnprintf(body, sizeof body, body_fmt, ap);
	va_end(ap);
	clean(out->title, sizeof out->title, title);
	clean(out->body, sizeof out->body, body);
	out->urgency = urgency;
}

static const char *jstr(json_t *j, const char *key, const char *def)
{
	json_t *v = json_object_get(j, key);
	return json_is_string(v) && json_string_length(v) ? json_string_value(v) : def;
}

static double jnum(json_t *j, const char *key, double def)
{
	json_t *v = json_object_get(j, key);
	return json_is_number(v) ? json_number_value(v) : def;
}

/* "key: value, key: value" of an object's members (scalars as they are, the rest as JSON). */
static void describe(json_t *j, const char *raw, char *buf, size_t cap)
{
	buf[0] = 0;
	if (!json_is_object(j)) {
		snprintf(buf, cap, "%s", raw && *raw ? raw : "(no details)");
		return;
	}
	const char *k;
	json_t *v;
	size_t o = 0;
	json_object_foreach(j, k, v)
	{
		char val[256];
		if (json_is_string(v)) {
			snprintf(val, sizeof val, "%s", json_string_value(v));
		} else if (json_is_integer(v)) {
			snprintf(val, sizeof val, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		} else if (json_is_real(v)) {
			snprintf(val, sizeof val, "%g", json_real_value(v));
		} else {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			snprintf(val, sizeof val, "%s", s ? s : "?");
			free(s);
		}
		int w = snprintf(buf + o, cap - o, "%s%s: %s", o ? ", " : "", k, val);
		if (w < 0 || (size_t)w >= cap - o) break; /* clean() marks the cut */
		o += (size_t)w;
	}
	if (!o) snprintf(buf, cap, "(no details)");
}

static void generic(const char *type, json_t *j, const char *raw, struct sam_notification *out)
{
	char title[SAM_NOTIFY_TITLE_MAX], body[2 * SAM_NOTIFY_BODY_MAX];
	snprintf(title, sizeof title, "SAM: %s", type);
	describe(j, raw, body, sizeof body);
	sam_notification_set(out, SAM_NOTIFY_NORMAL, title, "%s", body);
}

/* service.*: the supervisor's events, {"service", "pid", ...}. */
static bool service_event(const char *what, json_t *j, struct sam_notification *out)
{
	const char *svc = jstr(j, "service", NULL);
	char title[SAM_NOTIFY_TITLE_MAX];
	const char *name = svc ? svc : "a service";
	if (!strcmp(what, "crashed")) {
		snprintf(title, sizeof title, "SAM: %s crashed", name);
		sam_notification_set(out, SAM_NOTIFY_NORMAL, title, "%s. The supervisor restarts it; see `sam logs %s`.",
				     jstr(j, "reason", "It ended unexpectedly"), svc ? svc : "NAME");
	} else if (!strcmp(what, "failed")) {
		snprintf(title, sizeof title, "SAM: %s failed", name);
		sam_notification_set(out, SAM_NOTIFY_CRITICAL, title, "%s. It stays down; `sam start %s` tries again.",
				     jstr(j, "error", "It could not be kept running"), svc ? svc : "NAME");
	} else if (!strcmp(what, "restarted")) {
		snprintf(title, sizeof title, "SAM: %s restarted", name);
		sam_notification_set(out, SAM_NOTIFY_LOW, title, "Running again as pid %.0f (restart %.0f).",
				     jnum(j, "pid", 0), jnum(j, "restarts", 0));
	} else if (!strcmp(what, "started")) {
		snprintf(title, sizeof title, "SAM: %s started", name);
		double pid = jnum(j, "pid", -1);
		if (pid >= 0) sam_notification_set(out, SAM_NOTIFY_LOW, title, "Running as pid %.0f.", pid);
		else sam_notification_set(out, SAM_NOTIFY_LOW, title, "Running.");
	} else if (!strcmp(what, "ready")) {
		snprintf(title, sizeof title, "SAM: %s is ready", name);
		sam_notification_set(out, SAM_NOTIFY_LOW, title, "Ready after %.1f s.", jnum(j, "startup_s", 0));
	} else if (!strcmp(what, "paused")) {
		snprintf(title, sizeof title, "SAM: %s paused", name);
		sam_notification_set(out, SAM_NOTIFY_NORMAL, title,
				     "Memory is low (%.0f MB available); it resumes when memory frees up.",
				     jnum(j, "available_mb", 0));
	} else if (!strcmp(what, "resumed")) {
		snprintf(title, sizeof title, "SAM: %s resumed", name);
		sam_notification_set(out, SAM_NOTIFY_LOW, title, "Memory is back (%.0f MB available).",
				     jnum(j, "available_mb", 0));
	} else {
		return false;
	}
	return true;
}

/* resource.level {"level", "available_mb"}: only worth a notification when memory runs short. */
static int resource_level(json_t *j, struct sam_notification *out)
{
	const char *level = jstr(j, "level", NULL);
	double mb = jnum(j, "available_mb", -1);
	char avail[64] = "Little memory is left";
	if (mb >= 0) snprintf(avail, sizeof avail, "%.0f MB available", mb);
	if (!level) return -1;
	if (!strcmp(level, "ok") || !strcmp(level, "medium")) return 0;
	if (!strcmp(level, "low"))
		sam_notification_set(out, SAM_NOTIFY_NORMAL, "SAM: memory is low",
				     "%s: SAM answers with its smaller model and shorter replies until memory frees up.",
				     avail);
	else if (!strcmp(level, "critical"))
		sam_notification_set(out, SAM_NOTIFY_CRITICAL, "SAM: memory is critically low",
				     "%s: SAM turns requests away until memory frees up.", avail);
	else
		return -1;
	return 1;
}

/* train.*: {"run", ...} from sam train. */
static bool train_event(const char *what, json_t *j, struct sam_notification *out)
{
	const char *run = jstr(j, "run", "?");
	if (!strcmp(what, "started"))
		sam_notification_set(out, SAM_NOTIFY_LOW, "SAM: training started",
				     "Run %s: %.0f examples to learn from, %.0f to check against.", run,
				     jnum(j, "n_train", 0), jnum(j, "n_valid", 0));
	else if (!strcmp(what, "finished"))
		sam_notification_set(out, SAM_NOTIFY_NORMAL, "SAM: training finished", "Run %s: %s.", run,
				     jstr(j, "note", jstr(j, "status", "finished")));
	else if (!strcmp(what, "failed"))
		sam_notification_set(out, SAM_NOTIFY_NORMAL, "SAM: training failed", "Run %s: %s.", run,
				     jstr(j, "error", "no reason given"));
	else if (!strcmp(what, "stopped"))
		sam_notification_set(out, SAM_NOTIFY_LOW, "SAM: training stopped",
				     "Run %s stopped after %.0f steps; it can resume later.", run, jnum(j, "steps", 0));
	else if (!strcmp(what, "deployed"))
		sam_notification_set(out, SAM_NOTIFY_NORMAL, "SAM: new adapter in use",
				     "SAM now answers with the adapter of run %s.", run);
	else
		return false;
	return true;
}

static bool approval_event(const char *what, json_t *j, struct sam_notification *out)
{
	double id = jnum(j, "id", -1);
	char num[32] = "";
	if (id >= 0) snprintf(num, sizeof num, " #%.0f", id);
	const char *what_for = jstr(j, "title", jstr(j, "kind", "a proposal"));
	if (!strcmp(what, "pending")) {
		sam_notification_set(out, SAM_NOTIFY_NORMAL, "SAM: approval needed",
				     "%s (proposal%s). Review it with `sam approvals`.", what_for, num);
	} else if (!strcmp(what, "decided")) {
		char title[SAM_NOTIFY_TITLE_MAX];
		snprintf(title, sizeof title, "SAM: proposal%s %s", num, jstr(j, "status", "decided"));
		sam_notification_set(out, SAM_NOTIFY_LOW, title, "%s", what_for);
	} else {
		return false;
	}
	return true;
}

bool sam_notify_format(const char *type, const char *data, size_t data_len, struct sam_notification *out)
{
	json_t *j = data ? json_loadb(data, data_len, JSON_DECODE_ANY, NULL) : NULL;
	char raw[SAM_NOTIFY_BODY_MAX];
	snprintf(raw, sizeof raw, "%.*s", (int)(data_len < sizeof raw ? data_len : sizeof raw - 1), data ? data : "");
	bool known = json_is_object(j), keep = true;
	if (known && !strncmp(type, "service.", 8)) {
		known = service_event(type + 8, j, out);
	} else if (known && !strcmp(type, SAM_EV_RESOURCE_LEVEL)) {
		int r = resource_level(j, out);
		known = r >= 0;
		keep = r != 0;
	} else if (known && !strncmp(type, "train.", 6)) {
		known = train_event(type + 6, j, out);
	} else if (known && !strncmp(type, "approval.", 9)) {
		known = approval_event(type + 9, j, out);
	} else if (known && !strcmp(type, SAM_EV_INGEST_ERROR)) {
		sam_notification_set(out, SAM_NOTIFY_NORMAL, "SAM: could not learn from a file", "%s: %s",
				     jstr(j, "path", jstr(j, "file", "a file")),
				     jstr(j, "error", jstr(j, "reason", "unreadable")));
	} else if (known && !strcmp(type, "learn.ingested")) {
		sam_notification_set(out, SAM_NOTIFY_LOW, "SAM: learned from new files",
				     "%.0f new examples from %.0f files.", jnum(j, "examples", 0), jnum(j, "files", 0));
	} else {
		known = false;
	}
	if (!known) generic(type, j, raw, out);
	json_decref(j);
	return keep;
}
