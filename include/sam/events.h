/*
 * events.h - the event log: one table in sam.db that every process appends
 * to and the api streams as SSE (id: seq, event: type, data: JSON).
 *
 * Publishing is a single INSERT, so an event is durable even while the api
 * is down. seq increases strictly (AUTOINCREMENT: never reused, not even
 * after pruning), so "everything after seq N" is a complete resumption
 * (Last-Event-ID). Data is stored as compact JSON on one line, so it can go
 * into one SSE data: line as it is.
 */
#ifndef SAM_EVENTS_H
#define SAM_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/db.h"

#define SAM_EVENT_NAME_MAX 64           /* characters of a source or type */
#define SAM_EVENT_DATA_MAX (1u << 20)   /* bytes of JSON data */
#define SAM_EVENTS_BATCH_MAX 10000      /* events one sam_events_since() returns */

/* The types SAM publishes (SPEC.md section 5); others may be added, dotted. */
#define SAM_EV_SERVICE_STARTED "service.started"
#define SAM_EV_SERVICE_READY "service.ready"
#define SAM_EV_SERVICE_CRASHED "service.crashed"
#define SAM_EV_SERVICE_RESTARTED "service.restarted"
#define SAM_EV_SERVICE_PAUSED "service.paused"
#define SAM_EV_SERVICE_RESUMED "service.resumed"
#define SAM_EV_SERVICE_FAILED "service.failed"
#define SAM_EV_RESOURCE_LEVEL "resource.level"
#define SAM_EV_TRAIN_STARTED "train.started"
#define SAM_EV_TRAIN_FINISHED "train.finished"
#define SAM_EV_TRAIN_FAILED "train.failed"
#define SAM_EV_TRAIN_STOPPED "train.stopped"
#define SAM_EV_TRAIN_DEPLOYED "train.deployed"
#define SAM_EV_APPROVAL_PENDING "approval.pending"
#define SAM_EV_APPROVAL_DECIDED "approval.decided"
#define SAM_EV_APPROVAL_EXECUTED "approval.executed"
#define SAM_EV_INGEST_ERROR "ingest.error"

struct sam_event {
	int64_t seq;
	double time;                            /* wall clock, seconds since the epoch */
	char source[SAM_EVENT_NAME_MAX + 1];    /* who published it: "supervisor", "api", ... */
	char type[SAM_EVENT_NAME_MAX + 1];      /* "service.crashed", ... */
	char *data;                             /* compact JSON, malloc'd; freed by sam_events_free */
};

/* Whether type is dotted lowercase, [a-z0-9_]+(\.[a-z0-9_]+)+, at most 64 characters. */
bool sam_event_type_valid(const char *type);
/* Whether source is 1..64 characters of [A-Za-z0-9_.:-]. */
bool sam_event_source_valid(const char *source);

/*
 * Append one event. json_data (NULL: "{}") must be one JSON value of at
 * most SAM_EVENT_DATA_MAX bytes; it is stored re-encoded compactly.
 * SAM_EINVAL for a bad source, type or JSON. *seq_out (may be NULL) gets
 * the event's sequence number.
 */
int sam_event_publish(struct sam_db *db, const char *source, const char *type, const char *json_data,
		      int64_t *seq_out, struct sam_error *err);

/*
 * Conveniences for processes that hold no connection: publish on the
 * calling thread's connection to $SAM_HOME/sam.db (sam_db_thread()), log a
 * warning on failure and return its code.
 *  - publishf: data is printf(fmt, ...), which must give JSON; quoting the
 *    arguments is the caller's job, so prefer publishp for strings.
 *  - publishp: data is jansson's json_pack(fmt, ...), which quotes strings:
 *      sam_event_publishp("supervisor", SAM_EV_SERVICE_CRASHED,
 *                         "{s:s, s:i}", "service", name, "status", st);
 */
int sam_event_publishf(const char *source, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sam_event_publishp(const char *source, const char *type, const char *fmt, ...);

/*
 * service.started {"service", "pid", "port"} from a service that started
 * by itself; nothing under the supervisor ($SAM_SERVICE set), which
 * publishes the start, readiness and crashes of its children itself.
 */
void sam_event_service_started(const char *service, int port);

/*
 * Events with seq > after_seq, oldest first, at most limit of them (0 or
 * more than SAM_EVENTS_BATCH_MAX: SAM_EVENTS_BATCH_MAX). On success
 * *events (NULL when none) and *n are the caller's, freed with
 * sam_events_free(). Call again with the last seq to page on.
 */
int sam_events_since(struct sam_db *db, int64_t after_seq, size_t limit, struct sam_event **events, size_t *n,
		     struct sam_error *err);
void sam_events_free(struct sam_event *events, size_t n);

/* The highest seq ever published (0 if none), even if pruned since. */
int sam_events_last_seq(struct sam_db *db, int64_t *seq, struct sam_error *err);

/* Delete all but the newest keep_last_n events; *deleted (may be NULL) gets the count. */
int sam_events_prune(struct sam_db *db, size_t keep_last_n, int64_t *deleted, struct sam_error *err);

#endif
