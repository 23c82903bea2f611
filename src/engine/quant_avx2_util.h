/*
 * quant_avx2_util.h - small AVX2 helpers shared by the AVX2 kernel files
 * (quant_avx2.c, quant_k_avx2.c). Include only from files that are built
 * for x86-64; every function carries the AVX2 target attribute itself.
 */
#ifndef SAM_ENGINE_QUANT_AVX2_UTIL_H
#define SAM_ENGINE_QUANT_AVX2_UTIL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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

/* The 32 nibbles of qs[16]: low nibbles are elements 0..15, high nibbles 16..31. */
AVX2 static inline __m256i nibbles(const uint8_t *qs)
{
	__m128i q = _mm_loadu_si128((const __m128i *)qs);
	return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
}

/* 0xff in byte j where bit j of the little-endian uint32 at qh is set, else 0. */
AVX2 static inline __m256i bit_bytes(const uint8_t *qh)
{
	uint32_t h;
	memcpy(&h, qh, 4);
	const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
						2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
	const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
	__m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread), bit);
	return _mm256_cmpeq_epi8(b, bit);
}

/* The 32 levels of a Q5_0 block less 16, as signed bytes: the nibble, with 0xf0 or'ed in where bit 4 is clear. */
AVX2 static inline __m256i q5_0_levels(const uint8_t qs[16], const uint8_t qh[4])
{
	return _mm256_or_si256(nibbles(qs), _mm256_andnot_si256(bit_bytes(qh), _mm256_set1_epi8((char)0xf0)));
}

/* ---- K-quant pieces (quant_k_avx2.c, quant_avx2_gemm.c) -------------------- */

/*
 * The 6-bit scales and mins of a Q4_K/Q5_K super-block (packing in
 * sam/quant.h), 4 per 32-bit word: bytes 0-3 of the scales field are a,
 * 4-7 b, 8-11 c. sc 0-3 and mn 0-3 are the low 6 bits of a and b; sc 4-7
 * take the low nibbles of c with the top 2 bits of a as bits 4-5, mn 4-7
 * the high nibbles of c with the top 2 bits of b.
 */
AVX2 static inline void k4_scales(const uint8_t s[12], __m128i *sc16, __m128i *mn16)
{
	uint32_t a, b, c;
	memcpy(&a, s, 4);
	memcpy(&b, s + 4, 4);
	memcpy(&c, s + 8, 4);
	uint32_t sc_lo = a & 0x3f3f3f3f, sc_hi = (c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030);
	uint32_t mn_lo = b & 0x3f3f3f3f, mn_hi = ((c >> 4) & 0x0f0f0f0f) | ((b >> 2) & 0x30303030);
	*sc16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo));
	*mn16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)mn_hi, (int)mn_lo));
}

/*
 * The min term of a Q4_K/Q5_K super-block in 4 int32 lanes: lane k is
 * mn[2k]*S[2k] + mn[2k+1]*S[2k+1], S[j] the sum of the activations of
 * sub-block j (two bsums).
 */
AVX2 static inline __m128i min_products(__m128i mn16, const int16_t bsums[16])
{
	__m256i b = _mm256_loadu_si256((const __m256i *)bsums);
	__m128i s = _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
	return _mm_madd_epi16(mn16, s);
}

/* int16 j of the 8 in v, in all 16 int16 of a vector */
#define BCAST16(v256, j) _mm256_shuffle_epi8((v256), _mm256_set1_epi16((short)((2 * (j) + 1) << 8 | 2 * (j))))

/* sum of scale * w[i] * y[i] over 32 bytes into 8 int32 lanes; w unsigned < 64 */
AVX2 static inline __m256i scaled_dot(__m256i w, const int8_t *y, __m256i scale16)
{
	return _mm256_madd_epi16(scale16, _mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i *)y)));
}

/* The int16 scales of a Q6_K chunk: int8 scale lo of sc8 for bytes 0-15, lo+1 for 16-31. */
AVX2 static inline __m256i q6_scale(__m128i sc8, int lo)
{
	__m128i pick = _mm_set_epi64x((long long)(0x0101010101010101ull * (uint64_t)(lo + 1)),
				      (long long)(0x0101010101010101ull * (uint64_t)lo));
	return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
}

/* 32 Q6_K levels qc in [0, 63] against 32 activations y, scaled: 8 int32 lanes. */
AVX2 static inline __m256i q6_chunk(__m256i qc, const int8_t *y, __m256i scale)
{
	__m256i yv = _mm256_loadu_si256((const __m256i *)y);
	/* (q - 32) * y per pair, without leaving int16 */
	__m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(qc, yv), _mm256_maddubs_epi16(_mm256_set1_epi8(32), yv));
	return _mm256_madd_epi16(scale, p16);
}

/*
 * The 4 chunks of 32 levels of Q6_K half h (elements 128h .. 128h+127):
 * 4 low bits from ql, 2 high bits from qh.
 */
AVX2 static inline void q6_levels(const uint8_t *ql, const uint8_t *qh, int h, __m256i q[4])
{
	const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3);
	__m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
	__m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
	__m256i hb = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
	q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, low2), 4));
	q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
			       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), low2), 4));
	q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
			       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), low2), 4));
	q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
			       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), low2), 4));
}

/* Sum of the 4 lanes into lane 0 (pairs of halves, then the last two). */
AVX2 static inline float hsum4(__m128 v)
{
	v = _mm_add_ps(v, _mm_movehl_ps(v, v));
	v = _mm_add_ss(v, _mm_movehdup_ps(v));
	return _mm_cvtss_f32(v);
}

#endif
