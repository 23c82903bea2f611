/*
 * cmd_learn_curriculum.c - `sam learn curriculum`: N self-practice streams,
 * each a thread with its own database connection and api client, that
 * claim curriculum tasks, ask the api (POST /api/query), grade the answers
 * and record them (curriculum.h), and a health server on 127.0.0.1.
 *
 * A stream's life: wait until its next_try; wait while memory is not OK
 * (self-practice is the first thing to give way); claim a task (or renew
 * the lease on the one it holds); ask; then
 *   - an answer: grade, record the attempt, next task after --interval;
 *   - the api unreachable, 502/503/504, 408 or 429: back off 1, 2, 4 ... s
 *     up to --backoff-max (+-10% jitter), keeping the task, with failures,
 *     next_try and the task saved in its curriculum_streams row;
 *   - another 4xx, or 500 (the api is up and failed this request: a
 *     question it always fails on must not hold the stream forever): a
 *     failed attempt (no answer), next task.
 * On SIGTERM/SIGINT the streams stop at once (sleeps wake, a request in
 * flight is cancelled) and save their rows; once all have stopped their
 * leases are released, so a restart resumes each stream's task. Exit 0;
 * 1 when it cannot start.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/client.h"
#include "sam/config.h"
#include "sam/curriculum.h"
#include "sam/db.h"
#include "sam/fs.h"
#include "sam/http.h"
#include "sam/resource.h"

#define CUR_DEFAULT_PORT 8769
#define CUR_SAMPLES_MAX 16
#define REQUEST_TIMEOUT_S 600 /* one answer; the api has its own, shorter, timeout */
#define RETRY_S 5             /* after a database error */
#define MEMORY_POLL_S 1       /* while memory is short */

enum state { ST_IDLE, ST_ASKING, ST_BACKOFF, ST_PAUSED };
static const char *const state_names[] = { "idle", "asking", "backoff", "paused" };

struct cur;

struct stream {
	struct cur *c;
	int id;
	pthread_t thread;
	bool started;
	struct sam_client cl;
	/* the thread's own */
	struct sam_curriculum_task task; /* id 0: none */
	struct sam_curriculum_stream row;
	unsigned seed;
	/* what /health shows, under c->mu */
	enum state state;
	int64_t shown_task;
	int shown_failures;
	double shown_next_try;
};

struct cur {
	int n_streams, samples, max_tokens;
	double interval, backoff_max, temperature, lease;
	double t_start;
	volatile sig_atomic_t stop; /* also the clients' cancel flag */
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* signalled on stop; streams nap on it */
	struct sam_resource res;
	struct stream *streams;
	/* /health's own connection: one for all requests rather than one per connection thread */
	pthread_mutex_t health_mu;
	struct sam_db *health_db;
	/* under mu */
	int api_reachable;          /* -1 not asked yet, 0 no, 1 yes */
	int64_t run_attempts, run_correct, run_examples;
};

/* Sleep up to secs; false when stopping. */
static bool nap(struct cur *c, double secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (secs > 0) {
		double whole = floor(secs);
		ts.tv_sec += (time_t)whole;
		ts.tv_nsec += (long)((secs - whole) * 1e9);
		if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mu);
	while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {
	}
	bool go = !c->stop;
	pthread_mutex_unlock(&c->mu);
	return go;
}

static void show(struct stream *s, enum state st)
{
	pthread_mutex_lock(&s->c->mu);
	s->state = st;
	s->shown_task = s->task.id;
	s->shown_failures = s->row.failures;
	s->shown_next_try = s->row.next_try;
	pthread_mutex_unlock(&s->c->mu);
}

/* ---- asking ------------------------------------------------------------------- */

enum outcome { ASK_OK, ASK_REJECTED, ASK_DOWN, ASK_STOPPED };

/* One answer to question: on ASK_OK *resp (caller decrefs) holds it as "response"; why says what went wrong. */
static enum outcome ask(struct stream *s, const char *question, json_t **resp, const char **answer, char *why,
			size_t cap)
{
	struct cur *c = s->c;
	struct sam_error err = { 0 };
	json_t *body = json_pack("{s:s, s:i, s:f}", "query", question, "max_tokens", c->max_tokens, "temperature",
				 c->temperature);
	*resp = NULL;
	int rc = sam_client_json(&s->cl, "/api/query", body, resp, &err);
	json_decref(body);
	if (!rc) {
		json_t *r = json_object_get(*resp, "response");
		if (json_is_string(r)) {
			*answer = json_string_value(r);
			return ASK_OK;
		}
		json_decref(*resp);
		*resp = NULL;
		snprintf(why, cap, "the api's answer has no \"response\" text");
		return ASK_REJECTED;
	}
	if (s->cl.cancelled) return ASK_STOPPED;
	snprintf(why, cap, "%s", err.msg);
	long st = s->cl.status;
	/* no answer, or one that says "later": the api (or the machine) is not ready for us */
	if (s->cl.unreachable || st == 0 || st > 500 || st == 408 || st == 429) return ASK_DOWN;
	return ASK_REJECTED;
}

static double backoff_delay(struct stream *s)
{
	double d = fmin(s->c->backoff_max, ldexp(1.0, s->row.failures - 1 < 60 ? s->row.failures - 1 : 60));
	return d * (0.9 + 0.2 * ((double)rand_r(&s->seed) / RAND_MAX));
}

static void set_reachable(struct cur *c, bool yes)
{
	pthread_mutex_lock(&c->mu);
	c->api_reachable = yes;
	pthread_mutex_unlock(&c->mu);
}

static void went_down(struct stream *s, struct sam_db *db, const char *why)
{
	s->row.failures++;
	double d = backoff_delay(s);
	s->row.next_try = sam_db_time() + d;
	s->row.task_id = s->task.id;
	sam_log(s->row.failures == 1 ? SAM_LOG_WARN : SAM_LOG_DEBUG,
		"learn curriculum: stream %d: %s; retrying task %lld in %.1f s (failure %d)", s->id, why,
		(long long)s->task.id, d, s->row.failures);
	struct sam_error err;
	if (sam_curriculum_stream_save(db, &s->row, &err))
		sam_log(SAM_LOG_ERROR, "learn curriculum: stream %d: %s", s->id, err.msg);
	show(s, ST_BACKOFF);
}

/* Ask for the stream's task (K samples without a reference), grade and record. */
static void attempt(struct stream *s, struct sam_db *db)
{
	struct cur *c = s->c;
	struct sam_curriculum_task *t = &s->task;
	int k = t->reference ? 1 : c->samples, n = 0;
	json_t *resp[CUR_SAMPLES_MAX] = { 0 };
	const char *answers[CUR_SAMPLES_MAX] = { 0 };
	char why[600] = "";
	enum outcome o = ASK_OK;
	while (n < k && (o = ask(s, t->question, &resp[n], &answers[n], why, sizeof why)) == ASK_OK) n++;
	if (o == ASK_STOPPED) goto out;
	set_reachable(c, o != ASK_DOWN);
	if (o == ASK_DOWN) {
		went_down(s, db, why);
		goto out;
	}
	if (s->row.failures)
		sam_log(SAM_LOG_INFO, "learn curriculum: stream %d: the api answers again after %d failures", s->id,
			s->row.failures);
	struct sam_grade g = { 0 };
	if (o == ASK_OK && t->reference) sam_grade_reference(answers[0], t->reference, &g);
	else if (o == ASK_OK) sam_grade_agreement(answers, k, &g);
	struct sam_curriculum_attempt a = { .stream = s->id, .task = t, .answer = o == ASK_OK ? answers[g.pick] : NULL,
					    .score = g.score, .correct = g.correct,
					    .next_try = sam_db_time() + c->interval };
	bool added = false;
	struct sam_error err;
	if (sam_curriculum_record(db, &a, &added, &err)) {
		sam_log(SAM_LOG_ERROR, "learn curriculum: stream %d: %s", s->id, err.msg);
		s->row.next_try = sam_db_time() + RETRY_S; /* the task stays ours: asked again then */
		show(s, ST_IDLE);
		goto out;
	}
	if (o == ASK_REJECTED)
		sam_log(SAM_LOG_WARN, "learn curriculum: stream %d: task %lld: the api refused it: %s", s->id,
			(long long)t->id, why);
	else
		sam_log(SAM_LOG_INFO, "learn curriculum: stream %d: task %lld (%s): %s, score %.2f%s", s->id,
			(long long)t->id, t->category, g.correct ? "correct" : "wrong", g.score,
			added ? ", new example" : "");
	pthread_mutex_lock(&c->mu);
	c->run_attempts++;
	c->run_correct += g.correct;
	c->run_examples += added;
	pthread_mutex_unlock(&c->mu);
	sam_curriculum_task_free(t);
	s->row = (struct sam_curriculum_stream){ .stream = s->id, .next_try = a.next_try };
	show(s, ST_IDLE);
out:
	for (int i = 0; i < k; i++) json_decref(resp[i]);
}

/* ---- streams ------------------------------------------------------------------ */

/* True when memory allows asking; otherwise shows "paused" and waits a while. */
static bool memory_ok(struct stream *s)
{
	struct cur *c = s->c;
	bool changed;
	int level = sam_resource_poll(&c->res, &changed);
	if (changed)
		sam_log(level < SAM_LEVEL_OK ? SAM_LOG_WARN : SAM_LOG_INFO,
			"learn curriculum: memory level is now %s%s", sam_level_name(level),
			level < SAM_LEVEL_OK ? ": pausing the streams" : ": resuming");
	if (level >= SAM_LEVEL_OK) return true;
	show(s, ST_PAUSED);
	nap(c, MEMORY_POLL_S);
	return false;
}

/* Make sure the stream holds a task: its own (lease renewed) or a new one. False: none now. */
static bool hold_task(struct stream *s, struct sam_db *db)
{
	struct cur *c = s->c;
	struct sam_error err;
	int rc;
	if (s->task.id) {
		if (!(rc = sam_curriculum_renew(db, s->id, s->task.id, c->lease, &err))) return true;
		sam_log(SAM_LOG_WARN, "learn curriculum: stream %d: %s", s->id, err.msg);
		if (rc != SAM_ENOTFOUND) goto retry;
		sam_curriculum_task_free(&s->task); /* someone else has it now: take another */
	}
	rc = sam_curriculum_claim(db, s->id, 0, c->lease, &s->task, &err);
	if (!rc) return true;
	if (rc == SAM_ENOTFOUND) {
		show(s, ST_IDLE);
		nap(c, fmax(c->interval, 1));
		return false;
	}
	sam_log(SAM_LOG_ERROR, "learn curriculum: stream %d: %s", s->id, err.msg);
retry:
	show(s, ST_IDLE);
	nap(c, RETRY_S);
	return false;
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	struct cur *c = s->c;
	struct sam_db *db = NULL;
	struct sam_error err;
	while (!c->stop) {
		if (!db && sam_db_thread(&db, NULL, &err)) {
			sam_log(SAM_LOG_ERROR, "learn curriculum: stream %d: %s", s->id, err.msg);
			db = NULL;
			nap(c, RETRY_S);
			continue;
		}
		double wait = s->row.next_try - sam_db_time();
		if (wait > 0) {
			show(s, s->row.failures ? ST_BACKOFF : ST_IDLE);
			nap(c, wait);
			continue;
		}
		if (!memory_ok(s) || !hold_task(s, db)) continue;
		show(s, ST_ASKING);
		attempt(s, db);
	}
	if (db && s->task.id) {
		/* the task stays in the row, so a restart resumes it; its lease is let go once all streams stopped */
		s->row.task_id = s->task.id;
		if (sam_curriculum_stream_save(db, &s->row, &err))
			sam_log(SAM_LOG_ERROR, "learn curriculum: stream %d: %s", s->id, err.msg);
	}
	sam_db_thread_release();
	return NULL;
}

/* Load stream s's row and take back its task, as it was when the last run stopped. */
static int stream_resume(struct cur *c, struct stream *s, struct sam_db *db, struct sam_error *err)
{
	int rc = sam_curriculum_stream_load(db, s->id, &s->row, err);
	if (rc) return rc;
	/* a clock that jumped, or a smaller --backoff-max than last time, must not stall the stream */
	s->row.next_try = fmin(s->row.next_try, sam_db_time() + fmax(c->interval, c->backoff_max));
	if (!s->row.task_id) return 0;
	rc = sam_curriculum_claim(db, s->id, s->row.task_id, c->lease, &s->task, err);
	if (rc == SAM_ENOTFOUND) {
		sam_log(SAM_LOG_INFO, "learn curriculum: stream %d: task %lld is held by someone else; taking another",
			s->id, (long long)s->row.task_id);
		s->row.task_id = 0;
		return 0;
	}
	if (!rc)
		sam_log(SAM_LOG_INFO, "learn curriculum: stream %d: resuming task %lld (%d failures so far)", s->id,
			(long long)s->task.id, s->row.failures);
	return rc;
}

/* ---- health ------------------------------------------------------------------- */

struct totals {
	json_t *cats;
	int64_t tasks, attempts, correct;
};

static void add_category(void *ctx, const char *category, int64_t tasks, int64_t attempts, int64_t correct)
{
	struct totals *t = ctx;
	t->tasks += tasks;
	t->attempts += attempts;
	t->correct += correct;
	double rate = attempts ? (double)correct / (double)attempts : 0.0;
	json_object_set_new(t->cats, category,
			    json_pack("{s:I, s:I, s:I, s:f}", "tasks", (json_int_t)tasks, "attempts",
				      (json_int_t)attempts, "correct", (json_int_t)correct, "rate", rate));
}

static void h_health(struct http_req *r, void *ud)
{
	struct cur *c = ud;
	struct sam_error err;
	struct totals t = { .cats = json_object() };
	pthread_mutex_lock(&c->health_mu);
	int rc = sam_curriculum_stats(c->health_db, add_category, &t, &err);
	pthread_mutex_unlock(&c->health_mu);
	if (rc) {
		json_decref(t.cats);
		http_error(r, 503, "the curriculum store is unavailable: %s", err.msg);
		return;
	}
	json_t *streams = json_array();
	double now = sam_db_time();
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < c->n_streams; i++) {
		struct stream *s = &c->streams[i];
		json_array_append_new(streams, json_pack("{s:i, s:s, s:o, s:i, s:f}", "id", s->id, "state",
							 state_names[s->state], "task_id",
							 s->shown_task ? json_integer(s->shown_task) : json_null(),
							 "failures", s->shown_failures, "next_try_in_s",
							 fmax(0, s->shown_next_try - now)));
	}
	json_t *reachable = c->api_reachable < 0 ? json_null() : json_boolean(c->api_reachable);
	json_t *run = json_pack("{s:I, s:I, s:I}", "attempts", (json_int_t)c->run_attempts, "correct",
				(json_int_t)c->run_correct, "examples_added", (json_int_t)c->run_examples);
	pthread_mutex_unlock(&c->mu);
	json_t *j = json_pack("{s:s, s:s, s:f, s:o, s:I, s:I, s:I, s:o, s:o, s:s, s:o}", "status", "ok", "service",
			      "learn-curriculum", "uptime_s", sam_now() - c->t_start, "streams", streams, "tasks",
			      (json_int_t)t.tasks, "attempts", (json_int_t)t.attempts, "correct", (json_int_t)t.correct,
			      "categories", t.cats, "api_reachable", reachable, "memory_level",
			      sam_level_name(sam_resource_level(&c->res)), "this_run", run);
	http_respond_json(r, 200, j);
}

static const struct http_route routes[] = {
	{ "GET", "/health", h_health },
	{ NULL, NULL, NULL },
};

/* ---- options ------------------------------------------------------------------ */

struct opts {
	long long streams, port, samples;
	double interval, backoff_max;
	const char *port_file, *file;
	char *file_conf; /* [learn] curriculum_file when no --file (owned) */
};

static int parse_opts(const struct sam_cmd *cmd, int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "streams", required_argument, NULL, 'n' },  { "port", required_argument, NULL, 'P' },
		{ "port-file", required_argument, NULL, 'F' }, { "file", required_argument, NULL, 'f' },
		{ "interval", required_argument, NULL, 'i' }, { "samples", required_argument, NULL, 'k' },
		{ "backoff-max", required_argument, NULL, 'b' }, { 0 },
	};
	*o = (struct opts){ .streams = -1, .port = -1, .samples = -1, .interval = -1, .backoff_max = -1 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!cli_parse_int(optarg, 1, 64, &o->streams))
				return cli_usage_error(cmd, "--streams: expected 1..64");
			break;
		case 'P':
			if (!cli_parse_int(optarg, 0, 65535, &o->port))
				return cli_usage_error(cmd, "--port: expected 0..65535");
			break;
		case 'k':
			if (!cli_parse_int(optarg, 2, CUR_SAMPLES_MAX, &o->samples))
				return cli_usage_error(cmd, "--samples: expected 2..%d", CUR_SAMPLES_MAX);
			break;
		case 'i':
			if (!cli_parse_float(optarg, 0, 86400, &o->interval))
				return cli_usage_error(cmd, "--interval: expected 0..86400 seconds");
			break;
		case 'b':
			if (!cli_parse_float(optarg, 1, 86400, &o->backoff_max))
				return cli_usage_error(cmd, "--backoff-max: expected 1..86400 seconds");
			break;
		case 'F': o->port_file = optarg; break;
		case 'f': o->file = optarg; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "learn curriculum: unexpected argument '%s'", argv[optind]);
	return 0;
}

/* A float of sam.conf's [learn] within [min, max]. */
static int conf_float(const struct sam_conf *conf, const char *key, double def, double min, double max, double *out,
		      struct sam_error *err)
{
	int rc = sam_conf_float(conf, "learn", key, def, out, err);
	if (!rc && !(*out >= min && *out <= max))
		rc = sam_errorf(err, SAM_EFORMAT, "learn.%s: expected %g..%g", key, min, max);
	return rc;
}

/* Options over sam.conf's [learn] curriculum_* keys over the defaults. */
static int configure(struct cur *c, struct opts *o, struct sam_error *err)
{
	struct sam_conf conf = { 0 };
	long long streams, port, samples, max_tokens;
	double interval, backoff_max, temperature;
	int rc;
	if ((rc = sam_conf_load(&conf, NULL, err)) ||
	    (rc = sam_conf_int(&conf, "learn", "curriculum_streams", 2, 1, 64, &streams, err)) ||
	    (rc = sam_conf_int(&conf, "learn", "curriculum_port", CUR_DEFAULT_PORT, 0, 65535, &port, err)) ||
	    (rc = sam_conf_int(&conf, "learn", "curriculum_samples", 3, 2, CUR_SAMPLES_MAX, &samples, err)) ||
	    (rc = sam_conf_int(&conf, "learn", "curriculum_max_tokens", 256, 1, 1 << 20, &max_tokens, err)) ||
	    (rc = conf_float(&conf, "curriculum_interval", 30, 0, 86400, &interval, err)) ||
	    (rc = conf_float(&conf, "curriculum_backoff_max", 300, 1, 86400, &backoff_max, err)) ||
	    (rc = conf_float(&conf, "curriculum_temperature", 0.7, 0.01, 2, &temperature, err)) ||
	    (rc = sam_resource_init(&c->res, &conf, err)))
		goto out;
	c->n_streams = (int)(o->streams > 0 ? o->streams : streams);
	o->port = o->port >= 0 ? o->port : port;
	c->samples = (int)(o->samples > 0 ? o->samples : samples);
	c->max_tokens = (int)max_tokens;
	c->interval = o->interval >= 0 ? o->interval : interval;
	c->backoff_max = o->backoff_max > 0 ? o->backoff_max : backoff_max;
	c->temperature = temperature;
	/* outlives a back-off and two slow answers, so a live stream never loses its task */
	c->lease = c->backoff_max + 2.0 * REQUEST_TIMEOUT_S;
	if (!o->file) {
		const char *f = sam_conf_str(&conf, "learn", "curriculum_file", "");
		if (*f) o->file = o->file_conf = xstrdup(f);
	}
out:
	sam_conf_free(&conf);
	return rc;
}

/* ---- main --------------------------------------------------------------------- */

static int seed(struct sam_db *db, const char *file, struct sam_error *err)
{
	int64_t added = 0, updated = 0, fa = 0, fu = 0;
	int rc = sam_curriculum_seed(db, sam_curriculum_builtin, sam_curriculum_builtin_len, "built-in curriculum",
				     &added, &updated, err);
	if (!rc && file) rc = sam_curriculum_seed_file(db, file, &fa, &fu, err);
	if (!rc && (added + fa || updated + fu))
		sam_log(SAM_LOG_INFO, "learn curriculum: %lld new tasks, %lld updated", (long long)(added + fa),
			(long long)(updated + fu));
	return rc;
}

int learn_curriculum(const struct sam_cmd *cmd, int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(cmd, argc, argv, &o);
	if (rc) return rc;

	/* signals are taken by sigwait below; every thread inherits the mask */
	sigset_t set;
	sam_service_signals(&set, 0);

	struct cur *c = xcalloc(1, sizeof *c);
	struct http_server *http = NULL;
	struct sam_db *db = NULL;
	struct sam_error err = { 0 };
	int status = 1;
	bool res_ok = false;
	c->t_start = sam_now();
	c->api_reachable = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->health_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);

	if (sam_home_init(&err) || configure(c, &o, &err)) goto fail;
	res_ok = true;
	c->streams = xcalloc((size_t)c->n_streams, sizeof *c->streams);
	if (sam_db_thread(&db, NULL, &err) || seed(db, o.file, &err) || sam_db_open(&c->health_db, NULL, &err))
		goto fail;
	for (int i = 0; i < c->n_streams; i++) {
		struct stream *s = &c->streams[i];
		*s = (struct stream){ .c = c, .id = i, .seed = (unsigned)(time(NULL) ^ getpid() ^ (i * 2654435761u)) };
		if (sam_client_init(&s->cl, NULL, &err)) goto fail;
		s->cl.cancel = &c->stop;
		s->cl.timeout_ms = REQUEST_TIMEOUT_S * 1000L;
		if (stream_resume(c, s, db, &err)) goto fail;
		show(s, s->row.failures ? ST_BACKOFF : ST_IDLE);
	}
	if (http_start(&http, "127.0.0.1", (int)o.port, routes, c, NULL, &err)) goto fail;
	if (o.port_file && http_write_port_file(http, o.port_file, &err)) goto fail;
	sam_log(SAM_LOG_INFO, "learn curriculum: %d streams asking %s; health on http://127.0.0.1:%d/health",
		c->n_streams, c->streams[0].cl.url, http_port(http));
	for (int i = 0; i < c->n_streams; i++) {
		struct stream *s = &c->streams[i];
		if (pthread_create(&s->thread, NULL, stream_main, s)) {
			sam_errorf(&err, SAM_EIO, "cannot start stream %d: %s", i, strerror(errno));
			goto fail;
		}
		s->started = true;
	}

	int sig = 0;
	sigwait(&set, &sig);
	sam_log(SAM_LOG_INFO, "learn curriculum: signal %d, stopping", sig);
	status = 0;
	goto out;
fail:
	fprintf(stderr, "sam learn curriculum: %s\n", err.msg);
out:
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; c->streams && i < c->n_streams; i++) {
		struct stream *s = &c->streams[i];
		if (s->started) pthread_join(s->thread, NULL);
		sam_client_free(&s->cl);
	}
	/* only now: a lease let go while another stream still ran could be claimed by it */
	for (int i = 0; c->streams && i < c->n_streams; i++) {
		struct stream *s = &c->streams[i];
		if (s->task.id && sam_curriculum_release(db, s->id, s->task.id, &err))
			sam_log(SAM_LOG_ERROR, "learn curriculum: stream %d: %s", s->id, err.msg);
		sam_curriculum_task_free(&s->task);
	}
	if (http) http_stop(http);
	sam_db_close(c->health_db);
	sam_db_thread_release();
	if (res_ok) sam_resource_free(&c->res);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->health_mu);
	free(c->streams);
	free(c);
	free(o.file_conf);
	return status;
}
