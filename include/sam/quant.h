/*
 * quant.h - tensor element types the engine computes with: conversion to
 * and from float, and dot products, bit-exact with GGUF's block layouts.
 *
 * As in llama.cpp, a matrix-vector product with weights of type T first
 * converts the activation row to T's "activation type" (Q8_0 for Q4_0 and
 * Q8_0 weights, F16 for F16 weights, F32 for F32), then takes dot products
 * of a weight row with that converted row. Reproducing this arithmetic is
 * what makes greedy outputs match llama.cpp token for token.
 */
#ifndef SAM_QUANT_H
#define SAM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "sam/ggml_types.h"

#define QK8_0 32
#define QK4_0 32

/* 34 bytes: 32 int8 weights sharing one fp16 scale */
struct block_q8_0 {
	uint16_t d;
	int8_t qs[QK8_0];
};
/* 18 bytes: element j < 16 is the low nibble of qs[j], element j+16 the high; value (q-8)*d */
struct block_q4_0 {
	uint16_t d;
	uint8_t qs[QK4_0 / 2];
};

_Static_assert(sizeof(struct block_q8_0) == 34, "Q8_0 block layout");
_Static_assert(sizeof(struct block_q4_0) == 18, "Q4_0 block layout");

/* IEEE half precision <-> float; float->half rounds to nearest even. */
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);

struct quant_traits {
	uint32_t act_type; /* type activations are converted to for vec_dot */
	/* n elements (a multiple of the block size) of this type -> float */
	void (*to_float)(const void *src, float *dst, int64_t n);
	/* float -> this type; NULL when the engine never needs to produce it */
	void (*from_float)(const float *src, void *dst, int64_t n);
	/* dot of n elements: w of this type, a of act_type */
	float (*vec_dot)(int64_t n, const void *w, const void *a);
};

/*
 * Traits of a type the engine can compute with, or NULL. The dot products
 * are the fastest this CPU runs (SIMD chosen at run time; SAM_NO_SIMD=1
 * forces the portable ones).
 */
const struct quant_traits *quant_traits(uint32_t type);
/* The portable reference kernels (tests compare the SIMD ones against them). */
const struct quant_traits *quant_traits_ref(uint32_t type);
/* Which kernel set quant_traits uses: "avx2" or "scalar". */
const char *quant_simd_name(void);

/* Bytes of a row of n elements of type (n a multiple of the block size). */
size_t quant_row_size(uint32_t type, int64_t n);

#endif
