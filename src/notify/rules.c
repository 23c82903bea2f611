/* rules.c - which event types notify: [notify] events (notify.h). */
#include <stdio.h>
#include <string.h>

#include "sam/notify.h"

/* Dotted lowercase words, one at least: the part of a prefix pattern before ".*". */
static bool valid_prefix(const char *p, size_t n)
{
	if (!n) return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '.') {
			if (i == 0 || i == n - 1 || p[i - 1] == '.') return false;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
			return false;
		}
	}
	return true;
}

static bool valid_pattern(const char *p)
{
	size_t n = strlen(p);
	if (!strcmp(p, "*")) return true;
	if (n > 2 && !strcmp(p + n - 2, ".*")) return valid_prefix(p, n - 2);
	return sam_event_type_valid(p);
}

int sam_notify_rules_parse(struct sam_notify_rules *r, const char *list, struct sam_error *err)
{
	memset(r, 0, sizeof *r);
	const char *p = list ? list : "";
	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t') p++;
		if (!*p) break;
		size_t n = strcspn(p, ", \t");
		bool excl = *p == '-';
		const char *w = p + excl;
		size_t wn = n - excl;
		if (wn == 4 && !memcmp(w, "none", 4) && !excl) {
			p += n;
			continue;
		}
		char pat[SAM_EVENT_NAME_MAX + 1];
		if (wn > SAM_EVENT_NAME_MAX) return sam_errorf(err, SAM_EINVAL, "event pattern '%.*s...' is too long", 40, w);
		memcpy(pat, w, wn);
		pat[wn] = 0;
		if (!valid_pattern(pat))
			return sam_errorf(err, SAM_EINVAL,
					  "'%.*s' is no event pattern: expected a type (service.crashed), a prefix "
					  "(service.*) or *, optionally after '-' to exclude",
					  (int)n, p);
		if (r->n == SAM_NOTIFY_RULES_MAX)
			return sam_errorf(err, SAM_ERANGE, "more than %d event patterns", SAM_NOTIFY_RULES_MAX);
		memcpy(r->pat[r->n], pat, wn + 1);
		r->exclude[r->n++] = excl;
		p += n;
	}
	return 0;
}

static bool matches(const char *pat, const char *type)
{
	size_t n = strlen(pat);
	if (n == 1 && pat[0] == '*') return true;
	/* "a.*" matches "a.b" and "a.b.c" but not "a" or "ab.c": compare with the dot */
	if (n > 2 && pat[n - 1] == '*') return !strncmp(pat, type, n - 1) && type[n - 1];
	return !strcmp(pat, type);
}

bool sam_notify_rules_match(const struct sam_notify_rules *r, const char *type)
{
	bool in = false;
	for (int i = 0; i < r->n; i++) {
		if (!matches(r->pat[i], type)) continue;
		if (r->exclude[i]) return false;
		in = true;
	}
	return in;
}
