/*
 * matmul.c - weight products split across the pool (see matmul.h).
 */
#include <stdatomic.h>

#include "sam/ggml_types.h"
#include "sam/quant.h"
#include "engine/matmul.h"

void mm_run(struct sam_pool *pool, sam_pool_fn fn, void *job, int64_t work)
{
	if (work < MM_PAR_MIN_WORK) fn(job, 0, 1);
	else sam_pool_run(pool, fn, job);
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

void mm_product_n(struct sam_pool *pool, void *act, int n, float *const *out, const struct sam_tensor *const *w,
		  const float *x, int B)
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
		int nth = work < MM_PAR_MIN_WORK ? 1 : sam_pool_size(pool);
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
			j.act = act;
			j.act_stride = quant_row_size(act_type, cols);
			for (int b = 0; b < B; b++)
				at->from_float(x + (size_t)b * (size_t)cols, (uint8_t *)act + (size_t)b * j.act_stride, cols);
		}
		mm_run(pool, mm_worker, &j, work);
		k0 = k;
	}
}

void mm_product(struct sam_pool *pool, void *act, float *out, const struct sam_tensor *w, const float *x, int B)
{
	mm_product_n(pool, act, 1, &out, &w, x, B);
}
