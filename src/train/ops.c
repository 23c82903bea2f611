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
#include "engine/rope.h"
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
	for (int pos = 0; pos < T; pos++) rope_angles(m, cache + (size_t)pos * m->hp.rope_dim, pos);
}

void op_rope(const struct sam_hparams *hp, float *v, int T, int n_heads, const float *cache, int inverse)
{
	size_t width = (size_t)n_heads * hp->head_dim;
	for (int t = 0; t < T; t++) rope_rotate(hp, v + (size_t)t * width, n_heads, cache + (size_t)t * hp->rope_dim, inverse);
}

/* ---- attention ------------------------------------------------------------ */

struct att_job {
	const struct sam_hparams *hp;
	float *out, *p, *dq, *dk, *dv, *scratch;
	const float *q, *k, *v, *dout;
	int T;
	/* the model's head geometry, derived once by att_dims */
	int hd, q_dim, kv_dim, group;
	float scale;
};

static void att_dims(struct att_job *j)
{
	const struct sam_hparams *hp = j->hp;
	j->hd = hp->head_dim;
	j->q_dim = hp->n_head * j->hd;
	j->kv_dim = hp->n_head_kv * j->hd;
	j->group = hp->n_head / hp->n_head_kv;
	j->scale = 1.0f / sqrtf((float)j->hd);
}

static void att_fwd_worker(void *arg, int ith, int nth)
{
	const struct att_job *j = arg;
	const struct sam_hparams *hp = j->hp;
	const struct vec_ops *vo = vec_ops();
	int hd = j->hd, q_dim = j->q_dim, kv_dim = j->kv_dim, group = j->group, T = j->T;
	float scale = j->scale;
	for (int h = ith; h < hp->n_head; h += nth) {
		int g = h / group;
		for (int i = 0; i < T; i++) {
			float *pr = j->p + ((size_t)h * T + i) * T;
			vo->dots(pr, j->q + (size_t)i * q_dim + (size_t)h * hd, j->k + (size_t)g * hd, kv_dim, i + 1, hd);
			vec_softmax_scaled(pr, i + 1, scale);
			vo->wsum(j->out + (size_t)i * q_dim + (size_t)h * hd, pr, j->v + (size_t)g * hd, kv_dim, i + 1, hd);
		}
	}
}

void op_attention(struct sam_pool *pool, const struct sam_hparams *hp, float *out, float *p, const float *q,
		  const float *k, const float *v, int T)
{
	struct att_job j = { .hp = hp, .out = out, .p = p, .q = q, .k = k, .v = v, .T = T };
	att_dims(&j);
	mm_run(pool, att_fwd_worker, &j, (int64_t)T * T * hp->n_head * hp->head_dim);
}

/*
 * Per head h, with dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij') and
 * dP_ij = dO_i . v_j: dq_i += scale sum_j dS_ij k_j, and into the head's
 * own scratch dk_j = scale sum_i dS_ij q_i and dv_j = sum_i P_ij dO_i (a
 * kv head is shared by a group of heads: summed after, in head order).
 * The sums over i run down a column of P or dS, gathered first, so each
 * is one weighted sum held in registers rather than T rank-one updates
 * of memory. P is overwritten with scale * dS on the way.
 */
static void att_back_worker(void *arg, int ith, int nth)
{
	const struct att_job *j = arg;
	const struct sam_hparams *hp = j->hp;
	const struct vec_ops *vo = vec_ops();
	int hd = j->hd, q_dim = j->q_dim, kv_dim = j->kv_dim, group = j->group, T = j->T;
	float scale = j->scale;
	for (int h = ith; h < hp->n_head; h += nth) {
		int g = h / group;
		float *sk = j->scratch + (size_t)h * ATT_SCRATCH(T, hd), *sv = sk + (size_t)T * hd;
		float *col = sv + (size_t)T * hd, *tmp = col + T;
		float *ph = j->p + (size_t)h * T * T;
		const float *dout = j->dout + (size_t)h * hd, *q = j->q + (size_t)h * hd;
		for (int t = 0; t < T; t++) { /* dv_t from column t of P (rows i >= t) */
			for (int i = t; i < T; i++) col[i - t] = ph[(size_t)i * T + t];
			vo->wsum(sv + (size_t)t * hd, col, dout + (size_t)t * q_dim, q_dim, T - t, hd);
		}
		for (int i = 0; i < T; i++) { /* row i of P becomes scale * dS; dq_i */
			float *pr = ph + (size_t)i * T;
			vo->dots(col, dout + (size_t)i * q_dim, j->v + (size_t)g * hd, kv_dim, i + 1, hd);
			double sum = 0.0;
			for (int t = 0; t <= i; t++) sum += (double)pr[t] * col[t];
			for (int t = 0; t <= i; t++) pr[t] = pr[t] * (col[t] - (float)sum) * scale;
			vo->wsum(tmp, pr, j->k + (size_t)g * hd, kv_dim, i + 1, hd);
			float *dqi = j->dq + (size_t)i * q_dim + (size_t)h * hd;
			for (int e = 0; e < hd; e++) dqi[e] += tmp[e];
		}
		for (int t = 0; t < T; t++) { /* dk_t from column t of scale * dS */
			for (int i = t; i < T; i++) col[i - t] = ph[(size_t)i * T + t];
			vo->wsum(sk + (size_t)t * hd, col, q + (size_t)t * q_dim, q_dim, T - t, hd);
		}
	}
}

void op_attention_back(struct sam_pool *pool, const struct sam_hparams *hp, float *dq, float *dk, float *dv,
		       const float *dout, float *p, const float *q, const float *k, const float *v, int T,
		       float *scratch)
{
	struct att_job j = { .hp = hp, .p = p, .q = q, .k = k, .v = v, .dout = dout, .dq = dq, .scratch = scratch,
			     .T = T };
	att_dims(&j);
	mm_run(pool, att_back_worker, &j, (int64_t)T * T * hp->n_head * hp->head_dim * 3);
	int hd = j.hd, kv_dim = j.kv_dim, group = j.group;
	for (int h = 0; h < hp->n_head; h++) {
		const float *sk = scratch + (size_t)h * ATT_SCRATCH(T, hd), *sv = sk + (size_t)T * hd;
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
	int cols, width, stride;
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

/*
 * out[r] += s * sum over t < cols of in[t][r] * in2[t], rows of width
 * floats, in having a row every `stride` floats: the gradient of B
 * (out = db, in = dy, in2 = x A^T) and of A (out = da, in = g, in2 = x).
 */
static void row_lora_grad(const struct rows_job *j, int r)
{
	const struct vec_ops *vo = vec_ops();
	float *o = j->out + (size_t)r * j->width;
	for (int t = 0; t < j->cols; t++) {
		float c = j->in[(size_t)t * j->stride + r];
		if (c != 0.0f) vo->axpy(o, j->lo->s * c, j->in2 + (size_t)t * j->width, j->width);
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
	struct rows_job jb = { .row = row_lora_grad, .n = rows, .lo = lo, .out = lo->db, .in = dy, .in2 = t,
			       .stride = rows, .width = lo->rank, .cols = T };
	run_rows(pool, &jb, work);
	struct rows_job ja = { .row = row_lora_grad, .n = lo->rank, .lo = lo, .out = lo->da, .in = g, .in2 = x,
			       .stride = lo->rank, .width = cols, .cols = T };
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

/*
 * out[b][c] += sum over k < nr of dy[b][k] * tile[k][c], for b < B and
 * c < nc: each element fused in the order of k, so the portable loop and
 * the AVX2 one give the same floats.
 */
typedef void (*tile_fn)(float *out, size_t os, const float *dy, size_t ds, const float *tile, int nr, int nc, int B);

static void tile_acc_ref(float *out, size_t os, const float *dy, size_t ds, const float *tile, int nr, int nc, int B)
{
	for (int b = 0; b < B; b++)
		for (int c = 0; c < nc; c++) {
			float acc = out[(size_t)b * os + c];
			for (int k = 0; k < nr; k++) acc = fmaf(dy[(size_t)b * ds + k], tile[(size_t)k * nc + c], acc);
			out[(size_t)b * os + c] = acc;
		}
}

#if defined(__x86_64__)
#include <immintrin.h>

/* 4 rows of out by 16 columns in 8 registers: each tile vector loaded once for 4 rows. */
__attribute__((target("avx2,fma"))) static void tile_acc_avx2(float *out, size_t os, const float *dy, size_t ds,
							       const float *tile, int nr, int nc, int B)
{
	int b = 0, c16 = nc / 16 * 16;
	for (; b + 4 <= B; b += 4) {
		float *o = out + (size_t)b * os;
		const float *d = dy + (size_t)b * ds;
		for (int c = 0; c < c16; c += 16) {
			__m256 a00 = _mm256_loadu_ps(o + c), a01 = _mm256_loadu_ps(o + c + 8);
			__m256 a10 = _mm256_loadu_ps(o + os + c), a11 = _mm256_loadu_ps(o + os + c + 8);
			__m256 a20 = _mm256_loadu_ps(o + 2 * os + c), a21 = _mm256_loadu_ps(o + 2 * os + c + 8);
			__m256 a30 = _mm256_loadu_ps(o + 3 * os + c), a31 = _mm256_loadu_ps(o + 3 * os + c + 8);
			for (int k = 0; k < nr; k++) {
				__m256 t0 = _mm256_loadu_ps(tile + (size_t)k * nc + c), t1 = _mm256_loadu_ps(tile + (size_t)k * nc + c + 8);
				__m256 d0 = _mm256_broadcast_ss(d + k), d1 = _mm256_broadcast_ss(d + ds + k);
				__m256 d2 = _mm256_broadcast_ss(d + 2 * ds + k), d3 = _mm256_broadcast_ss(d + 3 * ds + k);
				a00 = _mm256_fmadd_ps(d0, t0, a00), a01 = _mm256_fmadd_ps(d0, t1, a01);
				a10 = _mm256_fmadd_ps(d1, t0, a10), a11 = _mm256_fmadd_ps(d1, t1, a11);
				a20 = _mm256_fmadd_ps(d2, t0, a20), a21 = _mm256_fmadd_ps(d2, t1, a21);
				a30 = _mm256_fmadd_ps(d3, t0, a30), a31 = _mm256_fmadd_ps(d3, t1, a31);
			}
			_mm256_storeu_ps(o + c, a00), _mm256_storeu_ps(o + c + 8, a01);
			_mm256_storeu_ps(o + os + c, a10), _mm256_storeu_ps(o + os + c + 8, a11);
			_mm256_storeu_ps(o + 2 * os + c, a20), _mm256_storeu_ps(o + 2 * os + c + 8, a21);
			_mm256_storeu_ps(o + 3 * os + c, a30), _mm256_storeu_ps(o + 3 * os + c + 8, a31);
		}
	}
	/* the column tail of the rows above, and the rows left over, as tile_acc_ref does them */
	for (int bb = 0; bb < B; bb++) {
		int from = bb < b ? c16 : 0;
		for (int c = from; c < nc; c++) {
			float acc = out[(size_t)bb * os + c];
			for (int k = 0; k < nr; k++) acc = fmaf(dy[(size_t)bb * ds + k], tile[(size_t)k * nc + c], acc);
			out[(size_t)bb * os + c] = acc;
		}
	}
}
#endif

static tile_fn tile_acc(void)
{
#if defined(__x86_64__)
	static int simd = -1;
	if (simd < 0) {
		const char *off = getenv("SAM_NO_SIMD");
		simd = !(off && *off && strcmp(off, "0")) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	if (simd) return tile_acc_avx2;
#endif
	return tile_acc_ref;
}

static void pt_columns(const struct pt_job *j, int64_t c0, int64_t c1, float *tile)
{
	const struct sam_tensor *w = j->w;
	const struct quant_traits *qt = quant_traits(w->type);
	const struct ggml_type_info *ti = ggml_type_info(w->type);
	tile_fn acc = tile_acc();
	int64_t nc = c1 - c0, rows = w->rows;
	size_t off = (size_t)(c0 / ti->block) * ti->size;
	for (int64_t r0 = 0; r0 < rows; r0 += PT_TILE_ROWS) {
		int nr = rows - r0 < PT_TILE_ROWS ? (int)(rows - r0) : PT_TILE_ROWS;
		for (int k = 0; k < nr; k++)
			qt->to_float((const uint8_t *)w->data + (size_t)(r0 + k) * w->row_bytes + off, tile + (size_t)k * nc, nc);
		acc(j->out + c0, (size_t)w->cols, j->dy + r0, (size_t)rows, tile, nr, (int)nc, j->B);
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
