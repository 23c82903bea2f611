/*
 * synth.h - deterministic random-weight GGUF models of real shapes, for
 * speed and memory work on models too big to ship. Files load in
 * llama.cpp; tensor types follow llama-quantize's rules for the file type.
 */
#ifndef SAM_SYNTH_H
#define SAM_SYNTH_H

#include <stdint.h>

#include "sam/core.h"

struct synth_preset {
	const char *name, *arch;
	int dim, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
	float rope_base, norm_eps;
	int tied;
	int llama3_rope; /* write rope_freqs.weight with Llama 3.x frequency scaling */
};

/* The built-in presets (NULL-name terminated). */
extern const struct synth_preset synth_presets[];
const struct synth_preset *synth_find(const char *name);

enum synth_ftype { SYNTH_F32, SYNTH_F16, SYNTH_Q8_0, SYNTH_Q4_0, SYNTH_Q4_K_M, SYNTH_Q6_K };
/* "f32", "f16", "q8_0", "q4_0", "q4_k_m", "q6_k" (case-insensitive); -1 if unknown. */
int synth_ftype_from_name(const char *name);

struct synth_opts {
	const struct synth_preset *p;
	const char *arch;        /* NULL: the preset's */
	int ftype;               /* enum synth_ftype */
	const char *vocab_from;  /* GGUF whose tokenizer.* keys and vocabulary are copied; NULL: a fake SPM vocab */
	uint64_t seed;
	const char *out;
};

/*
 * Write the model. Memory stays bounded (one block of rows at a time): the
 * file is written to a temporary name with its tensor data generated in
 * place, fsynced, and renamed.
 */
int synth_write(const struct synth_opts *o, struct sam_error *err);

/* The tensor type llama-quantize picks for a tensor (name, row length, layer i of n) under ftype. */
uint32_t synth_tensor_type(int ftype, const char *name, int64_t ne0, int n_dims, int i_layer, int n_layer, int tied);

#endif
