/*
 * test_notify.c - the notifier's library without processes (notify.h):
 * rules, formatting of each known event type, the rate limit and
 * de-duplication on a clock the test drives, [notify] settings, where a
 * restart resumes, and the command backend with real child processes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sam/db.h"
#include "sam/events.h"
#include "sam/notify.h"
#include "sam/utf8.h"
#include "test.h"

/* ---- rules ------------------------------------------------------------------------------ */

static void rules(struct sam_notify_rules *r, const char *list)
{
	struct sam_error err = { 0 };
	CHECKF(sam_notify_rules_parse(r, list, &err) == 0, "'%s': %s", list, err.msg);
}

static void rules_error(const char *list, const char *want)
{
	struct sam_notify_rules r;
	struct sam_error err = { 0 };
	CHECKF(sam_notify_rules_parse(&r, list, &err) != 0, "'%s' accepted", list);
	CHECKF(strstr(err.msg, want), "error for '%s' is '%s', expected it to mention '%s'", list, err.msg, want);
}

TEST(notify_rules_match)
{
	struct sam_notify_rules r;
	rules(&r, SAM_NOTIFY_DEFAULT_EVENTS);
	CHECK_INT(r.n, 7);
	CHECK(sam_notify_rules_match(&r, "service.crashed"));
	CHECK(sam_notify_rules_match(&r, "service.failed"));
	CHECK(sam_notify_rules_match(&r, "approval.pending"));
	CHECK(!sam_notify_rules_match(&r, "service.ready"));
	CHECK(!sam_notify_rules_match(&r, "service.crashed.x"));
	CHECK(!sam_notify_rules_match(&r, "approval.decided"));

	rules(&r, "service.*, -service.ready -service.started,train.finished");
	CHECK(sam_notify_rules_match(&r, "service.crashed"));
	CHECK(sam_notify_rules_match(&r, "service.a.b"));
	CHECK(!sam_notify_rules_match(&r, "service.ready"));
	CHECK(!sam_notify_rules_match(&r, "service.started"));
	CHECK(!sam_notify_rules_match(&r, "services.crashed")); /* a prefix is a whole word */
	CHECK(sam_notify_rules_match(&r, "train.finished"));
	CHECK(!sam_notify_rules_match(&r, "train.failed"));

	rules(&r, "*,-train.*");
	CHECK(sam_notify_rules_match(&r, "feedback.received"));
	CHECK(!sam_notify_rules_match(&r, "train.started"));
	/* exclusion wins whatever the order */
	rules(&r, "-service.ready,service.*");
	CHECK(!sam_notify_rules_match(&r, "service.ready"));

	rules(&r, "");
	CHECK(r.n == 0 && !sam_notify_rules_match(&r, "service.crashed"));
	rules(&r, "none");
	CHECK(r.n == 0);

	rules_error("Service.crashed", "no event pattern");
	rules_error("service", "no event pattern");
	rules_error("service..x", "no event pattern");
	rules_error("service.*x", "no event pattern");
	rules_error(".*", "no event pattern");
	rules_error("-", "no event pattern");
	char many[4096] = "";
	for (int i = 0; i <= SAM_NOTIFY_RULES_MAX; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "a.b%d,", i);
	rules_error(many, "more than");
}

/* ---- format ----------------------------------------------------------------------------- */

static struct sam_notification fmt(const char *type, const char *data)
{
	struct sam_notification n;
	memset(&n, 0x55, sizeof n); /* garbage: the formatter must fill everything */
	CHECKF(sam_notify_format(type, data, strlen(data), &n), "%s %s: no notification", type, data);
	CHECKF(utf8_valid(n.title, strlen(n.title)) && utf8_valid(n.body, strlen(n.body)), "%s: not UTF-8", type);
	return n;
}

#define EXPECT(n, t, b)                                                                                      \
	do {                                                                                                 \
		CHECKF(strstr((n).title, (t)), "title '%s' lacks '%s'", (n).title, (t));                     \
		CHECKF(strstr((n).body, (b)), "body '%s' lacks '%s'", (n).body, (b));                        \
	} while (0)

TEST(notify_format_known_types)
{
	struct sam_notification n;
	n = fmt("service.crashed",
		"{\"service\":\"voice\",\"pid\":42,\"status\":137,\"reason\":\"signal 9 (Killed)\",\"uptime_s\":3.2}");
	EXPECT(n, "SAM: voice crashed", "signal 9 (Killed). The supervisor restarts it; see `sam logs voice`.");
	CHECK(!strstr(n.body, "42") && !strstr(n.body, "3.2")); /* what varies stays out: repeats fold */
	CHECK_INT(n.urgency, SAM_NOTIFY_NORMAL);
	n = fmt("service.crashed", "{\"service\":\"api\",\"pid\":7,\"reason\":\"unhealthy: 3 health checks failed\"}");
	EXPECT(n, "SAM: api crashed", "unhealthy: 3 health checks failed.");
	n = fmt("service.failed", "{\"service\":\"api\",\"error\":\"crash loop: 5 failures within 60 s\"}");
	EXPECT(n, "SAM: api failed", "crash loop: 5 failures within 60 s. It stays down; `sam start api` tries again.");
	CHECK_INT(n.urgency, SAM_NOTIFY_CRITICAL);
	n = fmt("service.restarted", "{\"service\":\"vision\",\"pid\":99,\"port\":8766,\"restarts\":2}");
	EXPECT(n, "SAM: vision restarted", "pid 99 (restart 2)");
	n = fmt("service.paused", "{\"service\":\"learn-watch\",\"pid\":5,\"available_mb\":1800.4}");
	EXPECT(n, "SAM: learn-watch paused", "1800 MB available");
	n = fmt("service.resumed", "{\"service\":\"learn-watch\",\"pid\":5,\"available_mb\":2600}");
	EXPECT(n, "SAM: learn-watch resumed", "2600 MB");
	n = fmt("service.ready", "{\"service\":\"api\",\"pid\":5,\"url\":\"x\",\"startup_s\":1.25}");
	EXPECT(n, "SAM: api is ready", "1.2");
	n = fmt("service.started", "{\"port\":8765}"); /* the api's own: no service name */
	EXPECT(n, "SAM: a service started", "Running.");
	CHECK(!strstr(n.body, "pid"));

	n = fmt("resource.level", "{\"level\":\"low\",\"available_mb\":1400}");
	EXPECT(n, "SAM: memory is low", "1400 MB available");
	n = fmt("resource.level", "{\"level\":\"critical\",\"available_mb\":700}");
	EXPECT(n, "SAM: memory is critically low", "700 MB available");
	CHECK_INT(n.urgency, SAM_NOTIFY_CRITICAL);
	const char *ok = "{\"level\":\"ok\",\"available_mb\":4000}";
	CHECK(!sam_notify_format("resource.level", ok, strlen(ok), &n));
	const char *med = "{\"level\":\"medium\",\"available_mb\":2000}";
	CHECK(!sam_notify_format("resource.level", med, strlen(med), &n));

	n = fmt("train.finished", "{\"run\":\"20261122-1\",\"status\":\"finished\",\"n_train\":90,\"n_valid\":10,"
				  "\"adapter\":\"a.gguf\",\"note\":\"deployed: validation loss 2.1 -> 1.9 (-9.5%)\"}");
	EXPECT(n, "SAM: training finished", "Run 20261122-1: deployed: validation loss 2.1 -> 1.9 (-9.5%).");
	n = fmt("train.finished", "{\"run\":\"r2\",\"status\":\"exported\",\"note\":\"\"}");
	EXPECT(n, "SAM: training finished", "Run r2: exported.");
	n = fmt("train.failed", "{\"run\":\"r3\",\"error\":\"out of memory\"}");
	EXPECT(n, "SAM: training failed", "Run r3: out of memory.");
	n = fmt("train.started", "{\"run\":\"r4\",\"n_train\":200,\"n_valid\":20,\"trainer\":\"lora\",\"resumed\":false}");
	EXPECT(n, "SAM: training started", "200 examples");
	n = fmt("train.stopped", "{\"run\":\"r5\",\"steps\":12}");
	EXPECT(n, "SAM: training stopped", "after 12 steps");
	n = fmt("train.deployed", "{\"run\":\"r6\",\"adapter\":\"/x/a.gguf\",\"api\":\"reloaded\"}");
	EXPECT(n, "SAM: new adapter in use", "run r6");

	n = fmt("approval.pending", "{\"id\":7,\"kind\":\"file_write\",\"title\":\"Write notes.txt\",\"proposer\":\"api\"}");
	EXPECT(n, "SAM: approval needed", "Write notes.txt (proposal #7). Review it with `sam approvals`.");
	n = fmt("approval.pending", "{\"kind\":\"command\"}");
	EXPECT(n, "SAM: approval needed", "command (proposal).");
	n = fmt("approval.decided", "{\"id\":7,\"status\":\"rejected\",\"title\":\"Write notes.txt\"}");
	EXPECT(n, "SAM: proposal #7 rejected", "Write notes.txt");
	n = fmt("ingest.error", "{\"path\":\"/home/u/inbox/x.jsonl\",\"error\":\"line 3: not JSON\"}");
	EXPECT(n, "SAM: could not learn from a file", "/home/u/inbox/x.jsonl: line 3: not JSON");
	n = fmt("learn.ingested", "{\"files\":3,\"examples\":120}");
	EXPECT(n, "SAM: learned from new files", "120 new examples from 3 files");
}

TEST(notify_format_unknown_and_hostile)
{
	struct sam_notification n;
	n = fmt("feedback.received", "{\"feedback_id\":3,\"kind\":\"rating\",\"ok\":true,\"score\":0.5}");
	CHECK_STR(n.title, "SAM: feedback.received");
	CHECK_STR(n.body, "feedback_id: 3, kind: rating, ok: true, score: 0.5");
	n = fmt("x.y", "{}");
	CHECK_STR(n.body, "(no details)");
	n = fmt("x.y", "[1,2]");
	CHECK_STR(n.body, "[1,2]");
	n = fmt("x.y", "not json");
	CHECK_STR(n.body, "not json");
	/* a known type whose data is not what it promises falls back to the generic text */
	n = fmt("service.crashed", "\"just a string\"");
	CHECK_STR(n.title, "SAM: service.crashed");
	n = fmt("resource.level", "{\"level\":\"weird\"}");
	CHECK_STR(n.title, "SAM: resource.level");
	/* control characters, invalid UTF-8 and overlong text */
	n = fmt("service.failed", "{\"service\":\"a\\nb\",\"error\":\"x\\u0007y\"}");
	CHECK_STR(n.title, "SAM: a b failed");
	CHECK(strstr(n.body, "x y."));
	char data[4000];
	int k = snprintf(data, sizeof data, "{\"service\":\"s\",\"error\":\"");
	for (int i = 0; i < 400; i++) k += snprintf(data + k, sizeof data - (size_t)k, "\xc3\xa9"); /* é x 400 */
	snprintf(data + k, sizeof data - (size_t)k, "\"}");
	n = fmt("service.failed", data);
	size_t bl = strlen(n.body);
	CHECK(bl < SAM_NOTIFY_BODY_MAX && bl > SAM_NOTIFY_BODY_MAX - 8);
	CHECK(!strcmp(n.body + bl - 3, "..."));
	struct sam_notification m;
	const char bad[] = "{\"service\":\"\xff\xfe\"}";
	CHECK(sam_notify_format("service.crashed", bad, sizeof bad - 1, &m)); /* not JSON: generic */
	CHECK(utf8_valid(m.body, strlen(m.body)));
	/* data need not be NUL-terminated */
	const char *two = "{\"service\":\"voice\"}{\"service\":\"other\"}";
	CHECK(sam_notify_format("service.crashed", two, 19, &m));
	CHECK_STR(m.title, "SAM: voice crashed");
}

/* ---- limit ------------------------------------------------------------------------------ */

static struct sam_notification note(int i)
{
	struct sam_notification n;
	char body[32];
	snprintf(body, sizeof body, "event %d", i);
	sam_notification_set(&n, SAM_NOTIFY_NORMAL, "SAM: test", "%s", body);
	return n;
}

TEST(notify_limit_rate_holds)
{
	struct sam_notify_limit *l = calloc(1, sizeof *l);
	sam_notify_limit_init(l, 5, 60, 300);
	int sent = 0, limited = 0;
	for (int i = 0; i < 100; i++) {
		struct sam_notification n = note(i);
		int v = sam_notify_limit_offer(l, &n, 10 + i * 0.01);
		sent += v == SAM_NOTIFY_SEND;
		limited += v == SAM_NOTIFY_LIMITED;
		CHECK(v != SAM_NOTIFY_DUPLICATE);
		if (i < 5) CHECK_INT(v, SAM_NOTIFY_SEND);
	}
	CHECK_INT(sent, 5);
	CHECK_INT(limited, 95);
	CHECK(l->sent == 5 && l->limited == 95);
	struct sam_notification s;
	CHECK(!sam_notify_limit_summary(l, 40, &s)); /* the window is still full */
	double w = sam_notify_limit_wait(l, 40);
	CHECKF(fabs(w - 30) < 1e-9, "wait %g", w); /* the first send at 10 leaves the window at 70 */
	CHECK(!sam_notify_limit_summary(l, 69.99, &s));
	CHECK(sam_notify_limit_summary(l, 70, &s));
	CHECK_STR(s.title, "SAM: 95 more events");
	CHECKF(strstr(s.body, "95 notifications were held back (at most 5 per 60 s)"), "%s", s.body);
	CHECK(!sam_notify_limit_summary(l, 70, &s)); /* one summary */
	CHECK(!sam_notify_limit_summary(l, 1000, &s));
	CHECK(sam_notify_limit_wait(l, 1000) < 0);
	CHECK_INT(l->summaries, 1);
	/* the summary took a slot: at 70.02 the sends of 10.01..10.04 have left, 4 slots free */
	sent = 0;
	for (int i = 0; i < 10; i++) {
		struct sam_notification n = note(1000 + i);
		sent += sam_notify_limit_offer(l, &n, 70.05) == SAM_NOTIFY_SEND;
	}
	CHECK_INT(sent, 4);
	/* never more than rate within any window, over a long random-ish run */
	sam_notify_limit_init(l, 3, 10, 0);
	double times[10000];
	int nt = 0;
	for (int i = 0; i < 10000; i++) {
		double t = i * 0.037;
		struct sam_notification n = note(i);
		if (sam_notify_limit_offer(l, &n, t) == SAM_NOTIFY_SEND) times[nt++] = t;
		if (sam_notify_limit_summary(l, t, &n)) times[nt++] = t;
	}
	for (int i = 3; i < nt; i++) CHECKF(times[i] - times[i - 3] >= 10, "4 sends within %g s", times[i] - times[i - 3]);
	CHECK(nt > 3 * 30); /* and the limit does let that many through */
	free(l);
}

TEST(notify_limit_dedup)
{
	struct sam_notify_limit *l = calloc(1, sizeof *l);
	sam_notify_limit_init(l, 5, 60, 300);
	int sent = 0, dup = 0;
	for (int i = 0; i < 10; i++) {
		struct sam_notification n = note(1);
		int v = sam_notify_limit_offer(l, &n, 1 + i);
		sent += v == SAM_NOTIFY_SEND;
		dup += v == SAM_NOTIFY_DUPLICATE;
	}
	CHECK(sent == 1 && dup == 9 && l->duplicates == 9);
	/* duplicates do not use up the rate: 4 more distinct ones go out */
	for (int i = 2; i < 6; i++) {
		struct sam_notification n = note(i);
		CHECK_INT(sam_notify_limit_offer(l, &n, 20), SAM_NOTIFY_SEND);
	}
	struct sam_notification n = note(6);
	CHECK_INT(sam_notify_limit_offer(l, &n, 20), SAM_NOTIFY_LIMITED);
	/* a different title is a different notification */
	sam_notification_set(&n, SAM_NOTIFY_NORMAL, "SAM: other", "event 1");
	CHECK_INT(sam_notify_limit_offer(l, &n, 21), SAM_NOTIFY_LIMITED);
	/* after dedup_window, shown again, with the count of what was folded */
	n = note(1);
	CHECK_INT(sam_notify_limit_offer(l, &n, 301), SAM_NOTIFY_SEND);
	CHECK_STR(n.body, "event 1 (9 more times since the last notice)");
	n = note(1);
	CHECK_INT(sam_notify_limit_offer(l, &n, 302), SAM_NOTIFY_DUPLICATE);
	/* dedup_window 0: no de-duplication */
	sam_notify_limit_init(l, 100, 60, 0);
	for (int i = 0; i < 5; i++) {
		n = note(1);
		CHECK_INT(sam_notify_limit_offer(l, &n, i), SAM_NOTIFY_SEND);
	}
	/* a full table forgets its oldest entry; the rest are still folded */
	sam_notify_limit_init(l, SAM_NOTIFY_RATE_MAX, 1, 1000);
	for (int i = 0; i < SAM_NOTIFY_DEDUP_SLOTS + 1; i++) {
		n = note(i);
		CHECK_INT(sam_notify_limit_offer(l, &n, 10 + i), SAM_NOTIFY_SEND);
	}
	n = note(0);
	CHECK_INT(sam_notify_limit_offer(l, &n, 100), SAM_NOTIFY_SEND);
	n = note(SAM_NOTIFY_DEDUP_SLOTS);
	CHECK_INT(sam_notify_limit_offer(l, &n, 100), SAM_NOTIFY_DUPLICATE);
	free(l);
}

/* ---- configuration ---------------------------------------------------------------------- */

static int conf_text(struct sam_notify_conf *nc, const char *text, struct sam_error *err)
{
	struct sam_conf c;
	memset(&c, 0, sizeof c);
	snprintf(c.path, sizeof c.path, "sam.conf");
	int rc = sam_conf_parse(&c, text, err);
	if (!rc) rc = sam_notify_conf_load(nc, &c, err);
	sam_conf_free(&c);
	return rc;
}

TEST(notify_conf_keys)
{
	struct sam_notify_conf *nc = calloc(1, sizeof *nc);
	struct sam_error err = { 0 };
	CHECKF(sam_notify_conf_load(nc, NULL, &err) == 0, "%s", err.msg);
	CHECK(nc->rate == 5 && nc->rate_window == 60 && nc->dedup_window == 300 && nc->max_age == 600);
	CHECK(nc->timeout == 10 && nc->db_fallback && nc->port == 8770 && nc->rules.n == 7);
	CHECK_STR(nc->backend, "auto");
	CHECK_STR(nc->command, "");
	CHECKF(conf_text(nc, "[notify]\nevents = train.*\nrate = 2\nrate_window = 0.5\ndedup_window = 0\n"
			     "backend = command\ncommand = /bin/true\ndb_fallback = false\nport = 0\n", &err) == 0,
	       "%s", err.msg);
	CHECK(nc->rate == 2 && nc->rate_window == 0.5 && nc->dedup_window == 0 && !nc->db_fallback && nc->port == 0);
	CHECK(sam_notify_rules_match(&nc->rules, "train.failed") && !sam_notify_rules_match(&nc->rules, "service.failed"));
	CHECK_STR(nc->command, "/bin/true");
	setenv("SAM_NOTIFY_RATE", "9", 1);
	CHECK(conf_text(nc, "[notify]\nrate = 2\n", &err) == 0 && nc->rate == 9);
	unsetenv("SAM_NOTIFY_RATE");
	CHECK(conf_text(nc, "[notify]\nrat = 2\n", &err) != 0 && strstr(err.msg, "no key 'rat'"));
	CHECK(conf_text(nc, "[notify]\nrate = 0\n", &err) != 0 && strstr(err.msg, "notify.rate"));
	CHECK(conf_text(nc, "[notify]\nrate_window = -1\n", &err) != 0 && strstr(err.msg, "rate_window"));
	CHECK(conf_text(nc, "[notify]\nevents = Service\n", &err) != 0 && strstr(err.msg, "notify.events"));
	CHECK(conf_text(nc, "[notify]\ndb_fallback = maybe\n", &err) != 0 && strstr(err.msg, "db_fallback"));
	free(nc);
}

/* ---- where a restart resumes ------------------------------------------------------------ */

TEST(notify_start_position)
{
	char path[600];
	snprintf(path, sizeof path, "%s/sam.db", test_tmpdir());
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECKF(sam_db_open(&db, path, &err) == 0, "%s", err.msg);
	int64_t seq[6];
	for (int i = 0; i < 6; i++) CHECK(sam_event_publish(db, "test", "test.ev", "{}", &seq[i], &err) == 0);
	/* the first three happened an hour ago */
	char sql[200];
	snprintf(sql, sizeof sql, "UPDATE events SET time = time - 3600 WHERE seq <= %lld", (long long)seq[2]);
	CHECK(sam_db_exec(db, sql, &err) == 0);
	double now = sam_db_time();
	int64_t after = -2, skipped = -2;
	CHECK(sam_notify_start_seq(db, -1, 600, now, &after, &skipped, &err) == 0);
	CHECK(after == seq[2] && skipped == 3); /* never ran: the recent ones */
	CHECK(sam_notify_start_seq(db, seq[0], 600, now, &after, &skipped, &err) == 0);
	CHECK(after == seq[2] && skipped == 2); /* down for an hour: not the old backlog */
	CHECK(sam_notify_start_seq(db, seq[3], 600, now, &after, &skipped, &err) == 0);
	CHECK(after == seq[3] && skipped == 0); /* a quick restart: exactly where it was */
	CHECK(sam_notify_start_seq(db, seq[5] + 100, 600, now, &after, &skipped, &err) == 0);
	CHECK(after == seq[2]); /* beyond the end: sam.db was replaced, start over */
	CHECK(sam_notify_start_seq(db, -1, 1e7, now, &after, &skipped, &err) == 0);
	CHECK(after == 0 && skipped == 0);
	CHECK(sam_notify_start_seq(db, -1, 0, now + 1, &after, &skipped, &err) == 0);
	CHECK(after == seq[5] && skipped == 6);
	/* more than one page of old events */
	CHECK(sam_db_begin(db, &err) == 0);
	for (int i = 0; i < 2500; i++) CHECK(sam_event_publish(db, "test", "test.bulk", "{}", NULL, &err) == 0);
	CHECK(sam_db_commit(db, &err) == 0);
	CHECK(sam_db_exec(db, "UPDATE events SET time = time - 7200", &err) == 0);
	CHECK(sam_event_publish(db, "test", "test.new", "{}", &seq[0], &err) == 0);
	CHECK(sam_notify_start_seq(db, -1, 600, sam_db_time(), &after, &skipped, &err) == 0);
	CHECK(after == seq[0] - 1 && skipped == 2506);
	sam_db_close(db);

	char state[600];
	snprintf(state, sizeof state, "%s/notify.state", test_tmpdir());
	CHECK(sam_notify_state_load(state) == -1); /* none */
	CHECK(sam_notify_state_save(state, 12345, &err) == 0);
	CHECK(sam_notify_state_load(state) == 12345);
	test_write_file(state, "garbage\n", 8);
	CHECK(sam_notify_state_load(state) == -1);
	test_write_file(state, "-4\n", 3);
	CHECK(sam_notify_state_load(state) == -1);
}

/* ---- the command backend, with real children --------------------------------------------- */

static void write_script(const char *path, const char *body)
{
	char text[2048];
	int n = snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
	test_write_file(path, text, (size_t)n);
	CHECK(chmod(path, 0755) == 0);
}

/* Poll the backend until nothing is pending (or timeout_s); returns whether it drained. */
static bool drain(struct sam_notify_backend *b, double timeout_s)
{
	double t0 = sam_now();
	while (sam_notify_backend_pending(b)) {
		if (sam_now() - t0 > timeout_s) return false;
		sam_notify_backend_poll(b, sam_now());
		usleep(5000);
	}
	return true;
}

TEST(notify_backend_command)
{
	char script[600], out[600], slow[600], fail[600];
	snprintf(script, sizeof script, "%s/notify.sh", test_tmpdir());
	snprintf(out, sizeof out, "%s/out.txt", test_tmpdir());
	snprintf(slow, sizeof slow, "%s/slow.sh", test_tmpdir());
	snprintf(fail, sizeof fail, "%s/fail.sh", test_tmpdir());
	char body[1200];
	snprintf(body, sizeof body, "printf '%%s|%%s|%%s\\n' \"$1\" \"$2\" \"$#\" >> '%s'", out);
	write_script(script, body);
	write_script(slow, "exec sleep 30");
	write_script(fail, "exit 3");

	struct sam_notify_backend *b = calloc(1, sizeof *b);
	struct sam_error err = { 0 };
	CHECKF(sam_notify_backend_init(b, "command", script, 5, &err) == 0, "%s", err.msg);
	CHECK_STR(sam_notify_backend_name(b), "command");
	/* texts with quotes and shell syntax reach the program untouched: no shell in between */
	const char *titles[] = { "SAM: one", "SAM: 'two' $HOME", "SAM: three; rm -rf /" };
	for (int i = 0; i < 3; i++) {
		struct sam_notification n;
		sam_notification_set(&n, SAM_NOTIFY_NORMAL, titles[i], "body `%d` \"q\" <b>", i);
		sam_notify_backend_send(b, &n, sam_now());
	}
	CHECK(sam_notify_backend_pending(b) >= 1); /* one at a time: the rest wait their turn, in order */
	CHECK(drain(b, 10));
	CHECK(b->delivered == 3 && b->failed == 0);
	char *text = test_read_file(out, NULL);
	CHECK(text);
	CHECK_STR(text, "SAM: one|body `0` \"q\" <b>|2\n"
			"SAM: 'two' $HOME|body `1` \"q\" <b>|2\n"
			"SAM: three; rm -rf /|body `2` \"q\" <b>|2\n");
	free(text);
	sam_notify_backend_free(b);

	/* a program that fails is counted and logged, the next one still runs */
	CHECK(sam_notify_backend_init(b, "command", fail, 5, &err) == 0);
	struct sam_notification n;
	sam_notification_set(&n, SAM_NOTIFY_NORMAL, "t", "b");
	sam_notify_backend_send(b, &n, sam_now());
	sam_notify_backend_send(b, &n, sam_now());
	CHECK(drain(b, 10));
	CHECK(b->failed == 2 && b->delivered == 0);
	sam_notify_backend_free(b);

	/* a program that hangs is killed after the timeout */
	CHECK(sam_notify_backend_init(b, "command", slow, 0.2, &err) == 0);
	double t0 = sam_now();
	sam_notify_backend_send(b, &n, t0);
	CHECK(drain(b, 10));
	double dt = sam_now() - t0;
	CHECKF(dt >= 0.2 && dt < 5, "the hung delivery ended after %.2f s", dt);
	CHECK(b->failed == 1);
	/* the queue is bounded */
	for (int i = 0; i < SAM_NOTIFY_QUEUE_MAX + 5; i++) sam_notify_backend_send(b, &n, sam_now());
	CHECK(b->dropped >= 4);
	sam_notify_backend_free(b); /* kills the one running */
	CHECK(sam_notify_backend_pending(b) == 0);

	/* choosing */
	CHECK(sam_notify_backend_init(b, "log", NULL, 1, &err) == 0 && b->kind == SAM_NOTIFY_BACKEND_LOG);
	sam_notify_backend_send(b, &n, sam_now());
	CHECK(b->delivered == 1 && !sam_notify_backend_pending(b));
	CHECK(sam_notify_backend_init(b, "command", "notify.sh", 1, &err) == SAM_EINVAL && strstr(err.msg, "absolute"));
	CHECK(sam_notify_backend_init(b, "command", "/nonexistent/x", 1, &err) == SAM_ENOTFOUND);
	CHECK(sam_notify_backend_init(b, "command", NULL, 1, &err) == SAM_EINVAL);
	CHECK(sam_notify_backend_init(b, "pigeon", NULL, 1, &err) == SAM_EINVAL && strstr(err.msg, "pigeon"));
	/* auto: no desktop session means the log, notify-send or not */
	char *saved[3];
	const char *vars[] = { "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS" };
	for (int i = 0; i < 3; i++) {
		saved[i] = getenv(vars[i]) ? strdup(getenv(vars[i])) : NULL;
		unsetenv(vars[i]);
	}
#ifndef __APPLE__
	CHECK(sam_notify_backend_init(b, "auto", NULL, 1, &err) == 0 && b->kind == SAM_NOTIFY_BACKEND_LOG);
	CHECK(sam_notify_backend_init(b, NULL, NULL, 1, &err) == 0 && b->kind == SAM_NOTIFY_BACKEND_LOG);
	/* with a session and a notify-send on PATH: notify-send */
	char bin[600], fake[700], path[1400];
	snprintf(bin, sizeof bin, "%s/bin", test_tmpdir());
	mkdir(bin, 0755);
	snprintf(fake, sizeof fake, "%s/notify-send", bin);
	write_script(fake, "exit 0");
	snprintf(path, sizeof path, "%s:%s", bin, getenv("PATH") ? getenv("PATH") : "/usr/bin");
	setenv("PATH", path, 1);
	setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent", 1);
	CHECK(sam_notify_backend_init(b, "auto", NULL, 1, &err) == 0 && b->kind == SAM_NOTIFY_BACKEND_NOTIFY_SEND);
	CHECK_STR(b->program, fake);
	sam_notify_backend_send(b, &n, sam_now());
	CHECK(drain(b, 10) && b->delivered == 1);
#endif
	for (int i = 0; i < 3; i++) {
		if (saved[i]) setenv(vars[i], saved[i], 1);
		else unsetenv(vars[i]);
		free(saved[i]);
	}
	sam_notify_backend_free(b);
	free(b);
}
