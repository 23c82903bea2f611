/*
 * rope.h - rotary position embeddings, shared by the forward pass and the
 * trainer so both rotate with the very same angles.
 */
#ifndef SAM_ENGINE_ROPE_H
#define SAM_ENGINE_ROPE_H

#include <stdbool.h>

#include "sam/model.h"

/* cos/sin of every rotated pair at position pos into cache[rope_dim], as ggml's rope cache. */
void rope_angles(const struct sam_model *m, float *cache, int pos);

/*
 * Rotate every head of v[n_heads * head_dim] by the angles in cache: pairs
 * (i, i+1), or (i, i + rope_dim/2) for NEOX models. inverse rotates the
 * other way, which is the rotation's backward (it is orthogonal).
 */
void rope_rotate(const struct sam_hparams *hp, float *v, int n_heads, const float *cache, bool inverse);

#endif
