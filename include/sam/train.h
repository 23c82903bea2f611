/*
 * train.h - scheduling a training run: the one machine-wide training lock,
 * the run record in sam.db, the data export and the train.* events, with
 * the training step itself behind an interface (the LoRA trainer plugs in
 * there; without one a run only exports its data).
 *
 * The lock is $SAM_HOME/run/training.lock, taken with a non-blocking
 * flock(): whichever process asks (`sam train`, the watcher's trigger, the
 * supervisor's one-shot job), two trainings never run at once on one
 * machine, and a crashed holder releases it with its last file descriptor.
 */
#ifndef SAM_TRAIN_H
#define SAM_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sam/config.h"
#include "sam/core.h"
#include "sam/db.h"

#define SAM_TRAIN_RUN_ID_MAX 40

/*
 * Take the training lock: *fd is its descriptor (keep it open for as long
 * as the training runs; sam_train_unlock releases it). SAM_EBUSY when
 * another process holds it, with that holder's pid in the message when it
 * wrote one.
 */
int sam_train_lock(int *fd, struct sam_error *err);
void sam_train_unlock(int fd);

/* What a training step reports; NAN (or "") where it has nothing to say. */
struct sam_train_outcome {
	char adapter[4096];     /* the adapter it deployed, "" if none */
	double valid_loss_base; /* validation loss of the base model */
	double valid_loss;      /* ... and with the adapter */
	int64_t steps;          /* optimiser steps done */
	char note[512];         /* what became of the adapter, for the run record */
	/* The adapter in the run's data directory (adapter.gguf) beat the base
	 * and should be deployed, but only with a person's yes: the scheduler
	 * proposes a training_deploy approval once the run is recorded finished. */
	bool propose_deploy;
};

/*
 * The training step: train on data_dir/train.jsonl and valid.jsonl (with
 * resume, continue from data_dir's checkpoint). SAM_ESTOPPED when it
 * stopped on request with its state saved: the run is recorded
 * 'stopped' and can be resumed.
 */
struct sam_trainer {
	const char *name;
	int (*train)(void *ctx, const char *run_id, const char *data_dir, bool resume, struct sam_train_outcome *out,
		     struct sam_error *err);
	void *ctx;
};

struct sam_train_result {
	char run_id[SAM_TRAIN_RUN_ID_MAX + 1];
	char status[16];        /* "finished", "exported" (no trainer), "stopped" or "failed" */
	int64_t n_train, n_valid;
	char data_dir[4096];
	bool resumed;
	int64_t approval;       /* the training_deploy proposal waiting for a yes; 0: none */
};

/* Which run and which data. */
struct sam_train_spec {
	double valid_fraction; /* of the examples exported for validation (sam_dataset_export) */
	const char *data_dir;  /* NULL: export the examples into $SAM_HOME/data/runs/<id>/; else train on this directory */
	const char *resume;    /* NULL: a new run; "": the newest stopped or interrupted run; else that run's id */
	const struct sam_conf *conf; /* for the approval's expiry ([approvals] ttl); NULL: built-in defaults */
};

/*
 * One run, the caller holding the lock: runs left 'running' by a crashed
 * holder are marked failed ("interrupted"); then either a new run row
 * (pid, examples_upto = the newest example id) and its data (exported, or
 * spec->data_dir), or with spec->resume the run to continue (status
 * 'stopped', or failed as interrupted, its data still in place) set
 * running again; train.started; the trainer (NULL: none, the run ends
 * 'exported'); the row finished, stopped or failed and train.finished /
 * train.stopped / train.failed (a finished run whose trainer asked for
 * propose_deploy first gets its training_deploy proposal, res->approval,
 * named in its note and event). SAM_EINVAL when there are no examples
 * (nothing is recorded then), SAM_ENOTFOUND when there is no run to
 * resume. A failing trainer's error is returned after the run is
 * recorded.
 */
int sam_train_run(struct sam_db *db, const struct sam_trainer *trainer, const struct sam_train_spec *spec,
		  struct sam_train_result *res, struct sam_error *err);

/*
 * Install the adapter file src as adapters/<run_id>.gguf, make it current
 * and ask a running api to reload it. path (pcap bytes) gets the installed
 * adapter's path; said (scap bytes) a sentence on what the api did. An api
 * that is not running or not ready is no error (it loads the adapter when
 * it is); one that refuses the adapter (409) is, and adapters/current is
 * put back to what it named before (path is "" then).
 */
int sam_train_install(const char *run_id, const char *src, char *path, size_t pcap, char *said, size_t scap,
		      struct sam_error *err);

/*
 * Deploy the adapter of a finished run waiting for approval (what an
 * approved training_deploy proposal does): its data directory's
 * adapter.gguf is installed as above, the run's row gets the adapter and a
 * note, and train.deployed is published. note (cap bytes) gets what
 * happened. SAM_ENOTFOUND for an unknown run or a missing adapter file,
 * SAM_ECONFLICT for a run that is not finished.
 */
int sam_train_deploy(const char *run_id, char *note, size_t cap, struct sam_error *err);

/* ---- the automatic trigger (owned by `sam learn watch`) -------------------------- */

struct sam_train_trigger {
	int64_t min_new;      /* examples waiting before a run is worth starting (> 0) */
	double interval_s;    /* at least this long between two starts, so a failing run is not retried at once */
	/* state, which the owner may read for its reports */
	int64_t waiting;      /* examples waiting at the last check */
	int64_t started;      /* runs started */
	double last_start;    /* sam_now() of the last start; 0: none */
	pid_t child;          /* our own `sam train` while it runs, else 0 */
	char last[256];       /* what the last check decided, as a sentence */
};

/*
 * After an ingest batch: start a training run when at least min_new
 * examples wait (sam_learn_pending), mem_level (enum sam_level) is OK, no
 * process holds the training lock and interval_s has passed since the last
 * start. The run is the supervisor's one-shot `train` service when a
 * supervisor answers on its socket, else a child `sam train` (this
 * binary) - which takes the lock itself, so a race with another trigger or
 * a manual `sam train` still runs one. Returns true when it started one;
 * t->last says why not.
 */
bool sam_train_trigger_check(struct sam_train_trigger *t, struct sam_db *db, int mem_level, double now);
/* Collect our child `sam train` if it has ended (call on SIGCHLD); logs how it ended. */
void sam_train_trigger_reap(struct sam_train_trigger *t);

#endif
