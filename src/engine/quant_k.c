/*
 * quant_k.c - portable reference kernels for the K-quants Q4_K, Q5_K and
 * Q6_K, and for Q8_K, the type activations are converted to for them.
 * Block layouts are in sam/quant.h.
 *
 * The quantizers are llama.cpp's reference ones (quantize_row_q4_K_ref and
 * friends, which llama-quantize uses when it has no importance matrix),
 * step for step in float arithmetic, so that they write the same bytes.
 * That requires plain IEEE float evaluation: no fused multiply-adds and no
 * reassociation (see the pragma below; the Makefile builds ISO C, where
 * GCC does not contract).
 *
 * The dot products are exact integer sums, scaled in float by d_w * d_a
 * in llama.cpp's x86 (AVX2) order: 8 lanes, lane k holding bytes 4k..4k+3
 * of every 32-byte chunk, each scaled into its own float accumulator with
 * a fused multiply-add per super-block, summed at the end as quant_hsum8.
 * So these portable kernels and the SIMD ones in quant_k_avx2.c give the
 * same float, and it is llama.cpp's.
 */
#include <math.h>
#include <string.h>

#include "engine/quant_simd.h"
#include "sam/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/*
 * Round to nearest, ties to even, for |f| < 2^22: adding 1.5 * 2^23 makes
 * the float's unit in the last place 1, so the addition itself rounds, and
 * the integer sits in the low mantissa bits (llama.cpp's nearest_int).
 */
static inline int round_int(float f)
{
	float v = f + 12582912.0f;
	uint32_t u;
	memcpy(&u, &v, 4);
	return (int)(u & 0x007fffff) - 0x00400000;
}

static inline int clamp_int(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- quantization helpers ------------------------------------------------ */

/*
 * Fit x[i] ~ scale * L[i] - neg_min with L[i] in [0, nmax], minimizing the
 * weighted squared error: start from the full range [min(x, 0), max(x)],
 * then try nstep+1 other level counts (nmax + rmin + k*rdelta over the
 * range), each with its least-squares scale and min, and keep the best.
 * Returns the scale; L gets the levels. (llama.cpp's make_qkx2_quants
 * with use_mad false.)
 */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
			   float rmin, float rdelta, int nstep)
{
	uint8_t Ltry[32];
	float lo = x[0], hi = x[0];
	float sum_w = w[0], sum_x = sum_w * x[0];
	for (int i = 1; i < n; i++) {
		if (x[i] < lo) lo = x[i];
		if (x[i] > hi) hi = x[i];
		sum_w += w[i];
		sum_x += w[i] * x[i];
	}
	if (lo > 0) lo = 0;
	if (hi == lo) {
		memset(L, 0, (size_t)n);
		*neg_min = -lo;
		return 0.0f;
	}
	float iscale = (float)nmax / (hi - lo);
	float scale = 1 / iscale;
	float best = 0;
	for (int i = 0; i < n; i++) {
		L[i] = (uint8_t)clamp_int(round_int(iscale * (x[i] - lo)), 0, nmax);
		float diff = scale * (float)L[i] + lo - x[i];
		best += w[i] * (diff * diff);
	}
	for (int is = 0; is <= nstep; is++) {
		/* lo moves when a better fit is found; later trials start from it */
		iscale = (rmin + rdelta * (float)is + (float)nmax) / (hi - lo);
		float sum_l = 0, sum_l2 = 0, sum_xl = 0;
		for (int i = 0; i < n; i++) {
			int l = clamp_int(round_int(iscale * (x[i] - lo)), 0, nmax);
			Ltry[i] = (uint8_t)l;
			sum_l += w[i] * (float)l;
			sum_l2 += w[i] * (float)l * (float)l;
			sum_xl += w[i] * (float)l * x[i];
		}
		float D = sum_w * sum_l2 - sum_l * sum_l;
		if (!(D > 0)) continue;
		float try_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
		float try_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
		if (try_min > 0) {
			try_min = 0;
			try_scale = sum_xl / sum_l2;
		}
		float err = 0;
		for (int i = 0; i < n; i++) {
			float diff = try_scale * (float)Ltry[i] + try_min - x[i];
			err += w[i] * (diff * diff);
		}
		if (err < best) {
			memcpy(L, Ltry, (size_t)n);
			best = err;
			scale = try_scale;
			lo = try_min;
		}
	}
	*neg_min = -lo;
	return scale;
}

/*
 * Fit x[i] ~ scale * (L[i] - nmax) with L[i] in [0, 2*nmax - 1], weights
 * x[i]^2: from the signed extreme, then 18 nearby level counts, keeping the
 * one with the best weighted least-squares fit. Returns the scale (0 for an
 * all-but-zero group). (llama.cpp's make_qx_quants with rmse_type 1.)
 */
static float fit_scale_sym(int n, int nmax, const float *x, uint8_t *L)
{
	uint8_t Ltry[16];
	float max = 0, amax = 0;
	for (int i = 0; i < n; i++) {
		float ax = fabsf(x[i]);
		if (ax > amax) {
			amax = ax;
			max = x[i];
		}
	}
	if (amax < 1e-15f) {
		memset(L, 0, (size_t)n);
		return 0.0f;
	}
	float iscale = (float)-nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = clamp_int(round_int(iscale * x[i]), -nmax, nmax - 1);
		L[i] = (uint8_t)(l + nmax);
		float w = x[i] * x[i];
		sumlx += w * x[i] * (float)l;
		suml2 += w * (float)l * (float)l;
	}
	float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
	float best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0) continue;
		iscale = -((float)nmax + 0.1f * (float)is) / max;
		sumlx = suml2 = 0;
		for (int i = 0; i < n; i++) {
			int l = clamp_int(round_int(iscale * x[i]), -nmax, nmax - 1);
			Ltry[i] = (uint8_t)(l + nmax);
			float w = x[i] * x[i];
			sumlx += w * x[i] * (float)l;
			suml2 += w * (float)l * (float)l;
		}
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			memcpy(L, Ltry, (size_t)n);
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/*
 * The common part of Q4_K and Q5_K: fit each sub-block of 32, quantize the
 * scales and mins to 6 bits under the fp16 super-scales d and dmin, then
 * requantize every element against its quantized scale and min. L gets the
 * 256 levels in [0, nmax].
 */
static void quantize_k4(const float *x, int nmax, float rmin, int nstep, uint16_t *d, uint16_t *dmin,
			uint8_t scales[K_SCALE_SIZE], uint8_t L[QK_K])
{
	float sc[8], mn[8], w[32];
	float max_sc = 0, max_mn = 0;
	for (int j = 0; j < 8; j++) {
		const float *xs = x + 32 * j;
		float sum_x2 = 0;
		for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
		float av = sqrtf(sum_x2 / 32);
		for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
		sc[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mn[j], rmin, 0.1f, nstep);
		if (sc[j] > max_sc) max_sc = sc[j];
		if (mn[j] > max_mn) max_mn = mn[j];
	}
	float inv_sc = max_sc > 0 ? 63.0f / max_sc : 0.0f;
	float inv_mn = max_mn > 0 ? 63.0f / max_mn : 0.0f;
	uint8_t ls[8], lm[8];
	for (int j = 0; j < 8; j++) {
		/* a negative fit wraps to a large byte, then clamps, as upstream */
		ls[j] = (uint8_t)round_int(inv_sc * sc[j]);
		lm[j] = (uint8_t)round_int(inv_mn * mn[j]);
		if (ls[j] > 63) ls[j] = 63;
		if (lm[j] > 63) lm[j] = 63;
	}
	for (int j = 0; j < 4; j++) {
		scales[j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
		scales[j + 4] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
		scales[j + 8] = (uint8_t)((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
	}
	*d = f32_to_fp16(max_sc / 63.0f);
	*dmin = f32_to_fp16(max_mn / 63.0f);
	for (int j = 0; j < 8; j++) {
		float dd = fp16_to_f32(*d) * (float)ls[j];
		if (dd == 0) continue; /* keep the levels of the fit */
		float dm = fp16_to_f32(*dmin) * (float)lm[j];
		for (int l = 0; l < 32; l++)
			L[32 * j + l] = (uint8_t)clamp_int(round_int((x[32 * j + l] + dm) / dd), 0, nmax);
	}
}

/* ---- Q4_K ---------------------------------------------------------------- */

void quant_q4_K_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q4_K *b = src;
	for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
		float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
		uint8_t sc[8], mn[8];
		quant_k4_unpack(b[i].scales, sc, mn);
		for (int j = 0; j < 8; j++) {
			const uint8_t *q = b[i].qs + 32 * (j / 2);
			int shift = 4 * (j & 1);
			float dj = d * (float)sc[j], mj = dmin * (float)mn[j];
			for (int l = 0; l < 32; l++) dst[32 * j + l] = dj * (float)((q[l] >> shift) & 15) - mj;
		}
	}
}

void quant_q4_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q4_K *b = dst;
	uint8_t L[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
		quantize_k4(src, 15, -1.0f, 20, &b[i].d, &b[i].dmin, b[i].scales, L);
		for (int p = 0; p < 4; p++)
			for (int l = 0; l < 32; l++)
				b[i].qs[32 * p + l] = (uint8_t)(L[64 * p + l] | L[64 * p + 32 + l] << 4);
	}
}

/* The min term in 4 lanes: lane k is mn[2k]*S[2k] + mn[2k+1]*S[2k+1], S[j] the sum of sub-block j's activations. */
static void k4_min_lanes(const uint8_t mn[8], const int16_t bsums[16], int32_t m[4])
{
	for (int k = 0; k < 4; k++)
		m[k] = mn[2 * k] * (bsums[4 * k] + bsums[4 * k + 1]) + mn[2 * k + 1] * (bsums[4 * k + 2] + bsums[4 * k + 3]);
}

/*
 * The scaled integer sums of a Q4_K/Q5_K super-block in 8 lanes (see the
 * file comment), from its 256 levels.
 */
static void k4_lanes(const int8_t L[QK_K], const uint8_t sc[8], const int8_t *y, int32_t lane[8])
{
	for (int k = 0; k < 8; k++) lane[k] = 0;
	for (int j = 0; j < 8; j++) {
		int32_t sub[8];
		quant_lanes8(L + 32 * j, y + 32 * j, sub);
		for (int k = 0; k < 8; k++) lane[k] += sc[j] * sub[k];
	}
}

float quant_q4_K_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q4_K *w = wv;
	const struct block_q8_K *a = av;
	float acc[8] = { 0 }, acc_min[4] = { 0 };
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint8_t sc[8], mn[8];
		quant_k4_unpack(w[i].scales, sc, mn);
		float d = a[i].d * fp16_to_f32(w[i].d), dmin = -a[i].d * fp16_to_f32(w[i].dmin);
		int8_t L[QK_K];
		for (int p = 0; p < 4; p++)
			for (int l = 0; l < 32; l++) {
				L[64 * p + l] = (int8_t)(w[i].qs[32 * p + l] & 15);
				L[64 * p + 32 + l] = (int8_t)(w[i].qs[32 * p + l] >> 4);
			}
		int32_t lane[8], m[4];
		k4_lanes(L, sc, a[i].qs, lane);
		for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
		k4_min_lanes(mn, a[i].bsums, m);
		for (int k = 0; k < 4; k++) acc_min[k] = fmaf(dmin, (float)m[k], acc_min[k]);
	}
	return quant_hsum8(acc) + ((acc_min[0] + acc_min[2]) + (acc_min[1] + acc_min[3]));
}

/* ---- Q5_K ---------------------------------------------------------------- */

void quant_q5_K_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q5_K *b = src;
	for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
		float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
		uint8_t sc[8], mn[8];
		quant_k4_unpack(b[i].scales, sc, mn);
		for (int j = 0; j < 8; j++) {
			const uint8_t *q = b[i].qs + 32 * (j / 2);
			int shift = 4 * (j & 1);
			float dj = d * (float)sc[j], mj = dmin * (float)mn[j];
			for (int l = 0; l < 32; l++) {
				int v = ((q[l] >> shift) & 15) | ((b[i].qh[l] >> j) & 1) << 4;
				dst[32 * j + l] = dj * (float)v - mj;
			}
		}
	}
}

void quant_q5_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q5_K *b = dst;
	uint8_t L[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
		quantize_k4(src, 31, -0.5f, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
		memset(b[i].qh, 0, sizeof b[i].qh);
		for (int p = 0; p < 4; p++)
			for (int l = 0; l < 32; l++) {
				int lo = L[64 * p + l], hi = L[64 * p + 32 + l];
				b[i].qh[l] |= (uint8_t)((lo >> 4) << (2 * p) | (hi >> 4) << (2 * p + 1));
				b[i].qs[32 * p + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
			}
	}
}

float quant_q5_K_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q5_K *w = wv;
	const struct block_q8_K *a = av;
	float acc[8] = { 0 }, mins = 0;
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint8_t sc[8], mn[8];
		quant_k4_unpack(w[i].scales, sc, mn);
		float d = a[i].d * fp16_to_f32(w[i].d), dmin = -a[i].d * fp16_to_f32(w[i].dmin);
		int8_t L[QK_K];
		for (int p = 0; p < 4; p++)
			for (int l = 0; l < 32; l++) {
				int h = w[i].qh[l] >> (2 * p);
				L[64 * p + l] = (int8_t)((w[i].qs[32 * p + l] & 15) | (h & 1) << 4);
				L[64 * p + 32 + l] = (int8_t)((w[i].qs[32 * p + l] >> 4) | (h & 2) << 3);
			}
		int32_t lane[8], m[4];
		k4_lanes(L, sc, a[i].qs, lane);
		for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
		k4_min_lanes(mn, a[i].bsums, m);
		/* one scalar min term per super-block here (llama.cpp's, fused by its compiler) */
		mins = fmaf(dmin, (float)((m[0] + m[1]) + (m[2] + m[3])), mins);
	}
	return quant_hsum8(acc) + mins;
}

/* ---- Q6_K ---------------------------------------------------------------- */

/* Level q in [0, 63] of element e of a Q6_K super-block. */
static inline int q6_level(const struct block_q6_K *b, int e)
{
	int h = e / 128, c = (e % 128) / 32, l = e % 32;
	int lo = b->ql[64 * h + l + 32 * (c & 1)] >> (4 * (c >> 1)) & 15;
	int hi = b->qh[32 * h + l] >> (2 * c) & 3;
	return lo | hi << 4;
}

void quant_q6_K_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q6_K *b = src;
	for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
		float d = fp16_to_f32(b[i].d);
		for (int e = 0; e < QK_K; e++)
			dst[e] = d * (float)b[i].scales[e / 16] * (float)(q6_level(&b[i], e) - 32);
	}
}

void quant_q6_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q6_K *b = dst;
	uint8_t L[QK_K];
	float scales[QK_K / 16];
	for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
		float max_scale = 0, max_abs = 0;
		for (int k = 0; k < QK_K / 16; k++) {
			scales[k] = fit_scale_sym(16, 32, src + 16 * k, L + 16 * k);
			if (fabsf(scales[k]) > max_abs) {
				max_abs = fabsf(scales[k]);
				max_scale = scales[k];
			}
		}
		memset(&b[i], 0, sizeof b[i]);
		if (max_abs < 1e-15f) continue; /* all zero: d = 0 */
		float iscale = -128.0f / max_scale;
		b[i].d = f32_to_fp16(1 / iscale);
		for (int k = 0; k < QK_K / 16; k++) {
			int s = round_int(iscale * scales[k]);
			b[i].scales[k] = (int8_t)(s > 127 ? 127 : s);
		}
		for (int k = 0; k < QK_K / 16; k++) {
			float d = fp16_to_f32(b[i].d) * (float)b[i].scales[k];
			if (d == 0) continue; /* keep the levels of the fit */
			for (int l = 0; l < 16; l++)
				L[16 * k + l] = (uint8_t)(clamp_int(round_int(src[16 * k + l] / d), -32, 31) + 32);
		}
		for (int h = 0; h < 2; h++)
			for (int l = 0; l < 32; l++) {
				const uint8_t *q = L + 128 * h + l;
				b[i].ql[64 * h + l] = (uint8_t)((q[0] & 15) | (q[64] & 15) << 4);
				b[i].ql[64 * h + l + 32] = (uint8_t)((q[32] & 15) | (q[96] & 15) << 4);
				b[i].qh[32 * h + l] = (uint8_t)(q[0] >> 4 | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
			}
	}
}

float quant_q6_K_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q6_K *w = wv;
	const struct block_q8_K *a = av;
	float acc[8] = { 0 };
	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = a[i].d * fp16_to_f32(w[i].d);
		int8_t L[QK_K];
		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
			int8_t *o = L + 128 * h;
			for (int l = 0; l < 32; l++) {
				o[l] = (int8_t)(((ql[l] & 15) | (qh[l] & 3) << 4) - 32);
				o[l + 32] = (int8_t)(((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32);
				o[l + 64] = (int8_t)(((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32);
				o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) - 32);
			}
		}
		/* each 32-element chunk: lanes 0-3 are one sub-block of 16, lanes 4-7 the next */
		int32_t lane[8] = { 0 };
		for (int c = 0; c < 8; c++) {
			int32_t sub[8];
			quant_lanes8(L + 32 * c, a[i].qs + 32 * c, sub);
			for (int k = 0; k < 8; k++) lane[k] += w[i].scales[2 * c + k / 4] * sub[k];
		}
		for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
	}
	return quant_hsum8(acc);
}

/* ---- Q8_K ---------------------------------------------------------------- */

void quant_q8_K_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q8_K *b = src;
	for (int64_t i = 0; i < n / QK_K; i++)
		for (int j = 0; j < QK_K; j++) dst[i * QK_K + j] = b[i].d * (float)b[i].qs[j];
}

/*
 * llama.cpp's quantize_row_q8_K: the multiplier -127/max from the element
 * of largest magnitude (so that one becomes -127 or 127 exactly), rounding
 * to nearest even, d = 1/multiplier, and the sums of each 16 quants.
 */
void quant_q8_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q8_K *b = dst;
	for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
		float max = 0, amax = 0;
		for (int j = 0; j < QK_K; j++) {
			float ax = fabsf(src[j]);
			if (ax > amax) {
				amax = ax;
				max = src[j];
			}
		}
		if (amax == 0) {
			memset(&b[i], 0, sizeof b[i]);
			continue;
		}
		float iscale = -127.0f / max;
		for (int j = 0; j < QK_K; j++) {
			int v = round_int(iscale * src[j]);
			b[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
		}
		for (int k = 0; k < QK_K / 16; k++) {
			int s = 0;
			for (int j = 0; j < 16; j++) s += b[i].qs[16 * k + j];
			b[i].bsums[k] = (int16_t)s;
		}
		b[i].d = 1 / iscale;
	}
}

float quant_q8_K_dot(int64_t n, const void *wv, const void *av)
{
	const struct block_q8_K *w = wv, *a = av;
	float sum = 0;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int32_t sumi = 0;
		for (int j = 0; j < QK_K; j++) sumi += w[i].qs[j] * a[i].qs[j];
		sum += w[i].d * a[i].d * (float)sumi;
	}
	return sum;
}
