/*
 * quant_avx2.c - AVX2+FMA+F16C dot products for the types of quant.c,
 * compiled for those features only (target attributes) and chosen at run
 * time, so one binary runs on any x86-64.
 *
 * The block arithmetic is the same as the scalar kernels: exact integer
 * sums per block (maddubs on |w| and sign-adjusted activations, which
 * cannot saturate for values in [-127, 127]), scaled by d_w * d_a in float.
 * Each int32 lane holds 4 neighbouring products and is scaled and summed
 * with fused multiply-adds as llama.cpp's AVX2 kernels do (Q4_0: as its
 * kernels for repacked Q4_0 do, block after block), so the results agree
 * with llama.cpp's to the last bit.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "engine/quant_avx2_util.h"
#include "engine/quant_simd.h"

/* 8 int32 partial sums of x[i]*y[i] over 32 signed bytes. */
AVX2 static inline __m256 dot_i8(__m256i x, __m256i y)
{
	__m256i ax = _mm256_sign_epi8(x, x);
	__m256i sy = _mm256_sign_epi8(y, x);
	__m256i p16 = _mm256_maddubs_epi16(ax, sy);
	__m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
	return _mm256_cvtepi32_ps(p32);
}

AVX2 float quant_avx2_q8_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q8_0 *w = wv, *a = av;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK8_0; i++) {
		__m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
		__m256i x = _mm256_loadu_si256((const __m256i *)w[i].qs);
		__m256i y = _mm256_loadu_si256((const __m256i *)a[i].qs);
		acc = _mm256_fmadd_ps(d, dot_i8(x, y), acc);
	}
	return hsum8(acc);
}

/* 16 int16 pair sums of a Q4_0 x Q8_0 block (|sum| <= 2*8*127) */
AVX2 static inline __m256i q4_0_pairs(const struct block_q4_0 *w, const struct block_q8_0 *a)
{
	__m128i q = _mm_loadu_si128((const __m128i *)w->qs);
	/* low nibbles are elements 0..15, high nibbles 16..31 */
	__m256i x = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
	x = _mm256_sub_epi8(_mm256_and_si256(x, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
	__m256i y = _mm256_loadu_si256((const __m256i *)a->qs);
	return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* fp16 fields of 4 blocks (at stride bytes) as one vector */
AVX2 static inline __m128 four_halves(const uint16_t *d0, size_t stride)
{
	const uint8_t *p = (const uint8_t *)d0;
	uint16_t h[4];
	for (int k = 0; k < 4; k++) memcpy(&h[k], p + k * stride, 2);
	uint64_t v = (uint64_t)h[0] | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 32 | (uint64_t)h[3] << 48;
	return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/*
 * On x86 with AVX2, llama.cpp repacks Q4_0 weights (of tensors with a
 * multiple of 8 rows: all real ones) into 8-row interleaved blocks, and
 * its kernels for them add each block's exact integer sum times d_w*d_a
 * into one float per output with a fused multiply-add, block after block.
 * This reproduces that order. The block sums of 8 blocks come from a tree
 * of 16-bit horizontal adds (a block's sum is at most 32*8*127, which
 * fits), the chain of fused multiply-adds goes through memory.
 */
AVX2 float quant_avx2_q4_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q4_0 *w = wv;
	const struct block_q8_0 *a = av;
	int64_t nb = n / QK4_0, i = 0;
	__m128 acc = _mm_setzero_ps();
	float sumi[8], d[8];
	for (; i + 8 <= nb; i += 8) {
		__m256i s01 = _mm256_hadd_epi16(q4_0_pairs(w + i, a + i), q4_0_pairs(w + i + 1, a + i + 1));
		__m256i s23 = _mm256_hadd_epi16(q4_0_pairs(w + i + 2, a + i + 2), q4_0_pairs(w + i + 3, a + i + 3));
		__m256i s45 = _mm256_hadd_epi16(q4_0_pairs(w + i + 4, a + i + 4), q4_0_pairs(w + i + 5, a + i + 5));
		__m256i s67 = _mm256_hadd_epi16(q4_0_pairs(w + i + 6, a + i + 6), q4_0_pairs(w + i + 7, a + i + 7));
		__m256i s = _mm256_hadd_epi16(_mm256_hadd_epi16(s01, s23), _mm256_hadd_epi16(s45, s67));
		/* each 128-bit half now holds blocks 0..7 over its 16 bytes */
		__m128i t = _mm_add_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
		_mm256_storeu_ps(sumi, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(t)));
		__m256 dw = _mm256_set_m128(four_halves(&w[i + 4].d, sizeof *w), four_halves(&w[i].d, sizeof *w));
		__m256 da = _mm256_set_m128(four_halves(&a[i + 4].d, sizeof *a), four_halves(&a[i].d, sizeof *a));
		_mm256_storeu_ps(d, _mm256_mul_ps(dw, da));
		for (int k = 0; k < 8; k++) acc = _mm_fmadd_ss(_mm_load_ss(&sumi[k]), _mm_load_ss(&d[k]), acc);
	}
	for (; i < nb; i++) {
		__m256i p = _mm256_madd_epi16(q4_0_pairs(w + i, a + i), _mm256_set1_epi16(1));
		__m128i t = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
		t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
		t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
		acc = _mm_fmadd_ss(_mm_cvtepi32_ps(t), _mm_set_ss(h2f(w[i].d) * h2f(a[i].d)), acc);
	}
	return _mm_cvtss_f32(acc);
}

/* 8 int32 partial sums (as floats) of x[i]*y[i], x unsigned bytes < 128, y signed. */
AVX2 static inline __m256 dot_u8(__m256i x, __m256i y)
{
	__m256i p16 = _mm256_maddubs_epi16(x, y);
	return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

AVX2 float quant_avx2_q4_1_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q4_1 *w = wv;
	const struct block_q8_1 *a = av;
	__m256 acc = _mm256_setzero_ps();
	float mins = 0.0f;
	for (int64_t i = 0; i < n / QK4_1; i++) {
		__m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
		mins += h2f(w[i].m) * h2f(a[i].s);
		__m256i y = _mm256_loadu_si256((const __m256i *)a[i].qs);
		acc = _mm256_fmadd_ps(d, dot_u8(nibbles(w[i].qs), y), acc);
	}
	return hsum8(acc) + mins;
}

/* 8 lanes of a Q5_0 x Q8_0 block, as floats */
AVX2 static inline __m256 q5_0_block(const struct block_q5_0 *w, const struct block_q8_0 *a)
{
	return dot_i8(q5_0_levels(w->qs, w->qh), _mm256_loadu_si256((const __m256i *)a->qs));
}

AVX2 float quant_avx2_q5_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q5_0 *w = wv;
	const struct block_q8_0 *a = av;
	__m256 acc = _mm256_setzero_ps();
	int64_t nb = n / QK5_0, i = 0;
	for (; i + 2 <= nb; i += 2) { /* unrolled by hand: the build is -O2 */
		__m256 q0 = q5_0_block(w + i, a + i), q1 = q5_0_block(w + i + 1, a + i + 1);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), q0, acc);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d)), q1, acc);
	}
	for (; i < nb; i++) acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), q5_0_block(w + i, a + i), acc);
	return hsum8(acc);
}

AVX2 float quant_avx2_q5_1_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q5_1 *w = wv;
	const struct block_q8_1 *a = av;
	__m256 acc = _mm256_setzero_ps();
	float mins = 0.0f;
	for (int64_t i = 0; i < n / QK5_1; i++) {
		__m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
		mins += h2f(w[i].m) * h2f(a[i].s);
		__m256i x = _mm256_or_si256(nibbles(w[i].qs), _mm256_and_si256(bit_bytes(w[i].qh), _mm256_set1_epi8(0x10)));
		__m256i y = _mm256_loadu_si256((const __m256i *)a[i].qs);
		acc = _mm256_fmadd_ps(dot_u8(x, y), d, acc);
	}
	return hsum8(acc) + mins;
}

/* 8 bf16 -> float: the bits go to the top half of each lane. */
AVX2 static inline __m256 bf16x8(const uint16_t *p)
{
	__m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* The summation order of quant.c's bf16_dot (products are exact, so mul+add = fma). */
AVX2 float quant_avx2_bf16_dot(int64_t n, const void *wv, const void *av)
{
	const uint16_t *w = wv, *a = av;
	__m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		c0 = _mm256_add_ps(_mm256_mul_ps(bf16x8(w + i), bf16x8(a + i)), c0);
		c1 = _mm256_add_ps(_mm256_mul_ps(bf16x8(w + i + 8), bf16x8(a + i + 8)), c1);
		c2 = _mm256_add_ps(_mm256_mul_ps(bf16x8(w + i + 16), bf16x8(a + i + 16)), c2);
		c3 = _mm256_add_ps(_mm256_mul_ps(bf16x8(w + i + 24), bf16x8(a + i + 24)), c3);
	}
	double s = (double)hsum8(_mm256_add_ps(_mm256_add_ps(c0, c2), _mm256_add_ps(c1, c3)));
	for (; i < n; i++) s += (double)(bf16_to_f32(w[i]) * bf16_to_f32(a[i]));
	return (float)s;
}

AVX2 float quant_avx2_f32_dot(int64_t n, const void *wv, const void *av)
{
	const float *w = wv, *a = av;
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(a + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(a + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(a + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), s0);
	float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
	for (; i < n; i++) s += w[i] * a[i];
	return s;
}

AVX2 float quant_avx2_f16_dot(int64_t n, const void *wv, const void *av)
{
	const uint16_t *w = wv, *a = av;
	__m256 s0 = _mm256_setzero_ps(), s1 = s0;
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
		__m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
		__m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
		__m256 a1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i + 8)));
		s0 = _mm256_fmadd_ps(w0, a0, s0);
		s1 = _mm256_fmadd_ps(w1, a1, s1);
	}
	float s = hsum8(_mm256_add_ps(s0, s1));
	for (; i < n; i++) s += h2f(w[i]) * h2f(a[i]);
	return s;
}

/*
 * Activations to Q8_0 as quant.c's q8_0_from_float, byte for byte: amax of
 * the block, d = amax/127 and the multiplier 127/amax in float, products
 * rounded to nearest even (the default mode, as nearbyintf).
 */
AVX2 void quant_avx2_q8_0_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q8_0 *b = dst;
	const __m256 sign = _mm256_set1_ps(-0.0f);
	for (int64_t i = 0; i < n / QK8_0; i++) {
		const float *x = src + i * QK8_0;
		__m256 v[4];
		for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
		__m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
					 _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
		__m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
		h = _mm_max_ps(h, _mm_movehl_ps(h, h));
		h = _mm_max_ss(h, _mm_movehdup_ps(h));
		float amax = _mm_cvtss_f32(h);
		float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		b[i].d = (uint16_t)_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT);
		__m256 vid = _mm256_set1_ps(id);
		__m256i q[4];
		for (int k = 0; k < 4; k++)
			q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		/* pack 32 int32 to 32 int8; the packs interleave 128-bit halves, the permute restores the order */
		__m256i p16 = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
		__m256i p8 = _mm256_packs_epi16(p16, p16b);
		p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)b[i].qs, p8);
	}
}

bool quant_avx2_usable(void)
{
	unsigned a, b, c, d;
	__asm__ __volatile__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	bool fma = c & (1u << 12), f16c = c & (1u << 29), osxsave = c & (1u << 27), avx = c & (1u << 28);
	if (!(fma && f16c && osxsave && avx)) return false;
	unsigned xlo, xhi;
	__asm__ __volatile__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
	if ((xlo & 6) != 6) return false; /* the OS saves YMM state */
	__asm__ __volatile__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
	return b & (1u << 5); /* AVX2 */
}
#else
#include "engine/quant_simd.h"
bool quant_avx2_usable(void)
{
	return false;
}
#endif
