/*
 * sup_table.c - the service table: SAM's built-in services, overridden or
 * extended by [service.NAME] sections of sam.conf, and the [supervisor]
 * settings. Everything is validated here, once, so the loop never meets a
 * bad value: unknown keys, bad enums, unknown dependencies and cycles are
 * errors that name the section and key.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/sup.h"

/*
 * The built-in services (SPEC.md section 2). `exists` says whether the
 * subcommand exists yet: a service whose command does not exist is disabled
 * by default (enable it in sam.conf to try it). Flip the flag when the
 * subcommand lands. %d in args is the port.
 */
static const struct sup_default {
	const char *name;
	const char *args;    /* after the sam binary */
	int priority, port;
	const char *depends;
	const char *ready;   /* path on 127.0.0.1:port, or NULL: ready when started */
	const char *health;  /* path, or NULL: no health checks */
	bool exists, one_shot;
	bool never_pause; /* costs too little memory to be worth silencing (the notifier tells of low memory) */
} sup_defaults[] = {
	{ "api", "api --port %d", SUP_CRITICAL, 8765, "", "/api/ready", "/api/health", true, false, false },
	{ "vision", "vision --port %d", SUP_NORMAL, 8766, "", "/health", "/health", true, false, false },
	{ "voice", "voice --port %d", SUP_NORMAL, 8767, "", "/health", "/health", true, false, false },
	/* the watcher needs no api: files land in the store even while the api is down */
	{ "learn-watch", "learn watch --port %d", SUP_LOW, 8768, "", "/health", "/health", true, false, false },
	{ "learn-curriculum", "learn curriculum --port %d", SUP_LOW, 8769, "api", "/health", "/health", true, false, false },
	/* the notifier tolerates the api's absence (it reads sam.db then), but it exists to relay the api's stream */
	{ "notifier", "notify --port %d", SUP_LOW, 8770, "api", "/health", "/health", true, false, true },
	{ "train", "train", SUP_BACKGROUND, 0, "", NULL, NULL, true, true, false },
};
#define N_DEFAULTS (sizeof sup_defaults / sizeof sup_defaults[0])

static const char *const service_keys[] = { "command", "priority", "depends", "ready", "ready_timeout",
					    "health", "health_interval", "health_timeout", "restart",
					    "stop_timeout", "enabled", "port", "one_shot", "autostart", "pausable", NULL };
static const char *const supervisor_keys[] = { "memory_poll_interval", "pause_low_gb", "pause_normal_gb",
					       "pause_high_gb", "hysteresis_gb", "crash_loop_count",
					       "crash_loop_window", "backoff_max", "log_max_bytes", "log_keep", NULL };

static const char *const state_names[SUP_NSTATES] = { "stopped", "waiting", "starting", "ready", "backoff",
						      "paused", "stopping", "failed", "done", "disabled" };
static const char *const priority_names[] = { "critical", "high", "normal", "low", "background" };
static const char *const restart_names[] = { "always", "on-failure", "never" };

const char *sup_state_name(int state)
{
	return state >= 0 && state < SUP_NSTATES ? state_names[state] : "unknown";
}

const char *sup_priority_name(int priority)
{
	return priority >= 0 && priority <= SUP_BACKGROUND ? priority_names[priority] : "unknown";
}

const char *sup_restart_name(int restart)
{
	return restart >= 0 && restart <= SUP_RESTART_NEVER ? restart_names[restart] : "unknown";
}

void sup_argv_free(char **argv)
{
	for (char **a = argv; a && *a; a++) free(*a);
	free(argv);
}

int sup_split_command(const char *line, char ***out, struct sam_error *err)
{
	size_t cap = 8, n = 0;
	char **v = xmalloc(cap * sizeof *v);
	char *word = xmalloc(strlen(line) + 1);
	const char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t') p++;
		if (!*p) break;
		size_t w = 0;
		bool quoted = false;
		while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
			if (*p == '"') {
				quoted = !quoted;
				p++;
			} else if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\')) {
				word[w++] = p[1];
				p += 2;
			} else {
				word[w++] = *p++;
			}
		}
		if (quoted) {
			free(word);
			v[n] = NULL;
			sup_argv_free(v);
			return sam_errorf(err, SAM_EINVAL, "unterminated \" in command '%s'", line);
		}
		word[w] = 0;
		if (n + 2 > cap) v = xrealloc(v, (cap *= 2) * sizeof *v);
		v[n++] = xstrdup(word);
	}
	free(word);
	v[n] = NULL;
	if (!n) {
		sup_argv_free(v);
		return sam_errorf(err, SAM_EINVAL, "empty command");
	}
	*out = v;
	return 0;
}

struct sup_service *sup_find(struct sup *d, const char *name)
{
	for (int i = 0; i < d->n; i++)
		if (!strcmp(d->svc[i].name, name)) return &d->svc[i];
	return NULL;
}

void sup_init(struct sup *d)
{
	d->sig_r = d->sig_w = d->listen_fd = d->lock_fd = -1;
	d->selflog.fd = -1;
	d->selflog.dup_to = -1;
	d->mem_mb = -1;
	for (int i = 0; i < SUP_MAX_CLIENTS; i++) d->clients[i].fd = -1;
	/* service slots are set up as they are used (add_service): unused ones stay untouched zero pages */
}

/* The next slot, named name, with its descriptors closed. */
static struct sup_service *add_service(struct sup *d, const char *name)
{
	struct sup_service *s = &d->svc[d->n++];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	s->out_fd = s->notify_fd = -1;
	s->log.fd = -1;
	s->log.dup_to = -1;
	sup_http_init(&s->check);
	return s;
}

void sup_free(struct sup *d)
{
	for (int i = 0; i < d->n; i++) {
		struct sup_service *s = &d->svc[i];
		sup_argv_free(s->argv);
		s->argv = NULL;
		sup_http_cancel(&s->check);
		if (s->out_fd >= 0) close(s->out_fd);
		if (s->notify_fd >= 0) close(s->notify_fd);
		s->out_fd = s->notify_fd = -1;
		sup_logfile_close(&s->log);
	}
	for (int i = 0; i < SUP_MAX_CLIENTS; i++) sup_ctl_close(&d->clients[i]);
	d->n = 0;
}

/* ---- reading values ------------------------------------------------------------------ */

static int get_float(const struct sam_conf *c, const char *sec, const char *key, double def, double min, double max,
		     double *out, struct sam_error *err)
{
	int rc = sam_conf_float(c, sec, key, def, out, err);
	if (rc) return rc;
	if (!(*out >= min && *out <= max))
		return sam_errorf(err, SAM_EINVAL, "config %s.%s = %g: expected a number in [%g, %g]", sec, key, *out,
				  min, max);
	return 0;
}

static int get_enum(const struct sam_conf *c, const char *sec, const char *key, int def, const char *const *names,
		    int n, int *out, struct sam_error *err)
{
	const char *v = sam_conf_str(c, sec, key, NULL);
	if (!v) {
		*out = def;
		return 0;
	}
	for (int i = 0; i < n; i++)
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	char list[256] = "";
	for (int i = 0; i < n; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof list - l, "%s%s", i ? "|" : "", names[i]);
	}
	return sam_errorf(err, SAM_EINVAL, "config %s.%s = '%s': expected %s", sec, key, v, list);
}

/* Every key of section must be one of keys (typos are errors, not silently ignored). */
static int check_keys(const struct sam_conf *c, const char *sec, const char *const *keys, struct sam_error *err)
{
	for (int i = 0; c && i < c->n; i++) {
		if (strcmp(c->e[i].section, sec)) continue;
		bool ok = false;
		for (const char *const *k = keys; *k && !ok; k++) ok = !strcmp(*k, c->e[i].key);
		if (!ok) {
			char list[512] = "";
			for (const char *const *k = keys; *k; k++) {
				size_t l = strlen(list);
				snprintf(list + l, sizeof list - l, "%s%s", k == keys ? "" : ", ", *k);
			}
			return sam_errorf(err, SAM_EINVAL, "%s:%d: [%s] has no key '%s' (known: %s)", c->path,
					  c->e[i].line, sec, c->e[i].key, list);
		}
	}
	return 0;
}

static bool valid_name(const char *n)
{
	size_t l = strlen(n);
	if (!l || l > SUP_NAME_MAX) return false;
	for (const char *p = n; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '_')) return false;
	return strcmp(n, "supervisor") != 0; /* logs/supervisor.log is the supervisor's */
}

static int load_settings(struct sup_settings *st, const struct sam_conf *c, struct sam_error *err)
{
	const char *S = "supervisor";
	double low, normal, high, hyst, poll, window, cap;
	long long count, logmax, keep;
	int rc;
	if ((rc = check_keys(c, S, supervisor_keys, err)) ||
	    (rc = get_float(c, S, "memory_poll_interval", 2.0, 0.01, 3600, &poll, err)) ||
	    (rc = get_float(c, S, "pause_low_gb", 2.0, 0, 1e6, &low, err)) ||
	    (rc = get_float(c, S, "pause_normal_gb", 1.5, 0, 1e6, &normal, err)) ||
	    (rc = get_float(c, S, "pause_high_gb", 1.0, 0, 1e6, &high, err)) ||
	    (rc = get_float(c, S, "hysteresis_gb", 0.2, 0, 1e6, &hyst, err)) ||
	    (rc = sam_conf_int(c, S, "crash_loop_count", 5, 1, 1000, &count, err)) ||
	    (rc = get_float(c, S, "crash_loop_window", 60, 0.1, 86400, &window, err)) ||
	    (rc = get_float(c, S, "backoff_max", 30, 0, 3600, &cap, err)) ||
	    (rc = sam_conf_int(c, S, "log_max_bytes", 1 << 20, 1024, 1LL << 40, &logmax, err)) ||
	    (rc = sam_conf_int(c, S, "log_keep", 3, 0, 100, &keep, err)))
		return rc;
	if (!(high <= normal && normal <= low))
		return sam_errorf(err, SAM_EINVAL,
				  "config supervisor: pause thresholds must satisfy pause_high_gb (%g) <= "
				  "pause_normal_gb (%g) <= pause_low_gb (%g)",
				  high, normal, low);
	if (count > SUP_FAIL_RING) count = SUP_FAIL_RING;
	st->mem_poll = poll;
	st->pause_mb[SUP_CRITICAL] = 0; /* never */
	st->pause_mb[SUP_HIGH] = high * 1024;
	st->pause_mb[SUP_NORMAL] = normal * 1024;
	st->pause_mb[SUP_LOW] = low * 1024;
	st->pause_mb[SUP_BACKGROUND] = low * 1024;
	st->hysteresis_mb = hyst * 1024;
	st->crash_loop_count = (int)count;
	st->crash_loop_window = window;
	st->backoff_max = cap;
	st->log_max = logmax;
	st->log_keep = (int)keep;
	return 0;
}

/* Dependency names of s as text, resolved after every service is known. */
struct dep_text {
	char text[512];
	char sec[SUP_NAME_MAX + 16];
};

static int load_service(struct sup *d, struct sup_service *s, const struct sup_default *def,
			const struct sam_conf *c, struct dep_text *dt, struct sam_error *err)
{
	char sec[SUP_NAME_MAX + 16];
	snprintf(sec, sizeof sec, "service.%s", s->name);
	snprintf(dt->sec, sizeof dt->sec, "%s", sec);
	int rc;
	if ((rc = check_keys(c, sec, service_keys, err))) return rc;

	long long port;
	bool one_shot, pausable;
	if ((rc = sam_conf_int(c, sec, "port", def ? def->port : 0, 0, 65535, &port, err)) ||
	    (rc = sam_conf_bool(c, sec, "one_shot", def ? def->one_shot : false, &one_shot, err)) ||
	    (rc = sam_conf_bool(c, sec, "pausable", def ? !def->never_pause : true, &pausable, err)))
		return rc;
	s->port = (int)port;
	s->one_shot = one_shot;
	s->pausable = pausable;
	if (s->port) snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);

	/* command: the default's is built from the port */
	char defcmd[1400] = "", defready[640] = "", defhealth[640] = "";
	if (def) {
		char args[256];
		snprintf(args, sizeof args, def->args, s->port);
		snprintf(defcmd, sizeof defcmd, "\"%s\" %s", d->sam_bin, args);
		if (def->ready && s->port) snprintf(defready, sizeof defready, "%s%s", s->url, def->ready);
		if (def->health && s->port) snprintf(defhealth, sizeof defhealth, "%s%s", s->url, def->health);
	}
	bool enabled, autostart;
	if ((rc = sam_conf_bool(c, sec, "enabled", def ? def->exists : true, &enabled, err))) return rc;
	s->enabled = enabled;
	s->enabled_by_user = !def || sam_conf_str(c, sec, "enabled", NULL) != NULL;
	const char *cmd = sam_conf_str(c, sec, "command", def ? defcmd : NULL);
	if (!cmd || !*cmd) {
		if (s->enabled) return sam_errorf(err, SAM_EINVAL, "config [%s]: no command", sec);
		cmd = "false";
	}
	if ((rc = sup_split_command(cmd, &s->argv, err))) {
		sam_error_prefix(err, sec);
		return rc;
	}
	if (!strcmp(s->argv[0], "sam")) { /* "sam ..." means the sam binary next to us */
		free(s->argv[0]);
		s->argv[0] = xstrdup(d->sam_bin);
	}

	if ((rc = get_enum(c, sec, "priority", def ? def->priority : SUP_NORMAL, priority_names, 5, &s->priority,
			   err)) ||
	    (rc = get_enum(c, sec, "restart", s->one_shot ? SUP_RESTART_NEVER : SUP_RESTART_ALWAYS, restart_names, 3,
			   &s->restart, err)) ||
	    (rc = sam_conf_bool(c, sec, "autostart", !s->one_shot, &autostart, err)) ||
	    (rc = get_float(c, sec, "ready_timeout", 120, 0.01, 86400, &s->ready_timeout, err)) ||
	    (rc = get_float(c, sec, "health_interval", 10, 0.01, 86400, &s->health_interval, err)) ||
	    (rc = get_float(c, sec, "health_timeout", 5, 0.01, 3600, &s->health_timeout, err)) ||
	    (rc = get_float(c, sec, "stop_timeout", 10, 0, 3600, &s->stop_timeout, err)))
		return rc;
	s->autostart = autostart;

	const char *ready = sam_conf_str(c, sec, "ready", defready);
	if (!*ready) {
		s->ready_kind = SUP_READY_STARTED;
	} else if (!strcmp(ready, "notify")) {
		s->ready_kind = SUP_READY_NOTIFY;
	} else {
		s->ready_kind = SUP_READY_HTTP;
		if ((rc = sup_url_parse(&s->ready_url, ready, err))) {
			sam_error_prefix(err, "ready");
			sam_error_prefix(err, sec);
			return rc;
		}
	}
	const char *health = sam_conf_str(c, sec, "health", defhealth);
	s->has_health = *health != 0;
	if (s->has_health && (rc = sup_url_parse(&s->health_url, health, err))) {
		sam_error_prefix(err, "health");
		sam_error_prefix(err, sec);
		return rc;
	}
	const char *deps = sam_conf_str(c, sec, "depends", def ? def->depends : "");
	if (strlen(deps) >= sizeof dt->text) return sam_errorf(err, SAM_ERANGE, "config %s.depends: too long", sec);
	snprintf(dt->text, sizeof dt->text, "%s", deps);
	s->state = s->enabled ? SUP_STOPPED : SUP_DISABLED;
	return 0;
}

static int resolve_deps(struct sup *d, struct dep_text *dt, struct sam_error *err)
{
	for (int i = 0; i < d->n; i++) {
		struct sup_service *s = &d->svc[i];
		char *save = NULL;
		for (char *t = strtok_r(dt[i].text, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
			struct sup_service *o = sup_find(d, t);
			if (!o)
				return sam_errorf(err, SAM_EINVAL, "config [%s] depends on '%s', which is no service",
						  dt[i].sec, t);
			if (o == s) return sam_errorf(err, SAM_EINVAL, "config [%s] depends on itself", dt[i].sec);
			if (o->one_shot)
				return sam_errorf(err, SAM_EINVAL,
						  "config [%s] depends on '%s', a one-shot job (it is never 'ready')",
						  dt[i].sec, t);
			bool dup = false;
			for (int k = 0; k < s->ndeps; k++) dup |= s->deps[k] == (int)(o - d->svc);
			if (dup) continue;
			if (s->ndeps == SUP_MAX_DEPS)
				return sam_errorf(err, SAM_ERANGE, "config [%s]: more than %d dependencies", dt[i].sec,
						  SUP_MAX_DEPS);
			s->deps[s->ndeps++] = (int)(o - d->svc);
		}
	}
	/* A service enabled only by default gives way when something it needs is
	 * disabled (turning the api off must not make the learners' default an
	 * error); one the user enabled is a contradiction to report. Repeated
	 * until nothing changes, for chains. */
	for (bool changed = true; changed;) {
		changed = false;
		for (int i = 0; i < d->n; i++) {
			struct sup_service *s = &d->svc[i];
			for (int k = 0; k < s->ndeps && s->enabled; k++) {
				struct sup_service *o = &d->svc[s->deps[k]];
				if (o->enabled) continue;
				if (s->enabled_by_user)
					return sam_errorf(err, SAM_EINVAL,
							  "config [%s] depends on '%s', which is disabled (enable it or "
							  "disable %s)",
							  dt[i].sec, o->name, s->name);
				sup_log(SAM_LOG_INFO, "%s is disabled: it needs %s, which is disabled", s->name, o->name);
				s->enabled = false;
				s->state = SUP_DISABLED;
				changed = true;
			}
		}
	}
	return 0;
}

/* Depth-first: color 0 new, 1 on the path, 2 done. Appends to d->order in post-order. */
static int visit(struct sup *d, int i, int *color, int *path, int depth, int *norder, struct sam_error *err)
{
	if (color[i] == 2) return 0;
	path[depth] = i;
	if (color[i] == 1) {
		char msg[400] = "";
		int start = 0;
		while (path[start] != i) start++;
		for (int k = start; k <= depth; k++) {
			size_t l = strlen(msg);
			snprintf(msg + l, sizeof msg - l, "%s%s", k > start ? " -> " : "", d->svc[path[k]].name);
		}
		return sam_errorf(err, SAM_EINVAL, "config: dependency cycle: %s", msg);
	}
	color[i] = 1;
	for (int k = 0; k < d->svc[i].ndeps; k++) {
		int rc = visit(d, d->svc[i].deps[k], color, path, depth + 1, norder, err);
		if (rc) return rc;
	}
	color[i] = 2;
	d->order[(*norder)++] = i;
	return 0;
}

int sup_table_load(struct sup *d, const struct sam_conf *conf, const char *sam_bin, struct sam_error *err)
{
	snprintf(d->sam_bin, sizeof d->sam_bin, "%s", sam_bin);
	int rc = load_settings(&d->set, conf, err);
	if (rc) return rc;

	/* names: the defaults, then new [service.NAME] sections in file order */
	const char *secs[SUP_MAX_SERVICES * 2];
	int nsec = conf ? sam_conf_sections(conf, "service.", secs, SUP_MAX_SERVICES * 2) : 0;
	for (size_t i = 0; i < N_DEFAULTS; i++) add_service(d, sup_defaults[i].name);
	for (int i = 0; i < nsec; i++) {
		const char *name = secs[i] + strlen("service.");
		if (!valid_name(name))
			return sam_errorf(err, SAM_EINVAL,
					  "config [%s]: a service name is 1..%d characters of a-z, 0-9, '-', '_' "
					  "(and not 'supervisor')",
					  secs[i], SUP_NAME_MAX);
		if (sup_find(d, name)) continue;
		if (d->n == SUP_MAX_SERVICES)
			return sam_errorf(err, SAM_ERANGE, "config: more than %d services", SUP_MAX_SERVICES);
		add_service(d, name);
	}
	struct dep_text *dt = xcalloc((size_t)d->n, sizeof *dt);
	for (int i = 0; i < d->n && !rc; i++)
		rc = load_service(d, &d->svc[i], i < (int)N_DEFAULTS ? &sup_defaults[i] : NULL, conf, &dt[i], err);
	if (!rc) rc = resolve_deps(d, dt, err);
	free(dt);
	if (rc) return rc;
	int color[SUP_MAX_SERVICES] = { 0 }, path[SUP_MAX_SERVICES + 1], norder = 0;
	for (int i = 0; i < d->n && !rc; i++) rc = visit(d, i, color, path, 0, &norder, err);
	return rc;
}
