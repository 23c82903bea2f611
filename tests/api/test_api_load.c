/*
 * test_api_load.c - the real `sam api` under load: a full queue answers
 * 503, memory pressure caps tokens, switches to the small model and
 * finally refuses work, and a client that goes away frees its slot at once.
 *
 * The long generations use tiny-llama (random weights: it never says EOS,
 * so max_tokens decides how long a request runs) on one thread.
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

#define MEM_OK "SAM_FAKE_MEMAVAILABLE_MB=8000"

static bool starts_with(const char *s, const char *prefix)
{
	return s && !strncmp(s, prefix, strlen(prefix));
}

static void check_busy(const struct api_resp *r, const char *where)
{
	const char *m = api_check_error(r, 503, where);
	char ra[32];
	CHECKF(api_header(r, "Retry-After", ra, sizeof ra) && atoi(ra) > 0, "%s: 503 without Retry-After", where);
	CHECKF(starts_with(m, "I need a moment - "), "%s: message %s", where, m);
	CHECKF(strstr(m, "Try again shortly.") != NULL, "%s: message %s", where, m);
}

static json_t *status(struct api_server *s)
{
	return api_get_json(s, "/api/status");
}

static bool wait_int(struct api_server *s, const char *path, long long want, double timeout_s)
{
	double t0 = now_s();
	for (;;) {
		json_t *st = status(s);
		long long v = jint(st, path);
		json_decref(st);
		if (v == want) return true;
		if (now_s() - t0 > timeout_s) return false;
		usleep(20000);
	}
}

/* ---- queue overflow ------------------------------------------------------------------ */

struct call {
	struct api_server *s;
	const char *path, *body;
	struct api_resp r;
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	api_request(c->s, "POST", c->path, c->body, NULL, 120, &c->r);
	return NULL;
}

TEST(api_queue_full_answers_503)
{
	struct api_server s;
	api_start(&s, test_model("tiny-llama.gguf"),
		  (const char *[]){ "--slots", "1", "--queue", "1", "-t", "1", "-c", "1024", NULL },
		  (const char *[]){ MEM_OK, NULL });
	/* one long stream holds the only slot */
	struct call longc = { &s, "/v1/completions",
			      "{\"prompt\":\"Hello\",\"max_tokens\":150,\"temperature\":0,\"stream\":true}", { 0 } };
	pthread_t lt;
	CHECK(pthread_create(&lt, NULL, call_main, &longc) == 0);
	CHECKF(wait_int(&s, "active_generations", 1, 10), "the long request never became active");

	/* then several at once: one fits the queue, the rest are turned away */
	struct call c[6] = {
		{ &s, "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":6,\"stream\":true}", { 0 } },
		{ &s, "/v1/chat/completions",
		  "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":6,\"stream\":true}", { 0 } },
		{ &s, "/api/cognitive/stream", "{\"message\":\"Hi\",\"max_tokens\":6}", { 0 } },
		{ &s, "/v1/completions", "{\"prompt\":\"Hey\",\"max_tokens\":6,\"stream\":true}", { 0 } },
		{ &s, "/api/query", "{\"query\":\"Hi\",\"max_tokens\":6}", { 0 } },
		{ &s, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Yo\"}],\"max_tokens\":6}", { 0 } },
	};
	pthread_t t[6];
	for (int i = 0; i < 6; i++) CHECK(pthread_create(&t[i], NULL, call_main, &c[i]) == 0);
	for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
	pthread_join(lt, NULL);

	int busy = 0, ok = 0;
	for (int i = 0; i < 6; i++) {
		if (c[i].r.status == 503) {
			check_busy(&c[i].r, c[i].path);
			busy++;
			continue;
		}
		CHECKF(c[i].r.status == 200, "%s: status %ld (%s) %s", c[i].path, c[i].r.status, c[i].r.error, c[i].r.body);
		ok++;
		/* a queued request runs to the end once the slot is free */
		if (strstr(c[i].body, "\"stream\":true"))
			CHECKF(strstr(c[i].r.body, "data: [DONE]") != NULL, "%s: incomplete stream %s", c[i].path, c[i].r.body);
		else if (!strcmp(c[i].path, "/api/query")) {
			json_t *j = api_json(&c[i].r);
			CHECK(jint(j, "tokens") >= 1);
			json_decref(j);
		} else if (strstr(c[i].path, "cognitive")) {
			CHECK(strstr(c[i].r.body, "event: done") != NULL);
		}
	}
	CHECKF(busy >= 1, "no request was turned away with 6 arriving at a full slot and a queue of 1");
	CHECKF(ok >= 1, "the queued request did not succeed");
	CHECKF(busy <= 5, "all requests were turned away");
	/* the long stream was never disturbed */
	CHECK_INT(longc.r.status, 200);
	CHECK(strstr(longc.r.body, "\"finish_reason\":\"length\"") != NULL);
	CHECK(strstr(longc.r.body, "data: [DONE]") != NULL);
	CHECK(api_metric(&s, "sam_queue_rejections_total{model=\"main\"}") == busy);
	CHECK(wait_int(&s, "queue_depth", 0, 5));
	CHECK(wait_int(&s, "active_generations", 0, 5));
	for (int i = 0; i < 6; i++) api_resp_free(&c[i].r);
	api_resp_free(&longc.r);
	json_t *h = api_get_json(&s, "/api/health");
	json_decref(h);
	api_stop(&s);
}

/* ---- memory pressure --------------------------------------------------------------------- */

static void set_mem(struct api_server *s, const char *file, const char *mb, const char *level)
{
	write_file_atomic(file, mb);
	double t0 = now_s();
	/* the poller reads the file every second; a loaded machine may take longer */
	if (!api_wait_status_str(s, "resource.level", level, 15)) {
		json_t *st = status(s);
		char *text = json_dumps(st, JSON_COMPACT);
		fprintf(stderr, "    /api/status: %s\n", text);
		free(text);
		json_decref(st);
		api_dump_log(s);
		test_fail(__FILE__, __LINE__, "resource.level did not become %s within 15 s of writing %s MB", level, mb);
	}
	if (now_s() - t0 > 3)
		fprintf(stderr, "    note: the level took %.1f s to become %s (the poller runs every second)\n", now_s() - t0,
			level);
}

TEST(api_memory_pressure_levels)
{
	char mem[600];
	snprintf(mem, sizeof mem, "%s/mem", test_tmpdir());
	write_file_atomic(mem, "8000\n");
	char env_mem[700];
	snprintf(env_mem, sizeof env_mem, "SAM_FAKE_MEMAVAILABLE_FILE=%s", mem);
	struct api_server s;
	api_start(&s, NULL, (const char *[]){ "--small-model", test_model("stories260K-q8_0.gguf"), NULL },
		  (const char *[]){ env_mem, "SAM_API_MEDIUM_MAX_TOKENS=5", "SAM_API_LOW_MAX_TOKENS=3", NULL });
	CHECK(api_wait_status_str(&s, "resource.level", "ok", 5));
	const char *big = "{\"prompt\":\"Once upon a time\",\"max_tokens\":1000,\"temperature\":0}";
	const char *chat = "{\"message\":\"Once upon a time\",\"max_tokens\":1000,\"temperature\":0}";

	json_t *j = api_post_json(&s, "/v1/completions", big);
	CHECK_STR(jstr(j, "model"), "stories260K");
	CHECK(jint(j, "usage.completion_tokens") > 5);
	json_decref(j);

	/* MEDIUM: max tokens capped */
	set_mem(&s, mem, "2000\n", "medium");
	j = api_post_json(&s, "/v1/completions", big);
	CHECK_STR(jstr(j, "model"), "stories260K");
	CHECK_INT(jint(j, "usage.completion_tokens"), 5);
	CHECK_STR(jstr(j, "choices.0.finish_reason"), "length");
	json_decref(j);
	j = api_post_json(&s, "/api/chat", chat);
	CHECK_INT(jint(j, "tokens"), 5);
	json_decref(j);
	j = status(&s);
	CHECK(json_number_value(jpath(j, "resource.available_mb")) == 2000);
	CHECK(json_is_null(jpath(j, "small_model.loaded")) || !json_is_true(jpath(j, "small_model.loaded")));
	json_decref(j);

	/* LOW: the small model answers, with the low cap */
	set_mem(&s, mem, "1200\n", "low");
	j = api_post_json(&s, "/api/chat", chat);
	CHECK_STR(jstr(j, "model"), "stories260K-q8_0");
	CHECK_INT(jint(j, "tokens"), 3);
	json_decref(j);
	j = api_post_json(&s, "/v1/chat/completions",
			  "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":100,\"temperature\":0}");
	CHECK_STR(jstr(j, "model"), "stories260K-q8_0");
	CHECK(jint(j, "usage.completion_tokens") <= 3);
	json_decref(j);
	struct api_resp r;
	api_post(&s, "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":50,\"stream\":true,\"temperature\":0}", &r);
	CHECK_INT(r.status, 200);
	CHECK(strstr(r.body, "\"model\":\"stories260K-q8_0\"") != NULL);
	api_resp_free(&r);
	j = status(&s);
	CHECK(json_is_true(jpath(j, "small_model.loaded")));
	CHECK(strstr(jstr(j, "small_model.path"), "stories260K-q8_0.gguf") != NULL);
	CHECK(jint(j, "small_model.tokens_generated") >= 3);
	json_decref(j);
	CHECK(api_metric(&s, "sam_tokens_generated_total{model=\"small\"}") >= 3);
	CHECK(api_metric(&s, "sam_resource_level") == 1);

	/* CRITICAL: no generation at all, but the service lives */
	set_mem(&s, mem, "500\n", "critical");
	api_post(&s, "/api/chat", chat, &r);
	check_busy(&r, "/api/chat at CRITICAL");
	api_resp_free(&r);
	api_post(&s, "/v1/completions", big, &r);
	check_busy(&r, "/v1/completions at CRITICAL");
	api_resp_free(&r);
	api_post(&s, "/api/cognitive/stream", chat, &r);
	check_busy(&r, "/api/cognitive/stream at CRITICAL");
	api_resp_free(&r);
	j = api_get_json(&s, "/api/health");
	json_decref(j);

	/* plenty again: back to normal */
	set_mem(&s, mem, "8000\n", "ok");
	j = api_post_json(&s, "/v1/completions", big);
	CHECK_STR(jstr(j, "model"), "stories260K");
	CHECK(jint(j, "usage.completion_tokens") > 5);
	json_decref(j);
	j = api_post_json(&s, "/api/chat", chat);
	CHECK_STR(jstr(j, "model"), "stories260K");
	CHECK(jint(j, "tokens") > 5);
	json_decref(j);

	/* each change of level was published as an event */
	struct sam_db *db;
	struct sam_error err;
	struct sam_event *ev;
	size_t n;
	CHECK(sam_db_thread(&db, NULL, &err) == 0);
	CHECK(sam_events_since(db, 0, 0, &ev, &n, &err) == 0);
	const char *want[] = { "medium", "low", "critical", "ok" };
	size_t k = 0;
	for (size_t i = 0; i < n && k < 4; i++) {
		if (strcmp(ev[i].type, "resource.level")) continue;
		json_t *d = json_loads(ev[i].data, 0, NULL);
		if (d && jstr(d, "level") && !strcmp(jstr(d, "level"), want[k])) k++;
		json_decref(d);
	}
	CHECKF(k == 4, "resource.level events: found %zu of medium, low, critical, ok in order", k);
	sam_events_free(ev, n);
	sam_db_thread_release();
	api_stop(&s);
}

/* ---- cancellation ------------------------------------------------------------------------ */

static bool after_first_event(const char *body, size_t len, void *cls)
{
	(void)len, (void)cls;
	return strstr(body, "data: {") && strstr(strstr(body, "data: {"), "\n\n");
}

TEST(api_client_disconnect_cancels)
{
	struct api_server s;
	api_start(&s, test_model("tiny-llama.gguf"), (const char *[]){ "--slots", "1", "-t", "1", "-c", "4096", NULL },
		  (const char *[]){ MEM_OK, NULL });
	const char *wait_count = "sam_engine_wait_seconds_count{model=\"main\"}";
	double waits0 = api_metric(&s, wait_count);
	CHECK(waits0 == 0);

	/* a stream that would run for 4000 tokens: read one event, then hang up */
	struct api_resp r;
	api_request_until(&s, "POST", "/v1/completions",
			  "{\"prompt\":\"Hello\",\"max_tokens\":4000,\"temperature\":0,\"stream\":true}", NULL, 30,
			  after_first_event, NULL, &r);
	CHECKF(r.aborted && r.status == 200, "the stream did not start: %ld %s", r.status, r.body);
	api_resp_free(&r);

	/* the only slot is free again at once: a new request does not wait for the old one */
	api_post(&s, "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":8,\"temperature\":0}", &r);
	CHECKF(r.status == 200, "status %ld: %s", r.status, r.body);
	CHECKF(r.secs < 5, "the request after a hang-up took %.1f s", r.secs);
	api_resp_free(&r);
	CHECKF(wait_int(&s, "active_generations", 0, 3), "active_generations did not return to 0");
	json_t *st = status(&s);
	long long gen = jint(st, "model.tokens_generated");
	json_decref(st);
	CHECKF(gen < 2000, "the hung-up stream went on generating (%lld tokens)", gen);
	usleep(300000);
	st = status(&s);
	CHECK_INT(jint(st, "model.tokens_generated"), gen); /* nothing runs any more */
	json_decref(st);
	CHECK(api_metric(&s, wait_count) == waits0 + 2);

	/* the same for a client of a non-streamed answer that gives up waiting */
	api_request(&s, "POST", "/v1/chat/completions",
		    "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":4000,\"temperature\":0}", NULL,
		    1, &r);
	CHECKF(r.status == 0, "the 4000-token answer came within 1 s? status %ld", r.status);
	api_resp_free(&r);
	api_post(&s, "/api/query", "{\"query\":\"Hi\",\"max_tokens\":8,\"temperature\":0}", &r);
	CHECKF(r.status == 200, "status %ld: %s", r.status, r.body);
	CHECKF(r.secs < 5, "the request after a time-out took %.1f s", r.secs);
	api_resp_free(&r);
	CHECK(wait_int(&s, "active_generations", 0, 3));
	st = status(&s);
	CHECKF(jint(st, "model.tokens_generated") < gen + 2000, "the abandoned answer went on generating (%lld tokens)",
	       jint(st, "model.tokens_generated") - gen);
	json_decref(st);
	CHECK(api_metric(&s, wait_count) == waits0 + 4);
	api_stop(&s);
}

/* ---- continuous batching ------------------------------------------------------------------- */

TEST(api_concurrent_greedy_requests_match_sequential)
{
	struct api_server s;
	api_start(&s, NULL, (const char *[]){ "--slots", "4", NULL }, (const char *[]){ MEM_OK, NULL });
	enum { N = 8 };
	static const char *prompts[N] = { "Once upon a time", "The cat", "Lily and Ben", "One day",
					  "The sun was",      "Tom had a", "Once upon a time", "A big dog" };
	char bodies[N][256];
	struct call c[N];
	char *alone[N];
	for (int i = 0; i < N; i++) {
		/* streamed and not, chat and plain: they all share the batch */
		if (i % 2)
			snprintf(bodies[i], sizeof bodies[i],
				 "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":%d,\"temperature\":0}",
				 prompts[i], 30 + 7 * i);
		else
			snprintf(bodies[i], sizeof bodies[i], "{\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0}",
				 prompts[i], 30 + 7 * i);
		c[i] = (struct call){ &s, i % 2 ? "/v1/chat/completions" : "/v1/completions", bodies[i], { 0 } };
		json_t *j = api_post_json(&s, c[i].path, bodies[i]);
		const char *t = jstr(j, i % 2 ? "choices.0.message.content" : "choices.0.text");
		CHECK(t != NULL);
		alone[i] = strdup(t);
		json_decref(j);
	}
	pthread_t t[N];
	for (int i = 0; i < N; i++) CHECK(pthread_create(&t[i], NULL, call_main, &c[i]) == 0);
	for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
	for (int i = 0; i < N; i++) {
		CHECKF(c[i].r.status == 200, "request %d: %ld %s", i, c[i].r.status, c[i].r.body);
		json_t *j = api_json(&c[i].r);
		const char *got = jstr(j, i % 2 ? "choices.0.message.content" : "choices.0.text");
		CHECKF(got && !strcmp(got, alone[i]), "request %d (\"%s\") in a batch:\n[%s]\nalone:\n[%s]", i, prompts[i],
		       got ? got : "(null)", alone[i]);
		json_decref(j);
		api_resp_free(&c[i].r);
		free(alone[i]);
	}
	CHECK(wait_int(&s, "active_generations", 0, 3));
	api_stop(&s);
}

/* ---- clients that leave while queued, and shutting down mid-request --------------------------- */

static atomic_bool release_first;

static bool until_released(const char *body, size_t len, void *cls)
{
	(void)body, (void)len, (void)cls;
	return atomic_load(&release_first);
}

struct held {
	struct api_server *s;
	const char *path, *body;
	bool (*stop)(const char *, size_t, void *);
	int timeout_s;
	struct api_resp r;
};

static void *held_main(void *arg)
{
	struct held *h = arg;
	api_request_until(h->s, h->body ? "POST" : "GET", h->path, h->body, NULL, h->timeout_s, h->stop, NULL, &h->r);
	return NULL;
}

TEST(api_queued_client_that_leaves_is_dropped)
{
	struct api_server s;
	api_start(&s, test_model("tiny-llama.gguf"), (const char *[]){ "--slots", "1", "-t", "1", "-c", "4096", NULL },
		  (const char *[]){ MEM_OK, NULL });
	atomic_store(&release_first, false);
	struct held a = { &s, "/v1/completions", "{\"prompt\":\"Hello\",\"max_tokens\":4000,\"temperature\":0,\"stream\":true}",
			  until_released, 30, { 0 } };
	pthread_t ta;
	CHECK(pthread_create(&ta, NULL, held_main, &a) == 0);
	CHECKF(wait_int(&s, "active_generations", 1, 10), "the first request never started");
	/* two more wait in the queue, and give up after a second */
	struct held b[2] = {
		{ &s, "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":5,\"stream\":true}", NULL, 1, { 0 } },
		{ &s, "/api/query", "{\"query\":\"Hi\",\"max_tokens\":5}", NULL, 1, { 0 } },
	};
	pthread_t tb[2];
	for (int i = 0; i < 2; i++) CHECK(pthread_create(&tb[i], NULL, held_main, &b[i]) == 0);
	for (int i = 0; i < 2; i++) pthread_join(tb[i], NULL);
	CHECKF(!strstr(b[0].r.body, "data:"), "the queued stream got data: %s", b[0].r.body);
	CHECKF(b[1].r.status == 0, "the queued query was answered (%ld) while the slot was busy", b[1].r.status);
	/* they leave the queue although the slot is still busy */
	CHECKF(wait_int(&s, "queue_depth", 0, 3), "the requests whose clients left are still queued");
	json_t *st = status(&s);
	CHECK_INT(jint(st, "active_generations"), 1);
	json_decref(st);
	atomic_store(&release_first, true);
	pthread_join(ta, NULL);
	CHECK(a.r.aborted);
	api_resp_free(&a.r);
	api_post(&s, "/api/query", "{\"query\":\"Hi\",\"max_tokens\":5,\"temperature\":0}", &a.r);
	CHECKF(a.r.status == 200 && a.r.secs < 5, "status %ld after %.1f s", a.r.status, a.r.secs);
	/* only the first and the last were ever admitted */
	CHECK(api_metric(&s, "sam_engine_wait_seconds_count{model=\"main\"}") == 2);
	for (int i = 0; i < 2; i++) api_resp_free(&b[i].r);
	api_resp_free(&a.r);
	api_stop(&s);
}

static bool never(const char *body, size_t len, void *cls)
{
	(void)body, (void)len, (void)cls;
	return false;
}

TEST(api_shutdown_with_requests_in_flight)
{
	struct api_server s;
	api_start(&s, test_model("tiny-llama.gguf"), (const char *[]){ "--slots", "2", "-t", "1", "-c", "4096", NULL },
		  (const char *[]){ MEM_OK, NULL });
	struct held h[4] = {
		{ &s, "/v1/completions", "{\"prompt\":\"Hello\",\"max_tokens\":4000,\"temperature\":0,\"stream\":true}", never,
		  30, { 0 } },
		{ &s, "/api/query", "{\"query\":\"Hello\",\"max_tokens\":4000,\"temperature\":0}", never, 30, { 0 } },
		{ &s, "/api/cognitive/stream", "{\"message\":\"Hello\",\"max_tokens\":100}", never, 30, { 0 } }, /* queued */
		{ &s, "/api/events", NULL, never, 30, { 0 } }, /* a GET */
	};
	pthread_t t[4];
	for (int i = 0; i < 3; i++) CHECK(pthread_create(&t[i], NULL, held_main, &h[i]) == 0);
	CHECKF(wait_int(&s, "active_generations", 2, 10), "two generations did not start");
	CHECKF(wait_int(&s, "queue_depth", 1, 10), "the third request is not queued");
	CHECK(pthread_create(&t[3], NULL, held_main, &h[3]) == 0);
	usleep(300000);
	double t0 = now_s();
	api_stop(&s); /* SIGTERM: exits 0, promptly, with no leak, while all of these are open */
	double dt = now_s() - t0;
	for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
	CHECKF(dt < 10, "shutdown took %.1f s", dt);
	CHECK_INT(h[3].r.status, 200);
	CHECK(strstr(h[3].r.body, "retry:") != NULL);
	for (int i = 0; i < 4; i++) api_resp_free(&h[i].r);
}

/* ---- the request time-out ---------------------------------------------------------------------- */

TEST(api_request_timeout)
{
	struct api_server s;
	api_start(&s, test_model("tiny-llama.gguf"), (const char *[]){ "--slots", "1", "-t", "1", "-c", "4096", NULL },
		  (const char *[]){ MEM_OK, "SAM_API_TIMEOUT=1.5", NULL });
	/* a long answer stops at the time-out with what it has */
	struct call a = { &s, "/v1/completions", "{\"prompt\":\"Hello\",\"max_tokens\":4000,\"temperature\":0}", { 0 } };
	struct call b = { &s, "/api/query", "{\"query\":\"Hi\",\"max_tokens\":5}", { 0 } };
	pthread_t ta, tb;
	CHECK(pthread_create(&ta, NULL, call_main, &a) == 0);
	CHECKF(wait_int(&s, "active_generations", 1, 10), "the long request did not start");
	/* one queued behind it runs when the first one's time is over */
	CHECK(pthread_create(&tb, NULL, call_main, &b) == 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECKF(a.r.status == 200, "status %ld: %s", a.r.status, a.r.body);
	CHECKF(a.r.secs < 6, "a 1.5 s time-out took %.1f s", a.r.secs);
	json_t *j = api_json(&a.r);
	CHECK_STR(jstr(j, "choices.0.finish_reason"), "length");
	long long ct = jint(j, "usage.completion_tokens");
	CHECKF(ct >= 1 && ct < 4000, "%lld tokens", ct);
	CHECK_INT(strlen(jstr(j, "choices.0.text")) > 0, 1);
	json_decref(j);
	CHECKF(b.r.status == 200, "the queued request: %ld %s", b.r.status, b.r.body);
	CHECKF(b.r.secs < 6, "the queued request took %.1f s", b.r.secs);
	api_resp_free(&a.r);
	api_resp_free(&b.r);
	CHECK(wait_int(&s, "queue_depth", 0, 3));
	CHECK(wait_int(&s, "active_generations", 0, 3));
	api_stop(&s);
}
