/*
 * test_api_adapters.c - LoRA adapters in the running `sam api`: a reload
 * changes greedy output and `off` gives back exactly the base output; a
 * swap under load never mixes adapters within one request; a bad adapter
 * is refused while the previous one keeps serving; an api started with a
 * current link serves with it from its first request; and `sam adapters
 * list|use|off` with and without a running api.
 *
 * Adapters are made here: random A and B for stories260K (rank 4, alpha
 * 8), large enough to change greedy output, saved into
 * $SAM_HOME/adapters/<id>.gguf.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_helpers.h"
#include "sam/adapters.h"
#include "sam/lora.h"
#include "sam/model.h"
#include "test.h"

#define PROMPT "Once upon a time"
#define COMPLETION "{\"prompt\":\"" PROMPT "\",\"max_tokens\":40,\"temperature\":0}"
#define STREAM "{\"prompt\":\"" PROMPT "\",\"max_tokens\":40,\"temperature\":0,\"stream\":true}"

/* The SAM_HOME api_start gives the server, set here first so adapters can be made before it starts. */
static void use_home(void)
{
	char home[600];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	mkdir(home, 0700);
	setenv("SAM_HOME", home, 1);
	char dir[700];
	snprintf(dir, sizeof dir, "%s/adapters", home);
	mkdir(dir, 0700);
}

/* uniform in [-amp, amp) from a tiny LCG */
static void fill(float *x, size_t n, float amp, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		*s = *s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = ((float)(*s >> 40) * 0x1p-24f * 2.0f - 1.0f) * amp;
	}
}

/* adapters/<id>.gguf for model file (in ../shared/models): every target of every layer, random B. */
static void make_adapter(const char *model_file, const char *id, uint64_t seed)
{
	struct sam_model m;
	struct sam_lora lo;
	struct sam_error err = { 0 };
	CHECKF(sam_model_load(&m, test_model(model_file), &err) == 0, "%s: %s", model_file, err.msg);
	CHECKF(sam_lora_init(&lo, &m, SAM_LORA_ALL, 4, 8.0f, seed, &err) == 0, "init: %s", err.msg);
	uint64_t s = seed;
	for (int l = 0; l < lo.n_layer; l++)
		for (int t = 0; t < SAM_LORA_N_TARGET; t++) {
			float *a, *b;
			if (sam_lora_params(&lo, l, t, &a, &b))
				fill(b, (size_t)(lo.layer[l][t].b.rows * lo.layer[l][t].b.cols), 0.5f, &s);
		}
	char path[4096];
	CHECK(sam_adapter_path(id, path, sizeof path, &err) == 0);
	CHECKF(sam_lora_save(&lo, &m, path, id, &err) == 0, "save: %s", err.msg);
	sam_lora_free(&lo);
	sam_model_free(&m);
}

static void use(const char *id)
{
	struct sam_error err = { 0 };
	CHECKF((id ? sam_adapters_use(id, &err) : sam_adapters_off(&err)) == 0, "%s: %s", id ? id : "off", err.msg);
}

/* POST /api/adapters/reload, expecting 200; returns the answer (decref). */
static json_t *reload(struct api_server *s)
{
	return api_post_json(s, "/api/adapters/reload", "{}");
}

/* Switch the link to id (NULL: off) and reload; checks the api now serves with it. */
static void switch_to(struct api_server *s, const char *id)
{
	use(id);
	json_t *j = reload(s);
	if (id) CHECK_STR(jstr(j, "adapter"), id);
	else CHECK(json_is_null(jpath(j, "adapter")));
	json_decref(j);
}

/* The greedy completion of PROMPT (malloc'd). */
static char *complete(struct api_server *s)
{
	json_t *j = api_post_json(s, "/v1/completions", COMPLETION);
	const char *t = jstr(j, "choices.0.text");
	CHECK(t != NULL);
	char *text = strdup(t);
	json_decref(j);
	return text;
}

/* The id of the adapter the api reports loaded (GET /api/adapters), "" for none (static). */
static const char *loaded(struct api_server *s)
{
	static char id[80];
	json_t *j = api_get_json(s, "/api/adapters");
	const char *v = jstr(j, "loaded.id");
	CHECK(v || json_is_null(jpath(j, "loaded")));
	snprintf(id, sizeof id, "%s", v ? v : "");
	json_decref(j);
	return id;
}

#define RELOADS_OK "sam_adapter_reloads_total{result=\"ok\"}"
#define RELOADS_FAILED "sam_adapter_reloads_total{result=\"failed\"}"

TEST(api_adapter_reload_changes_output)
{
	use_home();
	make_adapter("stories260K.gguf", "A", 1);
	struct api_server s;
	api_start(&s, NULL, NULL, NULL);

	json_t *j = api_get_json(&s, "/api/adapters");
	CHECK(json_is_null(jpath(j, "current")) && json_is_null(jpath(j, "loaded")));
	CHECK_INT(json_array_size(jpath(j, "adapters")), 1);
	CHECK_STR(jstr(j, "adapters.0.id"), "A");
	CHECK(jint(j, "adapters.0.size") > 0 && json_is_false(jpath(j, "adapters.0.current")));
	CHECK(json_number_value(jpath(j, "adapters.0.mtime")) > 1e9);
	json_decref(j);
	char *base = complete(&s);

	use("A");
	j = reload(&s);
	CHECK_STR(jstr(j, "adapter"), "A");
	CHECK_INT(jint(j, "rank"), 4);
	CHECK(json_number_value(jpath(j, "alpha")) == 8 && json_number_value(jpath(j, "scale")) == 1);
	CHECK(jstr(j, "path") && strstr(jstr(j, "path"), "/adapters/A.gguf"));
	CHECK(json_number_value(jpath(j, "load_ms")) >= 0);
	json_decref(j);
	j = api_get_json(&s, "/api/adapters");
	CHECK_STR(jstr(j, "current"), "A");
	CHECK_STR(jstr(j, "loaded.id"), "A");
	CHECK_INT(jint(j, "loaded.rank"), 4);
	CHECK(json_is_true(jpath(j, "adapters.0.current")));
	CHECK(!jpath(j, "error"));
	json_decref(j);
	j = api_get_json(&s, "/api/status");
	CHECK_STR(jstr(j, "adapter.id"), "A");
	json_decref(j);

	char *with_a = complete(&s);
	CHECKF(strcmp(with_a, base), "the adapter did not change the output: %s", base);
	char *again = complete(&s); /* reuses the slot's cache, computed with A */
	CHECK_STR(again, with_a);
	/* a reload of the same file keeps the loaded copy; a rewritten file is loaded anew */
	j = reload(&s);
	CHECK(json_is_true(jpath(j, "unchanged")));
	json_decref(j);
	make_adapter("stories260K.gguf", "A", 1);
	j = reload(&s);
	CHECK(json_is_false(jpath(j, "unchanged")));
	json_decref(j);
	char *anew = complete(&s);
	CHECK_STR(anew, with_a);
	free(anew);

	switch_to(&s, NULL);
	char *off = complete(&s);
	CHECK_STR(off, base);
	j = api_get_json(&s, "/api/adapters");
	CHECK(json_is_null(jpath(j, "current")) && json_is_null(jpath(j, "loaded")));
	CHECK(json_is_false(jpath(j, "adapters.0.current")));
	json_decref(j);
	j = api_get_json(&s, "/api/status");
	CHECK(json_is_null(jpath(j, "adapter")));
	json_decref(j);
	CHECK(api_metric(&s, RELOADS_OK) == 4 && api_metric(&s, RELOADS_FAILED) == 0);
	free(base);
	free(with_a);
	free(again);
	free(off);
	api_stop(&s);
}

/* ---- hot swap under load ------------------------------------------------------- */

/*
 * The text of a /v1/completions stream, or NULL with why when it is not a
 * whole successful one (status 200, a finish_reason, then [DONE]).
 */
static char *stream_text(const struct api_resp *r, char *why, size_t cap)
{
	if (r->status != 200) {
		snprintf(why, cap, "status %ld (%s): %.300s", r->status, r->error, r->body);
		return NULL;
	}
	struct sse_event *ev;
	int n = sse_parse(r->body, r->len, &ev);
	size_t len = 0;
	char *text = calloc(1, r->len + 1);
	bool finished = false, done = false;
	why[0] = '\0';
	for (int i = 0; i < n && !why[0]; i++) {
		if (done) snprintf(why, cap, "an event after [DONE]");
		else if (!strcmp(ev[i].data, "[DONE]")) done = true;
		else {
			json_t *j = json_loads(ev[i].data, 0, NULL);
			const char *t = jstr(j, "choices.0.text"), *fr = jstr(j, "choices.0.finish_reason");
			if (!t || jpath(j, "error")) snprintf(why, cap, "bad chunk %.300s", ev[i].data);
			else {
				memcpy(text + len, t, strlen(t));
				len += strlen(t);
			}
			if (fr) finished = !strcmp(fr, "stop") || !strcmp(fr, "length");
			json_decref(j);
		}
	}
	sse_free(ev, n);
	if (!why[0] && (!finished || !done)) snprintf(why, cap, "no finish_reason or no [DONE]: %.300s", r->body);
	if (why[0]) {
		free(text);
		return NULL;
	}
	return text;
}

static char *stream_once(const struct api_server *s, char *why, size_t cap)
{
	struct api_resp r;
	api_request(s, "POST", "/v1/completions", STREAM, NULL, 60, &r);
	char *t = stream_text(&r, why, cap);
	api_resp_free(&r);
	return t;
}

/*
 * The stream's text with adapter id (NULL: none) alone: the first request
 * of an api started with that current link, so no cache of another
 * adapter can be involved.
 */
static char *reference(const char *id)
{
	use(id);
	struct api_server s;
	api_start(&s, NULL, NULL, NULL);
	CHECK_STR(loaded(&s), id ? id : "");
	char why[600];
	char *t = stream_once(&s, why, sizeof why);
	CHECKF(t != NULL, "reference %s: %s", id ? id : "without adapter", why);
	api_stop(&s);
	return t;
}

struct load {
	const struct api_server *s;
	char *ref[3]; /* outputs without adapter, with A, with B */
	atomic_bool stop;
	atomic_long requests, seen[3];
	atomic_int failures;
	pthread_mutex_t mu;
	char failure[700];
};

static void load_fail(struct load *L, const char *why)
{
	pthread_mutex_lock(&L->mu);
	if (atomic_fetch_add(&L->failures, 1) == 0) snprintf(L->failure, sizeof L->failure, "%s", why);
	pthread_mutex_unlock(&L->mu);
}

static void *client_main(void *arg)
{
	struct load *L = arg;
	while (!atomic_load(&L->stop)) {
		char why[600];
		char *t = stream_once(L->s, why, sizeof why);
		atomic_fetch_add(&L->requests, 1);
		if (!t) {
			load_fail(L, why);
			continue;
		}
		int k = 0;
		while (k < 3 && strcmp(t, L->ref[k])) k++;
		if (k < 3) atomic_fetch_add(&L->seen[k], 1);
		else {
			snprintf(why, sizeof why, "a text that is none of the three references: %.400s", t);
			load_fail(L, why);
		}
		free(t);
	}
	return NULL;
}

/* How many adapter files the server has mapped (distinct paths in /proc/PID/maps); -1 without /proc. */
static int adapter_mappings(const struct api_server *s)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)s->pid);
	char *maps = test_read_file(path, NULL);
	if (!maps) return -1;
	int n = 0;
	char seen[8][600];
	for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
		char *f = strstr(line, "/adapters/");
		if (!f) continue;
		while (f > line && f[-1] != ' ') f--;
		int k = 0;
		while (k < n && strcmp(seen[k], f)) k++;
		if (k == n && n < 8) snprintf(seen[n++], sizeof seen[0], "%s", f);
	}
	free(maps);
	return n;
}

TEST(api_adapter_hot_swap_under_load)
{
	use_home();
	make_adapter("stories260K.gguf", "A", 1);
	make_adapter("stories260K.gguf", "B", 2);
	struct load L = { 0 };
	pthread_mutex_init(&L.mu, NULL);
	const char *ids[3] = { NULL, "A", "B" };
	char why[600];
	for (int k = 0; k < 3; k++) L.ref[k] = reference(ids[k]);
	struct api_server s;
	api_start(&s, NULL, (const char *[]){ "--slots", "4", NULL }, NULL);
	L.s = &s;
	CHECKF(strcmp(L.ref[0], L.ref[1]) && strcmp(L.ref[0], L.ref[2]) && strcmp(L.ref[1], L.ref[2]),
	       "the references are not all different: '%s' '%s' '%s'", L.ref[0], L.ref[1], L.ref[2]);

	pthread_t t[4];
	for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, client_main, &L) == 0);
	int swaps = 0;
	double t0 = now_s();
	while (swaps < 18 || now_s() - t0 < 4) {
		switch_to(&s, ids[swaps++ % 3]);
		usleep(100000 + (swaps % 4) * 37000);
	}
	atomic_store(&L.stop, true);
	for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);

	long n = atomic_load(&L.requests);
	fprintf(stderr, "    %ld requests over %d swaps: %ld base, %ld A, %ld B\n", n, swaps, atomic_load(&L.seen[0]),
		atomic_load(&L.seen[1]), atomic_load(&L.seen[2]));
	CHECKF(atomic_load(&L.failures) == 0, "%d of %ld requests failed; first: %s", atomic_load(&L.failures), n,
	       L.failure);
	CHECKF(n >= 40, "only %ld requests ran", n);
	for (int k = 0; k < 3; k++) CHECKF(atomic_load(&L.seen[k]) > 0, "no request ran with reference %d", k);
	CHECK(api_metric(&s, RELOADS_OK) == swaps);
	/* the api is still sound: the last adapter serves, nothing is left running */
	char *last = stream_once(&s, why, sizeof why);
	CHECKF(last && !strcmp(last, L.ref[(swaps - 1) % 3]), "after the swaps: %s", last ? last : why);
	free(last);
	json_t *st = api_get_json(&s, "/api/status");
	CHECK_INT(jint(st, "active_generations"), 0);
	json_decref(st);
	/* many more swaps, quickly; then every adapter swapped out is freed (unmapped) */
	for (int i = 0; i < 150; i++) switch_to(&s, ids[1 + i % 2]);
	switch_to(&s, NULL);
	int mapped = adapter_mappings(&s);
	for (double t1 = now_s(); mapped > 0 && now_s() - t1 < 5; mapped = adapter_mappings(&s)) usleep(20000);
	CHECKF(mapped <= 0, "%d adapter files are still mapped with the adapter off", mapped);
	for (int k = 0; k < 3; k++) free(L.ref[k]);
	pthread_mutex_destroy(&L.mu);
	api_stop(&s); /* under the sanitizers: no leak of any adapter swapped out */
}

/* ---- refusals ------------------------------------------------------------------- */

/* Reload expecting a 409 whose message contains want; the api keeps serving with keep. */
static void reload_refused(struct api_server *s, const char *want, const char *keep)
{
	struct api_resp r;
	api_post(s, "/api/adapters/reload", "{}", &r);
	const char *m = api_check_error(&r, 409, "reload of a bad adapter");
	CHECKF(strstr(m, want) != NULL, "the message '%s' does not say '%s'", m, want);
	api_resp_free(&r);
	CHECK_STR(loaded(s), keep);
	json_t *j = api_get_json(s, "/api/adapters");
	CHECKF(jstr(j, "error") && strstr(jstr(j, "error"), want), "GET /api/adapters has no error '%s'", want);
	json_decref(j);
}

static void copy_truncated(const char *from_id, const char *to_id)
{
	char from[4096], to[4096];
	struct sam_error err = { 0 };
	CHECK(sam_adapter_path(from_id, from, sizeof from, &err) == 0 && sam_adapter_path(to_id, to, sizeof to, &err) == 0);
	size_t len;
	char *data = test_read_file(from, &len);
	CHECK(data != NULL);
	test_write_file(to, data, len / 2);
	free(data);
}

TEST(api_adapter_bad_file_keeps_previous)
{
	use_home();
	make_adapter("stories260K.gguf", "A", 1);
	make_adapter("tiny-llama.gguf", "other", 3); /* another model's shapes */
	copy_truncated("A", "trunc");
	struct api_server s;
	api_start(&s, NULL, NULL, NULL);
	char *base = complete(&s);
	switch_to(&s, "A");
	char *with_a = complete(&s);

	use("other");
	reload_refused(&s, "other.gguf", "A");
	char *t = complete(&s);
	CHECK_STR(t, with_a);
	free(t);
	use("trunc");
	reload_refused(&s, "trunc.gguf", "A");
	/* a link whose file is gone is not "no adapter" */
	make_adapter("stories260K.gguf", "gone", 4);
	use("gone");
	char path[4096];
	struct sam_error err = { 0 };
	CHECK(sam_adapter_path("gone", path, sizeof path, &err) == 0 && unlink(path) == 0);
	reload_refused(&s, "gone", "A");
	t = complete(&s);
	CHECK_STR(t, with_a);
	free(t);
	CHECK(api_metric(&s, RELOADS_OK) == 1 && api_metric(&s, RELOADS_FAILED) == 3);
	/* a good reload clears the error */
	switch_to(&s, "A");
	json_t *j = api_get_json(&s, "/api/adapters");
	CHECK(!jpath(j, "error"));
	json_decref(j);
	api_stop(&s);

	/* started with a bad current adapter: it starts anyway, without adapter, and says why */
	use("other");
	api_start(&s, NULL, NULL, NULL);
	j = api_get_json(&s, "/api/adapters");
	CHECK(json_is_null(jpath(j, "loaded")));
	CHECK_STR(jstr(j, "current"), "other");
	CHECK(jstr(j, "error") && strstr(jstr(j, "error"), "other.gguf"));
	json_decref(j);
	t = complete(&s);
	CHECK_STR(t, base);
	free(t);
	api_stop(&s);
	free(base);
	free(with_a);
}

TEST(api_adapter_reload_without_model_is_503)
{
	use_home();
	char missing[600];
	snprintf(missing, sizeof missing, "%s/no-such-model.gguf", test_tmpdir());
	struct api_server s;
	api_start_unready(&s, missing, NULL, NULL);
	struct api_resp r;
	api_post(&s, "/api/adapters/reload", "{}", &r);
	api_check_error(&r, 503, "reload without a model");
	char ra[16];
	CHECK(api_header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) > 0);
	api_resp_free(&r);
	json_t *j = api_get_json(&s, "/api/adapters");
	CHECK(json_is_null(jpath(j, "loaded")) && json_is_array(jpath(j, "adapters")));
	json_decref(j);
	api_stop(&s);
}

TEST(api_adapter_current_at_start)
{
	use_home();
	make_adapter("stories260K.gguf", "A", 1);
	use("A");
	struct api_server s;
	api_start(&s, NULL, NULL, NULL);
	char *first = complete(&s); /* the very first request */
	CHECK_STR(loaded(&s), "A");
	json_t *j = api_get_json(&s, "/api/status");
	CHECK_STR(jstr(j, "adapter.id"), "A");
	json_decref(j);
	switch_to(&s, NULL);
	char *base = complete(&s);
	CHECKF(strcmp(first, base), "the first answer was the base model's: %s", base);
	switch_to(&s, "A");
	char *again = complete(&s);
	CHECK_STR(again, first);
	free(first);
	free(base);
	free(again);
	api_stop(&s);
}

/* ---- sam adapters ----------------------------------------------------------------- */

/* Run `sam adapters ARGS...` expecting exit status want, and stdout or stderr containing text. */
#define SAM_ADAPTERS(want, out_has, err_has, ...)                                                            \
	do {                                                                                                     \
		struct test_proc p_;                                                                             \
		test_run_sam(&p_, 60, "adapters", __VA_ARGS__, NULL);                                           \
		CHECKF(p_.status == (want), "sam adapters " #__VA_ARGS__ ": status %d, expected %d\nstdout: %s\nstderr: %s", \
		       p_.status, (want), p_.out, p_.err);                                                       \
		CHECKF(!(out_has) || strstr(p_.out, (out_has)), "sam adapters " #__VA_ARGS__ ": stdout lacks '%s': %s",   \
		       (const char *)(out_has), p_.out);                                                         \
		CHECKF(!(err_has) || strstr(p_.err, (err_has)), "sam adapters " #__VA_ARGS__ ": stderr lacks '%s': %s",   \
		       (const char *)(err_has), p_.err);                                                         \
		test_proc_free(&p_);                                                                             \
	} while (0)

static const char *current_link(void)
{
	static char id[SAM_ADAPTER_ID_MAX + 1];
	struct sam_error err;
	if (sam_adapters_current(id, sizeof id, NULL, 0, &err)) id[0] = '\0';
	return id;
}

TEST(cli_adapters_list_use_off)
{
	use_home();
	setenv("SAM_API_URL", "http://127.0.0.1:1", 1); /* nothing listens there */
	unsetenv("SAM_API_KEY");
	const char *none = NULL;
	SAM_ADAPTERS(0, "(none)", none, "list");
	SAM_ADAPTERS(2, none, "unknown subcommand", "bogus");
	SAM_ADAPTERS(2, none, "expected one adapter ID", "use");
	SAM_ADAPTERS(2, none, "not an adapter id", "use", "../x");
	SAM_ADAPTERS(2, none, "unexpected argument", "off", "extra");
	SAM_ADAPTERS(2, none, "unexpected argument", "list", "extra");
	SAM_ADAPTERS(1, none, "no adapter 'nosuch'", "use", "nosuch");

	/* without an api */
	make_adapter("stories260K.gguf", "A", 1);
	make_adapter("stories260K.gguf", "B", 2);
	SAM_ADAPTERS(0, "no api is running", none, "use", "A");
	CHECK_STR(current_link(), "A");
	struct test_proc p;
	test_run_sam(&p, 30, "adapters", NULL);
	CHECKF(p.status == 0 && strstr(p.out, "ID") && strstr(p.out, "* A ") && strstr(p.out, "  B "),
	       "list: %d %s %s", p.status, p.out, p.err);
	test_proc_free(&p);
	SAM_ADAPTERS(0, "no adapter is current; no api is running", none, "off");
	CHECK_STR(current_link(), "");

	/* with one, which wants a key for every route but /api/health */
	struct api_server s;
	api_start_unready(&s, NULL, (const char *[]){ "--api-key", "sekrit", NULL }, NULL);
	const char *auth[] = { "Authorization: Bearer sekrit", NULL };
	struct api_resp r;
	for (int i = 0; i < 400; i++) {
		api_request(&s, "GET", "/api/ready", NULL, auth, 10, &r);
		long st = r.status;
		api_resp_free(&r);
		if (st == 200) break;
		usleep(25000);
	}
	setenv("SAM_API_URL", s.url, 1);
	api_post(&s, "/api/adapters/reload", "{}", &r);
	CHECK_INT(r.status, 401);
	api_resp_free(&r);
	/* not told, but the link stays as asked: the api loads it when it starts next */
	SAM_ADAPTERS(1, none, "the api could not be told", "use", "B");
	CHECK_STR(current_link(), "B");
	api_request(&s, "GET", "/api/adapters", NULL, auth, 10, &r);
	CHECK(r.status == 200 && strstr(r.body, "\"loaded\":null"));
	api_resp_free(&r);
	setenv("SAM_API_KEY", "sekrit", 1);
	SAM_ADAPTERS(0, "the running api reloaded and serves with B", none, "use", "B");
	api_request(&s, "GET", "/api/adapters", NULL, auth, 10, &r);
	CHECK(r.status == 200 && strstr(r.body, "\"loaded\":{\"id\":\"B\""));
	api_resp_free(&r);
	SAM_ADAPTERS(0, "serves with A", none, "use", "A");

	/* an adapter the api refuses: exit 1, the api keeps A and the link goes back to it */
	make_adapter("tiny-llama.gguf", "other", 3);
	SAM_ADAPTERS(1, none, "back to A", "use", "other");
	CHECK_STR(current_link(), "A");
	api_request(&s, "GET", "/api/adapters", NULL, auth, 10, &r);
	CHECK(r.status == 200 && strstr(r.body, "\"loaded\":{\"id\":\"A\""));
	api_resp_free(&r);

	SAM_ADAPTERS(0, "the running api reloaded and serves without adapter", none, "off");
	api_request(&s, "GET", "/api/adapters", NULL, auth, 10, &r);
	CHECK(r.status == 200 && strstr(r.body, "\"loaded\":null"));
	api_resp_free(&r);
	api_stop(&s);
	unsetenv("SAM_API_KEY");
}
