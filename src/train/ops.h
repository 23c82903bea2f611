/*
 * ops.h - the trainer's operations, each a forward function and the
 * backward function that turns the gradient of its output into gradients
 * of its inputs (and of the LoRA parameters). Rows are tokens: x[T][n].
 *
 * Conventions: backward functions ADD into the gradients they produce
 * (dx += ...), so a value used twice (the residual stream) collects both
 * contributions; callers zero gradient buffers first. Frozen inputs (norm
 * weights, base matrices, biases) get no gradient.
 *
 * Every op is checked against finite differences in
 * tests/train/test_grad.c. Nothing here allocates except where noted;
 * results do not depend on the number of threads (each output element is
 * summed by one thread in a fixed order), which is what makes a resumed
 * run repeat an uninterrupted one exactly.
 */
#ifndef SAM_TRAIN_OPS_H
#define SAM_TRAIN_OPS_H

#include <stdint.h>

#include "sam/model.h"
#include "sam/threadpool.h"

/* y[t] = x[t] * r[t] * w, r[t] = 1/sqrt(mean(x[t]^2) + eps), saved in r[T]. */
void op_rmsnorm(float *y, float *r, const float *x, const float *w, int T, int n, float eps);
/* dx += d(y)/d(x) . dy (w frozen). */
void op_rmsnorm_back(float *dx, const float *dy, const float *x, const float *r, const float *w, int T, int n);

/*
 * RoPE of every head of v[T][n_heads*head_dim] at positions 0..T-1 in
 * place, as the inference forward pass does it (same angles, same pairs).
 * inverse rotates the other way: that is the backward of the rotation
 * (orthogonal), applied to the gradient. cache: [T][rope_dim] of scratch.
 */
void op_rope_cache(const struct sam_model *m, float *cache, int T);
void op_rope(const struct sam_hparams *hp, float *v, int T, int n_heads, const float *cache, int inverse);

/*
 * Causal self-attention over T tokens: out[T][q_dim] from q[T][q_dim],
 * k, v [T][kv_dim] (after RoPE), grouped-query heads as the model says.
 * p[n_head][T][T] receives the attention weights (row i: keys 0..i).
 */
void op_attention(struct sam_pool *pool, const struct sam_hparams *hp, float *out, float *p, const float *q,
		  const float *k, const float *v, int T);
/*
 * dq (+=), dk (+=), dv (+=) from dout. p is overwritten (it becomes the
 * scaled gradient of the scores). scratch: n_head * ATT_SCRATCH(T,
 * head_dim) floats for per-head key/value gradients, summed over each kv
 * group in head order.
 */
#define ATT_SCRATCH(T, hd) ((size_t)(T) * (2 * (size_t)(hd) + 1) + (size_t)(hd))
void op_attention_back(struct sam_pool *pool, const struct sam_hparams *hp, float *dq, float *dk, float *dv,
		       const float *dout, float *p, const float *q, const float *k, const float *v, int T,
		       float *scratch);

/* h = silu(g) * u, elementwise over n. */
void op_swiglu(float *h, const float *g, const float *u, size_t n);
/* dg += dh * u * silu'(g), du += dh * silu(g). */
void op_swiglu_back(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);

/*
 * Cross-entropy of rows logits[R][V] against targets[R]: returns the sum
 * of -log softmax(row)[target] (in double), and with dlogits != NULL
 * writes dlogits = (softmax - onehot) * scale (in place is allowed:
 * dlogits may be logits).
 */
double op_cross_entropy(float *dlogits, const float *logits, const int32_t *targets, int R, int V, float scale);

/*
 * A linear layer with an optional LoRA pair: y[T][rows] = x W^T (+ bias)
 * (+ s (x A^T) B^T). t[T][rank] receives x A^T (for the backward). act:
 * scratch of T * max(W.cols, rank) floats. A, B: F32, [rank][cols] and
 * [rows][rank]; NULL for a layer without LoRA.
 */
struct op_lora {
	const float *a, *b; /* NULL: none */
	float *da, *db;     /* gradients, same shapes (+=) */
	int rank;
	float s;
};
void op_linear(struct sam_pool *pool, void *act, float *y, float *t, const struct sam_tensor *w, const float *bias,
	       const struct op_lora *lo, const float *x, int T);
/*
 * From dy[T][rows]: LoRA gradients (da, db +=), and with dx != NULL,
 * dx[T][cols] += dy W + s (dy B) A. g: scratch of T * rank floats.
 */
void op_linear_back(struct sam_pool *pool, float *dx, const float *dy, const struct sam_tensor *w,
		    const struct op_lora *lo, const float *x, const float *t, int T, float *g);

/*
 * out[B][w.cols] += dy[B][w.rows] . w, for a weight of any engine type
 * (rows dequantized block by block; w must not be repacked).
 */
void op_product_t(struct sam_pool *pool, float *out, const float *dy, const struct sam_tensor *w, int B);

#endif
