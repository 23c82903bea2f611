/*
 * test_quant.c - fp16 conversion, block layouts, and every type's
 * dequantization and dot product against a plain scalar reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sam/quant.h"
#include "test.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
static int have_f16c(void)
{
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
__attribute__((target("f16c"))) static uint16_t hw_fp16(float f)
{
	return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#endif

static uint32_t rng_state = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return (float)(rng_state >> 8) / (float)(1 << 23) - 1.0f;
}

TEST(quant_fp16_roundtrips_every_half)
{
	for (uint32_t h = 0; h < 65536; h++) {
		float f = fp16_to_f32((uint16_t)h);
		if (isnan(f)) {
			CHECK(isnan(fp16_to_f32(f32_to_fp16(f))));
			continue;
		}
		CHECKF(f32_to_fp16(f) == h, "half 0x%04x -> %g -> 0x%04x", h, f, f32_to_fp16(f));
	}
	CHECK(fp16_to_f32(0x3c00) == 1.0f);
	CHECK(fp16_to_f32(0xc000) == -2.0f);
	CHECK(fp16_to_f32(0x0001) == 0x1p-24f);
	CHECK(f32_to_fp16(65520.0f) == 0x7c00); /* rounds to infinity */
	CHECK(f32_to_fp16(65519.0f) == 0x7bff);
	CHECK(f32_to_fp16(1.0f + 0x1p-11f) == 0x3c00); /* tie -> even */
	CHECK(f32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);
	CHECK(f32_to_fp16(0x1p-25f) == 0x0000); /* tie between 0 and the smallest subnormal */
	CHECK(f32_to_fp16(0x1.8p-25f) == 0x0001);
}

TEST(quant_fp16_matches_hardware)
{
#if defined(__x86_64__)
	if (!have_f16c()) test_skip("no F16C on this CPU");
	for (int i = 0; i < 2000000; i++) {
		uint32_t u = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
		float f;
		memcpy(&f, &u, 4);
		if (isnan(f)) continue;
		CHECKF(f32_to_fp16(f) == hw_fp16(f), "%a: 0x%04x vs hardware 0x%04x", (double)f, f32_to_fp16(f),
		       hw_fp16(f));
	}
#else
	test_skip("not x86-64");
#endif
}

/* A hand-made block decodes as GGUF specifies. */
TEST(quant_q4_0_block_layout)
{
	struct block_q4_0 b;
	b.d = f32_to_fp16(0.5f);
	for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
	float out[32];
	quant_traits(GGML_TYPE_Q4_0)->to_float(&b, out, 32);
	for (int j = 0; j < 16; j++) {
		CHECK(out[j] == (float)(j - 8) * 0.5f);
		CHECK(out[j + 16] == (float)(15 - j - 8) * 0.5f);
	}
}

TEST(quant_q8_0_block_layout)
{
	uint8_t raw[34];
	uint16_t d = f32_to_fp16(0.25f);
	memcpy(raw, &d, 2);
	for (int j = 0; j < 32; j++) raw[2 + j] = (uint8_t)(int8_t)(j * 8 - 128);
	float out[32];
	quant_traits(GGML_TYPE_Q8_0)->to_float(raw, out, 32);
	for (int j = 0; j < 32; j++) CHECK(out[j] == (float)(j * 8 - 128) * 0.25f);
}

/* Quantizing activations: scale amax/127 in fp16, error at most half a step. */
TEST(quant_q8_0_quantize_error_bound)
{
	float x[256], y[256];
	struct block_q8_0 q[8];
	for (int i = 0; i < 256; i++) x[i] = frand() * 3.0f;
	x[5] = 0; /* a zero block must not divide by zero */
	for (int i = 64; i < 96; i++) x[i] = 0;
	quant_traits(GGML_TYPE_Q8_0)->from_float(x, q, 256);
	quant_traits(GGML_TYPE_Q8_0)->to_float(q, y, 256);
	for (int b = 0; b < 8; b++) {
		float amax = 0;
		for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
		CHECK(q[b].d == f32_to_fp16(amax / 127.0f));
		for (int j = 0; j < 32; j++)
			/* half a step, plus up to 127 steps of the fp16 rounding of d */
			CHECKF(fabsf(x[b * 32 + j] - y[b * 32 + j]) <= amax / 127.0f * 0.57f + 1e-6f, "block %d elem %d", b, j);
	}
	for (int i = 64; i < 96; i++) CHECK(y[i] == 0.0f);
}

/* Dot products equal the dequantized dot in double, to float precision. */
static void check_dot(uint32_t type, int n)
{
	const struct quant_traits *w = quant_traits(type);
	const struct quant_traits *a = quant_traits(w->act_type);
	float *x = malloc((size_t)n * 4), *wf = malloc((size_t)n * 4), *xw = malloc((size_t)n * 4),
	      *xa = malloc((size_t)n * 4);
	void *wq = malloc(quant_row_size(type, n)), *aq = malloc(quant_row_size(w->act_type, n));
	for (int trial = 0; trial < 20; trial++) {
		for (int i = 0; i < n; i++) {
			wf[i] = frand();
			x[i] = frand() * 4.0f;
		}
		w->from_float(wf, wq, n);
		a->from_float(x, aq, n);
		w->to_float(wq, xw, n);
		a->to_float(aq, xa, n);
		double ref = 0, mag = 0;
		for (int i = 0; i < n; i++) {
			ref += (double)xw[i] * (double)xa[i];
			mag += fabs((double)xw[i] * (double)xa[i]);
		}
		float got = w->vec_dot(n, wq, aq);
		CHECKF(fabs(got - ref) <= 1e-5 * mag + 1e-6, "%s n=%d: dot %.7g, reference %.7g",
		       ggml_type_name(type), n, (double)got, ref);
		/* and the quantization itself stays close to the floats */
		double exact = 0;
		for (int i = 0; i < n; i++) exact += (double)wf[i] * (double)x[i];
		CHECKF(fabs(got - exact) <= 0.05 * mag + 1e-3, "%s: quantized dot too far from the exact one",
		       ggml_type_name(type));
	}
	free(x), free(wf), free(xw), free(xa), free(wq), free(aq);
}

TEST(quant_dot_f32) { check_dot(GGML_TYPE_F32, 100); check_dot(GGML_TYPE_F32, 4096); }
TEST(quant_dot_f16) { check_dot(GGML_TYPE_F16, 100); check_dot(GGML_TYPE_F16, 4096); }
TEST(quant_dot_q8_0) { check_dot(GGML_TYPE_Q8_0, 32); check_dot(GGML_TYPE_Q8_0, 4096); }
TEST(quant_dot_q4_0) { check_dot(GGML_TYPE_Q4_0, 32); check_dot(GGML_TYPE_Q4_0, 4096); }

TEST(quant_traits_cover_engine_types)
{
	CHECK(quant_traits(GGML_TYPE_F32) && quant_traits(GGML_TYPE_F16));
	CHECK(quant_traits(GGML_TYPE_Q8_0) && quant_traits(GGML_TYPE_Q4_0));
	CHECK(quant_traits(GGML_TYPE_Q4_0)->act_type == GGML_TYPE_Q8_0);
	CHECK(quant_traits(GGML_TYPE_F16)->act_type == GGML_TYPE_F16);
	CHECK(quant_traits(9999) == NULL);
	CHECK(quant_row_size(GGML_TYPE_Q4_0, 64) == 36);
	CHECK(quant_row_size(GGML_TYPE_Q8_0, 64) == 68);
}

/* The kernels chosen for this CPU agree with the portable reference. */
static void check_simd(uint32_t type, int n)
{
	const struct quant_traits *w = quant_traits(type), *ref = quant_traits_ref(type);
	const struct quant_traits *a = quant_traits_ref(w->act_type);
	float *wf = malloc((size_t)n * 4), *x = malloc((size_t)n * 4);
	void *wq = malloc(quant_row_size(type, n)), *aq = malloc(quant_row_size(w->act_type, n));
	for (int trial = 0; trial < 50; trial++) {
		for (int i = 0; i < n; i++) {
			wf[i] = frand() * (trial % 5 + 1);
			x[i] = frand() * 10.0f;
		}
		ref->from_float(wf, wq, n);
		a->from_float(x, aq, n);
		float got = w->vec_dot(n, wq, aq), want = ref->vec_dot(n, wq, aq);
		CHECKF(fabsf(got - want) <= 1e-5f * (fabsf(want) + (float)n), "%s (%s) n=%d: %.7g vs reference %.7g",
		       ggml_type_name(type), quant_simd_name(), n, (double)got, (double)want);
	}
	free(wf), free(x), free(wq), free(aq);
}

TEST(quant_simd_matches_reference)
{
	int sizes[] = { 32, 64, 96, 256, 4096, 4128 };
	for (int i = 0; i < 6; i++) {
		check_simd(GGML_TYPE_Q8_0, sizes[i]);
		check_simd(GGML_TYPE_Q4_0, sizes[i]);
		check_simd(GGML_TYPE_F32, sizes[i] + (i % 3)); /* odd lengths exercise the tails */
		check_simd(GGML_TYPE_F16, sizes[i] + (i % 3));
	}
	printf("    kernels: %s\n", quant_simd_name());
}
