/*
 * quant_simd.h - SIMD kernels of quant.c, one file per instruction set,
 * each compiled for its features only and chosen at run time.
 */
#ifndef SAM_ENGINE_QUANT_SIMD_H
#define SAM_ENGINE_QUANT_SIMD_H

#include <stdbool.h>
#include <stdint.h>

#include "sam/quant.h"

/* True when this CPU and OS run AVX2, FMA and F16C code. */
bool quant_avx2_usable(void);
float quant_avx2_q8_0_dot(int64_t n, const void *w, const void *a);
float quant_avx2_q4_0_dot(int64_t n, const void *w, const void *a);
float quant_avx2_f32_dot(int64_t n, const void *w, const void *a);
float quant_avx2_f16_dot(int64_t n, const void *w, const void *a);

#endif
