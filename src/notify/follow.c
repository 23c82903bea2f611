/*
 * follow.c - the event stream of the notifier (notify.h): one thread that
 * keeps GET /api/events open, reconnecting with backoff, and hands the
 * events to the owner through a bounded queue and a pipe it can poll.
 *
 * Resumption is by sequence number: every attempt sends Last-Event-ID of
 * the last event received, and anything at or below it is dropped, so a
 * reconnect neither misses nor repeats an event. While the api cannot be
 * reached, the same sequence is read from sam.db directly (db_fallback):
 * the events that matter most - the api itself crashing or failing - are
 * exactly the ones its stream cannot deliver.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sam/client.h"
#include "sam/notify.h"

#define QUEUE_CAP 256
#define DB_POLL_S 1.0 /* how often sam.db is read while the api is away */
/* The stream is silent most of the time: wake 4 times a second to look at the stop flag, not 20. */
#define CANCEL_POLL_MS 250

struct sam_follow {
	struct sam_follow_opts o;
	pthread_t thread;
	pthread_mutex_t mu; /* guards everything below but the reader's own fields */
	pthread_cond_t cond; /* queue has room, or stop */
	bool stop;
	volatile sig_atomic_t cancel; /* seen by the client's request loop every 50 ms */
	int pipe[2];
	struct sam_event q[QUEUE_CAP];
	size_t qhead, qlen;
	struct sam_follow_stats st;
	/* the reader thread's own */
	int64_t last;
	bool opened, complained, db_complained;
};

static bool stopping(struct sam_follow *f)
{
	pthread_mutex_lock(&f->mu);
	bool s = f->stop;
	pthread_mutex_unlock(&f->mu);
	return s;
}

/* Queue ev (its data is taken over), waiting while the queue is full; false when stopping. */
static bool push(struct sam_follow *f, struct sam_event *ev)
{
	pthread_mutex_lock(&f->mu);
	while (f->qlen == QUEUE_CAP && !f->stop) pthread_cond_wait(&f->cond, &f->mu);
	if (f->stop) {
		pthread_mutex_unlock(&f->mu);
		free(ev->data);
		ev->data = NULL;
		return false;
	}
	f->q[(f->qhead + f->qlen++) % QUEUE_CAP] = *ev;
	ev->data = NULL;
	if (ev->seq >= 0) f->st.last_seq = ev->seq;
	pthread_mutex_unlock(&f->mu);
	/* one byte is enough to wake the owner: a full pipe already says so */
	if (write(f->pipe[1], "e", 1) < 0 && errno != EAGAIN) sam_log(SAM_LOG_WARN, "notify: wake pipe: %s", strerror(errno));
	return true;
}

static void on_open(void *arg)
{
	struct sam_follow *f = arg;
	f->opened = true;
	pthread_mutex_lock(&f->mu);
	f->st.connected = true;
	f->st.connects++;
	pthread_mutex_unlock(&f->mu);
	sam_log(SAM_LOG_INFO, "notify: following the events at %s%s (after event %lld)", f->st.url,
		f->complained ? " again" : "", (long long)f->last);
	f->complained = false;
}

static int on_event(void *arg, const struct sam_sse_event *e)
{
	struct sam_follow *f = arg;
	char *end;
	errno = 0;
	long long seq = strtoll(e->id, &end, 10);
	if (!*e->id || *end || errno || seq < 0) seq = -1; /* the api always numbers them; a stranger may not */
	if (seq >= 0 && seq <= f->last) return 0;       /* had it already */
	struct sam_event ev = { .seq = seq };
	snprintf(ev.type, sizeof ev.type, "%s", e->event);
	snprintf(ev.source, sizeof ev.source, "api");
	ev.data = xmalloc(e->data_len + 1);
	memcpy(ev.data, e->data, e->data_len);
	ev.data[e->data_len] = 0;
	if (!push(f, &ev)) return 1;
	if (seq >= 0) f->last = seq;
	return 0;
}

/* The api is away: take what was published since the last event from sam.db. */
static void poll_db(struct sam_follow *f)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	int rc = sam_db_thread(&db, NULL, &err);
	if (!rc && f->last < 0) {
		int64_t last;
		if (!(rc = sam_events_last_seq(db, &last, &err))) f->last = last; /* only what comes from now on */
	}
	while (!rc && !stopping(f)) {
		struct sam_event *ev = NULL;
		size_t n = 0;
		if ((rc = sam_events_since(db, f->last, 100, &ev, &n, &err))) break;
		size_t i = 0;
		while (i < n && push(f, &ev[i])) f->last = ev[i++].seq;
		pthread_mutex_lock(&f->mu);
		f->st.from_db += (int64_t)i;
		pthread_mutex_unlock(&f->mu);
		sam_events_free(ev, n);
		if (n < 100) break;
	}
	if (rc && !f->db_complained) sam_log(SAM_LOG_WARN, "notify: cannot read the events from sam.db: %s", err.msg);
	f->db_complained = rc != 0;
}

/* Wait secs (or until stopped), reading sam.db meanwhile when the fallback is on. */
static void wait_backoff(struct sam_follow *f, double secs)
{
	double until = sam_now() + secs;
	for (;;) {
		if (f->o.db_fallback) poll_db(f);
		double left = until - sam_now();
		if (left <= 0) return;
		if (left > DB_POLL_S) left = DB_POLL_S;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		long long ns = ts.tv_nsec + (long long)(left * 1e9);
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_mutex_lock(&f->mu);
		if (!f->stop) pthread_cond_timedwait(&f->cond, &f->mu, &ts);
		bool s = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (s) return;
	}
}

/* One attempt: connect and read until the stream ends. Returns 0 or the error (in err). */
static int attempt(struct sam_follow *f, struct sam_error *err)
{
	struct sam_client c;
	int rc = sam_client_init(&c, NULL, err);
	if (rc) return rc;
	c.cancel = &f->cancel;
	c.connect_timeout_ms = 3000;
	c.poll_ms = CANCEL_POLL_MS;
	pthread_mutex_lock(&f->mu);
	snprintf(f->st.url, sizeof f->st.url, "%s", c.url);
	pthread_mutex_unlock(&f->mu);
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)f->last);
	struct sam_sse_get g = { .last_event_id = f->last >= 0 ? id : NULL, .idle_timeout_s = f->o.idle_timeout,
				 .on_open = on_open };
	f->opened = false;
	rc = sam_client_stream_get(&c, "/api/events", &g, on_event, f, err);
	sam_client_free(&c);
	return rc;
}

static void *follow_main(void *arg)
{
	struct sam_follow *f = arg;
	double backoff = f->o.backoff_min;
	while (!stopping(f)) {
		struct sam_error err = { 0 };
		int rc = attempt(f, &err);
		pthread_mutex_lock(&f->mu);
		f->st.connected = false;
		if (!f->opened) f->st.failures++;
		if (rc) snprintf(f->st.last_error, sizeof f->st.last_error, "%s", err.msg);
		pthread_mutex_unlock(&f->mu);
		if (stopping(f)) break;
		if (f->opened) {
			backoff = f->o.backoff_min;
			sam_log(SAM_LOG_INFO, "notify: the event stream ended (%s); reconnecting",
				rc ? err.msg : "closed by the api");
		} else if (!f->complained) {
			sam_log(SAM_LOG_WARN, "notify: cannot follow the events: %s; retrying every %g..%g s%s", err.msg,
				f->o.backoff_min, f->o.backoff_max, f->o.db_fallback ? ", reading sam.db meanwhile" : "");
			f->complained = true;
		}
		wait_backoff(f, backoff);
		if (!f->opened) backoff = backoff * 2 < f->o.backoff_max ? backoff * 2 : f->o.backoff_max;
	}
	sam_db_thread_release();
	return NULL;
}

int sam_follow_start(struct sam_follow **out, const struct sam_follow_opts *o, struct sam_error *err)
{
	struct sam_follow *f = xcalloc(1, sizeof *f);
	f->o = *o;
	if (!(f->o.backoff_min > 0)) f->o.backoff_min = 0.25;
	if (!(f->o.backoff_max >= f->o.backoff_min)) f->o.backoff_max = f->o.backoff_min > 30 ? f->o.backoff_min : 30;
	if (!(f->o.idle_timeout > 0)) f->o.idle_timeout = 45;
	f->last = o->after;
	f->st.last_seq = o->after;
	if (pipe(f->pipe)) {
		int e = errno;
		free(f);
		return sam_errorf(err, SAM_EIO, "pipe: %s", strerror(e));
	}
	for (int i = 0; i < 2; i++) {
		fcntl(f->pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(f->pipe[i], F_SETFD, FD_CLOEXEC);
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
	int rc = pthread_create(&f->thread, NULL, follow_main, f);
	if (rc) {
		close(f->pipe[0]);
		close(f->pipe[1]);
		pthread_mutex_destroy(&f->mu);
		pthread_cond_destroy(&f->cond);
		free(f);
		return sam_errorf(err, SAM_EIO, "cannot start the event thread: %s", strerror(rc));
	}
	*out = f;
	return 0;
}

int sam_follow_fd(const struct sam_follow *f)
{
	return f->pipe[0];
}

bool sam_follow_next(struct sam_follow *f, struct sam_event *ev)
{
	char buf[256];
	while (read(f->pipe[0], buf, sizeof buf) > 0) {
	}
	pthread_mutex_lock(&f->mu);
	bool any = f->qlen > 0;
	if (any) {
		*ev = f->q[f->qhead];
		f->qhead = (f->qhead + 1) % QUEUE_CAP;
		f->qlen--;
		pthread_cond_broadcast(&f->cond);
	}
	pthread_mutex_unlock(&f->mu);
	return any;
}

void sam_follow_get_stats(struct sam_follow *f, struct sam_follow_stats *st)
{
	pthread_mutex_lock(&f->mu);
	*st = f->st;
	pthread_mutex_unlock(&f->mu);
}

void sam_follow_stop(struct sam_follow *f)
{
	if (!f) return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	f->cancel = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	for (size_t i = 0; i < f->qlen; i++) free(f->q[(f->qhead + i) % QUEUE_CAP].data);
	close(f->pipe[0]);
	close(f->pipe[1]);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
	free(f);
}
