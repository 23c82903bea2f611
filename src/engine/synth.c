/*
 * synth.c - write random-weight models of real shapes (see synth.h).
 *
 * The header is laid out first with zeroed tensor data (the GGUF writer
 * computes every offset), then each tensor is generated a block of rows at
 * a time from its own seeded stream, quantized, and written in place, so a
 * multi-GB model needs only a few MB of memory. Same seed, same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sam/fs.h"
#include "sam/ggml_types.h"
#include "sam/gguf.h"
#include "sam/gguf_write.h"
#include "sam/quant.h"
#include "sam/synth.h"

const struct synth_preset synth_presets[] = {
	{ "stories15m", "llama", 288, 6, 6, 6, 768, 32000, 256, 10000.0f, 1e-5f, 0, 0 },
	{ "smollm2-135m", "llama", 576, 30, 9, 3, 1536, 49152, 8192, 100000.0f, 1e-5f, 1, 0 },
	{ "qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, 1, 0 },
	{ "qwen2.5-1.5b", "qwen2", 1536, 28, 12, 2, 8960, 151936, 32768, 1000000.0f, 1e-6f, 1, 0 },
	{ "llama-3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.0f, 1e-5f, 1, 1 },
	{ NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
};

const struct synth_preset *synth_find(const char *name)
{
	for (const struct synth_preset *p = synth_presets; p->name; p++)
		if (!strcasecmp(p->name, name)) return p;
	return NULL;
}

static const char *ftype_names[] = { "f32", "f16", "q8_0", "q4_0", "q4_k_m", "q6_k" };
/* general.file_type values (llama_ftype) of the same */
static const int ftype_ids[] = { 0, 1, 7, 2, 15, 18 };

int synth_ftype_from_name(const char *name)
{
	for (int i = 0; i < (int)(sizeof ftype_names / sizeof ftype_names[0]); i++)
		if (!strcasecmp(name, ftype_names[i])) return i;
	return -1;
}

/* llama.cpp's use_more_bits(): the first and last eighth of the layers, and every third in between. */
static int more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

uint32_t synth_tensor_type(int ftype, const char *name, int64_t ne0, int n_dims, int i_layer, int n_layer, int tied)
{
	static const uint32_t base_of[] = { GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0,
					    GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K };
	uint32_t t = base_of[ftype];
	if (n_dims == 1) return GGML_TYPE_F32;
	if (ftype == SYNTH_F32 || ftype == SYNTH_F16) return t;
	bool is_output = !strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"));
	if (is_output) {
		if (ne0 % 256) t = GGML_TYPE_Q8_0;
		else if (t != GGML_TYPE_Q8_0) t = GGML_TYPE_Q6_K;
	} else if (ftype == SYNTH_Q4_K_M && (strstr(name, "attn_v.weight") || strstr(name, "ffn_down.weight")) &&
		   more_bits(i_layer, n_layer)) {
		t = GGML_TYPE_Q6_K;
	}
	if (ne0 % 256) { /* llama-quantize's fallbacks for rows that are not whole super-blocks */
		if (t == GGML_TYPE_Q4_K) t = GGML_TYPE_Q5_0;
		else if (t == GGML_TYPE_Q5_K) t = GGML_TYPE_Q5_1;
		else if (t == GGML_TYPE_Q6_K) t = GGML_TYPE_Q8_0;
	}
	if (ne0 % (int64_t)ggml_type_info(t)->block) t = GGML_TYPE_F32;
	return t;
}

/* ---- deterministic normal numbers ---------------------------------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);
	for (int i = 0; i < 4; i++) r->s[i] = splitmix(&x);
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9, t = s[1] << 17;
	s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return res;
}

/* n normal samples with standard deviation std (Box-Muller). */
static void rng_normal(struct rng *r, float *out, int64_t n, float std)
{
	for (int64_t i = 0; i < n; i += 2) {
		double u1 = ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53, u2 = (double)(rng_next(r) >> 11) * 0x1.0p-53;
		double m = sqrt(-2.0 * log(u1));
		out[i] = (float)(m * cos(2 * M_PI * u2)) * std;
		if (i + 1 < n) out[i + 1] = (float)(m * sin(2 * M_PI * u2)) * std;
	}
}

/* ---- the tensor list -------------------------------------------------------------- */

struct spec {
	char name[64];
	int n_dims;
	int64_t ne0, ne1;
	uint32_t type;
	float std;   /* 0: constant value `fill` */
	float fill;
	int layer;
};

static int n_specs(const struct synth_preset *p, bool qwen2)
{
	return 3 + (p->llama3_rope ? 1 : 0) + p->n_layer * (9 + (qwen2 ? 3 : 0));
}

static void add(struct spec *s, int *n, const char *name, int n_dims, int64_t ne0, int64_t ne1, float std, float fill,
		int layer)
{
	struct spec *x = &s[(*n)++];
	snprintf(x->name, sizeof x->name, "%s", name);
	x->n_dims = n_dims;
	x->ne0 = ne0;
	x->ne1 = n_dims == 1 ? 1 : ne1;
	x->std = std;
	x->fill = fill;
	x->layer = layer;
}

static int build_specs(const struct synth_opts *o, int n_vocab, bool qwen2, struct spec *s)
{
	const struct synth_preset *p = o->p;
	int hd = p->dim / p->n_head, q_dim = p->n_head * hd, kv_dim = p->n_head_kv * hd, n = 0;
	float wstd = 1.0f / sqrtf((float)p->dim);
	add(s, &n, "token_embd.weight", 2, p->dim, n_vocab, 1.0f, 0, -1);
	if (p->llama3_rope) add(s, &n, "rope_freqs.weight", 1, hd / 2, 1, 0, 1.0f, -1);
	for (int l = 0; l < p->n_layer; l++) {
		char nm[64];
#define T(suffix, nd, a, b, sd, f)                                   \
	snprintf(nm, sizeof nm, "blk.%d." suffix, l);                   \
	add(s, &n, nm, nd, a, b, sd, f, l)
		T("attn_norm.weight", 1, p->dim, 1, 0, 1.0f);
		T("attn_q.weight", 2, p->dim, q_dim, wstd, 0);
		T("attn_k.weight", 2, p->dim, kv_dim, wstd, 0);
		T("attn_v.weight", 2, p->dim, kv_dim, wstd, 0);
		if (qwen2) {
			T("attn_q.bias", 1, q_dim, 1, 0.02f, 0);
			T("attn_k.bias", 1, kv_dim, 1, 0.02f, 0);
			T("attn_v.bias", 1, kv_dim, 1, 0.02f, 0);
		}
		T("attn_output.weight", 2, q_dim, p->dim, wstd, 0);
		T("ffn_norm.weight", 1, p->dim, 1, 0, 1.0f);
		T("ffn_gate.weight", 2, p->dim, p->n_ff, wstd, 0);
		T("ffn_up.weight", 2, p->dim, p->n_ff, wstd, 0);
		T("ffn_down.weight", 2, p->n_ff, p->dim, 1.0f / sqrtf((float)p->n_ff), 0);
#undef T
	}
	add(s, &n, "output_norm.weight", 1, p->dim, 1, 0, 1.0f, -1);
	if (!p->tied) add(s, &n, "output.weight", 2, p->dim, n_vocab, wstd, 0, -1);
	for (int i = 0; i < n; i++)
		s[i].type = synth_tensor_type(o->ftype, s[i].name, s[i].ne0, s[i].n_dims, s[i].layer, p->n_layer, p->tied);
	return n;
}

/* Llama 3.x: per-frequency divisors (factor 32, low 1, high 4, original context 8192). */
static void llama3_freqs(const struct synth_preset *p, float *out)
{
	int hd = p->dim / p->n_head;
	const double factor = 32, low = 1, high = 4, orig = 8192;
	for (int i = 0; i < hd / 2; i++) {
		double freq = 1.0 / pow(p->rope_base, 2.0 * i / hd), wavelen = 2 * M_PI / freq;
		if (wavelen < orig / high) out[i] = 1.0f;
		else if (wavelen > orig / low) out[i] = (float)factor;
		else {
			double smooth = (orig / wavelen - low) / (high - low);
			out[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
		}
	}
}

static int set_metadata(struct gguf_writer *w, const struct synth_opts *o, const char *arch, int *n_vocab,
			struct sam_error *err)
{
	const struct synth_preset *p = o->p;
	char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, arch), k)
	gguf_writer_set_str(w, "general.architecture", arch);
	char name[96];
	snprintf(name, sizeof name, "synthetic %s (random weights)", p->name);
	gguf_writer_set_str(w, "general.name", name);
	gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype_ids[o->ftype]);
	gguf_writer_set_u32(w, "general.quantization_version", 2);
	gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)p->n_ctx);
	gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)p->dim);
	gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)p->n_layer);
	gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)p->n_ff);
	gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)p->n_head);
	gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)p->n_head_kv);
	gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(p->dim / p->n_head));
	gguf_writer_set_f32(w, KEY("rope.freq_base"), p->rope_base);
	gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), p->norm_eps);
#undef KEY
	if (o->vocab_from) {
		struct gguf_file v;
		int rc = gguf_open(&v, o->vocab_from, err);
		if (rc) return rc;
		const struct gguf_value *toks;
		if (gguf_get_arr(&v, "tokenizer.ggml.tokens", GGUF_T_STRING, &toks, err)) {
			gguf_close(&v);
			return sam_errorf(err, SAM_EFORMAT, "%s: no tokenizer.ggml.tokens", o->vocab_from);
		}
		*n_vocab = (int)toks->arr.n;
		for (uint64_t i = 0; i < v.n_kv; i++)
			if (v.kv[i].key.n > 10 && !memcmp(v.kv[i].key.s, "tokenizer.", 10)) gguf_writer_copy_kv(w, &v.kv[i]);
		rc = w->status; /* copies are done before the file closes */
		gguf_close(&v);
		return rc ? sam_errorf(err, rc, "copying the vocabulary: %s", w->err.msg) : 0;
	}
	/* a SentencePiece-type vocabulary of the right size: specials, 256 bytes, then t1, t2, ... */
	int n = *n_vocab;
	char **texts = xcalloc((size_t)n, sizeof *texts);
	float *scores = xcalloc((size_t)n, sizeof *scores);
	int32_t *types = xcalloc((size_t)n, sizeof *types);
	for (int i = 0; i < n; i++) {
		char buf[32];
		if (i == 0) snprintf(buf, sizeof buf, "<unk>"), types[i] = 2;
		else if (i == 1) snprintf(buf, sizeof buf, "<s>"), types[i] = 3;
		else if (i == 2) snprintf(buf, sizeof buf, "</s>"), types[i] = 3;
		else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3), types[i] = 6;
		else snprintf(buf, sizeof buf, "t%d", i - 258), types[i] = 1, scores[i] = -(float)(i - 258);
		texts[i] = xstrdup(buf);
	}
	gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
	gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, NULL, (size_t)n);
	gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_T_F32, scores, (size_t)n);
	gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_T_I32, types, (size_t)n);
	gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
	gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
	gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
	for (int i = 0; i < n; i++) free(texts[i]);
	free(texts);
	free(scores);
	free(types);
	return 0;
}

#define ROWS_PER_BLOCK 64

static int write_tensor(int fd, uint64_t off, const struct spec *s, size_t index, const struct synth_opts *o,
			const char *tmp, struct sam_error *err)
{
	const struct quant_traits *qt = quant_traits(s->type);
	if (!qt || !qt->quantize)
		return sam_errorf(err, SAM_EUNSUPPORTED, "tensor %s: type %s cannot be written yet", s->name,
				  ggml_type_name(s->type));
	size_t row = quant_row_size(s->type, s->ne0);
	float *f = malloc((size_t)s->ne0 * ROWS_PER_BLOCK * sizeof(float));
	uint8_t *q = malloc(row * ROWS_PER_BLOCK);
	if (!f || !q) {
		free(f), free(q);
		return sam_errorf(err, SAM_ENOMEM, "out of memory");
	}
	struct rng r;
	rng_seed(&r, o->seed, index + 1);
	int rc = 0;
	for (int64_t r0 = 0; r0 < s->ne1 && !rc; r0 += ROWS_PER_BLOCK) {
		int64_t nr = s->ne1 - r0 < ROWS_PER_BLOCK ? s->ne1 - r0 : ROWS_PER_BLOCK;
		int64_t n = nr * s->ne0;
		if (!strcmp(s->name, "rope_freqs.weight")) llama3_freqs(o->p, f);
		else if (s->std > 0) rng_normal(&r, f, n, s->std);
		else
			for (int64_t i = 0; i < n; i++) f[i] = s->fill;
		for (int64_t i = 0; i < nr; i++) qt->quantize(f + i * s->ne0, q + (size_t)i * row, s->ne0);
		size_t len = row * (size_t)nr, done = 0;
		while (done < len) {
			ssize_t wr = pwrite(fd, q + done, len - done, (off_t)(off + (uint64_t)r0 * row + done));
			if (wr < 0 && errno == EINTR) continue;
			if (wr <= 0) {
				rc = sam_errorf(err, SAM_EIO, "%s: %s", tmp, strerror(errno));
				break;
			}
			done += (size_t)wr;
		}
	}
	free(f);
	free(q);
	return rc;
}

int synth_write(const struct synth_opts *o, struct sam_error *err)
{
	const char *arch = o->arch ? o->arch : o->p->arch;
	bool qwen2 = !strcmp(arch, "qwen2");
	if (strcmp(arch, "llama") && !qwen2) return sam_errorf(err, SAM_EINVAL, "architecture must be llama or qwen2");
	if (o->p->dim % o->p->n_head || o->p->n_head % o->p->n_head_kv)
		return sam_errorf(err, SAM_EINVAL, "preset %s has inconsistent head counts", o->p->name);
	struct gguf_writer w;
	gguf_writer_init(&w);
	int n_vocab = o->p->n_vocab, rc;
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s.synth.%ld", o->out, (long)getpid());
	if ((rc = set_metadata(&w, o, arch, &n_vocab, err))) goto done;
	struct spec *specs = xcalloc((size_t)n_specs(o->p, qwen2), sizeof *specs);
	int n = build_specs(o, n_vocab, qwen2, specs);
	for (int i = 0; i < n; i++) {
		uint64_t ne[2] = { (uint64_t)specs[i].ne0, (uint64_t)specs[i].ne1 };
		gguf_writer_add_tensor(&w, specs[i].name, (uint32_t)specs[i].n_dims, ne, specs[i].type, NULL,
				       quant_row_size(specs[i].type, specs[i].ne0) * (size_t)specs[i].ne1);
	}
	/* header and zeroed data under a temporary name, then the data in place, then the rename */
	if ((rc = gguf_writer_write(&w, tmp, err))) goto free_specs;
	int fd = open(tmp, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = sam_errorf(err, SAM_EIO, "%s: %s", tmp, strerror(errno));
		goto unlink_tmp;
	}
	uint64_t data = gguf_writer_data_offset(&w);
	for (int i = 0; i < n && !rc; i++)
		rc = write_tensor(fd, data + gguf_writer_tensor_offset(&w, (size_t)i), &specs[i], (size_t)i, o, tmp, err);
	if (!rc && fsync(fd) != 0) rc = sam_errorf(err, SAM_EIO, "%s: fsync: %s", tmp, strerror(errno));
	close(fd);
	if (!rc && rename(tmp, o->out) != 0) rc = sam_errorf(err, SAM_EIO, "rename to %s: %s", o->out, strerror(errno));
unlink_tmp:
	if (rc) unlink(tmp);
free_specs:
	free(specs);
done:
	if (!rc && w.status) rc = sam_errorf(err, w.status, "%s", w.err.msg);
	gguf_writer_free(&w);
	return rc;
}
