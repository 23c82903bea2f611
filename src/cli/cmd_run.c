/*
 * cmd_run.c - `sam run`: generate a continuation of a prompt. Only the
 * generated text goes to stdout (streamed as it is produced); timings and
 * diagnostics go to stderr. With --chat the prompt is one user message
 * (after an optional --system message) in the model's chat template.
 * --lora applies a LoRA adapter (llama.cpp's GGUF format) at run time.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "sam/chat.h"
#include "sam/lora.h"
#include "sam/model.h"
#include "sam/sampler.h"

#define MAX_PROMPT_BYTES (64u << 20)

struct run_opts {
	const char *model, *prompt, *prompt_file, *system, *lora;
	long long n_predict, n_ctx, n_threads;
	double lora_scale;
	bool lora_scale_set;
	struct sam_sampler_params sp;
	bool seed_set, no_bos, ignore_eos, verbose, output_ids, chat;
};

enum { OPT_TEMP = 256, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT_PENALTY, OPT_REPEAT_LAST_N, OPT_SEED,
       OPT_NO_BOS, OPT_IGNORE_EOS, OPT_OUTPUT_IDS, OPT_CHAT, OPT_SYSTEM, OPT_LORA, OPT_LORA_SCALE };

static const struct option long_opts[] = {
	{ "model", required_argument, NULL, 'm' },
	{ "prompt", required_argument, NULL, 'p' },
	{ "file", required_argument, NULL, 'f' },
	{ "n-predict", required_argument, NULL, 'n' },
	{ "ctx-size", required_argument, NULL, 'c' },
	{ "threads", required_argument, NULL, 't' },
	{ "temp", required_argument, NULL, OPT_TEMP },
	{ "top-k", required_argument, NULL, OPT_TOP_K },
	{ "top-p", required_argument, NULL, OPT_TOP_P },
	{ "min-p", required_argument, NULL, OPT_MIN_P },
	{ "repeat-penalty", required_argument, NULL, OPT_REPEAT_PENALTY },
	{ "repeat-last-n", required_argument, NULL, OPT_REPEAT_LAST_N },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "no-bos", no_argument, NULL, OPT_NO_BOS },
	{ "ignore-eos", no_argument, NULL, OPT_IGNORE_EOS },
	{ "output-ids", no_argument, NULL, OPT_OUTPUT_IDS },
	{ "chat", no_argument, NULL, OPT_CHAT },
	{ "system", required_argument, NULL, OPT_SYSTEM },
	{ "lora", required_argument, NULL, OPT_LORA },
	{ "lora-scale", required_argument, NULL, OPT_LORA_SCALE },
	{ "verbose", no_argument, NULL, 'v' },
	{ 0 },
};

static int parse_opts(const struct sam_cmd *cmd, int argc, char **argv, struct run_opts *o)
{
	double d;
	long long v;
	int c;
	memset(o, 0, sizeof *o);
	o->n_predict = 128;
	o->lora_scale = 1.0;
	sam_sampler_defaults(&o->sp);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:p:f:n:c:t:v", long_opts, NULL)) != -1) {
		const char *a = optarg;
		switch (c) {
		case 'm': o->model = a; break;
		case 'p': o->prompt = a; break;
		case 'f': o->prompt_file = a; break;
		case 'v': o->verbose = true; break;
		case 'n':
			if (!cli_parse_int(a, -1, 1 << 24, &o->n_predict))
				return cli_usage_error(cmd, "-n: expected a number of tokens >= -1, got '%s'", a);
			break;
		case 'c':
			if (!cli_parse_int(a, 1, 1 << 24, &o->n_ctx))
				return cli_usage_error(cmd, "-c: expected a context size >= 1, got '%s'", a);
			break;
		case 't':
			if (!cli_parse_int(a, 1, 1024, &o->n_threads))
				return cli_usage_error(cmd, "-t: expected a thread count in [1, 1024], got '%s'", a);
			break;
		case OPT_TEMP:
			if (!cli_parse_float(a, 0, 1e6, &d)) return cli_usage_error(cmd, "--temp: bad value '%s'", a);
			o->sp.temp = (float)d;
			break;
		case OPT_TOP_K:
			if (!cli_parse_int(a, 0, 1 << 30, &v)) return cli_usage_error(cmd, "--top-k: bad value '%s'", a);
			o->sp.top_k = (int)v;
			break;
		case OPT_TOP_P:
			if (!cli_parse_float(a, 0, 1, &d)) return cli_usage_error(cmd, "--top-p: expected 0..1, got '%s'", a);
			o->sp.top_p = (float)d;
			break;
		case OPT_MIN_P:
			if (!cli_parse_float(a, 0, 1, &d)) return cli_usage_error(cmd, "--min-p: expected 0..1, got '%s'", a);
			o->sp.min_p = (float)d;
			break;
		case OPT_REPEAT_PENALTY:
			if (!cli_parse_float(a, 1e-3, 1e3, &d))
				return cli_usage_error(cmd, "--repeat-penalty: bad value '%s'", a);
			o->sp.repeat_penalty = (float)d;
			break;
		case OPT_REPEAT_LAST_N:
			if (!cli_parse_int(a, 0, 1 << 20, &v))
				return cli_usage_error(cmd, "--repeat-last-n: bad value '%s'", a);
			o->sp.repeat_last_n = (int)v;
			break;
		case OPT_SEED:
			if (!cli_parse_int(a, 0, INT64_MAX, &v)) return cli_usage_error(cmd, "--seed: bad value '%s'", a);
			o->sp.seed = (uint64_t)v;
			o->seed_set = true;
			break;
		case OPT_NO_BOS: o->no_bos = true; break;
		case OPT_IGNORE_EOS: o->ignore_eos = true; break;
		case OPT_OUTPUT_IDS: o->output_ids = true; break;
		case OPT_CHAT: o->chat = true; break;
		case OPT_SYSTEM: o->system = a; break;
		case OPT_LORA: o->lora = a; break;
		case OPT_LORA_SCALE:
			if (!cli_parse_float(a, -1e3, 1e3, &d))
				return cli_usage_error(cmd, "--lora-scale: expected a number in [-1000, 1000], got '%s'", a);
			o->lora_scale = d;
			o->lora_scale_set = true;
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!o->model) return cli_usage_error(cmd, "a model is required (-m MODEL.gguf)");
	if (!o->prompt && !o->prompt_file) return cli_usage_error(cmd, "a prompt is required (-p TEXT or -f FILE)");
	if (o->prompt && o->prompt_file) return cli_usage_error(cmd, "give -p or -f, not both");
	if (o->system && !o->chat) return cli_usage_error(cmd, "--system needs --chat");
	if (o->lora_scale_set && !o->lora) return cli_usage_error(cmd, "--lora-scale needs --lora FILE");
	if (!o->seed_set) o->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
	return 0;
}

static char *read_prompt_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) return NULL;
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n > MAX_PROMPT_BYTES) {
			free(buf);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (n == cap) buf = xrealloc(buf, cap *= 2);
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0'; /* n < cap: the loop grows buf whenever it fills up */
	*len = n;
	return buf;
}

static void emit(const struct sam_model *m, int32_t id, bool ids, bool first)
{
	if (ids) {
		printf(first ? "%d" : " %d", id);
	} else {
		char piece[256];
		size_t n = tok_piece(&m->vocab, id, false, piece, sizeof piece);
		if (n <= sizeof piece) {
			fwrite(piece, 1, n, stdout);
		} else { /* a rare long token */
			char *big = xmalloc(n);
			tok_piece(&m->vocab, id, false, big, n);
			fwrite(big, 1, n, stdout);
			free(big);
		}
	}
	fflush(stdout);
}

int cmd_run(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("run");
	struct run_opts o;
	int rc = parse_opts(cmd, argc, argv, &o);
	if (rc) return rc;

	struct sam_error err = { 0 };
	struct sam_model model;
	struct sam_ctx ctx = { 0 };
	struct sam_sampler smp = { 0 };
	struct sam_lora lora = { 0 };
	int32_t *ids = NULL;
	size_t n_ids = 0, plen = 0;
	char *ptext = NULL;
	enum chat_template tmpl = CHAT_CHATML;
	int32_t stop_ids[CHAT_MAX_STOP_IDS];
	int n_stop = 0;
	int status = 1;
	double t0 = sam_now();

	if (sam_model_load(&model, o.model, &err)) {
		fprintf(stderr, "sam run: %s\n", err.msg);
		return 1;
	}
	const struct sam_hparams *hp = &model.hp;
	if (o.prompt_file) {
		ptext = read_prompt_file(o.prompt_file, &plen);
		if (!ptext) {
			fprintf(stderr, "sam run: %s: %s\n", o.prompt_file, strerror(errno));
			goto out;
		}
	}
	const char *text = ptext ? ptext : o.prompt;
	if (!ptext) plen = strlen(text);
	bool add_special = !o.no_bos;
	if (o.chat) { /* one user message (after the --system one) in the model's template */
		if (memchr(text, 0, plen)) {
			fprintf(stderr, "sam run: the prompt contains a NUL byte\n");
			goto out;
		}
		struct chat_msg msgs[2];
		size_t n_msgs = 0;
		bool known;
		if (o.system) msgs[n_msgs++] = (struct chat_msg){ .role = "system", .content = o.system };
		msgs[n_msgs++] = (struct chat_msg){ .role = "user", .content = text };
		tmpl = chat_template_for_model(&model, &known);
		if (!known)
			sam_log(SAM_LOG_WARN, "%s: unrecognised chat template, formatting the chat as %s", o.model,
				chat_template_name(tmpl));
		if (chat_tokenize(&model, msgs, n_msgs, add_special, &ids, &n_ids, stop_ids, &n_stop, &known, &err)) {
			fprintf(stderr, "sam run: formatting the chat: %s\n", err.msg);
			goto out;
		}
	} else if (tok_encode(&model.vocab, text, plen, add_special, true, &ids, &n_ids, &err)) {
		fprintf(stderr, "sam run: tokenizing the prompt: %s\n", err.msg);
		goto out;
	}
	if (n_ids == 0) {
		fprintf(stderr, "sam run: the prompt is empty and the model adds no BOS token\n");
		goto out;
	}
	long long want = (long long)n_ids + (o.n_predict < 0 ? 0 : o.n_predict);
	long long n_ctx = o.n_ctx ? o.n_ctx : (want > hp->n_ctx_train ? want : hp->n_ctx_train);
	if (n_ctx > hp->n_ctx_train)
		sam_log(SAM_LOG_WARN, "context %lld is longer than the model's trained context %d", n_ctx,
			hp->n_ctx_train);
	if ((long long)n_ids >= n_ctx) {
		fprintf(stderr, "sam run: the prompt has %zu tokens, the context only %lld\n", n_ids, n_ctx);
		goto out;
	}
	struct sam_ctx_params cp = { .n_ctx = (int)n_ctx, .n_batch = n_ctx < 512 ? (int)n_ctx : 512,
				     .n_threads = (int)o.n_threads };
	if (sam_ctx_new(&ctx, &model, &cp, &err) || sam_sampler_init(&smp, &o.sp, hp->n_vocab, &err)) {
		fprintf(stderr, "sam run: %s\n", err.msg);
		goto out;
	}
	if (o.lora && (sam_lora_load(&lora, &model, o.lora, &err) ||
		       sam_ctx_set_lora(&ctx, 0, &lora, (float)o.lora_scale, &err))) {
		fprintf(stderr, "sam run: LoRA adapter: %s\n", err.msg);
		goto out;
	}
	if (o.verbose) {
		fprintf(stderr, "sam run: %s: arch %s, %d layers, dim %d, vocab %d, ctx %lld, %d threads, seed %llu\n",
			o.model, hp->arch_name, hp->n_layer, hp->dim, hp->n_vocab, n_ctx, ctx.p.n_threads,
			(unsigned long long)o.sp.seed);
		if (o.chat) fprintf(stderr, "sam run: chat template %s\n", chat_template_name(tmpl));
		if (o.lora)
			fprintf(stderr, "sam run: LoRA adapter %s: rank %d, alpha %g, scale %g\n", o.lora, lora.rank,
				(double)lora.alpha, o.lora_scale);
		fprintf(stderr, "sam run: prompt tokens:");
		for (size_t i = 0; i < n_ids; i++) fprintf(stderr, " %d", ids[i]);
		fputc('\n', stderr);
	}
	double t_load = sam_now();
	for (size_t i = 0; i < n_ids; i += (size_t)cp.n_batch) {
		int n = (int)(n_ids - i < (size_t)cp.n_batch ? n_ids - i : (size_t)cp.n_batch);
		if (sam_decode(&ctx, ids + i, n, &err)) {
			fprintf(stderr, "sam run: %s\n", err.msg);
			goto out;
		}
	}
	for (size_t i = 0; i < n_ids; i++) sam_sampler_accept(&smp, ids[i]);
	double t_prompt = sam_now();
	long long n_gen = 0;
	while (o.n_predict < 0 || n_gen < o.n_predict) {
		int32_t id = sam_sampler_sample(&smp, sam_ctx_logits(&ctx, 0));
		bool stop = tok_is_eog(&model.vocab, id);
		for (int i = 0; i < n_stop; i++) stop |= id == stop_ids[i];
		if (stop && !o.ignore_eos) break;
		emit(&model, id, o.output_ids, n_gen == 0);
		n_gen++;
		sam_sampler_accept(&smp, id);
		if (ctx.n_past >= ctx.p.n_ctx) {
			if (o.n_predict >= 0 && n_gen < o.n_predict)
				sam_log(SAM_LOG_WARN, "context full after %lld tokens", n_gen);
			break;
		}
		if (sam_decode(&ctx, &id, 1, &err)) {
			fprintf(stderr, "\nsam run: %s\n", err.msg);
			goto out;
		}
	}
	if (o.output_ids) putchar('\n');
	fflush(stdout);
	double t_end = sam_now();
	double pp = t_prompt - t_load, tg = t_end - t_prompt;
	fprintf(stderr,
		"\nsam run: load %.1f ms | prompt %zu tokens, %.2f ms, %.1f tok/s | generation %lld tokens, "
		"%.2f ms, %.1f tok/s | peak RSS %.1f MiB, own memory %.1f MiB\n",
		(t_load - t0) * 1e3, n_ids, pp * 1e3, pp > 0 ? (double)n_ids / pp : 0.0, n_gen, tg * 1e3,
		tg > 0 ? (double)n_gen / tg : 0.0, (double)sam_peak_rss() / (1 << 20),
		(double)sam_rss_anon() / (1 << 20));
	status = 0;
out:
	sam_sampler_free(&smp);
	sam_ctx_free(&ctx); /* before the adapter it borrows */
	sam_lora_free(&lora);
	free(ids);
	free(ptext);
	sam_model_free(&model);
	return status;
}
