/*
 * lora_apply.h - how the forward pass adds LoRA adapters to its products
 * (internal to the engine; the public side is sam/lora.h).
 *
 * Per decode, lora_plan groups the batch rows by the (adapter, scale) of
 * their sequence; after each base product the forward pass calls
 * lora_apply, which adds s * B (A x) to the rows of each group whose
 * adapter has that weight: the group's rows of x are gathered (unless the
 * group is the whole batch), t = x A^T and u = t B^T are taken with
 * mm_product in the context's scratch, and out += s * u row by row.
 * Rows of sequences without an adapter are never touched, and without
 * any adapter lora_plan returns false and nothing here runs.
 *
 * The scratch (struct sam_lora_run, owned by the context) is allocated by
 * sam_ctx_set_lora and grown there when an adapter of a larger rank
 * comes, so decoding never allocates.
 */
#ifndef SAM_ENGINE_LORA_APPLY_H
#define SAM_ENGINE_LORA_APPLY_H

#include <stdbool.h>

#include "sam/lora.h"
#include "sam/model.h"

/* Which rows a product covers: the batch rows, or the logits rows (c->logit_rows). */
enum lora_rows_of { LORA_BATCH, LORA_LOGITS };

/*
 * Group the n batch rows (c->bseq) and the n_logits logits rows by their
 * sequence's adapter. False when no row has one: then skip lora_apply.
 */
bool lora_plan(struct sam_ctx *c, int n, int n_logits);

/*
 * out[row][n_out] += s * B (A x[row]) for the planned rows of `which`
 * whose adapter adapts target t of layer l (l == -1: the output matrix);
 * x is [rows][n_in] and out [rows][n_out] of that weight.
 */
void lora_apply(struct sam_ctx *c, enum lora_rows_of which, int l, int t, float *out, const float *x);

/* Free a context's run state (NULL is fine). */
void lora_run_free(struct sam_lora_run *run);

#endif
