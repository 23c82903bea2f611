/*
 * ops.c - forward and backward of the trainer's operations (see ops.h).
 *
 * The numerics of the forward functions follow the inference pass
 * (forward.c): RMSNorm's sum of squares in double, softmax sums in
 * double, the same RoPE angles, base products through mm_product with the
 * weight type's activation conversion. So the loss the trainer reports
 * for the base model is the loss `sam perplexity` would see.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/matmul.h"
#include "engine/vec.h"
#include "sam/ggml_types.h"
#include "sam/quant.h"
#include "train/ops.h"

/* ---- RMSNorm -------------------------------------------------------------- */

void op_rmsnorm(float *y, float *r, const float *x, const float *w, int T, int n, float eps)
{
	for (int t = 0; t < T; t++) {
		const float *xt = x + (size_t)t * n;
		float *yt = y + (size_t)t * n;
		double sum = 0.0;
		for (int i = 0; i < n; i++) sum += (double)(xt[i] * xt[i]);
		float scale = 1.0f / sqrtf((float)(sum / n) + eps);
		r[t] = scale;
		for (int i = 0; i < n; i++) yt[i] = (xt[i] * scale) * w[i];
	}
}

/* y_i = x_i r w_i with r = (mean(x^2) + eps)^-1/2: dx_j = r w_j dy_j - r^3/n x_j sum_i dy_i w_i x_i */
void op_rmsnorm_back(float *dx, const float *dy, const float *x, const float *r, const float *w, int T, int n)
{
	for (int t = 0; t < T; t++) {
		const float *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
		float *dxt = dx + (size_t)t * n;
		double dot = 0.0;
		for (int i = 0; i < n; i++) dot += (double)dyt[i] * w[i] * xt[i];
		float rt = r[t], c = (float)(dot * rt * rt * rt / n);
		for (int i = 0; i < n; i++) dxt[i] += rt * w[i] * dyt[i] - c * xt[i];
	}
}

/* ---- RoPE ----------------------------------------------------------------- */

void op_rope_cache(const struct sam_model *m, float *cache, int T)
{
	const struct sam_hparams *hp = &m->hp;
	const float *ff = m->rope_freqs.data;
	float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->rope_dim);
	for (int pos = 0; pos < T; pos++) {
		float *c = cache + (size_t)pos * hp->rope_dim;
		float theta = (float)pos;
		for (int i = 0; i < hp->rope_dim; i += 2) {
			float a = hp->rope_freq_scale * (theta / (ff ? ff[i / 2] : 1.0f));
			c[i] = cosf(a);
			c[i + 1] = sinf(a);
			theta *= theta_scale;
		}
	}
}

void op_rope(const struct sam_hparams *hp, float *v, int T, int n_heads, const float *cache, int inverse)
{
	int half = hp->rope_dim / 2, width = n_heads * hp->head_dim;
	bool neox = hp->rope_type == SAM_ROPE_NEOX;
	for (int t = 0; t < T; t++) {
		const float *cc = cache + (size_t)t * hp->rope_dim;
		for (int h = 0; h < n_heads; h++) {
			float *x = v + (size_t)t * width + (size_t)h * hp->head_dim;
			for (int i = 0; i < hp->rope_dim; i += 2) {
				int a = neox ? i / 2 : i, b = neox ? i / 2 + half : i + 1;
				float c = cc[i], s = inverse ? -cc[i + 1] : cc[i + 1], x0 = x[a], x1 = x[b];
				x[a] = x0 * c - x1 * s;
				x[b] = x0 * s + x1 * c;
			}
		}
	}
}

/* ---- attention ------------------------------------------------------------ */

struct att_job {
	const struct sam_hparams *hp;
	float *out, *p, *dq, *dk, *dv, *scratch;
	const float *q, *k, *v, *dout;
	int T;
};

static void att_fwd_worker(void *arg, int ith, int nth)
{
	const struct att_job *j = arg;
	const struct sam_hparams *hp = j->hp;
	const struct vec_ops *vo = vec_ops();
	int hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
	int group = hp->n_head / hp->n_head_kv, T = j->T;
	float scale = 1.0f / sqrtf((float)hd);
	for (int h = ith; h < hp->n_head; h += nth) {
		int g = h / group;
		for (int i = 0; i < T; i++) {
			float *pr = j->p + ((size_t)h * T + i) * T;
			vo->dots(pr, j->q + (size_t)i * q_dim + (size_t)h * hd, j->k + (size_t)g * hd, kv_dim, i + 1, hd);
			float max = -INFINITY;
			for (int t = 0; t <= i; t++) {
				pr[t] *= scale;
				if (pr[t] > max) max = pr[t];
			}
			double sum = 0.0;
			for (int t = 0; t <= i; t++) {
				pr[t] = expf(pr[t] - max);
				sum += (double)pr[t];
			}
			float inv = (float)(1.0 / sum);
			for (int t = 0; t <= i; t++) pr[t] *= inv;
			vo->wsum(j->out + (size_t)i * q_dim + (size_t)h * hd, pr, j->v + (size_t)g * hd, kv_dim, i + 1, hd);
		}
	}
}

void op_attention(struct sam_pool *pool, const struct sam_hparams *hp, float *out, float *p, const float *q,
		  const float *k, const float *v, int T)
{
	struct att_job j = { .hp = hp, .out = out, .p = p, .q = q, .k = k, .v = v, .T = T };
	mm_run(pool, att_fwd_worker, &j, (int64_t)T * T * hp->n_head * hp->head_dim);
}

/*
 * Per head h: dP_ij = dO_i . v_j, dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij'),
 * dq_i += scale sum_j dS_ij k_j, and into the head's own scratch
 * dk_j += scale dS_ij q_i, dv_j += P_ij dO_i (a kv head is shared by a
 * group of heads: summed after, in head order).
 */
static void att_back_worker(void *arg, int ith, int nth)
{
	const struct att_job *j = arg;
	const struct sam_hparams *hp = j->hp;
	const struct vec_ops *vo = vec_ops();
	int hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
	int group = hp->n_head / hp->n_head_kv, T = j->T;
	float scale = 1.0f / sqrtf((float)hd);
	for (int h = ith; h < hp->n_head; h += nth) {
		int g = h / group;
		float *sk = j->scratch + (size_t)h * T * (2 * hd + 1), *sv = sk + (size_t)T * hd, *dp = sv + (size_t)T * hd;
		memset(sk, 0, (size_t)T * 2 * hd * sizeof(float));
		for (int i = 0; i < T; i++) {
			const float *pr = j->p + ((size_t)h * T + i) * T;
			const float *doi = j->dout + (size_t)i * q_dim + (size_t)h * hd;
			const float *qi = j->q + (size_t)i * q_dim + (size_t)h * hd;
			float *dqi = j->dq + (size_t)i * q_dim + (size_t)h * hd;
			vo->dots(dp, doi, j->v + (size_t)g * hd, kv_dim, i + 1, hd);
			double sum = 0.0;
			for (int t = 0; t <= i; t++) sum += (double)pr[t] * dp[t];
			for (int t = 0; t <= i; t++) {
				float ds = pr[t] * (dp[t] - (float)sum) * scale;
				vo->axpy(dqi, ds, j->k + (size_t)t * kv_dim + (size_t)g * hd, hd);
				vo->axpy(sk + (size_t)t * hd, ds, qi, hd);
				vo->axpy(sv + (size_t)t * hd, pr[t], doi, hd);
			}
		}
	}
}

void op_attention_back(struct sam_pool *pool, const struct sam_hparams *hp, float *dq, float *dk, float *dv,
		       const float *dout, const float *p, const float *q, const float *k, const float *v, int T,
		       float *scratch)
{
	struct att_job j = { .hp = hp, .p = (float *)p, .q = q, .k = k, .v = v, .dout = dout, .dq = dq,
			     .scratch = scratch, .T = T };
	mm_run(pool, att_back_worker, &j, (int64_t)T * T * hp->n_head * hp->head_dim * 3);
	int hd = hp->head_dim, kv_dim = hp->n_head_kv * hd, group = hp->n_head / hp->n_head_kv;
	for (int h = 0; h < hp->n_head; h++) {
		const float *sk = scratch + (size_t)h * T * (2 * hd + 1), *sv = sk + (size_t)T * hd;
		size_t off = (size_t)(h / group) * hd;
		for (int t = 0; t < T; t++)
			for (int i = 0; i < hd; i++) {
				dk[(size_t)t * kv_dim + off + i] += sk[(size_t)t * hd + i];
				dv[(size_t)t * kv_dim + off + i] += sv[(size_t)t * hd + i];
			}
	}
}

/* ---- SwiGLU --------------------------------------------------------------- */

void op_swiglu(float *h, const float *g, const float *u, size_t n)
{
	for (size_t i = 0; i < n; i++) h[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
}

/* silu(g) = g sigmoid(g); silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))) */
void op_swiglu_back(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float sg = 1.0f / (1.0f + expf(-g[i]));
		dg[i] += dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
		du[i] += dh[i] * g[i] * sg;
	}
}

/* ---- cross-entropy -------------------------------------------------------- */

double op_cross_entropy(float *dlogits, const float *logits, const int32_t *targets, int R, int V, float scale)
{
	double loss = 0.0;
	for (int r = 0; r < R; r++) {
		const float *l = logits + (size_t)r * V;
		float max = -INFINITY;
		for (int i = 0; i < V; i++)
			if (l[i] > max) max = l[i];
		double sum = 0.0;
		for (int i = 0; i < V; i++) sum += exp((double)(l[i] - max));
		loss += log(sum) - (double)(l[targets[r]] - max);
		if (!dlogits) continue;
		float *d = dlogits + (size_t)r * V;
		float inv = (float)(1.0 / sum);
		for (int i = 0; i < V; i++) d[i] = expf(l[i] - max) * inv * scale;
		d[targets[r]] -= scale;
	}
	return loss;
}

/* ---- linear layers with LoRA ---------------------------------------------- */

/* Jobs over the rows of a small product, rows interleaved across threads. */
struct rows_job {
	void (*row)(const struct rows_job *j, int r);
	int n;
	const struct op_lora *lo;
	float *out, *out2;
	const float *in, *in2;
	int cols, width;
};

static void rows_worker(void *arg, int ith, int nth)
{
	const struct rows_job *j = arg;
	for (int r = ith; r < j->n; r += nth) j->row(j, r);
}

static void run_rows(struct sam_pool *pool, struct rows_job *j, int64_t work)
{
	mm_run(pool, rows_worker, j, work);
}

/* y[r] += s * t[r] B^T: out = y [n][width], in = t [n][rank] */
static void row_lora_up(const struct rows_job *j, int r)
{
	const struct vec_ops *vo = vec_ops();
	const struct op_lora *lo = j->lo;
	const float *tr = j->in + (size_t)r * lo->rank;
	float *yr = j->out + (size_t)r * j->width;
	for (int o = 0; o < j->width; o++) yr[o] += lo->s * vo->dot(tr, lo->b + (size_t)o * lo->rank, lo->rank);
}

void op_linear(struct sam_pool *pool, void *act, float *y, float *t, const struct sam_tensor *w, const float *bias,
	       const struct op_lora *lo, const float *x, int T)
{
	mm_product(pool, act, y, w, x, T);
	int rows = (int)w->rows;
	if (bias)
		for (int r = 0; r < T; r++)
			for (int o = 0; o < rows; o++) y[(size_t)r * rows + o] += bias[o];
	if (!lo || !lo->a) return;
	struct sam_tensor ta = { .data = lo->a, .type = GGML_TYPE_F32, .cols = w->cols, .rows = lo->rank,
				 .row_bytes = (size_t)w->cols * sizeof(float) };
	mm_product(pool, act, t, &ta, x, T);
	struct rows_job j = { .row = row_lora_up, .n = T, .lo = lo, .out = y, .in = t, .width = rows };
	run_rows(pool, &j, (int64_t)T * rows * lo->rank);
}

/* g[r] = dy[r] B: out = g [n][rank], in = dy [n][width] */
static void row_lora_g(const struct rows_job *j, int r)
{
	const struct vec_ops *vo = vec_ops();
	const struct op_lora *lo = j->lo;
	float *gr = j->out + (size_t)r * lo->rank;
	const float *dyr = j->in + (size_t)r * j->width;
	memset(gr, 0, (size_t)lo->rank * sizeof(float));
	for (int o = 0; o < j->width; o++)
		if (dyr[o] != 0.0f) vo->axpy(gr, dyr[o], lo->b + (size_t)o * lo->rank, lo->rank);
}

/* db[o] += s sum_t dy[t][o] t[t]: row o of db; n = rows of B, in = dy [T][width], in2 = t [T][rank] */
static void row_lora_db(const struct rows_job *j, int o)
{
	const struct vec_ops *vo = vec_ops();
	const struct op_lora *lo = j->lo;
	float *dbo = lo->db + (size_t)o * lo->rank;
	for (int t = 0; t < j->cols; t++) {
		float d = j->in[(size_t)t * j->width + o];
		if (d != 0.0f) vo->axpy(dbo, lo->s * d, j->in2 + (size_t)t * lo->rank, lo->rank);
	}
}

/* da[k] += s sum_t g[t][k] x[t]: row k of da; in = g [T][rank], in2 = x [T][width], cols = T */
static void row_lora_da(const struct rows_job *j, int k)
{
	const struct vec_ops *vo = vec_ops();
	const struct op_lora *lo = j->lo;
	float *dak = lo->da + (size_t)k * j->width;
	for (int t = 0; t < j->cols; t++) {
		float gk = j->in[(size_t)t * lo->rank + k];
		if (gk != 0.0f) vo->axpy(dak, lo->s * gk, j->in2 + (size_t)t * j->width, j->width);
	}
}

/* dx[r] += s g[r] A: out = dx [T][width], in = g [T][rank] */
static void row_lora_dx(const struct rows_job *j, int r)
{
	const struct vec_ops *vo = vec_ops();
	const struct op_lora *lo = j->lo;
	const float *gr = j->in + (size_t)r * lo->rank;
	float *dxr = j->out + (size_t)r * j->width;
	for (int k = 0; k < lo->rank; k++)
		if (gr[k] != 0.0f) vo->axpy(dxr, lo->s * gr[k], lo->a + (size_t)k * j->width, j->width);
}

void op_linear_back(struct sam_pool *pool, float *dx, const float *dy, const struct sam_tensor *w,
		    const struct op_lora *lo, const float *x, const float *t, int T, float *g)
{
	int rows = (int)w->rows, cols = (int)w->cols;
	if (dx) op_product_t(pool, dx, dy, w, T);
	if (!lo || !lo->a) return;
	int64_t work = (int64_t)T * rows * lo->rank;
	struct rows_job jg = { .row = row_lora_g, .n = T, .lo = lo, .out = g, .in = dy, .width = rows };
	run_rows(pool, &jg, work);
	struct rows_job jb = { .row = row_lora_db, .n = rows, .lo = lo, .in = dy, .in2 = t, .width = rows, .cols = T };
	run_rows(pool, &jb, work);
	struct rows_job ja = { .row = row_lora_da, .n = lo->rank, .lo = lo, .in = g, .in2 = x, .width = cols, .cols = T };
	run_rows(pool, &ja, (int64_t)T * cols * lo->rank);
	if (dx) {
		struct rows_job jx = { .row = row_lora_dx, .n = T, .lo = lo, .out = dx, .in = g, .width = cols };
		run_rows(pool, &jx, (int64_t)T * cols * lo->rank);
	}
}

/* ---- transposed weight product -------------------------------------------- */

#define PT_TILE_ROWS 16  /* weight rows dequantized at once */
#define PT_CHUNK_COLS 256 /* columns per task: a tile stays in L1 (16 x 256 floats = 16 KiB) */

struct pt_job {
	const struct sam_tensor *w;
	const float *dy;
	float *out;
	int B;
	int64_t chunk;   /* columns per task, a multiple of the block size */
	int64_t n_tasks;
	atomic_int_fast64_t next;
};

static void pt_columns(const struct pt_job *j, int64_t c0, int64_t c1, float *tile)
{
	const struct sam_tensor *w = j->w;
	const struct quant_traits *qt = quant_traits(w->type);
	const struct ggml_type_info *ti = ggml_type_info(w->type);
	const struct vec_ops *vo = vec_ops();
	int64_t nc = c1 - c0, rows = w->rows;
	size_t off = (size_t)(c0 / ti->block) * ti->size;
	for (int64_t r0 = 0; r0 < rows; r0 += PT_TILE_ROWS) {
		int nr = rows - r0 < PT_TILE_ROWS ? (int)(rows - r0) : PT_TILE_ROWS;
		for (int k = 0; k < nr; k++)
			qt->to_float((const uint8_t *)w->data + (size_t)(r0 + k) * w->row_bytes + off, tile + (size_t)k * nc, nc);
		for (int b = 0; b < j->B; b++) {
			const float *dyb = j->dy + (size_t)b * rows + r0;
			float *ob = j->out + (size_t)b * w->cols + c0;
			for (int k = 0; k < nr; k++)
				if (dyb[k] != 0.0f) vo->axpy(ob, dyb[k], tile + (size_t)k * nc, (int)nc);
		}
	}
}

static void pt_worker(void *arg, int ith, int nth)
{
	(void)ith, (void)nth;
	struct pt_job *j = arg;
	float tile[PT_TILE_ROWS * PT_CHUNK_COLS];
	for (;;) {
		int64_t task = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
		if (task >= j->n_tasks) return;
		int64_t c0 = task * j->chunk, c1 = c0 + j->chunk < j->w->cols ? c0 + j->chunk : j->w->cols;
		pt_columns(j, c0, c1, tile);
	}
}

void op_product_t(struct sam_pool *pool, float *out, const float *dy, const struct sam_tensor *w, int B)
{
	int64_t blk = ggml_type_info(w->type)->block;
	int64_t chunk = PT_CHUNK_COLS / blk * blk;
	if (chunk < blk) chunk = blk; /* K-quants: one 256-element block */
	struct pt_job j = { .w = w, .dy = dy, .out = out, .B = B, .chunk = chunk,
			    .n_tasks = (w->cols + chunk - 1) / chunk };
	atomic_init(&j.next, 0);
	mm_run(pool, pt_worker, &j, w->rows * w->cols * (int64_t)B);
}
