/*
 * adamw.h - the optimiser: AdamW (decoupled weight decay, bias-corrected
 * moments, as torch.optim.AdamW), a learning rate with linear warm-up and
 * cosine decay, and clipping by the global gradient norm.
 */
#ifndef SAM_TRAIN_ADAMW_H
#define SAM_TRAIN_ADAMW_H

#include <stddef.h>
#include <stdint.h>

struct adamw {
	double beta1, beta2, eps, weight_decay;
	int64_t t;   /* steps taken */
	float *m, *v; /* [n] moments; owned */
	size_t n;
};

/* Zero moments for n parameters; -1 when out of memory. */
int adamw_init(struct adamw *o, size_t n, double beta1, double beta2, double eps, double weight_decay);
void adamw_free(struct adamw *o);

/* One step: p -= lr * (m^ / (sqrt(v^) + eps) + wd * p), moments from g. */
void adamw_step(struct adamw *o, float *p, const float *g, double lr);

/*
 * Learning rate of step s (0-based) of total: lr * (s+1)/warmup during the
 * warm-up, then cosine from lr down to lr * min_frac at the last step.
 */
double lr_at(int64_t s, int64_t total, int64_t warmup, double lr, double min_frac);

/* Scale g so that its L2 norm is at most max (max <= 0: no clipping); returns the norm before. */
double clip_grad(float *g, size_t n, double max);

#endif
