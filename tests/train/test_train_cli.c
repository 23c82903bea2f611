/*
 * test_train_cli.c - `sam train` as a user runs it, on the real
 * stories260K model: a run that deploys an adapter which moves `sam run`
 * toward the new data; kill -9 and SIGTERM halfway, then --resume, end
 * with the very adapter an uninterrupted run makes; pause and resume
 * through the control file; refusal when memory is short or the run
 * would exceed --max-mem; one trainer at a time.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "test.h"
#include "train/stories.h"

/* A data directory with train.jsonl and valid.jsonl. */
static const char *data_dir(const char *name)
{
	static char dirs[4][600];
	static int k;
	char *d = dirs[k++ % 4];
	snprintf(d, 600, "%s/%s", test_tmpdir(), name);
	mkdir(d, 0755);
	char p[700];
	snprintf(p, sizeof p, "%s/train.jsonl", d);
	stories_write(p, 30, 0, 5);
	snprintf(p, sizeof p, "%s/valid.jsonl", d);
	stories_write(p, 5, 2, 5);
	return d;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* `sam train ARGS...` in the background, stdout and stderr into out_path. */
static pid_t spawn_train(const char *out_path, const char *const *args)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		const char *argv[32] = { test_sam_bin(), "train" };
		int n = 2;
		for (; args[n - 2] && n < 31; n++) argv[n] = args[n - 2];
		argv[n] = NULL;
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid, int timeout_s)
{
	double t0 = now_s();
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (now_s() - t0 > timeout_s) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			CHECKF(0, "sam train did not end within %d s", timeout_s);
		}
		sleep_ms(20);
	}
}

static bool exists(const char *dir, const char *name)
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void wait_for_file(const char *dir, const char *name, pid_t pid, int timeout_s)
{
	double t0 = now_s();
	while (!exists(dir, name)) {
		CHECKF(waitpid(pid, NULL, WNOHANG) == 0, "sam train ended before writing %s", name);
		CHECKF(now_s() - t0 < timeout_s, "no %s/%s after %d s", dir, name, timeout_s);
		sleep_ms(5);
	}
}

static char *file_of(const char *dir, const char *name, size_t *len)
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	char *d = test_read_file(p, len);
	CHECKF(d != NULL, "cannot read %s", p);
	return d;
}

static void same_file(const char *d1, const char *d2, const char *name)
{
	size_t l1, l2;
	char *a = file_of(d1, name, &l1), *b = file_of(d2, name, &l2);
	CHECKF(l1 == l2 && !memcmp(a, b, l1), "%s differs between %s and %s", name, d1, d2);
	free(a);
	free(b);
}

#define TRAIN_ARGS "--rank", "4", "--alpha", "8", "--lr", "5e-3", "--steps", "40", "--batch", "3", "--ctx", "64", \
		   "--checkpoint-every", "2", "--no-deploy"

static void reference_run(const char *dir)
{
	struct test_proc p;
	test_run_sam(&p, 120, "train", "--data", dir, TRAIN_ARGS, NULL);
	CHECKF(p.status == 0, "sam train: %d %s %s", p.status, p.out, p.err);
	test_proc_free(&p);
}

/*
 * An uninterrupted run on data "ref", and the same run on a copy "cut"
 * started in the background (output into out) and waited for until it
 * has written a checkpoint.
 */
static pid_t start_cut_run(const char **ref, const char **cut, char *out, size_t cap)
{
	learn_test_home();
	setenv("SAM_MODEL", test_model("stories260K.gguf"), 1);
	*ref = data_dir("ref");
	*cut = data_dir("cut");
	reference_run(*ref);
	snprintf(out, cap, "%s/cut.out", test_tmpdir());
	const char *args[] = { "--data", *cut, TRAIN_ARGS, NULL };
	pid_t pid = spawn_train(out, args);
	wait_for_file(*cut, "checkpoint.bin", pid, 60);
	return pid;
}

TEST(train_cli_kill_9_and_resume_ends_as_an_uninterrupted_run)
{
	const char *ref, *cut;
	char out[700];
	pid_t pid = start_cut_run(&ref, &cut, out, sizeof out);
	kill(pid, SIGKILL);
	CHECK_INT(wait_exit(pid, 10), 128 + SIGKILL);
	CHECK(!exists(cut, "adapter.gguf"));
	struct test_proc p;
	test_run_sam(&p, 120, "train", "--resume", NULL);
	CHECKF(p.status == 0, "sam train --resume: %d %s %s", p.status, p.out, p.err);
	CHECKF(strstr(p.out, "resuming") != NULL, "%s", p.out);
	test_proc_free(&p);
	same_file(ref, cut, "adapter.gguf");
	CHECK(!exists(cut, "checkpoint.bin"));
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECK(!sam_db_open(&db, NULL, &err));
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'finished' AND steps = 40") == 2);
	sam_db_close(db);
}

TEST(train_cli_sigterm_stops_with_a_checkpoint_and_resumes)
{
	const char *ref, *cut;
	char out[700];
	pid_t pid = start_cut_run(&ref, &cut, out, sizeof out);
	kill(pid, SIGTERM);
	CHECK_INT(wait_exit(pid, 30), 4);
	char *text = test_read_file(out, NULL);
	CHECKF(text && strstr(text, "stopped") && strstr(text, "sam train --resume"), "%s", text ? text : "");
	free(text);
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECK(!sam_db_open(&db, NULL, &err));
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'stopped'") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM events WHERE type = 'train.stopped'") == 1);
	struct test_proc p;
	test_run_sam(&p, 120, "train", "--resume", NULL);
	CHECKF(p.status == 0, "sam train --resume: %d %s %s", p.status, p.out, p.err);
	test_proc_free(&p);
	same_file(ref, cut, "adapter.gguf");
	/* nothing is left to resume */
	test_run_sam(&p, 30, "train", "--resume", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "no stopped or interrupted run") != NULL, "%s", p.err);
	test_proc_free(&p);
	sam_db_close(db);
}

/* Occurrences of needle in the file at path. */
static int count_in(const char *path, const char *needle)
{
	char *t = test_read_file(path, NULL);
	int n = 0;
	for (const char *at = t; at && (at = strstr(at, needle)); at += strlen(needle)) n++;
	free(t);
	return n;
}

/* Wait for the n-th "[paused]", then the checkpoint must not change for a while. */
static void check_paused(const char *out, int n, const char *dir, pid_t pid)
{
	double t0 = now_s();
	while (count_in(out, "[paused]") < n) {
		CHECKF(now_s() - t0 < 30, "the run did not pause (%d)", n);
		sleep_ms(20);
	}
	size_t l1, l2;
	char *a = file_of(dir, "checkpoint.bin", &l1);
	sleep_ms(800);
	char *b = file_of(dir, "checkpoint.bin", &l2);
	CHECKF(l1 == l2 && !memcmp(a, b, l1), "the checkpoint changed while paused");
	free(a);
	free(b);
	CHECK(waitpid(pid, NULL, WNOHANG) == 0);
}

/* ... and after the pause it changes again. */
static void check_running(const char *dir)
{
	size_t l1, l2;
	char *a = file_of(dir, "checkpoint.bin", &l1);
	double t0 = now_s();
	for (;;) {
		sleep_ms(50);
		char *b = file_of(dir, "checkpoint.bin", &l2);
		bool same = l1 == l2 && !memcmp(a, b, l1);
		free(b);
		if (!same) break;
		CHECKF(now_s() - t0 < 30, "the run did not go on");
	}
	free(a);
}

/* The control file and SIGUSR1 pause the run (no step is taken meanwhile) and let it go on. */
TEST(train_cli_pauses_and_resumes)
{
	const char *home = learn_test_home();
	setenv("SAM_MODEL", test_model("stories260K.gguf"), 1);
	const char *dir = data_dir("d");
	char out[700], control[700];
	snprintf(out, sizeof out, "%s/run.out", test_tmpdir());
	snprintf(control, sizeof control, "%s/run/train.control", home);
	const char *args[] = { "--data", dir, "--rank", "4", "--lr", "5e-3", "--steps", "100000", "--batch", "2",
			       "--ctx", "64", "--checkpoint-every", "1", "--no-deploy", NULL };
	pid_t pid = spawn_train(out, args);
	wait_for_file(dir, "checkpoint.bin", pid, 60);
	test_write_file(control, "pause\n", 6);
	check_paused(out, 1, dir, pid);
	unlink(control);
	check_running(dir);
	kill(pid, SIGUSR1);
	check_paused(out, 2, dir, pid);
	kill(pid, SIGUSR1);
	check_running(dir);
	test_write_file(control, "stop\n", 5);
	CHECK_INT(wait_exit(pid, 30), 4);
	unlink(control);
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECK(!sam_db_open(&db, NULL, &err));
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'stopped' AND steps > 2") == 1);
	sam_db_close(db);
}

TEST(train_cli_refuses_when_memory_is_short)
{
	learn_test_home();
	setenv("SAM_MODEL", test_model("stories260K.gguf"), 1);
	const char *dir = data_dir("d");
	struct test_proc p;
	setenv("SAM_FAKE_MEMAVAILABLE_MB", "700", 1);
	test_run_sam(&p, 30, "train", "--data", dir, NULL);
	unsetenv("SAM_FAKE_MEMAVAILABLE_MB");
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "memory is") && strstr(p.err, "not starting"), "%s", p.err);
	test_proc_free(&p);
	test_run_sam(&p, 30, "train", "--data", dir, "--max-mem", "1", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "more than --max-mem 1 MiB"), "%s", p.err);
	test_proc_free(&p);
	/* nothing was recorded or written */
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECK(!sam_db_open(&db, NULL, &err));
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs") == 0);
	sam_db_close(db);
	CHECK(!exists(dir, "adapter.gguf") && !exists(dir, "checkpoint.bin"));
}

TEST(train_cli_one_trainer_at_a_time)
{
	learn_test_home();
	setenv("SAM_MODEL", test_model("stories260K.gguf"), 1);
	const char *dir = data_dir("d"), *other = data_dir("e");
	char out[700];
	snprintf(out, sizeof out, "%s/first.out", test_tmpdir());
	const char *args[] = { "--data", dir, "--steps", "100000", "--ctx", "64", "--checkpoint-every", "1", NULL };
	pid_t pid = spawn_train(out, args);
	wait_for_file(dir, "checkpoint.bin", pid, 60);
	struct test_proc p;
	test_run_sam(&p, 30, "train", "--data", other, NULL);
	CHECK_INT(p.status, 3);
	CHECKF(strstr(p.err, "another training is running"), "%s", p.err);
	test_proc_free(&p);
	kill(pid, SIGTERM);
	CHECK_INT(wait_exit(pid, 30), 4);
}

/* A SAM_HOME of the test's, training the stories260K model, with 60 stories added as examples. */
static const char *home_with_stories(void)
{
	const char *home = learn_test_home();
	setenv("SAM_MODEL", test_model("stories260K.gguf"), 1);
	char file[700];
	snprintf(file, sizeof file, "%s/stories.jsonl", test_tmpdir());
	stories_write(file, 60, 0, 5);
	struct test_proc p;
	test_run_sam(&p, 30, "learn", "add", file, NULL);
	CHECK_INT(p.status, 0);
	test_proc_free(&p);
	return home;
}

/* The path of home's adapters/current link, and the id of the adapter it names (there must be one). */
static void current_adapter(const char *home, char *link, size_t link_cap, char *id, size_t id_cap)
{
	snprintf(link, link_cap, "%s/adapters/current", home);
	ssize_t n = readlink(link, id, id_cap - 1);
	CHECKF(n > 5 && !memcmp(id + n - 5, ".gguf", 5), "%s: no adapter link", link);
	id[n - 5] = '\0';
}

/*
 * The whole path a user takes: examples in, `sam train`, a deploy proposal,
 * `sam approve`, adapter deployed, `sam run` changed.
 */
TEST(train_cli_deploys_an_adapter_that_moves_the_model_to_the_data)
{
	const char *home = home_with_stories();
	struct test_proc p;
	test_run_sam(&p, 300, "train", "--rank", "4", "--lr", "5e-3", "--epochs", "3", "--ctx", "64",
		     "--valid-fraction", "0.2", NULL);
	CHECKF(p.status == 0, "sam train: %d %s %s", p.status, p.out, p.err);
	CHECKF(strstr(p.out, "awaiting approval: validation loss") != NULL, "%s", p.out);
	const char *ask = strstr(p.out, "`sam approve ");
	CHECKF(ask != NULL, "%s", p.out);
	char approval[32];
	snprintf(approval, sizeof approval, "%lld", atoll(ask + strlen("`sam approve ")));
	test_proc_free(&p);
	/* nothing is deployed before the yes */
	char link[700];
	snprintf(link, sizeof link, "%s/adapters/current", home);
	CHECK(access(link, F_OK) != 0);
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECK(!sam_db_open(&db, NULL, &err));
	CHECK(learn_q_int(db, "SELECT count(*) FROM approvals WHERE kind = 'training_deploy' AND status = 'pending'") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'finished' AND adapter IS NULL"
			      " AND note LIKE 'awaiting approval%'") == 1);
	test_run_sam(&p, 60, "approve", approval, NULL);
	CHECKF(p.status == 0, "sam approve: %d %s %s", p.status, p.out, p.err);
	test_proc_free(&p);
	char cur[700], id[256];
	current_adapter(home, cur, sizeof cur, id, sizeof id);
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'finished' AND adapter IS NOT NULL"
			      " AND valid_loss < valid_loss_base AND note LIKE 'deployed%'") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM approvals WHERE kind = 'training_deploy' AND status = 'executed'") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM events WHERE type = 'train.deployed'") == 1);
	sam_db_close(db);
	/* approving again is refused, and changes nothing */
	test_run_sam(&p, 60, "approve", approval, NULL);
	CHECKF(p.status == 1 && strstr(p.err, "executed"), "sam approve again: %d %s %s", p.status, p.out, p.err);
	test_proc_free(&p);
	/* greedy text with the adapter speaks of the new data, without it it does not */
	const char *model = test_model("stories260K.gguf");
	test_run_sam(&p, 60, "run", "-m", model, "-p", "Once upon a time", "-n", "60", "--temp", "0", NULL);
	CHECK_INT(p.status, 0);
	static const char *marks[] = { "river and sang", "was happy too", "Every day", "purple kite", "silver boat",
				       "tiny drum", "green hat", "Zorp", "Mila", "Quen", "Tobi", "Rax" };
	int base_hits = 0, tuned_hits = 0;
	for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) base_hits += strstr(p.out, marks[i]) != NULL;
	test_proc_free(&p);
	test_run_sam(&p, 60, "run", "-m", model, "--lora", cur, "-p", "Once upon a time", "-n", "60", "--temp", "0",
		     NULL);
	CHECKF(p.status == 0, "%s", p.err);
	for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) tuned_hits += strstr(p.out, marks[i]) != NULL;
	CHECKF(tuned_hits >= 2 && base_hits == 0, "base %d, tuned %d: %s", base_hits, tuned_hits, p.out);
	test_proc_free(&p);
}

/* A run that may deploy by itself (--auto-deploy) while the api serves: the api reloads, and its answers change. */
TEST(train_cli_deploys_into_the_running_api)
{
	const char *home = home_with_stories();
	struct test_proc p;
	struct api_server s;
	api_start(&s, NULL, NULL, NULL);
	const char *body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0}";
	json_t *before = api_post_json(&s, "/v1/completions", body);
	char *base = strdup(jstr(before, "choices.0.text"));
	json_decref(before);
	setenv("SAM_API_URL", s.url, 1);
	test_run_sam(&p, 300, "train", "--rank", "4", "--lr", "5e-3", "--epochs", "3", "--ctx", "64",
		     "--valid-fraction", "0.2", "--auto-deploy", NULL);
	unsetenv("SAM_API_URL");
	CHECKF(p.status == 0 && strstr(p.out, "the api reloaded it"), "sam train: %d %s %s", p.status, p.out, p.err);
	test_proc_free(&p);
	char cur[700], target[256];
	current_adapter(home, cur, sizeof cur, target, sizeof target);
	json_t *ad = api_get_json(&s, "/api/adapters");
	CHECKF(jstr(ad, "loaded.id") && !strcmp(jstr(ad, "loaded.id"), target), "loaded %s, current %s",
	       jstr(ad, "loaded.id") ? jstr(ad, "loaded.id") : "(none)", target);
	json_decref(ad);
	json_t *after = api_post_json(&s, "/v1/completions", body);
	const char *tuned = jstr(after, "choices.0.text");
	CHECKF(tuned && strcmp(tuned, base) && (strstr(tuned, "river") || strstr(tuned, "happy too")),
	       "base: %s\ntuned: %s", base, tuned ? tuned : "(none)");
	json_decref(after);
	free(base);
	api_stop(&s);
}
