/*
 * quant_avx2_util.h - small AVX2 helpers shared by the AVX2 kernel files
 * (quant_avx2.c, quant_k_avx2.c). Include only from files that are built
 * for x86-64; every function carries the AVX2 target attribute itself.
 */
#ifndef SAM_ENGINE_QUANT_AVX2_UTIL_H
#define SAM_ENGINE_QUANT_AVX2_UTIL_H

#include <immintrin.h>
#include <stdint.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Sum of the 8 lanes, in llama.cpp's order (halves, then pairs, then the last two). */
AVX2 static inline float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

AVX2 static inline float h2f(uint16_t h)
{
	return _cvtsh_ss(h);
}

#endif
