/*
 * forward.c - the transformer forward pass over a batch of tokens, with the
 * KV cache. Matrix products are split by output rows across the thread
 * pool; attention by (token, head). Everything works in buffers that
 * sam_ctx_new allocated, so decoding never allocates. LoRA adapters set
 * per sequence (sam/lora.h) add their low-rank term after each base
 * product (engine/lora_apply.h); without one, nothing of that runs.
 *
 * Numerics follow llama.cpp where rounding is visible in the outputs:
 * RMSNorm sums squares in double, activations are converted to the weight
 * type's activation type before every product, softmax sums in double.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sam/ggml_types.h"
#include "sam/model.h"
#include "sam/quant.h"
#include "engine/lora_apply.h"
#include "engine/matmul.h"
#include "engine/rope.h"
#include "engine/vec.h"

#define MAX_CTX (1 << 24)
/* ---- context ------------------------------------------------------------ */

struct ctx_layout {
	size_t kv, x, q, kvb, ff, scores, act, logits;
	int max_logits;
};

static int n_threads_of(const struct sam_ctx_params *p)
{
	return p->n_threads > 0 ? p->n_threads : sam_cpu_count();
}

static void layout(const struct sam_hparams *hp, const struct sam_ctx_params *p, struct ctx_layout *l)
{
	size_t B = (size_t)p->n_batch, q_dim = (size_t)hp->n_head * hp->head_dim;
	size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
	size_t max_in = (size_t)hp->dim;
	if (q_dim > max_in) max_in = q_dim;
	if ((size_t)hp->n_ff > max_in) max_in = (size_t)hp->n_ff;
	int n_seq = p->n_seq > 0 ? p->n_seq : 1;
	l->kv = (size_t)hp->n_layer * (size_t)n_seq * (size_t)p->n_ctx * kv_dim;
	l->x = B * (size_t)hp->dim;
	l->q = B * q_dim;
	l->kvb = B * kv_dim;
	l->ff = B * (size_t)hp->n_ff;
	l->scores = (size_t)n_threads_of(p) * (size_t)p->n_ctx;
	l->act = B * max_in * sizeof(float); /* F32 is the widest activation type */
	l->max_logits = p->logits_all || n_seq > 1 ? p->n_batch : 1;
	l->logits = (size_t)l->max_logits * (size_t)hp->n_vocab;
}

size_t sam_ctx_bytes(const struct sam_hparams *hp, const struct sam_ctx_params *p)
{
	struct ctx_layout l;
	layout(hp, p, &l);
	size_t floats = 2 * l.kv + 2 * l.x + 2 * l.q + 2 * l.kvb + 2 * l.ff + l.scores + l.logits +
			(size_t)hp->rope_dim;
	size_t lora = (size_t)(p->n_seq > 0 ? p->n_seq : 1) * (sizeof(struct sam_lora *) + sizeof(float));
	return floats * sizeof(float) + l.act + 6 * (size_t)p->n_batch * sizeof(int32_t) + lora;
}

int sam_ctx_new(struct sam_ctx *c, const struct sam_model *m, const struct sam_ctx_params *p,
		struct sam_error *err)
{
	memset(c, 0, sizeof *c);
	if (p->n_ctx < 1 || p->n_ctx > MAX_CTX)
		return sam_errorf(err, SAM_EINVAL, "context size %d is out of range [1, %d]", p->n_ctx, MAX_CTX);
	if (p->n_seq < 0 || p->n_seq > 256)
		return sam_errorf(err, SAM_EINVAL, "sequence count %d is out of range [1, 256]", p->n_seq);
	int max_batch = p->n_ctx * (p->n_seq > 0 ? p->n_seq : 1);
	if (p->n_batch < 1 || p->n_batch > max_batch)
		return sam_errorf(err, SAM_EINVAL, "batch size %d is out of range [1, %d]", p->n_batch, max_batch);
	c->model = m;
	c->p = *p;
	c->p.n_seq = p->n_seq > 0 ? p->n_seq : 1;
	c->p.n_threads = n_threads_of(p);
	struct ctx_layout l;
	layout(&m->hp, &c->p, &l);
	c->k_cache = calloc(l.kv, sizeof(float));
	c->v_cache = calloc(l.kv, sizeof(float));
	c->x = malloc(l.x * sizeof(float));
	c->xb = malloc(l.x * sizeof(float));
	c->q = malloc(l.q * sizeof(float));
	c->att = malloc(l.q * sizeof(float));
	c->k = malloc(l.kvb * sizeof(float));
	c->v = malloc(l.kvb * sizeof(float));
	c->hb = malloc(l.ff * sizeof(float));
	c->hb2 = malloc(l.ff * sizeof(float));
	c->scores = malloc(l.scores * sizeof(float));
	c->act = malloc(l.act);
	c->act_bytes = l.act;
	c->rope_cache = malloc((size_t)m->hp.rope_dim * sizeof(float));
	c->logits = malloc(l.logits * sizeof(float));
	c->max_logits = l.max_logits;
	c->bpos = malloc((size_t)p->n_batch * sizeof(int32_t));
	c->bseq = malloc((size_t)p->n_batch * sizeof(int32_t));
	c->logit_rows = malloc((size_t)p->n_batch * sizeof(int32_t));
	c->dec_pos = malloc((size_t)p->n_batch * sizeof(int32_t));
	c->dec_seq = calloc((size_t)p->n_batch, sizeof(int32_t));
	c->dec_all = malloc((size_t)p->n_batch);
	if (c->dec_all) memset(c->dec_all, 1, (size_t)p->n_batch);
	c->lora = calloc((size_t)c->p.n_seq, sizeof *c->lora);
	c->lora_scale = calloc((size_t)c->p.n_seq, sizeof *c->lora_scale);
	if (!c->lora || !c->lora_scale || !c->dec_pos || !c->dec_seq || !c->dec_all || !c->bpos || !c->bseq || !c->logit_rows || !c->k_cache || !c->v_cache || !c->x || !c->xb || !c->q || !c->att || !c->k || !c->v || !c->hb ||
	    !c->hb2 || !c->scores || !c->act || !c->rope_cache || !c->logits) {
		sam_ctx_free(c);
		return sam_errorf(err, SAM_ENOMEM, "not enough memory for a context of %d tokens (%zu MiB)",
				  p->n_ctx, sam_ctx_bytes(&m->hp, p) >> 20);
	}
	c->pool = sam_pool_new(c->p.n_threads);
	if (!c->pool) {
		sam_ctx_free(c);
		return sam_errorf(err, SAM_ENOMEM, "cannot start %d threads", c->p.n_threads);
	}
	c->p.n_threads = sam_pool_size(c->pool);
	return 0;
}

void sam_ctx_free(struct sam_ctx *c)
{
	sam_pool_free(c->pool);
	free(c->k_cache);
	free(c->v_cache);
	free(c->x);
	free(c->xb);
	free(c->q);
	free(c->att);
	free(c->k);
	free(c->v);
	free(c->hb);
	free(c->hb2);
	free(c->scores);
	free(c->act);
	free(c->rope_cache);
	free(c->logits);
	free(c->bpos);
	free(c->bseq);
	free(c->logit_rows);
	free(c->dec_pos);
	free(c->dec_seq);
	free(c->dec_all);
	free(c->lora);
	free(c->lora_scale);
	lora_run_free(c->lora_run);
	memset(c, 0, sizeof *c);
}

void sam_ctx_reset(struct sam_ctx *c)
{
	c->n_past = 0;
}

const float *sam_ctx_logits(const struct sam_ctx *c, int i)
{
	return c->logits + (size_t)i * (size_t)c->model->hp.n_vocab;
}

/* ---- kernels -------------------------------------------------------------- */

/* y = x / rms(x) * w, the sum of squares in double as llama.cpp does. */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps)
{
	double sum = 0.0;
	for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
	float mean = (float)(sum / n);
	float scale = 1.0f / sqrtf(mean + eps);
	for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

struct att_job {
	struct sam_ctx *c;
	int layer, n;
	/* the next (token, head) task: taken, not dealt, as sequences of a batch differ in length */
	atomic_int next;
};

/*
 * SwiGLU over a batch: gate <- silu(gate) * up. The expf makes it worth
 * splitting once a few sequences are decoded together (it was ~10 % of a
 * 4-sequence step on one thread while the other waited); each element is
 * computed the same way whichever thread takes it.
 */
struct swiglu_job {
	float *gate;
	const float *up;
	size_t len;
};
#define SWIGLU_WORK 64 /* mm_run work units of one element: a single token's 1.5k elements stay on one thread */

static void swiglu_worker(void *arg, int ith, int nth)
{
	struct swiglu_job *j = arg;
	size_t per = (j->len + (size_t)nth - 1) / (size_t)nth, i0 = per * (size_t)ith;
	size_t i1 = i0 + per < j->len ? i0 + per : j->len;
	for (size_t i = i0; i < i1; i++) {
		float g = j->gate[i];
		j->gate[i] = (g / (1.0f + expf(-g))) * j->up[i];
	}
}

/* Start of (layer, seq)'s slot in a KV cache. */
static size_t kv_slot(const struct sam_ctx *c, int layer, int seq)
{
	size_t kv_dim = (size_t)c->model->hp.n_head_kv * (size_t)c->model->hp.head_dim;
	return ((size_t)layer * (size_t)c->p.n_seq + (size_t)seq) * (size_t)c->p.n_ctx * kv_dim;
}

/* One (token, head) pair at a time: scores, softmax, weighted sum of V. */
static void att_worker(void *arg, int ith, int nth)
{
	struct att_job *j = arg;
	struct sam_ctx *c = j->c;
	const struct sam_hparams *hp = &c->model->hp;
	int hd = hp->head_dim, kv_dim = hp->n_head_kv * hd, group = hp->n_head / hp->n_head_kv;
	float scale = 1.0f / sqrtf((float)hd);
	float *sc = c->scores + (size_t)ith * (size_t)c->p.n_ctx;
	const struct vec_ops *vo = vec_ops();
	int total = j->n * hp->n_head;
	(void)nth;
	for (int task; (task = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < total;) {
		int b = task / hp->n_head, h = task % hp->n_head, kvh = h / group;
		int n_kv = c->bpos[b] + 1;
		const float *kc = c->k_cache + kv_slot(c, j->layer, c->bseq[b]);
		const float *vc = c->v_cache + kv_slot(c, j->layer, c->bseq[b]);
		const float *q = c->q + (size_t)b * (size_t)hp->n_head * hd + (size_t)h * hd;
		vo->dots(sc, q, kc + (size_t)kvh * hd, kv_dim, n_kv, hd);
		vec_softmax_scaled(sc, n_kv, scale);
		vo->wsum(c->att + (size_t)b * (size_t)hp->n_head * hd + (size_t)h * hd, sc, vc + (size_t)kvh * hd, kv_dim,
			 n_kv, hd);
	}
}

static void add_bias(float *x, const float *bias, int rows, int n)
{
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < n; i++) x[(size_t)r * n + i] += bias[i];
}

static void add_into(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++) x[i] += y[i];
}

int sam_decode_batch(struct sam_ctx *c, const struct sam_batch *bt, struct sam_error *err)
{
	const struct sam_model *m = c->model;
	const struct sam_hparams *hp = &m->hp;
	int n = bt->n;
	if (n < 1 || n > c->p.n_batch)
		return sam_errorf(err, SAM_EINVAL, "batch of %d tokens (1..%d allowed)", n, c->p.n_batch);
	int n_out = 0;
	for (int b = 0; b < n; b++) {
		if (bt->tokens[b] < 0 || bt->tokens[b] >= hp->n_vocab)
			return sam_errorf(err, SAM_EINVAL, "token id %d is out of range [0, %d)", bt->tokens[b],
					  hp->n_vocab);
		if (bt->pos[b] < 0 || bt->pos[b] >= c->p.n_ctx)
			return sam_errorf(err, SAM_ERANGE, "position %d is outside the context of %d", bt->pos[b],
					  c->p.n_ctx);
		if (bt->seq[b] < 0 || bt->seq[b] >= c->p.n_seq)
			return sam_errorf(err, SAM_EINVAL, "sequence %d is out of range [0, %d)", bt->seq[b], c->p.n_seq);
		if (bt->logits ? bt->logits[b] : b == n - 1) {
			if (n_out == c->max_logits)
				return sam_errorf(err, SAM_EINVAL, "more than %d logits rows asked", c->max_logits);
			c->logit_rows[n_out++] = b;
		}
		c->bpos[b] = bt->pos[b];
		c->bseq[b] = bt->seq[b];
	}
	bool lora = lora_plan(c, n, n_out); /* false without adapters: then nothing LoRA runs below */
	const struct quant_traits *et = quant_traits(m->tok_embd.type);
	for (int b = 0; b < n; b++)
		et->to_float((const uint8_t *)m->tok_embd.data + (size_t)bt->tokens[b] * m->tok_embd.row_bytes,
			     c->x + (size_t)b * hp->dim, hp->dim);
	int dim = hp->dim, q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
	for (int l = 0; l < hp->n_layer; l++) {
		const struct sam_layer *L = &m->layers[l];
		for (int b = 0; b < n; b++)
			rmsnorm(c->xb + (size_t)b * dim, c->x + (size_t)b * dim, L->attn_norm.data, dim, hp->norm_eps);
		float *qkv_out[3] = { c->q, c->k, c->v };
		const struct sam_tensor *qkv[3] = { &L->wq, &L->wk, &L->wv };
		mm_product_n(c->pool, c->act, 3, qkv_out, qkv, c->xb, n);
		if (lora) /* before the biases, as llama.cpp adds them */
			for (int t = SAM_LORA_Q; t <= SAM_LORA_V; t++) lora_apply(c, LORA_BATCH, l, t, qkv_out[t], c->xb);
		if (L->bq.data) add_bias(c->q, L->bq.data, n, q_dim);
		if (L->bk.data) add_bias(c->k, L->bk.data, n, kv_dim);
		if (L->bv.data) add_bias(c->v, L->bv.data, n, kv_dim);
		for (int b = 0; b < n; b++) {
			float *kc = c->k_cache + kv_slot(c, l, c->bseq[b]) + (size_t)c->bpos[b] * kv_dim;
			float *vc = c->v_cache + kv_slot(c, l, c->bseq[b]) + (size_t)c->bpos[b] * kv_dim;
			rope_angles(m, c->rope_cache, c->bpos[b]);
			rope_rotate(hp, c->q + (size_t)b * q_dim, hp->n_head, c->rope_cache, false);
			rope_rotate(hp, c->k + (size_t)b * kv_dim, hp->n_head_kv, c->rope_cache, false);
			memcpy(kc, c->k + (size_t)b * kv_dim, (size_t)kv_dim * sizeof(float));
			memcpy(vc, c->v + (size_t)b * kv_dim, (size_t)kv_dim * sizeof(float));
		}
		struct att_job aj = { c, l, n, 0 };
		int64_t att_work = 0;
		for (int b = 0; b < n; b++) att_work += (int64_t)(c->bpos[b] + 1) * q_dim * 2;
		mm_run(c->pool, att_worker, &aj, att_work);
		mm_product(c->pool, c->act, c->xb, &L->wo, c->att, n);
		if (lora) lora_apply(c, LORA_BATCH, l, SAM_LORA_O, c->xb, c->att);
		add_into(c->x, c->xb, (size_t)n * dim);

		for (int b = 0; b < n; b++)
			rmsnorm(c->xb + (size_t)b * dim, c->x + (size_t)b * dim, L->ffn_norm.data, dim, hp->norm_eps);
		float *ffn_out[2] = { c->hb, c->hb2 };
		const struct sam_tensor *ffn[2] = { &L->w_gate, &L->w_up };
		mm_product_n(c->pool, c->act, 2, ffn_out, ffn, c->xb, n);
		if (lora)
			for (int t = 0; t < 2; t++) lora_apply(c, LORA_BATCH, l, SAM_LORA_GATE + t, ffn_out[t], c->xb);
		struct swiglu_job sj = { c->hb, c->hb2, (size_t)n * hp->n_ff };
		mm_run(c->pool, swiglu_worker, &sj, (int64_t)sj.len * SWIGLU_WORK);
		mm_product(c->pool, c->act, c->xb, &L->w_down, c->hb, n);
		if (lora) lora_apply(c, LORA_BATCH, l, SAM_LORA_DOWN, c->xb, c->hb);
		add_into(c->x, c->xb, (size_t)n * dim);
	}
	c->n_logits = n_out;
	for (int i = 0; i < n_out; i++)
		rmsnorm(c->xb + (size_t)i * dim, c->x + (size_t)c->logit_rows[i] * dim, m->output_norm.data, dim,
			hp->norm_eps);
	if (n_out) mm_product(c->pool, c->act, c->logits, &m->output, c->xb, n_out);
	if (n_out && lora) lora_apply(c, LORA_LOGITS, -1, 0, c->logits, c->xb);
	return 0;
}

int sam_decode(struct sam_ctx *c, const int32_t *tokens, int n, struct sam_error *err)
{
	if (n < 1 || n > c->p.n_batch)
		return sam_errorf(err, SAM_EINVAL, "batch of %d tokens (1..%d allowed)", n, c->p.n_batch);
	if (c->n_past + n > c->p.n_ctx)
		return sam_errorf(err, SAM_ERANGE, "context is full (%d of %d positions used, %d more asked)",
				  c->n_past, c->p.n_ctx, n);
	for (int b = 0; b < n; b++) c->dec_pos[b] = c->n_past + b; /* dec_seq is all 0, dec_all all true */
	struct sam_batch bt = { .n = n, .tokens = tokens, .pos = c->dec_pos, .seq = c->dec_seq,
				.logits = c->p.logits_all ? c->dec_all : NULL };
	int rc = sam_decode_batch(c, &bt, err);
	if (!rc) c->n_past += n;
	return rc;
}
