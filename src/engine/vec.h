/*
 * vec.h - the float loops of attention (scores q.k and the weighted sum of
 * values), with AVX2+FMA versions chosen at run time that give the same
 * floats as the portable ones: 8 lanes of fused multiply-adds (one
 * rounding per element, half the instructions of a multiply and an add),
 * folded in a fixed order. The portable loops use fmaf, which is exact
 * everywhere and fast where the CPU has FMA.
 */
#ifndef SAM_ENGINE_VEC_H
#define SAM_ENGINE_VEC_H

struct vec_ops {
	/* sum of x[i]*y[i]: lane u fuses i = u mod 8 over whole groups of 8,
	 * folded ((0+1)+(2+3))+((4+5)+(6+7)); the tail is fused in after, in order */
	float (*dot)(const float *x, const float *y, int n);
	/* y[i] = fmaf(a, x[i], y[i]) */
	void (*axpy)(float *y, float a, const float *x, int n);
	/* out[t] = dot(q, k + t*stride, n) for t < nk: the scores of nk keys */
	void (*dots)(float *out, const float *q, const float *k, long stride, int nk, int n);
	/*
	 * out[i] = sum over t < nv of p[t] * v[t*stride + i], fused from 0 in
	 * the order of t: the weighted sum of nv values (= nv axpy from zero)
	 */
	void (*wsum)(float *out, const float *p, const float *v, long stride, int nv, int n);
};

/*
 * The attention weights of n scores in place: p[t] = softmax(scale * p[t]),
 * the exponentials summed in double. The engine and the trainer both call
 * it, so their losses agree to the bit.
 */
void vec_softmax_scaled(float *p, int n, float scale);

/* The fastest set this CPU runs (SAM_NO_SIMD=1: the portable one). */
const struct vec_ops *vec_ops(void);
/* The portable set, for tests. */
const struct vec_ops *vec_ops_ref(void);

#endif
