/*
 * quant.h - tensor element types the engine computes with: conversion to
 * and from float, and dot products, bit-exact with GGUF's block layouts.
 *
 * As in llama.cpp, a matrix-vector product with weights of type T first
 * converts the activation row to T's "activation type" (llama.cpp's
 * vec_dot_type), then takes dot products of a weight row with that
 * converted row:
 *
 *   weights                      activations
 *   F32                          F32
 *   F16, BF16                    F16, BF16 (the same type)
 *   Q4_0, Q5_0, Q8_0             Q8_0
 *   Q4_1, Q5_1                   Q8_1 (Q8_0 plus s = d * sum of the quants)
 *   Q4_K, Q5_K, Q6_K             Q8_K (256 int8 with a float scale and sums of 16)
 *
 * Reproducing this arithmetic is what makes greedy outputs match llama.cpp
 * token for token. The weight types' quantize functions are llama.cpp's
 * reference quantizers (quantize_row_*_ref, no importance matrix), so a
 * tensor they write is byte-identical to what llama-quantize writes.
 */
#ifndef SAM_QUANT_H
#define SAM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "sam/ggml_types.h"

#define QK8_0 32
#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_1 32
#define QK_K 256 /* elements of a K-quant super-block */
#define K_SCALE_SIZE 12

/*
 * The 32-element blocks. Nibble layout (all 4- and 5-bit types): element
 * j < 16 is the low nibble of qs[j], element j+16 the high nibble. For the
 * 5-bit types, bit j of the little-endian uint32 qh is bit 4 of element j.
 * fp16 fields are IEEE half bit patterns.
 */

/* 34 bytes: 32 int8 weights sharing one fp16 scale; value q*d */
struct block_q8_0 {
	uint16_t d;
	int8_t qs[QK8_0];
};
/* 18 bytes: value (q-8)*d, q in [0, 15] */
struct block_q4_0 {
	uint16_t d;
	uint8_t qs[QK4_0 / 2];
};
/* 20 bytes: value q*d + m, q in [0, 15] */
struct block_q4_1 {
	uint16_t d, m;
	uint8_t qs[QK4_1 / 2];
};
/* 22 bytes: value (q-16)*d, q in [0, 31] */
struct block_q5_0 {
	uint16_t d;
	uint8_t qh[4];
	uint8_t qs[QK5_0 / 2];
};
/* 24 bytes: value q*d + m, q in [0, 31] */
struct block_q5_1 {
	uint16_t d, m;
	uint8_t qh[4];
	uint8_t qs[QK5_1 / 2];
};
/* 36 bytes: value q*d; s = d * (sum of qs), the activation type of Q4_1/Q5_1 */
struct block_q8_1 {
	uint16_t d, s;
	int8_t qs[QK8_1];
};

/*
 * The K-quant super-blocks of 256 elements.
 *
 * Q4_K / Q5_K: 8 sub-blocks of 32, sub-block j has a 6-bit scale sc[j] and
 * a 6-bit min mn[j]; value d*sc[j]*q - dmin*mn[j]. scales[] packs them:
 * for j < 4, sc[j] = scales[j] & 63 and mn[j] = scales[j+4] & 63; for
 * j >= 4, sc[j] = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4 and
 * mn[j] = (scales[j+4] >> 4) | (scales[j] >> 6) << 4. Sub-blocks 2p and
 * 2p+1 share qs[32p .. 32p+31]: 2p in the low nibbles, 2p+1 in the high.
 * Q5_K adds bit 4 of element l of sub-block j as bit j of qh[l].
 *
 * Q6_K: 16 sub-blocks of 16 with int8 scales; value d*scales[e/16]*(q-32),
 * q in [0, 63]. Each half h (128 elements) has ql[64h .. 64h+63] and
 * qh[32h .. 32h+31]; for l < 32 its elements l, l+32, l+64, l+96 have the
 * low 4 bits in ql[l] & 15, ql[l+32] & 15, ql[l] >> 4, ql[l+32] >> 4 and
 * the high 2 bits in bits 0-1, 2-3, 4-5, 6-7 of qh[l].
 */
struct block_q4_K {
	uint16_t d, dmin;
	uint8_t scales[K_SCALE_SIZE];
	uint8_t qs[QK_K / 2];
};
struct block_q5_K {
	uint16_t d, dmin;
	uint8_t scales[K_SCALE_SIZE];
	uint8_t qh[QK_K / 8];
	uint8_t qs[QK_K / 2];
};
struct block_q6_K {
	uint8_t ql[QK_K / 2];
	uint8_t qh[QK_K / 4];
	int8_t scales[QK_K / 16];
	uint16_t d;
};
/* Activations for K-quant weights (never stored in files): value q*d, bsums[k] = sum of qs[16k .. 16k+15] */
struct block_q8_K {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];
};

_Static_assert(sizeof(struct block_q8_0) == 34, "Q8_0 block layout");
_Static_assert(sizeof(struct block_q4_0) == 18, "Q4_0 block layout");
_Static_assert(sizeof(struct block_q4_1) == 20, "Q4_1 block layout");
_Static_assert(sizeof(struct block_q5_0) == 22, "Q5_0 block layout");
_Static_assert(sizeof(struct block_q5_1) == 24, "Q5_1 block layout");
_Static_assert(sizeof(struct block_q8_1) == 36, "Q8_1 block layout");
_Static_assert(sizeof(struct block_q4_K) == 144, "Q4_K block layout");
_Static_assert(sizeof(struct block_q5_K) == 176, "Q5_K block layout");
_Static_assert(sizeof(struct block_q6_K) == 210, "Q6_K block layout");
_Static_assert(sizeof(struct block_q8_K) == 292, "Q8_K block layout");

/* IEEE half precision <-> float; float->half rounds to nearest even. */
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
/* bfloat16 <-> float; float->bf16 rounds to nearest even, NaNs stay (quiet) NaNs. */
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

struct quant_traits {
	uint32_t act_type; /* type activations are converted to for vec_dot */
	/* n elements (a multiple of the block size) of this type -> float */
	void (*to_float)(const void *src, float *dst, int64_t n);
	/* float -> this type; NULL when the engine never needs to produce it */
	void (*from_float)(const float *src, void *dst, int64_t n);
	/* dot of n elements: w of this type, a of act_type */
	float (*vec_dot)(int64_t n, const void *w, const void *a);
	/*
	 * float -> this type as llama-quantize writes it into files (llama.cpp's
	 * quantize_row_*_ref without an importance matrix), byte for byte; NULL
	 * for the activation-only types Q8_1 and Q8_K. The same function as
	 * from_float except for Q8_0, whose from_float is the activation
	 * quantizer of llama.cpp's CPU backend (multiplier 127/amax, ties to
	 * even) where files use 1/d and ties away from zero.
	 */
	void (*quantize)(const float *src, void *dst, int64_t n);
	/*
	 * A tile of a matrix product, NULL where the type has none (then loop
	 * over vec_dot): for r < nr and c < nc,
	 *   out[c*os + r] = vec_dot(n, w + r*ws, a + c*as),
	 * bit for bit, with w rows ws bytes apart and activation columns as
	 * bytes apart. Loading each weight block once for several columns is
	 * what makes prompts and batched decoding faster than one dot product
	 * at a time.
	 */
	void (*gemm)(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc, float *out,
		     size_t os);
	/*
	 * Optional, both or neither: repack rewrites a whole [rows][cols]
	 * tensor (rows a multiple of 8) into a layout of the same size that
	 * gemm_packed reads faster; gemm_packed is gemm for such data, with
	 * w at a multiple of 8 rows, ws still the bytes of one original row,
	 * nr a multiple of 8, and the same results bit for bit. Packed data
	 * is for gemm_packed only (no row of it is a row of the type).
	 */
	void (*repack)(const void *src, void *dst, int64_t rows, int64_t cols);
	void (*gemm_packed)(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc,
			    float *out, size_t os);
};

/*
 * Traits of a type the engine can compute with, or NULL. The dot products
 * are the fastest this CPU runs (SIMD chosen at run time; SAM_NO_SIMD=1
 * forces the portable ones).
 */
const struct quant_traits *quant_traits(uint32_t type);
/* The portable reference kernels (tests compare the SIMD ones against them). */
const struct quant_traits *quant_traits_ref(uint32_t type);
/* Which kernel set quant_traits uses: "avx2", "neon", "neon-dotprod" or "scalar". */
const char *quant_simd_name(void);

/* Bytes of a row of n elements of type (n a multiple of the block size). */
size_t quant_row_size(uint32_t type, int64_t n);

#endif
