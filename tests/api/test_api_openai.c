/*
 * test_api_openai.c - the OpenAI-compatible endpoints of the real `sam api`:
 * reply shapes, SSE chunks and [DONE], stop strings, seeds, /v1/completions
 * against `sam run`, /v1/models, and the official `openai` npm client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_helpers.h"
#include "test.h"

#define MEM_OK "SAM_FAKE_MEMAVAILABLE_MB=8000"

/* The content of a non-stream /v1/chat/completions reply after checking its shape; malloc'd. */
static char *check_chat_completion(json_t *j, int max_tokens, const char **finish)
{
	const char *id = jstr(j, "id");
	CHECKF(id && !strncmp(id, "chatcmpl-", 9), "id: %s", id ? id : "(none)");
	CHECK_STR(jstr(j, "object"), "chat.completion");
	CHECK(jint(j, "created") > 1600000000);
	CHECK_STR(jstr(j, "model"), "stories260K");
	CHECK_INT(json_array_size(jpath(j, "choices")), 1);
	CHECK_INT(jint(j, "choices.0.index"), 0);
	CHECK_STR(jstr(j, "choices.0.message.role"), "assistant");
	const char *content = jstr(j, "choices.0.message.content");
	CHECK(content != NULL);
	const char *fr = jstr(j, "choices.0.finish_reason");
	CHECKF(fr && (!strcmp(fr, "stop") || !strcmp(fr, "length")), "finish_reason %s", fr ? fr : "(none)");
	long long pt = jint(j, "usage.prompt_tokens"), ct = jint(j, "usage.completion_tokens");
	CHECK(pt > 0);
	CHECK(ct >= 0 && ct <= max_tokens);
	CHECK_INT(jint(j, "usage.total_tokens"), pt + ct);
	CHECK(!strcmp(fr, "length") == (ct == max_tokens));
	if (finish) *finish = fr;
	return strdup(content);
}

struct chunks {
	char *text;       /* concatenated deltas (or texts) */
	char finish[32];  /* the final chunk's finish_reason */
	char id[96];
};

/* Check an OpenAI SSE body (chat or completion chunks) and collect its text. */
static void check_openai_stream(const struct api_resp *r, bool chat, struct chunks *out)
{
	CHECKF(r->status == 200, "stream status %ld: %s", r->status, r->body);
	char ct[128];
	CHECK(api_header(r, "Content-Type", ct, sizeof ct) && !strncmp(ct, "text/event-stream", 17));
	/* every event is exactly one "data: " line */
	for (const char *p = r->body; *p;) {
		const char *eol = strchr(p, '\n');
		CHECKF(eol != NULL, "unterminated line at the end of the stream");
		size_t l = (size_t)(eol - p);
		CHECKF(l == 0 || !strncmp(p, "data: ", 6), "unexpected line: %.*s", (int)l, p);
		p = eol + 1;
	}
	struct sse_event *ev;
	int n = sse_parse(r->body, r->len, &ev);
	CHECK(n >= 3);
	CHECK_STR(ev[n - 1].data, "[DONE]");
	memset(out, 0, sizeof *out);
	size_t len = 0;
	out->text = calloc(1, 1);
	int finals = 0;
	for (int i = 0; i < n - 1; i++) {
		CHECK(ev[i].event[0] == 0);
		json_t *j = json_loads(ev[i].data, 0, NULL);
		CHECKF(j != NULL, "chunk %d is not JSON: %s", i, ev[i].data);
		CHECK_STR(jstr(j, "object"), chat ? "chat.completion.chunk" : "text_completion");
		CHECK_STR(jstr(j, "model"), "stories260K");
		CHECK(jint(j, "created") > 1600000000);
		const char *id = jstr(j, "id");
		CHECK(id != NULL);
		if (i == 0) snprintf(out->id, sizeof out->id, "%s", id);
		CHECK_STR(id, out->id); /* one id for the whole stream */
		CHECK_INT(json_array_size(jpath(j, "choices")), 1);
		if (chat && i == 0) CHECK_STR(jstr(j, "choices.0.delta.role"), "assistant");
		if (chat && i > 0) CHECK(jpath(j, "choices.0.delta.role") == NULL);
		const char *piece = jstr(j, chat ? "choices.0.delta.content" : "choices.0.text");
		json_t *fr = jpath(j, "choices.0.finish_reason");
		CHECK(fr != NULL);
		if (json_is_string(fr)) {
			CHECKF(i == n - 2, "finish_reason in chunk %d of %d", i, n - 1);
			snprintf(out->finish, sizeof out->finish, "%s", json_string_value(fr));
			finals++;
		} else {
			CHECK(json_is_null(fr));
		}
		if (piece) {
			size_t l = strlen(piece);
			out->text = realloc(out->text, len + l + 1);
			memcpy(out->text + len, piece, l + 1);
			len += l;
		}
		json_decref(j);
	}
	CHECK_INT(finals, 1);
	sse_free(ev, n);
}

static char *chat_body(const char *msg, int max_tokens, bool stream, const char *extra)
{
	char *b = malloc(1024);
	snprintf(b, 1024,
		 "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"temperature\":0,"
		 "\"max_tokens\":%d,\"stream\":%s%s%s}",
		 msg, max_tokens, stream ? "true" : "false", extra ? "," : "", extra ? extra : "");
	return b;
}

TEST(api_openai_chat_completions)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, NULL });
	char *b = chat_body("Tell me a story", 48, false, NULL);
	json_t *j = api_post_json(&s, "/v1/chat/completions", b);
	const char *fr;
	char *content = check_chat_completion(j, 48, &fr);
	CHECK(strlen(content) > 0);
	char finish[16];
	snprintf(finish, sizeof finish, "%s", fr);
	json_decref(j);
	free(b);

	b = chat_body("Tell me a story", 48, true, NULL);
	struct api_resp r;
	api_post(&s, "/v1/chat/completions", b, &r);
	struct chunks c;
	check_openai_stream(&r, true, &c);
	CHECK(!strncmp(c.id, "chatcmpl-", 9));
	CHECKF(!strcmp(c.text, content), "streamed [%s] vs non-stream [%s]", c.text, content);
	CHECK_STR(c.finish, finish);
	free(c.text);
	api_resp_free(&r);
	free(b);

	/* stream_options.include_usage adds a usage chunk with no choices before [DONE] */
	b = chat_body("Tell me a story", 48, true, "\"stream_options\":{\"include_usage\":true}");
	api_post(&s, "/v1/chat/completions", b, &r);
	CHECK_INT(r.status, 200);
	struct sse_event *ev;
	int n = sse_parse(r.body, r.len, &ev);
	CHECK(n >= 3);
	CHECK_STR(ev[n - 1].data, "[DONE]");
	json_t *u = json_loads(ev[n - 2].data, 0, NULL);
	CHECK(u != NULL);
	CHECK_INT(json_array_size(jpath(u, "choices")), 0);
	CHECK(jint(u, "usage.completion_tokens") >= 1);
	CHECK_INT(jint(u, "usage.total_tokens"), jint(u, "usage.prompt_tokens") + jint(u, "usage.completion_tokens"));
	json_decref(u);
	sse_free(ev, n);
	api_resp_free(&r);
	free(b);

	/* content given as text parts, and a system message */
	j = api_post_json(&s, "/v1/chat/completions",
			  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Tell me \"},"
			  "{\"type\":\"text\",\"text\":\"a story\"}]}],\"temperature\":0,\"max_tokens\":48}");
	CHECK_STR(jstr(j, "choices.0.message.content"), content);
	json_decref(j);
	j = api_post_json(&s, "/v1/chat/completions",
			  "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
			  "\"Tell me a story\"}],\"temperature\":0,\"max_tokens\":48}");
	CHECK(jint(j, "usage.prompt_tokens") > 0);
	json_decref(j);
	free(content);
	api_stop(&s);
}

TEST(api_openai_stop_strings_and_seed)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, NULL });
	char *b = chat_body("Once upon a time", 60, false, NULL);
	json_t *j = api_post_json(&s, "/v1/chat/completions", b);
	char *full = check_chat_completion(j, 60, NULL);
	json_decref(j);
	free(b);
	size_t len = strlen(full);
	CHECKF(len >= 30, "greedy answer too short to cut: [%s]", full);

	/* a stop string from the middle of the greedy answer cuts it just before its first occurrence */
	char stop[8];
	size_t at = len / 2;
	while (at < len && (full[at] == '"' || full[at] == '\\' || (unsigned char)full[at] < 0x20 ||
			    (unsigned char)full[at] >= 0x80))
		at++;
	snprintf(stop, sizeof stop, "%.4s", full + at);
	for (char *p = stop; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80) *p = 0;
	CHECK(strlen(stop) >= 2);
	size_t expect = (size_t)(strstr(full, stop) - full);
	char extra[64];
	snprintf(extra, sizeof extra, "\"stop\":[\"%s\",\"zzqqzz\"]", stop);
	for (int streamed = 0; streamed < 2; streamed++) {
		b = chat_body("Once upon a time", 60, streamed, extra);
		const char *text, *fr;
		struct chunks c = { 0 };
		struct api_resp r;
		if (!streamed) {
			j = api_post_json(&s, "/v1/chat/completions", b);
			text = jstr(j, "choices.0.message.content");
			fr = jstr(j, "choices.0.finish_reason");
		} else {
			api_post(&s, "/v1/chat/completions", b, &r);
			check_openai_stream(&r, true, &c);
			text = c.text;
			fr = c.finish;
		}
		CHECKF(strlen(text) == expect && !strncmp(text, full, expect),
		       "stop \"%s\" (%s): got [%s], expected the first %zu bytes of [%s]", stop,
		       streamed ? "stream" : "non-stream", text, expect, full);
		CHECK_STR(fr, "stop");
		if (!streamed) json_decref(j);
		else {
			free(c.text);
			api_resp_free(&r);
		}
		free(b);
	}
	/* a plain string works too, on /v1/completions as well */
	snprintf(extra, sizeof extra, "{\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0}");
	j = api_post_json(&s, "/v1/completions", extra);
	char *ctext = strdup(jstr(j, "choices.0.text"));
	json_decref(j);
	char body[256];
	snprintf(body, sizeof body, "{\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0,\"stop\":\"%.3s\"}",
		 ctext + strlen(ctext) / 2);
	j = api_post_json(&s, "/v1/completions", body);
	char s3[4];
	snprintf(s3, sizeof s3, "%.3s", ctext + strlen(ctext) / 2);
	size_t cut = (size_t)(strstr(ctext, s3) - ctext);
	CHECKF(strlen(jstr(j, "choices.0.text")) == cut, "stop \"%s\": [%s] from [%s]", s3, jstr(j, "choices.0.text"),
	       ctext);
	CHECK_STR(jstr(j, "choices.0.finish_reason"), "stop");
	json_decref(j);
	free(ctext);

	/* seed: the same seed at temperature 1 gives the same text; another seed another text */
	const char *seeded = "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story\"}],\"temperature\":1,"
			     "\"max_tokens\":50,\"seed\":%d}";
	char sb[256];
	char *t[3];
	int seeds[3] = { 1234, 1234, 99 };
	for (int i = 0; i < 3; i++) {
		snprintf(sb, sizeof sb, seeded, seeds[i]);
		j = api_post_json(&s, "/v1/chat/completions", sb);
		t[i] = strdup(jstr(j, "choices.0.message.content"));
		json_decref(j);
	}
	CHECK_STR(t[0], t[1]);
	CHECKF(strcmp(t[0], t[2]) != 0, "seeds 1234 and 99 gave the same text: %s", t[0]);
	for (int i = 0; i < 3; i++) free(t[i]);
	free(full);
	api_stop(&s);
}

TEST(api_openai_completions_match_sam_run)
{
	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, NULL });
	const char *prompts[] = { "Once upon a time", "The little dog" };
	for (int k = 0; k < 2; k++) {
		char body[256];
		snprintf(body, sizeof body, "{\"model\":\"stories260K\",\"prompt\":\"%s\",\"max_tokens\":50,\"temperature\":0}",
			 prompts[k]);
		json_t *j = api_post_json(&s, "/v1/completions", body);
		CHECK(!strncmp(jstr(j, "id"), "cmpl-", 5));
		CHECK_STR(jstr(j, "object"), "text_completion");
		CHECK_STR(jstr(j, "model"), "stories260K");
		CHECK_INT(jint(j, "choices.0.index"), 0);
		const char *text = jstr(j, "choices.0.text");
		CHECK(text && *text);
		const char *fr = jstr(j, "choices.0.finish_reason");
		CHECK(fr && (!strcmp(fr, "stop") || !strcmp(fr, "length")));
		long long ct = jint(j, "usage.completion_tokens");
		CHECK_INT(jint(j, "usage.total_tokens"), jint(j, "usage.prompt_tokens") + ct);

		struct test_proc p;
		test_run_sam(&p, 30, "run", "-m", test_model("stories260K.gguf"), "-p", prompts[k], "--temp", "0", "-n",
			     "50", "-c", "512", NULL);
		CHECKF(p.status == 0, "sam run: %s", p.err);
		CHECKF(!strcmp(p.out, text), "sam run says\n[%s]\n/v1/completions says\n[%s]", p.out, text);
		test_proc_free(&p);
		/* prompt tokens: BOS + the prompt, as sam run counts them */
		test_run_sam(&p, 30, "run", "-m", test_model("stories260K.gguf"), "-p", prompts[k], "--temp", "0", "-n",
			     "1", "-v", NULL);
		const char *pt = strstr(p.err, "prompt tokens:");
		CHECK(pt != NULL);
		int count = 0;
		for (const char *q = pt + 14; *q && *q != '\n'; q++)
			if (*q == ' ') count++;
		CHECK_INT(jint(j, "usage.prompt_tokens"), count);
		test_proc_free(&p);

		/* the stream says the same */
		snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":50,\"temperature\":0,\"stream\":true}",
			 prompts[k]);
		struct api_resp r;
		api_post(&s, "/v1/completions", body, &r);
		struct chunks c;
		check_openai_stream(&r, false, &c);
		CHECK(!strncmp(c.id, "cmpl-", 5));
		CHECK_STR(c.text, text);
		CHECK_STR(c.finish, fr);
		free(c.text);
		api_resp_free(&r);
		json_decref(j);
	}
	/* the default max_tokens of /v1/completions is OpenAI's 16 */
	json_t *j = api_post_json(&s, "/v1/completions", "{\"prompt\":\"Once upon a time\",\"temperature\":0}");
	CHECK(jint(j, "usage.completion_tokens") <= 16);
	json_decref(j);
	api_stop(&s);
}

TEST(api_openai_models)
{
	struct api_server s;
	api_start(&s, NULL, (const char *[]){ "--small-model", test_model("stories260K-q8_0.gguf"), NULL },
		  (const char *[]){ MEM_OK, NULL });
	json_t *j = api_get_json(&s, "/v1/models");
	CHECK_STR(jstr(j, "object"), "list");
	CHECK(json_array_size(jpath(j, "data")) >= 1);
	CHECK_STR(jstr(j, "data.0.id"), "stories260K");
	CHECK_STR(jstr(j, "data.0.object"), "model");
	CHECK(jstr(j, "data.0.owned_by") != NULL);
	CHECK(jint(j, "data.0.created") > 1600000000);
	CHECK_STR(jstr(j, "data.1.id"), "stories260K-q8_0");
	json_decref(j);
	api_stop(&s);
}

/* ---- the official openai npm package ---------------------------------------------- */

/* Absolute path of an executable found on PATH, or NULL. */
static const char *which(const char *name, char *buf, size_t cap)
{
	const char *path = getenv("PATH");
	if (!path) path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *c = strchr(path, ':');
		size_t n = c ? (size_t)(c - path) : strlen(path);
		snprintf(buf, cap, "%.*s/%s", (int)n, path, name);
		if (n && access(buf, X_OK) == 0) return buf;
		path += n + (c ? 1 : 0);
	}
	return NULL;
}

TEST(api_openai_npm_client)
{
	char node[1024], npm[1024], cwd[1024], prefix[1200], script[1200], probe[1300];
	CHECKF(which("node", node, sizeof node) != NULL,
	       "node is not installed: the openai npm client test needs node and npm (scripts/deps.sh installs them)");
	CHECKF(which("npm", npm, sizeof npm) != NULL,
	       "npm is not installed: the openai npm client test needs node and npm (scripts/deps.sh installs them)");
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	snprintf(script, sizeof script, "%s/tests/api/openai_client.mjs", cwd);
	CHECKF(access(script, R_OK) == 0, "%s is missing (run the tests from the repository root)", script);
	snprintf(prefix, sizeof prefix, "%s/build/node", cwd);
	snprintf(probe, sizeof probe, "%s/node_modules/openai/package.json", prefix);
	if (access(probe, R_OK) != 0) {
		mkdir(prefix, 0755);
		struct test_proc p;
		const char *argv[] = { npm, "install", "--prefix", prefix, "openai@4", "--no-audit", "--no-fund",
				       "--no-save", "--loglevel=error", NULL };
		fprintf(stderr, "    installing the openai npm package into %s\n", prefix);
		test_run(&p, argv, 240);
		CHECKF(p.status == 0 && access(probe, R_OK) == 0,
		       "`npm install --prefix %s openai@4` failed (status %d); is the npm registry reachable?\n%s%s", prefix,
		       p.status, p.out, p.err);
		test_proc_free(&p);
	}

	struct api_server s;
	api_start(&s, NULL, NULL, (const char *[]){ MEM_OK, NULL });
	const char *msg = "Tell me a story about a dog";
	char *b = chat_body(msg, 40, false, NULL);
	json_t *j = api_post_json(&s, "/v1/chat/completions", b);
	char *raw = check_chat_completion(j, 40, NULL);
	json_decref(j);
	free(b);

	char *answers[2];
	for (int streamed = 0; streamed < 2; streamed++) {
		struct test_proc p;
		const char *argv[] = { node, script, s.url, streamed ? "stream" : "plain", msg, "40", prefix, NULL };
		test_run(&p, argv, 60);
		CHECKF(p.status == 0, "node openai_client.mjs (%s) failed with status %d:\n%s%s",
		       streamed ? "stream" : "plain", p.status, p.out, p.err);
		answers[streamed] = strdup(p.out);
		test_proc_free(&p);
	}
	CHECKF(!strcmp(answers[0], answers[1]), "openai client: non-stream [%s] vs stream [%s]", answers[0], answers[1]);
	CHECKF(!strcmp(answers[0], raw), "openai client [%s] vs raw /v1/chat/completions [%s]", answers[0], raw);

	struct test_proc p;
	test_run_sam(&p, 10, "run", "--help", NULL);
	bool has_chat = strstr(p.out, "--chat") || strstr(p.err, "--chat");
	test_proc_free(&p);
	if (!has_chat) {
		fprintf(stderr, "    NOTE: `sam run` has no --chat: the comparison with `sam run --chat` is SKIPPED\n");
	} else {
		test_run_sam(&p, 30, "run", "--chat", "-m", test_model("stories260K.gguf"), "-p", msg, "--temp", "0",
			     "-n", "40", "-c", "512", NULL);
		CHECKF(p.status == 0, "sam run --chat: %s", p.err);
		CHECKF(!strcmp(p.out, answers[0]), "sam run --chat [%s] vs openai client [%s]", p.out, answers[0]);
		test_proc_free(&p);
	}
	free(answers[0]);
	free(answers[1]);
	free(raw);
	api_stop(&s);
}
