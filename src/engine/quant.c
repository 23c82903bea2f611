/*
 * quant.c - portable reference kernels for F32, F16, Q8_0 and Q4_0.
 *
 * The arithmetic mirrors llama.cpp's CPU backend where it matters for
 * bit-level agreement: activations are quantized to Q8_0 with the scale
 * d = amax/127 stored as fp16, the multiplier 127/amax, and rounding to
 * nearest even (what its AVX path does); block dot products are exact
 * integer sums scaled by d_w * d_a in float.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant_simd.h"
#include "sam/quant.h"

static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

float fp16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
	if (e == 0x1f) return bits_f32(sign | 0x7f800000 | (m << 13));
	if (e == 0) {
		/* zero or subnormal: m * 2^-24, exact in float */
		float v = (float)m * 0x1p-24f;
		return sign ? -v : v;
	}
	return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t f32_to_fp16(float f)
{
	uint32_t x = f32_bits(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t e = (x >> 23) & 0xff, m = x & 0x7fffff;
	if (e == 0xff) return sign | 0x7c00 | (m ? 0x200 | (m >> 13) : 0); /* inf, quiet NaN */
	int32_t he = (int32_t)e - 127 + 15;
	if (he >= 0x1f) return sign | 0x7c00;
	if (he <= 0) {
		if (he < -10) return sign;
		m |= 0x800000;
		uint32_t shift = (uint32_t)(14 - he);
		uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
		if (rem > halfway || (rem == halfway && (hm & 1))) hm++;
		return (uint16_t)(sign | hm); /* a carry becomes the smallest normal */
	}
	uint32_t h = ((uint32_t)he << 10) | (m >> 13), rem = m & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into inf */
	return (uint16_t)(sign | h);
}

/* ---- F32 ---------------------------------------------------------------- */

static void f32_to_float(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_float(const float *src, void *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

/* Eight independent partial sums: vectorizable, and less rounding drift. */
static float f32_dot(int64_t n, const void *wv, const void *av)
{
	const float *w = wv, *a = av;
	float acc[8] = { 0 };
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++) acc[j] += w[i + j] * a[i + j];
	float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	for (; i < n; i++) s += w[i] * a[i];
	return s;
}

/* ---- F16 ---------------------------------------------------------------- */

static void f16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_f32(s[i]);
}

static void f16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++) d[i] = f32_to_fp16(src[i]);
}

static float f16_dot(int64_t n, const void *wv, const void *av)
{
	const uint16_t *w = wv, *a = av;
	float acc[8] = { 0 };
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++) acc[j] += fp16_to_f32(w[i + j]) * fp16_to_f32(a[i + j]);
	float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	for (; i < n; i++) s += fp16_to_f32(w[i]) * fp16_to_f32(a[i]);
	return s;
}

/* ---- Q8_0 --------------------------------------------------------------- */

static void q8_0_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q8_0 *b = src;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		float d = fp16_to_f32(b[i].d);
		for (int j = 0; j < QK8_0; j++) dst[i * QK8_0 + j] = (float)b[i].qs[j] * d;
	}
}

static void q8_0_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q8_0 *b = dst;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		const float *x = src + i * QK8_0;
		float amax = 0.0f;
		for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
		float d = amax / 127.0f;
		float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		b[i].d = f32_to_fp16(d);
		for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
	}
}

static float q8_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q8_0 *w = wv, *a = av;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		int32_t sumi = 0;
		for (int j = 0; j < QK8_0; j++) sumi += (int32_t)w[i].qs[j] * a[i].qs[j];
		s += (float)sumi * (fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d));
	}
	return s;
}

/* ---- Q4_0 --------------------------------------------------------------- */

static void q4_0_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q4_0 *b = src;
	for (int64_t i = 0; i < n / QK4_0; i++) {
		float d = fp16_to_f32(b[i].d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			dst[i * QK4_0 + j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
			dst[i * QK4_0 + j + QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
		}
	}
}

/* llama.cpp's reference quantizer: the scale comes from the signed extreme. */
static void q4_0_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q4_0 *b = dst;
	for (int64_t i = 0; i < n / QK4_0; i++) {
		const float *x = src + i * QK4_0;
		float amax = 0.0f, max = 0.0f;
		for (int j = 0; j < QK4_0; j++)
			if (amax < fabsf(x[j])) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		float d = max / -8.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		b[i].d = f32_to_fp16(d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			int q0 = (int)(x[j] * id + 8.5f), q1 = (int)(x[j + QK4_0 / 2] * id + 8.5f);
			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
		}
	}
}

static float q4_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q4_0 *w = wv;
	const struct block_q8_0 *a = av;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK4_0; i++) {
		int32_t sumi = 0;
		for (int j = 0; j < QK4_0 / 2; j++) {
			sumi += ((w[i].qs[j] & 0x0f) - 8) * a[i].qs[j];
			sumi += ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + QK4_0 / 2];
		}
		s += (float)sumi * (fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d));
	}
	return s;
}

static const struct quant_traits ref_traits[GGML_TYPE_COUNT] = {
	[GGML_TYPE_F32] = { GGML_TYPE_F32, f32_to_float, f32_from_float, f32_dot },
	[GGML_TYPE_F16] = { GGML_TYPE_F16, f16_to_float, f16_from_float, f16_dot },
	[GGML_TYPE_Q8_0] = { GGML_TYPE_Q8_0, q8_0_to_float, q8_0_from_float, q8_0_dot },
	[GGML_TYPE_Q4_0] = { GGML_TYPE_Q8_0, q4_0_to_float, q4_0_from_float, q4_0_dot },
};

/* The table in use: the reference one with SIMD dot products swapped in where the CPU has them. */
static struct quant_traits traits[GGML_TYPE_COUNT];
static pthread_once_t traits_once = PTHREAD_ONCE_INIT;
static const char *simd_name = "scalar";

static void pick_kernels(void)
{
	memcpy(traits, ref_traits, sizeof traits);
	const char *off = getenv("SAM_NO_SIMD");
	if (off && *off && strcmp(off, "0")) return;
	if (quant_avx2_usable()) {
		traits[GGML_TYPE_F32].vec_dot = quant_avx2_f32_dot;
		traits[GGML_TYPE_F16].vec_dot = quant_avx2_f16_dot;
		traits[GGML_TYPE_Q8_0].vec_dot = quant_avx2_q8_0_dot;
		traits[GGML_TYPE_Q4_0].vec_dot = quant_avx2_q4_0_dot;
		simd_name = "avx2";
	}
}

const struct quant_traits *quant_traits(uint32_t type)
{
	pthread_once(&traits_once, pick_kernels);
	if (type >= GGML_TYPE_COUNT || !traits[type].vec_dot) return NULL;
	return &traits[type];
}

const struct quant_traits *quant_traits_ref(uint32_t type)
{
	if (type >= GGML_TYPE_COUNT || !ref_traits[type].vec_dot) return NULL;
	return &ref_traits[type];
}

const char *quant_simd_name(void)
{
	pthread_once(&traits_once, pick_kernels);
	return simd_name;
}

size_t quant_row_size(uint32_t type, int64_t n)
{
	const struct ggml_type_info *ti = ggml_type_info(type);
	return ti ? (size_t)(n / ti->block) * ti->size : 0;
}
