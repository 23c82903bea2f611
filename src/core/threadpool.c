/*
 * threadpool.c - workers wait for a generation counter to change, spinning
 * for a short while before sleeping on a condition variable, so the many
 * back-to-back runs of one forward pass do not each pay a wake-up. The
 * caller waits for the workers the same way. Spins are short (tens of
 * microseconds): on a machine with more runnable threads than cores, a
 * long spin would burn the time slice the awaited thread needs.
 *
 * The mutex and condition variables are touched only when somebody is
 * asleep (the sleepers count, the caller_asleep flag): a forward pass runs
 * hundreds of jobs per token, and a lock, signal and unlock per job made
 * the two sides contend and enter the kernel on most of them. Each side
 * announces that it sleeps before checking the condition one last time,
 * and the other side changes the condition before checking for sleepers
 * (sequentially consistent atomics), so a wake-up is never lost.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "sam/core.h"
#include "sam/threadpool.h"

#define SPIN_ROUNDS 2000

struct worker {
	struct sam_pool *pool;
	int ith;
	pthread_t tid;
};

struct sam_pool {
	int n;
	struct worker *workers;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* workers: a new run */
	pthread_cond_t done; /* caller: the last worker finished */
	atomic_uint gen;     /* bumped for each run */
	atomic_int pending;  /* workers still busy in the current run */
	atomic_int sleepers;        /* workers asleep on wake */
	atomic_bool caller_asleep;  /* the caller is (about to be) asleep on done */
	atomic_bool stop;
	sam_pool_fn fn;
	void *ctx;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sam_pool *p = w->pool;
	unsigned seen = 0;
	for (;;) {
		unsigned g;
		int spins = 0;
		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
		       !atomic_load(&p->stop) && spins < SPIN_ROUNDS) {
			cpu_relax();
			spins++;
		}
		if (g == seen && !atomic_load(&p->stop)) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->wake, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop)) return NULL;
		seen = g;
		p->fn(p->ctx, w->ith, p->n);
		if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_asleep)) {
			/* under the mutex, so a caller between its check and its wait cannot miss it */
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

int sam_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

struct sam_pool *sam_pool_new(int n_threads)
{
	if (n_threads < 1) n_threads = 1;
	struct sam_pool *p = calloc(1, sizeof *p);
	if (!p) return NULL;
	p->n = n_threads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->workers = calloc((size_t)n_threads, sizeof *p->workers);
	if (!p->workers) {
		free(p);
		return NULL;
	}
	for (int i = 1; i < n_threads; i++) {
		p->workers[i].pool = p;
		p->workers[i].ith = i;
		if (pthread_create(&p->workers[i].tid, NULL, worker_main, &p->workers[i]) != 0) {
			p->n = i; /* run with the threads we got */
			sam_log(SAM_LOG_WARN, "thread pool: could only start %d threads", i);
			break;
		}
	}
	return p;
}

void sam_pool_free(struct sam_pool *p)
{
	if (!p) return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++) pthread_join(p->workers[i].tid, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	free(p->workers);
	free(p);
}

int sam_pool_size(const struct sam_pool *p)
{
	return p ? p->n : 1;
}

void sam_pool_run(struct sam_pool *p, sam_pool_fn fn, void *ctx)
{
	if (!p || p->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	p->fn = fn;
	p->ctx = ctx;
	atomic_store(&p->pending, p->n - 1);
	atomic_fetch_add(&p->gen, 1);
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
	}
	fn(ctx, 0, p->n);
	for (int spins = 0; spins < SPIN_ROUNDS; spins++) {
		if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
		cpu_relax();
	}
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->caller_asleep, true);
	while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
	atomic_store(&p->caller_asleep, false);
	pthread_mutex_unlock(&p->mu);
}
