/*
 * quant_avx2_gemm.c - AVX2 tiles of matrix products (quant_traits.gemm):
 * several weight rows against several activation columns at once. Each
 * weight block, once loaded and unpacked, serves every column of the tile,
 * and each activation block every row; the outputs of a tile are
 * independent chains, so the float pipeline stays busy where one dot
 * product would wait on its own accumulator. Prompts (many columns),
 * batched decoding (a few) and single-token decoding (one) all go through
 * here.
 *
 * Every output is computed with exactly the arithmetic of the type's
 * vec_dot (the same integer sums, the same float operations in the same
 * order), so a result never depends on the tile it fell in or on the
 * batch it was decoded with; tests/engine/test_quant.c checks that bit for
 * bit.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "engine/quant_avx2_util.h"
#include "sam/ggml_types.h"
#include "engine/quant_simd.h"

/* Tile shapes are compile-time constants once these are inlined. */
#define TILE AVX2 static inline __attribute__((always_inline))

/* The loops over a tile's rows and columns unrolled, so its accumulators live in registers. */
#define UNROLL _Pragma("GCC unroll 8")

/*
 * Weights stream from memory once per token. Asking for the bytes 1 KiB
 * ahead of the one weight stream a thread reads took generation on
 * qwen2.5-0.5b Q8_0 from ~65% to ~80% of the measured memory bandwidth:
 * the hardware prefetcher alone does not run far enough ahead.
 */
#define PREFETCH_BYTES 1024

/* the cache lines of the n bytes at p, PREFETCH_BYTES on */
TILE void prefetch_ahead(const void *p, size_t n)
{
	UNROLL
	for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)p + PREFETCH_BYTES + o, _MM_HINT_T0);
}

#define ROW(base, stride, r) ((const void *)((const uint8_t *)(base) + (size_t)(r) * (stride)))

/* ---- Q8_0 and Q5_0: 8 float lanes per output, as their vec_dot --------------- */

enum lane_kind { LANE_Q8_0, LANE_Q5_0 };

/* Block i of a weight row as 32 signed levels, and its scale. */
TILE __m256i lane_levels(enum lane_kind kind, const void *row, int64_t i, float *d)
{
	if (kind == LANE_Q8_0) {
		const struct block_q8_0 *b = (const struct block_q8_0 *)row + i;
		*d = h2f(b->d);
		return _mm256_loadu_si256((const __m256i *)b->qs);
	}
	const struct block_q5_0 *b = (const struct block_q5_0 *)row + i;
	*d = h2f(b->d);
	return q5_0_levels(b->qs, b->qh);
}

TILE void lane_tile(enum lane_kind kind, int64_t nb, const void *w, size_t ws, const void *a, size_t as, float *out,
		    size_t os, const int RM, const int RN)
{
	__m256 acc[4][4];
	UNROLL
	for (int r = 0; r < RM; r++)
		UNROLL
		for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
	for (int64_t i = 0; i < nb; i++) {
		__m256i y[4];
		float da[4];
		UNROLL
		for (int c = 0; c < RN; c++) {
			const struct block_q8_0 *b = (const struct block_q8_0 *)ROW(a, as, c) + i;
			y[c] = _mm256_loadu_si256((const __m256i *)b->qs);
			da[c] = h2f(b->d);
		}
		if (RM <= 2) /* decoding: the weights stream from memory */
			UNROLL
			for (int r = 0; r < RM; r++)
				prefetch_ahead((const uint8_t *)ROW(w, ws, r) +
						       (size_t)i * (kind == LANE_Q8_0 ? sizeof(struct block_q8_0) : sizeof(struct block_q5_0)),
					       1);
		UNROLL
		for (int r = 0; r < RM; r++) {
			float dw;
			__m256i x = lane_levels(kind, ROW(w, ws, r), i, &dw);
			__m256i ax = _mm256_sign_epi8(x, x);
			UNROLL
			for (int c = 0; c < RN; c++) {
				__m256i p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(y[c], x));
				p = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
				acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * da[c]), _mm256_cvtepi32_ps(p), acc[r][c]);
			}
		}
	}
	UNROLL
	for (int r = 0; r < RM; r++)
		UNROLL
		for (int c = 0; c < RN; c++) out[(size_t)c * os + (size_t)r] = hsum8(acc[r][c]);
}

TILE void lane_gemm(enum lane_kind kind, int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as,
		    int nc, float *out, size_t os)
{
	int64_t nb = n / 32;
	int r = 0;
	if (nc == 1) {
		/*
		 * One token: memory-bound, and one row streamed after the other
		 * measured ~1.5x faster than 2 or 4 rows read side by side.
		 */
		for (; r < nr; r++) lane_tile(kind, nb, ROW(w, ws, r), ws, a, as, out + r, os, 1, 1);
		return;
	}
	if (nc < 8) {
		/* a few sequences decoded together: 2 rows x 4 columns, no ragged column tiles */
		for (; r + 2 <= nr; r += 2) {
			int c = 0;
			for (; c + 4 <= nc; c += 4)
				lane_tile(kind, nb, ROW(w, ws, r), ws, ROW(a, as, c), as, out + (size_t)c * os + r, os, 2, 4);
			const void *wr = ROW(w, ws, r), *ac = ROW(a, as, c);
			float *o = out + (size_t)c * os + r;
			switch (nc - c) {
			case 3: lane_tile(kind, nb, wr, ws, ac, as, o, os, 2, 3); break;
			case 2: lane_tile(kind, nb, wr, ws, ac, as, o, os, 2, 2); break;
			case 1: lane_tile(kind, nb, wr, ws, ac, as, o, os, 2, 1); break;
			}
		}
	}
	/* 4 x 3 measured best of 2x2 .. 4x3 on prompts (within the noise of 4 x 2 and 3 x 2) */
	for (; r + 4 <= nr; r += 4) {
		int c = 0;
		for (; c + 3 <= nc; c += 3)
			lane_tile(kind, nb, ROW(w, ws, r), ws, ROW(a, as, c), as, out + (size_t)c * os + r, os, 4, 3);
		for (; c < nc; c++)
			lane_tile(kind, nb, ROW(w, ws, r), ws, ROW(a, as, c), as, out + (size_t)c * os + r, os, 4, 1);
	}
	for (; r < nr; r++) {
		int c = 0;
		for (; c + 4 <= nc; c += 4)
			lane_tile(kind, nb, ROW(w, ws, r), ws, ROW(a, as, c), as, out + (size_t)c * os + r, os, 1, 4);
		for (; c < nc; c++)
			lane_tile(kind, nb, ROW(w, ws, r), ws, ROW(a, as, c), as, out + (size_t)c * os + r, os, 1, 1);
	}
}

AVX2 void quant_avx2_q8_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			       float *out, size_t os)
{
	lane_gemm(LANE_Q8_0, n, w, ws, nr, a, as, nc, out, os);
}

AVX2 void quant_avx2_q5_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			       float *out, size_t os)
{
	lane_gemm(LANE_Q5_0, n, w, ws, nr, a, as, nc, out, os);
}

/* ---- Q4_0: 8 rows in the 8 lanes of one vector, as the 8-row vec_dot ------- */

/* The fp16 scales of block i of 8 rows, as 8 floats. */
TILE __m256 q4_0_scales8(const void *w, size_t ws, int64_t i)
{
	uint16_t h[8];
	UNROLL
	for (int r = 0; r < 8; r++) h[r] = ((const struct block_q4_0 *)ROW(w, ws, r))[i].d;
	__m128i v;
	memcpy(&v, h, sizeof v);
	return _mm256_cvtph_ps(v);
}

/*
 * Block i of 8 rows against RN columns. A row's block sum is an exact
 * int16 (|sum| <= 32*8*127): the 16 pair sums of unsigned nibbles times
 * activations, less 8 times the activations' pair sums, folded by a tree
 * of horizontal adds that leaves row r's sum in lane r; then one fused
 * multiply-add per output into acc, block after block, as vec_dot.
 */
TILE void q4_0_tile8(int64_t nb, const void *w, size_t ws, const void *a, size_t as, float *out, size_t os,
		     const int RN)
{
	__m256 acc[4];
	UNROLL
	for (int c = 0; c < RN; c++) acc[c] = _mm256_setzero_ps();
	const __m256i eight = _mm256_set1_epi8(8);
	for (int64_t i = 0; i < nb; i++) {
		__m256i u[8];
		UNROLL
		for (int r = 0; r < 8; r++) u[r] = nibbles(((const struct block_q4_0 *)ROW(w, ws, r))[i].qs);
		__m256 dw = q4_0_scales8(w, ws, i);
		UNROLL
		for (int c = 0; c < RN; c++) {
			const struct block_q8_0 *b = (const struct block_q8_0 *)ROW(a, as, c) + i;
			__m256i y = _mm256_loadu_si256((const __m256i *)b->qs);
			__m256i y8 = _mm256_maddubs_epi16(eight, y);
			__m256i p[8];
			UNROLL
			for (int r = 0; r < 8; r++) p[r] = _mm256_sub_epi16(_mm256_maddubs_epi16(u[r], y), y8);
			__m256i s = _mm256_hadd_epi16(_mm256_hadd_epi16(_mm256_hadd_epi16(p[0], p[1]), _mm256_hadd_epi16(p[2], p[3])),
						      _mm256_hadd_epi16(_mm256_hadd_epi16(p[4], p[5]), _mm256_hadd_epi16(p[6], p[7])));
			__m128i t = _mm_add_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
			__m256 sum = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(t));
			acc[c] = _mm256_fmadd_ps(sum, _mm256_mul_ps(dw, _mm256_set1_ps(h2f(b->d))), acc[c]);
		}
	}
	UNROLL
	for (int c = 0; c < RN; c++) _mm256_storeu_ps(out + (size_t)c * os, acc[c]);
}

AVX2 void quant_avx2_q4_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			       float *out, size_t os)
{
	int64_t nb = n / QK4_0;
	int r = 0;
	for (; r + 8 <= nr; r += 8) {
		int c = 0;
		for (; c + 2 <= nc; c += 2) q4_0_tile8(nb, ROW(w, ws, r), ws, ROW(a, as, c), as, out + (size_t)c * os + r, os, 2);
		for (; c < nc; c++) q4_0_tile8(nb, ROW(w, ws, r), ws, ROW(a, as, c), as, out + (size_t)c * os + r, os, 1);
	}
	for (; r < nr; r++)
		for (int c = 0; c < nc; c++)
			out[(size_t)c * os + r] = quant_avx2_q4_0_dot(n, ROW(w, ws, r), ROW(a, as, c));
}

/* ---- Q4_0 repacked: 8 rows interleaved, one stream per 8 rows ------------- */

/*
 * The layout of quant_avx2_q4_0_repack8: rows in groups of 8, a group
 * taking the bytes of its 8 rows; per block index i, 144 bytes:
 *   d[8]     the fp16 scales of rows 0..7;
 *   qs[128]  4 chunks of 32 bytes, chunk k holding row r's qs[4k..4k+3]
 *            in bytes 4r..4r+3.
 * A Q4_0 byte qs[j] holds element j (low nibble) and j+16 (high), so the
 * low nibbles of chunk k are elements 4k..4k+3 of every row, one row per
 * 32-bit lane, and its high nibbles elements 16+4k..16+4k+3: multiplied with
 * the 4 matching activations broadcast to all lanes, each lane sums its
 * own row, with no horizontal adds, and the 8 rows stream from one place.
 */
struct q4_0x8 {
	uint16_t d[8];
	uint8_t qs[128];
};
_Static_assert(sizeof(struct q4_0x8) == 8 * sizeof(struct block_q4_0), "Q4_0x8 layout");

void quant_avx2_q4_0_repack8(const void *src, void *dst, int64_t rows, int64_t cols)
{
	int64_t nb = cols / QK4_0;
	size_t rb = (size_t)nb * sizeof(struct block_q4_0);
	for (int64_t g = 0; g < rows / 8; g++) {
		struct q4_0x8 *o = (struct q4_0x8 *)((uint8_t *)dst + (size_t)g * 8 * rb);
		for (int r = 0; r < 8; r++) {
			const struct block_q4_0 *in = (const void *)((const uint8_t *)src + (size_t)(8 * g + r) * rb);
			for (int64_t i = 0; i < nb; i++) {
				o[i].d[r] = in[i].d;
				for (int k = 0; k < 4; k++) memcpy(o[i].qs + 32 * k + 4 * r, in[i].qs + 4 * k, 4);
			}
		}
	}
}

/* 32-bit word j of an activation block's quants (at any alignment), in all 8 lanes */
TILE __m256i yword(const int8_t *y, int j)
{
	int32_t v;
	memcpy(&v, y + 4 * j, 4);
	return _mm256_set1_epi32(v);
}

/*
 * Group block i against RN columns: row r's exact block sum in lane r
 * (sum of unsigned levels times activations, 8 maddubs pairs per int16
 * at most 8*2*15*127, less 8 times the activations' sum), scaled and
 * added with one fused multiply-add, block after block, as vec_dot.
 */
TILE void q4_0x8_tile(int64_t i0, int64_t i1, const struct q4_0x8 *w, const void *a, size_t as, const int32_t *ysum,
		      size_t ys, float *out, size_t os, const int RN)
{
	__m256 acc[4];
	/* a later range of blocks goes on from the sums so far: the chain is the same */
	UNROLL
	for (int c = 0; c < RN; c++) acc[c] = i0 ? _mm256_loadu_ps(out + (size_t)c * os) : _mm256_setzero_ps();
	const __m256i low4 = _mm256_set1_epi8(0x0f);
	for (int64_t i = i0; i < i1; i++) {
		prefetch_ahead(&w[i], sizeof w[i]);
		const struct block_q8_0 *y[4];
		__m256i s16[4];
		UNROLL
		for (int c = 0; c < RN; c++) y[c] = (const struct block_q8_0 *)ROW(a, as, c) + i, s16[c] = _mm256_setzero_si256();
		/* chunk by chunk, so only the columns' sums stay live (the build has 16 vector registers) */
		UNROLL
		for (int k = 0; k < 4; k++) {
			__m256i q = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * k));
			__m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
			UNROLL
			for (int c = 0; c < RN; c++)
				s16[c] = _mm256_add_epi16(s16[c], _mm256_add_epi16(_mm256_maddubs_epi16(lo, yword(y[c]->qs, k)),
										   _mm256_maddubs_epi16(hi, yword(y[c]->qs, 4 + k))));
		}
		__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[i].d));
		UNROLL
		for (int c = 0; c < RN; c++) {
			__m256i sum = _mm256_sub_epi32(_mm256_madd_epi16(s16[c], _mm256_set1_epi16(1)),
						       _mm256_set1_epi32(ysum[(size_t)c * ys + (size_t)(i - i0)]));
			acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dw, _mm256_set1_ps(h2f(y[c]->d))), acc[c]);
		}
	}
	UNROLL
	for (int c = 0; c < RN; c++) _mm256_storeu_ps(out + (size_t)c * os, acc[c]);
}

/* 8 times the sum of the 32 quants of blocks i0..i1 of each column, ys apart */
AVX2 static void q8_0_sums8(const void *a, size_t as, int nc, int64_t i0, int64_t i1, int32_t *ysum, size_t ys)
{
	const __m256i ones8 = _mm256_set1_epi8(1);
	for (int c = 0; c < nc; c++) {
		const struct block_q8_0 *b = ROW(a, as, c);
		for (int64_t i = i0; i < i1; i++) {
			__m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, _mm256_loadu_si256((const __m256i *)b[i].qs)),
						      _mm256_set1_epi16(1));
			__m128i t = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
			t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
			t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
			ysum[(size_t)c * ys + (size_t)(i - i0)] = 8 * _mm_cvtsi128_si32(t);
		}
	}
}

AVX2 void quant_avx2_q4_0x8_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
				 float *out, size_t os)
{
	/*
	 * The activation sums are made once per pass over the rows, for as
	 * many columns and blocks as 16 KiB of stack holds; longer rows go in
	 * ranges of blocks.
	 */
	enum { SUMS = 4096 };
	int32_t ysum[SUMS];
	int64_t nb = n / QK4_0;
	int step = nb >= SUMS ? 1 : (int)(SUMS / nb);
	for (int c0 = 0; c0 < nc; c0 += step) {
		int cn = nc - c0 < step ? nc - c0 : step;
		const uint8_t *ac = (const uint8_t *)a + (size_t)c0 * as;
		int64_t span = SUMS / cn;
		for (int64_t i0 = 0; i0 < nb; i0 += span) {
			int64_t i1 = nb - i0 < span ? nb : i0 + span;
			q8_0_sums8(ac, as, cn, i0, i1, ysum, (size_t)span);
			for (int r = 0; r + 8 <= nr; r += 8) {
				const struct q4_0x8 *g = ROW(w, ws, r);
				float *o = out + (size_t)c0 * os + r;
				int c = 0;
				for (; c + 4 <= cn; c += 4)
					q4_0x8_tile(i0, i1, g, ROW(ac, as, c), as, ysum + (size_t)c * span, (size_t)span,
						    o + (size_t)c * os, os, 4);
				for (; c + 2 <= cn; c += 2)
					q4_0x8_tile(i0, i1, g, ROW(ac, as, c), as, ysum + (size_t)c * span, (size_t)span,
						    o + (size_t)c * os, os, 2);
				for (; c < cn; c++)
					q4_0x8_tile(i0, i1, g, ROW(ac, as, c), as, ysum + (size_t)c * span, (size_t)span,
						    o + (size_t)c * os, os, 1);
			}
		}
	}
}

/* ---- K-quants: one row against up to 4 columns, as their vec_dot ------------ */

TILE void q4_K_tile(int64_t nb, const struct block_q4_K *w, const void *a, size_t as, float *out, size_t os,
		    const int RN)
{
	__m256 acc[4];
	__m128 acc_min[4];
	UNROLL
	for (int c = 0; c < RN; c++) acc[c] = _mm256_setzero_ps(), acc_min[c] = _mm_setzero_ps();
	const __m256i low4 = _mm256_set1_epi8(15);
	for (int64_t i = 0; i < nb; i++) {
		prefetch_ahead(&w[i], sizeof w[i]);
		__m128i sc16, mn16;
		k4_scales(w[i].scales, &sc16, &mn16);
		__m256i sc = _mm256_set_m128i(sc16, sc16);
		float dw = h2f(w[i].d), dminw = h2f(w[i].dmin);
		const struct block_q8_K *y[4];
		__m256i sumi[4];
		UNROLL
		for (int c = 0; c < RN; c++) {
			y[c] = (const struct block_q8_K *)ROW(a, as, c) + i;
			__m128 mins = _mm_cvtepi32_ps(min_products(mn16, y[c]->bsums));
			acc_min[c] = _mm_fmadd_ps(_mm_set1_ps(-y[c]->d * dminw), mins, acc_min[c]);
			sumi[c] = _mm256_setzero_si256();
		}
		UNROLL
		for (int p = 0; p < 4; p++) {
			__m256i q = _mm256_loadu_si256((const __m256i *)w[i].qs + p);
			__m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
			__m256i slo = BCAST16(sc, 2 * p), shi = BCAST16(sc, 2 * p + 1);
			UNROLL
			for (int c = 0; c < RN; c++)
				sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(scaled_dot(lo, y[c]->qs + 64 * p, slo),
										     scaled_dot(hi, y[c]->qs + 64 * p + 32, shi)));
		}
		UNROLL
		for (int c = 0; c < RN; c++)
			acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(y[c]->d * dw), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
	}
	UNROLL
	for (int c = 0; c < RN; c++) out[(size_t)c * os] = hsum8(acc[c]) + hsum4(acc_min[c]);
}

TILE void q6_K_tile(int64_t nb, const struct block_q6_K *w, const void *a, size_t as, float *out, size_t os,
		    const int RN)
{
	__m256 acc[4];
	UNROLL
	for (int c = 0; c < RN; c++) acc[c] = _mm256_setzero_ps();
	for (int64_t i = 0; i < nb; i++) {
		prefetch_ahead(&w[i], sizeof w[i]);
		__m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
		const struct block_q8_K *y[4];
		__m256i sumi[4];
		UNROLL
		for (int c = 0; c < RN; c++) y[c] = (const struct block_q8_K *)ROW(a, as, c) + i, sumi[c] = _mm256_setzero_si256();
		UNROLL
		for (int h = 0; h < 2; h++) {
			__m256i q[4];
			q6_levels(w[i].ql, w[i].qh, h, q);
			UNROLL
			for (int k = 0; k < 4; k++) {
				__m256i scale = q6_scale(sc8, 8 * h + 2 * k);
				UNROLL
				for (int c = 0; c < RN; c++)
					sumi[c] = _mm256_add_epi32(sumi[c], q6_chunk(q[k], y[c]->qs + 128 * h + 32 * k, scale));
			}
		}
		UNROLL
		for (int c = 0; c < RN; c++)
			acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(y[c]->d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
	}
	UNROLL
	for (int c = 0; c < RN; c++) out[(size_t)c * os] = hsum8(acc[c]);
}

/* one row of a K-quant against columns, 4 at a time */
TILE void k_gemm(uint32_t type, int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
		 float *out, size_t os)
{
	int64_t nb = n / QK_K;
	for (int r = 0; r < nr; r++) {
		const void *row = ROW(w, ws, r);
		for (int c = 0; c < nc;) {
			int rn = nc - c >= 4 ? 4 : 1;
			float *o = out + (size_t)c * os + r;
			if (type == GGML_TYPE_Q4_K) {
				if (rn == 4) q4_K_tile(nb, row, ROW(a, as, c), as, o, os, 4);
				else q4_K_tile(nb, row, ROW(a, as, c), as, o, os, 1);
			} else {
				if (rn == 4) q6_K_tile(nb, row, ROW(a, as, c), as, o, os, 4);
				else q6_K_tile(nb, row, ROW(a, as, c), as, o, os, 1);
			}
			c += rn;
		}
	}
}

AVX2 void quant_avx2_q4_K_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			       float *out, size_t os)
{
	k_gemm(GGML_TYPE_Q4_K, n, w, ws, nr, a, as, nc, out, os);
}

AVX2 void quant_avx2_q6_K_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			       float *out, size_t os)
{
	k_gemm(GGML_TYPE_Q6_K, n, w, ws, nr, a, as, nc, out, os);
}
#endif
