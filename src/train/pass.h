/*
 * pass.h - the trainer's forward and backward pass over one sequence:
 * the transformer with a LoRA adapter, the cross-entropy on the tokens
 * that carry loss, and the gradients of that loss with respect to the
 * adapter's A and B matrices. The base weights are frozen and read in
 * whatever type the file has (dequantized on the fly, never copied).
 *
 * Memory is bounded by gradient checkpointing: the forward pass keeps
 * only each layer's input (n_layer+1 rows of [T][dim]); the backward pass
 * recomputes one layer at a time from its input and goes back through
 * it. Logits are made only for the positions that carry loss, a chunk at
 * a time, so the [T][n_vocab] matrix never exists.
 */
#ifndef SAM_TRAIN_PASS_H
#define SAM_TRAIN_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/lora.h"
#include "sam/model.h"
#include "sam/threadpool.h"
#include "train/ops.h"

#define PASS_LOGIT_CHUNK 32 /* positions whose logits exist at once */

struct pass {
	const struct sam_model *m;
	struct sam_lora *lora; /* made with sam_lora_init: the parameters */
	float *grad;           /* [lora->mem_floats], parallel to lora->mem; the pass adds into it */
	struct sam_pool *pool; /* borrowed */
	int max_T;
	struct op_lora (*lo)[SAM_LORA_N_TARGET]; /* [n_layer]: views of lora and grad */
	struct op_lora lo_out;
	bool no_lora; /* run the base model alone (evaluation of the base) */
	float *buf;  /* every buffer below, one allocation */
	size_t buf_floats;
	float *xs;   /* [n_layer+1][max_T][dim] layer inputs (checkpoints) */
	/* one layer's activations, recomputed in the backward pass */
	float *xn, *r1, *q, *k, *v, *p, *att, *x2, *xn2, *r2, *g, *u, *h, *tmp;
	float *t[SAM_LORA_N_TARGET]; /* [max_T][rank] x A^T of each projection */
	/* gradients */
	float *dx, *dxn, *dq, *dk, *dv, *datt, *dh, *dg, *du, *gs, *att_scratch;
	float *xf, *rf, *rope;
	float *xg, *logits, *dxg, *tout; /* logit chunk: [C][dim], [C][n_vocab], [C][dim], [C][rank] */
	int32_t *rows, *targets;         /* [max_T] positions that carry loss and their target tokens */
	void *act;                       /* activation conversion scratch */
};

/*
 * Bytes pass_init allocates for this model, adapter rank and sequence
 * length (for the trainer's memory estimate).
 */
size_t pass_bytes(const struct sam_hparams *hp, int rank, int max_T);

/*
 * Set up a pass over m with the adapter lora (rank and targets as made)
 * and gradient buffer grad, for sequences of up to max_T positions. The
 * model's weights must not be repacked (sam_model_load_flags with
 * SAM_LOAD_NO_REPACK). SAM_ENOMEM.
 */
int pass_init(struct pass *ps, const struct sam_model *m, struct sam_lora *lora, float *grad, float user_scale,
	      struct sam_pool *pool, int max_T, struct sam_error *err);
void pass_free(struct pass *ps);

/*
 * One sequence tok[0..n) (2 <= n <= max_T+1): positions 0..n-2 predict
 * tok[1..n-1]; position i counts when loss[i+1] (loss NULL: all count).
 * Returns the sum of -log p(target) over the counted positions (*n_loss
 * of them). With backward, adds loss_scale * d(sum)/d(parameters) into
 * the gradient buffer (loss_scale = 1 / tokens of the whole step makes
 * the step's gradient that of its mean loss).
 */
double pass_run(struct pass *ps, const int32_t *tok, const uint8_t *loss, int n, bool backward, float loss_scale,
		int *n_loss);

#endif
