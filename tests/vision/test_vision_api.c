/*
 * test_vision_api.c - the api's vision endpoints beyond the basics: the
 * stream's progress events (in order, before the answer, sent as they
 * happen), a page of text asked about on a model with a 512-token
 * context, raw image bodies, and the vision routes' larger body limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leptonica/allheaders.h>

#include "sam/vision.h"
#include "test.h"
#include "vision/vision_helpers.h"

/* A vision service that is surely down: nothing listens on port 1. */
#define NO_SERVICE "SAM_VISION_URL=http://127.0.0.1:1"

/* ---- the prompt, with a stand-in token count ------------------------------------------------- */

static int fits_chars(const char *prompt, void *ud)
{
	return strlen(prompt) <= *(size_t *)ud;
}

static int fits_fails(const char *prompt, void *ud)
{
	(void)prompt, (void)ud;
	return SAM_EIO;
}

TEST(vision_prompt_keeps_whole_words_of_the_text_that_fit)
{
	json_t *res = json_pack("{s:{s:i, s:i, s:s}, s:{s:s}}", "image", "width", 10, "height", 20, "format", "png",
				"ocr", "text", "one two three\nfour five six seven eight nine ten\n");
	CHECK_INT(sam_vision_ocr_words(res), 10);
	char *all = sam_vision_prompt(res, "What is it?", SIZE_MAX), *none = sam_vision_prompt(res, "What is it?", 0);
	CHECKF(strstr(all, "\"\"\"\none two three\nfour five six seven eight nine ten\n\"\"\"") &&
		       !strstr(all, "more words"),
	       "%s", all);
	CHECKF(strstr(all, "Question: What is it?\nAnswer:"), "%s", all);
	CHECKF(strstr(none, "\"\"\"\n\n[... 10 more words]\n\"\"\""), "%s", none);
	char *p;
	size_t words, kept, budget = strlen(all);
	/* everything fits */
	CHECK(sam_vision_prompt_fit(res, "What is it?", fits_chars, &budget, &p, &words, &kept) == 0);
	CHECK(words == 10 && kept == 10 && !strcmp(p, all));
	free(p);
	/* a budget between: the longest cut after a whole word, marked */
	budget = strlen(none) + 12;
	CHECK(sam_vision_prompt_fit(res, "What is it?", fits_chars, &budget, &p, &words, &kept) == 0);
	CHECKF(kept > 0 && kept < 10 && strlen(p) <= budget, "kept %zu: %s", kept, p);
	char *next = sam_vision_prompt(res, "What is it?", kept + 1), want[64];
	CHECK(strlen(next) > budget);
	snprintf(want, sizeof want, "[... %zu more words]", 10 - kept);
	CHECKF(strstr(p, want) && strstr(p, "\"\"\"\none two"), "%s", p);
	free(next);
	free(p);
	/* nothing fits: SAM_ERANGE; the counter's own failure is passed on */
	budget = strlen(none) - 1;
	CHECK(sam_vision_prompt_fit(res, "What is it?", fits_chars, &budget, &p, &words, &kept) == SAM_ERANGE && !p);
	CHECK(sam_vision_prompt_fit(res, "What is it?", fits_fails, NULL, &p, &words, &kept) == SAM_EIO && !p);
	free(all);
	free(none);
	json_decref(res);
	/* no text at all */
	res = json_pack("{s:{s:i}}", "image", "width", 1);
	CHECK_INT(sam_vision_ocr_words(res), 0);
	p = sam_vision_prompt(res, NULL, SIZE_MAX);
	CHECKF(strstr(p, "no text could be read") && strstr(p, "Question: Describe this image."), "%s", p);
	free(p);
	json_decref(res);
}

/* ---- the stream -------------------------------------------------------------------------------- */

/*
 * Check a vision stream: progress events with these stages (comma-joined)
 * come first, all but "queued" saying served_by; then tokens (at least
 * one when want_tokens); "done" last. Returns done's data (caller decrefs).
 */
static json_t *check_stream(const struct api_resp *r, const char *stages, const char *served_by, bool want_tokens)
{
	CHECKF(r->status == 200, "HTTP %ld: %s", r->status, r->body);
	struct sse_event *ev;
	int n = sse_parse(r->body, r->len, &ev), tokens = 0;
	char got[256] = "";
	for (int i = 0; i < n; i++) {
		if (!strcmp(ev[i].event, "progress")) {
			CHECKF(!tokens, "a progress event after the answer began: %s", r->body);
			json_t *p = json_loads(ev[i].data, 0, NULL);
			const char *stage = jstr(p, "stage");
			CHECKF(stage, "progress without a stage: %s", ev[i].data);
			if (strcmp(stage, "queued"))
				CHECKF(jstr(p, "served_by") && !strcmp(jstr(p, "served_by"), served_by), "%s",
				       ev[i].data);
			snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", *got ? "," : "", stage);
			json_decref(p);
		} else if (!strcmp(ev[i].event, "token")) {
			tokens++;
		} else {
			CHECKF(!strcmp(ev[i].event, "done") && i == n - 1, "event '%s' (%d of %d): %s", ev[i].event, i,
			       n, r->body);
		}
	}
	CHECKF(!strcmp(got, stages), "stages %s, expected %s", got, stages);
	CHECKF(!want_tokens || tokens > 0, "no token events: %s", r->body);
	CHECKF(n > 0 && !strcmp(ev[n - 1].event, "done"), "the stream did not end with done: %s", r->body);
	json_t *done = json_loads(ev[n - 1].data, 0, NULL);
	CHECK(done != NULL);
	CHECK_STR(jstr(done, "vision.served_by"), served_by);
	sse_free(ev, n);
	return done;
}

/* When each event first arrived, by the index of its first byte in the body. */
struct arrivals {
	double t_ocr, t_done;
};

static bool note_arrivals(const char *body, size_t len, void *cls)
{
	(void)len;
	struct arrivals *a = cls;
	if (!a->t_ocr && strstr(body, "\"stage\":\"ocr\"")) a->t_ocr = now_s();
	if (!a->t_done && strstr(body, "event: done")) a->t_done = now_s();
	return false;
}

static bool leave_at(const char *body, size_t len, void *cls)
{
	(void)len;
	return strstr(body, cls) != NULL;
}

TEST(vision_stream_reports_progress_before_the_answer)
{
	char png[512];
	snprintf(png, sizeof png, "%s/text.png", test_tmpdir());
	vt_render_text(png);
	struct api_server api, vis;
	api_start(&api, NULL, (const char *[]){ "--slots", "1", NULL }, (const char *[]){ NO_SERVICE, NULL });
	const char *const json_h[] = { "Content-Type: application/json", NULL };
	struct api_resp r;

	/* OCR in-process: every stage, then the text as the answer, sent as it happens */
	char *body = vt_image_body(png, "ocr");
	struct arrivals t = { 0 };
	api_request_until(&api, "POST", "/api/vision/stream", body, json_h, 120, note_arrivals, &t, &r);
	json_t *done = check_stream(&r, "queued,decoding,analyzing,ocr", "in-process", true);
	CHECKF(vt_word_accuracy(jstr(done, "response")) >= 0.9, "%s", jstr(done, "response"));
	CHECK_STR(jstr(done, "task"), "ocr");
	CHECK_STR(jstr(done, "vision.ocr.text"), jstr(done, "response"));
	/* the "ocr" event came before recognition, not with the result at the end */
	CHECKF(t.t_ocr > 0 && t.t_done - t.t_ocr > 0.05, "ocr at %.3f, done at %.3f", t.t_ocr, t.t_done);
	json_decref(done);
	api_resp_free(&r);
	free(body);

	/* ask: then the model thinks; its answer streams; done has the vision result and the answer */
	body = vt_image_body(png, "ask");
	api_request(&api, "POST", "/api/vision/stream", body, json_h, 120, &r);
	done = check_stream(&r, "queued,decoding,analyzing,ocr,thinking", "in-process", true);
	CHECK(jstr(done, "response") && jint(done, "tokens") > 0 && jstr(done, "finish_reason"));
	CHECK_STR(jstr(done, "model"), "stories260K");
	CHECK(jint(done, "vision.image.width") > 0 && jstr(done, "vision.ocr.text"));
	CHECK(json_is_false(jpath(done, "ocr_truncated")));
	json_decref(done);
	api_resp_free(&r);
	/* analyze: no text, no model */
	char *an = vt_image_body(png, "analyze");
	api_request(&api, "POST", "/api/vision/stream", an, json_h, 120, &r);
	done = check_stream(&r, "queued,decoding,analyzing", "in-process", false);
	CHECK(jint(done, "vision.image.height") > 0 && !jpath(done, "vision.ocr"));
	CHECK_STR(jstr(done, "task"), "analyze");
	CHECK_STR(jstr(done, "response"), "");
	json_decref(done);
	api_resp_free(&r);
	free(an);
	/* a client that leaves during OCR or during the answer: the gate and the slot are freed (--slots 1) */
	static const char *const cut_at[] = { "\"stage\":\"ocr\"", "event: token" };
	for (int i = 0; i < 2; i++) {
		api_request_until(&api, "POST", "/api/vision/stream", body, json_h, 120, leave_at, (void *)cut_at[i],
				  &r);
		CHECKF(r.aborted, "the stream ended before '%s': %s", cut_at[i], r.body);
		api_resp_free(&r);
		json_decref(vt_post(&api, "/api/vision/process", body, 200));
	}
	/* input errors come before the stream, as plain JSON errors */
	api_request(&api, "POST", "/api/vision/stream", "{\"image\": \"@@@\"}", json_h, 30, &r);
	api_check_error(&r, 400, "bad base64 on the stream");
	api_resp_free(&r);
	api_request(&api, "POST", "/api/vision/stream", "{\"image\": \"QUJDREVGR0hJSktMTU5PUA==\"}", json_h, 30, &r);
	CHECK(strstr(api_check_error(&r, 400, "not an image on the stream"), "not an image"));
	api_resp_free(&r);

	/* with the service up, it does the vision part: "decoding" stands for all of it */
	svc_start(&vis, (const char *[]){ "vision", NULL }, NULL, NULL);
	api_stop(&api);
	char env[128];
	snprintf(env, sizeof env, "SAM_VISION_URL=%s", vis.url);
	api_start(&api, NULL, NULL, (const char *[]){ env, NULL });
	api_request(&api, "POST", "/api/vision/stream", body, json_h, 120, &r);
	done = check_stream(&r, "queued,decoding,thinking", "service", true);
	json_decref(done);
	api_resp_free(&r);
	free(body);
	api_stop(&api);
	api_stop(&vis);
}

/* ---- a page of text on a small context ---------------------------------------------------- */

TEST(vision_ask_cuts_a_page_of_text_to_the_models_context)
{
	char png[512];
	snprintf(png, sizeof png, "%s/page.png", test_tmpdir());
	vt_render_page(png, 30);
	struct api_server api;
	api_start(&api, NULL, NULL, (const char *[]){ NO_SERVICE, NULL });
	char *body = vt_image_body(png, "ask");
	json_t *j = vt_post(&api, "/api/vision/process", body, 200);
	/* stories260K holds 512 tokens; 300 words of OCR text are far more */
	size_t words = sam_vision_ocr_words(j);
	CHECKF(words > 200, "OCR read only %zu words", words);
	CHECK(json_is_true(jpath(j, "ocr_truncated")));
	CHECKF(jint(j, "ocr_words_in_prompt") > 0 && (size_t)jint(j, "ocr_words_in_prompt") < words, "%lld of %zu",
	       jint(j, "ocr_words_in_prompt"), words);
	CHECK(jstr(j, "answer") && jint(j, "tokens") > 0);
	CHECKF(jint(j, "prompt_tokens") + jint(j, "tokens") <= 512, "%lld + %lld", jint(j, "prompt_tokens"),
	       jint(j, "tokens"));
	json_decref(j);
	free(body);

	/* the same through `sam see --ask`, which says the text was cut */
	setenv("SAM_API_URL", api.url, 1);
	struct test_proc p;
	test_run_sam(&p, 120, "see", png, "--ask", "What does the page say?", NULL);
	CHECKF(p.status == 0 && p.out_len > 1 && strstr(p.err, "words"), "sam see: %d\n%s\n%s", p.status, p.out, p.err);
	test_proc_free(&p);

	/* a question too long for any prompt is the caller's mistake */
	char *question = malloc(8001);
	for (int i = 0; i < 8000; i++) question[i] = "why "[i % 4];
	question[8000] = 0;
	body = vt_image_body(png, "ask");
	json_t *req = json_loads(body, 0, NULL);
	json_object_set_new(req, "prompt", json_string(question));
	free(body);
	body = json_dumps(req, JSON_COMPACT);
	j = vt_post(&api, "/api/vision/process", body, 400);
	CHECKF(strstr(jstr(j, "error.message"), "too long"), "%s", jstr(j, "error.message"));
	json_decref(j);
	json_decref(req);
	free(body);
	free(question);
	api_stop(&api);
}

/* ---- raw bodies --------------------------------------------------------------------------------- */

TEST(vision_raw_image_bodies_on_the_service_and_the_api)
{
	char png[512];
	snprintf(png, sizeof png, "%s/text.png", test_tmpdir());
	vt_render_text(png);
	size_t len;
	char *data = test_read_file(png, &len);
	CHECK(data != NULL);
	struct api_server vis, api;
	svc_start(&vis, (const char *[]){ "vision", NULL }, NULL, NULL);
	char env[128];
	snprintf(env, sizeof env, "SAM_VISION_URL=%s", vis.url);
	api_start(&api, NULL, NULL, (const char *[]){ env, NULL });
	static const char garbage[] = "\x01\x02 this is not an image, whatever its Content-Type says";
	for (int round = 0; round < 3; round++) {
		/* the service; the api through it; the api alone */
		const struct api_server *s = round == 0 ? &vis : &api;
		const char *path = round == 0 ? "/process" : "/api/vision/process";
		if (round == 2) api_kill(&vis);
		char url[128];
		struct api_resp r;
		snprintf(url, sizeof url, "%s?task=ocr", path);
		vt_post_raw(s, url, "image/png", data, len, NULL, &r);
		CHECKF(r.status == 200, "round %d: HTTP %ld: %s", round, r.status, r.body);
		json_t *j = api_json(&r);
		CHECKF(vt_word_accuracy(jstr(j, "ocr.text")) >= 0.9, "round %d: %s", round, jstr(j, "ocr.text"));
		if (round) CHECK_STR(jstr(j, "served_by"), round == 1 ? "service" : "in-process");
		json_decref(j);
		api_resp_free(&r);
		snprintf(url, sizeof url, "%s?task=analyze", path);
		vt_post_raw(s, url, "application/octet-stream", data, len, NULL, &r);
		CHECKF(r.status == 200, "round %d: HTTP %ld: %s", round, r.status, r.body);
		j = api_json(&r);
		CHECK(jint(j, "image.width") > 0 && !jpath(j, "ocr"));
		json_decref(j);
		api_resp_free(&r);
		vt_post_raw(s, path, "application/octet-stream", garbage, sizeof garbage - 1, NULL, &r);
		CHECK(strstr(api_check_error(&r, 400, "raw garbage"), "not an image format"));
		api_resp_free(&r);
		vt_post_raw(s, path, "image/png", "", 0, NULL, &r);
		CHECK(strstr(api_check_error(&r, 400, "empty raw body"), "empty"));
		api_resp_free(&r);
		snprintf(url, sizeof url, "%s?task=paint", path);
		vt_post_raw(s, url, "image/png", data, len, NULL, &r);
		CHECK(strstr(api_check_error(&r, 400, "raw, unknown task"), "unknown task"));
		api_resp_free(&r);
		/* JSON sent as a form (curl -d without -H) is still JSON */
		char *body = vt_image_body(png, "analyze");
		vt_post_raw(s, path, "application/x-www-form-urlencoded", body, strlen(body), NULL, &r);
		CHECKF(r.status == 200, "round %d: JSON as a form: HTTP %ld: %s", round, r.status, r.body);
		api_resp_free(&r);
		free(body);
	}
	free(data);
	api_stop(&api);
}

/* ---- body limits ---------------------------------------------------------------------------------- */

/* A w x h RGB PNG of noise: it does not compress, so it is about 3 w h bytes. */
static l_uint8 *noise_png(int w, int h, size_t *len)
{
	PIX *p = pixCreate(w, h, 32);
	unsigned x = 1;
	for (int y = 0; y < h; y++)
		for (int i = 0; i < w; i++) {
			x = x * 1664525u + 1013904223u;
			pixSetRGBPixel(p, i, y, (l_int32)(x >> 24), (l_int32)((x >> 16) & 255),
				       (l_int32)((x >> 8) & 255));
		}
	l_uint8 *data = NULL;
	CHECK(pixWriteMem(&data, len, p, IFF_PNG) == 0);
	pixDestroy(&p);
	return data;
}

TEST(vision_routes_take_bodies_as_large_as_vision_max_bytes)
{
	struct sam_conf c = { 0 };
	struct sam_vision_conf vc;
	struct sam_error err;
	CHECK(sam_vision_conf_load(&vc, &c, &err) == 0);
	CHECK(sam_vision_max_body(&vc) >= (size_t)(20 << 20) / 3 * 4);
	sam_conf_free(&c);

	size_t len;
	l_uint8 *png = noise_png(1000, 1000, &len);
	CHECKF(len > 3000000, "the noise PNG is only %zu bytes", len);
	char *b64 = sam_base64_encode(png, len);
	size_t n = strlen(b64) + 64;
	char *body = malloc(n);
	snprintf(body, n, "{\"task\": \"analyze\", \"image\": \"%s\"}", b64);
	free(b64);
	struct api_server api;
	api_start(&api, NULL, NULL, (const char *[]){ NO_SERVICE, NULL });
	/* 4 MB of JSON: past [api] max_body (1 MiB), within what [vision] max_bytes (20 MiB) needs */
	json_t *j = vt_post(&api, "/api/vision/process", body, 200);
	CHECK(jint(j, "image.width") == 1000 && jint(j, "image.height") == 1000);
	json_decref(j);
	struct api_resp r;
	vt_post_raw(&api, "/api/vision/process?task=analyze", "image/png", png, len, NULL, &r);
	CHECKF(r.status == 200, "raw 3 MB: HTTP %ld: %s", r.status, r.body);
	api_resp_free(&r);
	/* other routes keep 1 MiB */
	vt_post_raw(&api, "/api/chat", "application/json", body, strlen(body), NULL, &r);
	CHECK(strstr(api_check_error(&r, 413, "chat"), "1048576"));
	api_resp_free(&r);
	free(body);
	/* past the vision limit: 413, without the server keeping it */
	n = sam_vision_max_body(&vc) + 4096;
	body = malloc(n + 1);
	memset(body, 'A', n);
	memcpy(body, "{\"image\": \"", 11);
	memcpy(body + n - 2, "\"}", 2);
	body[n] = 0;
	vt_post_raw(&api, "/api/vision/process", "application/json", body, n, NULL, &r);
	CHECK(strstr(api_check_error(&r, 413, "vision over its limit"), "too large"));
	api_resp_free(&r);
	free(body);
	api_stop(&api);

	/* with an API key, a stranger is refused before the large body is stored */
	api_start_unready(&api, NULL, (const char *[]){ "--api-key", "sesame", NULL },
			  (const char *[]){ NO_SERVICE, NULL });
	vt_post_raw(&api, "/api/vision/process?task=analyze", "image/png", png, len, NULL, &r);
	api_check_error(&r, 401, "no key");
	api_resp_free(&r);
	vt_post_raw(&api, "/api/vision/process?task=analyze", "image/png", png, len,
		    (const char *const[]){ "Authorization: Bearer sesame", NULL }, &r);
	CHECKF(r.status == 200, "with the key: HTTP %ld: %s", r.status, r.body);
	api_resp_free(&r);
	lept_free(png);
	api_stop(&api);
}
