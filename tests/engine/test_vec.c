/*
 * test_vec.c - the attention loops: the SIMD set gives the portable set's
 * floats bit for bit, and both are right.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/vec.h"
#include "test.h"

static uint32_t seed = 99;
static float frand(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)(seed >> 8) / (float)(1 << 23) - 1.0f;
}

TEST(vec_dot_and_axpy_match_portable)
{
	const struct vec_ops *v = vec_ops(), *r = vec_ops_ref();
	float x[203], y[203], y1[203], y2[203];
	for (int n = 0; n <= 203; n += (n < 20 ? 1 : 29)) {
		for (int i = 0; i < n; i++) x[i] = frand() * 10.0f, y[i] = frand();
		float a = v->dot(x, y, n), b = r->dot(x, y, n);
		CHECKF(!memcmp(&a, &b, 4), "dot n=%d: %.9g vs %.9g", n, (double)a, (double)b);
		double exact = 0, mag = 0;
		for (int i = 0; i < n; i++) exact += (double)x[i] * y[i], mag += fabs((double)x[i] * y[i]);
		CHECKF(fabs(b - exact) <= 1e-6 * mag + 1e-7, "dot n=%d: %.9g, exact %.9g", n, (double)b, exact);
		memcpy(y1, y, sizeof y), memcpy(y2, y, sizeof y);
		v->axpy(y1, 0.37f, x, n);
		r->axpy(y2, 0.37f, x, n);
		CHECKF(!memcmp(y1, y2, (size_t)n * 4), "axpy n=%d differs", n);
		for (int i = 0; i < n; i++) CHECK(y2[i] == fmaf(0.37f, x[i], y[i]));
	}
}

/* Scores of many keys and weighted sums of many values, at a stride, as the portable loops. */
TEST(vec_dots_and_wsum_match_portable)
{
	const struct vec_ops *v = vec_ops(), *r = vec_ops_ref();
	enum { MAXN = 136, MAXT = 37, STRIDE = 150 };
	static float q[MAXN], k[MAXT * STRIDE], p[MAXT], a[MAXT], b[MAXT], o1[MAXN], o2[MAXN];
	static const int dims[] = { 8, 13, 64, 72, 128, 136 };
	for (int t = 0; t < MAXT * STRIDE; t++) k[t] = frand();
	for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
		for (int nk = 0; nk <= MAXT; nk += 5) {
			int n = dims[d];
			for (int i = 0; i < n; i++) q[i] = frand() * 3.0f;
			for (int t = 0; t < nk; t++) p[t] = (frand() + 1.0f) / 2.0f;
			v->dots(a, q, k, STRIDE, nk, n);
			r->dots(b, q, k, STRIDE, nk, n);
			CHECKF(!memcmp(a, b, (size_t)nk * 4), "dots n=%d nk=%d differ", n, nk);
			for (int t = 0; t < nk; t++) CHECK(b[t] == r->dot(q, k + t * STRIDE, n));
			v->wsum(o1, p, k, STRIDE, nk, n);
			r->wsum(o2, p, k, STRIDE, nk, n);
			CHECKF(!memcmp(o1, o2, (size_t)n * 4), "wsum n=%d nv=%d differ", n, nk);
			for (int i = 0; i < n; i++) {
				float want = 0.0f;
				for (int t = 0; t < nk; t++) want = fmaf(p[t], k[t * STRIDE + i], want);
				CHECK(o2[i] == want);
			}
		}
}
