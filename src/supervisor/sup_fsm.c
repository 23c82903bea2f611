/*
 * sup_fsm.c - the state machine of one service: a table of actions indexed
 * by state x event (sup_table_fsm below). An empty cell means the event
 * does not matter in that state and is ignored. Actions are the only code
 * that changes a service's state; they spawn, signal, schedule timers
 * (deadlines the loop turns back into events) and publish events.
 *
 * Activities of a state (not events): STARTING polls the ready URL every
 * SUP_READY_POLL s or reads the notify fd; READY runs the health check
 * every health_interval; PAUSED does neither.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sam/events.h"
#include "sam/fs.h"
#include "supervisor/sup.h"

#define SRC "supervisor" /* the events' source */

typedef void (*sup_action)(struct sup *d, struct sup_service *s);

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sup_describe_status(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st)) snprintf(buf, cap, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st)) snprintf(buf, cap, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else snprintf(buf, cap, "status 0x%x", st);
}

static void set_state(struct sup *d, struct sup_service *s, int st)
{
	d->dirty = true; /* the error text may have changed even when the state did not */
	if (s->state == st) return;
	sup_log(SAM_LOG_INFO, "%s: %s -> %s%s%s%s", s->name, sup_state_name(s->state), sup_state_name(st),
		s->error[0] ? " (" : "", s->error, s->error[0] ? ")" : "");
	s->state = st;
	s->since = wall_now();
}

/* FAILED with s->error as the reason: logged and published. */
static void fail(struct sup *d, struct sup_service *s)
{
	sup_log(SAM_LOG_ERROR, "%s: failed: %s", s->name, s->error);
	sam_event_publishp(SRC, SAM_EV_SERVICE_FAILED, "{s:s, s:s}", "service", s->name, "error", s->error);
	set_state(d, s, SUP_FAILED);
}

bool sup_deps_ready(const struct sup *d, const struct sup_service *s)
{
	for (int i = 0; i < s->ndeps; i++) {
		int st = d->svc[s->deps[i]].state;
		if (st != SUP_READY && st != SUP_DONE) return false;
	}
	return true;
}

/* The first dependency that failed or is disabled, or NULL. */
static const struct sup_service *failed_dep(const struct sup *d, const struct sup_service *s)
{
	for (int i = 0; i < s->ndeps; i++) {
		const struct sup_service *o = &d->svc[s->deps[i]];
		if (o->state == SUP_FAILED || o->state == SUP_DISABLED) return o;
	}
	return NULL;
}

static void close_notify(struct sup_service *s)
{
	if (s->notify_fd >= 0) close(s->notify_fd);
	s->notify_fd = -1;
}

/* The service of ours whose process group holds pid, or NULL. */
static struct sup_service *owner_of(struct sup *d, pid_t pid)
{
	if (pid <= 0) return NULL;
	pid_t g = getpgid(pid);
	for (int i = 0; i < d->n; i++)
		if (d->svc[i].pid > 0 && (d->svc[i].pid == pid || d->svc[i].pid == g)) return &d->svc[i];
	return NULL;
}

static void on_failure(struct sup *d, struct sup_service *s, const char *reason);

/* fork/exec s: STARTING (or READY at once when it has no readiness check); FAILED if it cannot run. */
static void spawn(struct sup *d, struct sup_service *s)
{
	double now = sam_now();
	if (s->port && sup_port_busy(s->port)) {
		/* a port held by a stranger is reported, not retried blindly */
		char comm[64];
		pid_t h = sup_port_holder(s->port, comm, sizeof comm);
		struct sup_service *o = owner_of(d, h);
		if (o) {
			char why[160];
			snprintf(why, sizeof why, "port %d is still held by %s (pid %ld)", s->port, o->name, (long)h);
			on_failure(d, s, why);
			return;
		}
		if (h)
			snprintf(s->error, sizeof s->error, "port %d is in use by another process (pid %ld%s%s)", s->port,
				 (long)h, comm[0] ? ", " : "", comm);
		else
			snprintf(s->error, sizeof s->error, "port %d is in use by another process", s->port);
		fail(d, s);
		return;
	}
	struct sup_spawn sp;
	struct sam_error err = { 0 };
	if (s->log.fd < 0) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s.log", d->log_dir, s->name);
		if (sup_logfile_open(&s->log, path, d->set.log_max, d->set.log_keep, -1, &err))
			sup_log(SAM_LOG_WARN, "%s: no log file: %s", s->name, err.msg);
	}
	if (sup_spawn(d, s, &sp, &err)) {
		snprintf(s->error, sizeof s->error, "%.500s", err.msg);
		fail(d, s);
		return;
	}
	s->pid = sp.pid;
	s->out_fd = sp.out_fd;
	s->notify_fd = sp.notify_fd;
	s->pend_len = 0;
	s->spawned_at = now;
	s->ready_deadline = now + s->ready_timeout;
	s->next_check = now;
	s->health_fails = 0;
	s->error[0] = 0;
	s->dep_blocked = false;
	sup_write_pidfile(d, s);
	char line[160];
	snprintf(line, sizeof line, "--- %s %s by sam-supervise (pid %ld) ---", s->name,
		 s->is_restart ? "restarted" : "started", (long)s->pid);
	sup_logfile_line(&s->log, line, strlen(line));
	if (s->is_restart) {
		s->restarts++;
		sup_log(SAM_LOG_INFO, "%s: restarted as pid %ld (restart %d)", s->name, (long)s->pid, s->restarts);
		sam_event_publishp(SRC, SAM_EV_SERVICE_RESTARTED, "{s:s, s:i, s:i, s:s, s:i}", "service", s->name,
				   "pid", (int)s->pid, "port", s->port, "url", s->url, "restarts", s->restarts);
	} else {
		sup_log(SAM_LOG_INFO, "%s: started as pid %ld", s->name, (long)s->pid);
		sam_event_publishp(SRC, SAM_EV_SERVICE_STARTED, "{s:s, s:i, s:i, s:s}", "service", s->name, "pid",
				   (int)s->pid, "port", s->port, "url", s->url);
	}
	s->is_restart = false;
	set_state(d, s, SUP_STARTING);
	if (s->ready_kind == SUP_READY_STARTED) sup_dispatch(d, s, SUP_EV_READY);
}

/* Spawn s if its dependencies are ready and memory allows, else WAITING (or FAILED for a failed dependency). */
static void try_start(struct sup *d, struct sup_service *s)
{
	if (d->shutting_down) return;
	const struct sup_service *f = failed_dep(d, s);
	if (f) {
		s->dep_blocked = true;
		snprintf(s->error, sizeof s->error, "dependency %s %s", f->name,
			 f->state == SUP_DISABLED ? "is disabled" : "failed");
		fail(d, s);
		return;
	}
	for (int i = 0; i < s->ndeps; i++) {
		const struct sup_service *o = &d->svc[s->deps[i]];
		if (o->state != SUP_READY && o->state != SUP_DONE) {
			snprintf(s->error, sizeof s->error, "waiting for %s (%s)", o->name, sup_state_name(o->state));
			set_state(d, s, SUP_WAITING);
			return;
		}
	}
	if (d->class_paused[s->priority] && s->pausable) {
		snprintf(s->error, sizeof s->error, "waiting for memory (%.0f MB available)", d->mem_mb);
		set_state(d, s, SUP_WAITING);
		return;
	}
	spawn(d, s);
}

/* SIGTERM to the group (SIGCONT too if paused); SIGKILL when stop_timeout passes. */
static void begin_stop(struct sup *d, struct sup_service *s, int after)
{
	sup_http_cancel(&s->check);
	close_notify(s);
	sup_kill_group(s->pid, SIGTERM);
	if (s->state == SUP_PAUSED) sup_kill_group(s->pid, SIGCONT); /* it must run to handle SIGTERM */
	s->kill_at = sam_now() + s->stop_timeout;
	s->after_stop = after;
	set_state(d, s, SUP_STOPPING);
}

/*
 * A failure (crash, unhealthy, port held by ourselves): BACKOFF with an
 * exponential delay (0, 0.5, 1, 2, ... s, capped), or FAILED when this is
 * the crash_loop_count-th failure within crash_loop_window.
 */
static void on_failure(struct sup *d, struct sup_service *s, const char *reason)
{
	char why[200];
	snprintf(why, sizeof why, "%s", reason); /* reason may be s->error */
	double now = sam_now();
	int k = 0;
	for (int i = 0; i < s->nfails; i++)
		if (now - s->fails[i] <= d->set.crash_loop_window) s->fails[k++] = s->fails[i];
	if (k == SUP_FAIL_RING) memmove(s->fails, s->fails + 1, (size_t)--k * sizeof *s->fails);
	s->fails[k++] = now;
	s->nfails = k;
	if (k >= d->set.crash_loop_count) {
		snprintf(s->error, sizeof s->error, "crash loop: %d failures within %g s (last: %.200s); `sam start %s` retries",
			 k, d->set.crash_loop_window, why, s->name);
		fail(d, s);
		return;
	}
	double delay = 0;
	if (k > 1) {
		delay = 0.5;
		for (int i = 2; i < k && delay < d->set.backoff_max; i++) delay *= 2;
		if (delay > d->set.backoff_max) delay = d->set.backoff_max;
	}
	s->backoff_until = now + delay;
	s->is_restart = true;
	snprintf(s->error, sizeof s->error, "%s; restart in %.1f s", why, delay);
	sup_log(SAM_LOG_WARN, "%s: %s (failure %d of %d within %g s): restart in %.2f s", s->name, why, k,
		d->set.crash_loop_count, d->set.crash_loop_window, delay);
	set_state(d, s, SUP_BACKOFF);
}

/* ---- actions ---------------------------------------------------------------------------- */

/* STOPPED, FAILED, DONE + START/RESTART: a fresh start forgets the failure history. */
static void a_start(struct sup *d, struct sup_service *s)
{
	s->nfails = 0;
	s->error[0] = 0;
	s->dep_blocked = false;
	try_start(d, s);
}

/* BACKOFF + START/RESTART, BACKOFF + BACKOFF_DONE, WAITING + DEPS_OK. */
static void a_try_start(struct sup *d, struct sup_service *s)
{
	try_start(d, s);
}

/* FAILED + DEPS_OK: only a service that failed because of a dependency comes back by itself. */
static void a_deps_back(struct sup *d, struct sup_service *s)
{
	if (s->dep_blocked) a_start(d, s);
}

/* WAITING + DEP_FAILED */
static void a_dep_failed(struct sup *d, struct sup_service *s)
{
	try_start(d, s); /* finds the failed dependency and says which */
}

/* STARTING, READY, PAUSED + STOP */
static void a_stop(struct sup *d, struct sup_service *s)
{
	s->error[0] = 0;
	begin_stop(d, s, SUP_AFTER_STOPPED);
}

/* WAITING, BACKOFF, FAILED, DONE + STOP: nothing runs; it is held down. */
static void a_hold(struct sup *d, struct sup_service *s)
{
	s->error[0] = 0;
	s->dep_blocked = false;
	s->is_restart = false;
	set_state(d, s, SUP_STOPPED);
}

/* STOPPING + STOP: whatever was to follow the stop, it stays stopped now. */
static void a_stop_again(struct sup *d, struct sup_service *s)
{
	(void)d;
	s->after_stop = SUP_AFTER_STOPPED;
}

/* STARTING, READY, PAUSED + RESTART */
static void a_restart(struct sup *d, struct sup_service *s)
{
	s->is_restart = true;
	begin_stop(d, s, SUP_AFTER_START);
}

/* STOPPING + START/RESTART: start again once it is gone. */
static void a_start_after_stop(struct sup *d, struct sup_service *s)
{
	(void)d;
	s->is_restart = true;
	s->after_stop = SUP_AFTER_START;
}

/* STARTING, READY, PAUSED + EXIT: nobody asked it to stop. */
static void a_exit(struct sup *d, struct sup_service *s)
{
	char how[96];
	sup_describe_status(s->last_status, how, sizeof how);
	bool clean = WIFEXITED(s->last_status) && WEXITSTATUS(s->last_status) == 0;
	double ran = sam_now() - s->spawned_at;
	if (d->shutting_down) {
		set_state(d, s, SUP_STOPPED);
		return;
	}
	if (s->one_shot && clean) {
		sup_log(SAM_LOG_INFO, "%s: finished (%s) after %.1f s", s->name, how, ran);
		s->error[0] = 0;
		set_state(d, s, SUP_DONE);
		return;
	}
	bool again = s->restart == SUP_RESTART_ALWAYS || (s->restart == SUP_RESTART_ON_FAILURE && !clean);
	if (!clean || again) {
		sup_log(SAM_LOG_WARN, "%s: pid %ld exited unexpectedly (%s) after %.1f s", s->name, (long)s->last_pid,
			how, ran);
		sam_event_publishp(SRC, SAM_EV_SERVICE_CRASHED, "{s:s, s:i, s:i, s:s, s:f}", "service", s->name,
				   "pid", (int)s->last_pid,
				   "status", WIFEXITED(s->last_status) ? WEXITSTATUS(s->last_status)
								       : 128 + WTERMSIG(s->last_status),
				   "reason", how, "uptime_s", ran);
	} else {
		sup_log(SAM_LOG_INFO, "%s: exited (%s)", s->name, how);
	}
	if (!again) {
		if (clean) {
			s->error[0] = 0;
			set_state(d, s, SUP_STOPPED);
		} else {
			snprintf(s->error, sizeof s->error, "exited with %s (restart = %s)", how,
				 sup_restart_name(s->restart));
			fail(d, s);
		}
		return;
	}
	char why[128];
	snprintf(why, sizeof why, "exited with %s", how);
	on_failure(d, s, why);
}

/* STOPPING + EXIT */
static void a_exit_stopping(struct sup *d, struct sup_service *s)
{
	char how[96];
	sup_describe_status(s->last_status, how, sizeof how);
	sup_log(SAM_LOG_INFO, "%s: pid %ld is gone (%s)", s->name, (long)s->last_pid, how);
	if (d->shutting_down) s->after_stop = SUP_AFTER_STOPPED;
	switch (s->after_stop) {
	case SUP_AFTER_START: try_start(d, s); break;
	case SUP_AFTER_FAILURE: on_failure(d, s, s->error); break;
	case SUP_AFTER_FAILED: set_state(d, s, SUP_FAILED); break; /* published when it was decided */
	default:
		s->error[0] = 0;
		set_state(d, s, SUP_STOPPED);
	}
}

/* STARTING + READY */
static void a_ready(struct sup *d, struct sup_service *s)
{
	double now = sam_now();
	sup_http_cancel(&s->check);
	close_notify(s);
	s->health_fails = 0;
	s->next_check = now + s->health_interval;
	s->error[0] = 0;
	sup_log(SAM_LOG_INFO, "%s: ready after %.3f s", s->name, now - s->spawned_at);
	sam_event_publishp(SRC, SAM_EV_SERVICE_READY, "{s:s, s:i, s:s, s:f}", "service", s->name, "pid", (int)s->pid,
			   "url", s->url, "startup_s", now - s->spawned_at);
	set_state(d, s, SUP_READY);
}

/* STARTING + READY_TIMEOUT: reported; its dependents fail with it; the rest runs. */
static void a_ready_timeout(struct sup *d, struct sup_service *s)
{
	snprintf(s->error, sizeof s->error, "not ready within %g s (ready = %.300s)", s->ready_timeout,
		 s->ready_kind == SUP_READY_NOTIFY ? "notify" : s->ready_url.text);
	sup_log(SAM_LOG_ERROR, "%s: failed: %s", s->name, s->error);
	sam_event_publishp(SRC, SAM_EV_SERVICE_FAILED, "{s:s, s:s}", "service", s->name, "error", s->error);
	begin_stop(d, s, SUP_AFTER_FAILED);
}

static void a_health_ok(struct sup *d, struct sup_service *s)
{
	(void)d;
	if (s->health_fails) sup_log(SAM_LOG_INFO, "%s: healthy again", s->name);
	s->health_fails = 0;
}

static void a_health_fail(struct sup *d, struct sup_service *s)
{
	s->health_fails++;
	sup_log(SAM_LOG_WARN, "%s: health check %d/%d failed: %s", s->name, s->health_fails, SUP_HEALTH_FAILS,
		d->why);
	if (s->health_fails < SUP_HEALTH_FAILS) return;
	snprintf(s->error, sizeof s->error, "unhealthy: %d health checks failed (last: %s)", s->health_fails, d->why);
	sam_event_publishp(SRC, SAM_EV_SERVICE_CRASHED, "{s:s, s:i, s:s}", "service", s->name, "pid", (int)s->pid,
			   "reason", s->error);
	if (s->restart == SUP_RESTART_NEVER) {
		sam_event_publishp(SRC, SAM_EV_SERVICE_FAILED, "{s:s, s:s}", "service", s->name, "error", s->error);
		begin_stop(d, s, SUP_AFTER_FAILED);
	} else {
		begin_stop(d, s, SUP_AFTER_FAILURE);
	}
}

/* STOPPING + KILL_TIMEOUT */
static void a_kill(struct sup *d, struct sup_service *s)
{
	(void)d;
	sup_log(SAM_LOG_WARN, "%s: pid %ld did not stop within %g s: SIGKILL", s->name, (long)s->pid,
		s->stop_timeout);
	sup_kill_group(s->pid, SIGKILL);
	kill(s->pid, SIGKILL);
	s->kill_at = HUGE_VAL;
}

/* STARTING, READY + PAUSE */
static void a_pause(struct sup *d, struct sup_service *s)
{
	sup_http_cancel(&s->check);
	sup_kill_group(s->pid, SIGSTOP);
	s->paused_from = s->state;
	s->paused_at = sam_now();
	sup_log(SAM_LOG_WARN, "%s: paused (SIGSTOP): %.0f MB of memory available", s->name, d->mem_mb);
	sam_event_publishp(SRC, SAM_EV_SERVICE_PAUSED, "{s:s, s:i, s:f}", "service", s->name, "pid", (int)s->pid,
			   "available_mb", d->mem_mb);
	set_state(d, s, SUP_PAUSED);
}

/* PAUSED + RESUME: back where it was; the time paused does not count against it. */
static void a_resume(struct sup *d, struct sup_service *s)
{
	double now = sam_now();
	sup_kill_group(s->pid, SIGCONT);
	if (s->paused_from == SUP_STARTING) {
		s->ready_deadline += now - s->paused_at;
		s->next_check = now;
	} else {
		s->health_fails = 0;
		s->next_check = now + s->health_interval;
	}
	sup_log(SAM_LOG_INFO, "%s: resumed (SIGCONT) after %.1f s: %.0f MB of memory available", s->name,
		now - s->paused_at, d->mem_mb);
	sam_event_publishp(SRC, SAM_EV_SERVICE_RESUMED, "{s:s, s:i, s:f}", "service", s->name, "pid", (int)s->pid,
			   "available_mb", d->mem_mb);
	set_state(d, s, s->paused_from);
}

/* ---- the table ------------------------------------------------------------------------- */

#define E(ev) [SUP_EV_##ev]
static const sup_action sup_table_fsm[SUP_NSTATES][SUP_NEVENTS] = {
	[SUP_STOPPED] = { E(START) = a_start, E(RESTART) = a_start },
	[SUP_WAITING] = { E(STOP) = a_hold, E(DEPS_OK) = a_try_start, E(DEP_FAILED) = a_dep_failed },
	[SUP_STARTING] = { E(STOP) = a_stop, E(RESTART) = a_restart, E(EXIT) = a_exit, E(READY) = a_ready,
			   E(READY_TIMEOUT) = a_ready_timeout, E(PAUSE) = a_pause },
	[SUP_READY] = { E(STOP) = a_stop, E(RESTART) = a_restart, E(EXIT) = a_exit, E(HEALTH_OK) = a_health_ok,
			E(HEALTH_FAIL) = a_health_fail, E(PAUSE) = a_pause },
	[SUP_BACKOFF] = { E(START) = a_try_start, E(STOP) = a_hold, E(RESTART) = a_try_start,
			  E(BACKOFF_DONE) = a_try_start },
	[SUP_PAUSED] = { E(STOP) = a_stop, E(RESTART) = a_restart, E(EXIT) = a_exit, E(RESUME) = a_resume },
	[SUP_STOPPING] = { E(START) = a_start_after_stop, E(STOP) = a_stop_again, E(RESTART) = a_start_after_stop,
			   E(EXIT) = a_exit_stopping, E(KILL_TIMEOUT) = a_kill },
	[SUP_FAILED] = { E(START) = a_start, E(STOP) = a_hold, E(RESTART) = a_start, E(DEPS_OK) = a_deps_back },
	[SUP_DONE] = { E(START) = a_start, E(STOP) = a_hold, E(RESTART) = a_start },
	[SUP_DISABLED] = { 0 },
};
#undef E

const char *sup_event_name(int event)
{
	static const char *const names[SUP_NEVENTS] = { "start", "stop", "restart", "deps-ok", "dep-failed",
							 "exit", "ready", "ready-timeout", "health-ok", "health-fail",
							 "backoff-done", "kill-timeout", "pause", "resume" };
	return event >= 0 && event < SUP_NEVENTS ? names[event] : "?";
}

void sup_dispatch(struct sup *d, struct sup_service *s, int event)
{
	if (event < 0 || event >= SUP_NEVENTS || s->state < 0 || s->state >= SUP_NSTATES)
		SAM_BUG("event %d in state %d", event, s->state);
	sup_action a = sup_table_fsm[s->state][event];
	if (!a) {
		sup_log(SAM_LOG_DEBUG, "%s: %s ignored while %s", s->name, sup_event_name(event),
			sup_state_name(s->state));
		return;
	}
	a(d, s);
}

void sup_settle(struct sup *d)
{
	if (d->shutting_down) return;
	for (int pass = 0; pass <= d->n; pass++) {
		bool changed = false;
		for (int k = 0; k < d->n; k++) {
			struct sup_service *s = &d->svc[d->order[k]];
			int before = s->state;
			bool can = sup_deps_ready(d, s) && (!d->class_paused[s->priority] || !s->pausable);
			if (s->state == SUP_WAITING) {
				if (failed_dep(d, s)) sup_dispatch(d, s, SUP_EV_DEP_FAILED);
				else if (can) sup_dispatch(d, s, SUP_EV_DEPS_OK);
			} else if (s->state == SUP_FAILED && s->dep_blocked && can) {
				sup_dispatch(d, s, SUP_EV_DEPS_OK);
			}
			changed |= s->state != before;
		}
		if (!changed) break;
	}
}

/* ---- activities and inputs of running services ------------------------------------------ */

void sup_check_due(struct sup *d, struct sup_service *s, double now)
{
	if (s->check.fd >= 0 || s->pid <= 0 || now < s->next_check) return;
	const struct sup_url *u;
	double timeout;
	if (s->state == SUP_STARTING && s->ready_kind == SUP_READY_HTTP) {
		u = &s->ready_url;
		timeout = 1.0;
	} else if (s->state == SUP_READY && s->has_health) {
		u = &s->health_url;
		timeout = s->health_timeout;
	} else {
		return;
	}
	int r = sup_http_start(&s->check, u, timeout, now);
	if (r != SUP_HTTP_PENDING) sup_check_done(d, s, r);
}

void sup_check_done(struct sup *d, struct sup_service *s, int result)
{
	double now = sam_now();
	bool ok = result >= 200 && result < 300;
	if (result > 0) snprintf(d->why, sizeof d->why, "HTTP %d", result);
	else snprintf(d->why, sizeof d->why, "%s", sup_http_strerror(result));
	if (s->state == SUP_STARTING) {
		if (ok) sup_dispatch(d, s, SUP_EV_READY);
		else s->next_check = now + SUP_READY_POLL;
	} else if (s->state == SUP_READY) {
		s->next_check = now + s->health_interval;
		sup_dispatch(d, s, ok ? SUP_EV_HEALTH_OK : SUP_EV_HEALTH_FAIL);
	}
}

static void flush_line(struct sup_service *s)
{
	if (!s->pend_len) return;
	sup_logfile_line(&s->log, s->pend, s->pend_len);
	s->pend_len = 0;
}

void sup_drain_output(struct sup_service *s)
{
	char buf[8192];
	size_t total = 0;
	while (s->out_fd >= 0 && total < 65536) { /* a chatty child cannot hold the loop */
		ssize_t r = read(s->out_fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
		if (r <= 0) {
			flush_line(s);
			close(s->out_fd);
			s->out_fd = -1;
			return;
		}
		total += (size_t)r;
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] == '\n') {
				if (!s->pend_len) sup_logfile_line(&s->log, "", 0);
				flush_line(s);
				continue;
			}
			if (s->pend_len == SUP_LINE_MAX) flush_line(s);
			s->pend[s->pend_len++] = buf[i];
		}
	}
}

void sup_notify_readable(struct sup *d, struct sup_service *s)
{
	char buf[64];
	ssize_t r = read(s->notify_fd, buf, sizeof buf);
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
	if (r > 0 && memchr(buf, '\n', (size_t)r)) {
		sup_dispatch(d, s, SUP_EV_READY);
		close_notify(s);
	} else if (r <= 0) {
		sup_log(SAM_LOG_WARN, "%s: closed its notify fd without a newline", s->name);
		close_notify(s); /* readiness can still time out */
	}
}

void sup_child_exited(struct sup *d, struct sup_service *s, int st)
{
	s->last_status = st;
	s->has_exited = true;
	s->last_pid = s->pid;
	s->pid = 0;
	sup_drain_output(s); /* what it wrote before it died */
	flush_line(s);
	if (s->out_fd >= 0) close(s->out_fd);
	s->out_fd = -1;
	close_notify(s);
	sup_http_cancel(&s->check);
	sup_remove_pidfile(d, s);
	char how[96], line[200];
	sup_describe_status(st, how, sizeof how);
	snprintf(line, sizeof line, "--- %s pid %ld exited: %s ---", s->name, (long)s->last_pid, how);
	sup_logfile_line(&s->log, line, strlen(line));
	sup_dispatch(d, s, SUP_EV_EXIT);
}
