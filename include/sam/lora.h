/*
 * lora.h - LoRA adapters in llama.cpp's GGUF format: loading one made for
 * a model, applying it at run time per sequence without touching the base
 * weights, and making and saving new ones (what the trainer optimises).
 *
 * The file format is llama.cpp's (src/llama-adapter.cpp reads it):
 *   general.architecture  the base model's ("llama", "qwen2")
 *   general.type          "adapter"
 *   adapter.type          "lora"
 *   adapter.lora.alpha    f32; 0 means "no alpha" (scale is used as is)
 * and for each adapted base weight "<name>.weight" of GGUF shape
 * [n_in, n_out] two tensors "<name>.weight.lora_a" of GGUF shape
 * [n_in, rank] and "<name>.weight.lora_b" of shape [rank, n_out]. In this
 * engine's C order A is [rank][n_in] and B is [n_out][rank], and the
 * adapted product is
 *
 *     y = W x + s * B (A x),   s = scale * alpha / rank  (scale if alpha == 0)
 *
 * with scale the user's (--lora-scale, default 1). The adaptable weights
 * are each layer's seven projections (enum sam_lora_target) and the
 * output matrix (when it is not tied to the token embeddings); a file
 * that adapts anything else is refused with its name.
 */
#ifndef SAM_LORA_H
#define SAM_LORA_H

#include <stdbool.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/gguf.h"
#include "sam/model.h"

enum sam_lora_target {
	SAM_LORA_Q,    /* blk.N.attn_q   */
	SAM_LORA_K,    /* blk.N.attn_k   */
	SAM_LORA_V,    /* blk.N.attn_v   */
	SAM_LORA_O,    /* blk.N.attn_output */
	SAM_LORA_GATE, /* blk.N.ffn_gate */
	SAM_LORA_UP,   /* blk.N.ffn_up   */
	SAM_LORA_DOWN, /* blk.N.ffn_down */
	SAM_LORA_N_TARGET
};
#define SAM_LORA_ALL ((1u << SAM_LORA_N_TARGET) - 1)
/* The mask bit of the output matrix (not part of SAM_LORA_ALL; PEFT leaves lm_head alone too). */
#define SAM_LORA_OUTPUT (1u << SAM_LORA_N_TARGET)

/* "q", "k", "v", "o", "gate", "up", "down" (what --targets lists); "?" out of range. */
const char *sam_lora_target_name(int t);
/*
 * The GGUF base name of target t in layer l, e.g. "blk.3.attn_q", or
 * "output" when l < 0 (buf of >= 48 bytes).
 */
void sam_lora_tensor_base(char *buf, int l, int t);
/*
 * A comma-separated list of target names, or "attn" (q,k,v,o), "mlp"
 * (gate,up,down), "all" (the seven), "output" (SAM_LORA_OUTPUT), into a
 * bit mask (1 << target). SAM_EINVAL names the unknown word.
 */
int sam_lora_parse_targets(const char *list, unsigned *mask, struct sam_error *err);

/* One adapted weight: a.data == NULL when the weight has no adapter. */
struct sam_lora_pair {
	struct sam_tensor a; /* [rank][n_in] */
	struct sam_tensor b; /* [n_out][rank] */
};

struct sam_lora {
	float alpha;
	int rank;       /* the largest rank among its pairs */
	unsigned targets; /* mask of the targets any layer adapts, | SAM_LORA_OUTPUT */
	int n_layer;
	struct sam_lora_pair (*layer)[SAM_LORA_N_TARGET]; /* [n_layer] */
	struct sam_lora_pair output;                       /* the output matrix; a.data NULL if none */
	/* storage: the file's mapping (loaded) or F32 arrays in memory (made) */
	struct gguf_file gguf;
	bool mapped;
	float *mem;
	size_t mem_floats;
};

/*
 * Load an adapter file for model m, checking it against m: architecture,
 * general.type "adapter", adapter.type "lora", adapter.lora.alpha (f32,
 * optional), every tensor a known base weight of m, A/B pairs complete,
 * shapes [rank][n_in] / [n_out][rank] with n_in/n_out those of the base
 * weight, types the engine computes with. On failure l is zeroed and err
 * says what is wrong (naming the tensor or key). The tensors stay in the
 * file's read-only mapping, which l owns until sam_lora_free.
 */
int sam_lora_load(struct sam_lora *l, const struct sam_model *m, const char *path, struct sam_error *err);

/*
 * A new F32 adapter in memory for m's targets in mask (SAM_LORA_OUTPUT
 * adds the output matrix; SAM_EINVAL when m ties it), rank r: A drawn
 * uniformly from [-1/sqrt(n_in), 1/sqrt(n_in)] (PEFT's initialisation)
 * from seed, B zero - so it starts as the identity. Same seed, same
 * numbers, on every machine.
 */
int sam_lora_init(struct sam_lora *l, const struct sam_model *m, unsigned mask, int rank, float alpha,
		  uint64_t seed, struct sam_error *err);

/*
 * The F32 arrays of a made adapter's pair (layer l, target t; l == -1 is
 * the output matrix): *a [rank][n_in], *b [n_out][rank]. Returns false
 * when the pair is absent or the adapter was loaded from a file.
 */
bool sam_lora_params(struct sam_lora *lo, int l, int t, float **a, float **b);

/*
 * Write lo as an adapter file for m at path, atomically (temporary name,
 * fsync, rename): the metadata above, general.name = name (may be NULL),
 * then per layer the pairs of q, k, v, o, gate, up, down (lora_a before
 * lora_b), then output's. Tensors keep their type (F32 for a made
 * adapter), so what sam_lora_load reads back is the same numbers.
 * SAM_EINVAL when lo does not fit m's dimensions.
 */
int sam_lora_save(const struct sam_lora *lo, const struct sam_model *m, const char *path, const char *name,
		  struct sam_error *err);

/* Release what load or init allocated (the mapping or the arrays); safe on a zeroed struct. */
void sam_lora_free(struct sam_lora *l);

/* s = scale * alpha / rank of a pair (scale when alpha is 0). */
float sam_lora_pair_scale(const struct sam_lora *l, const struct sam_lora_pair *p, float scale);

/*
 * Apply lo (NULL: none) with scale to sequence seq of c from its next
 * decode on (sam_decode uses sequence 0). The context borrows lo: it must
 * stay alive until it is replaced or the context freed. Tokens already
 * in seq's KV cache keep what they were computed with, so a caller that
 * switches the adapter of a sequence restarts its cache. The first
 * adapter set allocates the context's LoRA scratch (about
 * 2 * n_batch * max(dim, n_head*head_dim, n_ff) floats, plus n_batch *
 * rank; not counted by sam_ctx_bytes), freed with the context; a context
 * that never gets one pays nothing. SAM_EINVAL when lo was made for a
 * model of other dimensions or seq is out of range; SAM_ENOMEM if the
 * scratch cannot be allocated (the sequence then keeps what it had).
 */
int sam_ctx_set_lora(struct sam_ctx *c, int seq, const struct sam_lora *lo, float scale, struct sam_error *err);

#endif
