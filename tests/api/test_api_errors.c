/*
 * test_api_errors.c - what the real `sam api` answers to bad input: every
 * error has its documented status and a JSON body, and the server keeps
 * serving afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_helpers.h"
#include "test.h"

#define MEM_OK "SAM_FAKE_MEMAVAILABLE_MB=8000"

static void expect_alive(struct api_server *s)
{
	json_t *h = api_get_json(s, "/api/health");
	CHECK_STR(jstr(h, "status"), "ok");
	json_decref(h);
}

/* POST body to path and expect a 400 whose message names `field`. */
static void expect_400(struct api_server *s, const char *path, const char *body, const char *field)
{
	struct api_resp r;
	api_post(s, path, body, &r);
	char where[512];
	snprintf(where, sizeof where, "POST %s %s", path, body);
	const char *m = api_check_error(&r, 400, where);
	if (field) CHECKF(strstr(m, field) != NULL, "%s: the message does not name '%s': %s", where, field, m);
	json_t *j = api_json(&r);
	CHECK_STR(jstr(j, "error.type"), "invalid_request_error");
	json_decref(j);
	api_resp_free(&r);
}

TEST(api_rejects_malformed_input)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, NULL });
	const char *gen_paths[] = { "/api/chat", "/api/query", "/api/cognitive/stream", "/api/think/stream",
				    "/v1/chat/completions", "/v1/completions" };
	for (size_t i = 0; i < sizeof gen_paths / sizeof *gen_paths; i++) {
		expect_400(&s, gen_paths[i], "{\"message\": \"hi\",", "JSON");      /* truncated */
		expect_400(&s, gen_paths[i], "{'message': 'hi'}", "JSON");          /* not JSON */
		expect_400(&s, gen_paths[i], "[\"message\", \"hi\"]", "object");    /* not an object */
		expect_400(&s, gen_paths[i], "\"hi\"", "object");
		expect_400(&s, gen_paths[i], "", "object");                         /* no body */
		expect_400(&s, gen_paths[i], "{\"a\":1,\"a\":2}", NULL);            /* duplicate keys */
	}
	/* wrong field types, each named */
	struct {
		const char *path, *body, *field;
	} bad[] = {
		{ "/api/chat", "{\"message\": 5}", "message" },
		{ "/api/chat", "{\"message\": \"\"}", "message" },
		{ "/api/chat", "{}", "message" },
		{ "/api/query", "{\"query\": [\"hi\"]}", "query" },
		{ "/api/chat", "{\"message\": \"hi\", \"temperature\": \"hot\"}", "temperature" },
		{ "/api/chat", "{\"message\": \"hi\", \"temperature\": 9}", "temperature" },
		{ "/api/chat", "{\"message\": \"hi\", \"max_tokens\": -1}", "max_tokens" },
		{ "/api/chat", "{\"message\": \"hi\", \"max_tokens\": 1.5}", "max_tokens" },
		{ "/api/chat", "{\"message\": \"hi\", \"stop\": 7}", "stop" },
		{ "/api/chat", "{\"message\": \"hi\", \"system\": 7}", "system" },
		{ "/api/cognitive/stream", "{\"message\": \"hi\", \"top_p\": \"x\"}", "top_p" },
		{ "/api/query", "{\"query\": \"hi\", \"seed\": \"x\"}", "seed" },
		{ "/v1/chat/completions", "{\"messages\": \"x\"}", "messages" },
		{ "/v1/chat/completions", "{\"messages\": []}", "messages" },
		{ "/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "messages[0].role" },
		{ "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 3}]}", "messages[0].content" },
		{ "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, 5]}", "messages[1].role" },
		{ "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": \"yes\"}", "stream" },
		{ "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": [\"a\", 1]}", "stop" },
		{ "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 2}", "n" },
		{ "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream_options\": 1}", "stream_options" },
		{ "/v1/completions", "{\"prompt\": 5}", "prompt" },
		{ "/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 0}", "max_tokens" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_400(&s, bad[i].path, bad[i].body, bad[i].field);

	/* a prompt longer than the context is the client's error too */
	size_t big = 40000;
	char *body = malloc(big + 64);
	strcpy(body, "{\"prompt\":\"");
	size_t at = strlen(body);
	for (size_t i = 0; i < big / 6; i++, at += 6) memcpy(body + at, "story ", 6);
	strcpy(body + at, "\"}");
	expect_400(&s, "/v1/completions", body, "context");
	memcpy(body, "{\"message\":\"", 12); /* and as one chat message, which cannot be trimmed away */
	expect_400(&s, "/api/chat", body, "context");
	memcpy(body, "{\"query\":\"xx", 12);
	expect_400(&s, "/api/query", body, "context");
	free(body);

	/* unknown paths and wrong methods */
	struct api_resp r;
	api_get(&s, "/api/nope", &r);
	api_check_error(&r, 404, "GET /api/nope");
	api_resp_free(&r);
	api_post(&s, "/v2/chat/completions", "{}", &r);
	api_check_error(&r, 404, "POST /v2/chat/completions");
	api_resp_free(&r);
	char allow[128];
	api_get(&s, "/api/chat", &r);
	api_check_error(&r, 405, "GET /api/chat");
	CHECK(api_header(&r, "Allow", allow, sizeof allow) != NULL);
	CHECK_STR(allow, "POST");
	api_resp_free(&r);
	api_request(&s, "DELETE", "/api/health", NULL, NULL, 0, &r);
	api_check_error(&r, 405, "DELETE /api/health");
	CHECK(api_header(&r, "Allow", allow, sizeof allow) != NULL);
	CHECK_STR(allow, "GET");
	api_resp_free(&r);
	api_post(&s, "/api/sessions/abc", "{}", &r);
	api_check_error(&r, 405, "POST /api/sessions/abc");
	CHECK(api_header(&r, "Allow", allow, sizeof allow) != NULL);
	CHECK(strstr(allow, "GET") && strstr(allow, "DELETE"));
	api_resp_free(&r);
	api_request(&s, "PUT", "/v1/models", "{}", NULL, 0, &r);
	api_check_error(&r, 405, "PUT /v1/models");
	api_resp_free(&r);

	expect_alive(&s);
	/* and it still generates */
	json_t *q = api_post_json(&s, "/api/query", "{\"query\":\"hi\",\"max_tokens\":4,\"temperature\":0}");
	CHECK(jint(q, "tokens") >= 1);
	json_decref(q);
	api_stop(&s);
}

TEST(api_body_limit_413)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, "SAM_API_MAX_BODY=4096", NULL });
	char *body = malloc(10001);
	memset(body, ' ', 10000);
	memcpy(body, "{\"query\":\"", 10);
	memset(body + 10, 'a', 9000);
	memcpy(body + 9010, "\"}", 2);
	body[10000] = 0;
	struct api_resp r;
	api_post(&s, "/api/query", body, &r);
	const char *m = api_check_error(&r, 413, "a 10000-byte body with a 4096-byte limit");
	CHECK(strstr(m, "4096") != NULL);
	api_resp_free(&r);
	/* sent chunked, with no Content-Length to judge by */
	api_request(&s, "POST", "/v1/completions", body, (const char *[]){ "Transfer-Encoding: chunked", NULL }, 0, &r);
	api_check_error(&r, 413, "a chunked 10000-byte body");
	api_resp_free(&r);
	/* under the limit is fine */
	snprintf(body, 10001, "{\"query\":\"%s\",\"max_tokens\":2}", "a story about a cat");
	size_t l = strlen(body);
	memset(body + l, ' ', 3000 - l); /* JSON whitespace up to 3000 bytes */
	body[3000] = 0;
	api_post(&s, "/api/query", body, &r);
	CHECKF(r.status == 200, "a 3000-byte body: %ld %s", r.status, r.body);
	api_resp_free(&r);
	free(body);
	expect_alive(&s);
	api_stop(&s);
}

TEST(api_key_required_when_set)
{
	struct api_server s;
	api_start_unready(&s, NULL, (const char *[]){ "--api-key", "s3cret-K", NULL }, (const char *[]){ MEM_OK, NULL });
	struct api_resp r;
	/* health needs no key */
	api_get(&s, "/api/health", &r);
	CHECK_INT(r.status, 200);
	api_resp_free(&r);
	const char *paths[] = { "/api/status", "/api/ready", "/metrics", "/v1/models" };
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		api_get(&s, paths[i], &r);
		api_check_error(&r, 401, paths[i]);
		char h[64];
		CHECK(api_header(&r, "WWW-Authenticate", h, sizeof h) != NULL);
		api_resp_free(&r);
	}
	const char *wrong[][2] = { { "Authorization: Bearer wrong", NULL },
				   { "Authorization: Bearer s3cret-", NULL },
				   { "Authorization: Bearer s3cret-KK", NULL },
				   { "Authorization: s3cret-K", NULL },
				   { "X-API-Key: nope", NULL } };
	for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
		api_request(&s, "GET", "/api/status", NULL, wrong[i], 0, &r);
		api_check_error(&r, 401, wrong[i][0]);
		api_resp_free(&r);
	}
	api_request(&s, "POST", "/api/query", "{\"query\":\"hi\"}", NULL, 0, &r);
	api_check_error(&r, 401, "POST /api/query without a key");
	api_resp_free(&r);

	const char *good[] = { "Authorization: Bearer s3cret-K", NULL };
	double t0 = now_s();
	do { /* wait for the model with the key */
		api_request(&s, "GET", "/api/ready", NULL, good, 0, &r);
		long st = r.status;
		api_resp_free(&r);
		if (st == 200) break;
	} while (now_s() - t0 < 20);
	api_request(&s, "GET", "/api/status", NULL, good, 0, &r);
	CHECK_INT(r.status, 200);
	api_resp_free(&r);
	api_request(&s, "GET", "/api/status", NULL, (const char *[]){ "X-API-Key: s3cret-K", NULL }, 0, &r);
	CHECK_INT(r.status, 200);
	api_resp_free(&r);
	api_request(&s, "POST", "/api/query", "{\"query\":\"hi\",\"max_tokens\":3}", good, 0, &r);
	CHECK_INT(r.status, 200);
	api_resp_free(&r);
	api_request(&s, "POST", "/v1/chat/completions",
		    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":3}", good, 0, &r);
	CHECK_INT(r.status, 200);
	api_resp_free(&r);
	expect_alive(&s);
	api_stop(&s);
}
