/*
 * quant_k_avx2.c - AVX2+FMA+F16C dot products of the K-quants (Q4_K, Q5_K,
 * Q6_K) with Q8_K activations; compiled for those features only and chosen
 * at run time like quant_avx2.c.
 *
 * Integer sums are exact: maddubs pairs an unsigned weight level (< 64)
 * with a signed activation (|q| <= 127) without saturating, madd applies
 * the sub-block scale, and each of the 8 int32 lanes (4 neighbouring bytes
 * of every 32-byte chunk) stays below 2^24, so its conversion to float is
 * exact too. The float side is llama.cpp's AVX2 arithmetic: a fused
 * multiply-add of d_w*d_a into 8 lanes per super-block, and the min term
 * of Q4_K in 4 lanes (Q5_K: one scalar, also fused: llama.cpp's CPU code
 * is built as GNU C with FMA, where GCC contracts a*b+c), so results agree
 * with llama.cpp's to the last bit.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "engine/quant_avx2_util.h"
#include "engine/quant_simd.h"

/* sub-blocks 2p (low nibbles) and 2p+1 (high nibbles) of a Q4_K super-block, plus extra high bits */
AVX2 static inline __m256i k4_pair(const struct block_q8_K *a, __m256i q, __m256i hi0, __m256i hi1, __m256i sc,
				   int p)
{
	const __m256i low4 = _mm256_set1_epi8(15);
	__m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4), hi0);
	__m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), hi1);
	__m256i s0 = scaled_dot(lo, a->qs + 64 * p, BCAST16(sc, 2 * p));
	__m256i s1 = scaled_dot(hi, a->qs + 64 * p + 32, BCAST16(sc, 2 * p + 1));
	return _mm256_add_epi32(s0, s1);
}

AVX2 float quant_avx2_q4_K_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q4_K *w = wv;
	const struct block_q8_K *a = av;
	const __m256i zero = _mm256_setzero_si256();
	__m256 acc = _mm256_setzero_ps();
	__m128 acc_min = _mm_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		__m128i sc16, mn16;
		k4_scales(w[i].scales, &sc16, &mn16);
		float d = a[i].d * h2f(w[i].d), dmin = -a[i].d * h2f(w[i].dmin);
		__m128 mins = _mm_cvtepi32_ps(min_products(mn16, a[i].bsums));
		acc_min = _mm_fmadd_ps(_mm_set1_ps(dmin), mins, acc_min);
		__m256i sc = _mm256_set_m128i(sc16, sc16);
		const __m256i *q = (const __m256i *)w[i].qs;
		__m256i s01 = _mm256_add_epi32(k4_pair(&a[i], _mm256_loadu_si256(q), zero, zero, sc, 0),
					       k4_pair(&a[i], _mm256_loadu_si256(q + 1), zero, zero, sc, 1));
		__m256i s23 = _mm256_add_epi32(k4_pair(&a[i], _mm256_loadu_si256(q + 2), zero, zero, sc, 2),
					       k4_pair(&a[i], _mm256_loadu_si256(q + 3), zero, zero, sc, 3));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s01, s23)), acc);
	}
	return hsum8(acc) + hsum4(acc_min);
}

/* bit j of each byte of h, moved to bit 4 (16); the mask drops what crossed bytes */
AVX2 static inline __m256i bit_to_16(__m256i h, int j)
{
	__m256i m = j <= 4 ? _mm256_slli_epi16(h, 4 - j) : _mm256_srli_epi16(h, j - 4);
	return _mm256_and_si256(m, _mm256_set1_epi8(16));
}

AVX2 static inline __m256i k5_pair(const struct block_q5_K *w, const struct block_q8_K *a, __m256i qh, __m256i sc,
				   int p)
{
	__m256i q = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * p));
	return k4_pair(a, q, bit_to_16(qh, 2 * p), bit_to_16(qh, 2 * p + 1), sc, p);
}

AVX2 float quant_avx2_q5_K_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q5_K *w = wv;
	const struct block_q8_K *a = av;
	__m256 acc = _mm256_setzero_ps();
	float mins = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		__m128i sc16, mn16;
		k4_scales(w[i].scales, &sc16, &mn16);
		float d = a[i].d * h2f(w[i].d), dmin = -a[i].d * h2f(w[i].dmin);
		__m128i pm = min_products(mn16, a[i].bsums);
		pm = _mm_add_epi32(pm, _mm_unpackhi_epi64(pm, pm));
		pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 1));
		/* fused, as the compiler contracts llama.cpp's summs += dmin * sum */
		mins = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(dmin), _mm_set_ss((float)_mm_cvtsi128_si32(pm)), _mm_set_ss(mins)));
		__m256i sc = _mm256_set_m128i(sc16, sc16);
		/* bit j of qh[l] is bit 4 of element l of sub-block j */
		__m256i qh = _mm256_loadu_si256((const __m256i *)w[i].qh);
		__m256i s01 = _mm256_add_epi32(k5_pair(&w[i], &a[i], qh, sc, 0), k5_pair(&w[i], &a[i], qh, sc, 1));
		__m256i s23 = _mm256_add_epi32(k5_pair(&w[i], &a[i], qh, sc, 2), k5_pair(&w[i], &a[i], qh, sc, 3));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s01, s23)), acc);
	}
	return hsum8(acc) + mins;
}

/* sum over Q6_K half h (128 elements) of the scaled products with y */
AVX2 static inline __m256i q6_half(const struct block_q6_K *w, const int8_t *y, __m128i sc8, int h)
{
	__m256i q[4];
	q6_levels(w->ql, w->qh, h, q);
	__m256i s01 = _mm256_add_epi32(q6_chunk(q[0], y, q6_scale(sc8, 8 * h)), q6_chunk(q[1], y + 32, q6_scale(sc8, 8 * h + 2)));
	__m256i s23 = _mm256_add_epi32(q6_chunk(q[2], y + 64, q6_scale(sc8, 8 * h + 4)),
				       q6_chunk(q[3], y + 96, q6_scale(sc8, 8 * h + 6)));
	return _mm256_add_epi32(s01, s23);
}

AVX2 float quant_avx2_q6_K_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q6_K *w = wv;
	const struct block_q8_K *a = av;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = a[i].d * h2f(w[i].d);
		__m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
		__m256i sumi = _mm256_add_epi32(q6_half(&w[i], a[i].qs, sc8, 0), q6_half(&w[i], a[i].qs + 128, sc8, 1));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
	}
	return hsum8(acc);
}
#endif
