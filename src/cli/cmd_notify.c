/*
 * cmd_notify.c - `sam notify`: the notifier service (docs/notify.md).
 *
 * Three kinds of threads: the follower's (notify.h) reads the event stream;
 * the main thread owns the rules, the rate limit and the backend, in one
 * poll loop over a signal self-pipe and the follower's pipe, so SIGTERM ends
 * it at once even while the stream is silent; the health server's threads
 * only read a snapshot of the counters under a mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/config.h"
#include "sam/fs.h"
#include "sam/http.h"
#include "sam/notify.h"

#define SAVE_EVERY_S 1.0 /* the state file is rewritten at most this often (and at exit) */
#define DRAIN_S 0.3      /* at exit, deliveries under way get this long before they are killed */

struct notifier {
	struct sam_notify_conf nc;
	struct sam_notify_limit lim;
	struct sam_notify_backend be;
	struct sam_follow *fol;
	char state_path[PATH_MAX];
	int64_t handled, saved; /* the last seq handled / written to the state file */
	double save_due;        /* 0: nothing to write */
	int64_t received, matched;
	double t_start;
	pthread_mutex_t mu; /* guards snap */
	json_t *snap;       /* the counters for /health, rebuilt by the main thread */
};

static int sig_w = -1;

static void on_signal(int sig)
{
	int e = errno;
	char c = (char)sig;
	if (write(sig_w, &c, 1) < 0) {
	} /* full pipe: a wake-up is pending anyway */
	errno = e;
}

/* SIGTERM, SIGINT and SIGCHLD arrive as bytes on the returned pipe (read end). */
static int signal_pipe(struct sam_error *err)
{
	int p[2];
	if (pipe(p)) return sam_errorf(err, SAM_EIO, "pipe: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		fcntl(p[i], F_SETFL, O_NONBLOCK);
		fcntl(p[i], F_SETFD, FD_CLOEXEC);
	}
	sig_w = p[1];
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return p[0];
}

static void health(struct http_req *r, void *ud)
{
	struct notifier *n = ud;
	pthread_mutex_lock(&n->mu);
	json_t *j = json_deep_copy(n->snap);
	pthread_mutex_unlock(&n->mu);
	json_object_set_new(j, "uptime_s", json_real(sam_now() - n->t_start));
	http_respond_json(r, 200, j);
}

static void snapshot(struct notifier *n)
{
	struct sam_follow_stats fs;
	sam_follow_get_stats(n->fol, &fs);
	json_t *j = json_pack(
		"{s:s, s:s, s:I, s:s, s:s, s:b, s:I, s:{s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i},"
		" s:{s:i, s:f, s:f}, s:{s:I, s:I, s:I, s:s}}",
		"status", "ok", "service", "notifier", "pid", (json_int_t)getpid(), "backend",
		sam_notify_backend_name(&n->be), "api_url", fs.url, "connected", fs.connected, "last_seq",
		(json_int_t)n->handled, "events", "received", (json_int_t)n->received, "matched", (json_int_t)n->matched,
		"notifications", "sent", (json_int_t)n->lim.sent, "duplicates", (json_int_t)n->lim.duplicates,
		"suppressed", (json_int_t)n->lim.limited, "summaries", (json_int_t)n->lim.summaries, "delivered",
		(json_int_t)n->be.delivered, "failed", (json_int_t)n->be.failed, "dropped", (json_int_t)n->be.dropped,
		"pending", sam_notify_backend_pending(&n->be), "limit", "rate", n->lim.rate, "window_s", n->lim.window,
		"dedup_window_s", n->lim.dedup_window, "stream", "connects", (json_int_t)fs.connects, "failures",
		(json_int_t)fs.failures, "from_db", (json_int_t)fs.from_db, "last_error", fs.last_error);
	pthread_mutex_lock(&n->mu);
	json_decref(n->snap);
	n->snap = j;
	pthread_mutex_unlock(&n->mu);
}

static void deliver(struct notifier *n, const struct sam_notification *msg, double now)
{
	if (n->be.kind != SAM_NOTIFY_BACKEND_LOG) sam_log(SAM_LOG_INFO, "notify: %s: %s", msg->title, msg->body);
	sam_notify_backend_send(&n->be, msg, now);
}

static void handle(struct notifier *n, const struct sam_event *ev, double now)
{
	n->received++;
	if (ev->seq > n->handled) {
		n->handled = ev->seq;
		if (!n->save_due) n->save_due = now + SAVE_EVERY_S;
	}
	if (!sam_notify_rules_match(&n->nc.rules, ev->type)) return;
	struct sam_notification msg;
	if (!sam_notify_format(ev->type, ev->data, strlen(ev->data), &msg)) {
		sam_log(SAM_LOG_DEBUG, "notify: event %lld (%s) needs no notification", (long long)ev->seq, ev->type);
		return;
	}
	n->matched++;
	switch (sam_notify_limit_offer(&n->lim, &msg, now)) {
	case SAM_NOTIFY_SEND: deliver(n, &msg, now); break;
	case SAM_NOTIFY_DUPLICATE:
		sam_log(SAM_LOG_INFO, "notify: shown less than %g s ago, not again: %s: %s", n->lim.dedup_window,
			msg.title, msg.body);
		break;
	case SAM_NOTIFY_LIMITED:
		sam_log(SAM_LOG_WARN, "notify: held back (at most %d per %g s): %s: %s", n->lim.rate, n->lim.window,
			msg.title, msg.body);
		break;
	}
}

static void save_state(struct notifier *n)
{
	struct sam_error err = { 0 };
	n->save_due = 0;
	if (n->handled == n->saved) return;
	if (sam_notify_state_save(n->state_path, n->handled, &err))
		sam_log(SAM_LOG_WARN, "notify: %s (a restart may repeat a few notifications)", err.msg);
	else
		n->saved = n->handled;
}

/* Seconds until the loop must wake for a deadline, or -1. */
static double next_wake(double a, double b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static void run(struct notifier *n, int sig_r)
{
	bool stop = false;
	while (!stop) {
		double now = sam_now();
		struct sam_event ev;
		while (sam_follow_next(n->fol, &ev)) {
			handle(n, &ev, now);
			free(ev.data);
		}
		struct sam_notification sum;
		if (sam_notify_limit_summary(&n->lim, now, &sum)) deliver(n, &sum, now);
		double wake = sam_notify_backend_poll(&n->be, now);
		wake = next_wake(wake, sam_notify_limit_wait(&n->lim, now));
		if (n->save_due && now >= n->save_due) save_state(n);
		if (n->save_due) wake = next_wake(wake, n->save_due - now);
		snapshot(n);

		struct pollfd p[2] = { { .fd = sig_r, .events = POLLIN }, { .fd = sam_follow_fd(n->fol), .events = POLLIN } };
		int ms = wake < 0 ? -1 : (int)ceil(wake * 1000);
		if (poll(p, 2, ms) < 0 && errno != EINTR) {
			sam_log(SAM_LOG_ERROR, "notify: poll: %s", strerror(errno));
			return;
		}
		char sigs[64];
		ssize_t k;
		while ((k = read(sig_r, sigs, sizeof sigs)) > 0)
			for (ssize_t i = 0; i < k; i++) stop |= sigs[i] == SIGTERM || sigs[i] == SIGINT;
	}
}

/* The position to resume after: the state file, past events older than max_age. */
static int64_t start_position(struct notifier *n)
{
	int64_t saved = sam_notify_state_load(n->state_path), after = saved, skipped = 0;
	struct sam_db *db = NULL;
	struct sam_error err = { 0 };
	if (sam_db_open(&db, NULL, &err) ||
	    sam_notify_start_seq(db, saved, n->nc.max_age, sam_db_time(), &after, &skipped, &err)) {
		if (saved >= 0) sam_log(SAM_LOG_WARN, "notify: %s (resuming after event %lld)", err.msg, (long long)saved);
		else sam_log(SAM_LOG_WARN, "notify: %s (showing new events only)", err.msg);
		after = saved;
	} else if (skipped) {
		sam_log(SAM_LOG_INFO, "notify: skipped %lld events older than %g s", (long long)skipped, n->nc.max_age);
	}
	sam_db_close(db);
	return after;
}

int cmd_notify(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("notify");
	if (cli_wants_help(cmd, argc, argv)) return 0;
	long long port;
	const char *port_file;
	int usage = cli_service_args(cmd, argc, argv, &port, &port_file);
	if (usage) return usage;
	struct notifier n = { .mu = PTHREAD_MUTEX_INITIALIZER, .t_start = sam_now(), .handled = -1, .saved = -1 };
	struct sam_conf conf = { 0 };
	struct sam_error err = { 0 };
	struct http_server *http = NULL;
	int rc = 1, sig_r = -1;
	if (sam_home_init(&err) || sam_conf_load(&conf, NULL, &err) || sam_notify_conf_load(&n.nc, &conf, &err) ||
	    sam_notify_backend_init(&n.be, n.nc.backend, n.nc.command, n.nc.timeout, &err) ||
	    sam_home_path(n.state_path, sizeof n.state_path, "run/notify.state") ||
	    (sig_r = signal_pipe(&err)) < 0) {
		fprintf(stderr, "sam notify: %s\n", err.msg[0] ? err.msg : "SAM_HOME is too long");
		goto out;
	}
	if (port < 0) port = n.nc.port;
	sam_notify_limit_init(&n.lim, n.nc.rate, n.nc.rate_window, n.nc.dedup_window);
	n.handled = n.saved = start_position(&n);
	struct sam_follow_opts fo = { .after = n.handled, .db_fallback = n.nc.db_fallback };
	if (sam_follow_start(&n.fol, &fo, &err)) {
		fprintf(stderr, "sam notify: %s\n", err.msg);
		goto out;
	}
	snapshot(&n);
	static const struct http_route routes[] = { { "GET", "/health", health }, { NULL, NULL, NULL } };
	if (http_start(&http, "127.0.0.1", (int)port, routes, &n, NULL, &err) ||
	    (port_file && http_write_port_file(http, port_file, &err))) {
		fprintf(stderr, "sam notify: %s\n", err.msg);
		goto out;
	}
	sam_log(SAM_LOG_INFO, "notify: health on http://127.0.0.1:%d/health; notifications by %s%s%s; resuming after event %lld",
		http_port(http), sam_notify_backend_name(&n.be), n.be.program[0] ? " " : "", n.be.program,
		(long long)n.handled);
	run(&n, sig_r);
	sam_log(SAM_LOG_INFO, "notify: stopping");
	rc = 0;
out:
	http_stop(http);
	sam_follow_stop(n.fol);
	/* deliveries under way usually end in milliseconds; do not hold up a stop for a stuck one */
	for (double until = sam_now() + DRAIN_S; sam_notify_backend_pending(&n.be) && sam_now() < until;) {
		sam_notify_backend_poll(&n.be, sam_now());
		usleep(10000);
	}
	sam_notify_backend_free(&n.be);
	if (n.handled != n.saved) save_state(&n);
	json_decref(n.snap);
	sam_conf_free(&conf);
	if (sig_r >= 0) {
		close(sig_r);
		close(sig_w);
	}
	return rc;
}
