/*
 * test_train.c - the training lock and run records: one training per
 * machine whoever asks, a run recorded with its export and events, an
 * interrupted run marked as such by the next one.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/db.h"
#include "sam/learn.h"
#include "sam/train.h"
#include "learn/learn_util.h"
#include "test.h"


static struct sam_db *home_db(void)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECKF(sam_db_open(&db, NULL, &err) == 0, "%s", err.msg);
	return db;
}


static void add_examples(struct sam_db *db, int n)
{
	struct sam_error err = { 0 };
	for (int i = 0; i < n; i++) {
		char t[64];
		snprintf(t, sizeof t, "training text %d", i);
		struct sam_example ex;
		CHECK_INT(sam_example_from_text(t, strlen(t), &ex, &err), 0);
		CHECK_INT(sam_example_add(db, &ex, "manual", "", -1, NULL, NULL, &err), 0);
		sam_example_free(&ex);
	}
}

TEST(train_lock_is_exclusive)
{
	learn_test_home();
	struct sam_error err = { 0 };
	int a = -1, b = -1;
	CHECK_INT(sam_train_lock(&a, &err), 0);
	CHECK_INT(sam_train_lock(&b, &err), SAM_EBUSY);
	char want[64];
	snprintf(want, sizeof want, "(pid %ld)", (long)getpid());
	CHECKF(strstr(err.msg, want) != NULL, "message: %s", err.msg);
	/* a child process cannot take it either */
	pid_t k = fork();
	if (k == 0) {
		int c = -1;
		struct sam_error e2 = { 0 };
		_exit(sam_train_lock(&c, &e2) == SAM_EBUSY ? 0 : 1);
	}
	int st;
	CHECK(waitpid(k, &st, 0) == k && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sam_train_unlock(a);
	CHECK_INT(sam_train_lock(&b, &err), 0);
	sam_train_unlock(b);
}

TEST(train_cli_runs_once_under_the_lock)
{
	const char *home = learn_test_home();
	struct test_proc p;
	/* nothing to train on */
	test_run_sam(&p, 30, "train", "--export-only", NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "no examples") != NULL);
	test_proc_free(&p);
	struct sam_db *db = home_db();
	add_examples(db, 50);
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs") == 0); /* a refused start records nothing */

	/* while someone holds the lock, two more `sam train` both stay out */
	struct sam_error err = { 0 };
	int lock = -1;
	CHECK_INT(sam_train_lock(&lock, &err), 0);
	pid_t kids[2];
	for (int k = 0; k < 2; k++)
		if ((kids[k] = fork()) == 0) {
			struct test_proc q;
			test_run_sam(&q, 30, "train", "--export-only", NULL);
			_exit(q.status == 3 && strstr(q.err, "another training is running") ? 0 : 1);
		}
	for (int k = 0; k < 2; k++) {
		int st;
		CHECK(waitpid(kids[k], &st, 0) == kids[k]);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sam train did not exit 3 while the lock was held");
	}
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs") == 0);
	sam_train_unlock(lock);

	test_run_sam(&p, 30, "train", "--export-only", "--valid-fraction", "0.2", NULL);
	CHECK_INT(p.status, 0);
	CHECKF(strstr(p.out, "exported") != NULL, "%s", p.out);
	test_proc_free(&p);
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'exported' AND n_train + n_valid = 50") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM events WHERE type = 'train.started'") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM events WHERE type = 'train.finished'") == 1);
	/* the run's data is on disk */
	sqlite3_stmt *st;
	CHECK(sam_db_prepare(db, &st, "SELECT data_dir FROM training_runs", NULL) == 0);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	char path[4300];
	snprintf(path, sizeof path, "%s/train.jsonl", (const char *)sqlite3_column_text(st, 0));
	CHECK(strncmp(path, home, strlen(home)) == 0);
	sqlite3_finalize(st);
	size_t len;
	char *data = test_read_file(path, &len);
	CHECK(data != NULL && len > 0);
	free(data);

	/* nothing waits any more; new examples do */
	test_run_sam(&p, 30, "learn", "stats", NULL);
	CHECKF(strstr(p.out, "0 waiting for training") != NULL, "%s", p.out);
	CHECK(strstr(p.out, "exported (") != NULL);
	test_proc_free(&p);
	add_examples(db, 53);
	test_run_sam(&p, 30, "learn", "stats", NULL);
	CHECKF(strstr(p.out, "3 waiting for training") != NULL, "%s", p.out);
	test_proc_free(&p);
	sam_db_close(db);
}

TEST(train_marks_an_interrupted_run)
{
	learn_test_home();
	struct sam_db *db = home_db();
	add_examples(db, 5);
	struct sam_error err = { 0 };
	CHECK_INT(sam_db_exec(db,
			      "INSERT INTO training_runs(id, status, started, pid, examples_upto)"
			      " VALUES('old', 'running', 1, 999999, 1)",
			      &err),
		  0);
	struct sam_train_result res;
	struct sam_train_spec spec = { .valid_fraction = 0.1 };
	CHECK_INT(sam_train_run(db, NULL, &spec, &res, &err), 0);
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE id = 'old' AND status = 'failed'"
			" AND error = 'interrupted'") == 1);
	CHECK(strcmp(res.status, "exported") == 0);
	sam_db_close(db);
}

static int failing_train(void *ctx, const char *run_id, const char *data_dir, bool resume, struct sam_train_outcome *out,
			 struct sam_error *err)
{
	(void)ctx, (void)run_id, (void)out, (void)resume;
	char path[4300];
	snprintf(path, sizeof path, "%s/valid.jsonl", data_dir);
	CHECK(access(path, R_OK) == 0); /* the data is exported before the step runs */
	return sam_errorf(err, SAM_EIO, "the GPU caught fire");
}

static int good_train(void *ctx, const char *run_id, const char *data_dir, bool resume, struct sam_train_outcome *out,
		      struct sam_error *err)
{
	(void)ctx, (void)data_dir, (void)err, (void)resume;
	snprintf(out->adapter, sizeof out->adapter, "adapters/%s.gguf", run_id);
	out->valid_loss_base = 2.5;
	out->valid_loss = 2.0;
	return 0;
}

TEST(train_records_the_trainer_outcome)
{
	learn_test_home();
	struct sam_db *db = home_db();
	add_examples(db, 10);
	struct sam_error err = { 0 };
	struct sam_train_result res;
	struct sam_train_spec spec = { .valid_fraction = 0.1 };
	struct sam_trainer bad = { "test-bad", failing_train, NULL }, good = { "test-good", good_train, NULL };
	CHECK_INT(sam_train_run(db, &bad, &spec, &res, &err), SAM_EIO);
	CHECK(strcmp(res.status, "failed") == 0);
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'failed' AND error LIKE '%caught fire%'"
			" AND trainer = 'test-bad'") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM events WHERE type = 'train.failed' AND data LIKE '%caught fire%'") == 1);
	/* a second run in the same second of the same process gets its own id */
	CHECK_INT(sam_train_run(db, &good, &spec, &res, &err), 0);
	CHECK(strcmp(res.status, "finished") == 0);
	CHECK(learn_q_int(db, "SELECT count(*) FROM training_runs WHERE status = 'finished' AND valid_loss = 2.0"
			" AND valid_loss_base = 2.5 AND adapter LIKE 'adapters/%'") == 1);
	sam_db_close(db);
}
