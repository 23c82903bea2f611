/*
 * checkpoint.h - the state of a training run on disk: the adapter's
 * parameters, the optimiser's moments and step count, the number of
 * steps done, and a fingerprint of everything that determines the run
 * (options, model, data), so a resume under other conditions is refused
 * instead of silently producing something else.
 *
 * Layout: "SAMCKPT\0", u32 version (1), u32 fingerprint length, the
 * fingerprint, i64 steps, i64 optimiser steps, u64 n, then n floats each
 * of parameters, first and second moments (little-endian IEEE), then the
 * SHA-256 of all of the above. Written atomically (fs.h).
 */
#ifndef SAM_TRAIN_CHECKPOINT_H
#define SAM_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"

struct ckpt_state {
	int64_t step, adam_t;
	size_t n;
	float *params, *m, *v; /* [n] each, the caller's */
};

int ckpt_save(const char *path, const char *fingerprint, const struct ckpt_state *s, struct sam_error *err);
/*
 * Read path into s (whose arrays hold s->n floats). SAM_ENOTFOUND when
 * there is no file; SAM_EFORMAT when it is damaged; SAM_EINVAL when its
 * fingerprint or size differs (the message says which setting).
 */
int ckpt_load(const char *path, const char *fingerprint, struct ckpt_state *s, struct sam_error *err);

#endif
