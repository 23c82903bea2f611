/*
 * test_voice.c - text to speech: the library in this process (WAV format,
 * durations, determinism, request checks, the LRU disk cache), the real
 * `sam voice` service, the api's /api/speak and /api/voice/stream with
 * their in-process fallback, and `sam speak`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_helpers.h"
#include "sam/voice.h"
#include "test.h"

#define SHORT_TEXT "Hello."
#define LONG_TEXT                                                                                                  \
	"This is a considerably longer sentence, spoken slowly and clearly, so that its audio lasts several "       \
	"seconds longer than a single word does."

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Check a WAV image field by field; returns its duration in seconds (0 after a failed check). */
static double check_wav(const uint8_t *w, size_t len)
{
	CHECKF(len > 44, "wav of %zu bytes", len);
	if (len <= 44) return 0;
	CHECK(!memcmp(w, "RIFF", 4) && !memcmp(w + 8, "WAVE", 4) && !memcmp(w + 12, "fmt ", 4));
	CHECK_INT(rd32(w + 4), len - 8);
	CHECK_INT(rd32(w + 16), 16);
	CHECK_INT(rd16(w + 20), 1);  /* PCM */
	CHECK_INT(rd16(w + 22), 1);  /* mono */
	uint32_t sr = rd32(w + 24);
	CHECKF(sr >= 8000 && sr <= 48000, "sample rate %u", sr);
	CHECK_INT(rd32(w + 28), sr * 2);
	CHECK_INT(rd16(w + 32), 2);
	CHECK_INT(rd16(w + 34), 16);
	CHECK(!memcmp(w + 36, "data", 4));
	CHECK_INT(rd32(w + 40), len - 44);
	return (double)(len - 44) / 2 / sr;
}

static void conf_default(struct sam_voice_conf *vc)
{
	struct sam_conf c = { 0 };
	struct sam_error err = { 0 };
	setenv("SAM_HOME", test_tmpdir(), 1);
	CHECKF(sam_voice_conf_load(vc, &c, &err) == 0, "%s", err.msg);
	sam_conf_free(&c);
}

static void req(struct sam_voice_req *q, const char *text)
{
	*q = (struct sam_voice_req){ .text = text, .voice = "en", .speed = 175, .pitch = 50 };
}

TEST(voice_synth_makes_a_valid_wav_whose_length_grows_with_the_text)
{
	struct sam_voice_req q;
	struct sam_error err = { 0 };
	uint8_t *a = NULL, *b = NULL, *c = NULL;
	size_t la = 0, lb = 0, lc = 0;
	req(&q, SHORT_TEXT);
	CHECKF(sam_voice_synth(&q, &a, &la, &err) == 0, "%s", err.msg);
	double ds = check_wav(a, la);
	req(&q, LONG_TEXT);
	CHECKF(sam_voice_synth(&q, &b, &lb, &err) == 0, "%s", err.msg);
	double dl = check_wav(b, lb);
	CHECKF(ds > 0.2 && dl > 3 * ds && dl > 4, "short %.2f s, long %.2f s", ds, dl);
	CHECK(sam_voice_wav_seconds(b, lb) == dl);
	/* again in this process: espeak-ng's carried-over state changes it a little (voice.h), no more */
	CHECKF(sam_voice_synth(&q, &c, &lc, &err) == 0, "%s", err.msg);
	CHECKF(lc > lb * 95 / 100 && lc < lb * 105 / 100, "%zu vs %zu bytes", lc, lb);
	/* slower speech lasts longer */
	free(c);
	q.speed = 90;
	CHECKF(sam_voice_synth(&q, &c, &lc, &err) == 0, "%s", err.msg);
	CHECKF(check_wav(c, lc) > 1.5 * dl, "slow %.2f vs %.2f", sam_voice_wav_seconds(c, lc), dl);
	free(c);
	/* an unknown voice */
	snprintf(q.voice, sizeof q.voice, "no-such-voice");
	CHECK_INT(sam_voice_synth(&q, &c, &lc, &err), SAM_ENOTFOUND);
	CHECK(c == NULL && strstr(err.msg, "/voices"));
	free(a);
	free(b);
	json_t *v = sam_voice_list(&err);
	CHECK(json_array_size(v) > 10);
	bool en = false;
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *langs = json_object_get(json_array_get(v, i), "languages");
		for (size_t k = 0; k < json_array_size(langs); k++)
			en |= !strcmp(json_string_value(json_array_get(langs, k)), "en");
	}
	CHECK(en);
	json_decref(v);
}

TEST(voice_request_checks)
{
	struct sam_voice_conf vc;
	conf_default(&vc);
	vc.max_chars = 20;
	struct sam_voice_req q;
	struct sam_error err = { 0 };
	static const struct {
		const char *json;
		int rc;
		const char *msg;
	} cases[] = {
		{ "{}", SAM_EINVAL, "required" },
		{ "{\"text\":\"\"}", SAM_EINVAL, "empty" },
		{ "{\"text\":\" \\n\\t \"}", SAM_EINVAL, "empty" },
		{ "{\"text\":5}", SAM_EINVAL, "string" },
		{ "{\"text\":\"a\\u0000b\"}", SAM_EINVAL, "NUL" },
		{ "{\"text\":\"123456789012345678901\"}", SAM_ERANGE, "limit is 20" },
		{ "{\"text\":\"hi\",\"speed\":10}", SAM_EINVAL, "speed" },
		{ "{\"text\":\"hi\",\"speed\":175.5}", SAM_EINVAL, "speed" },
		{ "{\"text\":\"hi\",\"pitch\":100}", SAM_EINVAL, "pitch" },
		{ "{\"text\":\"hi\",\"voice\":\"../../x y\"}", SAM_EINVAL, "voice" },
		{ "[1]", SAM_EINVAL, "object" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL, NULL);
		CHECKF(j, "%s", cases[i].json);
		int rc = sam_voice_req_parse(j, &vc, &q, &err);
		CHECKF(rc == cases[i].rc && strstr(err.msg, cases[i].msg), "%s: %d %s", cases[i].json, rc, err.msg);
		json_decref(j);
	}
	/* 20 characters of 2-byte UTF-8 is within the limit (characters, not bytes) */
	json_t *j = json_pack("{s:s, s:s, s:i}", "text", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
				"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
			      "voice", "fr", "pitch", 20);
	CHECKF(sam_voice_req_parse(j, &vc, &q, &err) == 0, "%s", err.msg);
	CHECK_STR(q.voice, "fr");
	CHECK(q.speed == 175 && q.pitch == 20);
	json_decref(j);
}

TEST(voice_cache_hits_on_repeat_and_evicts_the_least_recently_used)
{
	struct sam_voice_conf vc;
	conf_default(&vc);
	struct sam_voice_req q;
	struct sam_error err = { 0 };
	uint8_t *a = NULL, *b = NULL;
	size_t la, lb;
	bool hit = true;
	req(&q, "Cache me.");
	CHECKF(sam_voice_speak(&vc, &q, &a, &la, &hit, &err) == 0, "%s", err.msg);
	CHECK(!hit);
	CHECKF(sam_voice_speak(&vc, &q, &b, &lb, &hit, &err) == 0, "%s", err.msg);
	CHECK(hit && la == lb && !memcmp(a, b, la));
	char key[65], path[1200];
	sam_voice_key(&q, key);
	snprintf(path, sizeof path, "%s/%s.wav", vc.cache_dir, key);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && (size_t)sb.st_size == la);
	free(a);
	free(b);
	/* a damaged file is a miss, and replaced */
	test_write_file(path, "RIFFjunk", 8);
	CHECKF(sam_voice_speak(&vc, &q, &a, &la, &hit, &err) == 0, "%s", err.msg);
	CHECK(!hit && check_wav(a, la) > 0);
	free(a);

	/* LRU: a bound of about three entries; keep touching the first one */
	char texts[8][64], first[1200];
	snprintf(texts[0], sizeof texts[0], "Entry number zero.");
	req(&q, texts[0]);
	CHECKF(sam_voice_speak(&vc, &q, &a, &la, &hit, &err) == 0, "%s", err.msg);
	free(a);
	sam_voice_key(&q, key);
	snprintf(first, sizeof first, "%s/%s.wav", vc.cache_dir, key);
	vc.cache_bytes = (int64_t)la * 3 + la / 2;
	for (int i = 1; i < 8; i++) {
		usleep(20000); /* distinct mtimes */
		snprintf(texts[i], sizeof texts[i], "Entry number zero.%*s", i, "");
		req(&q, texts[i]);
		CHECKF(sam_voice_speak(&vc, &q, &a, &la, &hit, &err) == 0, "%s", err.msg);
		free(a);
		req(&q, texts[0]); /* recently used again: must survive */
		CHECKF(sam_voice_speak(&vc, &q, &a, &la, &hit, &err) == 0, "%s", err.msg);
		CHECKF(hit, "entry 0 was evicted at step %d", i);
		free(a);
		int64_t total = -1;
		CHECK(sam_voice_cache_evict(vc.cache_dir, vc.cache_bytes, &total, &err) == 0);
		CHECKF(total <= vc.cache_bytes, "cache holds %lld > %lld", (long long)total, (long long)vc.cache_bytes);
	}
	CHECK(access(first, F_OK) == 0);
	/* the oldest of the others are gone */
	req(&q, texts[1]);
	sam_voice_key(&q, key);
	snprintf(path, sizeof path, "%s/%s.wav", vc.cache_dir, key);
	CHECK(access(path, F_OK) != 0);
}

/* ---- the service, the api and the CLI ---------------------------------------------------------- */

static void post_wav(const struct api_server *s, const char *path, const char *body, struct api_resp *r)
{
	api_post(s, path, body, r);
	CHECKF(r->status == 200, "%s: %ld %s", path, r->status, r->body);
}

TEST(voice_service_speaks_caches_lists_and_refuses_bad_input)
{
	struct api_server v;
	svc_start(&v, (const char *const[]){ "voice", NULL }, NULL,
		  (const char *const[]){ "SAM_VOICE_MAX_CHARS=200", NULL });
	json_t *h = api_get_json(&v, "/health");
	CHECK_STR(jstr(h, "status"), "ok");
	CHECK_STR(jstr(h, "service"), "voice");
	CHECK(jint(h, "sample_rate") == 22050);
	json_decref(h);

	struct api_resp a, b, l;
	char hv[32];
	post_wav(&v, "/speak", "{\"text\":\"" SHORT_TEXT "\"}", &a);
	CHECK_STR(api_header(&a, "Content-Type", hv, sizeof hv), "audio/wav");
	CHECK_STR(api_header(&a, "X-Cache", hv, sizeof hv), "miss");
	double ds = check_wav((uint8_t *)a.body, a.len);
	post_wav(&v, "/speak", "{\"text\":\"" SHORT_TEXT "\"}", &b);
	CHECK_STR(api_header(&b, "X-Cache", hv, sizeof hv), "hit");
	CHECK(a.len == b.len && !memcmp(a.body, b.body, a.len));
	post_wav(&v, "/speak", "{\"text\":\"" LONG_TEXT "\", \"speed\": 175, \"pitch\": 50, \"voice\": \"en\"}", &l);
	CHECKF(check_wav((uint8_t *)l.body, l.len) > 3 * ds, "long %zu vs short %zu bytes", l.len, a.len);
	api_resp_free(&a);
	api_resp_free(&b);
	api_resp_free(&l);
	h = api_get_json(&v, "/health");
	CHECK(jint(h, "counts.synths") == 2 && jint(h, "counts.cache_hits") == 1);
	json_decref(h);

	json_t *vs = api_get_json(&v, "/voices");
	CHECK(json_array_size(json_object_get(vs, "voices")) > 10);
	CHECK_STR(jstr(vs, "default"), "en");
	json_decref(vs);

	struct api_resp e;
	api_post(&v, "/speak", "{\"text\":\"   \"}", &e);
	CHECK(strstr(api_check_error(&e, 400, "blank"), "empty"));
	api_resp_free(&e);
	char big[400];
	memset(big, 'a', sizeof big);
	snprintf(big, sizeof big, "{\"text\":\"%0250d\"}", 7);
	api_post(&v, "/speak", big, &e);
	CHECK(strstr(api_check_error(&e, 413, "too long"), "limit is 200"));
	api_resp_free(&e);
	api_post(&v, "/speak", "{\"text\": nope", &e);
	api_check_error(&e, 400, "bad json");
	api_resp_free(&e);
	api_post(&v, "/speak", "{\"text\":\"hi\",\"voice\":\"xx-nonesuch\"}", &e);
	CHECK(strstr(api_check_error(&e, 400, "unknown voice"), "/voices"));
	api_resp_free(&e);
	api_stop(&v);
}

static bool served_by(const struct api_resp *r, const char *want)
{
	char hv[32];
	const char *got = api_header(r, "X-Served-By", hv, sizeof hv);
	return got && !strcmp(got, want);
}

TEST(voice_api_forwards_to_the_service_and_falls_back_in_process)
{
	struct api_server v, a;
	/* the service and the api each get their own cache so neither serves the other's file */
	svc_start(&v, (const char *const[]){ "voice", NULL }, NULL, (const char *const[]){ "SAM_VOICE_CACHE_MB=0", NULL });
	char url[128];
	snprintf(url, sizeof url, "SAM_VOICE_URL=%s", v.url);
	api_start(&a, NULL, NULL, (const char *const[]){ url, "SAM_VOICE_CACHE_MB=0", NULL });

	struct api_resp r1, r2, e;
	post_wav(&a, "/api/speak", "{\"text\":\"" LONG_TEXT "\"}", &r1);
	CHECKF(served_by(&r1, "voice"), "%s", r1.head);
	check_wav((uint8_t *)r1.body, r1.len);
	api_post(&a, "/api/speak", "{\"text\":\"\"}", &e);
	api_check_error(&e, 400, "empty via the api");
	api_resp_free(&e);
	api_post(&a, "/api/speak", "{\"text\":\"hi\",\"voice\":\"xx-nonesuch\"}", &e);
	CHECK(strstr(api_check_error(&e, 400, "unknown voice via the service"), "/voices"));
	CHECK(served_by(&e, "voice"));
	api_resp_free(&e);

	/* SSE through the service */
	struct api_resp s;
	api_post(&a, "/api/voice/stream", "{\"text\":\"" SHORT_TEXT "\"}", &s);
	CHECK_INT(s.status, 200);
	struct sse_event *ev = NULL;
	int n = sse_parse(s.body, s.len, &ev);
	CHECKF(n == 3, "%d events: %s", n, s.body);
	if (n == 3) {
		CHECK_STR(ev[0].event, "queued");
		CHECK_STR(ev[1].event, "synthesizing");
		CHECK_STR(ev[2].event, "done");
		json_t *d = json_loads(ev[2].data, 0, NULL);
		CHECK_STR(jstr(d, "served_by"), "voice");
		CHECK_STR(jstr(d, "format"), "wav");
		CHECK(jint(d, "bytes") > 44 && strlen(jstr(d, "audio_base64")) == 4 * (((size_t)jint(d, "bytes") + 2) / 3));
		json_decref(d);
	}
	sse_free(ev, n);
	api_resp_free(&s);

	/* the service dies: the api speaks in-process, the same bytes (both are the first
	 * synthesis of LONG_TEXT in a fresh process, see voice.h on determinism) */
	api_kill(&v);
	post_wav(&a, "/api/speak", "{\"text\":\"" LONG_TEXT "\"}", &r2);
	CHECKF(served_by(&r2, "in-process"), "%s", r2.head);
	CHECK(r1.len == r2.len && !memcmp(r1.body, r2.body, r1.len));
	api_post(&a, "/api/speak", "{\"text\":\"hi\",\"voice\":\"xx-nonesuch\"}", &e);
	CHECK(strstr(api_check_error(&e, 400, "unknown voice in-process"), "/voices"));
	api_resp_free(&e);
	api_post(&a, "/api/voice/stream", "{\"text\":\"" SHORT_TEXT "\"}", &s);
	n = sse_parse(s.body, s.len, &ev);
	CHECKF(n == 3 && !strcmp(ev[2].event, "done") && strstr(ev[2].data, "\"in-process\""), "%s", s.body);
	sse_free(ev, n);
	api_resp_free(&s);
	api_post(&a, "/api/voice/stream", "{\"text\":\" \"}", &e);
	api_check_error(&e, 400, "empty stream");
	api_resp_free(&e);
	api_resp_free(&r1);
	api_resp_free(&r2);
	api_stop(&a);
}

TEST(voice_cli_speak_writes_a_wav)
{
	char out[600];
	snprintf(out, sizeof out, "%s/out.wav", test_tmpdir());
	setenv("SAM_HOME", test_tmpdir(), 1);
	struct test_proc p;
	test_run_sam(&p, 60, "speak", "Hello from the command line.", "-o", out, NULL);
	CHECKF(p.status == 0 && strstr(p.err, "wrote"), "%d %s", p.status, p.err);
	test_proc_free(&p);
	size_t len = 0;
	char *w = test_read_file(out, &len);
	CHECK(w && check_wav((uint8_t *)w, len) > 0.5);
	/* without -o (stdout is a pipe here): the same WAV on stdout, from the cache */
	test_run_sam(&p, 60, "speak", "Hello from the command line.", NULL);
	CHECK_INT(p.status, 0);
	CHECK(w && p.out_len == len && !memcmp(p.out, w, len));
	test_proc_free(&p);
	/* deterministic across fresh processes: without the cache, the same bytes again */
	setenv("SAM_VOICE_CACHE_MB", "0", 1);
	test_run_sam(&p, 60, "speak", "Hello from the command line.", NULL);
	unsetenv("SAM_VOICE_CACHE_MB");
	CHECK(w && p.out_len == len && !memcmp(p.out, w, len));
	test_proc_free(&p);
	free(w);
	test_run_sam(&p, 60, "speak", "   ", "-o", out, NULL);
	CHECKF(p.status == 1 && strstr(p.err, "empty"), "%d %s", p.status, p.err);
	test_proc_free(&p);
	test_run_sam(&p, 60, "speak", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	/* a wrong voice says how to find the right one, and that works */
	test_run_sam(&p, 60, "speak", "--voice", "xx-nonesuch", "hi", "-o", out, NULL);
	CHECKF(p.status == 1 && strstr(p.err, "sam speak --voices"), "%d %s", p.status, p.err);
	test_proc_free(&p);
	test_run_sam(&p, 60, "speak", "--voices", NULL);
	CHECKF(p.status == 0 && strstr(p.out, "VOICE") && strstr(p.out, "gmw/en"), "%d %.300s %s", p.status, p.out, p.err);
	test_proc_free(&p);
	test_run_sam(&p, 60, "speak", "hi", "-o", "/nonexistent-dir/x.wav", NULL);
	CHECKF(p.status == 1 && strstr(p.err, "cannot write /nonexistent-dir/x.wav"), "%d %s", p.status, p.err);
	test_proc_free(&p);
}
