/*
 * sup_loop.c - the supervisor's one loop and its main().
 *
 * Every turn: build the poll set (self-pipe of signals, control socket and
 * its clients, each child's output pipe, notify fds while starting, HTTP
 * checks in flight), sleep in poll() until the earliest deadline (ready
 * poll, health check, restart, kill, memory poll, watchdog, client
 * timeout), then turn what happened into state-machine events:
 *
 *   signal pipe   SIGCHLD -> reap every exited child (EXIT); SIGTERM/SIGINT
 *                 -> shutdown (a second one: SIGKILL everything); SIGHUP ->
 *                 reopen logs
 *   control       a command line -> START/STOP/RESTART, status, shutdown
 *   child output  lines into logs/NAME.log
 *   notify fd     a newline -> READY
 *   HTTP check    2xx/other -> READY or retry, HEALTH_OK/HEALTH_FAIL
 *   deadlines     READY_TIMEOUT, BACKOFF_DONE, KILL_TIMEOUT, memory poll
 *                 (PAUSE/RESUME by priority with hysteresis), WATCHDOG=1
 *
 * and settle: waiting services whose dependencies became ready start,
 * those whose dependency failed fail. services.json is rewritten when
 * anything changed. Idle, the loop wakes once per memory poll (2 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/db.h"
#include "sam/fs.h"
#include "sam/resource.h"
#include "supervisor/sup.h"

#ifdef __linux__
#include <sys/prctl.h>
#endif

static volatile sig_atomic_t got_term, got_hup;
static int sig_wfd = -1;

static void on_signal(int sig)
{
	int e = errno;
	if (sig == SIGTERM || sig == SIGINT) got_term++;
	else if (sig == SIGHUP) got_hup = 1;
	char c = (char)sig;
	if (write(sig_wfd, &c, 1) < 0) { /* full pipe: a wake-up is pending anyway */
	}
	errno = e;
}

static int setup_signals(struct sup *d, struct sam_error *err)
{
	int p[2];
	if (pipe(p) || sup_fd_nonblock(p[0]) || sup_fd_nonblock(p[1]))
		return sam_errorf(err, SAM_EIO, "self-pipe: %s", strerror(errno));
	d->sig_r = p[0];
	d->sig_w = sig_wfd = p[1];
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP; /* our SIGSTOPs are not news */
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static struct sup_service *by_pid(struct sup *d, pid_t pid)
{
	for (int i = 0; i < d->n; i++)
		if (d->svc[i].pid == pid) return &d->svc[i];
	return NULL;
}

/* Reap every exited child. A service's group gets SIGKILL while its dead leader still pins the group id. */
static void reap(struct sup *d)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) break;
		pid_t pid = si.si_pid;
		struct sup_service *s = by_pid(d, pid);
		if (s) sup_kill_group(pid, SIGKILL); /* no orphans of a dead service */
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
		}
		if (s) sup_child_exited(d, s, st);
		else sup_log(SAM_LOG_DEBUG, "reaped pid %ld (not a service leader)", (long)pid);
	}
}

static void memory_poll(struct sup *d, double now)
{
	static bool warned;
	d->next_mem = now + d->set.mem_poll;
	double mb;
	struct sam_error err = { 0 };
	if (sam_mem_available_mb(&mb, &err)) {
		if (!warned) sup_log(SAM_LOG_WARN, "memory guard: %s (keeping the last state)", err.msg);
		warned = true;
		return;
	}
	warned = false;
	d->mem_mb = mb;
	int before = sup_guard_level(d);
	for (int p = SUP_HIGH; p <= SUP_BACKGROUND; p++) {
		double t = d->set.pause_mb[p];
		if (!d->class_paused[p] && mb < t) d->class_paused[p] = true;
		else if (d->class_paused[p] && mb >= t + d->set.hysteresis_mb) d->class_paused[p] = false;
	}
	int after = sup_guard_level(d);
	if (after != before) {
		sup_log(after < before ? SAM_LOG_WARN : SAM_LOG_INFO, "memory guard: %.0f MB available: level %s -> %s",
			mb, sam_level_name(before), sam_level_name(after));
		d->dirty = true;
	}
	/* pause from the lowest priority up, resume from the highest down; critical never pauses */
	for (int p = SUP_BACKGROUND; p >= SUP_HIGH; p--)
		for (int i = 0; i < d->n; i++) {
			struct sup_service *s = &d->svc[i];
			if (s->priority == p && d->class_paused[p] && s->pausable &&
			    (s->state == SUP_STARTING || s->state == SUP_READY))
				sup_dispatch(d, s, SUP_EV_PAUSE);
		}
	for (int p = SUP_HIGH; p <= SUP_BACKGROUND; p++)
		for (int i = 0; i < d->n; i++) {
			struct sup_service *s = &d->svc[i];
			if (s->priority == p && !d->class_paused[p] && s->state == SUP_PAUSED)
				sup_dispatch(d, s, SUP_EV_RESUME);
		}
}

/* One step of the shutdown: stop every service none of whose dependents still runs. */
static void shutdown_step(struct sup *d)
{
	bool any = false;
	for (int k = d->n - 1; k >= 0; k--) {
		struct sup_service *s = &d->svc[d->order[k]];
		if (s->state == SUP_WAITING || s->state == SUP_BACKOFF) sup_dispatch(d, s, SUP_EV_STOP);
		if (s->pid <= 0) continue;
		any = true;
		if (s->state == SUP_STOPPING) continue;
		bool dependents = false;
		for (int i = 0; i < d->n && !dependents; i++)
			for (int j = 0; j < d->svc[i].ndeps; j++)
				if (d->svc[i].pid > 0 && &d->svc[d->svc[i].deps[j]] == s) dependents = true;
		if (!dependents) sup_dispatch(d, s, SUP_EV_STOP);
	}
	if (!any) d->exit_now = true;
}

static void handle_signals(struct sup *d)
{
	char buf[64];
	while (read(d->sig_r, buf, sizeof buf) > 0) {
	}
	reap(d);
	if (got_hup) {
		got_hup = 0;
		sup_log(SAM_LOG_INFO, "SIGHUP: reopening log files (the service table is read at start only)");
		sup_logfile_reopen(&d->selflog);
		for (int i = 0; i < d->n; i++) sup_logfile_reopen(&d->svc[i].log);
	}
	/* the first SIGTERM/SIGINT shuts down; another one a second later (an impatient user) kills */
	static int seen;
	static double first_at;
	if (got_term != seen) {
		seen = got_term;
		if (!d->shutting_down) {
			sup_log(SAM_LOG_INFO, "signal: shutting down");
			d->shutting_down = true;
			first_at = sam_now();
		} else if (!first_at) {
			first_at = sam_now(); /* shutting down on request; this signal only starts the clock */
		} else if (sam_now() - first_at >= 1.0 && !d->escalated) {
			sup_log(SAM_LOG_WARN, "second signal: SIGKILL to every service");
			for (int i = 0; i < d->n; i++)
				if (d->svc[i].pid > 0) {
					sup_kill_group(d->svc[i].pid, SIGCONT);
					sup_kill_group(d->svc[i].pid, SIGKILL);
				}
			d->escalated = true;
		}
	}
}

enum { K_SIG, K_LISTEN, K_CLIENT, K_OUT, K_NOTIFY, K_CHECK };
#define MAX_POLL (2 + SUP_MAX_CLIENTS + 3 * SUP_MAX_SERVICES)

static double min_d(double a, double b)
{
	return b < a ? b : a;
}

/* The earliest deadline of anything. */
static double next_deadline(struct sup *d)
{
	double t = d->next_mem;
	if (d->watchdog_interval > 0) t = min_d(t, d->next_watchdog);
	for (int i = 0; i < SUP_MAX_CLIENTS; i++)
		if (d->clients[i].fd >= 0) t = min_d(t, d->clients[i].deadline);
	for (int i = 0; i < d->n; i++) {
		struct sup_service *s = &d->svc[i];
		if (s->check.fd >= 0) t = min_d(t, s->check.deadline);
		switch (s->state) {
		case SUP_STARTING:
			t = min_d(t, s->ready_deadline);
			if (s->ready_kind == SUP_READY_HTTP && s->check.fd < 0) t = min_d(t, s->next_check);
			break;
		case SUP_READY:
			if (s->has_health && s->check.fd < 0) t = min_d(t, s->next_check);
			break;
		case SUP_BACKOFF: t = min_d(t, s->backoff_until); break;
		case SUP_STOPPING: t = min_d(t, s->kill_at); break;
		default: break;
		}
	}
	return t;
}

static void run_timers(struct sup *d, double now)
{
	for (int i = 0; i < d->n; i++) {
		struct sup_service *s = &d->svc[i];
		if (s->check.fd >= 0) {
			int r = sup_http_step(&s->check, 0, now);
			if (r != SUP_HTTP_PENDING) sup_check_done(d, s, r);
		}
		if (s->state == SUP_STARTING && now >= s->ready_deadline) sup_dispatch(d, s, SUP_EV_READY_TIMEOUT);
		else if (s->state == SUP_BACKOFF && now >= s->backoff_until) sup_dispatch(d, s, SUP_EV_BACKOFF_DONE);
		else if (s->state == SUP_STOPPING && now >= s->kill_at) sup_dispatch(d, s, SUP_EV_KILL_TIMEOUT);
		sup_check_due(d, s, now);
	}
	for (int i = 0; i < SUP_MAX_CLIENTS; i++)
		if (d->clients[i].fd >= 0 && now >= d->clients[i].deadline) sup_ctl_close(&d->clients[i]);
	if (now >= d->next_mem) memory_poll(d, now);
	if (d->watchdog_interval > 0 && now >= d->next_watchdog) {
		sup_sd_notify(d, "WATCHDOG=1");
		d->next_watchdog = now + d->watchdog_interval;
	}
}

static int loop(struct sup *d)
{
	struct pollfd pfd[MAX_POLL];
	struct {
		int kind, idx;
		unsigned gen; /* K_CHECK: the check polled */
	} tag[MAX_POLL];
	bool announced = false;
	while (!d->exit_now) {
		int n = 0;
		pfd[n] = (struct pollfd){ d->sig_r, POLLIN, 0 };
		tag[n].idx = 0;
		tag[n++].kind = K_SIG;
		if (d->listen_fd >= 0) { /* still answered while shutting down (status, ping) */
			pfd[n] = (struct pollfd){ d->listen_fd, POLLIN, 0 };
			tag[n].idx = 0;
			tag[n++].kind = K_LISTEN;
		}
		for (int i = 0; i < SUP_MAX_CLIENTS; i++) {
			struct sup_client *c = &d->clients[i];
			if (c->fd < 0) continue;
			pfd[n] = (struct pollfd){ c->fd, (short)(c->out ? POLLOUT : POLLIN), 0 };
			tag[n].kind = K_CLIENT;
			tag[n++].idx = i;
		}
		for (int i = 0; i < d->n; i++) {
			struct sup_service *s = &d->svc[i];
			if (s->out_fd >= 0) {
				pfd[n] = (struct pollfd){ s->out_fd, POLLIN, 0 };
				tag[n].kind = K_OUT;
				tag[n++].idx = i;
			}
			if (s->notify_fd >= 0 && s->state == SUP_STARTING) {
				pfd[n] = (struct pollfd){ s->notify_fd, POLLIN, 0 };
				tag[n].kind = K_NOTIFY;
				tag[n++].idx = i;
			}
			if (s->check.fd >= 0) {
				pfd[n] = (struct pollfd){ s->check.fd, sup_http_events(&s->check), 0 };
				tag[n].gen = s->check.gen;
				tag[n].kind = K_CHECK;
				tag[n++].idx = i;
			}
		}
		double now = sam_now(), next = next_deadline(d);
		int ms = next <= now ? 0 : next - now > 60 ? 60000 : (int)ceil((next - now) * 1000);
		int r = poll(pfd, (nfds_t)n, ms);
		if (r < 0 && errno != EINTR) {
			sup_log(SAM_LOG_ERROR, "poll: %s", strerror(errno));
			return -1;
		}
		now = sam_now();
		for (int i = 0; r > 0 && i < n; i++) {
			if (!pfd[i].revents) continue;
			struct sup_service *s = tag[i].kind >= K_OUT ? &d->svc[tag[i].idx] : NULL;
			switch (tag[i].kind) {
			case K_SIG: handle_signals(d); break;
			case K_LISTEN: sup_ctl_accept(d); break;
			case K_CLIENT:
				if (d->clients[tag[i].idx].fd == pfd[i].fd)
					sup_ctl_io(d, &d->clients[tag[i].idx], pfd[i].revents, now);
				break;
			case K_OUT:
				if (s->out_fd == pfd[i].fd) sup_drain_output(s);
				break;
			case K_NOTIFY:
				if (s->notify_fd == pfd[i].fd && s->state == SUP_STARTING) sup_notify_readable(d, s);
				break;
			case K_CHECK:
				if (s->check.fd == pfd[i].fd && s->check.gen == tag[i].gen) {
					int res = sup_http_step(&s->check, pfd[i].revents, now);
					if (res != SUP_HTTP_PENDING) sup_check_done(d, s, res);
				}
				break;
			}
		}
		run_timers(d, sam_now());
		sup_settle(d);
		if (d->shutting_down) {
			if (!announced) {
				announced = true;
				sup_sd_notify(d, "STOPPING=1");
				sup_log(SAM_LOG_INFO, "stopping every service in reverse dependency order");
				d->dirty = true;
			}
			shutdown_step(d);
		}
		if (!d->settled && !d->shutting_down && sup_all_settled(d)) {
			d->settled = true;
			int ready = 0, failed = 0;
			for (int i = 0; i < d->n; i++) {
				ready += d->svc[i].state == SUP_READY;
				failed += d->svc[i].state == SUP_FAILED;
			}
			sup_log(SAM_LOG_INFO, "start-up settled: %d ready, %d failed", ready, failed);
			char msg[128];
			snprintf(msg, sizeof msg, "READY=1\nSTATUS=%d services ready, %d failed", ready, failed);
			sup_sd_notify(d, msg);
		}
		if (d->dirty) sup_write_services_json(d);
	}
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: sam supervise [--foreground]\n"
	      "\n"
	      "Run the supervisor for $SAM_HOME: start the services of the service table\n"
	      "(built-in defaults + [service.NAME] sections of $SAM_HOME/sam.conf) in\n"
	      "dependency order, restart them, pause them under memory pressure, and answer\n"
	      "on $SAM_HOME/run/samd.sock. It runs in the foreground of its own process\n"
	      "(`sam up` puts it in the background). See docs/supervisor.md.\n"
	      "\n"
	      "  -f, --foreground   log to stderr instead of $SAM_HOME/logs/supervisor.log\n",
	      f);
}

/* Keep 0, 1, 2 open so nothing we open lands on them. */
static void ensure_std_fds(void)
{
	for (;;) {
		int fd = open("/dev/null", O_RDWR);
		if (fd < 0) return;
		if (fd > 2) {
			close(fd);
			return;
		}
	}
}

static int write_samd_pid(const struct sup *d)
{
	char path[1200], text[32];
	snprintf(path, sizeof path, "%s/samd.pid", d->run_dir);
	int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	struct sam_error err;
	if (sam_write_file_atomic(path, text, (size_t)n, &err)) {
		sup_log(SAM_LOG_ERROR, "%s", err.msg);
		return -1;
	}
	return 0;
}

static void cleanup_files(struct sup *d)
{
	char path[1200];
	for (int i = 0; i < d->n; i++) sup_remove_pidfile(d, &d->svc[i]);
	snprintf(path, sizeof path, "%s/samd.pid", d->run_dir);
	unlink(path);
}

int sup_main(int argc, char **argv)
{
	bool fg = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f")) {
			fg = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "sam supervise: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	ensure_std_fds();
	struct sam_error err = { 0 };
	if (sam_home_init(&err)) {
		fprintf(stderr, "sam supervise: %s\n", err.msg);
		return 1;
	}
	struct sup *d = xcalloc(1, sizeof *d); /* ~0.6 MB, mostly unused service slots: left as untouched zero pages */
	sup_init(d);
	d->foreground = fg;
	sam_home_path(d->run_dir, sizeof d->run_dir, "run");
	sam_home_path(d->log_dir, sizeof d->log_dir, "logs");
	char dir[1024], sam_bin[1100];
	if (sup_self_dir(dir, sizeof dir, argv[0]) == 0) snprintf(sam_bin, sizeof sam_bin, "%s/sam", dir);
	else snprintf(sam_bin, sizeof sam_bin, "sam");

	int rc = 1;
	struct sam_conf conf;
	if (sam_conf_load(&conf, NULL, &err)) {
		fprintf(stderr, "sam supervise: %s\n", err.msg);
		goto out;
	}
	int trc = sup_table_load(d, &conf, sam_bin, &err);
	sam_conf_free(&conf);
	if (trc) {
		fprintf(stderr, "sam supervise: %s\n", err.msg);
		goto out;
	}
	if (sup_ctl_listen(d, &err)) {
		fprintf(stderr, "sam supervise: %s\n", err.msg);
		goto out_unlisten;
	}
	if (setup_signals(d, &err)) {
		fprintf(stderr, "sam supervise: %s\n", err.msg);
		goto out_unlisten;
	}
#ifdef __linux__
	prctl(PR_SET_CHILD_SUBREAPER, 1); /* grandchildren of services come back to us to be reaped */
#endif
	sup_sd_init(d);
	if (!fg) {
		char path[1200];
		snprintf(path, sizeof path, "%s/supervisor.log", d->log_dir);
		if (sup_logfile_open(&d->selflog, path, d->set.log_max, d->set.log_keep, STDERR_FILENO, &err)) {
			fprintf(stderr, "sam supervise: %s\n", err.msg);
			goto out_unlisten;
		}
		int nul = open("/dev/null", O_WRONLY);
		if (nul >= 0) {
			dup2(nul, STDOUT_FILENO);
			close(nul);
		}
		sup_log_to_file(&d->selflog);
	}
	if (write_samd_pid(d)) goto out_unlisten;
	d->started_wall = (double)time(NULL);
	d->started_mono = sam_now();
	int enabled = 0;
	for (int i = 0; i < d->n; i++) enabled += d->svc[i].enabled;
	sup_log(SAM_LOG_INFO, "sam-supervise %s started: SAM_HOME %s, %d services (%d enabled), sam %s", SAM_VERSION,
		sam_home(), d->n, enabled, d->sam_bin);
	for (int i = 0; i < d->n; i++) d->svc[i].since = d->started_wall;

	sup_replace_leftovers(d);
	double now = sam_now();
	memory_poll(d, now);
	d->next_watchdog = now;
	for (int k = 0; k < d->n; k++) {
		struct sup_service *s = &d->svc[d->order[k]];
		if (s->enabled && s->autostart && s->state == SUP_STOPPED) sup_dispatch(d, s, SUP_EV_START);
	}
	d->dirty = true;
	sup_write_services_json(d);
	rc = loop(d) ? 1 : 0;
	if (rc) { /* the loop broke: take everything down hard rather than leave orphans */
		for (int i = 0; i < d->n; i++)
			if (d->svc[i].pid > 0) {
				sup_kill_group(d->svc[i].pid, SIGCONT);
				sup_kill_group(d->svc[i].pid, SIGKILL);
			}
	}
	sup_write_services_json(d);
	sup_log(SAM_LOG_INFO, "sam-supervise stopped");
	cleanup_files(d);
out_unlisten:
	sup_ctl_unlisten(d);
out:
	sam_db_thread_release(); /* the connection events were published on */
	sup_log_to_file(NULL);
	sup_logfile_close(&d->selflog);
	if (d->sig_r >= 0) close(d->sig_r);
	if (d->sig_w >= 0) close(d->sig_w);
	sup_free(d);
	free(d);
	return rc;
}
