/*
 * train_deploy.c - putting a trained adapter into service (see train.h):
 * at once when the run may deploy by itself, or later, when a person
 * approves the run's training_deploy proposal.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sam/adapters.h"
#include "sam/events.h"
#include "sam/train.h"

int sam_train_install(const char *run_id, const char *src, char *path, size_t pcap, char *said, size_t scap,
		      struct sam_error *err)
{
	path[0] = said[0] = '\0';
	char prev[SAM_ADAPTER_ID_MAX + 1];
	struct sam_error ignore;
	bool had = sam_adapters_current(prev, sizeof prev, NULL, 0, &ignore) == 0;
	int rc = sam_adapters_deploy(src, run_id, err);
	if (!rc) rc = sam_adapter_path(run_id, path, pcap, err);
	if (rc) return rc;
	struct sam_api_reload ar;
	rc = sam_adapters_reload_or_revert(had ? prev : NULL, &ar, err);
	if (rc && ar.status == 409) {
		snprintf(said, scap, "the api refused it%s%s", ar.reverted ? ", adapters/current is back to " : "",
			 ar.reverted ? (had ? prev : "none") : "");
		path[0] = '\0';
		return rc;
	}
	snprintf(said, scap, "%s",
		 !ar.reached ? "the api is not running (it loads the adapter when it starts)"
		 : rc	     ? "the api could not be told (see its log)"
		 : ar.later  ? "the api is not ready yet (it loads the adapter when it is)"
			     : "the api reloaded it");
	return rc;
}

/* The run's status and data directory; SAM_ENOTFOUND when there is no such run. */
static int run_row(struct sam_db *db, const char *run_id, char *status, size_t scap, char *dir, size_t dcap,
		   struct sam_error *err)
{
	sqlite3_stmt *st;
	int rc = sam_db_prepare(db, &st, "SELECT status, coalesce(data_dir, '') FROM training_runs WHERE id = ?", err);
	if (rc) return rc;
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		snprintf(status, scap, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(dir, dcap, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (s == SQLITE_ROW) return 0;
	if (s == SQLITE_DONE) return sam_errorf(err, SAM_ENOTFOUND, "there is no training run '%s'", run_id);
	return sam_db_errorf(db, err, s, "reading training run %s", run_id);
}

int sam_train_deploy(const char *run_id, char *note, size_t cap, struct sam_error *err)
{
	note[0] = '\0';
	struct sam_db *db;
	int rc = sam_db_thread(&db, NULL, err);
	if (rc) return rc;
	char status[16], dir[4096], src[4200], path[4096] = "", said[128];
	if ((rc = run_row(db, run_id, status, sizeof status, dir, sizeof dir, err))) return rc;
	if (strcmp(status, "finished"))
		return sam_errorf(err, SAM_ECONFLICT, "training run %s is %s, not finished: it has no adapter to deploy",
				  run_id, status);
	snprintf(src, sizeof src, "%s/adapter.gguf", dir);
	if (!*dir || access(src, R_OK) != 0)
		return sam_errorf(err, SAM_ENOTFOUND, "the adapter of run %s is gone (%s: %s)", run_id, src,
				  *dir ? strerror(errno) : "no data directory");
	rc = sam_train_install(run_id, src, path, sizeof path, said, sizeof said, err);
	if (rc && !path[0]) {
		if (said[0]) sam_error_prefix(err, said);
		return rc;
	}
	snprintf(note, cap, "deployed on approval; %s", said);
	sqlite3_stmt *st;
	int rc2 = sam_db_prepare(db, &st, "UPDATE training_runs SET adapter = ?, note = ? WHERE id = ?", err);
	if (!rc2) {
		sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, note, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, run_id, -1, SQLITE_STATIC);
		int s = sqlite3_step(st);
		sqlite3_finalize(st);
		if (s != SQLITE_DONE) rc2 = sam_db_errorf(db, err, s, "recording the deployment of run %s", run_id);
	}
	sam_event_publishp("train", SAM_EV_TRAIN_DEPLOYED, "{s:s, s:s, s:s}", "run", run_id, "adapter", path, "api",
			   said);
	return rc ? rc : rc2;
}
