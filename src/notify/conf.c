/* conf.c - the notifier's settings: [notify] in sam.conf (notify.h, docs/notify.md). */
#include <stdio.h>
#include <string.h>

#include "sam/notify.h"

static const char *const keys[] = { "events",  "rate",    "rate_window", "dedup_window", "max_age",
				    "backend", "command", "timeout",     "db_fallback",  "port",
				    NULL };

/* A typo in [notify] would silently change nothing: name it instead. */
static int check_keys(const struct sam_conf *c, struct sam_error *err)
{
	for (int i = 0; c && i < c->n; i++) {
		if (strcmp(c->e[i].section, "notify")) continue;
		const char *const *k = keys;
		while (*k && strcmp(*k, c->e[i].key)) k++;
		if (!*k)
			return sam_errorf(err, SAM_EINVAL,
					  "%s:%d: [notify] has no key '%s' (known: events, rate, rate_window, "
					  "dedup_window, max_age, backend, command, timeout, db_fallback, port)",
					  c->path, c->e[i].line, c->e[i].key);
	}
	return 0;
}

static int seconds(const struct sam_conf *c, const char *key, double def, double min, double *out,
		   struct sam_error *err)
{
	int rc = sam_conf_float(c, "notify", key, def, out, err);
	if (rc) return rc;
	if (!(*out >= min && *out <= 1e7))
		return sam_errorf(err, SAM_EINVAL, "config notify.%s = %g: expected seconds in [%g, 1e7]", key, *out,
				  min);
	return 0;
}

int sam_notify_conf_load(struct sam_notify_conf *nc, const struct sam_conf *c, struct sam_error *err)
{
	memset(nc, 0, sizeof *nc);
	long long rate;
	int rc;
	if ((rc = check_keys(c, err)) ||
	    (rc = sam_conf_int(c, "notify", "rate", 5, 1, SAM_NOTIFY_RATE_MAX, &rate, err)) ||
	    (rc = seconds(c, "rate_window", 60, 0.001, &nc->rate_window, err)) ||
	    (rc = seconds(c, "dedup_window", 300, 0, &nc->dedup_window, err)) ||
	    (rc = seconds(c, "max_age", 600, 0, &nc->max_age, err)) ||
	    (rc = seconds(c, "timeout", 10, 0.01, &nc->timeout, err)) ||
	    (rc = sam_conf_bool(c, "notify", "db_fallback", true, &nc->db_fallback, err)) ||
	    (rc = sam_conf_int(c, "notify", "port", SAM_NOTIFY_DEFAULT_PORT, 0, 65535, &nc->port, err)))
		return rc;
	nc->rate = (int)rate;
	if ((rc = sam_notify_rules_parse(&nc->rules, sam_conf_str(c, "notify", "events", SAM_NOTIFY_DEFAULT_EVENTS),
					 err))) {
		sam_error_prefix(err, "config notify.events");
		return rc;
	}
	const char *backend = sam_conf_str(c, "notify", "backend", "auto");
	const char *command = sam_conf_str(c, "notify", "command", "");
	if (snprintf(nc->backend, sizeof nc->backend, "%s", backend) >= (int)sizeof nc->backend)
		return sam_errorf(err, SAM_EINVAL, "config notify.backend = '%.40s': expected auto, notify-send, "
				  "osascript, log or command", backend);
	if (snprintf(nc->command, sizeof nc->command, "%s", command) >= (int)sizeof nc->command)
		return sam_errorf(err, SAM_ERANGE, "config notify.command is too long");
	return 0;
}
