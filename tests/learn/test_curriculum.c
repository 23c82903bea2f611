/*
 * test_curriculum.c - self-practice: grading (pure), seeding, leases on
 * tasks across connections, recording attempts; and `sam learn
 * curriculum` through the real binary against a fake api served in this
 * process (http.h), which answers /api/query as the test chooses: not at
 * all (nothing listens), 503, 400, or the reference (wrong on purpose for
 * some tasks).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "learn/learn_util.h"
#include "sam/client.h"
#include "sam/curriculum.h"
#include "sam/db.h"
#include "sam/http.h"
#include "test.h"

/* ---- grading ------------------------------------------------------------------ */

static void check_norm(const char *in, const char *want)
{
	char *got = sam_grade_normalise(in);
	CHECKF(!strcmp(got, want), "normalise(\"%s\") == \"%s\", expected \"%s\"", in, got, want);
	free(got);
}

TEST(curriculum_grade_normalise)
{
	check_norm("The  Answer: **Paris**!", "answer paris");
	check_norm("It costs 1,000 dollars, or 3.14 each.", "it costs 1000 dollars or 3.14 each");
	check_norm("1,2,3", "1 2 3");
	check_norm("15 - 23 = -8.", "15 23 -8");
	check_norm("At 15:30, an hour late", "at 15:30 hour late");
	check_norm("Six legs; twenty-one eyes", "6 legs 20 1 eyes");
	check_norm("well-known e-mail", "well known e mail");
	check_norm("Café — “naïve” H2O", "café naïve h2o");
	check_norm("", "");
	check_norm("a an the", "");
}

static bool ref_ok(const char *answer, const char *reference)
{
	struct sam_grade g;
	sam_grade_reference(answer, reference, &g);
	CHECK(g.score >= 0 && g.score <= 1);
	return g.correct;
}

TEST(curriculum_grade_reference)
{
	/* the reference among the answer's words */
	CHECK(ref_ok("The capital of France is Paris.", "Paris"));
	CHECK(ref_ok("An insect has six legs.", "6"));
	CHECK(ref_ok("15 minus 23 is -8", "-8"));
	CHECK(ref_ok("It arrives at 15:30.", "15:30"));
	CHECK(ref_ok("The Pacific Ocean is the largest.", "the Pacific"));
	CHECK(ref_ok("CPU means Central Processing Unit", "central processing unit"));
	CHECK(ref_ok("There are 1,000 grams in a kilogram", "1000"));
	/* near misses */
	CHECK(!ref_ok("It is 14.", "4"));
	CHECK(!ref_ok("421", "42"));
	CHECK(!ref_ok("Parisian cafes are nice", "Paris"));
	CHECK(!ref_ok("15 minus 23 is 8", "-8"));
	CHECK(!ref_ok("George Bush", "George Washington"));
	CHECK(!ref_ok("John Quincy Adams", "John Adams")); /* short references must be contained */
	CHECK(!ref_ok("It arrives at 3:30 pm", "15:30"));
	CHECK(!ref_ok("", "Paris"));
	CHECK(!ref_ok("Paris", ""));
	CHECK(!ref_ok(NULL, "Paris"));
	/* F1 for longer references, with the numbers required */
	CHECK(ref_ok("Photosynthesis converts light into chemical energy",
		     "photosynthesis converts light energy into chemical energy"));
	CHECK(ref_ok("Da Vinci", "Leonardo da Vinci"));
	CHECK(!ref_ok("water boils at 90 degrees celsius", "water boils at 100 degrees celsius"));
	CHECK(!ref_ok("the cat sat on a warm mat today", "the dog slept on the cold floor")); /* low F1 */
}

TEST(curriculum_grade_f1)
{
	CHECK(sam_grade_f1("a b c", "a b c") == 1.0);
	double f = sam_grade_f1("x y z", "x y w");
	CHECKF(f > 0.666 && f < 0.667, "f1 %f", f);
	f = sam_grade_f1("x x y", "x y y"); /* multisets: 2 common of 3 and 3 */
	CHECKF(f > 0.666 && f < 0.667, "f1 %f", f);
	CHECK(sam_grade_f1("", "x") == 0);
	CHECK(sam_grade_f1("The, the", "a") == 0); /* only articles: no words */
	CHECK(sam_grade_f1("Hello WORLD!", "hello world") == 1.0);
}

TEST(curriculum_grade_agreement)
{
	struct sam_grade g;
	const char *paris[] = { "London.", "Paris", "It is Paris." };
	sam_grade_agreement(paris, 3, &g);
	CHECK(g.correct);
	CHECK_INT(g.pick, 1);
	CHECKF(g.score > 0.66 && g.score < 0.67, "score %f", g.score);
	const char *all_differ[] = { "red", "green", "blue" };
	sam_grade_agreement(all_differ, 3, &g);
	CHECK(!g.correct);
	CHECKF(g.score > 0.33 && g.score < 0.34, "score %f", g.score);
	const char *two_of_four[] = { "yes", "no", "yes", "no" }; /* no strict majority */
	sam_grade_agreement(two_of_four, 4, &g);
	CHECK(!g.correct);
	const char *three_of_four[] = { "no", "Yes!", "yes", "YES." };
	sam_grade_agreement(three_of_four, 4, &g);
	CHECK(g.correct);
	CHECK_INT(g.pick, 1);
	CHECK(g.score == 0.75);
	const char *empty[] = { "", "  ", NULL };
	sam_grade_agreement(empty, 3, &g);
	CHECK(!g.correct);
	const char *sentences[] = { "Sleep lets the body and brain rest and repair.",
				    "Sleep lets the brain and body rest and repair",
				    "Because we are tired." };
	sam_grade_agreement(sentences, 3, &g);
	CHECK(g.correct);
	CHECK(g.pick == 0);
}

/* ---- the store ---------------------------------------------------------------- */

static struct sam_db *open_db(void)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	char path[4200];
	snprintf(path, sizeof path, "%s/cur.db", test_tmpdir());
	CHECKF(sam_db_open(&db, path, &err) == 0, "%s", err.msg);
	return db;
}

static void seed(struct sam_db *db, const char *text, int64_t want_added, int64_t want_updated)
{
	struct sam_error err = { 0 };
	int64_t added = -1, updated = -1;
	CHECKF(sam_curriculum_seed(db, text, strlen(text), "t.jsonl", &added, &updated, &err) == 0, "%s", err.msg);
	CHECK_INT(added, want_added);
	CHECK_INT(updated, want_updated);
}

TEST(curriculum_builtin_seeds_idempotently)
{
	struct sam_db *db = open_db();
	struct sam_error err = { 0 };
	int64_t added = 0, updated = 0;
	CHECK(sam_curriculum_builtin_len == strlen(sam_curriculum_builtin));
	CHECKF(sam_curriculum_seed(db, sam_curriculum_builtin, sam_curriculum_builtin_len, "built-in", &added, &updated,
				   &err) == 0,
	       "%s", err.msg);
	CHECKF(added >= 60 && added <= 100, "%lld built-in tasks", (long long)added);
	CHECK_INT(updated, 0);
	CHECK(learn_q_int(db, "SELECT count(DISTINCT category) FROM curriculum_tasks") >= 6);
	CHECK(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks WHERE reference IS NULL") >= 5);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks WHERE category = ''"), 0);
	/* again: nothing new, nothing changed */
	CHECKF(sam_curriculum_seed(db, sam_curriculum_builtin, sam_curriculum_builtin_len, "built-in", &added, &updated,
				   &err) == 0,
	       "%s", err.msg);
	CHECK_INT(added, 0);
	CHECK_INT(updated, 0);
	/* a corrected reference and a new question; blank lines skipped; default category */
	int64_t n = learn_q_int(db, "SELECT count(*) FROM curriculum_tasks");
	seed(db,
	     "{\"question\": \"What is the capital of France?\", \"reference\": \"Paris, France\","
	     " \"category\": \"geography\"}\n"
	     "\n  \r\n"
	     "{\"question\": \"Name a colour.\", \"reference\": null}\n",
	     1, 1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks"), n + 1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks WHERE question = 'Name a colour.'"
				  " AND reference IS NULL AND category = 'general'"),
		  1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks WHERE reference = 'Paris, France'"), 1);
	sam_db_close(db);
}

TEST(curriculum_seed_rejects_bad_lines)
{
	struct sam_db *db = open_db();
	static const char *bad[] = {
		"{\"question\": \"ok\"}\nnot json\n",
		"{\"question\": \"ok\"}\n[\"question\"]\n",
		"{\"question\": \"ok\"}\n{\"reference\": \"x\"}\n",
		"{\"question\": \"ok\"}\n{\"question\": \"\"}\n",
		"{\"question\": \"ok\"}\n{\"question\": 3}\n",
		"{\"question\": \"ok\"}\n{\"question\": \"q\", \"reference\": 4}\n",
		"{\"question\": \"ok\"}\n{\"question\": \"q\", \"answer\": \"typo for reference\"}\n",
		"{\"question\": \"ok\"}\n{\"question\": \"q\", \"question\": \"twice\"}\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sam_error err = { 0 };
		int64_t added = 0;
		int rc = sam_curriculum_seed(db, bad[i], strlen(bad[i]), "bad.jsonl", &added, NULL, &err);
		CHECKF(rc == SAM_EFORMAT, "case %zu: rc %d", i, rc);
		CHECKF(!strncmp(err.msg, "bad.jsonl:2: ", 13), "case %zu: %s", i, err.msg);
	}
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks"), 0); /* the good first lines neither */
	/* too long */
	size_t n = SAM_CURRICULUM_TEXT_MAX + 100;
	char *line = malloc(n + 32);
	int k = snprintf(line, n + 32, "{\"question\": \"");
	memset(line + k, 'x', SAM_CURRICULUM_TEXT_MAX + 1);
	strcpy(line + k + SAM_CURRICULUM_TEXT_MAX + 1, "\"}");
	struct sam_error err = { 0 };
	CHECK(sam_curriculum_seed(db, line, strlen(line), "long", NULL, NULL, &err) == SAM_EFORMAT);
	CHECKF(strstr(err.msg, "long:1: ") && strstr(err.msg, "longer than"), "%s", err.msg);
	free(line);
	/* and from a file */
	char path[4200];
	snprintf(path, sizeof path, "%s/c.jsonl", test_tmpdir());
	test_write_file(path, bad[0], strlen(bad[0]));
	CHECK(sam_curriculum_seed_file(db, path, NULL, NULL, &err) == SAM_EFORMAT);
	CHECKF(strstr(err.msg, "c.jsonl:2: not JSON"), "%s", err.msg);
	snprintf(path, sizeof path, "%s/missing.jsonl", test_tmpdir());
	CHECK(sam_curriculum_seed_file(db, path, NULL, NULL, &err) == SAM_ENOTFOUND);
	CHECKF(strstr(err.msg, "missing.jsonl"), "%s", err.msg);
	sam_db_close(db);
}

static void seed_n(struct sam_db *db, int n)
{
	size_t cap = (size_t)n * 64 + 1, len = 0;
	char *text = malloc(cap);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "{\"question\": \"q%d\", \"reference\": \"%d\"}\n", i,
					i);
	struct sam_error err = { 0 };
	CHECKF(sam_curriculum_seed(db, text, len, "n", NULL, NULL, &err) == 0, "%s", err.msg);
	free(text);
}

TEST(curriculum_claims_are_exclusive_across_connections)
{
	struct sam_db *a = open_db(), *b = open_db();
	struct sam_error err = { 0 };
	seed_n(a, 3);
	struct sam_curriculum_task t1, t2, t3, t4;
	CHECKF(sam_curriculum_claim(a, 0, 0, 60, &t1, &err) == 0, "%s", err.msg);
	CHECKF(sam_curriculum_claim(b, 1, 0, 60, &t2, &err) == 0, "%s", err.msg);
	CHECKF(sam_curriculum_claim(a, 2, 0, 60, &t3, &err) == 0, "%s", err.msg);
	CHECK(t1.id != t2.id && t2.id != t3.id && t1.id != t3.id);
	CHECK_INT(sam_curriculum_claim(b, 3, 0, 60, &t4, &err), SAM_ENOTFOUND);
	CHECK_INT(sam_curriculum_claim(b, 3, t1.id, 60, &t4, &err), SAM_ENOTFOUND); /* held: cannot be resumed */
	CHECK_STR(t1.question, "q0");
	CHECK_STR(t1.reference, "0");
	CHECK_STR(t1.category, "general");
	/* the claim names the task in the stream's row */
	struct sam_curriculum_stream st;
	CHECK_INT(sam_curriculum_stream_load(b, 1, &st, &err), 0);
	CHECK_INT(st.task_id, t2.id);
	CHECK_INT(sam_curriculum_stream_load(b, 9, &st, &err), 0);
	CHECK_INT(st.task_id, 0);
	/* renewing is for the holder only; releasing frees it for anyone */
	CHECK_INT(sam_curriculum_renew(a, 0, t1.id, 60, &err), 0);
	CHECK_INT(sam_curriculum_renew(b, 1, t1.id, 60, &err), SAM_ENOTFOUND);
	CHECK_INT(sam_curriculum_release(b, 1, t1.id, &err), 0); /* not its task: no effect */
	CHECK_INT(sam_curriculum_claim(b, 3, 0, 60, &t4, &err), SAM_ENOTFOUND);
	CHECK_INT(sam_curriculum_release(a, 0, t1.id, &err), 0);
	CHECKF(sam_curriculum_claim(b, 3, t1.id, 60, &t4, &err) == 0, "%s", err.msg);
	CHECK_INT(t4.id, t1.id);
	CHECK_INT(learn_q_int(a, "SELECT claimed_by FROM curriculum_tasks"
				 " WHERE id = (SELECT task_id FROM curriculum_streams WHERE stream = 3)"),
		  3);
	sam_curriculum_task_free(&t1), sam_curriculum_task_free(&t2), sam_curriculum_task_free(&t3),
		sam_curriculum_task_free(&t4);
	sam_db_close(a);
	sam_db_close(b);
}

TEST(curriculum_lease_runs_out)
{
	struct sam_db *a = open_db(), *b = open_db();
	struct sam_error err = { 0 };
	seed_n(a, 1);
	struct sam_curriculum_task t1, t2;
	/* a stream that crashed: its lease ends (here at once) and the task comes back */
	CHECK_INT(sam_curriculum_claim(a, 0, 0, -1, &t1, &err), 0);
	CHECKF(sam_curriculum_claim(b, 1, 0, 60, &t2, &err) == 0, "%s", err.msg);
	CHECK_INT(t2.id, t1.id);
	CHECK_INT(sam_curriculum_renew(a, 0, t1.id, 60, &err), SAM_ENOTFOUND);
	sam_curriculum_task_free(&t1), sam_curriculum_task_free(&t2);
	sam_db_close(a);
	sam_db_close(b);
}

struct claimer {
	int stream, n;
	int64_t ids[64];
};

static void *claim_all(void *arg)
{
	struct claimer *c = arg;
	struct sam_db *db;
	struct sam_error err = { 0 };
	char path[4200];
	snprintf(path, sizeof path, "%s/cur.db", test_tmpdir());
	if (sam_db_thread(&db, path, &err)) return NULL;
	for (;;) {
		struct sam_curriculum_task t;
		int rc = sam_curriculum_claim(db, c->stream, 0, 600, &t, &err);
		if (rc) break;
		if (c->n < 64) c->ids[c->n++] = t.id;
		sam_curriculum_task_free(&t);
	}
	sam_db_thread_release();
	return NULL;
}

TEST(curriculum_claims_race_between_threads)
{
	struct sam_db *db = open_db();
	enum { THREADS = 6, TASKS = 60 };
	seed_n(db, TASKS);
	struct claimer c[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		c[i] = (struct claimer){ .stream = i };
		CHECK(pthread_create(&th[i], NULL, claim_all, &c[i]) == 0);
	}
	int seen[TASKS + 1] = { 0 }, total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		for (int k = 0; k < c[i].n; k++) {
			CHECK(c[i].ids[k] >= 1 && c[i].ids[k] <= TASKS);
			seen[c[i].ids[k]]++;
			total++;
		}
	}
	CHECK_INT(total, TASKS);
	for (int i = 1; i <= TASKS; i++) CHECK_INT(seen[i], 1);
	sam_db_close(db);
}

TEST(curriculum_record_attempts)
{
	struct sam_db *db = open_db();
	struct sam_error err = { 0 };
	seed(db, "{\"question\": \"What is 2+2?\", \"reference\": \"4\", \"category\": \"arithmetic\"}\n", 1, 0);
	struct sam_curriculum_task t;
	CHECK_INT(sam_curriculum_claim(db, 0, 0, 60, &t, &err), 0);
	bool added = false;
	struct sam_curriculum_attempt a = { .stream = 0, .task = &t, .answer = "It is 4.", .score = 1, .correct = true,
					    .next_try = 12345 };
	CHECKF(sam_curriculum_record(db, &a, &added, &err) == 0, "%s", err.msg);
	CHECK(added);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM examples WHERE source = 'curriculum'"
				  " AND category = 'arithmetic' AND content LIKE '%What is 2+2?%It is 4.%'"
				  " AND origin = 'curriculum:1' AND quality = 1"),
		  1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_attempts a"
				  " JOIN examples e ON e.hash = a.example_hash"
				  " WHERE a.correct = 1 AND a.answer = 'It is 4.' AND a.stream = 0"),
		  1);
	CHECK_INT(learn_q_int(db, "SELECT attempts * 10 + correct FROM curriculum_tasks"), 11);
	CHECK_INT(learn_q_int(db, "SELECT claimed_until FROM curriculum_tasks"), 0);
	struct sam_curriculum_stream st;
	CHECK_INT(sam_curriculum_stream_load(db, 0, &st, &err), 0);
	CHECK_INT(st.task_id, 0);
	CHECK_INT(st.failures, 0);
	CHECK(st.next_try == 12345);
	/* the same answer again: one example; a refused request: an attempt without an answer */
	CHECK_INT(sam_curriculum_record(db, &a, &added, &err), 0);
	CHECK(!added);
	struct sam_curriculum_attempt refused = { .stream = 1, .task = &t };
	CHECK_INT(sam_curriculum_record(db, &refused, &added, &err), 0);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM examples"), 1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_attempts WHERE answer IS NULL AND correct = 0"), 1);
	CHECK_INT(learn_q_int(db, "SELECT attempts * 10 + correct FROM curriculum_tasks"), 32);
	/* a stream's row round-trips */
	struct sam_curriculum_stream w = { .stream = 5, .task_id = t.id, .failures = 3, .next_try = 99.5 };
	CHECK_INT(sam_curriculum_stream_save(db, &w, &err), 0);
	CHECK_INT(sam_curriculum_stream_load(db, 5, &st, &err), 0);
	CHECK(st.task_id == t.id && st.failures == 3 && st.next_try == 99.5 && st.stream == 5);
	sam_curriculum_task_free(&t);
	sam_db_close(db);
}

/* ---- the fake api --------------------------------------------------------------- */

enum fake_mode { FAKE_OK, FAKE_503, FAKE_400, FAKE_500 };
static atomic_int fake_mode;
static atomic_int fake_requests;

/* FAKE_OK: the reference, except every fourth task gets a wrong answer; one answer for questions without. */
static void fake_query(struct http_req *r, void *ud)
{
	(void)ud;
	atomic_fetch_add(&fake_requests, 1);
	json_t *body = http_body_json(r);
	if (!body) return;
	int mode = atomic_load(&fake_mode);
	const char *q = json_string_value(json_object_get(body, "query"));
	if (!q) {
		http_error(r, 400, "no query");
	} else if (mode == FAKE_503) {
		http_error(r, 503, "the model is still loading");
	} else if (mode == FAKE_400) {
		http_error(r, 400, "the prompt is too long");
	} else if (mode == FAKE_500) {
		http_error(r, 500, "generation failed");
	} else {
		struct sam_db *db;
		sqlite3_stmt *st;
		char answer[4300] = "Blue and yellow make green.";
		const char *sql = "SELECT id, reference FROM curriculum_tasks WHERE question = ?";
		if (sam_db_thread(&db, NULL, NULL) == 0 && sam_db_prepare(db, &st, sql, NULL) == 0) {
			sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 1)) {
				const unsigned char *ref = sqlite3_column_text(st, 1);
				if (sqlite3_column_int64(st, 0) % 4 == 0)
					snprintf(answer, sizeof answer, "I do not know.");
				else
					snprintf(answer, sizeof answer, "Sure. The answer is: %s.", ref);
			}
			sqlite3_finalize(st);
		}
		json_t *j = json_pack("{s:s, s:s, s:i}", "response", answer, "model", "fake", "tokens", 5);
		http_respond_json(r, 200, j);
	}
	json_decref(body);
}

static const struct http_route fake_routes[] = { { "POST", "/api/query", fake_query }, { 0 } };

static struct http_server *fake_start(int port)
{
	struct http_server *s;
	struct sam_error err = { 0 };
	CHECKF(http_start(&s, "127.0.0.1", port, fake_routes, NULL, NULL, &err) == 0, "fake api: %s", err.msg);
	return s;
}

/* A port nothing listens on (bound and closed again). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	      getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- the real binary ------------------------------------------------------------ */

struct cur_proc {
	pid_t pid;
	char log[4200], port_file[4200];
	struct sam_client cl; /* to its health server */
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void dump_log(const struct cur_proc *p)
{
	size_t len = 0;
	char *text = test_read_file(p->log, &len);
	if (!text) return;
	size_t from = len > 4000 ? len - 4000 : 0;
	fprintf(stderr, "    --- sam learn curriculum log, last %zu bytes ---\n%s\n    --- end ---\n", len - from,
		text + from);
	free(text);
}

/*
 * Start `sam learn curriculum --port 0 --port-file F ARGS...` with the api
 * at api_url and plenty of memory (env, "NAME=value" strings, may add to
 * or override that), its output in a log; wait for its port.
 */
static void cur_start(struct cur_proc *p, const char *api_url, const char *const *args, const char *const *env)
{
	static int n_started;
	int n = ++n_started;
	memset(p, 0, sizeof *p);
	snprintf(p->port_file, sizeof p->port_file, "%s/cur-port-%d", test_tmpdir(), n);
	snprintf(p->log, sizeof p->log, "%s/cur-%d.log", test_tmpdir(), n);
	const char *argv[32] = { test_sam_bin(), "learn", "curriculum", "--port", "0", "--port-file", p->port_file };
	int k = 7;
	for (int i = 0; args && args[i] && k < 31; i++) argv[k++] = args[i];
	char url_env[300];
	snprintf(url_env, sizeof url_env, "SAM_API_URL=%s", api_url);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
#endif
		alarm(0);
		int out = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0600), in = open("/dev/null", O_RDONLY);
		if (out < 0 || in < 0) _exit(126);
		dup2(in, 0), dup2(out, 1), dup2(out, 2);
		putenv(url_env);
		putenv("SAM_FAKE_MEMAVAILABLE_MB=16000");
		putenv("SAM_LOG=info");
		for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	p->pid = pid;
	double t0 = mono();
	int port = 0;
	while (!port) {
		char *s = test_read_file(p->port_file, NULL);
		if (s) port = atoi(s);
		free(s);
		if (!port && (waitpid(pid, NULL, WNOHANG) == pid || mono() - t0 > 10)) {
			dump_log(p);
			test_fail(__FILE__, __LINE__, "sam learn curriculum did not start");
		}
		usleep(20000);
	}
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	CHECK(sam_client_init(&p->cl, url, NULL) == 0);
	p->cl.timeout_ms = 5000;
}

/* SIGTERM; it must exit 0 within 5 s. Returns the seconds it took. */
static double cur_stop(struct cur_proc *p)
{
	double t0 = mono();
	CHECK(kill(p->pid, SIGTERM) == 0);
	int st = 0;
	while (waitpid(p->pid, &st, WNOHANG) != p->pid) {
		if (mono() - t0 > 5) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
			dump_log(p);
			test_fail(__FILE__, __LINE__, "sam learn curriculum did not stop within 5 s of SIGTERM");
		}
		usleep(10000);
	}
	double secs = mono() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		dump_log(p);
		test_fail(__FILE__, __LINE__, "sam learn curriculum ended with status %#x", st);
	}
	sam_client_free(&p->cl);
	return secs;
}

static json_t *health(struct cur_proc *p)
{
	json_t *j = NULL;
	struct sam_error err = { 0 };
	if (sam_client_json(&p->cl, "/health", NULL, &j, &err)) {
		dump_log(p);
		test_fail(__FILE__, __LINE__, "GET /health: %s", err.msg);
	}
	return j;
}

static long long jnum(json_t *j, const char *key) { return json_integer_value(json_object_get(j, key)); }

/* Poll /health until ok(health, arg); returns that health (caller decrefs). Fails after timeout_s. */
static json_t *wait_health(struct cur_proc *p, bool (*ok)(json_t *h, void *arg), void *arg, double timeout_s,
			   const char *what)
{
	double t0 = mono();
	for (;;) {
		json_t *h = health(p);
		if (ok(h, arg)) return h;
		if (mono() - t0 > timeout_s) {
			char *s = json_dumps(h, JSON_COMPACT);
			fprintf(stderr, "    last health: %s\n", s);
			free(s);
			json_decref(h);
			dump_log(p);
			test_fail(__FILE__, __LINE__, "waiting %.0f s for %s", timeout_s, what);
		}
		json_decref(h);
		usleep(50000);
	}
}

/* Every stream in state arg, with failures > 0 when that is "backoff". */
static bool streams_in(json_t *h, void *arg)
{
	json_t *streams = json_object_get(h, "streams"), *s;
	size_t i;
	if (!json_array_size(streams)) return false;
	json_array_foreach(streams, i, s) {
		if (strcmp(json_string_value(json_object_get(s, "state")), arg)) return false;
		if (!strcmp(arg, "backoff") && jnum(s, "failures") < 1) return false;
	}
	return true;
}

struct counts {
	long long attempts, correct;
};

static bool counts_reached(json_t *h, void *arg)
{
	struct counts *c = arg;
	return jnum(h, "attempts") >= c->attempts && jnum(h, "correct") >= c->correct;
}

static struct sam_db *home_db(void)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECKF(sam_db_open(&db, NULL, &err) == 0, "%s", err.msg);
	return db;
}

/* Wait up to timeout_s until the one number sql gives is >= want. */
static void wait_db(struct sam_db *db, const char *sql, long long want, double timeout_s)
{
	double t0 = mono();
	long long v;
	while ((v = learn_q_int(db, sql)) < want) {
		CHECKF(mono() - t0 < timeout_s, "waited %.0f s for %s >= %lld (it is %lld)", timeout_s, sql, want, v);
		usleep(20000);
	}
}

/* The task of stream's first attempt after attempt id `after`. */
static long long first_task_after(struct sam_db *db, int stream, long long after)
{
	char sql[200];
	snprintf(sql, sizeof sql,
		 "SELECT task_id FROM curriculum_attempts WHERE stream = %d AND id > %lld ORDER BY id LIMIT 1", stream,
		 after);
	return learn_q_int(db, sql);
}

TEST(curriculum_backs_off_while_api_down_and_resumes)
{
	learn_test_home();
	char file[4200], api_url[64];
	snprintf(file, sizeof file, "%s/extra.jsonl", test_tmpdir());
	const char *extra = "{\"question\": \"What is the capital of France?\", \"reference\": \"Paris\"}\n"
			    "{\"question\": \"What is the capital of Italy?\", \"reference\": \"Rome\","
			    " \"category\": \"geography\"}\n";
	test_write_file(file, extra, strlen(extra));
	int port = free_port();
	snprintf(api_url, sizeof api_url, "http://127.0.0.1:%d", port);
	const char *args[] = { "--streams", "2", "--interval", "0", "--backoff-max", "1", "--file", file, NULL };
	struct cur_proc p;
	cur_start(&p, api_url, args, NULL);

	/* the api is down: both streams back off, holding a task each, and nothing is attempted */
	json_t *h = wait_health(&p, streams_in, "backoff", 6, "both streams in backoff");
	CHECK_INT(jnum(h, "attempts"), 0);
	CHECK(json_is_false(json_object_get(h, "api_reachable")));
	long long held[2];
	for (int i = 0; i < 2; i++) {
		json_t *s = json_array_get(json_object_get(h, "streams"), (size_t)i);
		held[i] = jnum(s, "task_id");
		CHECKF(held[i] > 0, "stream %d holds no task in backoff", i);
		CHECK(json_real_value(json_object_get(s, "next_try_in_s")) <= 1.2);
	}
	CHECK(held[0] != held[1]);
	json_decref(h);
	struct sam_db *db = home_db();
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_streams WHERE failures > 0 AND task_id IS NOT NULL"),
		  2);

	/* the api comes back: each stream answers its own task first, then more */
	atomic_store(&fake_mode, FAKE_OK);
	struct http_server *api = fake_start(port);
	h = wait_health(&p, counts_reached, &(struct counts){ 20, 5 }, 6, "attempts once the api is back");
	CHECK(json_is_true(json_object_get(h, "api_reachable")));
	json_t *cats = json_object_get(h, "categories"), *geo = json_object_get(cats, "geography");
	CHECK(json_object_size(cats) >= 6);
	CHECK(json_is_real(json_object_get(geo, "rate")));
	json_decref(h);
	/* the other stream may still be waiting out its back-off (<= 1.1 s) */
	wait_db(db, "SELECT count(DISTINCT stream) FROM curriculum_attempts", 2, 3);
	for (int i = 0; i < 2; i++) CHECK_INT(first_task_after(db, i, 0), held[i]);
	CHECK(learn_q_int(db, "SELECT count(*) FROM examples WHERE source = 'curriculum'") > 0);
	CHECK(learn_q_int(db, "SELECT count(*) FROM curriculum_attempts WHERE correct = 0") > 0); /* the wrong ones */
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_attempts a"
				  " JOIN curriculum_tasks t ON t.id = a.task_id"
				  " WHERE a.correct = 1 AND t.id % 4 = 0 AND t.reference IS NOT NULL"),
		  0);
	double secs = cur_stop(&p);
	CHECKF(secs < 1.5, "stopping took %.2f s", secs);

	/* restart: counts go on from the stored ones, no task is seeded twice, each stream resumes its task */
	long long attempts = learn_q_int(db, "SELECT count(*) FROM curriculum_attempts");
	long long last = learn_q_int(db, "SELECT max(id) FROM curriculum_attempts");
	long long tasks = learn_q_int(db, "SELECT count(*) FROM curriculum_tasks");
	CHECK_INT(learn_q_int(db, "SELECT sum(attempts) FROM curriculum_tasks"), attempts);
	CHECK_INT(tasks, learn_q_int(db, "SELECT count(DISTINCT question) FROM curriculum_tasks"));
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks WHERE question LIKE '%capital of Italy%'"), 1);
	long long resume[2];
	for (int i = 0; i < 2; i++) {
		char sql[100];
		snprintf(sql, sizeof sql, "SELECT coalesce(task_id, 0) FROM curriculum_streams WHERE stream = %d", i);
		resume[i] = learn_q_int(db, sql);
	}
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks WHERE claimed_until > 0"), 0); /* released */
	cur_start(&p, api_url, args, NULL);
	h = wait_health(&p, counts_reached, &(struct counts){ attempts + 10, 0 }, 6, "attempts after the restart");
	json_decref(h);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM curriculum_tasks"), tasks);
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT count(DISTINCT stream) FROM curriculum_attempts WHERE id > %lld", last);
	wait_db(db, sql, 2, 3);
	for (int i = 0; i < 2; i++)
		if (resume[i]) CHECK_INT(first_task_after(db, i, last), resume[i]);
	cur_stop(&p);
	http_stop(api);
	sam_db_close(db);
}

TEST(curriculum_503_backs_off_4xx_and_500_are_failed_attempts)
{
	learn_test_home();
	atomic_store(&fake_mode, FAKE_503);
	struct http_server *api = fake_start(0);
	char api_url[64];
	snprintf(api_url, sizeof api_url, "http://127.0.0.1:%d", http_port(api));
	const char *args[] = { "--streams", "1", "--interval", "0", "--backoff-max", "1", NULL };
	struct cur_proc p;
	cur_start(&p, api_url, args, NULL);
	json_t *h = wait_health(&p, streams_in, "backoff", 6, "backoff on 503");
	CHECK_INT(jnum(h, "attempts"), 0);
	CHECK(json_is_false(json_object_get(h, "api_reachable")));
	json_decref(h);
	CHECK(atomic_load(&fake_requests) >= 1);

	/* 400: the request is at fault, not the api: failed attempts, no back-off */
	atomic_store(&fake_mode, FAKE_400);
	h = wait_health(&p, counts_reached, &(struct counts){ 3, 0 }, 5, "failed attempts on 400");
	CHECK_INT(jnum(h, "correct"), 0);
	CHECK(json_is_true(json_object_get(h, "api_reachable")));
	json_decref(h);
	struct sam_db *db = home_db();
	CHECK(learn_q_int(db, "SELECT count(*) FROM curriculum_attempts WHERE answer IS NULL AND correct = 0") >= 3);
	CHECK_INT(learn_q_int(db, "SELECT failures FROM curriculum_streams WHERE stream = 0"), 0);

	/* 500: the api is up but failed this request; a question it always fails on must not hold the stream */
	atomic_store(&fake_mode, FAKE_500);
	long long all = learn_q_int(db, "SELECT count(*) FROM curriculum_attempts");
	long long failed = learn_q_int(db, "SELECT count(*) FROM curriculum_attempts WHERE answer IS NULL");
	h = wait_health(&p, counts_reached, &(struct counts){ all + 4, 0 }, 5, "failed attempts on 500");
	CHECK(json_is_true(json_object_get(h, "api_reachable")));
	json_decref(h);
	/* (one attempt may have been a 400 still in flight when the mode changed) */
	CHECK(learn_q_int(db, "SELECT count(*) FROM curriculum_attempts WHERE answer IS NULL") >= failed + 3);
	CHECK_INT(learn_q_int(db, "SELECT failures FROM curriculum_streams WHERE stream = 0"), 0);

	atomic_store(&fake_mode, FAKE_OK);
	long long correct = learn_q_int(db, "SELECT count(*) FROM curriculum_attempts WHERE correct = 1");
	h = wait_health(&p, counts_reached, &(struct counts){ 0, correct + 3 }, 5, "correct answers");
	json_decref(h);
	cur_stop(&p);
	http_stop(api);
	sam_db_close(db);
}

TEST(curriculum_pauses_while_memory_is_short)
{
	learn_test_home();
	atomic_store(&fake_mode, FAKE_OK);
	struct http_server *api = fake_start(0);
	char api_url[64], mem[4200], mem_env[4300];
	snprintf(api_url, sizeof api_url, "http://127.0.0.1:%d", http_port(api));
	snprintf(mem, sizeof mem, "%s/memavail", test_tmpdir());
	snprintf(mem_env, sizeof mem_env, "SAM_FAKE_MEMAVAILABLE_FILE=%s", mem);
	test_write_file(mem, "500\n", 4);
	const char *args[] = { "--streams", "2", "--interval", "0", NULL };
	const char *env[] = { mem_env, NULL };
	struct cur_proc p;
	cur_start(&p, api_url, args, env);
	json_t *h = wait_health(&p, streams_in, "paused", 5, "paused streams");
	CHECK_STR(json_string_value(json_object_get(h, "memory_level")), "critical");
	json_decref(h);
	usleep(300000);
	CHECK_INT(atomic_load(&fake_requests), 0);
	/* memory comes back: the streams resume */
	char *tmp = malloc(strlen(mem) + 8);
	sprintf(tmp, "%s.tmp", mem);
	test_write_file(tmp, "16000\n", 6);
	CHECK(rename(tmp, mem) == 0);
	free(tmp);
	h = wait_health(&p, counts_reached, &(struct counts){ 1, 0 }, 8, "attempts once memory is back");
	json_decref(h);
	/* stopping does not wait for a sleep to end */
	test_write_file(mem, "500\n", 4);
	json_decref(wait_health(&p, streams_in, "paused", 5, "paused again"));
	double secs = cur_stop(&p);
	CHECKF(secs < 1.5, "stopping took %.2f s", secs);
	http_stop(api);
}

TEST(curriculum_cli_errors)
{
	learn_test_home();
	char file[4200];
	snprintf(file, sizeof file, "%s/bad.jsonl", test_tmpdir());
	const char *bad = "{\"question\": \"fine\"}\n{\"question\": \"x\", \"reference\": [1]}\n";
	test_write_file(file, bad, strlen(bad));
	struct test_proc r;
	test_run_sam(&r, 20, "learn", "curriculum", "--port", "0", "--file", file, NULL);
	CHECK_INT(r.status, 1);
	CHECKF(strstr(r.err, "bad.jsonl:2: \"reference\" must be a string"), "%s", r.err);
	test_proc_free(&r);
	test_run_sam(&r, 20, "learn", "curriculum", "--streams", "0", NULL);
	CHECK_INT(r.status, 2);
	CHECKF(strstr(r.err, "--streams"), "%s", r.err);
	test_proc_free(&r);
	test_run_sam(&r, 20, "learn", "curriculum", "--samples", "1", NULL);
	CHECK_INT(r.status, 2);
	test_proc_free(&r);
	test_run_sam(&r, 20, "learn", "curriculum", "--interval", "soon", NULL);
	CHECK_INT(r.status, 2);
	test_proc_free(&r);
	test_run_sam(&r, 20, "learn", "curriculum", "extra", NULL);
	CHECK_INT(r.status, 2);
	test_proc_free(&r);
}
