/*
 * rope.c - rotary position embeddings (see rope.h).
 */
#include <math.h>

#include "engine/rope.h"

void rope_angles(const struct sam_model *m, float *cache, int pos)
{
	const struct sam_hparams *hp = &m->hp;
	const float *ff = m->rope_freqs.data;
	float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->rope_dim);
	float theta = (float)pos;
	for (int i = 0; i < hp->rope_dim; i += 2) {
		float t = hp->rope_freq_scale * (theta / (ff ? ff[i / 2] : 1.0f));
		cache[i] = cosf(t);
		cache[i + 1] = sinf(t);
		theta *= theta_scale;
	}
}

void rope_rotate(const struct sam_hparams *hp, float *v, int n_heads, const float *cache, bool inverse)
{
	int half = hp->rope_dim / 2;
	bool neox = hp->rope_type == SAM_ROPE_NEOX;
	for (int h = 0; h < n_heads; h++) {
		float *x = v + (size_t)h * hp->head_dim;
		for (int i = 0; i < hp->rope_dim; i += 2) {
			int a = neox ? i / 2 : i, b = neox ? i / 2 + half : i + 1;
			float c = cache[i], s = inverse ? -cache[i + 1] : cache[i + 1], x0 = x[a], x1 = x[b];
			x[a] = x0 * c - x1 * s;
			x[b] = x0 * s + x1 * c;
		}
	}
}
