/*
 * cmd_learn_watch.c - `sam learn watch`: the watcher service. One thread
 * turns the watch set's due files (watch.h) into examples and owns the
 * training trigger; the health server's threads only read a snapshot of
 * the counters under a mutex. Signals arrive on a signalfd polled with the
 * inotify descriptor, so SIGTERM ends even a long batch between two files.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/config.h"
#include "sam/db.h"
#include "sam/events.h"
#include "sam/fs.h"
#include "sam/http.h"
#include "sam/learn.h"
#include "sam/resource.h"
#include "sam/train.h"
#include "sam/watch.h"

#define WATCH_DEFAULT_PORT 8768
#define MAX_ROOTS 64

/* Counters since start: what /health reports. */
struct counts {
	int64_t ingested;   /* files read and recorded (ok, partial or error) */
	int64_t unchanged;  /* offered again but already ingested as they are */
	int64_t failed;     /* recorded with status error */
	int64_t vanished;   /* gone before they could be read */
	int64_t added, duplicates, rejected;
	int64_t batches;
};

struct watcher {
	struct sam_conf conf;
	struct sam_db *db;
	struct sam_watch *w;
	struct sam_resource res;
	struct sam_train_trigger trig;
	bool trigger_on;
	int chunk;
	double t_start;
	const char *roots[MAX_ROOTS];
	int n_roots;
	pthread_mutex_t mu; /* guards the snapshot below, read by the health threads */
	struct counts c;
	struct sam_watch_stats ws;
	char last_error[512];
	char train_last[256];
	int64_t train_started;
	bool train_running;
};

static void health(struct http_req *r, void *ud)
{
	struct watcher *wt = ud;
	pthread_mutex_lock(&wt->mu);
	json_t *roots = json_array();
	for (int i = 0; i < wt->n_roots; i++) json_array_append_new(roots, json_string(wt->roots[i]));
	json_t *j = json_pack(
		"{s:s, s:s, s:I, s:f, s:o, s:I, s:I, s:b,"
		" s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:s,"
		" s:{s:b, s:I, s:I, s:I, s:b, s:s}}",
		"status", "ok", "service", "learn-watch", "pid", (json_int_t)getpid(), "uptime_s",
		sam_now() - wt->t_start, "roots", roots, "dirs_watched", (json_int_t)wt->ws.dirs, "pending",
		(json_int_t)wt->ws.pending, "incomplete", wt->ws.incomplete,
		"files", "ingested", (json_int_t)wt->c.ingested, "unchanged", (json_int_t)wt->c.unchanged, "failed",
		(json_int_t)wt->c.failed, "vanished", (json_int_t)wt->c.vanished,
		"examples", "added", (json_int_t)wt->c.added, "duplicates", (json_int_t)wt->c.duplicates, "rejected",
		(json_int_t)wt->c.rejected,
		"batches", (json_int_t)wt->c.batches, "events", (json_int_t)wt->ws.events, "overflows",
		(json_int_t)wt->ws.overflows, "rescans", (json_int_t)wt->ws.rescans, "last_error", wt->last_error,
		"training", "trigger", wt->trigger_on, "min_new_examples", (json_int_t)wt->trig.min_new, "waiting",
		(json_int_t)wt->trig.waiting, "started", (json_int_t)wt->train_started, "running", wt->train_running, "last",
		wt->train_last);
	pthread_mutex_unlock(&wt->mu);
	http_respond_json(r, 200, j);
}

static bool gone(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) != 0 && errno == ENOENT;
}

/* Ingest one due file; returns the examples it added. */
static int64_t ingest(struct watcher *wt, const char *path)
{
	struct sam_ingest_result r;
	struct sam_error err = { 0 };
	int rc = sam_ingest_file(wt->db, path, wt->chunk, &r, &err);
	bool vanished = rc && !r.skipped && gone(path);
	pthread_mutex_lock(&wt->mu);
	if (r.skipped) {
		wt->c.unchanged++;
	} else if (vanished) {
		wt->c.vanished++; /* deleted or renamed while pending: its new name is queued on its own */
	} else {
		wt->c.ingested++;
		wt->c.added += r.added;
		wt->c.duplicates += r.duplicates;
		wt->c.rejected += r.bad;
		if (rc) {
			wt->c.failed++;
			snprintf(wt->last_error, sizeof wt->last_error, "%s", err.msg);
		} else if (r.bad) {
			snprintf(wt->last_error, sizeof wt->last_error, "%.200s: %.300s", path, r.errors);
		}
	}
	pthread_mutex_unlock(&wt->mu);
	if (r.skipped) sam_log(SAM_LOG_DEBUG, "learn watch: %s: unchanged", path);
	else if (vanished) sam_log(SAM_LOG_DEBUG, "learn watch: %s: gone before it was read", path);
	else if (rc) sam_log(SAM_LOG_WARN, "learn watch: %s", err.msg);
	else
		sam_log(r.bad ? SAM_LOG_WARN : SAM_LOG_INFO, "learn watch: %s: %lld new, %lld already known%s%s", path,
			(long long)r.added, (long long)r.duplicates, r.bad ? "; rejected: " : "", r.bad ? r.errors : "");
	return r.added;
}

static void training_snapshot(struct watcher *wt)
{
	pthread_mutex_lock(&wt->mu);
	snprintf(wt->train_last, sizeof wt->train_last, "%s", wt->trig.last);
	wt->train_started = wt->trig.started;
	wt->train_running = wt->trig.child != 0;
	pthread_mutex_unlock(&wt->mu);
}

static void check_training(struct watcher *wt)
{
	if (!wt->trigger_on) return;
	int level = sam_resource_poll(&wt->res, NULL);
	sam_train_trigger_check(&wt->trig, wt->db, level, sam_now());
	training_snapshot(wt);
}

/* Read pending signals; true when asked to stop. */
static bool signals(struct watcher *wt, int sfd)
{
	struct signalfd_siginfo si;
	bool stop = false;
	while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD) {
			sam_train_trigger_reap(&wt->trig);
			training_snapshot(wt);
		} else {
			stop = true;
		}
	}
	return stop;
}

static void snapshot(struct watcher *wt)
{
	pthread_mutex_lock(&wt->mu);
	sam_watch_stats(wt->w, &wt->ws);
	pthread_mutex_unlock(&wt->mu);
}

/* A watcher idles most of its life: hand back what a batch used (SQLite's page cache, freed heap). */
static void idle_trim(struct watcher *wt)
{
	sqlite3_db_release_memory(sam_db_handle(wt->db));
	malloc_trim(0);
}

static void run(struct watcher *wt, int sfd)
{
	int64_t batch_files = 0, batch_added = 0;
	double next_recheck = 0;
	for (;;) {
		double now = sam_now();
		double t = sam_watch_timeout(wt->w, now);
		/* Wake at least every few seconds: a trigger postponed for memory
		 * or the interval is looked at again. */
		int ms = t < 0 || t > 5 ? 5000 : (int)ceil(t * 1000);
		struct pollfd p[2] = { { .fd = sam_watch_fd(wt->w), .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, ms) < 0 && errno != EINTR) {
			sam_log(SAM_LOG_ERROR, "learn watch: poll: %s", strerror(errno));
			return;
		}
		if (signals(wt, sfd)) return;
		sam_watch_read(wt->w, sam_now());
		char path[PATH_MAX];
		while (sam_watch_next(wt->w, sam_now(), path, sizeof path)) {
			batch_added += ingest(wt, path);
			batch_files++;
			/* keep the kernel's queue drained during a long batch, and stay stoppable */
			sam_watch_read(wt->w, sam_now());
			if (signals(wt, sfd)) return;
			if ((batch_files & 63) == 0) snapshot(wt);
		}
		snapshot(wt);
		now = sam_now();
		if (batch_files && wt->ws.pending == 0) {
			/* a batch ends when nothing more is pending */
			pthread_mutex_lock(&wt->mu);
			wt->c.batches++;
			pthread_mutex_unlock(&wt->mu);
			if (batch_added)
				sam_event_publishp("learn-watch", "learn.ingested", "{s:I, s:I}", "files",
						   (json_int_t)batch_files, "examples", (json_int_t)batch_added);
			check_training(wt);
			batch_files = batch_added = 0;
			idle_trim(wt);
			next_recheck = now + 60;
		} else if (wt->trig.waiting >= wt->trig.min_new && now >= next_recheck) {
			check_training(wt); /* postponed earlier: memory, interval or a busy lock */
			next_recheck = now + 60;
		}
	}
}

/* The configured directories: [learn] watch_dirs, colon-separated. */
static int conf_roots(struct watcher *wt, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", sam_conf_str(&wt->conf, "learn", "watch_dirs", ""));
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (wt->n_roots == MAX_ROOTS) return -1;
		wt->roots[wt->n_roots++] = d;
	}
	return 0;
}

static int settings(struct watcher *wt, long long chunk_opt, double *debounce, double *rescan, struct sam_error *err)
{
	long long v, min_new;
	double interval;
	int rc;
	if ((rc = sam_conf_int(&wt->conf, "learn", "watch_debounce_ms", 1000, 0, 600000, &v, err))) return rc;
	*debounce = (double)v / 1000;
	if ((rc = sam_conf_int(&wt->conf, "learn", "watch_rescan_s", 300, 1, 86400, &v, err))) return rc;
	*rescan = (double)v;
	if ((rc = sam_conf_int(&wt->conf, "learn", "chunk_chars", SAM_LEARN_CHUNK_DEFAULT, 64, 1 << 20, &v, err)))
		return rc;
	wt->chunk = chunk_opt ? (int)chunk_opt : (int)v;
	if ((rc = sam_conf_bool(&wt->conf, "train", "auto", true, &wt->trigger_on, err)) ||
	    (rc = sam_conf_int(&wt->conf, "train", "min_new_examples", 200, 1, 1000000000, &min_new, err)) ||
	    (rc = sam_conf_float(&wt->conf, "train", "min_interval_s", 600, &interval, err)))
		return rc;
	wt->trig.min_new = min_new;
	wt->trig.interval_s = interval;
	return 0;
}

int learn_watch(const struct sam_cmd *cmd, int argc, char **argv)
{
	long long port = -1, chunk = 0;
	const char *port_file = NULL;
	static const struct option lo[] = { { "port", required_argument, NULL, 'p' },
					    { "port-file", required_argument, NULL, 'F' },
					    { "chunk-chars", required_argument, NULL, 'c' },
					    { 0 } };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_int(optarg, 0, 65535, &port)) return cli_usage_error(cmd, "--port: expected 0..65535");
			break;
		case 'F': port_file = optarg; break;
		case 'c':
			if (!cli_parse_int(optarg, 64, 1 << 20, &chunk))
				return cli_usage_error(cmd, "--chunk-chars: expected 64..1048576");
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind > MAX_ROOTS) return cli_usage_error(cmd, "at most %d directories", MAX_ROOTS);
	struct watcher wt = { .mu = PTHREAD_MUTEX_INITIALIZER };
	wt.t_start = sam_now();
	struct sam_error err = { 0 };
	char inbox[PATH_MAX], conf_dirs[8192];
	double debounce, rescan;
	int rc = 1, sfd = -1;
	struct http_server *http = NULL;
	if (sam_home_init(&err) || sam_conf_load(&wt.conf, NULL, &err) || settings(&wt, chunk, &debounce, &rescan, &err) ||
	    sam_resource_init(&wt.res, &wt.conf, &err)) {
		fprintf(stderr, "sam learn watch: %s\n", err.msg);
		sam_conf_free(&wt.conf);
		return 1;
	}
	if (optind < argc) {
		for (int i = optind; i < argc; i++) wt.roots[wt.n_roots++] = argv[i];
	} else {
		sam_home_path(inbox, sizeof inbox, "inbox");
		wt.roots[wt.n_roots++] = inbox;
		if (conf_roots(&wt, conf_dirs, sizeof conf_dirs)) {
			fprintf(stderr, "sam learn watch: [learn] watch_dirs: at most %d directories\n", MAX_ROOTS - 1);
			goto out;
		}
	}
	if (port < 0) {
		long long p;
		if (sam_conf_int(&wt.conf, "learn", "watch_port", WATCH_DEFAULT_PORT, 0, 65535, &p, &err)) {
			fprintf(stderr, "sam learn watch: %s\n", err.msg);
			goto out;
		}
		port = p;
	}

	sigset_t set;
	sam_service_signals(&set, SIGCHLD); /* SIGCHLD: our own `sam train` ended */
	if ((sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "sam learn watch: signalfd: %s\n", strerror(errno));
		goto out;
	}
	if (sam_db_open(&wt.db, NULL, &err) || sam_watch_open(&wt.w, debounce, rescan, &err)) {
		fprintf(stderr, "sam learn watch: %s\n", err.msg);
		goto out;
	}
	static const struct http_route routes[] = { { "GET", "/health", health }, { NULL, NULL, NULL } };
	if (http_start(&http, "127.0.0.1", (int)port, routes, &wt, NULL, &err)) {
		fprintf(stderr, "sam learn watch: %s\n", err.msg);
		goto out;
	}
	/* Health answers during the first scan, which may take a while on a big tree. */
	if (port_file && http_write_port_file(http, port_file, &err)) {
		fprintf(stderr, "sam learn watch: %s\n", err.msg);
		goto out;
	}
	for (int i = 0; i < wt.n_roots; i++) {
		if (sam_watch_add_root(wt.w, wt.roots[i], &err)) {
			fprintf(stderr, "sam learn watch: %s\n", err.msg);
			goto out;
		}
		sam_log(SAM_LOG_INFO, "learn watch: watching %s", wt.roots[i]);
	}
	snapshot(&wt);
	sam_log(SAM_LOG_INFO, "learn watch: health on http://127.0.0.1:%d/health", http_port(http));
	sam_event_service_started("learn-watch", http_port(http));
	run(&wt, sfd);
	sam_log(SAM_LOG_INFO, "learn watch: stopping");
	rc = 0;
out:
	http_stop(http);
	sam_watch_close(wt.w);
	sam_db_close(wt.db);
	sam_resource_free(&wt.res);
	sam_conf_free(&wt.conf);
	if (sfd >= 0) close(sfd);
	sam_db_thread_release();
	return rc;
}
