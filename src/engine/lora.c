/*
 * lora.c - LoRA adapters in llama.cpp's GGUF format (sam/lora.h): load and
 * check one against a model, make and save new ones, and apply them per
 * sequence in the forward pass (engine/lora_apply.h).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/ggml_types.h"
#include "sam/gguf_write.h"
#include "sam/lora.h"
#include "sam/quant.h"
#include "engine/lora_apply.h"
#include "engine/matmul.h"

/* Far above any useful rank; keeps every size computed from it small. */
#define LORA_MAX_RANK (1 << 16)
#define ADAPTABLE "blk.N.attn_q/attn_k/attn_v/attn_output/ffn_gate/ffn_up/ffn_down and output"

static const char *const target_names[SAM_LORA_N_TARGET] = { "q", "k", "v", "o", "gate", "up", "down" };
static const char *const gguf_names[SAM_LORA_N_TARGET] = { "attn_q",   "attn_k", "attn_v",  "attn_output",
							   "ffn_gate", "ffn_up", "ffn_down" };

const char *sam_lora_target_name(int t)
{
	return t >= 0 && t < SAM_LORA_N_TARGET ? target_names[t] : "?";
}

void sam_lora_tensor_base(char *buf, int l, int t)
{
	if (l < 0) snprintf(buf, 48, "output");
	else snprintf(buf, 48, "blk.%d.%s", l, t >= 0 && t < SAM_LORA_N_TARGET ? gguf_names[t] : "?");
}

/* The mask of one word of a target list; 0 when unknown. */
static unsigned word_mask(const char *w, size_t n)
{
	static const struct {
		const char *word;
		unsigned mask;
	} groups[] = {
		{ "attn", 1u << SAM_LORA_Q | 1u << SAM_LORA_K | 1u << SAM_LORA_V | 1u << SAM_LORA_O },
		{ "mlp", 1u << SAM_LORA_GATE | 1u << SAM_LORA_UP | 1u << SAM_LORA_DOWN },
		{ "all", SAM_LORA_ALL },
		{ "output", SAM_LORA_OUTPUT },
	};
	for (int t = 0; t < SAM_LORA_N_TARGET; t++)
		if (strlen(target_names[t]) == n && !memcmp(w, target_names[t], n)) return 1u << t;
	for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
		if (strlen(groups[i].word) == n && !memcmp(w, groups[i].word, n)) return groups[i].mask;
	return 0;
}

int sam_lora_parse_targets(const char *list, unsigned *mask, struct sam_error *err)
{
	unsigned m = 0;
	for (const char *p = list;; p++) {
		size_t n = strcspn(p, ",");
		unsigned w = word_mask(p, n);
		if (!w)
			return sam_errorf(err, SAM_EINVAL,
					  "unknown LoRA target '%.*s' (known: q, k, v, o, gate, up, down, attn, mlp, all, output)",
					  (int)(n > 64 ? 64 : n), p);
		m |= w;
		p += n;
		if (!*p) break;
	}
	*mask = m;
	return 0;
}

/* ---- pairs and the base weights they adapt ----------------------------- */

/*
 * An adapter's pairs in file order ("slots"): layer by layer q, k, v, o,
 * gate, up, down, then the output matrix (l = -1).
 */
static int n_slots(int n_layer)
{
	return n_layer * SAM_LORA_N_TARGET + 1;
}

static void slot_lt(int n_layer, int i, int *l, int *t)
{
	*l = i < n_layer * SAM_LORA_N_TARGET ? i / SAM_LORA_N_TARGET : -1;
	*t = i % SAM_LORA_N_TARGET;
}

static struct sam_lora_pair *pair_at(const struct sam_lora *lo, int l, int t)
{
	return l < 0 ? (struct sam_lora_pair *)&lo->output : &lo->layer[l][t];
}

static const struct sam_tensor *base_weight(const struct sam_model *m, int l, int t)
{
	if (l < 0) return &m->output;
	const struct sam_layer *L = &m->layers[l];
	const struct sam_tensor *w[SAM_LORA_N_TARGET] = { &L->wq,     &L->wk,   &L->wv,    &L->wo,
							  &L->w_gate, &L->w_up, &L->w_down };
	return w[t];
}

static int alloc_layers(struct sam_lora *lo, int n_layer, struct sam_error *err)
{
	lo->n_layer = n_layer;
	lo->layer = calloc((size_t)n_layer, sizeof *lo->layer);
	return lo->layer ? 0 : sam_errorf(err, SAM_ENOMEM, "no memory for the pairs of %d layers", n_layer);
}

/* lo's pairs have m's shapes: what applying or saving it for m needs. */
static int check_fits(const struct sam_lora *lo, const struct sam_model *m, struct sam_error *err)
{
	if (lo->n_layer != m->hp.n_layer)
		return sam_errorf(err, SAM_EINVAL, "the LoRA adapter has %d layers, the model %d", lo->n_layer,
				  m->hp.n_layer);
	for (int i = 0; i < n_slots(lo->n_layer); i++) {
		int l, t;
		slot_lt(lo->n_layer, i, &l, &t);
		const struct sam_lora_pair *p = pair_at(lo, l, t);
		if (!p->a.data) continue;
		const struct sam_tensor *w = base_weight(m, l, t);
		char base[48];
		sam_lora_tensor_base(base, l, t);
		if ((l < 0 && m->tied_output) || p->a.cols != w->cols || p->b.rows != w->rows || p->a.rows != p->b.cols)
			return sam_errorf(err, SAM_EINVAL,
					  "the LoRA adapter of '%s.weight' (A [%lld][%lld], B [%lld][%lld]) does not fit the "
					  "model's [%lld][%lld]%s",
					  base, (long long)p->a.rows, (long long)p->a.cols, (long long)p->b.rows,
					  (long long)p->b.cols, (long long)w->rows, (long long)w->cols,
					  l < 0 && m->tied_output ? ", which is tied to token_embd" : "");
	}
	return 0;
}

float sam_lora_pair_scale(const struct sam_lora *l, const struct sam_lora_pair *p, float scale)
{
	/* llama.cpp's llama_adapter_lora_weight::get_scale, in the same float operations */
	return l->alpha != 0.0f ? scale * l->alpha / (float)p->a.rows : scale;
}

void sam_lora_free(struct sam_lora *l)
{
	gguf_close(&l->gguf);
	free(l->mem);
	free(l->layer);
	memset(l, 0, sizeof *l);
}

/* ---- loading ----------------------------------------------------------- */

/* A string key that must equal want; hint follows the expectation in the message. */
static int expect_str(const struct gguf_file *f, const char *key, const char *want, const char *hint,
		      struct sam_error *err)
{
	struct gguf_str v;
	int rc = gguf_get_str(f, key, &v, err);
	if (rc == SAM_ENOTFOUND) return sam_errorf(err, SAM_EFORMAT, "key '%s' is missing, expected '%s'%s", key, want, hint);
	if (rc) return rc;
	if (!gguf_str_eq(v, want))
		return sam_errorf(err, SAM_EFORMAT, "key '%s' is '%.*s', expected '%s'%s", key,
				  (int)(v.n > 64 ? 64 : v.n), v.s, want, hint);
	return 0;
}

static int read_meta(struct sam_lora *lo, const struct sam_model *m, struct sam_error *err)
{
	int rc;
	if ((rc = expect_str(&lo->gguf, "general.architecture", m->hp.arch_name,
			     " (the model's architecture: the adapter was made for another model)", err)) ||
	    (rc = expect_str(&lo->gguf, "general.type", "adapter", " (is this a LoRA adapter file?)", err)) ||
	    (rc = expect_str(&lo->gguf, "adapter.type", "lora", " (only LoRA adapters are supported)", err)))
		return rc;
	const struct gguf_kv *kv = gguf_find(&lo->gguf, "adapter.lora.alpha");
	if (!kv) return 0; /* no alpha: the user's scale is used as is */
	/* llama.cpp reads it with gguf_get_val_f32, which accepts nothing else */
	if (kv->v.type != GGUF_T_F32)
		return sam_errorf(err, SAM_EFORMAT, "key 'adapter.lora.alpha' has type %s, expected f32",
				  gguf_vtype_name(kv->v.type));
	if (!isfinite(kv->v.f)) return sam_errorf(err, SAM_EFORMAT, "key 'adapter.lora.alpha' is not a finite number");
	lo->alpha = (float)kv->v.f;
	return 0;
}

/*
 * The pair slot (*pl, *pt) tensor `name` belongs to and whether it is B;
 * an error naming it for anything but "<adaptable weight>.lora_a|b".
 */
static int parse_name(const struct sam_lora *lo, const struct sam_model *m, const char *name, int *pl, int *pt,
		      bool *is_b, struct sam_error *err)
{
	static const char suffix[] = ".weight.lora_a"; /* and .weight.lora_b: same length */
	size_t n = strlen(name), sl = sizeof suffix - 1;
	if (n <= sl || strncmp(name + n - sl, suffix, sl - 1) || (name[n - 1] != 'a' && name[n - 1] != 'b'))
		return sam_errorf(err, SAM_EUNSUPPORTED,
				  "tensor '%s' is not a LoRA tensor (expected '<weight>.lora_a' and '.lora_b' of " ADAPTABLE ")",
				  name);
	*is_b = name[n - 1] == 'b';
	char base[128], want[48];
	snprintf(base, sizeof base, "%.*s", (int)(n - sl), name);
	if (!strcmp(base, "output")) {
		*pl = -1;
		*pt = 0;
		if (m->tied_output)
			return sam_errorf(err, SAM_EUNSUPPORTED,
					  "tensor '%s' adapts output.weight, but this model has none: its output is tied to "
					  "token_embd.weight, which cannot be adapted",
					  name);
		return 0;
	}
	/* "blk.<l>.<target>" spelled exactly as sam_lora_tensor_base does (no "blk.03", "blk.+3") */
	long l = -1;
	int t = SAM_LORA_N_TARGET;
	char *end = base;
	if (!strncmp(base, "blk.", 4)) l = strtol(base + 4, &end, 10);
	if (l >= 0 && l <= INT_MAX && *end == '.')
		for (t = 0; t < SAM_LORA_N_TARGET && strcmp(end + 1, gguf_names[t]); t++) {}
	if (t < SAM_LORA_N_TARGET) sam_lora_tensor_base(want, (int)l, t);
	if (t == SAM_LORA_N_TARGET || strcmp(want, base))
		return sam_errorf(err, SAM_EUNSUPPORTED,
				  "tensor '%s' adapts '%s.weight', which cannot be adapted (adaptable: " ADAPTABLE ")", name,
				  base);
	if (l >= lo->n_layer)
		return sam_errorf(err, SAM_EFORMAT, "tensor '%s' adapts layer %ld, but the model has %d layers", name, l,
				  lo->n_layer);
	*pl = (int)l;
	*pt = t;
	return 0;
}

/* Bind file tensor g into its pair, checking its type and its shape against the base weight. */
static int bind_tensor(struct sam_lora *lo, const struct sam_model *m, const struct gguf_tensor *g,
		       struct sam_error *err)
{
	char name[128];
	snprintf(name, sizeof name, "%.*s", (int)(g->name.n > 127 ? 127 : g->name.n), g->name.s);
	if (strlen(name) != g->name.n)
		return sam_errorf(err, SAM_EUNSUPPORTED, "tensor '%s...' is not a LoRA tensor (name too long or with NUL)",
				  name);
	int l = -1, t = 0, rc;
	bool is_b = false;
	if ((rc = parse_name(lo, m, name, &l, &t, &is_b, err))) return rc;
	if (!quant_traits(g->type))
		return sam_errorf(err, SAM_EUNSUPPORTED, "tensor '%s' has type %s, which this engine cannot compute with",
				  name, ggml_type_name(g->type));
	/* gguf_open checked that ne[0] is a whole number of blocks of the type */
	const struct sam_tensor *w = base_weight(m, l, t);
	int64_t ne0 = (int64_t)g->ne[0], ne1 = (int64_t)g->ne[1];
	int64_t rank = is_b ? ne0 : ne1, dim = is_b ? ne1 : ne0, want = is_b ? w->rows : w->cols;
	if (dim != want || g->ne[2] != 1 || g->ne[3] != 1) {
		char expect[64];
		if (is_b) snprintf(expect, sizeof expect, "[rank, %lld]", (long long)want);
		else snprintf(expect, sizeof expect, "[%lld, rank]", (long long)want);
		return sam_errorf(err, SAM_EFORMAT,
				  "tensor '%s' has shape [%lld, %lld, %llu, %llu], expected %s for the base weight of shape "
				  "[%lld, %lld]",
				  name, (long long)ne0, (long long)ne1, (unsigned long long)g->ne[2],
				  (unsigned long long)g->ne[3], expect, (long long)w->cols, (long long)w->rows);
	}
	if (rank < 1 || rank > LORA_MAX_RANK)
		return sam_errorf(err, SAM_EFORMAT, "tensor '%s' has rank %lld (1..%d allowed)", name, (long long)rank,
				  LORA_MAX_RANK);
	struct sam_lora_pair *p = pair_at(lo, l, t);
	*(is_b ? &p->b : &p->a) = (struct sam_tensor){ .data = g->data, .type = g->type, .cols = ne0, .rows = ne1,
						       .row_bytes = quant_row_size(g->type, ne0) };
	return 0;
}

/* Every pair complete, A's rank equal to B's; sets rank and targets. */
static int check_pairs(struct sam_lora *lo, struct sam_error *err)
{
	for (int i = 0; i < n_slots(lo->n_layer); i++) {
		int l, t;
		slot_lt(lo->n_layer, i, &l, &t);
		const struct sam_lora_pair *p = pair_at(lo, l, t);
		char base[48];
		sam_lora_tensor_base(base, l, t);
		if (!p->a.data != !p->b.data)
			return sam_errorf(err, SAM_EFORMAT, "tensor '%s.weight.lora_%c' is missing (its lora_%c is there)",
					  base, p->a.data ? 'b' : 'a', p->a.data ? 'a' : 'b');
		if (!p->a.data) continue;
		if (p->a.rows != p->b.cols)
			return sam_errorf(err, SAM_EFORMAT,
					  "tensors '%s.weight.lora_a' and '%s.weight.lora_b' have different ranks (%lld and %lld)",
					  base, base, (long long)p->a.rows, (long long)p->b.cols);
		if (p->a.rows > lo->rank) lo->rank = (int)p->a.rows;
		lo->targets |= l < 0 ? SAM_LORA_OUTPUT : 1u << t;
	}
	return 0;
}

int sam_lora_load(struct sam_lora *l, const struct sam_model *m, const char *path, struct sam_error *err)
{
	memset(l, 0, sizeof *l);
	int rc = gguf_open(&l->gguf, path, err); /* its messages name the path */
	if (rc) return rc;
	l->mapped = true;
	if ((rc = read_meta(l, m, err)) || (rc = alloc_layers(l, m->hp.n_layer, err))) goto fail;
	for (uint64_t i = 0; i < l->gguf.n_tensors; i++)
		if ((rc = bind_tensor(l, m, &l->gguf.tensors[i], err))) goto fail;
	if ((rc = check_pairs(l, err))) goto fail;
	return 0;
fail:
	sam_error_prefix(err, path);
	sam_lora_free(l);
	return rc;
}

/* ---- making and saving ------------------------------------------------- */

static bool slot_in(unsigned mask, int l, int t)
{
	return l < 0 ? (mask & SAM_LORA_OUTPUT) != 0 : (mask & (1u << t)) != 0;
}

/* splitmix64: a tiny generator whose stream is the same on every machine. */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* n floats uniform in [-bound, bound): 24 random bits each, exact float arithmetic up to the last product. */
static void fill_uniform(float *x, size_t n, float bound, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		float u = (float)(splitmix64(s) >> 40) * 0x1p-24f;
		x[i] = (2.0f * u - 1.0f) * bound;
	}
}

static struct sam_tensor f32_matrix(float *data, int64_t rows, int64_t cols)
{
	return (struct sam_tensor){ .data = data, .type = GGML_TYPE_F32, .cols = cols, .rows = rows,
				    .row_bytes = (size_t)cols * sizeof(float) };
}

int sam_lora_init(struct sam_lora *l, const struct sam_model *m, unsigned mask, int rank, float alpha,
		  uint64_t seed, struct sam_error *err)
{
	memset(l, 0, sizeof *l);
	if (!mask || (mask & ~(SAM_LORA_ALL | SAM_LORA_OUTPUT)))
		return sam_errorf(err, SAM_EINVAL, "LoRA target mask %#x: no targets or unknown ones", mask);
	if ((mask & SAM_LORA_OUTPUT) && m->tied_output)
		return sam_errorf(err, SAM_EINVAL, "the model's output is tied to token_embd and cannot be adapted");
	if (rank < 1 || rank > LORA_MAX_RANK)
		return sam_errorf(err, SAM_EINVAL, "LoRA rank %d is out of range [1, %d]", rank, LORA_MAX_RANK);
	if (!isfinite(alpha)) return sam_errorf(err, SAM_EINVAL, "LoRA alpha must be a finite number");
	int rc = alloc_layers(l, m->hp.n_layer, err);
	if (rc) return rc;
	l->alpha = alpha;
	l->rank = rank;
	l->targets = mask;
	int n = n_slots(l->n_layer);
	for (int i = 0; i < n; i++) {
		int li, t;
		slot_lt(l->n_layer, i, &li, &t);
		const struct sam_tensor *w = base_weight(m, li, t);
		if (slot_in(mask, li, t)) l->mem_floats += (size_t)rank * (size_t)(w->cols + w->rows);
	}
	l->mem = calloc(l->mem_floats, sizeof(float)); /* B = 0 */
	if (!l->mem) {
		size_t floats = l->mem_floats;
		sam_lora_free(l);
		return sam_errorf(err, SAM_ENOMEM, "no memory for a LoRA adapter of %zu floats", floats);
	}
	float *p = l->mem;
	uint64_t s = seed;
	for (int i = 0; i < n; i++) {
		int li, t;
		slot_lt(l->n_layer, i, &li, &t);
		if (!slot_in(mask, li, t)) continue;
		const struct sam_tensor *w = base_weight(m, li, t);
		struct sam_lora_pair *pr = pair_at(l, li, t);
		pr->a = f32_matrix(p, rank, w->cols);
		fill_uniform(p, (size_t)rank * (size_t)w->cols, 1.0f / sqrtf((float)w->cols), &s);
		p += (size_t)rank * (size_t)w->cols;
		pr->b = f32_matrix(p, w->rows, rank);
		p += (size_t)rank * (size_t)w->rows;
	}
	return 0;
}

bool sam_lora_params(struct sam_lora *lo, int l, int t, float **a, float **b)
{
	if (lo->mapped || !lo->mem || l < -1 || l >= lo->n_layer || t < 0 || t >= SAM_LORA_N_TARGET) return false;
	const struct sam_lora_pair *p = pair_at(lo, l, t);
	if (!p->a.data) return false;
	/* the arrays are lo->mem's, which lo owns and may change */
	*a = lo->mem + ((const float *)p->a.data - lo->mem);
	*b = lo->mem + ((const float *)p->b.data - lo->mem);
	return true;
}

/* Add one of a pair's matrices as "<base>.weight.lora_a|b" of GGUF shape [cols, rows]. */
static void add_matrix(struct gguf_writer *w, const char *base, char ab, const struct sam_tensor *t)
{
	char name[64];
	snprintf(name, sizeof name, "%s.weight.lora_%c", base, ab);
	uint64_t ne[2] = { (uint64_t)t->cols, (uint64_t)t->rows };
	gguf_writer_add_tensor(w, name, 2, ne, t->type, t->data, (size_t)t->rows * t->row_bytes);
}

int sam_lora_save(const struct sam_lora *lo, const struct sam_model *m, const char *path, const char *name,
		  struct sam_error *err)
{
	int rc = check_fits(lo, m, err);
	if (rc) return rc;
	struct gguf_writer w;
	gguf_writer_init(&w);
	/* errors are sticky: gguf_writer_write reports the first */
	gguf_writer_set_str(&w, "general.architecture", m->hp.arch_name);
	gguf_writer_set_str(&w, "general.type", "adapter");
	gguf_writer_set_str(&w, "adapter.type", "lora");
	gguf_writer_set_f32(&w, "adapter.lora.alpha", lo->alpha);
	if (name) gguf_writer_set_str(&w, "general.name", name);
	for (int i = 0; i < n_slots(lo->n_layer); i++) {
		int l, t;
		slot_lt(lo->n_layer, i, &l, &t);
		const struct sam_lora_pair *p = pair_at(lo, l, t);
		if (!p->a.data) continue;
		char base[48];
		sam_lora_tensor_base(base, l, t);
		add_matrix(&w, base, 'a', &p->a);
		add_matrix(&w, base, 'b', &p->b);
	}
	rc = gguf_writer_write(&w, path, err); /* temporary name, fsync, rename, fsync of the directory */
	gguf_writer_free(&w);
	return rc;
}

/* ---- applying ---------------------------------------------------------- */

/* Rows sharing an (adapter, scale): rows[first .. first+n) of their lora_rows. */
struct lora_group {
	const struct sam_lora *lo;
	float scale;
	int first, n;
};

/* The rows of one kind (batch or logits) grouped by adapter; rows without one are left out. */
struct lora_rows {
	int n_group;
	struct lora_group *group; /* [n_seq] */
	int32_t *rows;            /* [n_batch] row indices, group after group, each group in increasing order */
	bool whole;               /* one group holds every row: x needs no gathering */
};

struct sam_lora_run {
	struct lora_rows batch, logits;
	int32_t *gid;    /* [n_batch] group of each row while planning, -1 for none */
	float *x;        /* [n_batch][max_w] a group's rows of x, gathered */
	float *t;        /* [n_batch][rank] x A^T */
	float *u;        /* [u_floats] t B^T, as many rows at a time as fit */
	size_t u_floats;
	int rank;        /* the largest rank t has room for */
};

void lora_run_free(struct sam_lora_run *run)
{
	if (!run) return;
	free(run->batch.group);
	free(run->batch.rows);
	free(run->logits.group);
	free(run->logits.rows);
	free(run->gid);
	free(run->x);
	free(run->t);
	free(run->u);
	free(run);
}

/* The widest input or output of an adaptable layer weight. */
static size_t max_width(const struct sam_hparams *hp)
{
	size_t w = (size_t)hp->dim, q = (size_t)hp->n_head * (size_t)hp->head_dim;
	if (q > w) w = q;
	if ((size_t)hp->n_ff > w) w = (size_t)hp->n_ff;
	return w;
}

/* The rank-independent part of a context's run state. */
static struct sam_lora_run *run_new(const struct sam_ctx *c)
{
	struct sam_lora_run *run = calloc(1, sizeof *run);
	if (!run) return NULL;
	size_t B = (size_t)c->p.n_batch, S = (size_t)c->p.n_seq, w = max_width(&c->model->hp);
	run->u_floats = B * w > (size_t)c->model->hp.n_vocab ? B * w : (size_t)c->model->hp.n_vocab;
	run->batch.group = malloc(S * sizeof *run->batch.group);
	run->logits.group = malloc(S * sizeof *run->logits.group);
	run->batch.rows = malloc(B * sizeof(int32_t));
	run->logits.rows = malloc(B * sizeof(int32_t));
	run->gid = malloc(B * sizeof(int32_t));
	run->x = malloc(B * w * sizeof(float));
	run->u = malloc(run->u_floats * sizeof(float));
	if (!run->batch.group || !run->logits.group || !run->batch.rows || !run->logits.rows || !run->gid ||
	    !run->x || !run->u) {
		lora_run_free(run);
		return NULL;
	}
	return run;
}

/* Room to apply adapters of up to this rank: t's rows, and the act scratch for t's conversion. */
static int run_reserve(struct sam_ctx *c, int rank, struct sam_error *err)
{
	if (!c->lora_run && !(c->lora_run = run_new(c)))
		return sam_errorf(err, SAM_ENOMEM, "no memory for the LoRA scratch of a batch of %d", c->p.n_batch);
	struct sam_lora_run *run = c->lora_run;
	size_t B = (size_t)c->p.n_batch;
	if (rank > run->rank) {
		float *t = malloc(B * (size_t)rank * sizeof(float));
		if (!t) return sam_errorf(err, SAM_ENOMEM, "no memory for the LoRA scratch of rank %d", rank);
		free(run->t);
		run->t = t;
		run->rank = rank;
	}
	size_t act = B * (size_t)rank * sizeof(float); /* t converted for a quantized B (matmul.h) */
	if (act > c->act_bytes) {
		void *a = malloc(act);
		if (!a) return sam_errorf(err, SAM_ENOMEM, "no memory for the LoRA scratch of rank %d", rank);
		free(c->act);
		c->act = a;
		c->act_bytes = act;
	}
	return 0;
}

int sam_ctx_set_lora(struct sam_ctx *c, int seq, const struct sam_lora *lo, float scale, struct sam_error *err)
{
	if (seq < 0 || seq >= c->p.n_seq)
		return sam_errorf(err, SAM_EINVAL, "sequence %d is out of range [0, %d)", seq, c->p.n_seq);
	if (!isfinite(scale)) return sam_errorf(err, SAM_EINVAL, "the LoRA scale must be a finite number");
	int rc;
	if (lo && ((rc = check_fits(lo, c->model, err)) || (rc = run_reserve(c, lo->rank, err)))) return rc;
	c->lora[seq] = lo;
	c->lora_scale[seq] = scale;
	return 0;
}

/* Group n rows into r; row i belongs to sequence c->bseq[map ? map[i] : i]. */
static void group_rows(const struct sam_ctx *c, struct lora_rows *r, int32_t *gid, const int32_t *map, int n)
{
	r->n_group = 0;
	for (int i = 0; i < n; i++) {
		int seq = c->bseq[map ? map[i] : i];
		const struct sam_lora *lo = c->lora[seq];
		float s = c->lora_scale[seq];
		gid[i] = -1;
		if (!lo) continue;
		int g = 0;
		while (g < r->n_group && (r->group[g].lo != lo || r->group[g].scale != s)) g++;
		if (g == r->n_group) r->group[r->n_group++] = (struct lora_group){ .lo = lo, .scale = s };
		r->group[g].n++;
		gid[i] = g;
	}
	for (int g = 0, first = 0; g < r->n_group; g++) {
		r->group[g].first = first;
		first += r->group[g].n;
		r->group[g].n = 0;
	}
	for (int i = 0; i < n; i++) {
		if (gid[i] < 0) continue;
		struct lora_group *G = &r->group[gid[i]];
		r->rows[G->first + G->n++] = i;
	}
	r->whole = r->n_group == 1 && r->group[0].n == n;
}

bool lora_plan(struct sam_ctx *c, int n, int n_logits)
{
	struct sam_lora_run *run = c->lora_run;
	if (!run) return false;
	group_rows(c, &run->batch, run->gid, NULL, n);
	if (!run->batch.n_group) return false;
	group_rows(c, &run->logits, run->gid, c->logit_rows, n_logits);
	return true;
}

/* out[rows[i]] += s * B (A x[rows[i]]) for the nr rows of one group (x rows in place when whole). */
static void apply_pair(struct sam_ctx *c, const struct sam_lora_pair *p, float s, const int32_t *rows, int nr,
		       bool whole, float *out, const float *x)
{
	struct sam_lora_run *run = c->lora_run;
	size_t n_in = (size_t)p->a.cols, n_out = (size_t)p->b.rows, rank = (size_t)p->a.rows;
	if (!whole) {
		for (int i = 0; i < nr; i++) memcpy(run->x + i * n_in, x + (size_t)rows[i] * n_in, n_in * sizeof(float));
		x = run->x;
	}
	mm_product(c->pool, c->act, run->t, &p->a, x, nr);
	int chunk = run->u_floats / n_out < (size_t)nr ? (int)(run->u_floats / n_out) : nr;
	for (int r0 = 0; r0 < nr; r0 += chunk) {
		int cr = nr - r0 < chunk ? nr - r0 : chunk;
		mm_product(c->pool, c->act, run->u, &p->b, run->t + (size_t)r0 * rank, cr);
		for (int i = 0; i < cr; i++) {
			float *o = out + (size_t)rows[r0 + i] * n_out;
			const float *u = run->u + (size_t)i * n_out;
			for (size_t k = 0; k < n_out; k++) o[k] += s * u[k];
		}
	}
}

void lora_apply(struct sam_ctx *c, enum lora_rows_of which, int l, int t, float *out, const float *x)
{
	const struct lora_rows *r = which == LORA_LOGITS ? &c->lora_run->logits : &c->lora_run->batch;
	for (int g = 0; g < r->n_group; g++) {
		const struct lora_group *G = &r->group[g];
		const struct sam_lora_pair *p = pair_at(G->lo, l, t);
		float s = p->a.data ? sam_lora_pair_scale(G->lo, p, G->scale) : 0.0f;
		if (s != 0.0f) apply_pair(c, p, s, r->rows + G->first, G->n, r->whole, out, x);
	}
}
