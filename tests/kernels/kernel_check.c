/*
 * kernel_check.c - the SIMD dot products and gemm tiles against the
 * portable reference kernels, bit for bit, as one standalone program.
 *
 * It links only the engine's quant sources (no libsam), so it can be
 * cross-compiled and run where the rest of SAM cannot: `make kernel-check`
 * runs it natively (AVX2 on x86-64) and, built static for arm64, under
 * qemu-aarch64 (NEON, with and without the dot-product instructions).
 *
 * For every type and set it compares vec_dot with the reference's on
 * quantized random data, raw random blocks (every bit pattern of the
 * levels), zero and negative scales, activations at +-127, and shapes
 * from one block to many; then every gemm tile (and packed tile) against
 * the same set's vec_dot. One check is a (set, type) pair, passed when all
 * of its comparisons are. Exits 1 when any failed, 2 on bad usage.
 *
 *   kernel-check [--expect NAME] [--summary FILE]
 *
 * --expect: the kernel set quant_simd_name() must report (the run-time
 * choice); --summary: write "passed failed skipped" there, as the test
 * runner does, for the summary line of `make test`.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant_simd.h"
#include "sam/ggml_types.h"
#include "sam/quant.h"

static const uint32_t types[] = { GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0,
				  GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
				  GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
#define NTYPES (sizeof types / sizeof types[0])

/* a kernel set under test: a full table, and whether its F32/F16 floats must equal the reference's */
struct kset {
	const char *name;
	struct quant_traits t[GGML_TYPE_COUNT];
	bool exact_float;
};

static int passed, failed;
static long comparisons;
static int case_bad; /* failures within the current (set, type) check */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t rnd(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}
static float frand(void) /* [-1, 1) */
{
	return (float)(rnd() >> 8) / (float)(1 << 23) - 1.0f;
}

static bool same_bits(float a, float b)
{
	return !memcmp(&a, &b, sizeof a);
}

static void fail(const char *set, uint32_t type, const char *what, int64_t n, float got, float want)
{
	if (case_bad++ < 3)
		printf("  FAIL %s %s %s n=%lld: %a (%.9g), reference %a (%.9g)\n", set, ggml_type_name(type), what,
			(long long)n, (double)got, (double)got, (double)want, (double)want);
}

/* ---- inputs ------------------------------------------------------------------- */

enum wmode { W_QUANT, W_RAW, W_ONES, W_ZERO_SCALE, W_NEG_SCALE, W_MODES };
enum amode { A_RANDOM, A_MAX, A_ZERO, A_WIDE, A_MODES };

/* byte offsets of a block's fp16 scales (d, then dmin or m; -1 when absent) */
static void scale_fields(uint32_t type, int *d, int *m)
{
	*d = 0, *m = -1;
	switch (type) {
	case GGML_TYPE_Q4_1:
	case GGML_TYPE_Q5_1:
	case GGML_TYPE_Q4_K:
	case GGML_TYPE_Q5_K: *m = 2; break;
	case GGML_TYPE_Q6_K: *d = 208; break;
	default: break;
	}
}

static uint16_t half_scale(int mode)
{
	switch (mode) {
	case W_ZERO_SCALE: return rnd() % 2 ? 0x0000 : 0x8000; /* +-0 */
	case W_NEG_SCALE: return f32_to_fp16(-(0.001f + 0.05f * (frand() + 1.0f)));
	default: return f32_to_fp16(0.001f + 0.05f * (frand() + 1.0f));
	}
}

/* A finite float16 or bfloat16 bit pattern: any sign, mantissa and (bounded) exponent, subnormals included. */
static uint16_t small_float_bits(uint32_t type)
{
	if (type == GGML_TYPE_F16) {
		uint16_t h = (uint16_t)rnd();
		return (h & 0x7c00) == 0x7c00 ? (uint16_t)(h & ~0x4000) : h;
	}
	/* bf16: exponents within 2^-70 .. 2^60 keep 32-element sums finite; 0 for subnormals */
	uint32_t e = rnd() % 8 ? 57 + rnd() % 130 : 0;
	return (uint16_t)((rnd() & 0x8000) | e << 7 | (rnd() & 0x7f));
}

static void make_floats(float *x, int64_t n, float scale)
{
	for (int64_t i = 0; i < n; i++) x[i] = frand() * scale;
}

/* A weight row of type, n elements, in one of the modes. */
static void make_weights(uint32_t type, int64_t n, int mode, void *w, float *tmp)
{
	const struct quant_traits *ref = quant_traits_ref(type);
	const struct ggml_type_info *ti = ggml_type_info(type);
	size_t bytes = quant_row_size(type, n);
	if (ti->block == 1) { /* the float types: values, not blocks */
		if (type == GGML_TYPE_F32) {
			float *f = w;
			for (int64_t i = 0; i < n; i++) {
				switch (mode) {
				case W_RAW: f[i] = ldexpf(frand(), (int)(rnd() % 120) - 60); break;
				case W_ONES: f[i] = i % 2 ? 1.0f : -1.0f; break;
				case W_ZERO_SCALE: f[i] = rnd() % 3 ? 0.0f : 1e-40f * frand(); break; /* subnormals */
				default: f[i] = frand() * (float)(1 + mode); break;
				}
			}
		} else {
			uint16_t *h = w;
			for (int64_t i = 0; i < n; i++) h[i] = small_float_bits(type);
			if (mode == W_QUANT) {
				make_floats(tmp, n, 4.0f);
				ref->from_float(tmp, w, n);
			}
		}
		return;
	}
	if (mode == W_QUANT) {
		make_floats(tmp, n, 0.5f + (float)(rnd() % 8));
		if (rnd() % 4 == 0) memset(tmp, 0, (size_t)ti->block * sizeof *tmp); /* an all-zero block */
		ref->quantize(tmp, w, n);
		return;
	}
	uint8_t *b = w;
	for (size_t i = 0; i < bytes; i++) b[i] = mode == W_ONES ? 0xff : (uint8_t)rnd();
	int d, m;
	scale_fields(type, &d, &m);
	for (size_t k = 0; k < bytes / ti->size; k++) {
		uint8_t *blk = b + k * ti->size;
		uint16_t hd = half_scale(mode), hm = half_scale(mode);
		memcpy(blk + d, &hd, 2);
		if (m >= 0) memcpy(blk + m, &hm, 2);
	}
}

/* An activation row of type at (always through its quantizer: Q8_K's bsums must be its sums). */
static void make_acts(uint32_t at, int64_t n, int mode, void *a, float *x)
{
	const struct quant_traits *ref = quant_traits_ref(at);
	if (at == GGML_TYPE_F16 || at == GGML_TYPE_BF16) {
		if (mode == A_RANDOM) {
			uint16_t *h = a;
			for (int64_t i = 0; i < n; i++) h[i] = small_float_bits(at);
			return;
		}
	}
	for (int64_t i = 0; i < n; i++) {
		switch (mode) {
		case A_MAX: x[i] = i % 2 ? 1.0f : -1.0f; break; /* quantizes to +-127 */
		case A_ZERO: x[i] = (i / 32) % 3 == 1 ? frand() : 0.0f; break;
		case A_WIDE: x[i] = ldexpf(frand(), (int)(rnd() % 40) - 20); break;
		default: x[i] = frand() * 10.0f; break;
		}
	}
	ref->from_float(x, a, n);
}

/* ---- checks ------------------------------------------------------------------- */

enum { MAXN = 6000 * 4 + QK_K * 32 }; /* elements of the longest row */

/*
 * Within a relative 1e-5 of the sum of the products' magnitudes: different
 * orders of summation may differ that much when terms cancel.
 */
static bool close_enough(uint32_t type, int64_t n, const void *w, const void *a, float got, float want)
{
	static float wf[MAXN], af[MAXN];
	if (got == want || (isnan(got) && isnan(want))) return true; /* infinities too */
	const struct quant_traits *ref = quant_traits_ref(type);
	ref->to_float(w, wf, n);
	quant_traits_ref(ref->act_type)->to_float(a, af, n);
	double mag = 0;
	for (int64_t i = 0; i < n; i++) mag += fabs((double)wf[i] * af[i]);
	return fabs((double)got - (double)want) <= 1e-5 * mag + 1e-30;
}

static void compare_dot(const struct kset *s, uint32_t type, int64_t n, const void *w, const void *a)
{
	float got = s->t[type].vec_dot(n, w, a), want = quant_traits_ref(type)->vec_dot(n, w, a);
	bool exact = s->exact_float || (type != GGML_TYPE_F32 && type != GGML_TYPE_F16);
	comparisons++;
	if (exact ? !same_bits(got, want) : !close_enough(type, n, w, a, got, want))
		fail(s->name, type, "vec_dot", n, got, want);
}

/* Row lengths: one block, a few, odd counts around SIMD strides, and long rows. */
static int64_t pick_n(uint32_t type, int k)
{
	int64_t blk = ggml_type_info(type)->block;
	if (blk == 1) { /* float types: every tail length, then long rows with tails */
		if (k < 70) return k;
		return (int64_t)(rnd() % 6000) + 1;
	}
	static const int fixed[] = { 1, 2, 3, 7, 8, 9, 16, 17 };
	int nb = k < 8 ? fixed[k] : blk == QK_K ? 1 + (int)(rnd() % 24) : 1 + (int)(rnd() % 300);
	return (int64_t)nb * blk;
}

static void check_dots(const struct kset *s, uint32_t type, uint8_t *w, uint8_t *a, float *tmp)
{
	uint32_t at = quant_traits_ref(type)->act_type;
	for (int k = 0; k < 90; k++) {
		int64_t n = pick_n(type, k);
		for (int wm = 0; wm < W_MODES; wm++) {
			make_weights(type, n, wm, w, tmp);
			for (int am = 0; am < A_MODES; am++) {
				if ((k + wm + am) % 2 && k >= 20) continue; /* half the pairs once past the small shapes */
				make_acts(at, n, am, a, tmp);
				compare_dot(s, type, n, w, a);
			}
		}
	}
}

/* Every output of a tile is the set's vec_dot of its row and column, with rows and columns at padded strides. */
static void check_gemm(const struct kset *s, uint32_t type, bool packed, uint8_t *w, uint8_t *a, float *tmp)
{
	const struct quant_traits *qt = &s->t[type];
	static const int shapes[][2] = { { 1, 1 }, { 8, 1 }, { 13, 1 }, { 16, 2 }, { 12, 5 }, { 19, 7 }, { 3, 9 }, { 8, 64 } };
	for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
		for (int len = 0; len < 2; len++) {
			int nr = shapes[sh][0], nc = shapes[sh][1];
			if (packed) nr = (nr + 7) / 8 * 8;
			int64_t n = ggml_type_info(type)->block == QK_K ? 256 * (1 + 5 * len) : 32 * (1 + 47 * len);
			size_t rb = quant_row_size(type, n), ws = packed ? rb : rb + 64, as = quant_row_size(qt->act_type, n) + 32;
			size_t os = (size_t)nr + 3;
			for (int r = 0; r < nr; r++) make_weights(type, n, r % 3 ? W_QUANT : W_RAW, w + (size_t)r * ws, tmp);
			for (int c = 0; c < nc; c++) make_acts(qt->act_type, n, c % 3 ? A_RANDOM : A_MAX, a + (size_t)c * as, tmp);
			float *out = malloc((size_t)nc * os * sizeof *out);
			for (size_t i = 0; i < (size_t)nc * os; i++) out[i] = NAN;
			if (packed) {
				uint8_t *pk = malloc((size_t)nr * rb);
				qt->repack(w, pk, nr, n);
				qt->gemm_packed(n, pk, rb, nr, a, as, nc, out, os);
				free(pk);
			} else {
				qt->gemm(n, w, ws, nr, a, as, nc, out, os);
			}
			for (int c = 0; c < nc; c++) {
				for (int r = 0; r < nr; r++) {
					float want = qt->vec_dot(n, w + (size_t)r * ws, a + (size_t)c * as), got = out[(size_t)c * os + r];
					comparisons++;
					if (!same_bits(got, want)) fail(s->name, type, packed ? "gemm_packed" : "gemm", n, got, want);
				}
				for (size_t r = (size_t)nr; r < os; r++) /* the gap between columns is left alone */
					if (!isnan(out[(size_t)c * os + r])) fail(s->name, type, "gemm wrote past nr", n, out[(size_t)c * os + r], NAN);
			}
			free(out);
		}
}

static void record(const char *set, uint32_t type, const char *what)
{
	if (case_bad) {
		failed++;
		printf("  %-13s %-5s %-12s FAILED (%d comparisons differ)\n", set, ggml_type_name(type), what, case_bad);
	} else {
		passed++;
	}
	case_bad = 0;
}

static void check_set(const struct kset *s, uint8_t *w, uint8_t *a, float *tmp)
{
	for (size_t i = 0; i < NTYPES; i++) {
		uint32_t type = types[i];
		check_dots(s, type, w, a, tmp);
		record(s->name, type, "vec_dot");
		if (s->t[type].gemm) {
			check_gemm(s, type, false, w, a, tmp);
			record(s->name, type, "gemm");
		}
		if (s->t[type].repack) {
			check_gemm(s, type, true, w, a, tmp);
			record(s->name, type, "gemm_packed");
		}
	}
}

static void ref_table(struct kset *s, const char *name)
{
	memset(s, 0, sizeof *s);
	s->name = name;
	for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++)
		if (quant_traits_ref(t)) s->t[t] = *quant_traits_ref(t);
}

/* The set quant_traits chose: each listed type has a SIMD vec_dot unless the choice is "scalar". */
static void check_choice(struct kset *s, const char *expect)
{
	const char *name = quant_simd_name();
	ref_table(s, name);
	for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++)
		if (quant_traits(t)) s->t[t] = *quant_traits(t);
	s->exact_float = strcmp(name, "avx2") != 0; /* AVX2's F32/F16 sums are close, not bit-exact (test_quant.c) */
	printf("kernels chosen: %s\n", name);
	if (expect && strcmp(expect, name)) {
		printf("  FAILED: expected the %s kernels\n", expect);
		case_bad++;
	}
	for (size_t i = 0; strcmp(name, "scalar") && i < NTYPES; i++)
		if (s->t[types[i]].vec_dot == quant_traits_ref(types[i])->vec_dot) {
			printf("  FAILED: %s has no %s vec_dot\n", ggml_type_name(types[i]), name);
			case_bad++;
		}
	record(name, GGML_TYPE_COUNT, "choice");
}

int main(int argc, char **argv)
{
	const char *expect = NULL, *summary = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--expect") && i + 1 < argc) expect = argv[++i];
		else if (!strcmp(argv[i], "--summary") && i + 1 < argc) summary = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--expect KERNELS] [--summary FILE]\n", argv[0]);
			return 2;
		}
	}
	size_t wcap = 64 * (quant_row_size(GGML_TYPE_F32, 1536) + 64), acap = 64 * (quant_row_size(GGML_TYPE_F32, 1536) + 32);
	uint8_t *w = malloc(wcap > MAXN * 4 ? wcap : MAXN * 4), *a = malloc(acap > MAXN * 4 ? acap : MAXN * 4);
	float *tmp = malloc(MAXN * sizeof *tmp);
	static struct kset s;
	check_choice(&s, expect);
	check_set(&s, w, a, tmp);
#if defined(__aarch64__)
	/* both NEON sets, whichever was chosen: the other must be right too */
	ref_table(&s, "neon");
	s.exact_float = true;
	quant_neon_install(s.t, false);
	check_set(&s, w, a, tmp);
	if (quant_neon_dotprod_usable()) {
		ref_table(&s, "neon-dotprod");
		s.exact_float = true;
		quant_neon_install(s.t, true);
		check_set(&s, w, a, tmp);
	} else {
		printf("  (no dot-product instructions here: neon-dotprod not run)\n");
	}
#endif
	free(w), free(a), free(tmp);
	printf("kernel check: %d passed, %d failed (%ld comparisons)\n", passed, failed, comparisons);
	if (summary) {
		FILE *f = fopen(summary, "w");
		if (f) fprintf(f, "%d %d 0\n", passed, failed), fclose(f);
	}
	return failed ? 1 : 0;
}
