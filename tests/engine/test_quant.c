/*
 * test_quant.c - fp16/bf16 conversion, block layouts, and every type's
 * quantization, dequantization and dot product against a plain scalar
 * reference; the quantizers against llama-quantize's output in the
 * fixture models, and the SIMD kernels against the portable ones.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sam/core.h"
#include "sam/gguf.h"
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
		/*
		 * Q4_1/Q5_1 take the min term from Q8_1's s = d * (sum of the quants),
		 * rounded to fp16 and computed from d before its own rounding: allow
		 * that rounding (as llama.cpp has it too).
		 */
		double slack = 0;
		if (w->act_type == GGML_TYPE_Q8_1)
			for (int b = 0; b < n / 32; b++) {
				const struct block_q8_1 *ab = (const struct block_q8_1 *)aq + b;
				uint16_t m = type == GGML_TYPE_Q4_1 ? ((const struct block_q4_1 *)wq)[b].m
								   : ((const struct block_q5_1 *)wq)[b].m;
				double sum = 0;
				for (int j = 0; j < 32; j++) sum += abs(ab->qs[j]);
				slack += fabs(fp16_to_f32(m)) * (fabs(fp16_to_f32(ab->s)) + fp16_to_f32(ab->d) * sum) * 1e-3;
			}
		CHECKF(fabs(got - ref) <= 1e-5 * mag + 1e-6 + slack, "%s n=%d: dot %.7g, reference %.7g",
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
TEST(quant_dot_bf16) { check_dot(GGML_TYPE_BF16, 100); check_dot(GGML_TYPE_BF16, 4096); }
TEST(quant_dot_q4_1) { check_dot(GGML_TYPE_Q4_1, 32); check_dot(GGML_TYPE_Q4_1, 4096); }
TEST(quant_dot_q5_0) { check_dot(GGML_TYPE_Q5_0, 32); check_dot(GGML_TYPE_Q5_0, 4096); }
TEST(quant_dot_q5_1) { check_dot(GGML_TYPE_Q5_1, 32); check_dot(GGML_TYPE_Q5_1, 4096); }
TEST(quant_dot_q4_K) { check_dot(GGML_TYPE_Q4_K, 256); check_dot(GGML_TYPE_Q4_K, 4096); }
TEST(quant_dot_q5_K) { check_dot(GGML_TYPE_Q5_K, 256); check_dot(GGML_TYPE_Q5_K, 4096); }
TEST(quant_dot_q6_K) { check_dot(GGML_TYPE_Q6_K, 256); check_dot(GGML_TYPE_Q6_K, 4096); }

TEST(quant_traits_cover_engine_types)
{
	CHECK(quant_traits(GGML_TYPE_F32) && quant_traits(GGML_TYPE_F16));
	CHECK(quant_traits(GGML_TYPE_Q8_0) && quant_traits(GGML_TYPE_Q4_0));
	CHECK(quant_traits(GGML_TYPE_Q4_0)->act_type == GGML_TYPE_Q8_0);
	CHECK(quant_traits(GGML_TYPE_F16)->act_type == GGML_TYPE_F16);
	CHECK(quant_traits(9999) == NULL);
	CHECK(quant_traits(GGML_TYPE_Q2_K) == NULL); /* not implemented */
	CHECK(quant_row_size(GGML_TYPE_Q4_0, 64) == 36);
	CHECK(quant_row_size(GGML_TYPE_Q8_0, 64) == 68);
	/* llama.cpp's vec_dot_type of each weight type */
	static const uint32_t pairs[][2] = {
		{ GGML_TYPE_BF16, GGML_TYPE_BF16 }, { GGML_TYPE_Q4_1, GGML_TYPE_Q8_1 }, { GGML_TYPE_Q5_0, GGML_TYPE_Q8_0 },
		{ GGML_TYPE_Q5_1, GGML_TYPE_Q8_1 }, { GGML_TYPE_Q4_K, GGML_TYPE_Q8_K }, { GGML_TYPE_Q5_K, GGML_TYPE_Q8_K },
		{ GGML_TYPE_Q6_K, GGML_TYPE_Q8_K },
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		const struct quant_traits *t = quant_traits(pairs[i][0]);
		CHECKF(t && t->act_type == pairs[i][1], "%s", ggml_type_name(pairs[i][0]));
		CHECK(quant_traits(t->act_type) && quant_traits(t->act_type)->from_float);
	}
	CHECK(quant_row_size(GGML_TYPE_Q4_1, 32) == sizeof(struct block_q4_1));
	CHECK(quant_row_size(GGML_TYPE_Q5_0, 32) == sizeof(struct block_q5_0));
	CHECK(quant_row_size(GGML_TYPE_Q5_1, 32) == sizeof(struct block_q5_1));
	CHECK(quant_row_size(GGML_TYPE_Q8_1, 32) == sizeof(struct block_q8_1));
	CHECK(quant_row_size(GGML_TYPE_Q4_K, 256) == sizeof(struct block_q4_K));
	CHECK(quant_row_size(GGML_TYPE_Q5_K, 256) == sizeof(struct block_q5_K));
	CHECK(quant_row_size(GGML_TYPE_Q6_K, 256) == sizeof(struct block_q6_K));
	CHECK(quant_row_size(GGML_TYPE_Q8_K, 256) == sizeof(struct block_q8_K));
	CHECK(quant_row_size(GGML_TYPE_BF16, 10) == 20);
}

/*
 * The kernels chosen for this CPU agree with the portable reference: to the
 * bit for the quantized types and BF16 (both keep llama.cpp's x86 order of
 * float operations), closely for F32 and F16.
 */
static void check_simd(uint32_t type, int n)
{
	bool exact = type != GGML_TYPE_F32 && type != GGML_TYPE_F16;
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
		if (exact)
			CHECKF(!memcmp(&got, &want, 4), "%s (%s) n=%d: %.9g vs reference %.9g, not bit-identical",
			       ggml_type_name(type), quant_simd_name(), n, (double)got, (double)want);
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
		check_simd(GGML_TYPE_Q4_1, sizes[i]);
		check_simd(GGML_TYPE_Q5_0, sizes[i]);
		check_simd(GGML_TYPE_Q5_1, sizes[i]);
		check_simd(GGML_TYPE_F32, sizes[i] + (i % 3)); /* odd lengths exercise the tails */
		check_simd(GGML_TYPE_F16, sizes[i] + (i % 3));
		check_simd(GGML_TYPE_BF16, sizes[i] + (i % 3));
	}
	int ksizes[] = { 256, 512, 768, 4096 };
	for (int i = 0; i < 4; i++) {
		check_simd(GGML_TYPE_Q4_K, ksizes[i]);
		check_simd(GGML_TYPE_Q5_K, ksizes[i]);
		check_simd(GGML_TYPE_Q6_K, ksizes[i]);
	}
	printf("    kernels: %s\n", quant_simd_name());
}

/* ---- bf16 ------------------------------------------------------------------ */

TEST(quant_bf16_conversion)
{
	CHECK(f32_to_bf16(1.0f) == 0x3f80);
	CHECK(bf16_to_f32(0xc000) == -2.0f);
	CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);     /* tie -> even (down) */
	CHECK(f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82); /* tie -> even (up) */
	CHECK(f32_to_bf16(1.0f + 0x1.8p-8f) == 0x3f81);   /* above the tie */
	CHECK(f32_to_bf16(INFINITY) == 0x7f80);
	CHECK(f32_to_bf16(3.4e38f) == 0x7f80); /* rounds up to infinity */
	CHECK(isnan(bf16_to_f32(f32_to_bf16(NAN))));
	uint32_t snan = 0x7f800001; /* a signalling NaN whose payload would truncate to infinity */
	float f;
	memcpy(&f, &snan, 4);
	CHECK(f32_to_bf16(f) == 0x7fc0);
	for (uint32_t h = 0; h < 65536; h++) {
		float v = bf16_to_f32((uint16_t)h);
		if (!isnan(v)) CHECKF(f32_to_bf16(v) == h, "bf16 0x%04x", h);
	}
}

/* ---- block layouts of the new types ------------------------------------------- */

static void put_fp16(uint16_t *dst, float v)
{
	*dst = f32_to_fp16(v);
}

TEST(quant_q4_1_block_layout)
{
	struct block_q4_1 b;
	put_fp16(&b.d, 0.5f);
	put_fp16(&b.m, -3.0f);
	for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
	float out[32];
	quant_traits(GGML_TYPE_Q4_1)->to_float(&b, out, 32);
	for (int j = 0; j < 16; j++) {
		CHECK(out[j] == (float)j * 0.5f - 3.0f);
		CHECK(out[j + 16] == (float)(15 - j) * 0.5f - 3.0f);
	}
}

/* Q5_0/Q5_1: bit j of the little-endian qh word is bit 4 of element j. */
TEST(quant_q5_block_layout)
{
	uint8_t raw[24];
	uint16_t d = f32_to_fp16(0.25f), m = f32_to_fp16(1.5f);
	uint32_t qh = 0x80000001u | 0x00010000u | 0x00000100u; /* elements 0, 8, 16, 31 */
	memcpy(raw, &d, 2);
	memcpy(raw + 2, &qh, 4);
	for (int j = 0; j < 16; j++) raw[6 + j] = (uint8_t)(j | ((15 - j) << 4));
	float out[32];
	quant_traits(GGML_TYPE_Q5_0)->to_float(raw, out, 32);
	for (int j = 0; j < 32; j++) {
		int nib = j < 16 ? j : 15 - (j - 16);
		int hi = (qh >> j) & 1;
		CHECKF(out[j] == (float)((nib | hi << 4) - 16) * 0.25f, "Q5_0 element %d: %g", j, out[j]);
	}
	memcpy(raw, &d, 2);
	memcpy(raw + 2, &m, 2);
	memcpy(raw + 4, &qh, 4);
	for (int j = 0; j < 16; j++) raw[8 + j] = (uint8_t)(j | ((15 - j) << 4));
	quant_traits(GGML_TYPE_Q5_1)->to_float(raw, out, 32);
	for (int j = 0; j < 32; j++) {
		int nib = j < 16 ? j : 15 - (j - 16);
		int hi = (qh >> j) & 1;
		CHECKF(out[j] == (float)(nib | hi << 4) * 0.25f + 1.5f, "Q5_1 element %d: %g", j, out[j]);
	}
}

/* The 6-bit scale/min packing of Q4_K and Q5_K, written from the GGUF description. */
static void pack_k4_scales(uint8_t s[12], const uint8_t sc[8], const uint8_t mn[8])
{
	memset(s, 0, 12);
	for (int j = 0; j < 4; j++) {
		s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
		s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
		s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
	}
}

static const uint8_t k_sc[8] = { 1, 63, 17, 32, 5, 48, 60, 33 };
static const uint8_t k_mn[8] = { 0, 7, 63, 16, 41, 2, 35, 62 };

TEST(quant_q4_K_block_layout)
{
	struct block_q4_K b;
	float d = 0.125f, dmin = 0.0625f;
	put_fp16(&b.d, d);
	put_fp16(&b.dmin, dmin);
	pack_k4_scales(b.scales, k_sc, k_mn);
	/* element 32j + l has level (3j + l) % 16 */
	for (int p = 0; p < 4; p++)
		for (int l = 0; l < 32; l++)
			b.qs[32 * p + l] = (uint8_t)(((6 * p + l) % 16) | ((3 * (2 * p + 1) + l) % 16) << 4);
	float out[256];
	quant_traits(GGML_TYPE_Q4_K)->to_float(&b, out, 256);
	for (int j = 0; j < 8; j++)
		for (int l = 0; l < 32; l++) {
			float want = d * k_sc[j] * (float)((3 * j + l) % 16) - dmin * k_mn[j];
			CHECKF(out[32 * j + l] == want, "element %d: %g, want %g", 32 * j + l, out[32 * j + l], want);
		}
}

TEST(quant_q5_K_block_layout)
{
	struct block_q5_K b;
	float d = 0.25f, dmin = 0.5f;
	put_fp16(&b.d, d);
	put_fp16(&b.dmin, dmin);
	pack_k4_scales(b.scales, k_sc, k_mn);
	/* element 32j + l has level (5j + 3l) % 32 */
	memset(b.qh, 0, sizeof b.qh);
	for (int j = 0; j < 8; j++)
		for (int l = 0; l < 32; l++) {
			int q = (5 * j + 3 * l) % 32;
			if (j % 2 == 0) b.qs[32 * (j / 2) + l] = (uint8_t)(q & 15);
			else b.qs[32 * (j / 2) + l] |= (uint8_t)((q & 15) << 4);
			b.qh[l] |= (uint8_t)((q >> 4) << j);
		}
	float out[256];
	quant_traits(GGML_TYPE_Q5_K)->to_float(&b, out, 256);
	for (int j = 0; j < 8; j++)
		for (int l = 0; l < 32; l++) {
			float want = d * k_sc[j] * (float)((5 * j + 3 * l) % 32) - dmin * k_mn[j];
			CHECKF(out[32 * j + l] == want, "element %d: %g, want %g", 32 * j + l, out[32 * j + l], want);
		}
}

TEST(quant_q6_K_block_layout)
{
	struct block_q6_K b;
	memset(&b, 0, sizeof b);
	float d = 0.0078125f;
	put_fp16(&b.d, d);
	for (int k = 0; k < 16; k++) b.scales[k] = (int8_t)(k * 17 - 128); /* -128 .. 127 */
	/* element e has level (7e + 3) % 64 */
	for (int e = 0; e < 256; e++) {
		int q = (7 * e + 3) % 64, h = e / 128, c = (e % 128) / 32, l = e % 32;
		b.ql[64 * h + 32 * (c & 1) + l] |= (uint8_t)((q & 15) << (4 * (c >> 1)));
		b.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * c));
	}
	float out[256];
	quant_traits(GGML_TYPE_Q6_K)->to_float(&b, out, 256);
	for (int e = 0; e < 256; e++) {
		float want = d * (float)b.scales[e / 16] * (float)((7 * e + 3) % 64 - 32);
		CHECKF(out[e] == want, "element %d: %g, want %g", e, out[e], want);
	}
}

/* Q8_K: the element of largest magnitude becomes -127 (multiplier -127/max), d = 1/multiplier, bsums. */
TEST(quant_q8_K_activation_rules)
{
	float x[512];
	for (int i = 0; i < 512; i++) x[i] = frand() * 2.0f;
	x[77] = 3.0f;         /* positive extreme of block 0 */
	x[256 + 5] = -2.5f;   /* negative extreme of block 1 */
	x[256 + 6] = 2.4999f; /* almost as large, other sign */
	struct block_q8_K q[2];
	quant_traits(GGML_TYPE_Q8_K)->from_float(x, q, 512);
	CHECK(q[0].qs[77] == -127);
	CHECK(q[0].d == 1 / (-127.0f / 3.0f));
	CHECK(q[1].qs[5] == -127);
	CHECK(q[1].qs[6] == 127);
	CHECK(q[1].d == 1 / (-127.0f / -2.5f));
	for (int b = 0; b < 2; b++) {
		float iscale = 1 / q[b].d;
		for (int k = 0; k < 16; k++) {
			int sum = 0;
			for (int j = 0; j < 16; j++) {
				int v = q[b].qs[16 * k + j];
				float want = x[256 * b + 16 * k + j] * (-127.0f / (b ? -2.5f : 3.0f));
				CHECK(fabsf((float)v - want) <= 0.5f);
				sum += v;
			}
			CHECK_INT(q[b].bsums[k], sum);
		}
		(void)iscale;
	}
	/* ties round to even */
	float t[256] = { 0 };
	t[0] = -127.0f; /* multiplier 1 */
	t[1] = 2.5f, t[2] = 3.5f, t[3] = -2.5f;
	quant_traits(GGML_TYPE_Q8_K)->from_float(t, q, 256);
	CHECK(q[0].d == 1.0f);
	CHECK(q[0].qs[1] == 2 && q[0].qs[2] == 4 && q[0].qs[3] == -2);
	/* an all-zero block is zero, with d = 0 */
	memset(t, 0, sizeof t);
	quant_traits(GGML_TYPE_Q8_K)->from_float(t, q, 256);
	CHECK(q[0].d == 0.0f && q[0].qs[100] == 0 && q[0].bsums[3] == 0);
}

/* Q8_1: Q8_0's rules plus s = d * (sum of the quants) in fp16. */
TEST(quant_q8_1_activation_rules)
{
	float x[64];
	for (int i = 0; i < 64; i++) x[i] = frand();
	struct block_q8_1 q[2];
	struct block_q8_0 r[2];
	quant_traits(GGML_TYPE_Q8_1)->from_float(x, q, 64);
	quant_traits(GGML_TYPE_Q8_0)->from_float(x, r, 64);
	for (int b = 0; b < 2; b++) {
		CHECK(q[b].d == r[b].d);
		CHECK(!memcmp(q[b].qs, r[b].qs, 32));
		int sum = 0;
		float amax = 0;
		for (int j = 0; j < 32; j++) sum += q[b].qs[j], amax = fmaxf(amax, fabsf(x[32 * b + j]));
		CHECK(q[b].s == f32_to_fp16(amax / 127.0f * (float)sum));
	}
}

/* ---- quantize -> dequantize ---------------------------------------------------- */

/*
 * Every element comes back within frac of a quantization step, the step
 * being the block's range (max - min, or the larger side for the symmetric
 * types) over the number of levels.
 */
static void check_roundtrip(uint32_t type, int block, float levels, bool symmetric, float frac)
{
	enum { N = 4096 };
	static float x[N], y[N];
	const struct quant_traits *t = quant_traits_ref(type);
	void *q = malloc(quant_row_size(type, N));
	for (int trial = 0; trial < 4; trial++) {
		for (int i = 0; i < N; i++) x[i] = frand() * (float)(trial + 1) + (trial == 3 ? 1.5f : 0.0f);
		for (int i = 0; i < 64; i++) x[i] = 0.0f; /* an all-zero block */
		x[200] = 40.0f;                          /* an outlier */
		t->from_float(x, q, N);
		t->to_float(q, y, N);
		double se = 0;
		for (int b = 0; b < N / block; b++) {
			float lo = 0, hi = 0, amax = 0;
			for (int j = 0; j < block; j++) {
				float v = x[b * block + j];
				lo = fminf(lo, v), hi = fmaxf(hi, v), amax = fmaxf(amax, fabsf(v));
			}
			float step = (symmetric ? 2 * amax : hi - lo) / levels;
			for (int j = 0; j < block; j++) {
				float e = fabsf(x[b * block + j] - y[b * block + j]);
				se += (double)e * e;
				CHECKF(e <= frac * step + 1e-6f, "%s trial %d block %d elem %d: %g -> %g (step %g)",
				       ggml_type_name(type), trial, b, j, x[b * block + j], y[b * block + j], step);
			}
		}
		for (int i = 0; i < 64; i++) CHECK(y[i] == 0.0f);
		(void)se;
	}
	free(q);
}

TEST(quant_roundtrip_error_bounds)
{
	/*
	 * Q4_0/Q5_0 map the signed extreme to level -8 (-16) with d = |max|/8
	 * (/16): the other side clamps at +7 (+15), a full step short.
	 */
	check_roundtrip(GGML_TYPE_Q4_0, 32, 16, true, 1.01f);
	check_roundtrip(GGML_TYPE_Q4_1, 32, 15, false, 0.56f);
	check_roundtrip(GGML_TYPE_Q5_0, 32, 32, true, 1.01f);
	check_roundtrip(GGML_TYPE_Q5_1, 32, 31, false, 0.56f);
	/* K-quants: 6-bit (Q6_K 8-bit) sub-block scales under one fp16 scale cost more */
	check_roundtrip(GGML_TYPE_Q4_K, 256, 15, false, 1.0f);
	check_roundtrip(GGML_TYPE_Q5_K, 256, 31, false, 1.0f);
	check_roundtrip(GGML_TYPE_Q6_K, 256, 63, true, 1.0f);
	check_roundtrip(GGML_TYPE_BF16, 1, 256, true, 1.0f);
}

/* Reference quantization costs little: the RMS error per level count. */
TEST(quant_k_rms_error)
{
	enum { N = 256 * 64 };
	static float x[N], y[N];
	static const struct {
		uint32_t type;
		double max_rms;
	} cases[] = { { GGML_TYPE_Q4_K, 0.045 }, { GGML_TYPE_Q5_K, 0.022 }, { GGML_TYPE_Q6_K, 0.011 } };
	for (int c = 0; c < 3; c++) {
		const struct quant_traits *t = quant_traits_ref(cases[c].type);
		void *q = malloc(quant_row_size(cases[c].type, N));
		for (int i = 0; i < N; i++) x[i] = frand(); /* uniform [-1, 1): step 2/levels */
		t->from_float(x, q, N);
		t->to_float(q, y, N);
		double se = 0;
		for (int i = 0; i < N; i++) se += (double)(x[i] - y[i]) * (x[i] - y[i]);
		double rms = sqrt(se / N);
		printf("    %s: rms error %.5f on uniform [-1, 1)\n", ggml_type_name(cases[c].type), rms);
		CHECKF(rms <= cases[c].max_rms, "%s rms %.5f", ggml_type_name(cases[c].type), rms);
		free(q);
	}
}

/* ---- byte-exact with llama-quantize ---------------------------------------------- */

/*
 * Quantize every tensor of type (Q4_0, Q4_K, Q6_K, ...) of the quantized
 * fixture from the F32 tiny-llama.gguf with our quantize and compare the
 * bytes with what llama-quantize wrote. Returns the tensors compared.
 */
static int check_same_bytes(const char *quantized, const uint32_t *types, int n_types)
{
	struct gguf_file f32, fq;
	struct sam_error err = { 0 };
	CHECKF(gguf_open(&f32, test_model("tiny-llama.gguf"), &err) == 0, "%s", err.msg);
	CHECKF(gguf_open(&fq, test_model(quantized), &err) == 0, "%s", err.msg);
	int compared = 0;
	for (uint64_t i = 0; i < fq.n_tensors; i++) {
		const struct gguf_tensor *tq = &fq.tensors[i];
		bool wanted = false;
		for (int k = 0; k < n_types; k++) wanted |= tq->type == types[k];
		if (!wanted) continue;
		char name[256];
		snprintf(name, sizeof name, "%.*s", (int)tq->name.n, tq->name.s);
		const struct gguf_tensor *tf = gguf_find_tensor(&f32, name);
		CHECKF(tf && tf->type == GGML_TYPE_F32, "%s: no F32 original", name);
		int64_t n = (int64_t)(tf->ne[0] * tf->ne[1] * tf->ne[2] * tf->ne[3]);
		CHECK(quant_row_size(tq->type, n) == tq->nbytes);
		uint8_t *mine = malloc(tq->nbytes);
		quant_traits_ref(tq->type)->quantize(tf->data, mine, n);
		size_t bad = 0, first = 0;
		for (size_t b = 0; b < tq->nbytes; b++)
			if (mine[b] != ((const uint8_t *)tq->data)[b] && !bad++) first = b;
		CHECKF(bad == 0, "%s %s (%s): %zu of %llu bytes differ, first at %zu", quantized, name,
		       ggml_type_name(tq->type), bad, (unsigned long long)tq->nbytes, first);
		free(mine);
		compared++;
	}
	gguf_close(&f32);
	gguf_close(&fq);
	return compared;
}

TEST(quant_matches_llama_quantize_q4_k_m)
{
	uint32_t types[] = { GGML_TYPE_Q4_K, GGML_TYPE_Q6_K };
	int n = check_same_bytes("tiny-llama-q4_k_m.gguf", types, 2);
	printf("    tiny-llama-q4_k_m: %d Q4_K/Q6_K tensors byte-identical\n", n);
	CHECK(n == 4 * 7 + 2); /* 7 matrices per layer, token_embd, output */
}

TEST(quant_matches_llama_quantize_q6_k)
{
	uint32_t types[] = { GGML_TYPE_Q6_K };
	int n = check_same_bytes("tiny-llama-q6_k.gguf", types, 1);
	printf("    tiny-llama-q6_k: %d Q6_K tensors byte-identical\n", n);
	CHECK(n == 4 * 7 + 2);
}

TEST(quant_matches_llama_quantize_q4_0)
{
	uint32_t types[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q6_K };
	int n = check_same_bytes("tiny-llama-q4_0.gguf", types, 2);
	printf("    tiny-llama-q4_0: %d Q4_0/Q6_K tensors byte-identical\n", n);
	CHECK(n == 4 * 7 + 2);
}

TEST(quant_matches_llama_quantize_q8_0)
{
	uint32_t types[] = { GGML_TYPE_Q8_0 };
	int n = check_same_bytes("tiny-llama-q8_0.gguf", types, 1);
	printf("    tiny-llama-q8_0: %d Q8_0 tensors byte-identical\n", n);
	CHECK(n == 4 * 7 + 2);
}

/* Weight types quantize as they convert activations, but for Q8_0 (files: 1/d and ties away from zero). */
TEST(quant_quantize_is_from_float_but_q8_0)
{
	static const uint32_t w[] = { GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
				      GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		CHECKF(quant_traits(w[i])->quantize == quant_traits(w[i])->from_float, "%s", ggml_type_name(w[i]));
	CHECK(quant_traits(GGML_TYPE_Q8_K)->quantize == NULL && quant_traits(GGML_TYPE_Q8_1)->quantize == NULL);
	/* 0.5 steps: the file quantizer rounds away from zero, the activation one to even */
	float x[32] = { 127.0f, 2.5f, -2.5f, 3.5f };
	struct block_q8_0 f, a;
	quant_traits(GGML_TYPE_Q8_0)->quantize(x, &f, 32);
	quant_traits(GGML_TYPE_Q8_0)->from_float(x, &a, 32);
	CHECK(f.qs[0] == 127 && f.qs[1] == 3 && f.qs[2] == -3 && f.qs[3] == 4);
	CHECK(a.qs[0] == 127 && a.qs[1] == 2 && a.qs[2] == -2 && a.qs[3] == 4);
}

/* ---- SIMD at the extremes ---------------------------------------------------------- */

/*
 * Largest levels and scales against activations of +-127: the integer sums
 * must neither saturate nor lose bits. Random bytes cover the layouts; the
 * fp16 scales are set to small sane values.
 */
TEST(quant_simd_extreme_blocks)
{
	static const uint32_t types[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
					  GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
	enum { N = 1024 };
	static uint8_t w[N * 2], a[N * 4];
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
		const struct quant_traits *qt = quant_traits(types[t]), *ref = quant_traits_ref(types[t]);
		uint32_t at = qt->act_type;
		size_t wb = quant_row_size(types[t], N), ab = quant_row_size(at, N);
		CHECK(wb <= sizeof w && ab <= sizeof a);
		for (int mode = 0; mode < 3; mode++) {
			/* mode 0: every bit set; 1: random; 2: random levels, max activations */
			for (size_t i = 0; i < wb; i++) w[i] = mode == 0 ? 0xff : (uint8_t)(frand() * 128 + 128);
			float x[N];
			for (int i = 0; i < N; i++) x[i] = mode == 1 ? frand() : (i % 2 ? 1.0f : -1.0f);
			quant_traits_ref(at)->from_float(x, a, N);
			/* sane fp16 scales in place of the random bytes */
			size_t bs = quant_row_size(types[t], ggml_type_info(types[t])->block);
			for (size_t b = 0; b < wb / bs; b++) {
				uint8_t *blk = w + b * bs;
				uint16_t h = f32_to_fp16(0.01f);
				uint16_t h2 = f32_to_fp16(mode == 0 ? -0.02f : 0.005f);
				if (types[t] == GGML_TYPE_Q6_K) {
					memcpy(blk + 208, &h, 2);
					if (mode == 0) memset(blk + 192, 0x80, 16); /* scales -128 */
				} else {
					memcpy(blk, &h, 2);
					if (types[t] == GGML_TYPE_Q4_1 || types[t] == GGML_TYPE_Q5_1 ||
					    types[t] == GGML_TYPE_Q4_K || types[t] == GGML_TYPE_Q5_K)
						memcpy(blk + 2, &h2, 2);
				}
			}
			float got = qt->vec_dot(N, w, a), want = ref->vec_dot(N, w, a);
			CHECKF(!memcmp(&got, &want, 4), "%s mode %d: simd %.9g, portable %.9g", ggml_type_name(types[t]),
			       mode, (double)got, (double)want);
			/* a double reference from the dequantized values */
			float wf[N], af[N];
			ref->to_float(w, wf, N);
			quant_traits_ref(at)->to_float(a, af, N);
			double exact = 0, mag = 0;
			for (int i = 0; i < N; i++) exact += (double)wf[i] * af[i], mag += fabs((double)wf[i] * af[i]);
			CHECKF(fabsf(got - want) <= 1e-5f * (float)mag + 1e-6f, "%s mode %d: simd %.8g, portable %.8g",
			       ggml_type_name(types[t]), mode, (double)got, (double)want);
			CHECKF(fabs(want - exact) <= 1e-5 * mag + 1e-6, "%s mode %d: portable %.8g, exact %.8g",
			       ggml_type_name(types[t]), mode, (double)want, exact);
		}
	}
}

/* ---- gemm tiles ------------------------------------------------------------------ */

/*
 * Every output of a tile equals vec_dot of its row and column bit for bit,
 * whatever the shape: full tiles, ragged row and column remainders, one
 * column (decoding), with rows and columns at strides wider than a row.
 */
static void check_gemm(uint32_t type, int64_t n, int nr, int nc, bool packed)
{
	const struct quant_traits *qt = quant_traits(type), *at = quant_traits(qt->act_type);
	if (!qt->gemm || (packed && !qt->repack)) return;
	size_t ws = quant_row_size(type, n) + 64, as = quant_row_size(qt->act_type, n) + 32;
	uint8_t *w = calloc((size_t)nr, ws), *a = calloc((size_t)nc, as);
	size_t os = (size_t)nr + 3;
	float *out = malloc((size_t)nc * os * sizeof *out), *x = malloc((size_t)n * sizeof *x);
	for (int r = 0; r < nr; r++) {
		for (int64_t i = 0; i < n; i++) x[i] = frand() * (1.0f + (float)(r % 5));
		qt->quantize(x, w + (size_t)r * ws, n);
	}
	for (int c = 0; c < nc; c++) {
		for (int64_t i = 0; i < n; i++) x[i] = frand() * 3.0f;
		at->from_float(x, a + (size_t)c * as, n);
	}
	for (size_t i = 0; i < (size_t)nc * os; i++) out[i] = NAN;
	if (packed) {
		/* the packed layout has no gap between rows */
		size_t rb = quant_row_size(type, n);
		uint8_t *dense = malloc((size_t)nr * rb), *pk = malloc((size_t)nr * rb);
		for (int r = 0; r < nr; r++) memcpy(dense + (size_t)r * rb, w + (size_t)r * ws, rb);
		qt->repack(dense, pk, nr, n);
		qt->gemm_packed(n, pk, rb, nr, a, as, nc, out, os);
		free(dense), free(pk);
	} else {
		qt->gemm(n, w, ws, nr, a, as, nc, out, os);
	}
	int bad = 0;
	for (int c = 0; c < nc; c++)
		for (int r = 0; r < nr; r++) {
			float want = qt->vec_dot(n, w + (size_t)r * ws, a + (size_t)c * as), got = out[(size_t)c * os + r];
			if (memcmp(&got, &want, 4) && bad++ < 3)
				CHECKF(0, "%s n=%lld %dx%d: out[%d][%d] = %.9g, vec_dot %.9g", ggml_type_name(type),
				       (long long)n, nr, nc, c, r, (double)got, (double)want);
		}
	CHECKF(!bad, "%s %dx%d: %d outputs differ from vec_dot", ggml_type_name(type), nr, nc, bad);
	for (int c = 0; c < nc; c++) /* the gap between columns is left alone */
		for (size_t r = (size_t)nr; r < os; r++) CHECK(isnan(out[(size_t)c * os + r]));
	free(w), free(a), free(out), free(x);
}

TEST(quant_gemm_matches_vec_dot)
{
	static const uint32_t types[] = { GGML_TYPE_Q8_0, GGML_TYPE_Q5_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K,
					  GGML_TYPE_Q6_K };
	static const int shapes[][2] = { { 1, 1 }, { 8, 1 }, { 13, 1 }, { 16, 2 }, { 12, 5 }, { 19, 7 }, { 3, 9 } };
	int tested = 0;
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
		if (!quant_traits(types[t])->gemm) continue;
		tested++;
		for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
			check_gemm(types[t], 256, shapes[s][0], shapes[s][1], false);
			check_gemm(types[t], 1536, shapes[s][0], shapes[s][1], false);
		}
	}
	printf("    %d types with gemm tiles (%s)\n", tested, quant_simd_name());
}

/* Repacked layouts: whole groups of 8 rows, many columns, rows longer than one pass of activation sums. */
TEST(quant_gemm_packed_matches_vec_dot)
{
	int tested = 0;
	for (uint32_t type = 0; type < GGML_TYPE_COUNT; type++) {
		const struct quant_traits *qt = quant_traits(type);
		if (!qt || !qt->repack) continue;
		CHECKF(qt->gemm_packed != NULL, "%s: repack without gemm_packed", ggml_type_name(type));
		tested++;
		check_gemm(type, 256, 8, 1, true);
		check_gemm(type, 256, 24, 5, true);
		check_gemm(type, 1536, 16, 64, true);
		check_gemm(type, 4096, 8, 3, true);
		check_gemm(type, 32 * 5000, 8, 2, true); /* 5000 blocks: more than one range of sums */
	}
	printf("    %d types repacked (%s)\n", tested, quant_simd_name());
}

/* The SIMD activation quantizer writes the portable one's bytes: ties, zeros, extremes. */
TEST(quant_simd_activation_q8_0_matches_reference)
{
	enum { N = 32 * 64 };
	static float x[N];
	static struct block_q8_0 got[N / 32], want[N / 32];
	for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 + i % 7);
	for (int i = 0; i < 32; i++) x[i] = 0.0f;                    /* a zero block */
	for (int i = 32; i < 64; i++) x[i] = (float)(i - 48) * 0.5f; /* halves: ties after scaling */
	x[64] = 127.0f, x[65] = -127.0f, x[66] = 63.5f;              /* id = 1: exact ties at .5 */
	x[100] = 1e-30f;                                            /* tiny amax */
	quant_traits(GGML_TYPE_Q8_0)->from_float(x, got, N);
	quant_traits_ref(GGML_TYPE_Q8_0)->from_float(x, want, N);
	for (int b = 0; b < N / 32; b++)
		CHECKF(!memcmp(&got[b], &want[b], sizeof got[b]), "block %d differs (%s)", b, quant_simd_name());
}
