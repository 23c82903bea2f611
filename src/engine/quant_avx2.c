/*
 * quant_avx2.c - AVX2+FMA+F16C dot products for the types of quant.c,
 * compiled for those features only (target attributes) and chosen at run
 * time, so one binary runs on any x86-64.
 *
 * The block arithmetic is the same as the scalar kernels: exact integer
 * sums per block (maddubs on |w| and sign-adjusted activations, which
 * cannot saturate for values in [-127, 127]), scaled by d_w * d_a in float.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "engine/quant_simd.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* 8 int32 partial sums of x[i]*y[i] over 32 signed bytes. */
AVX2 static inline __m256 dot_i8(__m256i x, __m256i y)
{
	__m256i ax = _mm256_sign_epi8(x, x);
	__m256i sy = _mm256_sign_epi8(y, x);
	__m256i p16 = _mm256_maddubs_epi16(ax, sy);
	__m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
	return _mm256_cvtepi32_ps(p32);
}

AVX2 static inline float h2f(uint16_t h)
{
	return _cvtsh_ss(h);
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
	return hsum(acc);
}

AVX2 float quant_avx2_q4_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q4_0 *w = wv;
	const struct block_q8_0 *a = av;
	const __m256i low = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK4_0; i++) {
		__m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
		__m128i q = _mm_loadu_si128((const __m128i *)w[i].qs);
		/* low nibbles are elements 0..15, high nibbles 16..31 */
		__m256i x = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
		x = _mm256_sub_epi8(_mm256_and_si256(x, low), eight);
		__m256i y = _mm256_loadu_si256((const __m256i *)a[i].qs);
		acc = _mm256_fmadd_ps(d, dot_i8(x, y), acc);
	}
	return hsum(acc);
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
	float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
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
	float s = hsum(_mm256_add_ps(s0, s1));
	for (; i < n; i++) s += h2f(w[i]) * h2f(a[i]);
	return s;
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
