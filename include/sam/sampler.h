/*
 * sampler.h - choose the next token from logits.
 *
 * The chain is llama.cpp's default order: repetition penalty, top-k,
 * top-p, min-p, temperature, then a draw from the remaining distribution.
 * temp <= 0 is greedy (argmax after the penalty; ties go to the lowest id).
 * The same seed and the same logits give the same tokens.
 */
#ifndef SAM_SAMPLER_H
#define SAM_SAMPLER_H

#include <stdint.h>

#include "sam/core.h"

struct sam_sampler_params {
	float temp;           /* <= 0: greedy */
	int top_k;            /* <= 0: off */
	float top_p;          /* >= 1: off */
	float min_p;          /* <= 0: off */
	float repeat_penalty; /* 1: off */
	int repeat_last_n;    /* window of recent tokens the penalty looks at */
	uint64_t seed;
};

/* llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalty, window 64. */
void sam_sampler_defaults(struct sam_sampler_params *p);

struct sam_candidate {
	int32_t id;
	float logit;
	float p;
};

struct sam_sampler {
	struct sam_sampler_params p;
	int n_vocab;
	uint64_t rng[4];
	struct sam_candidate *cand; /* [n_vocab] scratch */
	int32_t *recent;            /* ring of the last repeat_last_n accepted tokens */
	int n_recent, recent_head;
};

int sam_sampler_init(struct sam_sampler *s, const struct sam_sampler_params *p, int n_vocab,
		     struct sam_error *err);
void sam_sampler_free(struct sam_sampler *s);
/* Remember a token that is now part of the context (prompt or generated). */
void sam_sampler_accept(struct sam_sampler *s, int32_t id);
/* Pick a token from logits[n_vocab]; logits are not modified. */
int32_t sam_sampler_sample(struct sam_sampler *s, const float *logits);

/* Uniform double in [0, 1) from the sampler's generator (exposed for tests). */
double sam_sampler_uniform(struct sam_sampler *s);

#endif
