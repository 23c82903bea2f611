/*
 * adamw.c - AdamW, the learning-rate schedule and gradient clipping (see adamw.h).
 */
#include <math.h>
#include <stdlib.h>

#include "train/adamw.h"

int adamw_init(struct adamw *o, size_t n, double beta1, double beta2, double eps, double weight_decay)
{
	*o = (struct adamw){ .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay, .n = n };
	o->m = calloc(n ? n : 1, sizeof *o->m);
	o->v = calloc(n ? n : 1, sizeof *o->v);
	if (!o->m || !o->v) {
		adamw_free(o);
		return -1;
	}
	return 0;
}

void adamw_free(struct adamw *o)
{
	free(o->m);
	free(o->v);
	o->m = o->v = NULL;
}

void adamw_step(struct adamw *o, float *p, const float *g, double lr)
{
	o->t++;
	double c1 = 1.0 - pow(o->beta1, (double)o->t), c2 = 1.0 - pow(o->beta2, (double)o->t);
	float b1 = (float)o->beta1, b2 = (float)o->beta2, decay = (float)(1.0 - lr * o->weight_decay);
	float step = (float)(lr / c1), rc2 = (float)(1.0 / sqrt(c2)), eps = (float)o->eps;
	for (size_t i = 0; i < o->n; i++) {
		o->m[i] = b1 * o->m[i] + (1.0f - b1) * g[i];
		o->v[i] = b2 * o->v[i] + (1.0f - b2) * g[i] * g[i];
		p[i] = p[i] * decay - step * o->m[i] / (sqrtf(o->v[i]) * rc2 + eps);
	}
}

double lr_at(int64_t s, int64_t total, int64_t warmup, double lr, double min_frac)
{
	if (s < warmup) return lr * (double)(s + 1) / (double)warmup;
	int64_t span = total - warmup - 1;
	double done = span > 0 ? (double)(s - warmup) / (double)span : 1.0;
	if (done > 1.0) done = 1.0;
	double floor = lr * min_frac;
	return floor + (lr - floor) * 0.5 * (1.0 + cos(M_PI * done));
}

double clip_grad(float *g, size_t n, double max)
{
	double sum = 0.0;
	for (size_t i = 0; i < n; i++) sum += (double)g[i] * g[i];
	double norm = sqrt(sum);
	if (max > 0 && norm > max) {
		float s = (float)(max / norm);
		for (size_t i = 0; i < n; i++) g[i] *= s;
	}
	return norm;
}
