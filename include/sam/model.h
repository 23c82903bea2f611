/*
 * model.h - a transformer loaded from GGUF, and the run state (KV cache and
 * scratch buffers) to evaluate it.
 *
 * Architectures: "llama" (Llama 2/3, TinyLlama, SmolLM, Mistral) and
 * "qwen2" (Qwen2/2.5: q/k/v biases, NEOX rope); other architectures fail to
 * load with a message naming them.
 * Weights stay in the read-only mapping of the file; nothing is copied.
 *
 * Shapes in comments are C order: [rows][cols], i.e. GGUF ne reversed.
 */
#ifndef SAM_MODEL_H
#define SAM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/gguf.h"
#include "sam/threadpool.h"
#include "sam/tokenizer.h"

enum sam_arch { SAM_ARCH_LLAMA = 1, SAM_ARCH_QWEN2 = 2 };
enum sam_rope { SAM_ROPE_NORMAL = 0, SAM_ROPE_NEOX = 2 }; /* pairs (i, i+1) or (i, i+d/2) */

/* A 2-D (or 1-D: rows = 1) view of a tensor in the mapping. */
struct sam_tensor {
	const void *data;
	uint32_t type;   /* enum ggml_type */
	int64_t cols;    /* ne[0]: elements per row */
	int64_t rows;    /* ne[1] */
	size_t row_bytes;
	/*
	 * data is in the repacked layout of its type (quant_traits.repack),
	 * in memory the model owns: only the type's gemm_packed reads it.
	 */
	bool packed;
};

struct sam_layer {
	struct sam_tensor attn_norm; /* [dim] */
	struct sam_tensor wq;        /* [n_head*head_dim][dim] */
	struct sam_tensor wk;        /* [n_head_kv*head_dim][dim] */
	struct sam_tensor wv;        /* [n_head_kv*head_dim][dim] */
	struct sam_tensor wo;        /* [dim][n_head*head_dim] */
	struct sam_tensor bq, bk, bv; /* [q_dim], [kv_dim], [kv_dim] biases (qwen2); data NULL when absent */
	struct sam_tensor ffn_norm;  /* [dim] */
	struct sam_tensor w_gate;    /* [n_ff][dim] */
	struct sam_tensor w_up;      /* [n_ff][dim] */
	struct sam_tensor w_down;    /* [dim][n_ff] */
};

struct sam_hparams {
	int arch;            /* enum sam_arch */
	char arch_name[32];
	int n_vocab;
	int n_ctx_train;     /* context length the model was trained with */
	int dim;             /* embedding width */
	int n_layer;
	int n_head;
	int n_head_kv;
	int head_dim;
	int n_ff;
	int rope_dim;        /* dimensions rotated per head (<= head_dim) */
	int rope_type;       /* enum sam_rope */
	float rope_freq_base;
	float rope_freq_scale; /* 1 / linear scaling factor */
	float norm_eps;
};

struct sam_model {
	struct gguf_file gguf; /* owns the mapping every tensor points into */
	struct sam_hparams hp;
	struct tok_vocab vocab;
	struct sam_tensor tok_embd;    /* [n_vocab][dim] */
	struct sam_tensor output_norm; /* [dim] */
	struct sam_tensor output;      /* [n_vocab][dim]; tok_embd when tied */
	bool tied_output;
	struct sam_tensor rope_freqs;  /* [rope_dim/2] frequency divisors (Llama 3); data NULL if absent */
	struct sam_layer *layers;      /* [n_layer] */
};

/* Load path. On failure m is zeroed and err explains (naming the tensor/key). */
int sam_model_load(struct sam_model *m, const char *path, struct sam_error *err);
/*
 * The same with flags. SAM_LOAD_NO_REPACK keeps every weight in the file's
 * layout (the trainer reads weight rows, which a repacked tensor no
 * longer has).
 */
#define SAM_LOAD_NO_REPACK 1u
int sam_model_load_flags(struct sam_model *m, const char *path, unsigned flags, struct sam_error *err);
void sam_model_free(struct sam_model *m);

/* Bytes of the weights (the part of the file that is mapped and touched). */
size_t sam_model_weight_bytes(const struct sam_model *m);

struct sam_ctx_params {
	int n_ctx;       /* KV cache positions per sequence */
	int n_batch;     /* most tokens per decode call */
	int n_seq;       /* independent sequences (KV slots); 0 means 1 */
	bool logits_all; /* sam_decode keeps logits of every token, not just the last */
	int n_threads;   /* <= 0: number of cores */
};

/*
 * A batch for sam_decode_batch: token i goes to sequence seq[i] at
 * position pos[i]. A sequence's positions 0..pos[i]-1 must already be in
 * its KV slot (or earlier in this batch); the token attends to those and
 * itself. Several sequences in one batch share every weight read
 * (continuous batching).
 */
struct sam_batch {
	int n;
	const int32_t *tokens;
	const int32_t *pos;
	const int32_t *seq;
	const bool *logits; /* rows that need logits; NULL = the last row only */
};

struct sam_lora;     /* lora.h */
struct sam_lora_run; /* engine/lora_apply.h */

/* Run state: KV cache and scratch, allocated once; sam_decode never allocates. */
struct sam_ctx {
	const struct sam_model *model;
	struct sam_ctx_params p;
	struct sam_pool *pool;
	int n_past;        /* positions filled in the KV cache */
	float *k_cache;    /* [n_layer][n_seq][n_ctx][n_head_kv*head_dim] */
	float *v_cache;    /* [n_layer][n_seq][n_ctx][n_head_kv*head_dim] */
	int32_t *bpos, *bseq; /* [n_batch] positions and sequences of the batch in flight */
	int32_t *logit_rows;  /* [n_batch] batch row of each logits row */
	int32_t *dec_pos, *dec_seq; /* [n_batch] sam_decode's batch: positions, zeros */
	bool *dec_all;        /* [n_batch] all true: sam_decode with logits_all */
	float *x;          /* [n_batch][dim] residual stream */
	float *xb;         /* [n_batch][dim] normed input of a block */
	float *q;          /* [n_batch][n_head*head_dim] */
	float *k, *v;      /* [n_batch][n_head_kv*head_dim] */
	float *att;        /* [n_batch][n_head*head_dim] attention output */
	float *hb, *hb2;   /* [n_batch][n_ff] */
	float *scores;     /* [n_threads][n_ctx] */
	void *act;         /* activations converted for the dot products */
	size_t act_bytes;
	float *rope_cache; /* [rope_dim] cos/sin of one position */
	float *logits;     /* [max_logits][n_vocab] */
	int max_logits;    /* n_batch with logits_all or several sequences, else 1 */
	int n_logits;      /* rows of logits filled by the last decode */
	/* LoRA adapters (lora.h: sam_ctx_set_lora) */
	const struct sam_lora **lora; /* [n_seq] each sequence's adapter (borrowed), NULL: none */
	float *lora_scale;            /* [n_seq] its user scale */
	struct sam_lora_run *lora_run; /* row groups and scratch to apply them; NULL until an adapter is set */
};

/* Bytes sam_ctx_new would allocate for these parameters (for admission checks). */
size_t sam_ctx_bytes(const struct sam_hparams *hp, const struct sam_ctx_params *p);

int sam_ctx_new(struct sam_ctx *c, const struct sam_model *m, const struct sam_ctx_params *p,
		struct sam_error *err);
void sam_ctx_free(struct sam_ctx *c);

/* Forget the KV cache (positions restart at 0). */
void sam_ctx_reset(struct sam_ctx *c);

/*
 * Evaluate n tokens (1 <= n <= n_batch) at positions n_past.. and append
 * them to the KV cache. Logits: the last token's (or every token's with
 * logits_all), read with sam_ctx_logits. SAM_ERANGE when the context is full.
 */
int sam_decode(struct sam_ctx *c, const int32_t *tokens, int n, struct sam_error *err);

/*
 * Evaluate a batch of tokens from one or more sequences. Logits rows are
 * produced, in batch order, for the rows flagged in b->logits.
 * SAM_EINVAL for a bad token, position, sequence or too many logits rows.
 * Does not touch c->n_past (sam_decode's single-sequence bookkeeping).
 */
int sam_decode_batch(struct sam_ctx *c, const struct sam_batch *b, struct sam_error *err);

/* Logits row i of the last decode ([n_vocab]); i < c->n_logits. */
const float *sam_ctx_logits(const struct sam_ctx *c, int i);

#endif
