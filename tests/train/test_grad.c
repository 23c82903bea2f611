/*
 * test_grad.c - every backward op of the trainer against central finite
 * differences of its forward op. Each check takes a random projection of
 * the op's output, L = sum c[i] * out[i] (in double), so that the
 * gradient of L with respect to the output is c, and compares the
 * backward op's answer with (L(x + e) - L(x - e)) / 2e for every input
 * element.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/ggml_types.h"
#include "sam/quant.h"
#include "sam/threadpool.h"
#include "test.h"
#include "train/ops.h"

static uint32_t seed = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
	seed = seed * 1664525u + 1013904223u;
	return (float)(seed >> 8) / (float)(1 << 23) - 1.0f;
}

/* Every buffer a test takes, freed together by release() at its end (LeakSanitizer watches). */
static void *taken[64];
static int n_taken;

static void *track(void *p)
{
	CHECK(p != NULL && n_taken < 64);
	return taken[n_taken++] = p;
}

static void release(void)
{
	while (n_taken) free(taken[--n_taken]);
}

static float *rnd(size_t n, float scale)
{
	float *x = track(malloc(n * sizeof *x));
	for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
	return x;
}

static float *zeros(size_t n)
{
	return track(calloc(n, sizeof(float)));
}

static double project(const float *c, const float *y, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++) s += (double)c[i] * y[i];
	return s;
}

/*
 * The forward op as a function of one of its inputs: fills out, returns
 * nothing; the checker projects out with c.
 */
typedef void (*fwd_fn)(void *ctx, float *out);

#define FD_EPS 5e-3f

/* Compare grad[0..n) of input x (which fwd reads) with finite differences of c.out. */
static void fd_check(const char *what, fwd_fn fwd, void *ctx, float *x, size_t n, const float *grad, const float *c,
		     float *out, size_t n_out)
{
	double worst = 0.0, gmax = 0.0;
	for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
	for (size_t i = 0; i < n; i++) {
		float keep = x[i];
		x[i] = keep + FD_EPS;
		fwd(ctx, out);
		double lp = project(c, out, n_out);
		x[i] = keep - FD_EPS;
		fwd(ctx, out);
		double lm = project(c, out, n_out);
		x[i] = keep;
		double fd = (lp - lm) / (2.0 * FD_EPS), err = fabs(fd - grad[i]);
		double tol = 1e-2 * fmax(fabs(fd), fabs(grad[i])) + 2e-3 * fmax(gmax, 1e-3);
		CHECKF(err <= tol, "%s: d/dx[%zu] = %.6g by backward, %.6g by finite differences", what, i, (double)grad[i],
		       fd);
		if (err > worst) worst = err;
	}
	CHECKF(gmax > 1e-4, "%s: the gradient is all but zero (%g): the check would prove nothing", what, gmax);
}

/* ---- RMSNorm --------------------------------------------------------------------- */

struct norm_ctx {
	float *x, *w, *r;
	int T, n;
};
static void norm_fwd(void *p, float *out)
{
	struct norm_ctx *c = p;
	op_rmsnorm(out, c->r, c->x, c->w, c->T, c->n, 1e-5f);
}

TEST(grad_rmsnorm)
{
	struct norm_ctx c = { .T = 3, .n = 24 };
	size_t n = (size_t)c.T * c.n;
	c.x = rnd(n, 2.0f), c.w = rnd((size_t)c.n, 1.5f), c.r = zeros((size_t)c.T);
	float *cc = rnd(n, 1.0f), *out = zeros(n), *dx = zeros(n);
	norm_fwd(&c, out);
	op_rmsnorm_back(dx, cc, c.x, c.r, c.w, c.T, c.n);
	fd_check("rmsnorm", norm_fwd, &c, c.x, n, dx, cc, out, n);
	/* backward adds: a second call doubles the gradient */
	norm_fwd(&c, out); /* r again of the unperturbed x */
	float *dx2 = zeros(n);
	memcpy(dx2, dx, n * sizeof *dx);
	op_rmsnorm_back(dx2, cc, c.x, c.r, c.w, c.T, c.n);
	for (size_t i = 0; i < n; i++) CHECK(fabsf(dx2[i] - 2.0f * dx[i]) <= 1e-5f * (fabsf(dx[i]) + 1.0f));
	release();
}

/* ---- RoPE ------------------------------------------------------------------------ */

struct rope_ctx {
	struct sam_model m;
	float *x, *cache;
	int T, heads;
};
static void rope_fwd(void *p, float *out)
{
	struct rope_ctx *c = p;
	size_t n = (size_t)c->T * c->heads * c->m.hp.head_dim;
	memcpy(out, c->x, n * sizeof *out);
	op_rope(&c->m.hp, out, c->T, c->heads, c->cache, 0);
}

static void check_rope(int type, int rope_dim)
{
	struct rope_ctx c = { .T = 6, .heads = 3 };
	c.m.hp = (struct sam_hparams){ .head_dim = 8, .rope_dim = rope_dim, .rope_type = type, .rope_freq_base = 10000.0f,
				       .rope_freq_scale = 1.0f };
	size_t n = (size_t)c.T * c.heads * 8;
	c.x = rnd(n, 1.0f), c.cache = zeros((size_t)c.T * rope_dim);
	op_rope_cache(&c.m, c.cache, c.T);
	float *cc = rnd(n, 1.0f), *out = zeros(n), *dx = zeros(n);
	memcpy(dx, cc, n * sizeof *dx);
	op_rope(&c.m.hp, dx, c.T, c.heads, c.cache, 1);
	fd_check(type == SAM_ROPE_NEOX ? "rope neox" : "rope", rope_fwd, &c, c.x, n, dx, cc, out, n);
	/* the inverse undoes the rotation */
	rope_fwd(&c, out);
	op_rope(&c.m.hp, out, c.T, c.heads, c.cache, 1);
	for (size_t i = 0; i < n; i++) CHECK(fabsf(out[i] - c.x[i]) < 1e-5f);
	release();
}

TEST(grad_rope)
{
	check_rope(SAM_ROPE_NORMAL, 8);
	check_rope(SAM_ROPE_NEOX, 8);
	check_rope(SAM_ROPE_NORMAL, 4); /* partial rotation: the rest passes through */
}

/* ---- attention ------------------------------------------------------------------- */

struct att_ctx {
	struct sam_hparams hp;
	struct sam_pool *pool;
	float *q, *k, *v, *p;
	int T;
};
static void att_fwd(void *arg, float *out)
{
	struct att_ctx *c = arg;
	op_attention(c->pool, &c->hp, out, c->p, c->q, c->k, c->v, c->T);
}

TEST(grad_attention_grouped_heads)
{
	struct att_ctx c = { .T = 7 };
	c.hp = (struct sam_hparams){ .n_head = 4, .n_head_kv = 2, .head_dim = 8 };
	c.pool = sam_pool_new(2);
	size_t nq = (size_t)c.T * 4 * 8, nkv = (size_t)c.T * 2 * 8;
	c.q = rnd(nq, 1.5f), c.k = rnd(nkv, 1.5f), c.v = rnd(nkv, 1.0f), c.p = zeros((size_t)4 * c.T * c.T);
	float *cc = rnd(nq, 1.0f), *out = zeros(nq);
	float *dq = zeros(nq), *dk = zeros(nkv), *dv = zeros(nkv), *scr = zeros(4 * ATT_SCRATCH(c.T, 8));
	att_fwd(&c, out);
	op_attention_back(c.pool, &c.hp, dq, dk, dv, cc, c.p, c.q, c.k, c.v, c.T, scr);
	fd_check("attention dq", att_fwd, &c, c.q, nq, dq, cc, out, nq);
	fd_check("attention dk", att_fwd, &c, c.k, nkv, dk, cc, out, nq);
	fd_check("attention dv", att_fwd, &c, c.v, nkv, dv, cc, out, nq);
	/* causal: the first token's output is its own value */
	att_fwd(&c, out);
	for (int i = 0; i < 8; i++) CHECK(fabsf(out[i] - c.v[i]) < 1e-6f);
	sam_pool_free(c.pool);
	release();
}

/* ---- SwiGLU ---------------------------------------------------------------------- */

struct swiglu_ctx {
	float *g, *u;
	size_t n;
};
static void swiglu_fwd(void *p, float *out)
{
	struct swiglu_ctx *c = p;
	op_swiglu(out, c->g, c->u, c->n);
}

TEST(grad_swiglu)
{
	struct swiglu_ctx c = { .n = 40 };
	c.g = rnd(c.n, 4.0f), c.u = rnd(c.n, 2.0f);
	float *cc = rnd(c.n, 1.0f), *out = zeros(c.n), *dg = zeros(c.n), *du = zeros(c.n);
	op_swiglu_back(dg, du, cc, c.g, c.u, c.n);
	fd_check("swiglu dg", swiglu_fwd, &c, c.g, c.n, dg, cc, out, c.n);
	fd_check("swiglu du", swiglu_fwd, &c, c.u, c.n, du, cc, out, c.n);
	release();
}

/* ---- cross-entropy --------------------------------------------------------------- */

struct ce_ctx {
	float *logits;
	int32_t targets[3];
	int R, V;
};
static void ce_fwd(void *p, float *out)
{
	struct ce_ctx *c = p;
	out[0] = (float)op_cross_entropy(NULL, c->logits, c->targets, c->R, c->V, 1.0f);
}

TEST(grad_cross_entropy)
{
	struct ce_ctx c = { .targets = { 3, 0, 10 }, .R = 3, .V = 11 };
	size_t n = (size_t)c.R * c.V;
	c.logits = rnd(n, 3.0f);
	float one = 1.0f, out, *d = zeros(n);
	double loss = op_cross_entropy(d, c.logits, c.targets, c.R, c.V, 1.0f);
	/* the loss is -log softmax at the target, summed over rows */
	double want = 0.0;
	for (int r = 0; r < c.R; r++) {
		double s = 0.0;
		for (int i = 0; i < c.V; i++) s += exp(c.logits[r * c.V + i]);
		want += log(s) - c.logits[r * c.V + c.targets[r]];
	}
	CHECKF(fabs(loss - want) < 1e-5 * want, "loss %.9g, want %.9g", loss, want);
	fd_check("cross-entropy", ce_fwd, &c, c.logits, n, d, &one, &out, 1);
	/* scale multiplies the gradient, in place works */
	float *l2 = track(malloc(n * sizeof *l2));
	memcpy(l2, c.logits, n * sizeof *l2);
	op_cross_entropy(l2, l2, c.targets, c.R, c.V, 0.25f);
	for (size_t i = 0; i < n; i++) CHECK(fabsf(l2[i] - 0.25f * d[i]) < 1e-7f);
	release();
}

/* ---- linear layer with LoRA ------------------------------------------------------- */

struct lin_ctx {
	struct sam_pool *pool;
	struct sam_tensor w;
	float *bias, *x, *t, *act;
	struct op_lora lo;
	int T;
};
static void lin_fwd(void *p, float *out)
{
	struct lin_ctx *c = p;
	op_linear(c->pool, c->act, out, c->t, &c->w, c->bias, &c->lo, c->x, c->T);
}

TEST(grad_linear_lora)
{
	enum { T = 5, ROWS = 12, COLS = 32, RANK = 3 };
	struct lin_ctx c = { .T = T };
	c.pool = sam_pool_new(2);
	float *w = rnd((size_t)ROWS * COLS, 0.5f);
	c.w = (struct sam_tensor){ .data = w, .type = GGML_TYPE_F32, .cols = COLS, .rows = ROWS,
				   .row_bytes = COLS * sizeof(float) };
	c.bias = rnd(ROWS, 1.0f), c.x = rnd((size_t)T * COLS, 1.0f), c.t = zeros((size_t)T * RANK);
	c.act = zeros((size_t)T * COLS);
	float *a = rnd((size_t)RANK * COLS, 0.5f), *b = rnd((size_t)ROWS * RANK, 0.5f);
	float *da = zeros((size_t)RANK * COLS), *db = zeros((size_t)ROWS * RANK);
	c.lo = (struct op_lora){ .a = a, .b = b, .da = da, .db = db, .rank = RANK, .s = 0.75f };
	float *cc = rnd((size_t)T * ROWS, 1.0f), *out = zeros((size_t)T * ROWS), *dx = zeros((size_t)T * COLS);
	float *g = zeros((size_t)T * RANK);
	lin_fwd(&c, out);
	/* y = x W^T + bias + s x A^T B^T, by hand */
	for (int r = 0; r < T; r++)
		for (int o = 0; o < ROWS; o++) {
			double y = c.bias[o];
			for (int i = 0; i < COLS; i++) y += (double)c.x[r * COLS + i] * w[o * COLS + i];
			for (int k = 0; k < RANK; k++) {
				double ax = 0.0;
				for (int i = 0; i < COLS; i++) ax += (double)a[k * COLS + i] * c.x[r * COLS + i];
				y += 0.75 * b[o * RANK + k] * ax;
			}
			CHECKF(fabs(y - out[r * ROWS + o]) < 1e-4, "y[%d][%d] = %g, want %g", r, o, (double)out[r * ROWS + o], y);
		}
	op_linear_back(c.pool, dx, cc, &c.w, &c.lo, c.x, c.t, T, g);
	fd_check("linear dx", lin_fwd, &c, c.x, (size_t)T * COLS, dx, cc, out, (size_t)T * ROWS);
	fd_check("linear dA", lin_fwd, &c, a, (size_t)RANK * COLS, da, cc, out, (size_t)T * ROWS);
	fd_check("linear dB", lin_fwd, &c, b, (size_t)ROWS * RANK, db, cc, out, (size_t)T * ROWS);
	sam_pool_free(c.pool);
	release();
}

/*
 * The transposed product of a quantized weight equals the float product
 * with the dequantized weight, for every type and across block-sized
 * column chunks (K-quants: 256-element blocks; 768 columns = 3 chunks).
 */
TEST(product_t_matches_dequantized_weights)
{
	static const uint32_t types[] = { GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0,
					  GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
					  GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };
	enum { B = 3, ROWS = 37, COLS = 768 };
	struct sam_pool *pool = sam_pool_new(2);
	float *wf = rnd((size_t)ROWS * COLS, 1.0f), *dy = rnd((size_t)B * ROWS, 1.0f);
	float *deq = zeros((size_t)ROWS * COLS), *out = zeros((size_t)B * COLS);
	for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
		const struct quant_traits *qt = quant_traits(types[ti]);
		size_t rb = quant_row_size(types[ti], COLS);
		uint8_t *wq = malloc(rb * ROWS);
		for (int r = 0; r < ROWS; r++) {
			qt->quantize(wf + (size_t)r * COLS, wq + r * rb, COLS);
			qt->to_float(wq + r * rb, deq + (size_t)r * COLS, COLS);
		}
		struct sam_tensor w = { .data = wq, .type = types[ti], .cols = COLS, .rows = ROWS, .row_bytes = rb };
		for (int i = 0; i < B * COLS; i++) out[i] = 1.0f; /* it adds */
		op_product_t(pool, out, dy, &w, B);
		for (int b = 0; b < B; b++)
			for (int i = 0; i < COLS; i++) {
				double want = 1.0;
				for (int r = 0; r < ROWS; r++) want += (double)dy[b * ROWS + r] * deq[(size_t)r * COLS + i];
				CHECKF(fabs(out[b * COLS + i] - want) < 1e-4 * (1.0 + fabs(want)), "%s: out[%d][%d] = %g, want %g",
				       ggml_type_name(types[ti]), b, i, (double)out[b * COLS + i], want);
			}
		free(wq);
	}
	sam_pool_free(pool);
	release();
}

/* Result of op_product_t for a fixed input, computed in a child with SAM_NO_SIMD set or not. */
static void product_t_in_child(bool portable, uint32_t type, int B, int rows, int cols, float *out)
{
	int fd[2];
	CHECK(pipe(fd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (portable) setenv("SAM_NO_SIMD", "1", 1);
		seed = 777;
		float *wf = rnd((size_t)rows * cols, 1.0f), *dy = rnd((size_t)B * rows, 1.0f), *o = rnd((size_t)B * cols, 1.0f);
		size_t rb = quant_row_size(type, cols);
		uint8_t *wq = malloc(rb * rows);
		for (int r = 0; r < rows; r++) quant_traits(type)->quantize(wf + (size_t)r * cols, wq + r * rb, cols);
		struct sam_tensor w = { .data = wq, .type = type, .cols = cols, .rows = rows, .row_bytes = rb };
		struct sam_pool *pool = sam_pool_new(2);
		op_product_t(pool, o, dy, &w, B);
		ssize_t n = write(fd[1], o, (size_t)B * cols * sizeof(float));
		_exit(n == (ssize_t)((size_t)B * cols * sizeof(float)) ? 0 : 1);
	}
	close(fd[1]);
	size_t want = (size_t)B * cols * sizeof(float), got = 0;
	while (got < want) {
		ssize_t n = read(fd[0], (char *)out + got, want - got);
		CHECK(n > 0);
		got += (size_t)n;
	}
	close(fd[0]);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The SIMD kernel of the transposed product gives the portable one's floats, tails included. */
TEST(product_t_simd_equals_portable)
{
	static const struct {
		uint32_t type;
		int B, rows, cols;
	} cases[] = { { GGML_TYPE_F32, 5, 37, 200 }, { GGML_TYPE_Q8_0, 7, 20, 96 }, { GGML_TYPE_Q4_K, 4, 33, 512 } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = (size_t)cases[i].B * cases[i].cols;
		float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
		product_t_in_child(false, cases[i].type, cases[i].B, cases[i].rows, cases[i].cols, a);
		product_t_in_child(true, cases[i].type, cases[i].B, cases[i].rows, cases[i].cols, b);
		CHECKF(!memcmp(a, b, n * sizeof *a), "%s: SIMD and portable differ", ggml_type_name(cases[i].type));
		free(a);
		free(b);
	}
}
