/*
 * cmd_bench.c - `sam bench`: prompt-processing and generation speed like
 * llama-bench, so the two compare on the same file.
 *
 *   pp<N>: evaluate a prompt of N tokens from an empty cache, in batches of
 *          at most 512 tokens (BOS first when the model adds one, then
 *          random valid ids from a fixed seed); logits of the last token.
 *   tg<N>: from an empty cache decode N single tokens, BOS (or a random id)
 *          then random ids, each with its logits, as llama-bench's test_gen.
 *          With --seqs S, S sequences at once: each step one batch of S
 *          tokens, one per sequence, each with its logits (continuous
 *          batching as the api does it); tokens/s counts all S.
 *
 * Each test runs once as warm-up, then REPS times; tokens/s is reported as
 * mean ± sample standard deviation over the repetitions.
 *
 * --bandwidth first measures memory bandwidth with a 2-array-read,
 * 1-array-write triad (sam_membw_triad) on the same threads, and gives for
 * tg the bandwidth limit: bandwidth / bytes of weights read per token. The
 * bytes read per token are the tensor bytes of the file; with tied
 * embeddings the one table is read once (by the output matmul); a separate
 * token embedding table only has one row read, so it is left out.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/membw.h"
#include "sam/model.h"

#define MAX_UBATCH 512

struct bench_test {
	const char *kind; /* "pp" or "tg" */
	int n_prompt, n_gen, n_seqs;
	double *ts; /* [reps] tokens/s */
	double mean, sd;
};

/*
 * The triad in a child process, so that its 3 large arrays neither count in
 * this process's peak RSS nor fragment its heap. Returns GB/s, <= 0 on failure.
 */
/* sequences decoded together by tg with --seqs */
#define MAX_SEQS 64

static double triad_in_child(int threads, size_t bytes)
{
	int fd[2];
	if (pipe(fd)) return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		close(fd[0]);
		double g = sam_membw_triad(threads, bytes);
		_exit(write(fd[1], &g, sizeof g) == (ssize_t)sizeof g ? 0 : 1);
	}
	close(fd[1]);
	double g = -1;
	if (read(fd[0], &g, sizeof g) != (ssize_t)sizeof g) g = -1;
	close(fd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0) {}
	return g;
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int32_t first_token(const struct sam_model *m, uint64_t *rng)
{
	if (m->vocab.add_bos && m->vocab.bos >= 0) return m->vocab.bos;
	return (int32_t)(rng_next(rng) % (uint64_t)m->hp.n_vocab);
}

/* One run of a test; seconds, or < 0 on error (err set). */
static double run_once(struct sam_ctx *cx, const struct bench_test *t, int32_t *toks, struct sam_error *err)
{
	const struct sam_model *m = cx->model;
	uint64_t rng = 42;
	sam_ctx_reset(cx);
	if (t->n_prompt) {
		toks[0] = first_token(m, &rng);
		for (int i = 1; i < t->n_prompt; i++) toks[i] = (int32_t)(rng_next(&rng) % (uint64_t)m->hp.n_vocab);
		double t0 = sam_now();
		for (int i = 0; i < t->n_prompt; i += MAX_UBATCH) {
			int nb = t->n_prompt - i < MAX_UBATCH ? t->n_prompt - i : MAX_UBATCH;
			if (sam_decode(cx, toks + i, nb, err)) return -1;
		}
		return sam_now() - t0;
	}
	int S = t->n_seqs;
	int32_t pos[MAX_SEQS], seq[MAX_SEQS];
	bool logits[MAX_SEQS];
	for (int s = 0; s < S; s++) {
		toks[s] = first_token(m, &rng);
		seq[s] = s;
		logits[s] = true;
	}
	double t0 = sam_now();
	for (int i = 0; i < t->n_gen; i++) {
		for (int s = 0; s < S; s++) pos[s] = i;
		struct sam_batch b = { .n = S, .tokens = toks, .pos = pos, .seq = seq, .logits = logits };
		if (sam_decode_batch(cx, &b, err)) return -1;
		for (int s = 0; s < S; s++) toks[s] = (int32_t)(rng_next(&rng) % (uint64_t)m->hp.n_vocab);
	}
	return sam_now() - t0;
}

static void stats(struct bench_test *t, int reps)
{
	double s = 0, s2 = 0;
	for (int i = 0; i < reps; i++) s += t->ts[i];
	t->mean = s / reps;
	for (int i = 0; i < reps; i++) s2 += (t->ts[i] - t->mean) * (t->ts[i] - t->mean);
	t->sd = reps > 1 ? sqrt(s2 / (reps - 1)) : 0;
}

/* "llama Q4_0"-style description: architecture and general.file_type. */
static void describe(const struct sam_model *m, char *buf, size_t cap)
{
	static const char *ftypes[] = {
		[0] = "all F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0",
		[9] = "Q5_1", [10] = "Q2_K - Medium", [11] = "Q3_K - Small", [12] = "Q3_K - Medium",
		[13] = "Q3_K - Large", [14] = "Q4_K - Small", [15] = "Q4_K - Medium", [16] = "Q5_K - Small",
		[17] = "Q5_K - Medium", [18] = "Q6_K", [32] = "BF16",
	};
	int64_t ft = -1;
	struct sam_error e = { 0 };
	const char *name = "?";
	if (!gguf_get_int(&m->gguf, "general.file_type", &ft, &e) && ft >= 0 &&
	    ft < (int64_t)(sizeof ftypes / sizeof ftypes[0]) && ftypes[ft])
		name = ftypes[ft];
	snprintf(buf, cap, "%s %s", m->hp.arch_name, name);
}

int cmd_bench(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("bench");
	const char *model = NULL;
	long long n_prompt = 128, n_gen = 64, reps = 3, threads = 0, bw_mib = 0, seqs = 1;
	bool json = false, bandwidth = false;
	enum { OPT_JSON = 256, OPT_BANDWIDTH, OPT_BW_MIB, OPT_SEQS };
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' },   { "n-prompt", required_argument, NULL, 'p' },
		{ "n-gen", required_argument, NULL, 'n' },   { "repetitions", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' }, { "json", no_argument, NULL, OPT_JSON },
		{ "bandwidth", no_argument, NULL, OPT_BANDWIDTH },
		{ "bandwidth-mib", required_argument, NULL, OPT_BW_MIB },
		{ "seqs", required_argument, NULL, OPT_SEQS },
		{ 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:p:n:r:t:", lo, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'p':
			if (!cli_parse_int(optarg, 0, 1 << 20, &n_prompt)) return cli_usage_error(cmd, "-p: expected 0..1048576");
			break;
		case 'n':
			if (!cli_parse_int(optarg, 0, 1 << 20, &n_gen)) return cli_usage_error(cmd, "-n: expected 0..1048576");
			break;
		case 'r':
			if (!cli_parse_int(optarg, 1, 1000, &reps)) return cli_usage_error(cmd, "-r: expected 1..1000");
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 1024, &threads)) return cli_usage_error(cmd, "-t: expected 1..1024");
			break;
		case OPT_JSON: json = true; break;
		case OPT_BANDWIDTH: bandwidth = true; break;
		case OPT_BW_MIB:
			if (!cli_parse_int(optarg, 1, 1 << 20, &bw_mib))
				return cli_usage_error(cmd, "--bandwidth-mib: expected >= 1");
			bandwidth = true;
			break;
		case OPT_SEQS:
			if (!cli_parse_int(optarg, 1, MAX_SEQS, &seqs))
				return cli_usage_error(cmd, "--seqs: expected 1..%d", MAX_SEQS);
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!model) return cli_usage_error(cmd, "-m MODEL is required");
	if (!n_prompt && !n_gen) return cli_usage_error(cmd, "nothing to measure: -p 0 and -n 0");

	/* the triad first, before the model's pages compete for the cache */
	int bw_threads = threads > 0 ? (int)threads : sam_cpu_count();
	double gbs = 0;
	if (bandwidth) {
		gbs = triad_in_child(bw_threads, (size_t)bw_mib << 20);
		if (gbs <= 0) {
			fprintf(stderr, "sam bench: the bandwidth triad could not run (out of memory?)\n");
			return 1;
		}
	}

	struct sam_error err = { 0 };
	struct sam_model m;
	struct sam_ctx cx = { 0 };
	if (sam_model_load(&m, model, &err)) {
		fprintf(stderr, "sam bench: %s\n", err.msg);
		return 1;
	}
	int status = 1;
	struct bench_test tests[2];
	int nt = 0;
	if (n_prompt) tests[nt++] = (struct bench_test){ .kind = "pp", .n_prompt = (int)n_prompt };
	if (n_gen) tests[nt++] = (struct bench_test){ .kind = "tg", .n_gen = (int)n_gen, .n_seqs = (int)seqs };
	for (int i = 0; i < nt; i++) tests[i].ts = xcalloc((size_t)reps, sizeof(double));
	int32_t *toks = xmalloc((size_t)(n_prompt > seqs ? n_prompt : seqs) * sizeof *toks);
	struct sam_ctx_params cp = {
		.n_ctx = (int)(n_prompt > n_gen ? n_prompt : n_gen),
		.n_batch = (int)(n_prompt > MAX_UBATCH ? MAX_UBATCH : n_prompt > seqs ? n_prompt : seqs),
		.n_threads = (int)threads,
		.n_seq = (int)seqs,
	};
	if (sam_ctx_new(&cx, &m, &cp, &err)) {
		fprintf(stderr, "sam bench: %s\n", err.msg);
		goto out;
	}
	for (int i = 0; i < nt; i++) {
		struct bench_test *t = &tests[i];
		if (run_once(&cx, t, toks, &err) < 0) goto fail; /* warm-up */
		for (int r = 0; r < reps; r++) {
			double s = run_once(&cx, t, toks, &err);
			if (s < 0) goto fail;
			t->ts[r] = (t->n_prompt + t->n_gen * (t->n_gen ? t->n_seqs : 0)) / (s > 0 ? s : 1e-9);
		}
		stats(t, (int)reps);
	}

	size_t size = sam_model_weight_bytes(&m);
	uint64_t params = 0;
	for (uint64_t i = 0; i < m.gguf.n_tensors; i++) {
		uint64_t ne = 1;
		for (uint32_t d = 0; d < m.gguf.tensors[i].n_dims; d++) ne *= m.gguf.tensors[i].ne[d];
		params += ne;
	}
	size_t per_token = size;
	if (!m.tied_output) per_token -= (size_t)m.tok_embd.rows * m.tok_embd.row_bytes;
	double limit = gbs > 0 ? gbs * 1e9 / (double)per_token : 0;
	char desc[96];
	describe(&m, desc, sizeof desc);
	int n_threads = bw_threads;

	if (json) {
		json_t *arr = json_array();
		for (int i = 0; i < nt; i++) {
			struct bench_test *t = &tests[i];
			json_t *samples = json_array();
			for (int r = 0; r < reps; r++) json_array_append_new(samples, json_real(t->ts[r]));
			json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:i, s:f, s:f, s:o, s:I}", "model_filename",
					      model, "model_type", desc, "model_size", (json_int_t)size,
					      "model_n_params", (json_int_t)params, "n_threads", n_threads, "n_prompt",
					      t->n_prompt, "n_gen", t->n_gen, "avg_ts", t->mean, "stddev_ts", t->sd,
					      "samples_ts", samples, "peak_rss_bytes", (json_int_t)sam_peak_rss());
			if (t->n_seqs > 1) json_object_set_new(o, "n_seqs", json_integer(t->n_seqs));
			if (bandwidth) {
				json_object_set_new(o, "bandwidth_gbs", json_real(gbs));
				json_object_set_new(o, "bandwidth_threads", json_integer(bw_threads));
				if (t->n_gen) {
					json_object_set_new(o, "bytes_per_token", json_integer((json_int_t)per_token));
					json_object_set_new(o, "bandwidth_limit_ts", json_real(limit));
					json_object_set_new(o, "bandwidth_fraction", json_real(t->mean / limit));
				}
			}
			json_array_append_new(arr, o);
		}
		char *s = json_dumps(arr, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		puts(s);
		free(s);
		json_decref(arr);
	} else {
		printf("| model                          |       size |     params | backend    | threads |          test |                  t/s |\n");
		printf("| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------------: | -------------------: |\n");
		for (int i = 0; i < nt; i++) {
			struct bench_test *t = &tests[i];
			char test[32], sz[32], pr[32], ts[64];
			if (t->n_seqs > 1) snprintf(test, sizeof test, "%s%d x%d", t->kind, t->n_gen, t->n_seqs);
			else snprintf(test, sizeof test, "%s%d", t->kind, t->n_prompt + t->n_gen);
			snprintf(sz, sizeof sz, "%.2f MiB", (double)size / 1048576.0);
			snprintf(pr, sizeof pr, "%.2f M", (double)params / 1e6);
			snprintf(ts, sizeof ts, "%.2f ± %.2f", t->mean, t->sd);
			printf("| %-30s | %10s | %10s | %-10s | %7d | %13s | %20s |\n", desc, sz, pr, "CPU (sam)", n_threads,
			       test, ts);
		}
		printf("\npeak RSS %.1f MiB\n", (double)sam_peak_rss() / 1048576.0);
		if (bandwidth) {
			printf("bandwidth: triad %.2f GB/s (%d threads, 3 arrays of %lld MiB, best pass)\n", gbs,
			       bw_threads, bw_mib ? bw_mib : (long long)(SAM_MEMBW_DEFAULT_BYTES >> 20));
			for (int i = 0; i < nt; i++)
				if (tests[i].n_gen)
					printf("tg%d: %.2f MiB of weights per token -> limit %.2f t/s; achieved %.2f t/s = %.2f of the limit\n",
					       tests[i].n_gen, (double)per_token / 1048576.0, limit, tests[i].mean,
					       tests[i].mean / limit);
		}
	}
	status = 0;
	goto out;
fail:
	fprintf(stderr, "sam bench: %s\n", err.msg);
out:
	sam_ctx_free(&cx);
	for (int i = 0; i < nt; i++) free(tests[i].ts);
	free(toks);
	sam_model_free(&m);
	return status;
}
