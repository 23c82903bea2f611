/*
 * matmul.h - products of float activations with weight matrices of any
 * engine type, split across a thread pool: what the forward pass, the
 * LoRA adapters and the trainer multiply with.
 *
 * Activations are converted to the weight type's activation type first
 * (quant.h), as llama.cpp does, into the caller's scratch `act`, which
 * must hold B rows of the widest type (F32): B * cols * sizeof(float)
 * bytes. Nothing here allocates.
 */
#ifndef SAM_ENGINE_MATMUL_H
#define SAM_ENGINE_MATMUL_H

#include <stdint.h>

#include "sam/model.h"
#include "sam/threadpool.h"

/*
 * Below this many multiply-adds a job runs on the calling thread: waking the
 * pool costs more than it saves, and on a machine with more runnable
 * threads than cores every wake-up can cost a scheduler time slice.
 */
#define MM_PAR_MIN_WORK (1 << 18)

/* fn on the pool, or on the calling thread alone (fn(job, 0, 1)) when work is small. */
void mm_run(struct sam_pool *pool, sam_pool_fn fn, void *job, int64_t work);

/*
 * out[k][B][w[k].rows] = x[B][cols] . w[k]^T for k < n: products of the
 * same activations x (every w[k] has cols columns). Weights whose types
 * take the same activation type share one conversion of x and one job.
 */
void mm_product_n(struct sam_pool *pool, void *act, int n, float *const *out, const struct sam_tensor *const *w,
		  const float *x, int B);
/* out[B][w.rows] = x[B][w.cols] . w^T */
void mm_product(struct sam_pool *pool, void *act, float *out, const struct sam_tensor *w, const float *x, int B);

#endif
