/*
 * cmd_perplexity.c - `sam perplexity`: a model's perplexity on a text, with
 * llama-perplexity's chunking so the figures compare: the text is tokenized
 * once, cut into whole chunks of ctx tokens (the first replaced by BOS when
 * the model adds one), each evaluated from an empty cache, and only the
 * second half of each chunk scored. --lora measures a LoRA adapter's effect.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/fs.h"
#include "sam/lora.h"
#include "sam/model.h"

#define MAX_TEXT (256u << 20)

/* -log p(next) from logits, in double. */
static double nll(const float *logits, int n_vocab, int32_t next)
{
	float max = logits[0];
	for (int i = 1; i < n_vocab; i++)
		if (logits[i] > max) max = logits[i];
	double sum = 0;
	for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - max);
	return log(sum) - ((double)logits[next] - max);
}

int cmd_perplexity(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("perplexity");
	const char *model = NULL, *file = NULL, *lora_file = NULL;
	long long ctx = 512, threads = 0, batch = 512, chunks = -1;
	double lora_scale = 1.0;
	bool lora_scale_set = false;
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' },     { "file", required_argument, NULL, 'f' },
		{ "ctx-size", required_argument, NULL, 'c' },  { "threads", required_argument, NULL, 't' },
		{ "batch-size", required_argument, NULL, 'b' }, { "chunks", required_argument, NULL, 'C' },
		{ "lora", required_argument, NULL, 'L' },       { "lora-scale", required_argument, NULL, 'S' },
		{ 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:f:c:t:b:", lo, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'f': file = optarg; break;
		case 'c':
			if (!cli_parse_int(optarg, 4, 1 << 20, &ctx)) return cli_usage_error(cmd, "-c: expected >= 4");
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 1024, &threads)) return cli_usage_error(cmd, "-t: expected 1..1024");
			break;
		case 'b':
			if (!cli_parse_int(optarg, 1, 1 << 20, &batch)) return cli_usage_error(cmd, "-b: expected >= 1");
			break;
		case 'C':
			if (!cli_parse_int(optarg, 1, 1 << 30, &chunks)) return cli_usage_error(cmd, "--chunks: expected >= 1");
			break;
		case 'L': lora_file = optarg; break;
		case 'S':
			if (!cli_parse_float(optarg, -1e3, 1e3, &lora_scale))
				return cli_usage_error(cmd, "--lora-scale: expected a number in [-1000, 1000]");
			lora_scale_set = true;
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!model || !file) return cli_usage_error(cmd, "-m MODEL and -f TEXT are required");
	if (lora_scale_set && !lora_file) return cli_usage_error(cmd, "--lora-scale needs --lora FILE");

	struct sam_error err = { 0 };
	struct sam_model m;
	struct sam_ctx cx = { 0 };
	struct sam_lora lora = { 0 };
	char *text = NULL;
	size_t len;
	int32_t *ids = NULL;
	size_t n_ids = 0;
	int status = 1;
	if (sam_model_load(&m, model, &err)) {
		fprintf(stderr, "sam perplexity: %s\n", err.msg);
		return 1;
	}
	if (sam_read_file(file, MAX_TEXT, &text, &len, &err) ||
	    tok_encode(&m.vocab, text, len, true, false, &ids, &n_ids, &err)) {
		fprintf(stderr, "sam perplexity: %s\n", err.msg);
		goto out;
	}
	long long n_chunk = (long long)n_ids / ctx;
	if (chunks > 0 && chunks < n_chunk) n_chunk = chunks;
	if (n_chunk < 1) {
		fprintf(stderr, "sam perplexity: the text has %zu tokens, fewer than one chunk of %lld\n", n_ids, ctx);
		goto out;
	}
	if (batch > ctx) batch = ctx;
	struct sam_ctx_params cp = { .n_ctx = (int)ctx, .n_batch = (int)batch, .logits_all = true,
				     .n_threads = (int)threads };
	if (sam_ctx_new(&cx, &m, &cp, &err)) {
		fprintf(stderr, "sam perplexity: %s\n", err.msg);
		goto out;
	}
	if (lora_file && (sam_lora_load(&lora, &m, lora_file, &err) ||
			  sam_ctx_set_lora(&cx, 0, &lora, (float)lora_scale, &err))) {
		fprintf(stderr, "sam perplexity: LoRA adapter: %s\n", err.msg);
		goto out;
	}
	fprintf(stderr, "sam perplexity: %zu tokens, %lld chunks of %lld, scoring positions %lld..%lld of each\n",
		n_ids, n_chunk, ctx, ctx / 2, ctx - 2);
	double sum = 0, sum2 = 0;
	long long count = 0;
	double t0 = sam_now();
	int32_t *chunk = xmalloc((size_t)ctx * sizeof *chunk);
	for (long long k = 0; k < n_chunk; k++) {
		memcpy(chunk, ids + k * ctx, (size_t)ctx * sizeof *chunk);
		if (m.vocab.add_bos && m.vocab.bos >= 0) chunk[0] = m.vocab.bos;
		sam_ctx_reset(&cx);
		for (long long i = 0; i < ctx; i += batch) {
			int nb = (int)(ctx - i < batch ? ctx - i : batch);
			if (sam_decode(&cx, chunk + i, nb, &err)) {
				fprintf(stderr, "sam perplexity: %s\n", err.msg);
				free(chunk);
				goto out;
			}
			/* score rows whose position is in [ctx/2, ctx-2]: they predict the next token of the chunk */
			for (int r = 0; r < nb; r++) {
				long long pos = i + r;
				if (pos < ctx / 2 || pos > ctx - 2) continue;
				double v = nll(sam_ctx_logits(&cx, r), m.hp.n_vocab, ids[k * ctx + pos + 1]);
				sum += v;
				sum2 += v * v;
				count++;
			}
		}
		printf("[%lld]%.4f%s", k + 1, exp(sum / (double)count), k + 1 < n_chunk ? "," : "\n");
		fflush(stdout);
	}
	free(chunk);
	double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
	double ppl = exp(mean), se = count > 1 ? ppl * sqrt(var > 0 ? var / (double)(count - 1) : 0) : 0;
	printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, se);
	fprintf(stderr, "sam perplexity: %lld tokens scored in %.2f s (%.1f tok/s evaluated)\n", count, sam_now() - t0,
		(double)(n_chunk * ctx) / (sam_now() - t0));
	status = 0;
out:
	sam_ctx_free(&cx); /* before the adapter it borrows */
	sam_lora_free(&lora);
	free(ids);
	free(text);
	sam_model_free(&m);
	return status;
}
