/*
 * quant.c - portable reference kernels for F32, F16, BF16 and the 32-element
 * block types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_1; the tables of all
 * types (the K-quants are in quant_k.c) and the run-time kernel choice.
 *
 * The arithmetic mirrors llama.cpp's CPU backend where it matters for
 * bit-level agreement: activations are quantized to Q8_0/Q8_1 with the
 * scale d = amax/127 stored as fp16, the multiplier 127/amax, and rounding
 * to nearest even (what its AVX path does); block dot products are exact
 * integer sums scaled by d_w * d_a in float, in the order of its x86
 * kernels (8 lanes of 4 products, a fused multiply-add per block and lane,
 * quant_hsum8 at the end; Q4_0 one fused multiply-add per block), so the
 * portable kernels and the SIMD ones in quant_avx2.c and quant_neon.c give
 * the same float.
 * Weight quantizers are its reference ones (quantize_row_*_ref).
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant_simd.h"
#include "sam/quant.h"

/*
 * The SIMD kernels reproduce these kernels' floats bit for bit, which
 * needs every product and sum rounded as written: GCC does not fuse in ISO
 * C mode, clang would (on CPUs with fused multiply-add, such as arm64).
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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

float bf16_to_f32(uint16_t h)
{
	return bits_f32((uint32_t)h << 16);
}

uint16_t f32_to_bf16(float f)
{
	uint32_t u = f32_bits(f);
	if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* NaN: keep it quiet */
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
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

/* ---- BF16 --------------------------------------------------------------- */

static void bf16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
}

static void bf16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++) d[i] = f32_to_bf16(src[i]);
}

/*
 * Products of two bf16 are exact in float. They are summed as llama.cpp's
 * AVX2 kernel sums them: 32 lanes, each 32nd element into the same lane,
 * folded to 8 lanes as (0-7 + 16-23) + (8-15 + 24-31), then pairwise
 * (lane k with k+4, then k with k+2, then 0 with 1); the tail in double.
 */
static float bf16_dot(int64_t n, const void *wv, const void *av)
{
	const uint16_t *w = wv, *a = av;
	float acc[32] = { 0 };
	int64_t i = 0;
	for (; i + 32 <= n; i += 32)
		for (int j = 0; j < 32; j++) acc[j] += bf16_to_f32(w[i + j]) * bf16_to_f32(a[i + j]);
	float v[8], g[4];
	for (int k = 0; k < 8; k++) v[k] = (acc[k] + acc[k + 16]) + (acc[k + 8] + acc[k + 24]);
	for (int k = 0; k < 4; k++) g[k] = v[k + 4] + v[k];
	double s = (double)((g[0] + g[2]) + (g[1] + g[3]));
	for (; i < n; i++) s += (double)(bf16_to_f32(w[i]) * bf16_to_f32(a[i]));
	return (float)s;
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

/* llama.cpp's reference quantizer, which llama-quantize writes files with. */
static void q8_0_quantize(const float *src, void *dst, int64_t n)
{
	struct block_q8_0 *b = dst;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		const float *x = src + i * QK8_0;
		float amax = 0.0f;
		for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
		float d = amax / 127;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		b[i].d = f32_to_fp16(d);
		for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)roundf(x[j] * id);
	}
}

static float q8_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q8_0 *w = wv, *a = av;
	float acc[8] = { 0 };
	for (int64_t i = 0; i < n / QK8_0; i++) {
		float d = fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d);
		int32_t lane[8];
		quant_lanes8(w[i].qs, a[i].qs, lane);
		for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
	}
	return quant_hsum8(acc);
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

/*
 * llama.cpp on x86 computes Q4_0 weights (repacked, see quant_avx2.c) one
 * fused multiply-add per block, in order.
 */
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
		s = fmaf((float)sumi, fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d), s);
	}
	return s;
}

/* ---- Q4_1 --------------------------------------------------------------- */

static void q4_1_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q4_1 *b = src;
	for (int64_t i = 0; i < n / QK4_1; i++) {
		float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
		for (int j = 0; j < QK4_1 / 2; j++) {
			dst[i * QK4_1 + j] = (float)(b[i].qs[j] & 0x0f) * d + m;
			dst[i * QK4_1 + j + QK4_1 / 2] = (float)(b[i].qs[j] >> 4) * d + m;
		}
	}
}

/* llama.cpp's reference quantizer: 16 levels spanning [min, max]. */
static void q4_1_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q4_1 *b = dst;
	for (int64_t i = 0; i < n / QK4_1; i++) {
		const float *x = src + i * QK4_1;
		float min = FLT_MAX, max = -FLT_MAX;
		for (int j = 0; j < QK4_1; j++) {
			if (x[j] < min) min = x[j];
			if (x[j] > max) max = x[j];
		}
		float d = (max - min) / 15;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		b[i].d = f32_to_fp16(d);
		b[i].m = f32_to_fp16(min);
		for (int j = 0; j < QK4_1 / 2; j++) {
			int q0 = (int8_t)((x[j] - min) * id + 0.5f), q1 = (int8_t)((x[j + QK4_1 / 2] - min) * id + 0.5f);
			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
		}
	}
}

/* Per block (d_w*d_a)*sumi + m_w*s_a, where s_a = d_a * (sum of the activation quants). */
/*
 * Per block (d_w*d_a) * (8 lanes of 4 products each) + m_w*s_a, where
 * s_a = d_a * (sum of the activation quants); the min terms are summed on
 * their own and added last (llama.cpp's x86 order).
 */
/*
 * Per block (d_w*d_a) * (8 lanes of 4 products each) + m_w*s_a, where
 * s_a = d_a * (sum of the activation quants); the min terms are summed on
 * their own and added last (llama.cpp's x86 order).
 */
static float q4_1_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q4_1 *w = wv;
	const struct block_q8_1 *a = av;
	float acc[8] = { 0 }, mins = 0.0f;
	for (int64_t i = 0; i < n / QK4_1; i++) {
		float d = fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d);
		mins += fp16_to_f32(w[i].m) * fp16_to_f32(a[i].s); /* exact product: fused or not alike */
		int8_t x[QK4_1];
		int32_t lane[8];
		for (int j = 0; j < QK4_1 / 2; j++) {
			x[j] = (int8_t)(w[i].qs[j] & 0x0f);
			x[j + QK4_1 / 2] = (int8_t)(w[i].qs[j] >> 4);
		}
		quant_lanes8(x, a[i].qs, lane);
		for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
	}
	return quant_hsum8(acc) + mins;
}

/* ---- Q5_0 --------------------------------------------------------------- */

/* The 5-bit level of element j of a Q5_0/Q5_1 block. */
static inline int q5_level(const uint8_t qh[4], const uint8_t *qs, int j)
{
	uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
	int nib = j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;
	return nib | (int)((h >> j) & 1) << 4;
}

static void q5_0_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q5_0 *b = src;
	for (int64_t i = 0; i < n / QK5_0; i++) {
		float d = fp16_to_f32(b[i].d);
		for (int j = 0; j < QK5_0; j++) dst[i * QK5_0 + j] = (float)(q5_level(b[i].qh, b[i].qs, j) - 16) * d;
	}
}

/* Pack 32 levels in [0, 31] into nibbles and high bits. */
static void q5_pack(const int *q, uint8_t qh[4], uint8_t *qs)
{
	uint32_t h = 0;
	for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0x0f) | (q[j + 16] & 0x0f) << 4);
	for (int j = 0; j < 32; j++) h |= (uint32_t)((q[j] >> 4) & 1) << j;
	for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

/* llama.cpp's reference quantizer: the scale comes from the signed extreme, as Q4_0. */
static void q5_0_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q5_0 *b = dst;
	for (int64_t i = 0; i < n / QK5_0; i++) {
		const float *x = src + i * QK5_0;
		float amax = 0.0f, max = 0.0f;
		for (int j = 0; j < QK5_0; j++)
			if (amax < fabsf(x[j])) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		float d = max / -16;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		b[i].d = f32_to_fp16(d);
		int q[QK5_0];
		for (int j = 0; j < QK5_0; j++) {
			q[j] = (int8_t)(x[j] * id + 16.5f);
			q[j] = q[j] > 31 ? 31 : q[j];
		}
		q5_pack(q, b[i].qh, b[i].qs);
	}
}

/* The 32 levels of a Q5_0/Q5_1 block, minus offset. */
static inline void q5_levels(const uint8_t qh[4], const uint8_t *qs, int offset, int8_t *x)
{
	uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
	for (int j = 0; j < 16; j++) {
		x[j] = (int8_t)(((qs[j] & 0x0f) | ((h >> j) & 1) << 4) - offset);
		x[j + 16] = (int8_t)(((qs[j] >> 4) | ((h >> (j + 16)) & 1) << 4) - offset);
	}
}

static float q5_0_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q5_0 *w = wv;
	const struct block_q8_0 *a = av;
	float acc[8] = { 0 };
	for (int64_t i = 0; i < n / QK5_0; i++) {
		float d = fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d);
		int8_t x[QK5_0];
		int32_t lane[8];
		q5_levels(w[i].qh, w[i].qs, 16, x);
		quant_lanes8(x, a[i].qs, lane);
		for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
	}
	return quant_hsum8(acc);
}

/* ---- Q5_1 --------------------------------------------------------------- */

static void q5_1_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q5_1 *b = src;
	for (int64_t i = 0; i < n / QK5_1; i++) {
		float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
		for (int j = 0; j < QK5_1; j++) dst[i * QK5_1 + j] = (float)q5_level(b[i].qh, b[i].qs, j) * d + m;
	}
}

/* llama.cpp's reference quantizer: 32 levels spanning [min, max]. */
static void q5_1_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q5_1 *b = dst;
	for (int64_t i = 0; i < n / QK5_1; i++) {
		const float *x = src + i * QK5_1;
		float min = FLT_MAX, max = -FLT_MAX;
		for (int j = 0; j < QK5_1; j++) {
			if (x[j] < min) min = x[j];
			if (x[j] > max) max = x[j];
		}
		float d = (max - min) / 31;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		b[i].d = f32_to_fp16(d);
		b[i].m = f32_to_fp16(min);
		int q[QK5_1];
		for (int j = 0; j < QK5_1; j++) q[j] = (uint8_t)((x[j] - min) * id + 0.5f);
		q5_pack(q, b[i].qh, b[i].qs);
	}
}

static float q5_1_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q5_1 *w = wv;
	const struct block_q8_1 *a = av;
	float acc[8] = { 0 }, mins = 0.0f;
	for (int64_t i = 0; i < n / QK5_1; i++) {
		float d = fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d);
		mins += fp16_to_f32(w[i].m) * fp16_to_f32(a[i].s);
		int8_t x[QK5_1];
		int32_t lane[8];
		q5_levels(w[i].qh, w[i].qs, 0, x);
		quant_lanes8(x, a[i].qs, lane);
		for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
	}
	return quant_hsum8(acc) + mins;
}

/* ---- Q8_1 --------------------------------------------------------------- */

static void q8_1_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q8_1 *b = src;
	for (int64_t i = 0; i < n / QK8_1; i++) {
		float d = fp16_to_f32(b[i].d);
		for (int j = 0; j < QK8_1; j++) dst[i * QK8_1 + j] = (float)b[i].qs[j] * d;
	}
}

/* As Q8_0 (llama.cpp's AVX path), plus s = d * sum of the quants, with d before its fp16 rounding. */
static void q8_1_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q8_1 *b = dst;
	for (int64_t i = 0; i < n / QK8_1; i++) {
		const float *x = src + i * QK8_1;
		float amax = 0.0f;
		for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
		float d = amax / 127.0f;
		float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		int32_t sum = 0;
		for (int j = 0; j < QK8_1; j++) {
			b[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
			sum += b[i].qs[j];
		}
		b[i].d = f32_to_fp16(d);
		b[i].s = f32_to_fp16(d * (float)sum);
	}
}

static float q8_1_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q8_1 *w = wv, *a = av;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK8_1; i++) {
		int32_t sumi = 0;
		for (int j = 0; j < QK8_1; j++) sumi += (int32_t)w[i].qs[j] * a[i].qs[j];
		s += (float)sumi * (fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d));
	}
	return s;
}

/* the portable kernels; gemm and repacking only exist as SIMD */
#define TRAITS(act, tof, fromf, dot, quant) \
	{ .act_type = (act), .to_float = (tof), .from_float = (fromf), .vec_dot = (dot), .quantize = (quant) }

static const struct quant_traits ref_traits[GGML_TYPE_COUNT] = {
	[GGML_TYPE_F32] = TRAITS(GGML_TYPE_F32, f32_to_float, f32_from_float, f32_dot, f32_from_float),
	[GGML_TYPE_F16] = TRAITS(GGML_TYPE_F16, f16_to_float, f16_from_float, f16_dot, f16_from_float),
	[GGML_TYPE_BF16] = TRAITS(GGML_TYPE_BF16, bf16_to_float, bf16_from_float, bf16_dot, bf16_from_float),
	[GGML_TYPE_Q8_0] = TRAITS(GGML_TYPE_Q8_0, q8_0_to_float, q8_0_from_float, q8_0_dot, q8_0_quantize),
	[GGML_TYPE_Q4_0] = TRAITS(GGML_TYPE_Q8_0, q4_0_to_float, q4_0_from_float, q4_0_dot, q4_0_from_float),
	[GGML_TYPE_Q4_1] = TRAITS(GGML_TYPE_Q8_1, q4_1_to_float, q4_1_from_float, q4_1_dot, q4_1_from_float),
	[GGML_TYPE_Q5_0] = TRAITS(GGML_TYPE_Q8_0, q5_0_to_float, q5_0_from_float, q5_0_dot, q5_0_from_float),
	[GGML_TYPE_Q5_1] = TRAITS(GGML_TYPE_Q8_1, q5_1_to_float, q5_1_from_float, q5_1_dot, q5_1_from_float),
	[GGML_TYPE_Q8_1] = TRAITS(GGML_TYPE_Q8_1, q8_1_to_float, q8_1_from_float, q8_1_dot, NULL),
	[GGML_TYPE_Q4_K] = TRAITS(GGML_TYPE_Q8_K, quant_q4_K_to_float, quant_q4_K_from_float, quant_q4_K_dot, quant_q4_K_from_float),
	[GGML_TYPE_Q5_K] = TRAITS(GGML_TYPE_Q8_K, quant_q5_K_to_float, quant_q5_K_from_float, quant_q5_K_dot, quant_q5_K_from_float),
	[GGML_TYPE_Q6_K] = TRAITS(GGML_TYPE_Q8_K, quant_q6_K_to_float, quant_q6_K_from_float, quant_q6_K_dot, quant_q6_K_from_float),
	[GGML_TYPE_Q8_K] = TRAITS(GGML_TYPE_Q8_K, quant_q8_K_to_float, quant_q8_K_from_float, quant_q8_K_dot, NULL),
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
#if defined(__x86_64__)
	if (quant_avx2_usable()) {
		traits[GGML_TYPE_F32].vec_dot = quant_avx2_f32_dot;
		traits[GGML_TYPE_F16].vec_dot = quant_avx2_f16_dot;
		traits[GGML_TYPE_Q8_0].vec_dot = quant_avx2_q8_0_dot;
		traits[GGML_TYPE_Q4_0].vec_dot = quant_avx2_q4_0_dot;
		traits[GGML_TYPE_Q4_1].vec_dot = quant_avx2_q4_1_dot;
		traits[GGML_TYPE_Q5_0].vec_dot = quant_avx2_q5_0_dot;
		traits[GGML_TYPE_Q5_1].vec_dot = quant_avx2_q5_1_dot;
		traits[GGML_TYPE_BF16].vec_dot = quant_avx2_bf16_dot;
		traits[GGML_TYPE_Q4_K].vec_dot = quant_avx2_q4_K_dot;
		traits[GGML_TYPE_Q5_K].vec_dot = quant_avx2_q5_K_dot;
		traits[GGML_TYPE_Q6_K].vec_dot = quant_avx2_q6_K_dot;
		traits[GGML_TYPE_Q8_0].gemm = quant_avx2_q8_0_gemm;
		traits[GGML_TYPE_Q8_0].from_float = quant_avx2_q8_0_from_float;
		traits[GGML_TYPE_Q5_0].gemm = quant_avx2_q5_0_gemm;
		traits[GGML_TYPE_Q4_0].gemm = quant_avx2_q4_0_gemm;
		traits[GGML_TYPE_Q4_0].repack = quant_avx2_q4_0_repack8;
		traits[GGML_TYPE_Q4_0].gemm_packed = quant_avx2_q4_0x8_gemm;
		traits[GGML_TYPE_Q4_K].gemm = quant_avx2_q4_K_gemm;
		traits[GGML_TYPE_Q6_K].gemm = quant_avx2_q6_K_gemm;
		simd_name = "avx2";
	}
#elif defined(__aarch64__)
	/* ASIMD is baseline on arm64; only the dot-product instructions need asking for */
	bool dotprod = quant_neon_dotprod_usable();
	quant_neon_install(traits, dotprod);
	simd_name = dotprod ? "neon-dotprod" : "neon";
#endif
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
