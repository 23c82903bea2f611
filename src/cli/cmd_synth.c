/* cmd_synth.c - `sam synth`: write a random-weight model of a real shape (see synth.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/synth.h"

int cmd_synth(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("synth");
	struct synth_opts o = { .ftype = -1 };
	const char *preset = NULL, *type = NULL;
	long long seed = 1;
	bool list = false;
	static const struct option lo[] = {
		{ "arch", required_argument, NULL, 'a' },       { "preset", required_argument, NULL, 'p' },
		{ "type", required_argument, NULL, 'T' },       { "vocab-from", required_argument, NULL, 'v' },
		{ "seed", required_argument, NULL, 's' },       { "output", required_argument, NULL, 'o' },
		{ "list", no_argument, NULL, 'l' },             { 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
		switch (c) {
		case 'a': o.arch = optarg; break;
		case 'p': preset = optarg; break;
		case 'T': type = optarg; break;
		case 'v': o.vocab_from = optarg; break;
		case 'o': o.out = optarg; break;
		case 'l': list = true; break;
		case 's':
			if (!cli_parse_int(optarg, 0, INT64_MAX, &seed)) return cli_usage_error(cmd, "--seed: expected >= 0");
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (list) {
		printf("%-14s %-6s %6s %6s %5s %4s %6s %7s %s\n", "preset", "arch", "dim", "layers", "heads", "kv", "ff",
		       "vocab", "embeddings");
		for (const struct synth_preset *p = synth_presets; p->name; p++)
			printf("%-14s %-6s %6d %6d %5d %4d %6d %7d %s\n", p->name, p->arch, p->dim, p->n_layer, p->n_head,
			       p->n_head_kv, p->n_ff, p->n_vocab, p->tied ? "tied" : "separate");
		return 0;
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!preset || !o.out) return cli_usage_error(cmd, "--preset and -o are required");
	if (!(o.p = synth_find(preset))) return cli_usage_error(cmd, "unknown preset '%s' (see --list)", preset);
	o.ftype = synth_ftype_from_name(type ? type : "f16");
	if (o.ftype < 0) return cli_usage_error(cmd, "--type: expected f32, f16, q8_0, q4_0, q4_k_m or q6_k");
	if (o.arch && strcmp(o.arch, "llama") && strcmp(o.arch, "qwen2"))
		return cli_usage_error(cmd, "--arch: expected llama or qwen2");
	o.seed = (uint64_t)seed;
	struct sam_error err = { 0 };
	double t0 = sam_now();
	if (synth_write(&o, &err)) {
		fprintf(stderr, "sam synth: %s\n", err.msg);
		return 1;
	}
	fprintf(stderr, "sam synth: wrote %s (%s, %s) in %.1f s\n", o.out, o.p->name, type ? type : "f16", sam_now() - t0);
	return 0;
}
