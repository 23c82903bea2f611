/*
 * vec.c - float loops of the forward pass: portable and AVX2 (see vec.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant_simd.h"
#include "engine/vec.h"

static float dot_ref(const float *x, const float *y, int n)
{
	float acc[8] = { 0 };
	int i = 0;
	for (; i + 8 <= n; i += 8)
		for (int u = 0; u < 8; u++) acc[u] += x[i + u] * y[i + u];
	float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	for (; i < n; i++) s += x[i] * y[i];
	return s;
}

static void axpy_ref(float *y, float a, const float *x, int n)
{
	for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static const struct vec_ops ref = { dot_ref, axpy_ref };

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

AVX2 static float dot_avx2(const float *x, const float *y, int n)
{
	__m256 acc = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
	/* lanes (0+1), (2+3), ... then the pairs of pairs, as dot_ref */
	__m256 p = _mm256_hadd_ps(acc, acc); /* [0+1, 2+3, 0+1, 2+3 | 4+5, 6+7, ...] */
	__m256 q = _mm256_hadd_ps(p, p);     /* [(0+1)+(2+3) ... | (4+5)+(6+7) ...] */
	float s = _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(q), _mm256_extractf128_ps(q, 1)));
	for (; i < n; i++) s += x[i] * y[i];
	return s;
}

AVX2 static void axpy_avx2(float *y, float a, const float *x, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
	for (; i < n; i++) y[i] += a * x[i];
}

static const struct vec_ops avx2 = { dot_avx2, axpy_avx2 };
#endif

static const struct vec_ops *chosen = &ref;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void pick(void)
{
	const char *off = getenv("SAM_NO_SIMD");
	if (off && *off && strcmp(off, "0")) return;
#if defined(__x86_64__)
	if (quant_avx2_usable()) chosen = &avx2;
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
