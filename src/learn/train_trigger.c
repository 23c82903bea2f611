/*
 * train_trigger.c - when the watcher starts a training run (train.h). The
 * lock is only probed here; the run itself takes it, so the decision can
 * be wrong for a moment without two trainings ever running.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/learn.h"
#include "sam/resource.h"
#include "sam/supervise.h"
#include "sam/train.h"

extern char **environ;

#define say(t, ...) snprintf((t)->last, sizeof (t)->last, __VA_ARGS__)

/* Ask the supervisor to run its `train` job: 1 started, 0 no supervisor, -1 it refused (t->last says why). */
static int via_supervisor(struct sam_train_trigger *t)
{
	char *reply = NULL;
	struct sam_error err = { 0 };
	int rc = sup_request("start train", &reply, 5.0, &err);
	if (rc == SAM_ENOTFOUND) return 0;
	if (rc) {
		say(t, "the supervisor did not answer: %.200s", err.msg);
		return -1;
	}
	json_t *j = json_loads(reply, 0, NULL);
	free(reply);
	bool ok = json_is_true(json_object_get(j, "ok"));
	if (!ok) say(t, "the supervisor refused to start train: %s", json_string_value(json_object_get(j, "error")));
	json_decref(j);
	return ok ? 1 : -1;
}

static bool spawn_self(struct sam_train_trigger *t)
{
	char *argv[] = { "sam", "train", NULL };
	pid_t pid;
	/* The watcher blocks its signals for a signalfd; the run must get them
	 * (SIGTERM stops a training after its checkpoint). */
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int e = posix_spawn(&pid, "/proc/self/exe", NULL, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	if (e) {
		say(t, "could not start `sam train`: %s", strerror(e));
		return false;
	}
	t->child = pid;
	return true;
}

bool sam_train_trigger_check(struct sam_train_trigger *t, struct sam_db *db, int mem_level, double now)
{
	struct sam_error err = { 0 };
	if (t->child) return say(t, "a training started here is still running (pid %ld)", (long)t->child), false;
	if (sam_learn_pending(db, &t->waiting, &err))
		return say(t, "cannot count the waiting examples: %.200s", err.msg), false;
	if (t->waiting < t->min_new)
		return say(t, "%lld examples wait, %lld start a training", (long long)t->waiting, (long long)t->min_new),
		       false;
	if (mem_level != SAM_LEVEL_OK)
		return say(t, "%lld examples wait; training postponed: memory level %s", (long long)t->waiting,
			   sam_level_name(mem_level)),
		       false;
	if (t->last_start && now - t->last_start < t->interval_s)
		return say(t, "%lld examples wait; the last training started %.0f s ago (at least %.0f s apart)",
			   (long long)t->waiting, now - t->last_start, t->interval_s),
		       false;
	int fd;
	if (sam_train_lock(&fd, &err)) return say(t, "%.250s", err.msg), false;
	sam_train_unlock(fd);
	int sup = via_supervisor(t);
	if (sup < 0 || (sup == 0 && !spawn_self(t))) return false;
	t->started++;
	t->last_start = now;
	say(t, "training started (%s) for %lld waiting examples", sup ? "supervisor job 'train'" : "sam train",
	    (long long)t->waiting);
	sam_log(SAM_LOG_INFO, "learn: %s", t->last);
	return true;
}

void sam_train_trigger_reap(struct sam_train_trigger *t)
{
	int st;
	if (!t->child || waitpid(t->child, &st, WNOHANG) != t->child) return;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) sam_log(SAM_LOG_INFO, "learn: the training run finished");
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 3) sam_log(SAM_LOG_INFO, "learn: another training was running");
	else sam_log(SAM_LOG_WARN, "learn: the training run failed (status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	t->child = 0;
}
