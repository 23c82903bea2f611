/*
 * test_lora.c - LoRA adapters (sam/lora.h): the llama.cpp file format,
 * the identity at init, equivalence with merged weights W + s B A,
 * per-sequence adapters in one batch, refusals of bad files, `sam run
 * --lora` and `sam perplexity --lora`.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sam/ggml_types.h"
#include "sam/gguf.h"
#include "sam/gguf_write.h"
#include "sam/lora.h"
#include "sam/model.h"
#include "test.h"

/* A stories260K prompt: BOS "Once upon a time there was a little" */
static const int32_t prompt[10] = { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376 };

static void load_model(const char *file, struct sam_model *m)
{
	struct sam_error err = { 0 };
	CHECKF(sam_model_load(m, test_model(file), &err) == 0, "%s: %s", file, err.msg);
}

static const struct sam_lora_pair *pair_of(const struct sam_lora *lo, int l, int t)
{
	return l < 0 ? &lo->output : &lo->layer[l][t];
}

/* Test values: a tiny LCG, uniform in [-amp, amp). */
static void fill(float *x, size_t n, float amp, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		*s = *s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = ((float)(*s >> 40) * 0x1p-24f * 2.0f - 1.0f) * amp;
	}
}

/* A made adapter with random nonzero A and B (B's entries in [-amp_b, amp_b)). */
static void make_random(struct sam_lora *lo, const struct sam_model *m, unsigned mask, int rank, float alpha,
			float amp_b, uint64_t seed)
{
	struct sam_error err = { 0 };
	CHECKF(sam_lora_init(lo, m, mask, rank, alpha, seed, &err) == 0, "init: %s", err.msg);
	uint64_t s = seed;
	for (int l = -1; l < lo->n_layer; l++)
		for (int t = 0; t < SAM_LORA_N_TARGET; t++) {
			float *a, *b;
			if (!sam_lora_params(lo, l, t, &a, &b)) continue;
			const struct sam_lora_pair *p = pair_of(lo, l, t);
			fill(a, (size_t)(p->a.rows * p->a.cols), 1.0f / sqrtf((float)p->a.cols), &s);
			fill(b, (size_t)(p->b.rows * p->b.cols), amp_b, &s);
		}
}

static void new_ctx(struct sam_ctx *c, const struct sam_model *m, int n_batch, int n_seq, bool all)
{
	struct sam_error err = { 0 };
	struct sam_ctx_params cp = { .n_ctx = 64, .n_batch = n_batch, .n_seq = n_seq, .logits_all = all, .n_threads = 2 };
	CHECKF(sam_ctx_new(c, m, &cp, &err) == 0, "ctx: %s", err.msg);
}

/*
 * Logits [n][n_vocab] (malloc'd) of every position of ids with lo on
 * sequence 0 (NULL: none): all but the last token as one batch, then the
 * last alone, so both the batched and the one-row products are covered.
 */
static float *logits_of(const struct sam_model *m, const struct sam_lora *lo, float scale, const int32_t *ids, int n)
{
	struct sam_ctx c;
	struct sam_error err = { 0 };
	size_t nv = (size_t)m->hp.n_vocab;
	new_ctx(&c, m, n, 1, true);
	if (lo) CHECKF(sam_ctx_set_lora(&c, 0, lo, scale, &err) == 0, "set: %s", err.msg);
	float *out = malloc((size_t)n * nv * sizeof(float));
	CHECKF(sam_decode(&c, ids, n - 1, &err) == 0, "decode: %s", err.msg);
	memcpy(out, c.logits, (size_t)(n - 1) * nv * sizeof(float));
	CHECKF(sam_decode(&c, ids + n - 1, 1, &err) == 0, "decode: %s", err.msg);
	memcpy(out + (size_t)(n - 1) * nv, c.logits, nv * sizeof(float));
	sam_ctx_free(&c);
	return out;
}

/* max |a - b| over n values, relative to max |b|. */
static double rel_diff(const float *a, const float *b, size_t n)
{
	double d = 0, mag = 0;
	for (size_t i = 0; i < n; i++) {
		CHECKF(isfinite(a[i]), "value %zu is %f", i, a[i]);
		if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
		if (fabs((double)b[i]) > mag) mag = fabs((double)b[i]);
	}
	return d / mag;
}

static char *tmp_path(const char *name)
{
	static char buf[4][600];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, sizeof buf[0], "%s/%s", test_tmpdir(), name);
	return p;
}

/* Expect sam_lora_load of path to fail with every one of the (NULL-ended) strings in its message. */
static void expect_refused(const struct sam_model *m, const char *path, const char *want1, const char *want2)
{
	struct sam_lora lo;
	struct sam_error err = { 0 };
	int rc = sam_lora_load(&lo, m, path, &err);
	CHECKF(rc < 0, "%s was accepted", path);
	CHECKF(strstr(err.msg, want1) && (!want2 || strstr(err.msg, want2)), "message: %s (wanted '%s', '%s')", err.msg,
	       want1, want2 ? want2 : "");
	CHECK(lo.layer == NULL && lo.gguf.map == NULL && lo.mem == NULL);
	printf("    refused: %s\n", err.msg);
}

/* ---- names and targets -------------------------------------------------- */

TEST(lora_target_names_and_lists)
{
	char buf[48];
	sam_lora_tensor_base(buf, 3, SAM_LORA_O);
	CHECK_STR(buf, "blk.3.attn_output");
	sam_lora_tensor_base(buf, 0, SAM_LORA_DOWN);
	CHECK_STR(buf, "blk.0.ffn_down");
	sam_lora_tensor_base(buf, -1, 0);
	CHECK_STR(buf, "output");
	CHECK_STR(sam_lora_target_name(SAM_LORA_GATE), "gate");
	CHECK_STR(sam_lora_target_name(99), "?");
	unsigned mask;
	struct sam_error err = { 0 };
	CHECK(sam_lora_parse_targets("q,v", &mask, &err) == 0);
	CHECK_INT(mask, 1u << SAM_LORA_Q | 1u << SAM_LORA_V);
	CHECK(sam_lora_parse_targets("attn,down", &mask, &err) == 0);
	CHECK_INT(mask, 0xf | 1u << SAM_LORA_DOWN);
	CHECK(sam_lora_parse_targets("mlp", &mask, &err) == 0);
	CHECK_INT(mask, 0x70);
	CHECK(sam_lora_parse_targets("all,output", &mask, &err) == 0);
	CHECK_INT(mask, SAM_LORA_ALL | SAM_LORA_OUTPUT);
	CHECK_INT(sam_lora_parse_targets("q,bogus", &mask, &err), SAM_EINVAL);
	CHECK(strstr(err.msg, "'bogus'") != NULL);
	CHECK_INT(sam_lora_parse_targets("q,", &mask, &err), SAM_EINVAL);
}

/* ---- the file format ---------------------------------------------------- */

/* What gguf_open reads back is exactly llama.cpp's format, and load gives back the same numbers. */
TEST(lora_save_load_round_trip_is_llama_cpp_format)
{
	struct sam_model m;
	load_model("stories260K.gguf", &m);
	struct sam_lora lo, back;
	struct sam_error err = { 0 };
	make_random(&lo, &m, SAM_LORA_ALL | SAM_LORA_OUTPUT, 4, 8.0f, 0.5f, 7);
	char *path = tmp_path("a.gguf");
	CHECKF(sam_lora_save(&lo, &m, path, "test adapter", &err) == 0, "save: %s", err.msg);

	struct gguf_file f;
	CHECKF(gguf_open(&f, path, &err) == 0, "%s", err.msg);
	static const char *keys[5] = { "general.architecture", "general.type", "adapter.type", "adapter.lora.alpha",
				       "general.name" };
	CHECK_INT(f.n_kv, 5);
	for (int i = 0; i < 5; i++) CHECKF(gguf_str_eq(f.kv[i].key, keys[i]), "kv %d", i);
	CHECK(f.kv[0].v.type == GGUF_T_STRING && gguf_str_eq(f.kv[0].v.str, "llama"));
	CHECK(f.kv[1].v.type == GGUF_T_STRING && gguf_str_eq(f.kv[1].v.str, "adapter"));
	CHECK(f.kv[2].v.type == GGUF_T_STRING && gguf_str_eq(f.kv[2].v.str, "lora"));
	CHECK(f.kv[3].v.type == GGUF_T_F32 && f.kv[3].v.f == 8.0);
	CHECK(f.kv[4].v.type == GGUF_T_STRING && gguf_str_eq(f.kv[4].v.str, "test adapter"));
	CHECK_INT(f.n_tensors, (5 * 7 + 1) * 2);
	static const char *names[7] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down" };
	/* stories260K: dim 64, kv_dim 32, n_ff 172, vocab 512; GGUF ne of the base weights [n_in, n_out] */
	static const uint64_t n_in[7] = { 64, 64, 64, 64, 64, 64, 172 }, n_out[7] = { 64, 32, 32, 64, 172, 172, 64 };
	for (uint64_t i = 0; i < f.n_tensors; i++) {
		const struct gguf_tensor *t = &f.tensors[i];
		int pair = (int)(i / 2), l = pair / 7, k = pair % 7;
		bool is_b = i % 2;
		char want[64];
		if (pair == 35) snprintf(want, sizeof want, "output.weight.lora_%c", is_b ? 'b' : 'a');
		else snprintf(want, sizeof want, "blk.%d.%s.weight.lora_%c", l, names[k], is_b ? 'b' : 'a');
		CHECKF(gguf_str_eq(t->name, want), "tensor %llu is '%.*s', expected '%s'", (unsigned long long)i,
		       (int)t->name.n, t->name.s, want);
		uint64_t ni = pair == 35 ? 64 : n_in[k], no = pair == 35 ? 512 : n_out[k];
		CHECK_INT(t->n_dims, 2);
		CHECK_INT(t->type, GGML_TYPE_F32);
		CHECKF(t->ne[0] == (is_b ? 4 : ni) && t->ne[1] == (is_b ? no : 4), "%s: ne [%llu, %llu]", want,
		       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1]);
		const struct sam_lora_pair *p = pair_of(&lo, pair == 35 ? -1 : l, k);
		const struct sam_tensor *mt = is_b ? &p->b : &p->a;
		CHECK(t->nbytes == (uint64_t)(mt->rows * mt->cols * 4));
		CHECKF(memcmp(t->data, mt->data, t->nbytes) == 0, "%s: data differs", want);
	}
	gguf_close(&f);

	CHECKF(sam_lora_load(&back, &m, path, &err) == 0, "load: %s", err.msg);
	CHECK(back.mapped && back.alpha == 8.0f && back.rank == 4 && back.n_layer == 5);
	CHECK_INT(back.targets, SAM_LORA_ALL | SAM_LORA_OUTPUT);
	for (int l = -1; l < 5; l++)
		for (int t = 0; t < 7; t++) {
			const struct sam_lora_pair *p = pair_of(&lo, l, t), *q = pair_of(&back, l, t);
			CHECK(q->a.type == GGML_TYPE_F32 && q->a.rows == p->a.rows && q->a.cols == p->a.cols);
			CHECK(q->b.rows == p->b.rows && q->b.cols == p->b.cols);
			CHECK(!memcmp(q->a.data, p->a.data, (size_t)(p->a.rows * p->a.cols) * 4));
			CHECK(!memcmp(q->b.data, p->b.data, (size_t)(p->b.rows * p->b.cols) * 4));
		}
	float *a, *b;
	CHECK(!sam_lora_params(&back, 0, 0, &a, &b)); /* a loaded adapter is read-only */
	/* a loaded adapter saves to the same bytes; without a name there is no general.name */
	char *again = tmp_path("again.gguf"), *noname = tmp_path("noname.gguf");
	CHECKF(sam_lora_save(&back, &m, again, "test adapter", &err) == 0, "%s", err.msg);
	size_t la, lb;
	char *da = test_read_file(path, &la), *db = test_read_file(again, &lb);
	CHECK(da && db && la == lb && !memcmp(da, db, la));
	free(da), free(db);
	CHECK(sam_lora_save(&lo, &m, noname, NULL, &err) == 0);
	CHECK(gguf_open(&f, noname, &err) == 0);
	CHECK(f.n_kv == 4 && !gguf_find(&f, "general.name"));
	gguf_close(&f);
	sam_lora_free(&back);
	sam_lora_free(&lo);
	sam_lora_free(&lo); /* twice is harmless */
	sam_model_free(&m);
}

/* ---- init --------------------------------------------------------------- */

TEST(lora_init_is_identity_and_seeded)
{
	struct sam_model m;
	load_model("stories260K.gguf", &m);
	struct sam_lora a, b, c;
	struct sam_error err = { 0 };
	CHECK(sam_lora_init(&a, &m, SAM_LORA_ALL | SAM_LORA_OUTPUT, 8, 16.0f, 42, &err) == 0);
	CHECK(sam_lora_init(&b, &m, SAM_LORA_ALL | SAM_LORA_OUTPUT, 8, 16.0f, 42, &err) == 0);
	CHECK(sam_lora_init(&c, &m, SAM_LORA_ALL | SAM_LORA_OUTPUT, 8, 16.0f, 43, &err) == 0);
	CHECK(a.mem_floats == b.mem_floats && !memcmp(a.mem, b.mem, a.mem_floats * sizeof(float)));
	float *pa, *pb, *qa, *qb;
	CHECK(sam_lora_params(&a, 2, SAM_LORA_UP, &pa, &pb) && sam_lora_params(&c, 2, SAM_LORA_UP, &qa, &qb));
	CHECK(memcmp(pa, qa, 8 * 64 * sizeof(float)) != 0);
	/* A uniform in [-1/sqrt(n_in), 1/sqrt(n_in)], not degenerate; B zero */
	CHECK(sam_lora_params(&a, 1, SAM_LORA_DOWN, &pa, &pb));
	float bound = 1.0f / sqrtf(172.0f), lo = 0, hi = 0;
	for (int i = 0; i < 8 * 172; i++) {
		CHECK(fabsf(pa[i]) <= bound);
		lo = fminf(lo, pa[i]);
		hi = fmaxf(hi, pa[i]);
	}
	CHECK(lo < -0.8f * bound && hi > 0.8f * bound);
	for (int i = 0; i < 64 * 8; i++) CHECK(pb[i] == 0.0f);
	CHECK(sam_lora_params(&a, -1, 0, &pa, &pb));
	CHECK(!sam_lora_params(&a, 5, 0, &pa, &pb) && !sam_lora_params(&a, 0, 7, &pa, &pb));

	float *base = logits_of(&m, NULL, 1, prompt, 10), *ident = logits_of(&m, &a, 1, prompt, 10);
	CHECK(memcmp(base, ident, 10 * 512 * sizeof(float)) == 0);
	free(base), free(ident);

	/* bad arguments */
	sam_lora_free(&c);
	CHECK_INT(sam_lora_init(&c, &m, 0, 8, 1, 1, &err), SAM_EINVAL);
	CHECK_INT(sam_lora_init(&c, &m, 1u << 9, 8, 1, 1, &err), SAM_EINVAL);
	CHECK_INT(sam_lora_init(&c, &m, SAM_LORA_ALL, 0, 1, 1, &err), SAM_EINVAL);
	CHECK_INT(sam_lora_init(&c, &m, SAM_LORA_ALL, 8, NAN, 1, &err), SAM_EINVAL);
	CHECK(c.mem == NULL && c.layer == NULL);
	sam_lora_free(&a);
	sam_lora_free(&b);
	sam_model_free(&m);
}

/* ---- equivalence with merged weights ----------------------------------- */

/* The pair of lo that adapts the weight named `name` ("blk.0.attn_q.weight"), or NULL. */
static const struct sam_lora_pair *pair_for(const struct sam_lora *lo, const char *name)
{
	for (int l = -1; l < lo->n_layer; l++)
		for (int t = 0; t < SAM_LORA_N_TARGET; t++) {
			char base[64];
			sam_lora_tensor_base(base, l, t);
			strcat(base, ".weight");
			if (!strcmp(base, name) && pair_of(lo, l, t)->a.data) return pair_of(lo, l, t);
		}
	return NULL;
}

/* model_file (F32) with every adapted weight replaced by W + s B A, written to out. */
static void write_merged(const char *model_file, const struct sam_lora *lo, float scale, const char *out)
{
	struct gguf_file f;
	struct gguf_writer w;
	struct sam_error err = { 0 };
	CHECK(gguf_open(&f, test_model(model_file), &err) == 0);
	gguf_writer_init(&w);
	for (uint64_t i = 0; i < f.n_kv; i++) gguf_writer_copy_kv(&w, &f.kv[i]);
	float **merged = calloc(f.n_tensors, sizeof *merged);
	for (uint64_t i = 0; i < f.n_tensors; i++) {
		const struct gguf_tensor *t = &f.tensors[i];
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.s);
		const struct sam_lora_pair *p = pair_for(lo, name);
		if (!p) {
			gguf_writer_copy_tensor(&w, t);
			continue;
		}
		CHECK(t->type == GGML_TYPE_F32);
		int64_t n_in = (int64_t)t->ne[0], n_out = (int64_t)t->ne[1], r = p->a.rows;
		const float *W = t->data, *A = p->a.data, *B = p->b.data;
		float s = sam_lora_pair_scale(lo, p, scale);
		float *M = merged[i] = malloc((size_t)(n_in * n_out) * sizeof(float));
		for (int64_t o = 0; o < n_out; o++)
			for (int64_t j = 0; j < n_in; j++) {
				double ba = 0;
				for (int64_t k = 0; k < r; k++) ba += (double)B[o * r + k] * A[k * n_in + j];
				M[o * n_in + j] = W[o * n_in + j] + (float)(s * ba);
			}
		gguf_writer_add_tensor(&w, name, t->n_dims, t->ne, GGML_TYPE_F32, M, (size_t)t->nbytes);
	}
	CHECKF(gguf_writer_write(&w, out, &err) == 0, "%s", err.msg);
	gguf_writer_free(&w);
	for (uint64_t i = 0; i < f.n_tensors; i++) free(merged[i]);
	free(merged);
	gguf_close(&f);
}

/*
 * Base + adapter (scale 0.7, alpha != rank) against a model whose weights
 * are W + s B A: equal within 1e-4 of the logits' magnitude over a
 * multi-token prompt; and clearly different from the base.
 */
static void check_merged(const char *model_file, unsigned mask, int rank, float alpha)
{
	struct sam_model m, mm;
	load_model(model_file, &m);
	struct sam_lora lo;
	make_random(&lo, &m, mask, rank, alpha, 0.5f, 99);
	char *path = tmp_path("merged.gguf");
	write_merged(model_file, &lo, 0.7f, path);
	struct sam_error err = { 0 };
	CHECKF(sam_model_load(&mm, path, &err) == 0, "%s", err.msg);
	int32_t ids[10];
	for (int i = 0; i < 10; i++) ids[i] = prompt[i] % m.hp.n_vocab;
	size_t n = 10 * (size_t)m.hp.n_vocab;
	float *adapted = logits_of(&m, &lo, 0.7f, ids, 10), *merged = logits_of(&mm, NULL, 1, ids, 10);
	float *base = logits_of(&m, NULL, 1, ids, 10);
	double d = rel_diff(adapted, merged, n), moved = rel_diff(base, merged, n);
	printf("    %s mask %#x: adapted vs merged %.2e, base vs merged %.3f (relative to max |logit|)\n", model_file,
	       mask, d, moved);
	CHECKF(d < 1e-4, "%s: adapted and merged logits differ by %g", model_file, d);
	CHECKF(moved > 0.05, "%s: the adapter hardly changes the logits (%g)", model_file, moved);
	free(adapted), free(merged), free(base);
	sam_lora_free(&lo);
	sam_model_free(&mm);
	sam_model_free(&m);
}

TEST(lora_equals_merged_weights_stories260K)
{
	check_merged("stories260K.gguf", SAM_LORA_ALL | SAM_LORA_OUTPUT, 4, 6.0f);
	check_merged("stories260K.gguf", 1u << SAM_LORA_V | 1u << SAM_LORA_DOWN | SAM_LORA_OUTPUT, 3, 0.0f);
}

TEST(lora_equals_merged_weights_qwen2_biases)
{
	check_merged("tiny-qwen2.gguf", 1u << SAM_LORA_Q | 1u << SAM_LORA_K | 1u << SAM_LORA_V, 8, 4.0f);
}

/* ---- per sequence ------------------------------------------------------- */

/*
 * One batch of two interleaved sequences: sequence 0 gets `lo` at 0.7,
 * sequence 1 gets lo1 at scale1 (NULL: none); logits for the 8 rows
 * i % 3 != 0 (the last included). Fills row_seq/row_pos of each logits row; returns the
 * logits [n_logits][n_vocab] (malloc'd).
 */
static float *mixed_batch(const struct sam_model *m, const struct sam_lora *lo, const struct sam_lora *lo1,
			  float scale1, int *n_logits, int *row_seq, int *row_pos)
{
	int32_t tok[12], pos[12], seq[12];
	bool lg[12];
	int n = 0;
	for (int i = 0; i < 6; i++)
		for (int s = 0; s < 2; s++) {
			tok[n] = prompt[s ? 9 - i : i]; /* different text per sequence */
			if (s && !i) tok[n] = 1;
			pos[n] = i;
			seq[n] = s;
			lg[n] = n % 3 != 0;
			n++;
		}
	struct sam_ctx c;
	struct sam_error err = { 0 };
	new_ctx(&c, m, 12, 2, false);
	if (lo) CHECK(sam_ctx_set_lora(&c, 0, lo, 0.7f, &err) == 0);
	if (lo1) CHECK(sam_ctx_set_lora(&c, 1, lo1, scale1, &err) == 0);
	struct sam_batch bt = { n, tok, pos, seq, lg };
	CHECKF(sam_decode_batch(&c, &bt, &err) == 0, "%s", err.msg);
	*n_logits = c.n_logits;
	for (int i = 0, k = 0; i < n; i++)
		if (lg[i]) {
			row_seq[k] = seq[i];
			row_pos[k++] = pos[i];
		}
	size_t bytes = (size_t)c.n_logits * (size_t)m->hp.n_vocab * sizeof(float);
	float *out = malloc(bytes);
	memcpy(out, c.logits, bytes);
	sam_ctx_free(&c);
	return out;
}

TEST(lora_per_sequence_in_one_batch)
{
	struct sam_model m;
	load_model("stories260K.gguf", &m);
	struct sam_lora lo;
	make_random(&lo, &m, SAM_LORA_ALL | SAM_LORA_OUTPUT, 4, 8.0f, 0.5f, 5);
	size_t nv = (size_t)m.hp.n_vocab;
	int32_t ids0[6], ids1[6];
	for (int i = 0; i < 6; i++) ids0[i] = prompt[i], ids1[i] = i ? prompt[9 - i] : 1;
	float *single0 = logits_of(&m, &lo, 0.7f, ids0, 6), *single1 = logits_of(&m, &lo, 0.3f, ids1, 6);
	float *base1 = logits_of(&m, NULL, 1, ids1, 6);
	int n_a, n_b, rs[12], rp[12];
	float *mix = mixed_batch(&m, &lo, NULL, 0, &n_a, rs, rp);
	float *none = mixed_batch(&m, NULL, NULL, 0, &n_b, rs, rp);
	float *both = mixed_batch(&m, &lo, &lo, 0.3f, &n_b, rs, rp);
	CHECK_INT(n_a, 8);
	CHECK_INT(n_b, 8);
	int seen[2] = { 0 };
	double worst = 0;
	for (int k = 0; k < n_a; k++) {
		const float *row = mix + k * nv, *single = (rs[k] ? base1 : single0) + (size_t)rp[k] * nv;
		seen[rs[k]]++;
		if (rs[k]) /* the sequence without an adapter: untouched, bit for bit */
			CHECKF(!memcmp(row, none + k * nv, nv * sizeof(float)), "seq 1 row %d changed", k);
		double d = rel_diff(row, single, nv);
		CHECKF(d < 1e-5, "row %d (seq %d pos %d) differs from its single run by %g", k, rs[k], rp[k], d);
		const float *want = (rs[k] ? single1 : single0) + (size_t)rp[k] * nv;
		double d2 = rel_diff(both + k * nv, want, nv);
		CHECKF(d2 < 1e-5, "row %d with two scales differs by %g", k, d2);
		worst = fmax(worst, fmax(d, d2));
	}
	printf("    batched rows vs single-sequence runs: %.2e at most\n", worst);
	CHECK(seen[0] > 2 && seen[1] > 2);
	/* an adapter of other dimensions is refused; a bad sequence too */
	struct sam_model tl;
	struct sam_ctx c;
	struct sam_error err = { 0 };
	load_model("tiny-llama.gguf", &tl);
	new_ctx(&c, &tl, 4, 1, false);
	CHECK_INT(sam_ctx_set_lora(&c, 0, &lo, 1, &err), SAM_EINVAL);
	CHECKF(strstr(err.msg, "does not fit") || strstr(err.msg, "layers"), "%s", err.msg);
	CHECK_INT(sam_ctx_set_lora(&c, 1, NULL, 1, &err), SAM_EINVAL);
	CHECK(sam_ctx_set_lora(&c, 0, NULL, 1, &err) == 0);
	sam_ctx_free(&c);
	sam_model_free(&tl);
	free(single0), free(single1), free(base1), free(mix), free(none), free(both);
	sam_lora_free(&lo);
	sam_model_free(&m);
}

/* ---- quantized base ----------------------------------------------------- */

/* On a Q8_0 base the adapter moves the logits about as much as on the F32 one. */
TEST(lora_on_quantized_base)
{
	struct sam_model q, f;
	load_model("stories260K-q8_0.gguf", &q);
	load_model("stories260K.gguf", &f);
	struct sam_lora lo;
	make_random(&lo, &q, SAM_LORA_ALL | SAM_LORA_OUTPUT, 4, 8.0f, 0.5f, 11);
	size_t n = 10 * 512;
	float *qb = logits_of(&q, NULL, 1, prompt, 10), *qa = logits_of(&q, &lo, 0.7f, prompt, 10);
	float *fb = logits_of(&f, NULL, 1, prompt, 10), *fa = logits_of(&f, &lo, 0.7f, prompt, 10);
	double moved = rel_diff(qb, qa, n), same = rel_diff(qa, fa, n);
	printf("    q8_0: base vs adapted %.3f; q8_0 vs f32 adapted %.3f\n", moved, same);
	CHECK(moved > 0.05);
	CHECK(same < moved / 2);
	free(qb), free(qa), free(fb), free(fa);
	sam_lora_free(&lo);
	sam_model_free(&q);
	sam_model_free(&f);
}

/* ---- refusals ----------------------------------------------------------- */

/* A writer holding the adapter file src's metadata and tensors, except the tensor named skip (may be NULL). */
static void copy_adapter(struct gguf_writer *w, struct gguf_file *f, const char *src, const char *skip)
{
	struct sam_error err = { 0 };
	CHECKF(gguf_open(f, src, &err) == 0, "%s", err.msg);
	gguf_writer_init(w);
	for (uint64_t i = 0; i < f->n_kv; i++) gguf_writer_copy_kv(w, &f->kv[i]);
	for (uint64_t i = 0; i < f->n_tensors; i++)
		if (!skip || !gguf_str_eq(f->tensors[i].name, skip)) gguf_writer_copy_tensor(w, &f->tensors[i]);
}

static void write_and_close(struct gguf_writer *w, struct gguf_file *f, const char *path)
{
	struct sam_error err = { 0 };
	CHECKF(gguf_writer_write(w, path, &err) == 0, "%s", err.msg);
	gguf_writer_free(w);
	gguf_close(f);
}

/* Add an F32 matrix of GGUF shape [ne0, ne1] (zeros). */
static void add_f32(struct gguf_writer *w, const char *name, uint64_t ne0, uint64_t ne1)
{
	uint64_t ne[2] = { ne0, ne1 };
	CHECK(gguf_writer_add_tensor(w, name, 2, ne, GGML_TYPE_F32, NULL, (size_t)(ne0 * ne1 * 4)) == 0);
}

TEST(lora_bad_files_are_refused_with_reasons)
{
	struct sam_model m;
	load_model("stories260K.gguf", &m);
	struct sam_lora lo;
	struct sam_error err = { 0 };
	/* a valid adapter of q and v, rank 4, to start from */
	CHECK(sam_lora_init(&lo, &m, 1u << SAM_LORA_Q | 1u << SAM_LORA_V, 4, 8, 1, &err) == 0);
	char *good = tmp_path("good.gguf"), *bad = tmp_path("bad.gguf");
	CHECK(sam_lora_save(&lo, &m, good, NULL, &err) == 0);
	sam_lora_free(&lo);
	struct gguf_writer w;
	struct gguf_file f;

	copy_adapter(&w, &f, good, NULL);
	gguf_writer_set_str(&w, "general.architecture", "qwen2");
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "general.architecture", "'qwen2', expected 'llama'");

	copy_adapter(&w, &f, good, NULL);
	gguf_writer_set_str(&w, "general.type", "model");
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "general.type", "expected 'adapter'");
	expect_refused(&m, test_model("stories260K.gguf"), "general.type", "is missing");

	copy_adapter(&w, &f, good, NULL);
	gguf_writer_set_str(&w, "adapter.type", "ia3");
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "adapter.type", "'ia3'");

	copy_adapter(&w, &f, good, NULL);
	gguf_writer_set_u32(&w, "adapter.lora.alpha", 8);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "adapter.lora.alpha", "f32");

	/* no alpha at all is fine: it means 0 */
	copy_adapter(&w, &f, good, NULL);
	gguf_writer_remove(&w, "adapter.lora.alpha");
	write_and_close(&w, &f, bad);
	CHECKF(sam_lora_load(&lo, &m, bad, &err) == 0, "%s", err.msg);
	CHECK(lo.alpha == 0.0f && lo.rank == 4);
	CHECK(sam_lora_pair_scale(&lo, &lo.layer[0][SAM_LORA_Q], 0.5f) == 0.5f);
	sam_lora_free(&lo);

	copy_adapter(&w, &f, good, "blk.2.attn_v.weight.lora_b");
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.2.attn_v.weight.lora_b' is missing", NULL);

	copy_adapter(&w, &f, good, "blk.0.attn_q.weight.lora_a");
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.0.attn_q.weight.lora_a' is missing", NULL);

	/* shapes: n_in, n_out, rank mismatch, a 3-D tensor */
	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "blk.1.attn_k.weight.lora_a", 32, 4); /* n_in is 64 */
	add_f32(&w, "blk.1.attn_k.weight.lora_b", 4, 32);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.1.attn_k.weight.lora_a' has shape [32, 4", "expected [64, rank]");

	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "blk.1.attn_k.weight.lora_a", 64, 4);
	add_f32(&w, "blk.1.attn_k.weight.lora_b", 4, 64); /* n_out is 32 */
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.1.attn_k.weight.lora_b' has shape [4, 64", "expected [rank, 32]");

	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "blk.1.ffn_down.weight.lora_a", 172, 4);
	add_f32(&w, "blk.1.ffn_down.weight.lora_b", 2, 64);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "blk.1.ffn_down.weight", "different ranks (4 and 2)");

	copy_adapter(&w, &f, good, NULL);
	uint64_t ne3[3] = { 64, 4, 2 };
	gguf_writer_add_tensor(&w, "blk.1.attn_k.weight.lora_a", 3, ne3, GGML_TYPE_F32, NULL, 64 * 4 * 2 * 4);
	add_f32(&w, "blk.1.attn_k.weight.lora_b", 4, 32);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.1.attn_k.weight.lora_a' has shape [64, 4, 2, 1]", NULL);

	/* weights that cannot be adapted, names that are not LoRA tensors, layers the model lacks */
	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "token_embd.weight.lora_a", 512, 4);
	add_f32(&w, "token_embd.weight.lora_b", 4, 64);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'token_embd.weight.lora_a'", "cannot be adapted");

	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "blk.0.attn_norm.weight", 64, 1);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.0.attn_norm.weight' is not a LoRA tensor", NULL);

	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "blk.03.attn_q.weight.lora_a", 64, 4);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.03.attn_q.weight.lora_a'", "cannot be adapted");

	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "blk.9.attn_q.weight.lora_a", 64, 4);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.9.attn_q.weight.lora_a' adapts layer 9", "5 layers");

	/* a type the engine has no kernels for (IQ4_NL: same geometry as Q4_0) */
	copy_adapter(&w, &f, good, "blk.0.attn_q.weight.lora_a");
	uint64_t ne[2] = { 64, 4 };
	CHECK(gguf_writer_add_tensor(&w, "blk.0.attn_q.weight.lora_a", 2, ne, 20, NULL, 2 * 18 * 4) == 0);
	write_and_close(&w, &f, bad);
	expect_refused(&m, bad, "'blk.0.attn_q.weight.lora_a' has type IQ4_NL", "cannot compute");

	/* truncated files, a file that is not GGUF, no file */
	size_t len;
	char *data = test_read_file(good, &len);
	CHECK(data != NULL);
	for (size_t cut = 8; cut < len; cut += len / 7) {
		test_write_file(bad, data, cut);
		expect_refused(&m, bad, bad, NULL);
	}
	test_write_file(bad, data, len - 1);
	expect_refused(&m, bad, "past the end", NULL);
	free(data);
	test_write_file(bad, "not an adapter", 14);
	expect_refused(&m, bad, "not a GGUF file", NULL);
	expect_refused(&m, "/nonexistent/adapter.gguf", "No such file", NULL);
	sam_model_free(&m);

	/* tiny-qwen2 ties its output to token_embd: no output adapter, from a file or from init */
	struct sam_model qm;
	load_model("tiny-qwen2.gguf", &qm);
	CHECK_INT(sam_lora_init(&lo, &qm, SAM_LORA_OUTPUT, 4, 8, 1, &err), SAM_EINVAL);
	CHECK(strstr(err.msg, "tied") != NULL);
	CHECK(sam_lora_init(&lo, &qm, 1u << SAM_LORA_Q, 4, 8, 1, &err) == 0);
	CHECK(sam_lora_save(&lo, &qm, good, NULL, &err) == 0);
	sam_lora_free(&lo);
	copy_adapter(&w, &f, good, NULL);
	add_f32(&w, "output.weight.lora_a", (uint64_t)qm.hp.dim, 4);
	add_f32(&w, "output.weight.lora_b", 4, (uint64_t)qm.hp.n_vocab);
	write_and_close(&w, &f, bad);
	expect_refused(&qm, bad, "'output.weight.lora_a' adapts output.weight", "tied to token_embd");
	CHECKF(sam_lora_load(&lo, &qm, good, &err) == 0, "%s", err.msg);
	sam_lora_free(&lo);
	sam_model_free(&qm);
}

/* ---- the command line --------------------------------------------------- */

/* A nonzero adapter for stories260K, saved in the test's directory. */
static const char *write_story_adapter(void)
{
	struct sam_model m;
	struct sam_lora lo;
	struct sam_error err = { 0 };
	load_model("stories260K.gguf", &m);
	make_random(&lo, &m, SAM_LORA_ALL | SAM_LORA_OUTPUT, 4, 4.0f, 0.5f, 3);
	char *path = tmp_path("story-lora.gguf");
	CHECKF(sam_lora_save(&lo, &m, path, "test", &err) == 0, "%s", err.msg);
	sam_lora_free(&lo);
	sam_model_free(&m);
	return path;
}

/* `sam run` with extra arguments (up to 4, NULL-ended); the continuation (malloc'd). */
static char *run_story(int want_status, const char *a1, const char *a2, const char *a3, const char *a4)
{
	struct test_proc p;
	test_run_sam(&p, 60, "run", "-m", test_model("stories260K.gguf"), "-p", "Once upon a time", "-n", "40", "--temp",
		     "0", "-t", "2", a1, a2, a3, a4, NULL);
	CHECKF(p.status == want_status, "exit %d, expected %d: %s", p.status, want_status, p.err);
	char *out = want_status ? strdup(p.err) : strdup(p.out);
	test_proc_free(&p);
	return out;
}

TEST(lora_cli_run)
{
	const char *ad = write_story_adapter();
	char *base = run_story(0, NULL, NULL, NULL, NULL);
	char *adapted = run_story(0, "--lora", ad, NULL, NULL);
	char *off = run_story(0, "--lora", ad, "--lora-scale", "0");
	char *half = run_story(0, "--lora", ad, "--lora-scale", "0.5");
	printf("    base:    %s\n    adapted: %s\n", base, adapted);
	CHECK(strlen(base) > 20 && strlen(adapted) > 20);
	CHECK(strcmp(base, adapted) != 0);
	CHECK_STR(off, base);
	CHECK(strcmp(half, adapted) != 0);

	char *bad = tmp_path("bad-lora.gguf");
	test_write_file(bad, "GGUF", 4);
	char *msg = run_story(1, "--lora", bad, NULL, NULL);
	CHECKF(strstr(msg, "sam run: LoRA adapter:") && strstr(msg, bad), "stderr: %s", msg);
	free(msg);
	msg = run_story(1, "--lora", test_model("stories260K.gguf"), NULL, NULL);
	CHECKF(strstr(msg, "general.type"), "stderr: %s", msg);
	free(msg);
	msg = run_story(2, "--lora-scale", "2", NULL, NULL);
	CHECKF(strstr(msg, "--lora-scale needs --lora"), "stderr: %s", msg);
	free(msg);
	msg = run_story(2, "--lora", ad, "--lora-scale", "lots");
	CHECKF(strstr(msg, "--lora-scale"), "stderr: %s", msg);
	free(msg);
	free(base), free(adapted), free(off), free(half);
}

TEST(lora_cli_perplexity)
{
	const char *ad = write_story_adapter();
	const char *dir = getenv("SAM_MODELS") ? getenv("SAM_MODELS") : "../shared/models";
	char text[600];
	snprintf(text, sizeof text, "%s/ref/ppl-text.txt", dir);
	char *probe = test_read_file(text, NULL);
	if (!probe) test_skip("%s is missing", text);
	free(probe);
	double ppl[3];
	const char *extra[3][4] = { { NULL }, { "--lora", ad, NULL }, { "--lora", ad, "--lora-scale", "0" } };
	for (int i = 0; i < 3; i++) {
		struct test_proc p;
		test_run_sam(&p, 120, "perplexity", "-m", test_model("stories260K.gguf"), "-f", text, "-c", "128",
			     "--chunks", "2", "-t", "2", extra[i][0], extra[i][1], extra[i][2], extra[i][3], NULL);
		CHECKF(p.status == 0, "exit %d: %s", p.status, p.err);
		const char *s = strstr(p.out, "PPL = ");
		CHECK(s != NULL);
		ppl[i] = atof(s + 6);
		test_proc_free(&p);
	}
	printf("    PPL base %.4f, with the random adapter %.4f, at scale 0 %.4f\n", ppl[0], ppl[1], ppl[2]);
	CHECK(ppl[0] > 1 && ppl[1] != ppl[0] && ppl[2] == ppl[0]);
}
