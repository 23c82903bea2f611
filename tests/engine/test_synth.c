/* test_synth.c - `sam synth`: llama-quantize's type rules, determinism, loadable output. */
#include <stdlib.h>
#include <string.h>

#include "sam/ggml_types.h"
#include "sam/gguf.h"
#include "sam/synth.h"
#include "test.h"

/* The type rules reproduce llama-quantize's choice for every tensor of the fixtures. */
static void check_rules(const char *file, int ftype)
{
	struct gguf_file f;
	struct sam_error err;
	CHECKF(gguf_open(&f, test_model(file), &err) == 0, "%s", err.msg);
	bool tied = !gguf_find_tensor(&f, "output.weight");
	int64_t n_layer = 0;
	CHECK(gguf_get_int(&f, "llama.block_count", &n_layer, NULL) == 0 || gguf_get_int(&f, "qwen2.block_count", &n_layer, NULL) == 0);
	for (uint64_t i = 0; i < f.n_tensors; i++) {
		const struct gguf_tensor *t = &f.tensors[i];
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)t->name.n, t->name.s);
		int layer = -1;
		sscanf(name, "blk.%d.", &layer);
		uint32_t want = t->type, got = synth_tensor_type(ftype, name, (int64_t)t->ne[0], (int)t->n_dims, layer,
								(int)n_layer, tied);
		CHECKF(got == want, "%s %s: rules say %s, llama-quantize wrote %s", file, name, ggml_type_name(got),
		       ggml_type_name(want));
	}
	gguf_close(&f);
}

TEST(synth_type_rules_match_llama_quantize)
{
	check_rules("tiny-llama-q4_k_m.gguf", SYNTH_Q4_K_M);
	check_rules("tiny-llama-q6_k.gguf", SYNTH_Q6_K);
	check_rules("tiny-llama-q4_0.gguf", SYNTH_Q4_0);
	check_rules("tiny-llama-q8_0.gguf", SYNTH_Q8_0);
	check_rules("tiny-qwen2-q4_k_m.gguf", SYNTH_Q4_K_M);
	check_rules("tiny-qwen2-q8_0.gguf", SYNTH_Q8_0);
	/* widths that are not whole super-blocks fall back like llama-quantize (SmolLM2's 576) */
	CHECK(synth_tensor_type(SYNTH_Q4_K_M, "blk.3.attn_q.weight", 576, 2, 3, 30, 1) == GGML_TYPE_Q5_0);
	CHECK(synth_tensor_type(SYNTH_Q4_K_M, "blk.0.attn_v.weight", 576, 2, 0, 30, 1) == GGML_TYPE_Q8_0);
	CHECK(synth_tensor_type(SYNTH_Q4_K_M, "token_embd.weight", 576, 2, -1, 30, 1) == GGML_TYPE_Q8_0);
	CHECK(synth_tensor_type(SYNTH_Q4_K_M, "blk.0.ffn_down.weight", 1536, 2, 0, 30, 1) == GGML_TYPE_Q6_K);
	CHECK(synth_tensor_type(SYNTH_Q4_K_M, "blk.4.ffn_down.weight", 1536, 2, 4, 30, 1) == GGML_TYPE_Q4_K);
}

TEST(synth_writes_deterministic_loadable_models)
{
	char a[512], b[512], c[512];
	snprintf(a, sizeof a, "%s/a.gguf", test_tmpdir());
	snprintf(b, sizeof b, "%s/b.gguf", test_tmpdir());
	snprintf(c, sizeof c, "%s/c.gguf", test_tmpdir());
	struct test_proc p;
	test_run_sam(&p, 120, "synth", "--preset", "stories15m", "--type", "q4_k_m", "--seed", "5", "-o", a, NULL);
	CHECKF(p.status == 0, "%s", p.err);
	test_proc_free(&p);
	test_run_sam(&p, 120, "synth", "--preset", "stories15m", "--type", "q4_k_m", "--seed", "5", "-o", b, NULL);
	CHECK_INT(p.status, 0);
	test_proc_free(&p);
	test_run_sam(&p, 120, "synth", "--preset", "stories15m", "--type", "q4_k_m", "--seed", "6", "-o", c, NULL);
	CHECK_INT(p.status, 0);
	test_proc_free(&p);
	size_t la, lb, lc;
	char *da = test_read_file(a, &la), *db = test_read_file(b, &lb), *dc = test_read_file(c, &lc);
	CHECK(da && db && dc && la == lb && la == lc && la > 5000000);
	CHECK(memcmp(da, db, la) == 0);
	CHECK(memcmp(da, dc, la) != 0);
	free(da), free(db), free(dc);
	test_run_sam(&p, 60, "run", "-m", a, "-p", "t1 t2 t3", "-n", "8", "--temp", "0", "--output-ids", "-t", "2", NULL);
	CHECKF(p.status == 0, "%s", p.err);
	CHECK(p.out_len > 0);
	test_proc_free(&p);
	/* the vocabulary can come from a real tokenizer */
	test_run_sam(&p, 120, "synth", "--preset", "stories15m", "--type", "q8_0", "--vocab-from",
		     test_model("vocab/ggml-vocab-llama-spm.gguf"), "-o", a, NULL);
	CHECKF(p.status == 0, "%s", p.err);
	test_proc_free(&p);
	test_run_sam(&p, 60, "run", "-m", a, "-p", "Once upon a time", "-n", "4", "--temp", "0", "-t", "2", NULL);
	CHECKF(p.status == 0, "%s", p.err);
	test_proc_free(&p);
	test_run_sam(&p, 10, "synth", "--preset", "nope", "-o", a, NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
}
