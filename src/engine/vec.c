/*
 * vec.c - float loops of the forward pass: portable and AVX2 (see vec.h).
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "engine/vec.h"
#include "sam/quant.h"

static float dot_ref(const float *x, const float *y, int n)
{
	float acc[8] = { 0 };
	int i = 0;
	for (; i + 8 <= n; i += 8)
		for (int u = 0; u < 8; u++) acc[u] = fmaf(x[i + u], y[i + u], acc[u]);
	float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	for (; i < n; i++) s = fmaf(x[i], y[i], s);
	return s;
}

static void axpy_ref(float *y, float a, const float *x, int n)
{
	for (int i = 0; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

static void dots_ref(float *out, const float *q, const float *k, long stride, int nk, int n)
{
	for (int t = 0; t < nk; t++) out[t] = dot_ref(q, k + (size_t)t * (size_t)stride, n);
}

static void wsum_ref(float *out, const float *p, const float *v, long stride, int nv, int n)
{
	memset(out, 0, (size_t)n * sizeof *out);
	for (int t = 0; t < nv; t++) axpy_ref(out, p[t], v + (size_t)t * (size_t)stride, n);
}

void vec_softmax_scaled(float *p, int n, float scale)
{
	float max = -INFINITY;
	for (int t = 0; t < n; t++) {
		p[t] *= scale;
		if (p[t] > max) max = p[t];
	}
	double sum = 0.0;
	for (int t = 0; t < n; t++) {
		p[t] = expf(p[t] - max);
		sum += (double)p[t];
	}
	float inv = (float)(1.0 / sum);
	for (int t = 0; t < n; t++) p[t] *= inv;
}

static const struct vec_ops ref = { dot_ref, axpy_ref, dots_ref, wsum_ref };

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

/* ((0+1)+(2+3))+((4+5)+(6+7)) of the lanes, as dot_ref folds its 8 sums */
AVX2 static inline float fold8(__m256 acc)
{
	__m256 p = _mm256_hadd_ps(acc, acc); /* [0+1, 2+3, 0+1, 2+3 | 4+5, 6+7, ...] */
	__m256 q = _mm256_hadd_ps(p, p);     /* [(0+1)+(2+3) ... | (4+5)+(6+7) ...] */
	return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(q), _mm256_extractf128_ps(q, 1)));
}

AVX2 static float dot_avx2(const float *x, const float *y, int n)
{
	__m256 acc = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc);
	float s = fold8(acc);
	for (; i < n; i++) s = fmaf(x[i], y[i], s);
	return s;
}

AVX2 static void axpy_avx2(float *y, float a, const float *x, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* 4 keys at a time: 4 independent chains of adds instead of one */
AVX2 static void dots_avx2(float *out, const float *q, const float *k, long stride, int nk, int n)
{
	int t = 0;
	if (n % 8 == 0)
		for (; t + 4 <= nk; t += 4) {
			const float *k0 = k + (size_t)t * (size_t)stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
			__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
			for (int i = 0; i < n; i += 8) {
				__m256 x = _mm256_loadu_ps(q + i);
				a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k0 + i), a0);
				a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k1 + i), a1);
				a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k2 + i), a2);
				a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k3 + i), a3);
			}
			out[t] = fold8(a0), out[t + 1] = fold8(a1), out[t + 2] = fold8(a2), out[t + 3] = fold8(a3);
		}
	for (; t < nk; t++) out[t] = dot_avx2(q, k + (size_t)t * (size_t)stride, n);
}

/* up to 64 outputs stay in registers across all the values */
AVX2 static void wsum_avx2(float *out, const float *p, const float *v, long stride, int nv, int n)
{
	int i = 0;
	for (; i + 64 <= n; i += 64) {
		__m256 o[8];
		for (int u = 0; u < 8; u++) o[u] = _mm256_setzero_ps();
		for (int t = 0; t < nv; t++) {
			__m256 pt = _mm256_set1_ps(p[t]);
			const float *vt = v + (size_t)t * (size_t)stride + i;
			for (int u = 0; u < 8; u++) o[u] = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 8 * u), o[u]);
		}
		for (int u = 0; u < 8; u++) _mm256_storeu_ps(out + i + 8 * u, o[u]);
	}
	if (i < n) {
		memset(out + i, 0, (size_t)(n - i) * sizeof *out);
		for (int t = 0; t < nv; t++) axpy_avx2(out + i, p[t], v + (size_t)t * (size_t)stride + i, n - i);
	}
}

static const struct vec_ops avx2 = { dot_avx2, axpy_avx2, dots_avx2, wsum_avx2 };
#endif

static const struct vec_ops *chosen = &ref;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The same instruction set as the quant kernels (quant.c decides, SAM_NO_SIMD included). */
static void pick(void)
{
#if defined(__x86_64__)
	if (!strcmp(quant_simd_name(), "avx2")) chosen = &avx2;
#endif
}

const struct vec_ops *vec_ops(void)
{
	pthread_once(&once, pick);
	return chosen;
}

const struct vec_ops *vec_ops_ref(void)
{
	return &ref;
}
