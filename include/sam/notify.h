/*
 * notify.h - the notifier's library (`sam notify`, docs/notify.md): which
 * events notify (rules), what a notification says (format), how many go out
 * (limit: rate limit and de-duplication), how they reach the desktop
 * (backend: notify-send, osascript, a command or the log), where a restart
 * resumes (start), and the event stream itself (follow: /api/events with
 * reconnect, backoff and a fallback to reading sam.db).
 *
 * Every part but the backend and the follower is pure and takes the time as
 * an argument, so tests drive it with their own clock. Nothing here keeps a
 * reference to a caller's string after returning, except where it says so.
 */
#ifndef SAM_NOTIFY_H
#define SAM_NOTIFY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sam/config.h"
#include "sam/core.h"
#include "sam/db.h"
#include "sam/events.h"

#define SAM_NOTIFY_DEFAULT_PORT 8770

/* ---- rules: which event types notify ------------------------------------------------- */

#define SAM_NOTIFY_RULES_MAX 64

/*
 * What [notify] events says by default: the things a user must know about
 * (resource.level notifies only when memory becomes low or critical).
 */
#define SAM_NOTIFY_DEFAULT_EVENTS                                                                          \
	"service.crashed, service.failed, resource.level, train.finished, train.failed, approval.pending, " \
	"ingest.error"

struct sam_notify_rules {
	int n;
	bool exclude[SAM_NOTIFY_RULES_MAX];                   /* a "-pattern" */
	char pat[SAM_NOTIFY_RULES_MAX][SAM_EVENT_NAME_MAX + 1]; /* without the '-' */
};

/*
 * Parse a comma- or blank-separated list of patterns: an event type
 * ("service.crashed"), a prefix ("service.*": service.crashed, and
 * service.x.y too), "*" (every event), each optionally preceded by '-' to
 * exclude what it matches ("service.*, -service.ready"). "" or "none":
 * nothing notifies. SAM_EINVAL naming the bad pattern; SAM_ERANGE past
 * SAM_NOTIFY_RULES_MAX patterns.
 */
int sam_notify_rules_parse(struct sam_notify_rules *r, const char *list, struct sam_error *err);
/* Whether type matches an including pattern and no excluding one. */
bool sam_notify_rules_match(const struct sam_notify_rules *r, const char *type);

/* ---- format: an event as a notification ---------------------------------------------- */

#define SAM_NOTIFY_TITLE_MAX 128 /* bytes, with the NUL */
#define SAM_NOTIFY_BODY_MAX 512

enum sam_notify_urgency { SAM_NOTIFY_LOW, SAM_NOTIFY_NORMAL, SAM_NOTIFY_CRITICAL };

/* Text is valid UTF-8 without control characters, cut at a character boundary ("..."). */
struct sam_notification {
	char title[SAM_NOTIFY_TITLE_MAX];
	char body[SAM_NOTIFY_BODY_MAX];
	int urgency; /* enum sam_notify_urgency */
};

/*
 * Turn an event (its type and JSON data, data_len bytes, need not be NUL-
 * terminated) into out, in words a person understands: "SAM: voice crashed"
 * / "signal 9 (Killed); the supervisor restarts it.". Types SAM does not
 * know, and data that is not what the type promises, get a generic text
 * naming the type. Returns false when the event is not worth a notification
 * at all (resource.level back to ok or medium); out is then undefined.
 */
bool sam_notify_format(const char *type, const char *data, size_t data_len, struct sam_notification *out);

/* Fill out from printf(fmt...) pieces, cleaned as above. */
void sam_notification_set(struct sam_notification *out, int urgency, const char *title, const char *body_fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- limit: rate limit and de-duplication -------------------------------------------- */

#define SAM_NOTIFY_RATE_MAX 1000 /* notifications per window, at most */
#define SAM_NOTIFY_DEDUP_SLOTS 64 /* distinct notifications remembered for de-duplication */

enum sam_notify_verdict {
	SAM_NOTIFY_SEND,      /* show it */
	SAM_NOTIFY_DUPLICATE, /* the same title and body was shown less than dedup_window ago */
	SAM_NOTIFY_LIMITED,   /* over the rate: held back, counted for the summary */
};

/*
 * A sliding window of the last `rate` send times, and a small table of the
 * notifications shown in the last dedup_window seconds (by a 64-bit hash
 * of title and body; the oldest is forgotten when it is full). Fixed size:
 * it never grows, however long the notifier runs.
 */
struct sam_notify_limit {
	int rate;            /* at most this many notifications ... */
	double window;       /* ... per this many seconds */
	double dedup_window; /* seconds; 0: no de-duplication */
	/* counters since init */
	int64_t sent, duplicates, limited, summaries;
	/* private */
	double times[SAM_NOTIFY_RATE_MAX]; /* ring of send times */
	int head, count;
	int64_t held; /* limited since the last summary */
	struct {
		uint64_t key;
		double shown;    /* when it was last shown; 0: free slot */
		int64_t repeats; /* duplicates since */
	} seen[SAM_NOTIFY_DEDUP_SLOTS];
};

/* rate is clamped to 1..SAM_NOTIFY_RATE_MAX; window to > 0. */
void sam_notify_limit_init(struct sam_notify_limit *l, int rate, double window, double dedup_window);
/*
 * Decide about n at time now (seconds, any monotonic clock). A notification
 * shown again after its dedup window, whose duplicates were held back in
 * between, gets " (N more times since)" added to its body.
 */
enum sam_notify_verdict sam_notify_limit_offer(struct sam_notify_limit *l, struct sam_notification *n, double now);
/*
 * When notifications were held back and the window has room again: fill out
 * with ONE summary ("SAM: 95 more events" / "95 notifications were held
 * back ...") that counts as sent, and return true.
 */
bool sam_notify_limit_summary(struct sam_notify_limit *l, double now, struct sam_notification *out);
/* Seconds from now until sam_notify_limit_summary can say yes (0: now); -1 when nothing is held back. */
double sam_notify_limit_wait(const struct sam_notify_limit *l, double now);

/* ---- backend: how a notification reaches the user ------------------------------------ */

enum sam_notify_backend_kind {
	SAM_NOTIFY_BACKEND_AUTO, /* resolved by init: notify-send, osascript or log */
	SAM_NOTIFY_BACKEND_NOTIFY_SEND,
	SAM_NOTIFY_BACKEND_OSASCRIPT,
	SAM_NOTIFY_BACKEND_LOG,
	SAM_NOTIFY_BACKEND_COMMAND,
};

#define SAM_NOTIFY_QUEUE_MAX 32

/*
 * Deliveries are child processes run without a shell (posix_spawn), one at
 * a time in order; the rest wait in a bounded queue (full: the newest is
 * dropped and logged). A child that outlives timeout is killed (SIGKILL).
 * Nothing here blocks: the owner calls sam_notify_backend_poll() when a
 * child may have ended (SIGCHLD) and at the deadline it returns. One thread.
 */
struct sam_notify_backend {
	int kind;              /* enum sam_notify_backend_kind, never AUTO after init */
	char program[PATH_MAX]; /* what runs: notify-send / osascript / the command, absolute */
	double timeout;        /* seconds a delivery may take */
	/* counters since init */
	int64_t delivered, failed, dropped;
	/* private */
	struct sam_notification queue[SAM_NOTIFY_QUEUE_MAX];
	int qhead, qlen;
	pid_t child;
	double deadline;
	bool killed;
};

/*
 * Choose the backend: name is auto|notify-send|osascript|log|command (NULL:
 * auto). auto takes notify-send when it is on PATH and a desktop session is
 * there (DISPLAY, WAYLAND_DISPLAY or DBUS_SESSION_BUS_ADDRESS), osascript on
 * macOS, else the log. command must then be an absolute path to an
 * executable, run as `command TITLE BODY`. SAM_EINVAL / SAM_ENOTFOUND with a
 * sentence saying what to fix.
 */
int sam_notify_backend_init(struct sam_notify_backend *b, const char *name, const char *command, double timeout,
			    struct sam_error *err);
/* "notify-send", "osascript", "log" or "command". */
const char *sam_notify_backend_name(const struct sam_notify_backend *b);
/* Deliver n (copied): at once for the log backend, else queued and started when no child runs. */
void sam_notify_backend_send(struct sam_notify_backend *b, const struct sam_notification *n, double now);
/*
 * Reap a finished delivery (a non-zero exit is logged and counted as
 * failed), kill one past its deadline, start the next queued. Returns the
 * seconds until it must be called again at the latest, or -1 when nothing
 * runs.
 */
double sam_notify_backend_poll(struct sam_notify_backend *b, double now);
/* Deliveries queued or running. */
int sam_notify_backend_pending(const struct sam_notify_backend *b);
/* Kill and reap a running delivery; forget the queue. */
void sam_notify_backend_free(struct sam_notify_backend *b);

/* ---- configuration: [notify] in sam.conf --------------------------------------------- */

struct sam_notify_conf {
	struct sam_notify_rules rules; /* events */
	int rate;                      /* rate: notifications per rate_window (5) */
	double rate_window;            /* seconds (60) */
	double dedup_window;           /* seconds (300) */
	double max_age;                /* seconds (600): older events are skipped at start */
	double timeout;                /* seconds a delivery may take (10) */
	char backend[16];              /* auto */
	char command[PATH_MAX];        /* "" */
	bool db_fallback;              /* read sam.db while the api is unreachable (true) */
	long long port;                /* the health endpoint (8770) */
};

/* Read [notify] (c may be NULL: the defaults). Unknown keys and bad values are SAM_EINVAL naming them. */
int sam_notify_conf_load(struct sam_notify_conf *nc, const struct sam_conf *c, struct sam_error *err);

/* ---- start: where a (re)started notifier resumes -------------------------------------- */

/* The last handled seq saved in path ($SAM_HOME/run/notify.state); -1 when there is none or it is unreadable. */
int64_t sam_notify_state_load(const char *path);
/* Save seq to path atomically. */
int sam_notify_state_save(const char *path, int64_t seq, struct sam_error *err);

/*
 * The seq to resume after: saved (-1: never ran), moved past every event
 * older than max_age seconds before now (wall clock, seconds since the
 * epoch), so a notifier started after a long downtime does not flood the
 * desktop; a saved seq beyond the log's end (sam.db replaced) starts over.
 * *skipped (may be NULL) gets how many events were passed over.
 */
int sam_notify_start_seq(struct sam_db *db, int64_t saved, double max_age, double now, int64_t *after,
			 int64_t *skipped, struct sam_error *err);

/* ---- follow: the event stream ---------------------------------------------------------- */

struct sam_follow;

struct sam_follow_opts {
	int64_t after;       /* deliver events with seq > after; -1: only events newer than the start */
	bool db_fallback;    /* while the api cannot be reached, read new events from sam.db itself */
	double backoff_min;  /* seconds before the first reconnect (0.25) ... */
	double backoff_max;  /* ... doubling up to this (30); reset by a good connection */
	double idle_timeout; /* seconds of silence after which a connection is dead (45; the api pings every 15) */
};

struct sam_follow_stats {
	bool connected;   /* a stream from the api is open now */
	char url[512];    /* the api's address at the last attempt */
	int64_t last_seq; /* the last seq received (-1: none yet) */
	int64_t connects, failures, from_db;
	char last_error[512];
};

/*
 * Follow the events on a thread of its own: GET /api/events from the api
 * found by sam_service_url("api", ...) (looked up again before each
 * attempt, so a restarted api on another port is found through
 * services.json), with Last-Event-ID of the last event received, so nothing
 * is missed or repeated across reconnects. When the connection fails or
 * ends, it waits backoff_min, doubling up to backoff_max, and the wait
 * resets after a connection that opened. Events arrive in seq order through
 * sam_follow_next(); fd becomes readable when some wait. The queue is
 * bounded (the follower waits when it is full). Release with
 * sam_follow_stop(), which returns within ~0.25 s.
 */
int sam_follow_start(struct sam_follow **out, const struct sam_follow_opts *o, struct sam_error *err);
/* A descriptor that is readable while events wait (drain it with sam_follow_next until false). */
int sam_follow_fd(const struct sam_follow *f);
/* Take the oldest waiting event into ev (false: none). ev->data is the caller's: free() it. */
bool sam_follow_next(struct sam_follow *f, struct sam_event *ev);
void sam_follow_get_stats(struct sam_follow *f, struct sam_follow_stats *st);
/* Stop the thread, drop waiting events, free f. NULL is a no-op. */
void sam_follow_stop(struct sam_follow *f);

#endif
