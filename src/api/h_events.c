/*
 * h_events.c - GET /api/events: the events table as server-sent events.
 * Resumes after Last-Event-ID (or ?after=N); a client without either gets
 * only new events. Polls sam.db, so events published by any process while
 * the api was down are delivered too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "sam/db.h"
#include "sam/events.h"

#define POLL_MS 100
#define PING_S 15.0

struct ev_stream {
	struct api *a;
	int64_t last;
	char *out;
	size_t len, off;
	double last_write;
};

static void add(struct ev_stream *s, const char *text, size_t n)
{
	s->out = xrealloc(s->out, s->len + n + 1);
	memcpy(s->out + s->len, text, n);
	s->len += n;
}

static ssize_t ev_read(void *cls, char *buf, size_t max)
{
	struct ev_stream *s = cls;
	if (s->off == s->len) {
		s->off = s->len = 0;
		if (atomic_load(&s->a->stopping)) return -1;
		struct sam_db *db;
		struct sam_event *ev = NULL;
		size_t n = 0;
		struct sam_error err;
		if (sam_db_thread(&db, NULL, &err) == 0 && sam_events_since(db, s->last, 100, &ev, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++) {
				char head[256];
				int hl = snprintf(head, sizeof head, "id: %lld\nevent: %s\ndata: ", (long long)ev[i].seq, ev[i].type);
				add(s, head, (size_t)hl);
				add(s, ev[i].data, strlen(ev[i].data)); /* compact JSON: one line */
				add(s, "\n\n", 2);
				s->last = ev[i].seq;
			}
			sam_events_free(ev, n);
		}
		if (!s->len && sam_now() - s->last_write > PING_S) add(s, ": ping\n\n", 8); /* finds dead peers */
		if (!s->len) {
			usleep(POLL_MS * 1000);
			return 0;
		}
		s->last_write = sam_now();
	}
	size_t n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(buf, s->out + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void ev_done(void *cls, bool gone)
{
	(void)gone;
	struct ev_stream *s = cls;
	free(s->out);
	free(s);
}

void h_events(struct http_req *r, void *ud)
{
	struct api *a = ud;
	const char *from = http_header(r, "Last-Event-ID");
	if (!from) from = http_query(r, "after");
	int64_t last = -1;
	if (from) {
		char *end;
		long long v = strtoll(from, &end, 10);
		if (end == from || *end || v < 0) {
			http_error(r, 400, "Last-Event-ID must be a non-negative integer");
			return;
		}
		last = v;
	}
	struct sam_db *db;
	struct sam_error err;
	if (sam_db_thread(&db, NULL, &err)) {
		http_error(r, 503, "the event store is unavailable: %s", err.msg);
		return;
	}
	if (last < 0 && sam_events_last_seq(db, &last, &err)) {
		http_error(r, 503, "the event store is unavailable: %s", err.msg);
		return;
	}
	struct ev_stream *s = xcalloc(1, sizeof *s);
	s->a = a;
	s->last = last;
	s->last_write = sam_now();
	add(s, "retry: 2000\n\n", 13); /* clients reconnect after 2 s */
	http_respond_stream(r, 200, "text/event-stream", ev_read, s, ev_done);
}
