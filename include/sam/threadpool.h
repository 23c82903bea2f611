/*
 * threadpool.h - a fixed set of worker threads for data-parallel loops.
 *
 * sam_pool_run(pool, fn, ctx) calls fn(ctx, i, n) once for each i in
 * [0, n) where n is the pool size, the caller itself running i = 0, and
 * returns when all calls have returned. Between runs, workers spin briefly
 * (a forward pass issues many short runs back to back) and then sleep.
 * One thread at a time may call sam_pool_run on a given pool.
 */
#ifndef SAM_THREADPOOL_H
#define SAM_THREADPOOL_H

struct sam_pool;

typedef void (*sam_pool_fn)(void *ctx, int ith, int nth);

/* A pool of n_threads (>= 1; the caller counts as one). NULL on failure. */
struct sam_pool *sam_pool_new(int n_threads);
/* Stop and join the workers; NULL is allowed. */
void sam_pool_free(struct sam_pool *pool);
int sam_pool_size(const struct sam_pool *pool);
void sam_pool_run(struct sam_pool *pool, sam_pool_fn fn, void *ctx);

/* Number of online CPUs (>= 1). */
int sam_cpu_count(void);

#endif
