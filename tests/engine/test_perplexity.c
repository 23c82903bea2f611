/* test_perplexity.c - `sam perplexity` against llama-perplexity's figures (ref/perplexity.tsv, within 1%). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static void check_ppl(const char *model, const char *ctx)
{
	char tsv_path[600], text[600];
	const char *dir = getenv("SAM_MODELS") ? getenv("SAM_MODELS") : "../shared/models";
	snprintf(tsv_path, sizeof tsv_path, "%s/ref/perplexity.tsv", dir);
	snprintf(text, sizeof text, "%s/ref/ppl-text.txt", dir);
	char *tsv = test_read_file(tsv_path, NULL);
	if (!tsv) test_skip("%s is missing", tsv_path);
	double want = 0;
	for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
		size_t n = strlen(model);
		if (!strncmp(line, model, n) && line[n] == '\t') want = atof(strchr(strchr(line, '\t') + 1, '\t') + 1);
	}
	free(tsv);
	CHECKF(want > 0, "no reference for %s", model);
	struct test_proc p;
	test_run_sam(&p, 300, "perplexity", "-m", test_model(model), "-f", text, "-c", ctx, "-t", "2", NULL);
	CHECKF(p.status == 0, "exit %d: %s", p.status, p.err);
	const char *s = strstr(p.out, "PPL = ");
	CHECK(s != NULL);
	double got = atof(s + 6);
	printf("    %s: PPL %.6g, llama.cpp %.6g\n", model, got, want);
	CHECKF(fabs(got - want) / want < 0.01, "%s: PPL %g vs llama.cpp %g", model, got, want);
	test_proc_free(&p);
}

TEST(perplexity_stories260K) { check_ppl("stories260K.gguf", "128"); }
TEST(perplexity_stories260K_q8_0) { check_ppl("stories260K-q8_0.gguf", "128"); }
TEST(perplexity_stories260K_q4_0) { check_ppl("stories260K-q4_0.gguf", "128"); }
TEST(perplexity_tiny_llama_q8_0) { check_ppl("tiny-llama-q8_0.gguf", "256"); }

TEST(perplexity_usage_and_errors)
{
	struct test_proc p;
	test_run_sam(&p, 30, "perplexity", "-m", test_model("stories260K.gguf"), NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	char path[512];
	snprintf(path, sizeof path, "%s/short.txt", test_tmpdir());
	test_write_file(path, "Once upon a time", 16);
	test_run_sam(&p, 30, "perplexity", "-m", test_model("stories260K.gguf"), "-f", path, "-c", "128", NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "fewer than one chunk") != NULL);
	test_proc_free(&p);
}
