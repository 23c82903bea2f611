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
		for (int i = 0; i < n; i++) CHECK(y2[i] == y[i] + 0.37f * x[i]);
	}
}
