/*
 * train_sched.c - the training lock and the life of a run record (see
 * train.h). The run row is written before anything long starts, so a run
 * killed halfway is visible, and the next holder of the lock marks it.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "sam/approvals.h"
#include "sam/events.h"
#include "sam/fs.h"
#include "sam/learn.h"
#include "sam/train.h"

int sam_train_lock(int *fd, struct sam_error *err)
{
	char path[4096];
	if (sam_home_path(path, sizeof path, "run")) return sam_errorf(err, SAM_ERANGE, "SAM_HOME path too long");
	int rc = sam_mkdirs(path, err);
	if (rc) return rc;
	if (sam_home_path(path, sizeof path, "run/training.lock"))
		return sam_errorf(err, SAM_ERANGE, "SAM_HOME path too long");
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f < 0) return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char who[32] = "";
		ssize_t n = pread(f, who, sizeof who - 1, 0);
		close(f);
		if (e != EWOULDBLOCK) return sam_errorf(err, SAM_EIO, "%s: flock: %s", path, strerror(e));
		who[n > 0 ? n : 0] = '\0';
		who[strcspn(who, "\n")] = '\0';
		return sam_errorf(err, SAM_EBUSY, "another training is running%s%s", *who ? " (pid " : "",
				  *who ? who : "");
	}
	/* the holder's pid, for the message above (informational: the lock is the flock) */
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld)\n", (long)getpid());
	if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n)
		sam_log(SAM_LOG_DEBUG, "%s: could not note the pid", path);
	*fd = f;
	return 0;
}

void sam_train_unlock(int fd)
{
	if (fd >= 0) close(fd); /* closing the last descriptor drops the flock */
}

/* Set the run's note: what became of its adapter. */
static int set_note(struct sam_db *db, const char *run_id, const char *note, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, "UPDATE training_runs SET note = ? WHERE id = ?", err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, note, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	return s == SQLITE_DONE ? 0 : sam_db_errorf(db, err, s, "noting run %s", run_id);
}

/*
 * Ask a person whether to deploy the run's adapter. Proposed only once the
 * row says 'finished', so an approval can never find the run still running.
 */
static int propose_deploy(struct sam_db *db, const struct sam_train_spec *spec, struct sam_train_result *res,
			  struct sam_train_outcome *o, struct sam_error *err)
{
	char title[300], payload[128];
	snprintf(title, sizeof title, "Deploy the adapter of training run %s (validation loss %.4f -> %.4f)",
		 res->run_id, o->valid_loss_base, o->valid_loss);
	snprintf(payload, sizeof payload, "{\"run\":\"%s\"}", res->run_id); /* run ids are [0-9-] */
	int rc = sam_approval_propose(db, spec->conf, "training_deploy", title, payload, "train", 0, &res->approval, err);
	if (rc) {
		snprintf(o->note + strlen(o->note), sizeof o->note - strlen(o->note), "; could not ask for approval: %s",
			 err->msg);
		set_note(db, res->run_id, o->note, NULL);
		return rc;
	}
	size_t used = strlen(o->note);
	snprintf(o->note + used, sizeof o->note - used, "; approval %lld", (long long)res->approval);
	return set_note(db, res->run_id, o->note, err);
}

/* Record the end of the run, then tell whoever listens. */
static int end_run(struct sam_db *db, const struct sam_train_spec *spec, struct sam_train_result *res,
		   struct sam_train_outcome *o, const char *trainer, const char *error, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"UPDATE training_runs SET status = ?1, finished = ?2, trainer = ?3, adapter = ?4,"
				" valid_loss_base = ?5, valid_loss = ?6, error = ?7, steps = ?8, note = ?9 WHERE id = ?10",
				err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, res->status, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, sam_db_time());
	if (trainer) sqlite3_bind_text(st, 3, trainer, -1, SQLITE_STATIC);
	if (o->adapter[0]) sqlite3_bind_text(st, 4, o->adapter, -1, SQLITE_STATIC);
	if (!isnan(o->valid_loss_base)) sqlite3_bind_double(st, 5, o->valid_loss_base);
	if (!isnan(o->valid_loss)) sqlite3_bind_double(st, 6, o->valid_loss);
	if (error) sqlite3_bind_text(st, 7, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, o->steps);
	if (o->note[0]) sqlite3_bind_text(st, 9, o->note, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, res->run_id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	if (s != SQLITE_DONE) return sam_db_errorf(db, err, s, "finishing run %s", res->run_id);
	if (!strcmp(res->status, "finished") && o->propose_deploy) rc = propose_deploy(db, spec, res, o, err);
	if (!strcmp(res->status, "failed"))
		sam_event_publishp("train", SAM_EV_TRAIN_FAILED, "{s:s, s:s}", "run", res->run_id, "error", error);
	else if (!strcmp(res->status, "stopped"))
		sam_event_publishp("train", SAM_EV_TRAIN_STOPPED, "{s:s, s:I}", "run", res->run_id, "steps",
				   (json_int_t)o->steps);
	else
		sam_event_publishp("train", SAM_EV_TRAIN_FINISHED, "{s:s, s:s, s:I, s:I, s:s, s:s, s:o}", "run",
				   res->run_id, "status", res->status, "n_train", (json_int_t)res->n_train, "n_valid",
				   (json_int_t)res->n_valid, "adapter", o->adapter, "note", o->note, "approval",
				   res->approval > 0 ? json_integer(res->approval) : json_null());
	return rc;
}

/* A new run row with a sortable id: UTC time, the pid, and a counter should one process start two in one second. */
static int new_run(struct sam_db *db, int64_t upto, const char *data_dir, struct sam_train_result *res,
		   struct sam_error *err)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char stamp[16];
	if (!strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm)) stamp[0] = '\0';
	int s = SQLITE_CONSTRAINT, rc;
	for (int attempt = 0; attempt < 100 && (s & 0xff) == SQLITE_CONSTRAINT; attempt++) {
		if (attempt) snprintf(res->run_id, sizeof res->run_id, "%.15s-%u-%d", stamp, (unsigned)getpid(), attempt);
		else snprintf(res->run_id, sizeof res->run_id, "%.15s-%u", stamp, (unsigned)getpid());
		char rel[128];
		snprintf(rel, sizeof rel, "data/runs/%s", res->run_id);
		if (data_dir) snprintf(res->data_dir, sizeof res->data_dir, "%s", data_dir);
		else if (sam_home_path(res->data_dir, sizeof res->data_dir, rel))
			return sam_errorf(err, SAM_ERANGE, "SAM_HOME path too long");
		sqlite3_stmt *st;
		if ((rc = sam_db_prepare(db, &st,
					 "INSERT INTO training_runs(id, status, started, pid, examples_upto, data_dir)"
					 " VALUES(?, 'running', ?, ?, ?, ?)",
					 err)))
			return rc;
		sqlite3_bind_text(st, 1, res->run_id, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 2, sam_db_time());
		sqlite3_bind_int64(st, 3, (int64_t)getpid());
		sqlite3_bind_int64(st, 4, upto);
		sqlite3_bind_text(st, 5, res->data_dir, -1, SQLITE_STATIC);
		s = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (s != SQLITE_DONE) return sam_db_errorf(db, err, s, "recording run %s", res->run_id);
	return 0;
}

/* Count the non-empty lines of a JSONL file (0 if it is absent). */
static int64_t count_lines(const char *dir, const char *name)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	int64_t n = 0;
	int c, prev = '\n';
	while ((c = getc(f)) != EOF) {
		if (c == '\n' && prev != '\n') n++;
		prev = c;
	}
	fclose(f);
	return n + (prev != '\n');
}

/* The run to continue: id, or the newest stopped or interrupted one; set running again. */
static int resume_run(struct sam_db *db, const char *id, struct sam_train_result *res, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"SELECT id, data_dir, n_train, n_valid FROM training_runs WHERE (?1 = '' OR id = ?1)"
				" AND data_dir IS NOT NULL AND (status = 'stopped' OR (status = 'failed' AND error = 'interrupted'))"
				" ORDER BY started DESC LIMIT 1",
				err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return *id ? sam_errorf(err, SAM_ENOTFOUND, "run %s is not a stopped or interrupted run", id)
			   : sam_errorf(err, SAM_ENOTFOUND, "there is no stopped or interrupted run to resume");
	}
	snprintf(res->run_id, sizeof res->run_id, "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(res->data_dir, sizeof res->data_dir, "%s", (const char *)sqlite3_column_text(st, 1));
	res->n_train = sqlite3_column_int64(st, 2);
	res->n_valid = sqlite3_column_int64(st, 3);
	sqlite3_finalize(st);
	if ((rc = sam_db_prepare(db, &st,
				 "UPDATE training_runs SET status = 'running', pid = ?, finished = NULL, error = NULL"
				 " WHERE id = ?",
				 err)))
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)getpid());
	sqlite3_bind_text(st, 2, res->run_id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	if (s != SQLITE_DONE) return sam_db_errorf(db, err, s, "resuming run %s", res->run_id);
	res->resumed = true;
	return 0;
}

/* The run's data: exported, or counted in the directory given. */
static int prepare_data(struct sam_db *db, const struct sam_train_spec *spec, struct sam_train_result *res,
			struct sam_error *err)
{
	int rc = 0;
	if (spec->data_dir) {
		res->n_train = count_lines(res->data_dir, "train.jsonl");
		res->n_valid = count_lines(res->data_dir, "valid.jsonl");
		if (!res->n_train) rc = sam_errorf(err, SAM_EINVAL, "%s/train.jsonl is missing or empty", res->data_dir);
	} else {
		rc = sam_dataset_export(db, res->data_dir, spec->valid_fraction, &res->n_train, &res->n_valid, err);
	}
	if (rc) return rc;
	sqlite3_stmt *u;
	if (!sam_db_prepare(db, &u, "UPDATE training_runs SET n_train = ?, n_valid = ? WHERE id = ?", NULL)) {
		sqlite3_bind_int64(u, 1, res->n_train);
		sqlite3_bind_int64(u, 2, res->n_valid);
		sqlite3_bind_text(u, 3, res->run_id, -1, SQLITE_STATIC);
		sqlite3_step(u);
		sqlite3_finalize(u);
	}
	return 0;
}

int sam_train_run(struct sam_db *db, const struct sam_trainer *trainer, const struct sam_train_spec *spec,
		  struct sam_train_result *res, struct sam_error *err)
{
	memset(res, 0, sizeof *res);
	int rc = sam_db_exec(db,
			     "UPDATE training_runs SET status = 'failed', finished = strftime('%s','now'),"
			     " error = 'interrupted' WHERE status = 'running'",
			     err);
	if (rc) return rc;
	if (spec->resume) {
		if ((rc = resume_run(db, spec->resume, res, err))) return rc;
	} else {
		int64_t upto = 0;
		if ((rc = sam_db_query_int(db, "SELECT coalesce(max(id), 0) FROM examples", &upto, err))) return rc;
		if (upto <= 0 && !spec->data_dir)
			return sam_errorf(err, SAM_EINVAL, "no examples to train on (add some with `sam learn add`)");
		if ((rc = new_run(db, upto, spec->data_dir, res, err))) return rc;
	}

	struct sam_train_outcome out = { .valid_loss_base = NAN, .valid_loss = NAN };
	const char *tname = trainer ? trainer->name : NULL;
	if (!res->resumed) rc = prepare_data(db, spec, res, err);
	if (!rc) {
		sam_event_publishp("train", SAM_EV_TRAIN_STARTED, "{s:s, s:I, s:I, s:s, s:b}", "run", res->run_id,
				   "n_train", (json_int_t)res->n_train, "n_valid", (json_int_t)res->n_valid, "trainer",
				   tname ? tname : "none", "resumed", res->resumed);
		if (trainer) rc = trainer->train(trainer->ctx, res->run_id, res->data_dir, res->resumed, &out, err);
	}
	const char *status = rc == SAM_ESTOPPED ? "stopped" : rc ? "failed" : trainer ? "finished" : "exported";
	snprintf(res->status, sizeof res->status, "%s", status);
	int rc2 = end_run(db, spec, res, &out, tname, rc && rc != SAM_ESTOPPED ? err->msg : NULL, rc ? NULL : err);
	return rc ? rc : rc2;
}
