/*
 * test_watch.c - the watcher: the watch set's debounce, ignored names and
 * directory moves (watch.h, in-process), and `sam learn watch` as a real
 * process: bursts of files, a queue overflow, kill -9 and restart, racing
 * watchers and a manual add, bad files, and the training trigger.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api_helpers.h"
#include "learn/learn_util.h"
#include "sam/db.h"
#include "sam/fs.h"
#include "sam/learn.h"
#include "sam/train.h"
#include "sam/watch.h"
#include "test.h"

static void mkdir_p(const char *path)
{
	struct sam_error err = { 0 };
	CHECKF(sam_mkdirs(path, &err) == 0, "%s", err.msg);
}

/* Write a chat example file dir/name with examples first..first+n-1 (q N / a N). */
static void chat_file(const char *dir, const char *name, int first, int n)
{
	char path[8192], *buf = malloc((size_t)n * 128 + 1), *p = buf;
	for (int i = first; i < first + n; i++)
		p += sprintf(p, "{\"messages\":[{\"role\":\"user\",\"content\":\"q %d\"},"
				"{\"role\":\"assistant\",\"content\":\"a %d\"}]}\n", i, i);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	test_write_file(path, buf, (size_t)(p - buf));
	free(buf);
}

/* Like chat_file, but written under a hidden name and renamed into place, as careful tools do. */
static void chat_file_renamed(const char *dir, const char *name, int first, int n)
{
	char tmp[8192], path[8192], hidden[300];
	snprintf(hidden, sizeof hidden, ".%s.tmp", name);
	chat_file(dir, hidden, first, n);
	snprintf(tmp, sizeof tmp, "%s/%s", dir, hidden);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	CHECK(rename(tmp, path) == 0);
}

static struct sam_db *open_home_db(void)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECKF(sam_db_open(&db, NULL, &err) == 0, "%s", err.msg);
	return db;
}

static long long q(const char *sql)
{
	struct sam_db *db = open_home_db();
	long long v = learn_q_int(db, sql);
	sam_db_close(db);
	return v;
}

/* Poll /health until files ingested + unchanged reaches want and nothing is pending; the last health reply. */
static json_t *wait_settled(struct api_server *s, long long want, double timeout_s)
{
	double t0 = now_s();
	json_t *h = NULL;
	for (;;) {
		json_decref(h);
		h = api_get_json(s, "/health");
		long long seen = jint(h, "files.ingested") + jint(h, "files.unchanged");
		if (seen >= want && jint(h, "pending") == 0) return h;
		if (now_s() - t0 > timeout_s) {
			api_dump_log(s);
			CHECKF(0, "after %.0f s: %lld of %lld files, %lld pending", timeout_s, seen, want, jint(h, "pending"));
		}
		usleep(50 * 1000);
	}
}

static const char *const fast_env[] = { "SAM_LEARN_WATCH_DEBOUNCE_MS=100", "SAM_TRAIN_AUTO=false", NULL };

/* A fresh SAM_HOME with its inbox made; the inbox's path (static). */
static const char *make_inbox(void)
{
	static char inbox[1024];
	snprintf(inbox, sizeof inbox, "%s/inbox", learn_test_home());
	mkdir_p(inbox);
	return inbox;
}

/* `sam learn watch INBOX` with env, once its /health answers. */
static void start_watcher(struct api_server *s, const char *inbox, const char *const *env)
{
	svc_start(s, (const char *const[]){ "learn", "watch", NULL }, (const char *const[]){ inbox, NULL }, env);
}

/* ---- the watch set, in process ------------------------------------------------------------- */

static void drain(struct sam_watch *w, double now)
{
	struct pollfd p = { .fd = sam_watch_fd(w), .events = POLLIN };
	while (poll(&p, 1, 100) > 0) sam_watch_read(w, now);
	sam_watch_read(w, now);
}

static int take_all(struct sam_watch *w, double now, char names[][64], int max)
{
	char path[4096];
	int n = 0;
	while (sam_watch_next(w, now, path, sizeof path)) {
		const char *b = strrchr(path, '/');
		if (n < max) snprintf(names[n], 64, "%.63s", b ? b + 1 : path);
		n++;
	}
	return n;
}

TEST(watch_set_debounces_and_leaves_out_temporary_names)
{
	char root[1024], sub[2048], path[4096];
	snprintf(root, sizeof root, "%s/w", test_tmpdir());
	mkdir_p(root);
	chat_file(root, "before.jsonl", 0, 1);
	struct sam_watch *w;
	struct sam_error err = { 0 };
	CHECK_INT(sam_watch_open(&w, 0.5, 60, &err), 0);
	CHECK_INT(sam_watch_add_root(w, root, &err), 0);
	char names[16][64];
	double t = sam_now();
	/* the first scan offers what is already there, once it is due */
	CHECK_INT(take_all(w, t, names, 16), 0);
	CHECK_INT(take_all(w, t + 0.6, names, 16), 1);
	CHECK_STR(names[0], "before.jsonl");

	chat_file(root, "a.jsonl", 1, 1);
	chat_file(root, ".hidden.jsonl", 2, 1);
	chat_file(root, "draft.md~", 3, 1);
	chat_file(root, "big.part", 4, 1);
	chat_file_renamed(root, "b.jsonl", 5, 1);
	t = sam_now();
	drain(w, t);
	CHECK_INT(take_all(w, t + 0.4, names, 16), 0); /* not quiet long enough */
	/* a write to a pending file pushes it back */
	chat_file(root, "a.jsonl", 1, 2);
	drain(w, t + 0.45);
	CHECK_INT(take_all(w, t + 0.6, names, 16), 1);
	CHECK_STR(names[0], "b.jsonl");
	CHECK_INT(take_all(w, t + 1.0, names, 16), 1);
	CHECK_STR(names[0], "a.jsonl");

	/* a new subdirectory is watched, and files made in it before the watch landed are found */
	snprintf(sub, sizeof sub, "%s/sub/deeper", root);
	mkdir_p(sub);
	chat_file(sub, "c.jsonl", 6, 1);
	t = sam_now();
	drain(w, t);
	chat_file(sub, "d.jsonl", 7, 1);
	drain(w, t);
	CHECK_INT(take_all(w, t + 1, names, 16), 2);
	struct sam_watch_stats st;
	sam_watch_stats(w, &st);
	CHECK_INT(st.dirs, 3);
	CHECK_INT(st.pending, 0);

	/* a hidden directory is not watched at all */
	snprintf(sub, sizeof sub, "%s/.git", root);
	mkdir_p(sub);
	chat_file(sub, "e.jsonl", 8, 1);
	drain(w, t);
	CHECK_INT(take_all(w, t + 1, names, 16), 0);

	/* a directory moved out stops being watched; one moved in is scanned */
	char out[2048];
	snprintf(sub, sizeof sub, "%s/sub", root);
	snprintf(out, sizeof out, "%s/moved-out", test_tmpdir());
	CHECK(rename(sub, out) == 0);
	drain(w, t);
	sam_watch_stats(w, &st);
	CHECK_INT(st.dirs, 1);
	snprintf(path, sizeof path, "%s/back", root);
	CHECK(rename(out, path) == 0);
	drain(w, t);
	CHECK_INT(take_all(w, t + 1, names, 16), 2);
	sam_watch_stats(w, &st);
	CHECK_INT(st.dirs, 3);
	sam_watch_close(w);
}

TEST(watch_set_retries_a_missing_root)
{
	char root[1024];
	snprintf(root, sizeof root, "%s/not-yet", test_tmpdir());
	struct sam_watch *w;
	struct sam_error err = { 0 };
	CHECK_INT(sam_watch_open(&w, 0, 0.2, &err), 0);
	CHECK_INT(sam_watch_add_root(w, root, &err), 0);
	double t = sam_now();
	double to = sam_watch_timeout(w, t);
	CHECKF(to >= 0 && to <= 0.2, "timeout %f", to);
	mkdir_p(root);
	chat_file(root, "x.jsonl", 0, 1);
	sam_watch_read(w, t + 0.3); /* the retry finds the root and its file */
	char names[4][64];
	CHECK_INT(take_all(w, t + 0.3, names, 4), 1);
	struct sam_watch_stats st;
	sam_watch_stats(w, &st);
	CHECK_INT(st.dirs, 1);
	sam_watch_close(w);
}

/* ---- `sam learn watch` ------------------------------------------------------------------- */

TEST(learn_watch_burst_of_5000_files_all_land)
{
	const char *inbox = make_inbox();
	char dir[2048];
	struct api_server s;
	start_watcher(&s, inbox, fast_env);
	/* 50 new subdirectories with 100 files each, half renamed into place */
	for (int d = 0; d < 50; d++) {
		snprintf(dir, sizeof dir, "%s/batch%02d", inbox, d);
		mkdir_p(dir);
		for (int i = 0; i < 100; i++) {
			char name[32];
			snprintf(name, sizeof name, "f%03d.jsonl", i);
			if (i & 1) chat_file_renamed(dir, name, d * 100 + i, 1);
			else chat_file(dir, name, d * 100 + i, 1);
		}
	}
	json_t *h = wait_settled(&s, 5000, 180);
	CHECK_INT(jint(h, "files.ingested"), 5000);
	CHECK_INT(jint(h, "examples.added"), 5000);
	CHECK_INT(jint(h, "files.failed"), 0);
	CHECK_INT(jint(h, "dirs_watched"), 51);
	json_decref(h);
	CHECK_INT(q("SELECT count(*) FROM files WHERE status = 'ok'"), 5000);
	CHECK_INT(q("SELECT count(*) FROM examples"), 5000);
	api_stop(&s);
}

static long long max_queued_events(void)
{
	char *t = test_read_file("/proc/sys/fs/inotify/max_queued_events", NULL);
	long long v = t ? atoll(t) : 0;
	free(t);
	return v;
}

TEST(learn_watch_rescans_after_a_queue_overflow)
{
	const char *inbox = make_inbox();
	struct api_server s;
	start_watcher(&s, inbox, fast_env);
	/* Each file is at least CREATE, MODIFY and CLOSE_WRITE: while the
	 * watcher is stopped, enough of them overflow the kernel's queue. */
	long long limit = max_queued_events();
	int n = limit > 0 && limit / 3 + 500 < 8000 ? (int)(limit / 3 + 500) : 6000;
	kill(s.pid, SIGSTOP);
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "o%05d.jsonl", i);
		chat_file(inbox, name, i, 1);
	}
	kill(s.pid, SIGCONT);
	json_t *h = wait_settled(&s, n, 180);
	CHECK_INT(jint(h, "examples.added"), n);
	if (limit > 0 && 3LL * n > limit) {
		CHECKF(jint(h, "overflows") >= 1, "no overflow with %d files and max_queued_events %lld", n, limit);
		CHECK(jint(h, "rescans") >= 1);
	}
	json_decref(h);
	CHECK_INT(q("SELECT count(*) FROM files"), n);
	api_stop(&s);
}

TEST(learn_watch_kill9_and_restart_processes_each_file_once)
{
	const char *inbox = make_inbox();
	const int n = 3000;
	const char *const env[] = { "SAM_LEARN_WATCH_DEBOUNCE_MS=0", "SAM_TRAIN_AUTO=false", NULL };
	struct api_server s;
	start_watcher(&s, inbox, env);
	/* the burst lands while it is stopped, so it is still at work when killed */
	kill(s.pid, SIGSTOP);
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "k%05d.jsonl", i);
		chat_file(inbox, name, i * 4, 2 + i % 3);
	}
	kill(s.pid, SIGCONT);
	/* kill it mid-burst */
	double t0 = now_s();
	for (;;) {
		json_t *h = api_get_json(&s, "/health");
		long long done = jint(h, "files.ingested");
		json_decref(h);
		if (done >= n / 10) break;
		CHECKF(now_s() - t0 < 60, "only %lld files after 60 s", done);
		usleep(5 * 1000);
	}
	api_kill(&s);
	long long before = q("SELECT count(*) FROM files");
	CHECKF(before < n, "the watcher finished all %d files before it was killed", n);

	start_watcher(&s, inbox, env);
	json_t *h = wait_settled(&s, n, 120);
	/* the restart ingested exactly the files the killed one had not recorded, and repeated nothing */
	CHECK_INT(jint(h, "files.ingested"), n - before);
	CHECK_INT(jint(h, "files.unchanged"), before);
	CHECK_INT(jint(h, "examples.duplicates"), 0);
	json_decref(h);
	CHECK_INT(q("SELECT count(*) FROM files WHERE status = 'ok'"), n);
	long long want = 0;
	for (int i = 0; i < n; i++) want += 2 + i % 3;
	CHECK_INT(q("SELECT count(*) FROM examples"), want);
	CHECK_INT(q("SELECT sum(examples) FROM files"), want);
	api_stop(&s);
}

TEST(learn_watch_two_watchers_and_a_manual_add_store_each_example_once)
{
	const char *inbox = make_inbox();
	const int n = 1000;
	/* file i holds examples i and i+1: every example but the ends is in two files */
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "r%04d.jsonl", i);
		chat_file(inbox, name, i, 2);
	}
	const char *const env[] = { "SAM_LEARN_WATCH_DEBOUNCE_MS=0", "SAM_TRAIN_AUTO=false", NULL };
	struct api_server a, b;
	start_watcher(&a, inbox, env);
	start_watcher(&b, inbox, env);
	struct test_proc add;
	test_run_sam(&add, 120, "learn", "add", inbox, NULL);
	CHECKF(add.status == 0, "learn add: %s", add.err);
	long long files = 0, skipped = 0, added = 0;
	const char *sum = strstr(add.out, " files (");
	CHECK(sum != NULL);
	while (sum > add.out && sum[-1] >= '0' && sum[-1] <= '9') sum--;
	CHECK(sscanf(sum, "%lld files (%lld already ingested): %lld new", &files, &skipped, &added) == 3);
	CHECK_INT(files, n);
	json_t *ha = wait_settled(&a, n, 120), *hb = wait_settled(&b, n, 120);
	/* each file was read and recorded by exactly one of the three, each example added by one */
	CHECK_INT(jint(ha, "files.ingested") + jint(hb, "files.ingested") + (files - skipped), n);
	CHECK_INT(jint(ha, "examples.added") + jint(hb, "examples.added") + added, n + 1);
	json_decref(ha);
	json_decref(hb);
	test_proc_free(&add);
	CHECK_INT(q("SELECT count(*) FROM files"), n);
	CHECK_INT(q("SELECT count(*) FROM examples"), n + 1);
	CHECK_INT(q("SELECT count(DISTINCT hash) FROM examples"), n + 1);
	api_stop(&a);
	api_stop(&b);
}

TEST(learn_watch_records_bad_files_and_goes_on)
{
	const char *inbox = make_inbox();
	char outside[1024], path[4096];
	snprintf(outside, sizeof outside, "%s/outside", test_tmpdir());
	mkdir_p(outside);
	struct api_server s;
	start_watcher(&s, inbox, fast_env);
	const char *mixed = "{\"text\":\"good one\"}\nnot json at all\n{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n"
			    "{\"conversations\":[{\"from\":\"human\",\"value\":\"hi\"},{\"from\":\"gpt\",\"value\":\"hello\"}]}\n";
	snprintf(path, sizeof path, "%s/mixed.jsonl", inbox);
	test_write_file(path, mixed, strlen(mixed));
	snprintf(path, sizeof path, "%s/blob.bin", inbox);
	test_write_file(path, "\x7f" "ELF\0\0\1", 7);
	snprintf(path, sizeof path, "%s/notes.md", inbox);
	test_write_file(path, "# Notes\n\nSome prose.\n", 21);
	/* moved in from elsewhere, a file and a whole directory */
	chat_file(outside, "moved.jsonl", 100, 1);
	char from[4096], sub[2048];
	snprintf(from, sizeof from, "%s/moved.jsonl", outside);
	snprintf(path, sizeof path, "%s/moved.jsonl", inbox);
	CHECK(rename(from, path) == 0);
	snprintf(sub, sizeof sub, "%s/dir", outside);
	mkdir_p(sub);
	chat_file(sub, "in-dir.jsonl", 200, 3);
	snprintf(path, sizeof path, "%s/dir", inbox);
	CHECK(rename(sub, path) == 0);

	json_t *h = wait_settled(&s, 5, 30);
	CHECK_INT(jint(h, "files.ingested"), 5);
	CHECK_INT(jint(h, "files.failed"), 1);
	CHECK_INT(jint(h, "examples.rejected"), 2);
	CHECK_INT(jint(h, "examples.added"), 2 + 1 + 1 + 3);
	CHECK(jstr(h, "last_error") && *jstr(h, "last_error"));
	json_decref(h);
	struct sam_db *db = open_home_db();
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM files WHERE status = 'partial' AND error LIKE '%line 2: not JSON%'"
				  " AND error LIKE '%line 3: %'"),
		  1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM files WHERE status = 'error' AND path LIKE '%blob.bin'"), 1);
	CHECK_INT(learn_q_int(db, "SELECT count(*) FROM examples WHERE kind = 'text' AND content LIKE '%Some prose.%'"), 1);
	sam_db_close(db);
	/* the watcher is still at work */
	chat_file(inbox, "after.jsonl", 300, 1);
	h = wait_settled(&s, 6, 30);
	CHECK_INT(jint(h, "examples.added"), 8);
	json_decref(h);
	api_stop(&s);
}

/* Wait for a training run row with the given status; false after timeout_s. */
static bool wait_run(const char *status, double timeout_s)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM training_runs WHERE status = '%s'", status);
	for (double t0 = now_s(); now_s() - t0 < timeout_s; usleep(50 * 1000))
		if (q(sql) > 0) return true;
	return false;
}

TEST(learn_watch_starts_training_when_enough_examples_wait)
{
	const char *inbox = make_inbox();
	/* memory low: the trigger waits */
	const char *const low[] = { "SAM_LEARN_WATCH_DEBOUNCE_MS=50", "SAM_TRAIN_MIN_NEW_EXAMPLES=5",
				    "SAM_FAKE_MEMAVAILABLE_MB=600", NULL };
	struct api_server s;
	start_watcher(&s, inbox, low);
	chat_file(inbox, "one.jsonl", 0, 3);
	json_t *h = wait_settled(&s, 1, 30);
	json_decref(h);
	h = api_get_json(&s, "/health");
	CHECKF(strstr(jstr(h, "training.last"), "3 examples wait"), "%s", jstr(h, "training.last"));
	json_decref(h);
	chat_file(inbox, "two.jsonl", 3, 3);
	h = wait_settled(&s, 2, 30);
	json_decref(h);
	h = api_get_json(&s, "/health");
	CHECKF(strstr(jstr(h, "training.last"), "memory level"), "%s", jstr(h, "training.last"));
	CHECK_INT(jint(h, "training.waiting"), 6);
	CHECK_INT(jint(h, "training.started"), 0);
	json_decref(h);
	api_stop(&s);
	CHECK_INT(q("SELECT count(*) FROM training_runs"), 0);

	/* another process holds the training lock: the trigger says so and starts nothing */
	const char *const ok[] = { "SAM_LEARN_WATCH_DEBOUNCE_MS=50", "SAM_TRAIN_MIN_NEW_EXAMPLES=5",
				   "SAM_FAKE_MEMAVAILABLE_MB=6000", NULL };
	int lock = -1;
	struct sam_error err = { 0 };
	CHECK_INT(sam_train_lock(&lock, &err), 0);
	start_watcher(&s, inbox, ok);
	chat_file(inbox, "three.jsonl", 6, 1);
	h = wait_settled(&s, 3, 30);
	json_decref(h);
	h = api_get_json(&s, "/health");
	CHECKF(strstr(jstr(h, "training.last"), "another training is running"), "%s", jstr(h, "training.last"));
	json_decref(h);
	api_stop(&s);
	sam_train_unlock(lock);

	/* memory fine, lock free, no supervisor: the watcher runs `sam train` itself, once
	 * (its first scan is a batch too, so the run starts from what is there) */
	chat_file(inbox, "four.jsonl", 7, 1);
	setenv("SAM_MODEL", test_model("stories260K.gguf"), 1); /* what `sam train` trains */
	start_watcher(&s, inbox, ok);
	unsetenv("SAM_MODEL");
	CHECK(wait_run("finished", 60));
	for (double t0 = now_s();; usleep(20 * 1000)) {
		h = api_get_json(&s, "/health");
		bool running = json_is_true(jpath(h, "training.running"));
		if (!running) break;
		json_decref(h);
		CHECKF(now_s() - t0 < 30, "the training child was not collected");
	}
	CHECK_INT(jint(h, "training.started"), 1);
	json_decref(h);

	CHECK_INT(q("SELECT n_train + n_valid FROM training_runs"), 8);
	/* the examples are no longer waiting: a new file does not start another run */
	chat_file(inbox, "five.jsonl", 8, 1);
	h = wait_settled(&s, 5, 30);
	json_decref(h);
	h = api_get_json(&s, "/health");
	CHECK_INT(jint(h, "training.started"), 1);
	CHECK_INT(jint(h, "training.waiting"), 1);
	json_decref(h);
	api_stop(&s);
	CHECK_INT(q("SELECT count(*) FROM training_runs"), 1);
}
