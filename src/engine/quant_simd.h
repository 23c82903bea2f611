/*
 * quant_simd.h - the kernels behind quant.c's tables: the portable
 * K-quant kernels of quant_k.c, and the SIMD dot products, one file per
 * instruction set, each compiled for its features only and chosen at run
 * time. All follow the contracts of struct quant_traits (sam/quant.h).
 */
#ifndef SAM_ENGINE_QUANT_SIMD_H
#define SAM_ENGINE_QUANT_SIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/quant.h"

/* ---- portable K-quants (quant_k.c) ---------------------------------------- */

void quant_q4_K_to_float(const void *src, float *dst, int64_t n);
void quant_q4_K_from_float(const float *src, void *dst, int64_t n);
float quant_q4_K_dot(int64_t n, const void *w, const void *a);
void quant_q5_K_to_float(const void *src, float *dst, int64_t n);
void quant_q5_K_from_float(const float *src, void *dst, int64_t n);
float quant_q5_K_dot(int64_t n, const void *w, const void *a);
void quant_q6_K_to_float(const void *src, float *dst, int64_t n);
void quant_q6_K_from_float(const float *src, void *dst, int64_t n);
float quant_q6_K_dot(int64_t n, const void *w, const void *a);
void quant_q8_K_to_float(const void *src, float *dst, int64_t n);
void quant_q8_K_from_float(const float *src, void *dst, int64_t n);
float quant_q8_K_dot(int64_t n, const void *w, const void *a);

/*
 * The 6-bit scales and mins of a Q4_K/Q5_K super-block (the packing is
 * described in sam/quant.h).
 */
static inline void quant_k4_unpack(const uint8_t s[K_SCALE_SIZE], uint8_t sc[8], uint8_t mn[8])
{
	for (int j = 0; j < 4; j++) {
		sc[j] = s[j] & 63;
		mn[j] = s[j + 4] & 63;
		sc[j + 4] = (uint8_t)((s[j + 8] & 15) | ((s[j] >> 6) << 4));
		mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
	}
}

/*
 * The sum of 8 lanes in the order of the AVX2 kernels' horizontal add
 * (lane k with k+4, then k with k+2, then 0 with 1), so that the portable
 * kernels, which keep the same 8 lanes, give the same float.
 */
static inline float quant_hsum8(const float v[8])
{
	float s0 = v[0] + v[4], s1 = v[1] + v[5], s2 = v[2] + v[6], s3 = v[3] + v[7];
	return (s0 + s2) + (s1 + s3);
}

/* lane[k] = sum of x[j]*y[j] over j = 4k .. 4k+3: 8 lanes over 32 elements */
static inline void quant_lanes8(const int8_t *x, const int8_t *y, int32_t lane[8])
{
	for (int k = 0; k < 8; k++)
		lane[k] = x[4 * k] * y[4 * k] + x[4 * k + 1] * y[4 * k + 1] + x[4 * k + 2] * y[4 * k + 2] +
			  x[4 * k + 3] * y[4 * k + 3];
}

/* ---- AVX2 + FMA + F16C (quant_avx2.c, quant_k_avx2.c) ---------------------- */

/* True when this CPU and OS run AVX2, FMA and F16C code. */
bool quant_avx2_usable(void);
void quant_avx2_q8_0_from_float(const float *src, void *dst, int64_t n);
float quant_avx2_q8_0_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q4_0_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q4_1_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q5_0_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q5_1_dot(int64_t n, const void *w, const void *a);
float quant_avx2_f32_dot(int64_t n, const void *w, const void *a);
float quant_avx2_f16_dot(int64_t n, const void *w, const void *a);
float quant_avx2_bf16_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q4_K_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q5_K_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q6_K_dot(int64_t n, const void *w, const void *a);

/*
 * Tiles of matrix products (quant_avx2_gemm.c), the contract of
 * quant_traits.gemm: results bit-identical to the type's AVX2 vec_dot.
 */
void quant_avx2_q8_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			  float *out, size_t os);
void quant_avx2_q5_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			  float *out, size_t os);
void quant_avx2_q4_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			  float *out, size_t os);
/* Q4_0 in groups of 8 interleaved rows (layout in quant_avx2_gemm.c); rows % 8 == 0 */
void quant_avx2_q4_0_repack8(const void *src, void *dst, int64_t rows, int64_t cols);
void quant_avx2_q4_0x8_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			    float *out, size_t os);
void quant_avx2_q4_K_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			  float *out, size_t os);
void quant_avx2_q6_K_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			  float *out, size_t os);

/* ---- arm64 NEON (quant_neon.c; arm64 builds only) ---------------------------- */

/* True when this CPU runs the ARMv8.2 dot-product instructions (ASIMD itself is baseline). */
bool quant_neon_dotprod_usable(void);
/*
 * Put the NEON vec_dot of every type it has, and the Q8_0/Q4_0 gemm tiles,
 * into traits (indexed by type); with dotprod, the set that uses the
 * dot-product instructions (same floats, bit for bit).
 */
void quant_neon_install(struct quant_traits traits[GGML_TYPE_COUNT], bool dotprod);

#endif
