/*
 * test_pass.c - the trainer's whole forward and backward pass on real
 * models: its loss is the inference engine's (with and without an
 * adapter applied by the engine), and its gradients with respect to the
 * adapter are those of finite differences of that loss.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sam/lora.h"
#include "sam/model.h"
#include "test.h"
#include "train/pass.h"

static uint64_t rng = 0x1234567;
static float frand(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (float)(rng >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

struct fixture {
	struct sam_model m;
	struct sam_lora lo;
	float *grad;
	struct sam_pool *pool;
	struct pass ps;
	int32_t *tok;
	int n;
};

/* model + an adapter with random A and B (so every gradient is alive) + a tokenized text */
static void setup(struct fixture *f, const char *model, unsigned targets, int rank, const char *text, int max_T)
{
	struct sam_error err = { 0 };
	CHECKF(!sam_model_load_flags(&f->m, test_model(model), SAM_LOAD_NO_REPACK, &err), "%s", err.msg);
	CHECKF(!sam_lora_init(&f->lo, &f->m, targets, rank, 2.0f * rank, 7, &err), "%s", err.msg);
	for (size_t i = 0; i < f->lo.mem_floats; i++) f->lo.mem[i] = frand() * 0.08f;
	f->grad = calloc(f->lo.mem_floats, sizeof(float));
	f->pool = sam_pool_new(2);
	CHECKF(!pass_init(&f->ps, &f->m, &f->lo, f->grad, 1.0f, f->pool, max_T, &err), "%s", err.msg);
	size_t n;
	CHECK(!tok_encode(&f->m.vocab, text, strlen(text), true, false, &f->tok, &n, &err));
	CHECK(n >= 4 && (int)n <= max_T + 1);
	f->n = (int)n;
}

static void teardown(struct fixture *f)
{
	pass_free(&f->ps);
	sam_pool_free(f->pool);
	free(f->grad);
	free(f->tok);
	sam_lora_free(&f->lo);
	sam_model_free(&f->m);
}

/* Sum of -log p(next token) by the inference engine, adapter applied by the engine (or none). */
static double engine_loss(const struct fixture *f, const struct sam_lora *lo)
{
	struct sam_ctx c;
	struct sam_error err = { 0 };
	struct sam_ctx_params cp = { .n_ctx = f->n, .n_batch = f->n, .logits_all = true, .n_threads = 2 };
	CHECKF(!sam_ctx_new(&c, &f->m, &cp, &err), "%s", err.msg);
	if (lo) CHECKF(!sam_ctx_set_lora(&c, 0, lo, 1.0f, &err), "%s", err.msg);
	CHECKF(!sam_decode(&c, f->tok, f->n - 1, &err), "%s", err.msg);
	double sum = 0.0;
	int V = f->m.hp.n_vocab;
	for (int i = 0; i < f->n - 1; i++) {
		const float *l = sam_ctx_logits(&c, i);
		double max = -INFINITY, s = 0.0;
		for (int v = 0; v < V; v++) max = fmax(max, l[v]);
		for (int v = 0; v < V; v++) s += exp(l[v] - max);
		sum += log(s) + max - l[f->tok[i + 1]];
	}
	sam_ctx_free(&c);
	return sum;
}

static void check_engine_parity(const char *model)
{
	struct fixture f = { 0 };
	setup(&f, model, SAM_LORA_ALL, 4, "Once upon a time there was a little girl named Lily.", 32);
	int nl;
	double with = pass_run(&f.ps, f.tok, NULL, f.n, false, 1.0f, &nl);
	CHECK_INT(nl, f.n - 1);
	double want = engine_loss(&f, &f.lo);
	CHECKF(fabs(with - want) < 2e-4 * want, "%s with adapter: trainer loss %.6f, engine %.6f", model, with, want);
	f.ps.no_lora = true;
	double base = pass_run(&f.ps, f.tok, NULL, f.n, false, 1.0f, &nl);
	double want_base = engine_loss(&f, NULL);
	CHECKF(fabs(base - want_base) < 2e-4 * want_base, "%s base: trainer loss %.6f, engine %.6f", model, base,
	       want_base);
	CHECKF(fabs(base - with) > 1e-3, "%s: the adapter changes nothing (%.6f)", model, base);
	teardown(&f);
}

TEST(pass_loss_is_the_engines_llama)
{
	check_engine_parity("stories260K.gguf");
}

TEST(pass_loss_is_the_engines_qwen2)
{
	check_engine_parity("tiny-qwen2.gguf");
}

static const float *sort_grad; /* what by_magnitude_desc compares */
static int by_magnitude_desc(const void *a, const void *b)
{
	float x = fabsf(sort_grad[*(const size_t *)a]), y = fabsf(sort_grad[*(const size_t *)b]);
	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * The gradient of the summed loss against central differences, on the
 * parameters with the largest gradients and on a random sample.
 */
static void check_model_gradients(const char *model, unsigned targets, const uint8_t *mask)
{
	struct fixture f = { 0 };
	setup(&f, model, targets, 3, "Lily and Ben went to the park. They saw a big dog.", 32);
	int nl;
	pass_run(&f.ps, f.tok, mask, f.n, true, 1.0f, &nl);
	size_t n = f.lo.mem_floats;
	size_t *idx = malloc(n * sizeof *idx);
	for (size_t i = 0; i < n; i++) idx[i] = i;
	sort_grad = f.grad;
	qsort(idx, n, sizeof *idx, by_magnitude_desc);
	size_t pick[60];
	int np = 0;
	for (int i = 0; i < 30; i++) pick[np++] = idx[i];
	for (int i = 0; i < 30; i++) pick[np++] = (size_t)((frand() + 1.0f) * 0.5f * (float)(n - 1));
	float gmax = fabsf(f.grad[idx[0]]);
	CHECKF(gmax > 1e-3, "%s: gradients are all but zero (%g)", model, (double)gmax);
	const float eps = 1e-2f;
	for (int i = 0; i < np; i++) {
		float *p = &f.lo.mem[pick[i]], keep = *p;
		*p = keep + eps;
		double lp = pass_run(&f.ps, f.tok, mask, f.n, false, 1.0f, &nl);
		*p = keep - eps;
		double lm = pass_run(&f.ps, f.tok, mask, f.n, false, 1.0f, &nl);
		*p = keep;
		double fd = (lp - lm) / (2.0 * eps), g = f.grad[pick[i]];
		CHECKF(fabs(fd - g) <= 0.03 * fmax(fabs(fd), fabs(g)) + 2e-3 * gmax,
		       "%s: parameter %zu: gradient %.6g, finite differences %.6g", model, pick[i], g, fd);
	}
	free(idx);
	teardown(&f);
}

TEST(pass_gradients_match_finite_differences_llama)
{
	check_model_gradients("stories260K.gguf", SAM_LORA_ALL, NULL);
}

TEST(pass_gradients_match_finite_differences_qwen2)
{
	check_model_gradients("tiny-qwen2.gguf", SAM_LORA_ALL, NULL);
}

/* Loss on part of the sequence only (as for chat data), and a subset of targets. */
TEST(pass_gradients_with_a_loss_mask)
{
	uint8_t mask[64] = { 0 };
	for (int i = 6; i < 64; i += 2) mask[i] = 1;
	check_model_gradients("stories260K.gguf", (1u << SAM_LORA_V) | (1u << SAM_LORA_DOWN), mask);
}

/* loss_scale scales the gradient, and the pass adds into the buffer */
TEST(pass_backward_scales_and_accumulates)
{
	struct fixture f = { 0 };
	setup(&f, "stories260K.gguf", SAM_LORA_ALL, 2, "The little dog ran to the park.", 16);
	int nl;
	pass_run(&f.ps, f.tok, NULL, f.n, true, 1.0f, &nl);
	size_t n = f.lo.mem_floats;
	float *g1 = malloc(n * sizeof *g1);
	memcpy(g1, f.grad, n * sizeof *g1);
	memset(f.grad, 0, n * sizeof *f.grad);
	pass_run(&f.ps, f.tok, NULL, f.n, true, 0.5f, &nl);
	pass_run(&f.ps, f.tok, NULL, f.n, true, 0.25f, &nl);
	for (size_t i = 0; i < n; i++)
		CHECKF(fabsf(f.grad[i] - 0.75f * g1[i]) <= 1e-5f * fabsf(g1[i]) + 1e-8f, "grad[%zu] %g, want %g", i,
		       (double)f.grad[i], 0.75 * g1[i]);
	free(g1);
	teardown(&f);
}
