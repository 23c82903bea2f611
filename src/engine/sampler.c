/* sampler.c - the sampling chain (see sampler.h) on a candidate array. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sam/sampler.h"

void sam_sampler_defaults(struct sam_sampler_params *p)
{
	p->temp = 0.8f;
	p->top_k = 40;
	p->top_p = 0.95f;
	p->min_p = 0.05f;
	p->repeat_penalty = 1.0f;
	p->repeat_last_n = 64;
	p->seed = 0;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t next_u64(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

double sam_sampler_uniform(struct sam_sampler *s)
{
	return (double)(next_u64(s->rng) >> 11) * 0x1.0p-53;
}

int sam_sampler_init(struct sam_sampler *s, const struct sam_sampler_params *p, int n_vocab,
		     struct sam_error *err)
{
	memset(s, 0, sizeof *s);
	if (n_vocab < 1) return sam_errorf(err, SAM_EINVAL, "empty vocabulary");
	s->p = *p;
	if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
	s->n_vocab = n_vocab;
	uint64_t seed = p->seed;
	for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
	s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
	s->recent = malloc((size_t)(s->p.repeat_last_n ? s->p.repeat_last_n : 1) * sizeof *s->recent);
	if (!s->cand || !s->recent) {
		sam_sampler_free(s);
		return sam_errorf(err, SAM_ENOMEM, "no memory for the sampler");
	}
	return 0;
}

void sam_sampler_free(struct sam_sampler *s)
{
	free(s->cand);
	free(s->recent);
	memset(s, 0, sizeof *s);
}

void sam_sampler_accept(struct sam_sampler *s, int32_t id)
{
	if (!s->p.repeat_last_n) return;
	s->recent[s->recent_head] = id;
	s->recent_head = (s->recent_head + 1) % s->p.repeat_last_n;
	if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

/* Each distinct recent token is penalised once, as llama.cpp does. */
static void apply_penalty(struct sam_sampler *s)
{
	if (s->p.repeat_penalty == 1.0f) return;
	for (int i = 0; i < s->n_recent; i++) {
		int32_t id = s->recent[i];
		if (id < 0 || id >= s->n_vocab) continue;
		bool seen = false;
		for (int j = 0; j < i && !seen; j++) seen = s->recent[j] == id;
		if (seen) continue;
		struct sam_candidate *c = &s->cand[id]; /* candidates are still indexed by id here */
		c->logit = c->logit <= 0 ? c->logit * s->p.repeat_penalty : c->logit / s->p.repeat_penalty;
	}
}

/* Descending by logit, lower id first on ties. */
static int cand_cmp(const void *a, const void *b)
{
	const struct sam_candidate *x = a, *y = b;
	if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Heap with the worst candidate at the root. */
static void sift_down(struct sam_candidate *c, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && cand_cmp(&c[l], &c[w]) > 0) w = l;
		if (r < n && cand_cmp(&c[r], &c[w]) > 0) w = r;
		if (w == i) return;
		struct sam_candidate t = c[i];
		c[i] = c[w];
		c[w] = t;
		i = w;
	}
}

/* Move the k best candidates to c[0..k), sorted best first; O(n log k). */
static int keep_top_k(struct sam_candidate *c, int n, int k)
{
	if (k <= 0 || k >= n) {
		qsort(c, (size_t)n, sizeof *c, cand_cmp);
		return n;
	}
	for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
	for (int i = k; i < n; i++)
		if (cand_cmp(&c[i], &c[0]) < 0) {
			struct sam_candidate t = c[0];
			c[0] = c[i];
			c[i] = t;
			sift_down(c, k, 0);
		}
	qsort(c, (size_t)k, sizeof *c, cand_cmp);
	return k;
}

static void softmax(struct sam_candidate *c, int n)
{
	float max = c[0].logit;
	for (int i = 1; i < n; i++)
		if (c[i].logit > max) max = c[i].logit;
	double sum = 0;
	for (int i = 0; i < n; i++) {
		c[i].p = expf(c[i].logit - max);
		sum += c[i].p;
	}
	for (int i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

int32_t sam_sampler_sample(struct sam_sampler *s, const float *logits)
{
	int n = s->n_vocab;
	if (s->p.temp <= 0.0f && s->p.repeat_penalty == 1.0f) { /* greedy: no candidate list needed */
		int best = 0;
		for (int i = 1; i < n; i++)
			if (logits[i] > logits[best]) best = i;
		return best;
	}
	for (int i = 0; i < n; i++) {
		s->cand[i].id = i;
		s->cand[i].logit = logits[i];
	}
	apply_penalty(s);
	if (s->p.temp <= 0.0f) {
		int best = 0;
		for (int i = 1; i < n; i++)
			if (s->cand[i].logit > s->cand[best].logit) best = i;
		return s->cand[best].id;
	}
	struct sam_candidate *c = s->cand;
	n = keep_top_k(c, n, s->p.top_k); /* also sorts */
	if (s->p.top_p < 1.0f) {
		softmax(c, n);
		double cum = 0;
		int keep = n;
		for (int i = 0; i < n; i++) {
			cum += c[i].p;
			if (cum >= s->p.top_p) {
				keep = i + 1;
				break;
			}
		}
		n = keep;
	}
	if (s->p.min_p > 0.0f) {
		float cut = c[0].logit + logf(s->p.min_p);
		int keep = 1;
		while (keep < n && c[keep].logit >= cut) keep++;
		n = keep;
	}
	for (int i = 0; i < n; i++) c[i].logit /= s->p.temp;
	softmax(c, n);
	double r = sam_sampler_uniform(s), cum = 0;
	for (int i = 0; i < n; i++) {
		cum += c[i].p;
		if (r < cum) return c[i].id;
	}
	return c[n - 1].id;
}
