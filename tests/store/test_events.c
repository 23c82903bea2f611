/* test_events.c - the event log: publish, since (Last-Event-ID), last_seq, prune, validation. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/db.h"
#include "sam/events.h"
#include "test.h"

static struct sam_db *open_home_db(void)
{
	char home[512];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	setenv("SAM_HOME", home, 1);
	struct sam_db *db;
	struct sam_error err = { 0 };
	int rc = sam_db_open(&db, NULL, &err);
	CHECKF(rc == 0, "sam_db_open: %s", err.msg);
	return db;
}

TEST(events_publish_and_read_back)
{
	struct sam_db *db = open_home_db();
	struct sam_error err;
	int64_t seq, last;
	CHECK(sam_events_last_seq(db, &last, &err) == 0);
	CHECK_INT(last, 0);
	struct sam_event *ev;
	size_t n;
	CHECK(sam_events_since(db, 0, 10, &ev, &n, &err) == 0);
	CHECK(n == 0 && ev == NULL);

	CHECK(sam_event_publish(db, "supervisor", SAM_EV_SERVICE_STARTED, "{\"service\": \"api\", \"pid\": 42}", &seq,
				&err) == 0);
	CHECK_INT(seq, 1);
	CHECK(sam_event_publish(db, "api", SAM_EV_RESOURCE_LEVEL, NULL, &seq, &err) == 0);
	CHECK_INT(seq, 2);
	/* stored compactly, on one line, whatever the input's layout */
	CHECK(sam_event_publish(db, "learn", "train.finished", "{\n  \"run\" : \"r1\",\n  \"loss\": [1, 2.5]\n}\n",
				NULL, &err) == 0);
	CHECK(sam_event_publish(db, "x", "a.b.c_d.e9", "\"just a string\"", NULL, &err) == 0);
	CHECK(sam_event_publish(db, "x", "a.b", "[]", NULL, &err) == 0);
	CHECK(sam_events_last_seq(db, &last, &err) == 0);
	CHECK_INT(last, 5);

	double before = sam_db_time();
	CHECK(sam_events_since(db, 0, 0, &ev, &n, &err) == 0);
	CHECK_INT(n, 5);
	CHECK_INT(ev[0].seq, 1);
	CHECK_STR(ev[0].source, "supervisor");
	CHECK_STR(ev[0].type, "service.started");
	CHECK_STR(ev[0].data, "{\"service\":\"api\",\"pid\":42}");
	CHECK(ev[0].time > 1.6e9 && ev[0].time <= before);
	CHECK_STR(ev[1].data, "{}");
	CHECK_STR(ev[2].data, "{\"run\":\"r1\",\"loss\":[1,2.5]}");
	CHECK_STR(ev[3].data, "\"just a string\"");
	CHECK_STR(ev[4].data, "[]");
	for (size_t i = 1; i < n; i++) CHECK(ev[i].seq == ev[i - 1].seq + 1 && ev[i].time >= ev[i - 1].time);
	sam_events_free(ev, n);
	sam_db_close(db);
}

TEST(events_invalid_types_sources_and_json_rejected)
{
	struct sam_db *db = open_home_db();
	struct sam_error err;
	static const char *bad_types[] = {
		"service", "Service.started", "service.", ".service", "a..b", "a.b-c", "a.b c", "a/b", "",
		"service.STARTED", "a.\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
		CHECKF(sam_event_publish(db, "t", bad_types[i], NULL, NULL, &err) == SAM_EINVAL, "accepted type %s",
		       bad_types[i]);
		CHECK(!sam_event_type_valid(bad_types[i]));
	}
	CHECK_INT(sam_event_publish(db, "t", NULL, NULL, NULL, &err), SAM_EINVAL);
	char longest[SAM_EVENT_NAME_MAX + 2];
	memset(longest, 'b', sizeof longest);
	longest[1] = '.';
	longest[SAM_EVENT_NAME_MAX] = 0;
	CHECK(sam_event_type_valid(longest));
	CHECK(sam_event_publish(db, "t", longest, NULL, NULL, &err) == 0);
	longest[SAM_EVENT_NAME_MAX] = 'b';
	longest[SAM_EVENT_NAME_MAX + 1] = 0;
	CHECK(!sam_event_type_valid(longest));
	CHECK_INT(sam_event_publish(db, "t", longest, NULL, NULL, &err), SAM_EINVAL);
	static const char *bad_json[] = { "", "{", "{\"a\":}", "nope", "{\"a\":1} x", "{'a':1}", "[1,]",
					  "\"\xff\"", "{\"a\":\"\\u0000\"}" };
	for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
		CHECKF(sam_event_publish(db, "t", "a.b", bad_json[i], NULL, &err) == SAM_EINVAL, "accepted json %s",
		       bad_json[i]);
	CHECKF(strstr(err.msg, "JSON"), "message: %s", err.msg);
	static const char *bad_sources[] = { "", "a b", "a\nb", "quote\"" };
	for (size_t i = 0; i < sizeof bad_sources / sizeof bad_sources[0]; i++)
		CHECK_INT(sam_event_publish(db, bad_sources[i], "a.b", NULL, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_event_publish(db, NULL, "a.b", NULL, NULL, &err), SAM_EINVAL);
	/* data is capped */
	char *big = malloc(SAM_EVENT_DATA_MAX + 16);
	big[0] = '"';
	memset(big + 1, 'x', SAM_EVENT_DATA_MAX);
	strcpy(big + 1 + SAM_EVENT_DATA_MAX, "\"");
	CHECK_INT(sam_event_publish(db, "t", "a.b", big, NULL, &err), SAM_EINVAL);
	free(big);
	/* nothing but the longest valid type got in */
	int64_t last;
	CHECK(sam_events_last_seq(db, &last, &err) == 0);
	CHECK_INT(last, 1);
	sam_db_close(db);
}

TEST(events_since_resumes_like_last_event_id)
{
	struct sam_db *db = open_home_db();
	struct sam_error err;
	for (int i = 1; i <= 25; i++) {
		char json[32];
		snprintf(json, sizeof json, "{\"i\":%d}", i);
		CHECK(sam_event_publish(db, "t", i % 2 ? "test.odd" : "test.even", json, NULL, &err) == 0);
	}
	struct sam_event *ev;
	size_t n;
	/* a client that saw id 10 gets exactly 11..25 */
	CHECK(sam_events_since(db, 10, 100, &ev, &n, &err) == 0);
	CHECK_INT(n, 15);
	for (size_t i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof want, "{\"i\":%d}", (int)i + 11);
		CHECK_INT(ev[i].seq, (int64_t)i + 11);
		CHECK_STR(ev[i].data, want);
	}
	sam_events_free(ev, n);
	/* paging with a limit visits every event once */
	int64_t after = 0, seen = 0;
	for (;;) {
		CHECK(sam_events_since(db, after, 7, &ev, &n, &err) == 0);
		if (n == 0) break;
		CHECK(n <= 7);
		for (size_t i = 0; i < n; i++) CHECK_INT(ev[i].seq, after + (int64_t)i + 1);
		seen += (int64_t)n;
		after = ev[n - 1].seq;
		sam_events_free(ev, n);
	}
	CHECK_INT(seen, 25);
	/* caught up: nothing new; then one more arrives */
	CHECK(sam_events_since(db, 25, 100, &ev, &n, &err) == 0);
	CHECK_INT(n, 0);
	CHECK(sam_events_since(db, 1000, 100, &ev, &n, &err) == 0);
	CHECK_INT(n, 0);
	int64_t seq;
	CHECK(sam_event_publish(db, "t", "test.late", NULL, &seq, &err) == 0);
	CHECK_INT(seq, 26);
	CHECK(sam_events_since(db, 25, 100, &ev, &n, &err) == 0);
	CHECK(n == 1 && ev[0].seq == 26);
	CHECK_STR(ev[0].type, "test.late");
	sam_events_free(ev, n);
	sam_db_close(db);
}

TEST(events_prune_keeps_newest_and_never_reuses_seq)
{
	struct sam_db *db = open_home_db();
	struct sam_error err;
	for (int i = 0; i < 20; i++) CHECK(sam_event_publish(db, "t", "test.e", NULL, NULL, &err) == 0);
	int64_t deleted, last;
	CHECK(sam_events_prune(db, 100, &deleted, &err) == 0);
	CHECK_INT(deleted, 0);
	CHECK(sam_events_prune(db, 5, &deleted, &err) == 0);
	CHECK_INT(deleted, 15);
	struct sam_event *ev;
	size_t n;
	CHECK(sam_events_since(db, 0, 0, &ev, &n, &err) == 0);
	CHECK_INT(n, 5);
	CHECK_INT(ev[0].seq, 16);
	CHECK_INT(ev[4].seq, 20);
	sam_events_free(ev, n);
	CHECK(sam_events_prune(db, 5, &deleted, &err) == 0);
	CHECK_INT(deleted, 0);
	CHECK(sam_events_prune(db, 0, &deleted, &err) == 0);
	CHECK_INT(deleted, 5);
	CHECK(sam_events_last_seq(db, &last, &err) == 0);
	CHECK_INT(last, 20);
	int64_t seq;
	CHECK(sam_event_publish(db, "t", "test.e", NULL, &seq, &err) == 0);
	CHECK_INT(seq, 21);
	CHECK(sam_events_prune(db, 0, NULL, &err) == 0);
	sam_db_close(db);
	/* and across reopening */
	db = open_home_db();
	CHECK(sam_events_last_seq(db, &last, &err) == 0);
	CHECK_INT(last, 21);
	sam_db_close(db);
}

TEST(events_publish_without_a_connection)
{
	struct sam_db *db = open_home_db();
	/* printf style: the caller's JSON */
	CHECK(sam_event_publishf("supervisor", SAM_EV_SERVICE_CRASHED, "{\"service\":\"%s\",\"status\":%d}", "vision",
				 139) == 0);
	/* pack style: strings are quoted for us */
	CHECK(sam_event_publishp("watcher", SAM_EV_INGEST_ERROR, "{s:s, s:i}", "file", "a \"quoted\"\nname.txt", "line",
				 3) == 0);
	/* failures are reported, not published */
	CHECK_INT(sam_event_publishf("watcher", SAM_EV_INGEST_ERROR, "{\"file\":\"%s\"}", "bad\"quote"), SAM_EINVAL);
	CHECK_INT(sam_event_publishf("x", "NotDotted", "{}"), SAM_EINVAL);
	CHECK_INT(sam_event_publishp("x", "a.b", "{s:s}", "k", NULL), SAM_EINVAL);
	/* and the process after a fork publishes on its own connection */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) _exit(sam_event_publishp("child", "test.fork", "{s:i}", "pid", (int)getpid()) ? 1 : 0);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(sam_event_publishp("parent", "test.fork", "{}") == 0);
	sam_db_thread_release();

	struct sam_event *ev;
	size_t n;
	CHECK(sam_events_since(db, 0, 0, &ev, &n, NULL) == 0);
	CHECK_INT(n, 4);
	CHECK_STR(ev[0].source, "supervisor");
	CHECK_STR(ev[0].data, "{\"service\":\"vision\",\"status\":139}");
	CHECK_STR(ev[1].type, "ingest.error");
	CHECK_STR(ev[1].data, "{\"file\":\"a \\\"quoted\\\"\\nname.txt\",\"line\":3}");
	CHECK(!strchr(ev[1].data, '\n'));
	CHECK_STR(ev[2].source, "child");
	CHECK_STR(ev[3].source, "parent");
	sam_events_free(ev, n);
	sam_db_close(db);
}
