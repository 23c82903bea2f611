/*
 * test_api_events.c - GET /api/events on the real `sam api`: events that
 * another process publishes with the library arrive as SSE (id, event,
 * data), and Last-Event-ID resumes after a given sequence.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_helpers.h"
#include "sam/db.h"
#include "sam/events.h"
#include "test.h"

struct reader {
	struct api_server *s;
	const char *path;
	const char *headers[3];
	const char *until; /* stop reading once the body contains this */
	atomic_bool connected;
	struct api_resp r;
};

static bool reader_stop(const char *body, size_t len, void *cls)
{
	(void)len;
	struct reader *rd = cls;
	atomic_store(&rd->connected, true);
	return strstr(body, rd->until) != NULL;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	api_request_until(rd->s, "GET", rd->path, NULL, rd->headers, 10, reader_stop, rd, &rd->r);
	atomic_store(&rd->connected, true);
	return NULL;
}

static int64_t publish(const char *type, const char *data)
{
	struct sam_db *db;
	struct sam_error err;
	int64_t seq = -1;
	CHECKF(sam_db_thread(&db, NULL, &err) == 0, "sam_db_thread: %s", err.msg);
	CHECKF(sam_event_publish(db, "test", type, data, &seq, &err) == 0, "publish: %s", err.msg);
	return seq;
}

/* Read /api/events (with headers) until `until` shows up; returns the parsed events. */
static int read_events(struct api_server *s, const char *path, const char *last_id, const char *until,
		       struct sse_event **ev, void (*while_open)(void))
{
	struct reader rd = { .s = s, .path = path, .until = until };
	char h[64];
	if (last_id) {
		snprintf(h, sizeof h, "Last-Event-ID: %s", last_id);
		rd.headers[0] = h;
	}
	pthread_t t;
	CHECK(pthread_create(&t, NULL, reader_main, &rd) == 0);
	double t0 = now_s();
	while (!atomic_load(&rd.connected) && now_s() - t0 < 10) usleep(10000);
	if (while_open) while_open();
	pthread_join(t, NULL);
	CHECKF(rd.r.status == 200, "GET %s: status %ld (%s)", path, rd.r.status, rd.r.error);
	CHECKF(rd.r.aborted, "GET %s ended before \"%s\" arrived; got:\n%s", path, until, rd.r.body);
	char ct[64];
	CHECK(api_header(&rd.r, "Content-Type", ct, sizeof ct) && !strncmp(ct, "text/event-stream", 17));
	int n = sse_parse(rd.r.body, rd.r.len, ev);
	api_resp_free(&rd.r);
	return n;
}

static int64_t live_seq;

static void publish_live(void)
{
	usleep(100000);
	live_seq = publish("test.ping", "{\"n\": 1, \"what\": \"live\"}");
}

static const struct sse_event *find(const struct sse_event *ev, int n, const char *type, int64_t seq)
{
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)seq);
	for (int i = 0; i < n; i++)
		if (!strcmp(ev[i].event, type) && !strcmp(ev[i].id, id)) return &ev[i];
	return NULL;
}

TEST(api_events_stream_and_resume)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ "SAM_FAKE_MEMAVAILABLE_MB=8000", NULL });
	/* an event published while the stream is open arrives with id, event and data lines */
	struct sse_event *ev;
	int n = read_events(&s, "/api/events", NULL, "\"what\":\"live\"", &ev, publish_live);
	CHECK(live_seq > 0);
	const struct sse_event *e = find(ev, n, "test.ping", live_seq);
	CHECKF(e != NULL, "event %lld (test.ping) not in the stream", (long long)live_seq);
	CHECK_STR(e->data, "{\"n\":1,\"what\":\"live\"}");
	for (int i = 0; i < n; i++) CHECKF(atoll(ev[i].id) > 0 && ev[i].event[0], "event %d lacks id or type", i);
	/* without Last-Event-ID only events after the connection came: the api's own service.started is older */
	for (int i = 0; i < n; i++) CHECK(strcmp(ev[i].event, "service.started") != 0);
	sse_free(ev, n);

	/* published while nobody listens */
	int64_t a = publish("test.resume", "{\"n\":2}");
	int64_t b = publish("test.resume", "{\"n\":3}");
	int64_t c = publish("approval.pending", "{\"n\":4,\"text\":\"line\\nbreak\"}");
	CHECK(a < b && b < c);
	char last[32];
	snprintf(last, sizeof last, "%lld", (long long)a);
	n = read_events(&s, "/api/events", last, "\"n\":4", &ev, NULL);
	CHECK(find(ev, n, "test.resume", a) == NULL);
	CHECK(find(ev, n, "test.resume", b) != NULL);
	e = find(ev, n, "approval.pending", c);
	CHECK(e != NULL);
	CHECK_STR(e->data, "{\"n\":4,\"text\":\"line\\nbreak\"}"); /* one data line */
	for (int i = 0; i < n; i++) CHECKF(atoll(ev[i].id) > a, "event %s (%s) is not after %lld", ev[i].id, ev[i].event, (long long)a);
	for (int i = 1; i < n; i++) CHECK(atoll(ev[i].id) > atoll(ev[i - 1].id));
	sse_free(ev, n);

	/* ?after=N does the same */
	char path[80];
	snprintf(path, sizeof path, "/api/events?after=%lld", (long long)b);
	n = read_events(&s, path, NULL, "\"n\":4", &ev, NULL);
	CHECK(find(ev, n, "test.resume", b) == NULL);
	CHECK(find(ev, n, "approval.pending", c) != NULL);
	sse_free(ev, n);
	/* Last-Event-ID 0: everything, from the start (the api's own service.started included) */
	n = read_events(&s, "/api/events", "0", "\"n\":4", &ev, NULL);
	bool started = false;
	for (int i = 0; i < n; i++) started |= !strcmp(ev[i].event, "service.started");
	CHECK(started);
	CHECK(find(ev, n, "test.resume", a) != NULL);
	sse_free(ev, n);

	/* invalid ids */
	const char *bad[] = { "abc", "-5", "12x", "" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct api_resp r;
		char h[64];
		snprintf(h, sizeof h, "Last-Event-ID: %s", bad[i]);
		if (!*bad[i]) snprintf(h, sizeof h, "Last-Event-ID;"); /* curl's way to send an empty header */
		api_request(&s, "GET", "/api/events", NULL, (const char *[]){ h, NULL }, 5, &r);
		api_check_error(&r, 400, h);
		api_resp_free(&r);
	}
	struct api_resp r;
	api_get(&s, "/api/events?after=x", &r);
	api_check_error(&r, 400, "?after=x");
	api_resp_free(&r);
	sam_db_thread_release();
	api_stop(&s);
}

/*
 * Events outlive the api: what is published while it is down is in sam.db,
 * and a client that reconnects to the restarted api with the last id it saw
 * gets exactly the events it missed, each once, in order.
 */
TEST(api_events_survive_an_api_restart)
{
	struct api_server s;
	const char *env[] = { "SAM_FAKE_MEMAVAILABLE_MB=8000", NULL };
	api_start(&s, NULL, NULL, env);
	int64_t seen = publish("test.before", "{\"n\":1}");
	struct sse_event *ev;
	int n = read_events(&s, "/api/events", "0", "\"n\":1", &ev, NULL);
	CHECK(find(ev, n, "test.before", seen) != NULL);
	sse_free(ev, n);

	api_kill(&s);
	int64_t m1 = publish("test.missed", "{\"n\":2}");
	int64_t m2 = publish("test.missed", "{\"n\":3}");
	api_start(&s, NULL, NULL, env);
	int64_t m3 = publish("test.missed", "{\"n\":4}");

	char last[32];
	snprintf(last, sizeof last, "%lld", (long long)seen);
	n = read_events(&s, "/api/events", last, "\"n\":4", &ev, NULL);
	/* the expected list: every row after `seen` (the restarted api's own service.started among them) */
	struct sam_db *db;
	struct sam_error err;
	CHECK(sam_db_thread(&db, NULL, &err) == 0);
	struct sam_event *want;
	size_t nw;
	CHECK(sam_events_since(db, seen, 0, &want, &nw, &err) == 0);
	CHECKF((size_t)n == nw, "got %d events after %lld, the table has %zu", n, (long long)seen, nw);
	for (int i = 0; i < n; i++) {
		CHECKF(atoll(ev[i].id) == want[i].seq, "event %d: id %s, expected %lld", i, ev[i].id, (long long)want[i].seq);
		CHECK_STR(ev[i].event, want[i].type);
		CHECK_STR(ev[i].data, want[i].data);
	}
	CHECK(find(ev, n, "test.missed", m1) && find(ev, n, "test.missed", m2) && find(ev, n, "test.missed", m3));
	CHECK(find(ev, n, "test.before", seen) == NULL);
	sam_events_free(want, nw);
	sse_free(ev, n);
	sam_db_thread_release();
	api_stop(&s);
}
