/*
 * model.c - load a transformer's hyperparameters and weights from GGUF.
 * Every tensor's type and shape is checked here, once, so the forward pass
 * can trust them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sam/ggml_types.h"
#include "sam/model.h"
#include "sam/quant.h"

#define MAX_DIM (1 << 20)
#define MAX_LAYERS 1024

struct loader {
	struct sam_model *m;
	struct sam_error *err;
	char prefix[40]; /* "<arch>." */
};

static int get_int(struct loader *ld, const char *key, int64_t def, int64_t min, int64_t max, int *out)
{
	char full[128];
	int64_t v = def;
	snprintf(full, sizeof full, "%s%s", ld->prefix, key);
	int rc = gguf_get_int(&ld->m->gguf, full, &v, ld->err);
	if (rc == SAM_ENOTFOUND) {
		if (def < min)
			return sam_errorf(ld->err, SAM_EFORMAT, "required key '%s' is missing", full);
		v = def;
	} else if (rc) {
		return rc;
	}
	if (v < min || v > max)
		return sam_errorf(ld->err, SAM_EFORMAT, "key '%s' = %lld is out of range [%lld, %lld]", full,
				  (long long)v, (long long)min, (long long)max);
	*out = (int)v;
	return 0;
}

static int get_float(struct loader *ld, const char *key, double def, float *out)
{
	char full[128];
	double v = def;
	snprintf(full, sizeof full, "%s%s", ld->prefix, key);
	int rc = gguf_get_float(&ld->m->gguf, full, &v, ld->err);
	if (rc && rc != SAM_ENOTFOUND) return rc;
	if (!(v == v) || v > 1e30 || v < -1e30)
		return sam_errorf(ld->err, SAM_EFORMAT, "key '%s' has an absurd value", full);
	*out = (float)v;
	return 0;
}

static const char *supported_types = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";

/*
 * Bind tensor name with GGUF shape {cols, rows} (rows 0 for 1-D). Norm-like
 * 1-D tensors must be F32; matrices any type the kernels implement.
 */
static int bind(struct loader *ld, struct sam_tensor *t, const char *name, int64_t cols, int64_t rows,
		bool optional)
{
	const struct gguf_tensor *g = gguf_find_tensor(&ld->m->gguf, name);
	if (!g) {
		if (optional) return SAM_ENOTFOUND;
		return sam_errorf(ld->err, SAM_EFORMAT, "tensor '%s' is missing", name);
	}
	int64_t want_rows = rows ? rows : 1;
	bool shape_ok = (int64_t)g->ne[0] == cols && (int64_t)g->ne[1] == want_rows && g->ne[2] == 1 &&
			g->ne[3] == 1;
	if (!shape_ok)
		return sam_errorf(ld->err, SAM_EFORMAT,
				  "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]", name,
				  (unsigned long long)g->ne[0], (unsigned long long)g->ne[1],
				  (unsigned long long)g->ne[2], (unsigned long long)g->ne[3], (long long)cols,
				  (long long)want_rows);
	if (!rows && g->type != GGML_TYPE_F32)
		return sam_errorf(ld->err, SAM_EUNSUPPORTED, "tensor '%s' has type %s; vectors must be F32",
				  name, ggml_type_name(g->type));
	if (!quant_traits(g->type))
		return sam_errorf(ld->err, SAM_EUNSUPPORTED,
				  "tensor '%s' has type %s, which this engine does not support yet (supported: %s)",
				  name, ggml_type_name(g->type), supported_types);
	t->data = g->data;
	t->type = g->type;
	t->cols = cols;
	t->rows = want_rows;
	t->row_bytes = quant_row_size(g->type, cols);
	return 0;
}

static int load_hparams(struct loader *ld)
{
	struct sam_model *m = ld->m;
	struct sam_hparams *hp = &m->hp;
	struct gguf_str arch;
	int rc = gguf_get_str(&m->gguf, "general.architecture", &arch, ld->err);
	if (rc == SAM_ENOTFOUND) return sam_errorf(ld->err, SAM_EFORMAT, "key 'general.architecture' is missing");
	if (rc) return rc;
	snprintf(hp->arch_name, sizeof hp->arch_name, "%.*s", (int)(arch.n > 31 ? 31 : arch.n), arch.s);
	if (gguf_str_eq(arch, "llama")) {
		hp->arch = SAM_ARCH_LLAMA;
		hp->rope_type = SAM_ROPE_NORMAL;
	} else if (gguf_str_eq(arch, "qwen2")) {
		hp->arch = SAM_ARCH_QWEN2;
		hp->rope_type = SAM_ROPE_NEOX;
	} else {
		return sam_errorf(ld->err, SAM_EUNSUPPORTED,
				  "model architecture '%.*s' is not supported (supported: llama, qwen2)",
				  (int)(arch.n > 64 ? 64 : arch.n), arch.s);
	}
	snprintf(ld->prefix, sizeof ld->prefix, "%s.", hp->arch_name);

	if ((rc = get_int(ld, "embedding_length", -1, 1, MAX_DIM, &hp->dim)) ||
	    (rc = get_int(ld, "block_count", -1, 1, MAX_LAYERS, &hp->n_layer)) ||
	    (rc = get_int(ld, "feed_forward_length", -1, 1, MAX_DIM, &hp->n_ff)) ||
	    (rc = get_int(ld, "attention.head_count", -1, 1, MAX_DIM, &hp->n_head)) ||
	    (rc = get_int(ld, "attention.head_count_kv", hp->n_head, 1, hp->n_head, &hp->n_head_kv)) ||
	    (rc = get_int(ld, "context_length", 2048, 1, 1 << 24, &hp->n_ctx_train)) ||
	    (rc = get_int(ld, "attention.key_length", hp->dim / hp->n_head, 1, MAX_DIM, &hp->head_dim)))
		return rc;
	int v_len;
	if ((rc = get_int(ld, "attention.value_length", hp->head_dim, 1, MAX_DIM, &v_len))) return rc;
	if (v_len != hp->head_dim)
		return sam_errorf(ld->err, SAM_EUNSUPPORTED, "key and value head sizes differ (%d vs %d)",
				  hp->head_dim, v_len);
	if (hp->n_head % hp->n_head_kv)
		return sam_errorf(ld->err, SAM_EFORMAT, "head count %d is not a multiple of the kv head count %d",
				  hp->n_head, hp->n_head_kv);
	if ((rc = get_int(ld, "rope.dimension_count", hp->head_dim, 2, hp->head_dim, &hp->rope_dim))) return rc;
	if (hp->rope_dim % 2 || hp->head_dim % 2)
		return sam_errorf(ld->err, SAM_EFORMAT, "rope dimensions must be even");
	if ((rc = get_float(ld, "rope.freq_base", 10000.0, &hp->rope_freq_base)) ||
	    (rc = get_float(ld, "attention.layer_norm_rms_epsilon", 1e-5, &hp->norm_eps)))
		return rc;
	hp->rope_freq_scale = 1.0f;
	char key[128];
	struct gguf_str stype;
	snprintf(key, sizeof key, "%srope.scaling.type", ld->prefix);
	rc = gguf_get_str(&m->gguf, key, &stype, ld->err);
	if (rc && rc != SAM_ENOTFOUND) return rc;
	bool scaled = rc == 0 && !gguf_str_eq(stype, "none");
	if (scaled && !gguf_str_eq(stype, "linear"))
		return sam_errorf(ld->err, SAM_EUNSUPPORTED, "rope scaling type '%.*s' is not supported",
				  (int)(stype.n > 32 ? 32 : stype.n), stype.s);
	float factor = 0.0f;
	if ((rc = get_float(ld, "rope.scaling.factor", 0.0, &factor))) return rc;
	if (factor == 0.0f && (rc = get_float(ld, "rope.scale_linear", 0.0, &factor))) return rc;
	if ((scaled || factor != 0.0f) && factor > 0.0f) hp->rope_freq_scale = 1.0f / factor;
	if (hp->rope_freq_base <= 0.0f || hp->norm_eps < 0.0f)
		return sam_errorf(ld->err, SAM_EFORMAT, "rope.freq_base and the norm epsilon must be positive");
	return 0;
}

static int load_tensors(struct loader *ld)
{
	struct sam_model *m = ld->m;
	struct sam_hparams *hp = &m->hp;
	int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
	int rc;
	if ((rc = bind(ld, &m->tok_embd, "token_embd.weight", hp->dim, hp->n_vocab, false)) ||
	    (rc = bind(ld, &m->output_norm, "output_norm.weight", hp->dim, 0, false)))
		return rc;
	rc = bind(ld, &m->output, "output.weight", hp->dim, hp->n_vocab, true);
	if (rc == SAM_ENOTFOUND) {
		m->output = m->tok_embd;
		m->tied_output = true;
	} else if (rc) {
		return rc;
	}
	m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
	if (!m->layers) return sam_errorf(ld->err, SAM_ENOMEM, "no memory for %d layers", hp->n_layer);
	for (int l = 0; l < hp->n_layer; l++) {
		struct sam_layer *L = &m->layers[l];
		char n[9][64];
		static const char *names[9] = { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
						"ffn_norm", "ffn_gate", "ffn_up", "ffn_down" };
		for (int i = 0; i < 9; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s.weight", l, names[i]);
		if ((rc = bind(ld, &L->attn_norm, n[0], hp->dim, 0, false)) ||
		    (rc = bind(ld, &L->wq, n[1], hp->dim, q_dim, false)) ||
		    (rc = bind(ld, &L->wk, n[2], hp->dim, kv_dim, false)) ||
		    (rc = bind(ld, &L->wv, n[3], hp->dim, kv_dim, false)) ||
		    (rc = bind(ld, &L->wo, n[4], q_dim, hp->dim, false)) ||
		    (rc = bind(ld, &L->ffn_norm, n[5], hp->dim, 0, false)) ||
		    (rc = bind(ld, &L->w_gate, n[6], hp->dim, hp->n_ff, false)) ||
		    (rc = bind(ld, &L->w_up, n[7], hp->dim, hp->n_ff, false)) ||
		    (rc = bind(ld, &L->w_down, n[8], hp->n_ff, hp->dim, false)))
			return rc;
		/* biases: qwen2 has them on q, k and v; llama files may too */
		static const char *bnames[3] = { "attn_q", "attn_k", "attn_v" };
		struct sam_tensor *bias[3] = { &L->bq, &L->bk, &L->bv };
		int64_t blen[3] = { q_dim, kv_dim, kv_dim };
		for (int i = 0; i < 3; i++) {
			char bn[64];
			snprintf(bn, sizeof bn, "blk.%d.%s.bias", l, bnames[i]);
			rc = bind(ld, bias[i], bn, blen[i], 0, hp->arch != SAM_ARCH_QWEN2);
			if (rc && rc != SAM_ENOTFOUND) return rc;
		}
	}
	rc = bind(ld, &m->rope_freqs, "rope_freqs.weight", hp->rope_dim / 2, 0, true);
	return rc == SAM_ENOTFOUND ? 0 : rc;
}

/* Matrix i of those that only matrix products read (candidates for repacking), NULL past the last. */
static struct sam_tensor *product_weight(struct sam_model *m, int i)
{
	static const size_t member[7] = { offsetof(struct sam_layer, wq),     offsetof(struct sam_layer, wk),
					  offsetof(struct sam_layer, wv),     offsetof(struct sam_layer, wo),
					  offsetof(struct sam_layer, w_gate), offsetof(struct sam_layer, w_up),
					  offsetof(struct sam_layer, w_down) };
	if (!m->layers) return NULL;
	if (i < m->hp.n_layer * 7) return (struct sam_tensor *)((char *)&m->layers[i / 7] + member[i % 7]);
	/* a tied output table is also read by rows, for embeddings */
	return i == m->hp.n_layer * 7 && !m->tied_output ? &m->output : NULL;
}

/*
 * Rewrite the weights whose type has a faster layout for the CPU's gemm
 * (llama.cpp does the same on load). The copy replaces the mapped pages,
 * which are handed back to the page cache, so resident memory stays the
 * size of the model. A failed allocation keeps the mapped layout: slower,
 * not wrong.
 */
static void repack_weights(struct sam_model *m)
{
	const char *off = getenv("SAM_NO_REPACK");
	if (off && *off && strcmp(off, "0")) return;
	long page = sysconf(_SC_PAGESIZE);
	struct sam_tensor *t;
	for (int i = 0; (t = product_weight(m, i)); i++) {
		const struct quant_traits *qt = quant_traits(t->type);
		if (!qt->repack || t->rows % 8 || t->packed) continue;
		size_t bytes = (size_t)t->rows * t->row_bytes;
		void *p = NULL;
		if (posix_memalign(&p, 64, bytes)) continue;
		qt->repack(t->data, p, t->rows, t->cols);
		uintptr_t a = ((uintptr_t)t->data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
		uintptr_t b = ((uintptr_t)t->data + bytes) & ~((uintptr_t)page - 1);
		if (page > 0 && b > a) madvise((void *)a, b - a, MADV_DONTNEED);
		t->data = p;
		t->packed = true;
	}
}

static void free_packed(struct sam_model *m)
{
	struct sam_tensor *t;
	for (int i = 0; (t = product_weight(m, i)); i++)
		if (t->packed) free((void *)t->data);
}

int sam_model_load(struct sam_model *m, const char *path, struct sam_error *err)
{
	return sam_model_load_flags(m, path, 0, err);
}

int sam_model_load_flags(struct sam_model *m, const char *path, unsigned flags, struct sam_error *err)
{
	memset(m, 0, sizeof *m);
	struct loader ld = { .m = m, .err = err };
	int rc = gguf_open(&m->gguf, path, err);
	if (rc) return rc;
	if ((rc = load_hparams(&ld))) goto fail;
	if ((rc = tok_load(&m->vocab, &m->gguf, err))) goto fail;
	m->hp.n_vocab = (int)m->vocab.n_tokens;
	if ((rc = load_tensors(&ld))) goto fail;
	if (!(flags & SAM_LOAD_NO_REPACK)) repack_weights(m);
	return 0;
fail:
	sam_error_prefix(err, path);
	sam_model_free(m);
	return rc;
}

void sam_model_free(struct sam_model *m)
{
	tok_free(&m->vocab);
	free_packed(m);
	free(m->layers);
	gguf_close(&m->gguf);
	memset(m, 0, sizeof *m);
}

size_t sam_model_weight_bytes(const struct sam_model *m)
{
	size_t n = 0;
	for (uint64_t i = 0; i < m->gguf.n_tensors; i++) n += m->gguf.tensors[i].nbytes;
	return n;
}
