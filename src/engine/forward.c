/*
 * forward.c - the transformer forward pass over a batch of tokens, with the
 * KV cache. Matrix products are split by output rows across the thread
 * pool; attention by (token, head). Everything works in buffers that
 * sam_ctx_new allocated, so decoding never allocates.
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
#include "engine/vec.h"

#define MAX_CTX (1 << 24)
/*
 * Below this many multiply-adds a job runs on the calling thread: waking the
 * pool costs more than it saves, and on a machine with more runnable
 * threads than cores every wake-up can cost a scheduler time slice.
 */
#define PAR_MIN_WORK (1 << 18)

static void run_job(struct sam_ctx *c, sam_pool_fn fn, void *job, int64_t work)
{
	if (work < PAR_MIN_WORK) fn(job, 0, 1);
	else sam_pool_run(c->pool, fn, job);
}

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
	return floats * sizeof(float) + l.act + 6 * (size_t)p->n_batch * sizeof(int32_t);
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
	if (!c->dec_pos || !c->dec_seq || !c->dec_all || !c->bpos || !c->bseq || !c->logit_rows || !c->k_cache || !c->v_cache || !c->x || !c->xb || !c->q || !c->att || !c->k || !c->v || !c->hb ||
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

/* Up to 3 products of the same activations, run as one job: one wake-up of the pool, not 3. */
#define MM_MAX 3

/*
 * Threads take chunks of rows from a shared counter rather than a fixed
 * share each: on a VM a thread can lose its core for a while, and the
 * others then take over its rows instead of waiting for them.
 */
#define MM_CHUNKS_PER_THREAD 4

struct mm_job {
	int n;                                /* products */
	const struct sam_tensor *w[MM_MAX];
	float *out[MM_MAX];                   /* [B][w->rows] each */
	const struct quant_traits *qt[MM_MAX];
	int64_t chunk_rows[MM_MAX];           /* a multiple of MM_ROW_TILE */
	int64_t first_chunk[MM_MAX + 1];      /* chunks of product k: first_chunk[k] .. first_chunk[k+1]-1 */
	atomic_int_fast64_t next;             /* the next chunk to take */
	const void *act;    /* B rows of activations in the weights' activation type */
	size_t act_stride;  /* bytes between activation rows */
	int B;
};

/*
 * Columns per pass over a chunk's rows: their activations stay in the L2
 * cache while the weights stream past them once.
 */
#define MM_ACT_BYTES (256 << 10)
/* Chunks are whole tiles of the gemm kernels (and of repacked weights). */
#define MM_ROW_TILE 8

/* Rows r0 .. r1-1 of product k. */
static void mm_range(const struct mm_job *j, int k, int64_t r0, int64_t r1)
{
	const struct sam_tensor *t = j->w[k];
	const struct quant_traits *qt = j->qt[k];
	int64_t rows = t->rows;
	const uint8_t *w = (const uint8_t *)t->data + (size_t)r0 * t->row_bytes;
	const uint8_t *a = j->act;
	float *out = j->out[k] + r0;
	if (!qt->gemm) {
		for (int64_t r = 0; r < r1 - r0; r++)
			for (int b = 0; b < j->B; b++)
				out[(size_t)b * (size_t)rows + (size_t)r] =
					qt->vec_dot(t->cols, w + (size_t)r * t->row_bytes, a + (size_t)b * j->act_stride);
		return;
	}
	int cb = (int)(MM_ACT_BYTES / j->act_stride);
	if (cb < 4) cb = 4;
	for (int c0 = 0; c0 < j->B; c0 += cb) {
		int nc = j->B - c0 < cb ? j->B - c0 : cb;
		(t->packed ? qt->gemm_packed : qt->gemm)(t->cols, w, t->row_bytes, (int)(r1 - r0),
							 a + (size_t)c0 * j->act_stride, j->act_stride, nc,
							 out + (size_t)c0 * (size_t)rows, (size_t)rows);
	}
}

static void mm_worker(void *arg, int ith, int nth)
{
	(void)ith, (void)nth;
	struct mm_job *j = arg;
	for (;;) {
		int64_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
		if (c >= j->first_chunk[j->n]) return;
		int k = 0;
		while (c >= j->first_chunk[k + 1]) k++;
		int64_t r0 = (c - j->first_chunk[k]) * j->chunk_rows[k], r1 = r0 + j->chunk_rows[k];
		mm_range(j, k, r0, r1 < j->w[k]->rows ? r1 : j->w[k]->rows);
	}
}

/*
 * out[k][B][w[k].rows] = x[B][cols] . w[k]^T for k < n: products of the
 * same activations x (all w[k] have cols columns). Weights whose types
 * take the same activation type share one conversion of x and one job.
 */
static void matmul_n(struct sam_ctx *c, int n, float *const *out, const struct sam_tensor *const *w, const float *x,
		     int B)
{
	for (int k0 = 0; k0 < n;) {
		struct mm_job j = { .B = B };
		uint32_t act_type = quant_traits(w[k0]->type)->act_type;
		int64_t work = 0;
		int k = k0;
		for (; k < n && j.n < MM_MAX && quant_traits(w[k]->type)->act_type == act_type; k++, j.n++) {
			j.w[j.n] = w[k];
			j.out[j.n] = out[k];
			j.qt[j.n] = quant_traits(w[k]->type);
			work += w[k]->rows * w[k]->cols * B;
		}
		int nth = work < PAR_MIN_WORK ? 1 : sam_pool_size(c->pool);
		for (int p = 0; p < j.n; p++) {
			int64_t want = (j.w[p]->rows + (int64_t)nth * MM_CHUNKS_PER_THREAD - 1) / ((int64_t)nth * MM_CHUNKS_PER_THREAD);
			j.chunk_rows[p] = (want + MM_ROW_TILE - 1) / MM_ROW_TILE * MM_ROW_TILE;
			j.first_chunk[p + 1] = j.first_chunk[p] + (j.w[p]->rows + j.chunk_rows[p] - 1) / j.chunk_rows[p];
		}
		atomic_init(&j.next, 0);
		int64_t cols = w[k0]->cols;
		if (act_type == GGML_TYPE_F32) {
			j.act = x;
			j.act_stride = (size_t)cols * sizeof(float);
		} else {
			const struct quant_traits *at = quant_traits(act_type);
			j.act = c->act;
			j.act_stride = quant_row_size(act_type, cols);
			for (int b = 0; b < B; b++)
				at->from_float(x + (size_t)b * (size_t)cols, (uint8_t *)c->act + (size_t)b * j.act_stride, cols);
		}
		run_job(c, mm_worker, &j, work);
		k0 = k;
	}
}

static void matmul(struct sam_ctx *c, float *out, const struct sam_tensor *w, const float *x, int B)
{
	matmul_n(c, 1, &out, &w, x, B);
}

/* cos/sin for every rotated pair at position pos, as ggml's rope cache. */
static void rope_cache(const struct sam_model *m, float *cache, int pos)
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

static void rope_apply(const struct sam_hparams *hp, float *v, int n_heads, const float *cache)
{
	int half = hp->rope_dim / 2;
	for (int h = 0; h < n_heads; h++) {
		float *x = v + (size_t)h * hp->head_dim;
		for (int i = 0; i < hp->rope_dim; i += 2) {
			int a = hp->rope_type == SAM_ROPE_NEOX ? i / 2 : i;
			int b = hp->rope_type == SAM_ROPE_NEOX ? i / 2 + half : i + 1;
			float c = cache[i], s = cache[i + 1], x0 = x[a], x1 = x[b];
			x[a] = x0 * c - x1 * s;
			x[b] = x0 * s + x1 * c;
		}
	}
}

struct att_job {
	struct sam_ctx *c;
	int layer, n;
};

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
	for (int task = ith; task < total; task += nth) {
		int b = task / hp->n_head, h = task % hp->n_head, kvh = h / group;
		int n_kv = c->bpos[b] + 1;
		const float *kc = c->k_cache + kv_slot(c, j->layer, c->bseq[b]);
		const float *vc = c->v_cache + kv_slot(c, j->layer, c->bseq[b]);
		const float *q = c->q + (size_t)b * (size_t)hp->n_head * hd + (size_t)h * hd;
		vo->dots(sc, q, kc + (size_t)kvh * hd, kv_dim, n_kv, hd);
		float max = -INFINITY;
		for (int t = 0; t < n_kv; t++) {
			sc[t] *= scale;
			if (sc[t] > max) max = sc[t];
		}
		double sum = 0.0;
		for (int t = 0; t < n_kv; t++) {
			sc[t] = expf(sc[t] - max);
			sum += (double)sc[t];
		}
		float inv = (float)(1.0 / sum);
		for (int t = 0; t < n_kv; t++) sc[t] *= inv;
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
		matmul_n(c, 3, qkv_out, qkv, c->xb, n);
		if (L->bq.data) add_bias(c->q, L->bq.data, n, q_dim);
		if (L->bk.data) add_bias(c->k, L->bk.data, n, kv_dim);
		if (L->bv.data) add_bias(c->v, L->bv.data, n, kv_dim);
		for (int b = 0; b < n; b++) {
			float *kc = c->k_cache + kv_slot(c, l, c->bseq[b]) + (size_t)c->bpos[b] * kv_dim;
			float *vc = c->v_cache + kv_slot(c, l, c->bseq[b]) + (size_t)c->bpos[b] * kv_dim;
			rope_cache(m, c->rope_cache, c->bpos[b]);
			rope_apply(hp, c->q + (size_t)b * q_dim, hp->n_head, c->rope_cache);
			rope_apply(hp, c->k + (size_t)b * kv_dim, hp->n_head_kv, c->rope_cache);
			memcpy(kc, c->k + (size_t)b * kv_dim, (size_t)kv_dim * sizeof(float));
			memcpy(vc, c->v + (size_t)b * kv_dim, (size_t)kv_dim * sizeof(float));
		}
		struct att_job aj = { c, l, n };
		int64_t att_work = 0;
		for (int b = 0; b < n; b++) att_work += (int64_t)(c->bpos[b] + 1) * q_dim * 2;
		run_job(c, att_worker, &aj, att_work);
		matmul(c, c->xb, &L->wo, c->att, n);
		add_into(c->x, c->xb, (size_t)n * dim);

		for (int b = 0; b < n; b++)
			rmsnorm(c->xb + (size_t)b * dim, c->x + (size_t)b * dim, L->ffn_norm.data, dim, hp->norm_eps);
		float *ffn_out[2] = { c->hb, c->hb2 };
		const struct sam_tensor *ffn[2] = { &L->w_gate, &L->w_up };
		matmul_n(c, 2, ffn_out, ffn, c->xb, n);
		for (size_t i = 0; i < (size_t)n * hp->n_ff; i++) {
			float g = c->hb[i];
			c->hb[i] = (g / (1.0f + expf(-g))) * c->hb2[i];
		}
		matmul(c, c->xb, &L->w_down, c->hb, n);
		add_into(c->x, c->xb, (size_t)n * dim);
	}
	c->n_logits = n_out;
	for (int i = 0; i < n_out; i++)
		rmsnorm(c->xb + (size_t)i * dim, c->x + (size_t)c->logit_rows[i] * dim, m->output_norm.data, dim,
			hp->norm_eps);
	if (n_out) matmul(c, c->logits, &m->output, c->xb, n_out);
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
