/*
 * quant_neon.c - arm64 NEON dot products (and Q8_0/Q4_0 gemm tiles) for the
 * types of quant.c and quant_k.c. Built on every target, but only arm64
 * gets code: elsewhere this file is empty and quant.c never asks for it.
 *
 * ASIMD is part of the arm64 baseline, so the plain set needs no check.
 * The dot-product instructions (SDOT, ARMv8.2) are optional: a second set,
 * compiled for them with a target attribute, is chosen at run time when
 * the CPU reports them.
 *
 * Every kernel gives the portable reference kernel's float bit for bit.
 * Integer sums are exact whichever instructions make them, so what has to
 * match is the float side: the reference keeps 8 float lanes, lane k
 * holding bytes 4k..4k+3 of each 32-byte chunk (two float32x4_t here), adds
 * into them with the same fused or unfused operations, and folds them in
 * the same order. SDOT produces exactly those per-4-byte int32 lanes, and
 * the plain set builds the same lanes from widening multiplies and
 * pairwise adds, so both sets share one body per kernel, parameterized by
 * that one step (see dot16_fn).
 */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

#include "engine/quant_simd.h"

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

/* The reference rounds every float product and sum on its own; clang would otherwise fuse a*b+c. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define DOTPROD __attribute__((target("dotprod")))
#else
/* GCC's arm_neon.h declares SDOT for this architecture level; every CPU with SDOT has it */
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

/*
 * Kernel bodies are always inlined into the wrappers of both sets, so the
 * dot16_fn they are given is a constant there and becomes inline code of
 * that set's instructions.
 */
#define BODY static inline __attribute__((always_inline))

/* lane k = sum of x[j]*y[j] over j = 4k .. 4k+3 (quant_lanes8 on 16 bytes) */
typedef int32x4_t (*dot16_fn)(int8x16_t x, int8x16_t y);

/* Products of int8 fit int16 (at most 128*128); pairwise widening adds then give the 4-byte sums. */
static inline int32x4_t dot16_mull(int8x16_t x, int8x16_t y)
{
	int16x8_t lo = vmull_s8(vget_low_s8(x), vget_low_s8(y));
	int16x8_t hi = vmull_high_s8(x, y);
	return vpaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi));
}

DOTPROD static inline int32x4_t dot16_sdot(int8x16_t x, int8x16_t y)
{
#if defined(__clang__) && __clang_major__ < 16 && !defined(__ARM_FEATURE_DOTPROD)
	/* older clangs declare the intrinsic only for builds that target dotprod as a whole */
	int32x4_t r = vdupq_n_s32(0);
	__asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(r) : "w"(x), "w"(y));
	return r;
#else
	return vdotq_s32(vdupq_n_s32(0), x, y);
#endif
}

/* Half -> float conversion is exact, as fp16_to_f32. */
static inline float h2f(uint16_t h)
{
	return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* (v0 + v2) + (v1 + v3) */
static inline float hsum4(float32x4_t v)
{
	float32x2_t t = vadd_f32(vget_low_f32(v), vget_high_f32(v));
	return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

/* quant_hsum8 of the lanes lo (0-3) and hi (4-7) */
static inline float hsum8(float32x4_t lo, float32x4_t hi)
{
	return hsum4(vaddq_f32(lo, hi));
}

/* ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)), how the F32 and F16 references fold */
static inline float fold8(float32x4_t lo, float32x4_t hi)
{
	float32x4_t p = vpaddq_f32(lo, hi);
	p = vpaddq_f32(p, p);
	return vgetq_lane_f32(p, 0) + vgetq_lane_f32(p, 1);
}

/* ---- F32, F16, BF16 -------------------------------------------------------- */

static float f32_dot(int64_t n, const void *wv, const void *av)
{
	const float *w = wv, *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) { /* multiply, then add: the reference does not fuse */
		lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(w + i), vld1q_f32(a + i)));
		hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(w + i + 4), vld1q_f32(a + i + 4)));
	}
	float s = fold8(lo, hi);
	for (; i < n; i++) s += w[i] * a[i];
	return s;
}

static inline float32x4_t f16x4(const uint16_t *p)
{
	return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static float f16_dot(int64_t n, const void *wv, const void *av)
{
	const uint16_t *w = wv, *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		lo = vaddq_f32(lo, vmulq_f32(f16x4(w + i), f16x4(a + i)));
		hi = vaddq_f32(hi, vmulq_f32(f16x4(w + i + 4), f16x4(a + i + 4)));
	}
	float s = fold8(lo, hi);
	for (; i < n; i++) s += h2f(w[i]) * h2f(a[i]);
	return s;
}

/* bf16 is the top half of a float */
static inline float32x4_t bf16x4(const uint16_t *p)
{
	return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

/* quant.c's 32 lanes as c[0..7], folded as it folds them (the products are exact: mul+add = fma). */
static float bf16_dot(int64_t n, const void *wv, const void *av)
{
	const uint16_t *w = wv, *a = av;
	float32x4_t c[8];
	for (int k = 0; k < 8; k++) c[k] = vdupq_n_f32(0.0f);
	int64_t i = 0;
	for (; i + 32 <= n; i += 32)
		for (int k = 0; k < 8; k++) c[k] = vaddq_f32(c[k], vmulq_f32(bf16x4(w + i + 4 * k), bf16x4(a + i + 4 * k)));
	float32x4_t vlo = vaddq_f32(vaddq_f32(c[0], c[4]), vaddq_f32(c[2], c[6]));
	float32x4_t vhi = vaddq_f32(vaddq_f32(c[1], c[5]), vaddq_f32(c[3], c[7]));
	double s = (double)hsum4(vaddq_f32(vhi, vlo));
	for (; i < n; i++) s += (double)(bf16_to_f32(w[i]) * bf16_to_f32(a[i]));
	return (float)s;
}

/* ---- 32-element blocks ----------------------------------------------------- */

/* acc (lanes lo, hi) += d * (the 8 int32 lanes of x . y), fused per lane as the reference's fmaf */
BODY void fma_block(float32x4_t *lo, float32x4_t *hi, int8x16_t x0, int8x16_t x1, const int8_t *y, float d,
		    dot16_fn dot)
{
	*lo = vfmaq_n_f32(*lo, vcvtq_f32_s32(dot(x0, vld1q_s8(y))), d);
	*hi = vfmaq_n_f32(*hi, vcvtq_f32_s32(dot(x1, vld1q_s8(y + 16))), d);
}

/* The 32 nibbles of qs[16]: low nibbles are elements 0..15, high nibbles 16..31. */
static inline void nibbles(const uint8_t *qs, uint8x16_t *x0, uint8x16_t *x1)
{
	uint8x16_t q = vld1q_u8(qs);
	*x0 = vandq_u8(q, vdupq_n_u8(0x0f));
	*x1 = vshrq_n_u8(q, 4);
}

/* Bit 4 of each of the 32 levels of a Q5_0/Q5_1 block (bit j of the little-endian qh), as 0 or 16. */
static inline void q5_high(const uint8_t qh[4], uint8x16_t *h0, uint8x16_t *h1)
{
	static const uint8_t bit[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
	uint8x16_t m = vld1q_u8(bit), sixteen = vdupq_n_u8(16);
	*h0 = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), m), sixteen);
	*h1 = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), m), sixteen);
}

/* The 32 levels of a Q5_0/Q5_1 block minus offset, as signed bytes. */
static inline void q5_levels(const uint8_t qh[4], const uint8_t *qs, int offset, int8x16_t *x0, int8x16_t *x1)
{
	uint8x16_t l0, l1, h0, h1;
	nibbles(qs, &l0, &l1);
	q5_high(qh, &h0, &h1);
	int8x16_t off = vdupq_n_s8((int8_t)offset);
	*x0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l0, h0)), off);
	*x1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l1, h1)), off);
}

BODY float q8_0_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q8_0 *w = wv, *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	for (int64_t i = 0; i < n / QK8_0; i++)
		fma_block(&lo, &hi, vld1q_s8(w[i].qs), vld1q_s8(w[i].qs + 16), a[i].qs, h2f(w[i].d) * h2f(a[i].d), dot);
	return hsum8(lo, hi);
}

/* The exact integer sum of a Q4_0 x Q8_0 block. */
BODY int32_t q4_0_sum(const struct block_q4_0 *w, const int8_t *y, dot16_fn dot)
{
	uint8x16_t l0, l1;
	nibbles(w->qs, &l0, &l1);
	int8x16_t eight = vdupq_n_s8(8);
	int8x16_t x0 = vsubq_s8(vreinterpretq_s8_u8(l0), eight), x1 = vsubq_s8(vreinterpretq_s8_u8(l1), eight);
	return vaddvq_s32(vaddq_s32(dot(x0, vld1q_s8(y)), dot(x1, vld1q_s8(y + 16))));
}

/* One fused multiply-add per block, in block order, as quant.c's q4_0_dot. */
BODY float q4_0_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q4_0 *w = wv;
	const struct block_q8_0 *a = av;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK4_0; i++)
		s = fmaf((float)q4_0_sum(&w[i], a[i].qs, dot), h2f(w[i].d) * h2f(a[i].d), s);
	return s;
}

BODY float q4_1_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q4_1 *w = wv;
	const struct block_q8_1 *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	float mins = 0.0f;
	for (int64_t i = 0; i < n / QK4_1; i++) {
		mins += h2f(w[i].m) * h2f(a[i].s);
		uint8x16_t x0, x1;
		nibbles(w[i].qs, &x0, &x1);
		fma_block(&lo, &hi, vreinterpretq_s8_u8(x0), vreinterpretq_s8_u8(x1), a[i].qs, h2f(w[i].d) * h2f(a[i].d),
			  dot);
	}
	return hsum8(lo, hi) + mins;
}

BODY float q5_0_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q5_0 *w = wv;
	const struct block_q8_0 *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	for (int64_t i = 0; i < n / QK5_0; i++) {
		int8x16_t x0, x1;
		q5_levels(w[i].qh, w[i].qs, 16, &x0, &x1);
		fma_block(&lo, &hi, x0, x1, a[i].qs, h2f(w[i].d) * h2f(a[i].d), dot);
	}
	return hsum8(lo, hi);
}

BODY float q5_1_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q5_1 *w = wv;
	const struct block_q8_1 *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	float mins = 0.0f;
	for (int64_t i = 0; i < n / QK5_1; i++) {
		mins += h2f(w[i].m) * h2f(a[i].s);
		int8x16_t x0, x1;
		q5_levels(w[i].qh, w[i].qs, 0, &x0, &x1);
		fma_block(&lo, &hi, x0, x1, a[i].qs, h2f(w[i].d) * h2f(a[i].d), dot);
	}
	return hsum8(lo, hi) + mins;
}

/* ---- K-quants ------------------------------------------------------------- */

/* 32 levels x0|x1 against y into the int32 lanes: lanes 0-3 scaled by s0, 4-7 by s1 */
BODY void k_chunk(int32x4_t *lo, int32x4_t *hi, int8x16_t x0, int8x16_t x1, const int8_t *y, int32_t s0, int32_t s1,
		  dot16_fn dot)
{
	*lo = vmlaq_n_s32(*lo, dot(x0, vld1q_s8(y)), s0);
	*hi = vmlaq_n_s32(*hi, dot(x1, vld1q_s8(y + 16)), s1);
}

/*
 * The min term of a Q4_K/Q5_K super-block in 4 lanes (k4_min_lanes of
 * quant_k.c): mn[2k]*S[2k] + mn[2k+1]*S[2k+1], S[j] = bsums[2j] + bsums[2j+1],
 * which fits int16 for Q8_K's sums of 16 int8.
 */
static inline int32x4_t k4_min_lanes(const uint8_t mn[8], const int16_t bsums[16])
{
	int16x8_t s = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
	int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
	return vpaddq_s32(vmull_s16(vget_low_s16(m), vget_low_s16(s)), vmull_high_s16(m, s));
}

/*
 * The integer lanes of a Q4_K/Q5_K super-block: sub-blocks 2p and 2p+1 are
 * the low and high nibbles of qs[32p..], each with bit 2p or 2p+1 of qh
 * as bit 4 when qh is given (Q5_K).
 */
BODY void k4_lanes(const uint8_t *qs, const uint8_t *qh, const uint8_t sc[8], const int8_t *y, int32x4_t *lo,
		   int32x4_t *hi, dot16_fn dot)
{
	const uint8x16_t low4 = vdupq_n_u8(15), sixteen = vdupq_n_u8(16);
	uint8x16_t h0 = vdupq_n_u8(0), h1 = h0;
	if (qh) h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
	*lo = *hi = vdupq_n_s32(0);
	for (int j = 0; j < 8; j++) {
		const uint8_t *q = qs + 32 * (j / 2);
		uint8x16_t q0 = vld1q_u8(q), q1 = vld1q_u8(q + 16);
		if (j & 1) q0 = vshrq_n_u8(q0, 4), q1 = vshrq_n_u8(q1, 4);
		else q0 = vandq_u8(q0, low4), q1 = vandq_u8(q1, low4);
		/* bit j of qh to bit 4: a shift by 4 - j (negative: right) */
		int8x16_t sh = vdupq_n_s8((int8_t)(4 - j));
		q0 = vorrq_u8(q0, vandq_u8(vshlq_u8(h0, sh), sixteen));
		q1 = vorrq_u8(q1, vandq_u8(vshlq_u8(h1, sh), sixteen));
		k_chunk(lo, hi, vreinterpretq_s8_u8(q0), vreinterpretq_s8_u8(q1), y + 32 * j, sc[j], sc[j], dot);
	}
}

BODY float q4_K_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q4_K *w = wv;
	const struct block_q8_K *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo, acc_min = lo;
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint8_t sc[8], mn[8];
		quant_k4_unpack(w[i].scales, sc, mn);
		float d = a[i].d * h2f(w[i].d), dmin = -a[i].d * h2f(w[i].dmin);
		int32x4_t il, ih;
		k4_lanes(w[i].qs, NULL, sc, a[i].qs, &il, &ih, dot);
		lo = vfmaq_n_f32(lo, vcvtq_f32_s32(il), d);
		hi = vfmaq_n_f32(hi, vcvtq_f32_s32(ih), d);
		acc_min = vfmaq_n_f32(acc_min, vcvtq_f32_s32(k4_min_lanes(mn, a[i].bsums)), dmin);
	}
	return hsum8(lo, hi) + hsum4(acc_min);
}

BODY float q5_K_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q5_K *w = wv;
	const struct block_q8_K *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	float mins = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint8_t sc[8], mn[8];
		quant_k4_unpack(w[i].scales, sc, mn);
		float d = a[i].d * h2f(w[i].d), dmin = -a[i].d * h2f(w[i].dmin);
		int32x4_t il, ih;
		k4_lanes(w[i].qs, w[i].qh, sc, a[i].qs, &il, &ih, dot);
		lo = vfmaq_n_f32(lo, vcvtq_f32_s32(il), d);
		hi = vfmaq_n_f32(hi, vcvtq_f32_s32(ih), d);
		/* one scalar min term per super-block, fused (quant_k.c's order) */
		mins = fmaf(dmin, (float)vaddvq_s32(k4_min_lanes(mn, a[i].bsums)), mins);
	}
	return hsum8(lo, hi) + mins;
}

/*
 * The integer lanes of a Q6_K super-block. Chunk c of half h (elements
 * 128h + 32c ..) has its low 4 bits in ql[64h + 32(c&1) ..], low or high
 * nibbles for c < 2 or not, and its high 2 bits at bit 2c of qh[32h ..];
 * lanes 0-3 of a chunk are one sub-block of 16 (scale 2c'), 4-7 the next.
 */
BODY void q6_lanes(const struct block_q6_K *w, const int8_t *y, int32x4_t *lo, int32x4_t *hi, dot16_fn dot)
{
	const uint8x16_t low4 = vdupq_n_u8(15), low2 = vdupq_n_u8(3);
	const int8x16_t off = vdupq_n_s8(32);
	*lo = *hi = vdupq_n_s32(0);
	for (int h = 0; h < 2; h++)
		for (int c = 0; c < 4; c++) {
			int8x16_t x[2];
			for (int t = 0; t < 2; t++) {
				uint8x16_t l = vld1q_u8(w->ql + 64 * h + 32 * (c & 1) + 16 * t);
				uint8x16_t q = c < 2 ? vandq_u8(l, low4) : vshrq_n_u8(l, 4);
				uint8x16_t hb = vshlq_u8(vld1q_u8(w->qh + 32 * h + 16 * t), vdupq_n_s8((int8_t)(-2 * c)));
				q = vorrq_u8(q, vshlq_n_u8(vandq_u8(hb, low2), 4));
				x[t] = vsubq_s8(vreinterpretq_s8_u8(q), off);
			}
			int k = 4 * h + c;
			k_chunk(lo, hi, x[0], x[1], y + 32 * k, w->scales[2 * k], w->scales[2 * k + 1], dot);
		}
}

BODY float q6_K_dot(int64_t n, const void *wv, const void *av, dot16_fn dot)
{
	const struct block_q6_K *w = wv;
	const struct block_q8_K *a = av;
	float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int32x4_t il, ih;
		q6_lanes(&w[i], a[i].qs, &il, &ih, dot);
		float d = a[i].d * h2f(w[i].d);
		lo = vfmaq_n_f32(lo, vcvtq_f32_s32(il), d);
		hi = vfmaq_n_f32(hi, vcvtq_f32_s32(ih), d);
	}
	return hsum8(lo, hi);
}

/* ---- gemm tiles -------------------------------------------------------------- */

/*
 * Each weight block is loaded once for up to GEMM_COLS activation columns;
 * every output goes through exactly the operations of the vec_dot of the
 * same set, so tiles and dot products agree bit for bit.
 */
enum { GEMM_COLS = 4 };

static inline const void *row_at(const void *base, size_t stride, int k)
{
	return (const uint8_t *)base + (size_t)k * stride;
}

BODY void q8_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc, float *out,
		    size_t os, dot16_fn dot)
{
	for (int r = 0; r < nr; r++) {
		const struct block_q8_0 *wr = row_at(w, ws, r);
		for (int c0 = 0; c0 < nc; c0 += GEMM_COLS) {
			int cn = nc - c0 < GEMM_COLS ? nc - c0 : GEMM_COLS;
			const struct block_q8_0 *ac[GEMM_COLS];
			float32x4_t lo[GEMM_COLS], hi[GEMM_COLS];
			for (int j = 0; j < cn; j++) ac[j] = row_at(a, as, c0 + j), lo[j] = hi[j] = vdupq_n_f32(0.0f);
			for (int64_t i = 0; i < n / QK8_0; i++) {
				int8x16_t x0 = vld1q_s8(wr[i].qs), x1 = vld1q_s8(wr[i].qs + 16);
				float dw = h2f(wr[i].d);
				for (int j = 0; j < cn; j++) fma_block(&lo[j], &hi[j], x0, x1, ac[j][i].qs, dw * h2f(ac[j][i].d), dot);
			}
			for (int j = 0; j < cn; j++) out[(size_t)(c0 + j) * os + (size_t)r] = hsum8(lo[j], hi[j]);
		}
	}
}

BODY void q4_0_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nc, float *out,
		    size_t os, dot16_fn dot)
{
	for (int r = 0; r < nr; r++) {
		const struct block_q4_0 *wr = row_at(w, ws, r);
		for (int c0 = 0; c0 < nc; c0 += GEMM_COLS) {
			int cn = nc - c0 < GEMM_COLS ? nc - c0 : GEMM_COLS;
			const struct block_q8_0 *ac[GEMM_COLS];
			float s[GEMM_COLS];
			for (int j = 0; j < cn; j++) ac[j] = row_at(a, as, c0 + j), s[j] = 0.0f;
			for (int64_t i = 0; i < n / QK4_0; i++) {
				float dw = h2f(wr[i].d);
				for (int j = 0; j < cn; j++)
					s[j] = fmaf((float)q4_0_sum(&wr[i], ac[j][i].qs, dot), dw * h2f(ac[j][i].d), s[j]);
			}
			for (int j = 0; j < cn; j++) out[(size_t)(c0 + j) * os + (size_t)r] = s[j];
		}
	}
}

/* ---- the two sets ------------------------------------------------------------ */

/* The entry points of one set: dot is its integer step, attr what it is compiled for. */
#define NEON_SET(sfx, attr, dot)                                                                                   \
	attr static float q8_0_dot_##sfx(int64_t n, const void *w, const void *a) { return q8_0_dot(n, w, a, dot); } \
	attr static float q4_0_dot_##sfx(int64_t n, const void *w, const void *a) { return q4_0_dot(n, w, a, dot); } \
	attr static float q4_1_dot_##sfx(int64_t n, const void *w, const void *a) { return q4_1_dot(n, w, a, dot); } \
	attr static float q5_0_dot_##sfx(int64_t n, const void *w, const void *a) { return q5_0_dot(n, w, a, dot); } \
	attr static float q5_1_dot_##sfx(int64_t n, const void *w, const void *a) { return q5_1_dot(n, w, a, dot); } \
	attr static float q4_K_dot_##sfx(int64_t n, const void *w, const void *a) { return q4_K_dot(n, w, a, dot); } \
	attr static float q5_K_dot_##sfx(int64_t n, const void *w, const void *a) { return q5_K_dot(n, w, a, dot); } \
	attr static float q6_K_dot_##sfx(int64_t n, const void *w, const void *a) { return q6_K_dot(n, w, a, dot); } \
	attr static void q8_0_gemm_##sfx(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as,      \
					 int nc, float *out, size_t os)                                              \
	{                                                                                                          \
		q8_0_gemm(n, w, ws, nr, a, as, nc, out, os, dot);                                                  \
	}                                                                                                          \
	attr static void q4_0_gemm_##sfx(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as,      \
					 int nc, float *out, size_t os)                                              \
	{                                                                                                          \
		q4_0_gemm(n, w, ws, nr, a, as, nc, out, os, dot);                                                  \
	}                                                                                                          \
	static void install_##sfx(struct quant_traits *t)                                                          \
	{                                                                                                          \
		t[GGML_TYPE_Q8_0].vec_dot = q8_0_dot_##sfx;                                                        \
		t[GGML_TYPE_Q4_0].vec_dot = q4_0_dot_##sfx;                                                        \
		t[GGML_TYPE_Q4_1].vec_dot = q4_1_dot_##sfx;                                                        \
		t[GGML_TYPE_Q5_0].vec_dot = q5_0_dot_##sfx;                                                        \
		t[GGML_TYPE_Q5_1].vec_dot = q5_1_dot_##sfx;                                                        \
		t[GGML_TYPE_Q4_K].vec_dot = q4_K_dot_##sfx;                                                        \
		t[GGML_TYPE_Q5_K].vec_dot = q5_K_dot_##sfx;                                                        \
		t[GGML_TYPE_Q6_K].vec_dot = q6_K_dot_##sfx;                                                        \
		t[GGML_TYPE_Q8_0].gemm = q8_0_gemm_##sfx;                                                          \
		t[GGML_TYPE_Q4_0].gemm = q4_0_gemm_##sfx;                                                          \
	}

NEON_SET(plain, , dot16_mull)
NEON_SET(sdot, DOTPROD, dot16_sdot)

void quant_neon_install(struct quant_traits traits[GGML_TYPE_COUNT], bool dotprod)
{
	traits[GGML_TYPE_F32].vec_dot = f32_dot;
	traits[GGML_TYPE_F16].vec_dot = f16_dot;
	traits[GGML_TYPE_BF16].vec_dot = bf16_dot;
	if (dotprod) install_sdot(traits);
	else install_plain(traits);
}

bool quant_neon_dotprod_usable(void)
{
#if defined(__linux__)
	return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
	int v = 0;
	size_t len = sizeof v;
	return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v;
#else
	return false;
#endif
}
#endif
