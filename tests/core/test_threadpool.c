/*
 * test_threadpool.c - every run calls each index exactly once and returns
 * only after all of them, whether the workers were spinning or asleep and
 * whether the caller had to sleep for them.
 */
#include <stdatomic.h>
#include <time.h>

#include "sam/threadpool.h"
#include "test.h"

struct job {
	atomic_int calls[8];
	atomic_int done;
	int nth_seen;
	int slow_us; /* workers other than the caller take this long */
};

static void sleep_us(int us)
{
	struct timespec ts = { 0, (long)us * 1000 };
	nanosleep(&ts, NULL);
}

static void fn(void *arg, int ith, int nth)
{
	struct job *j = arg;
	j->nth_seen = nth;
	if (ith > 0 && j->slow_us) sleep_us(j->slow_us);
	atomic_fetch_add(&j->calls[ith], 1);
	atomic_fetch_add(&j->done, 1);
}

static void check_runs(struct sam_pool *p, int runs, int slow_us, int pause_us)
{
	int n = sam_pool_size(p);
	for (int r = 0; r < runs; r++) {
		struct job j = { .slow_us = slow_us };
		sam_pool_run(p, fn, &j);
		/* everything finished before the run returned */
		CHECKF(atomic_load(&j.done) == n, "run %d: %d of %d calls done at return", r, atomic_load(&j.done), n);
		for (int i = 0; i < n; i++) CHECKF(atomic_load(&j.calls[i]) == 1, "run %d: index %d ran %d times", r, i, atomic_load(&j.calls[i]));
		CHECK(j.nth_seen == n);
		if (pause_us) sleep_us(pause_us);
	}
}

TEST(pool_runs_every_index_once)
{
	for (int n = 1; n <= 4; n++) {
		struct sam_pool *p = sam_pool_new(n);
		CHECK(p != NULL);
		CHECK(sam_pool_size(p) == n);
		check_runs(p, 5000, 0, 0); /* back to back: workers spin */
		check_runs(p, 20, 0, 3000); /* workers fall asleep between runs */
		check_runs(p, 10, 2000, 0); /* the caller outwaits its spin and sleeps */
		sam_pool_free(p);
	}
	sam_pool_free(NULL);
}
