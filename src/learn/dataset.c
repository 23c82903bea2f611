/*
 * dataset.c - what the example store holds (`sam learn stats`) and the
 * deterministic train/valid export (`sam dataset export`); see learn.h.
 */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/fs.h"
#include "sam/learn.h"

int sam_learn_stats(struct sam_db *db, struct sam_learn_stats *st, struct sam_error *err)
{
	memset(st, 0, sizeof *st);
	int rc;
	if ((rc = sam_db_query_int(db, "SELECT count(*) FROM examples", &st->examples, err)) ||
	    (rc = sam_db_query_int(db, "SELECT count(*) FROM examples WHERE kind = 'chat'", &st->chat, err)) ||
	    (rc = sam_db_query_int(db, "SELECT count(*) FROM examples WHERE kind = 'text'", &st->text, err)) ||
	    (rc = sam_db_query_int(db, "SELECT count(*) FROM files WHERE status = 'ok'", &st->files_ok, err)) ||
	    (rc = sam_db_query_int(db, "SELECT count(*) FROM files WHERE status = 'partial'", &st->files_partial, err)) ||
	    (rc = sam_db_query_int(db, "SELECT count(*) FROM files WHERE status = 'error'", &st->files_error, err)))
		return rc;
	return sam_learn_pending(db, &st->pending, err);
}

int sam_learn_pending(struct sam_db *db, int64_t *n, struct sam_error *err)
{
	/* examples newer than the last run that got its data: the ones no training has seen */
	return sam_db_query_int(db,
		     "SELECT count(*) FROM examples WHERE id > coalesce((SELECT examples_upto FROM training_runs"
		     " WHERE status IN ('finished','exported') ORDER BY started DESC LIMIT 1), 0)",
		     n, err);
}

int sam_learn_stats_by(struct sam_db *db, void (*fn)(void *ctx, const char *source, const char *category, int64_t n),
		       void *ctx, struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st,
				"SELECT source, category, count(*) FROM examples GROUP BY source, category"
				" ORDER BY source, category",
				err);
	if (rc) return rc;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		   sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	return s == SQLITE_DONE ? 0 : sam_db_errorf(db, err, s, "counting examples");
}

/* Whether an example goes to the validation set: its hash's first 32 bits below fraction * 2^32. */
static bool is_valid(const char *hash, double fraction)
{
	char h8[9];
	memcpy(h8, hash, 8);
	h8[8] = '\0';
	return (double)strtoul(h8, NULL, 16) < fraction * 4294967296.0;
}

int sam_dataset_export(struct sam_db *db, const char *dir, double valid_fraction, int64_t *n_train, int64_t *n_valid,
		       struct sam_error *err)
{
	if (!(valid_fraction >= 0 && valid_fraction <= 1))
		return sam_errorf(err, SAM_EINVAL, "the validation fraction must be between 0 and 1");
	int rc = sam_mkdirs(dir, err);
	if (rc) return rc;
	char tpath[PATH_MAX], vpath[PATH_MAX];
	if (snprintf(tpath, sizeof tpath, "%s/train.jsonl", dir) >= (int)sizeof tpath ||
	    snprintf(vpath, sizeof vpath, "%s/valid.jsonl", dir) >= (int)sizeof vpath)
		return sam_errorf(err, SAM_ERANGE, "%s: path too long", dir);
	struct sam_afile tf = { .fd = -1 }, vf = { .fd = -1 };
	if ((rc = sam_afile_open(&tf, tpath, 0644, err))) return rc;
	if ((rc = sam_afile_open(&vf, vpath, 0644, err))) {
		sam_afile_abort(&tf);
		return rc;
	}
	/* one read transaction: both files see the same examples */
	sqlite3_stmt *st = NULL;
	if ((rc = sam_db_exec(db, "BEGIN", err))) goto fail;
	if ((rc = sam_db_prepare(db, &st, "SELECT hash, content FROM examples ORDER BY hash", err))) goto end;
	int64_t nt = 0, nv = 0;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *hash = (const char *)sqlite3_column_text(st, 0);
		const char *json = (const char *)sqlite3_column_text(st, 1);
		size_t n = (size_t)sqlite3_column_bytes(st, 1);
		bool v = is_valid(hash, valid_fraction);
		int fd = v ? vf.fd : tf.fd;
		if (sam_write_all(fd, json, n) || sam_write_all(fd, "\n", 1)) {
			rc = sam_errorf(err, SAM_EIO, "%s: write failed", v ? vpath : tpath);
			goto end;
		}
		if (v) nv++;
		else nt++;
	}
	if (s != SQLITE_DONE) rc = sam_db_errorf(db, err, s, "reading examples");
end:
	sqlite3_finalize(st);
	sam_db_exec(db, "COMMIT", NULL);
	if (rc) goto fail;
	if ((rc = sam_afile_commit(&tf, err))) {
		sam_afile_abort(&vf);
		return rc;
	}
	if ((rc = sam_afile_commit(&vf, err))) return rc;
	if (n_train) *n_train = nt;
	if (n_valid) *n_valid = nv;
	return 0;
fail:
	sam_afile_abort(&tf);
	sam_afile_abort(&vf);
	return rc;
}
