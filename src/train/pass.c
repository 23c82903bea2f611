/*
 * pass.c - forward and backward through the model for one sequence (see
 * pass.h). The layer code is written once (layer_forward) and run twice
 * per layer and step: in the forward pass, keeping only its output, and
 * again in the backward pass to rebuild the activations it goes back
 * through (gradient checkpointing).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/matmul.h"
#include "sam/quant.h"
#include "train/pass.h"

#define MAX3(a, b, c) ((a) > (b) ? ((a) > (c) ? (a) : (c)) : ((b) > (c) ? (b) : (c)))

/* The sizes of every buffer, in floats, in the order they are carved. */
struct sizes {
	size_t n[48];
	int k;
};

static void sizes_of(const struct sam_hparams *hp, int rank, int T, struct sizes *s)
{
	size_t dim = (size_t)hp->dim, qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
	size_t ff = (size_t)hp->n_ff, H = (size_t)hp->n_head, C = PASS_LOGIT_CHUNK, t = (size_t)T, r = (size_t)rank;
	size_t tr = (t > C ? t : C) * r;
	size_t list[] = {
		(size_t)(hp->n_layer + 1) * t * dim,                                  /* xs */
		t * dim, t, t * qd, t * kvd, t * kvd, H * t * t, t * qd, t * dim, t * dim, t, /* xn r1 q k v p att x2 xn2 r2 */
		t * ff, t * ff, t * ff, t * dim,                                      /* g u h tmp */
		tr, tr, tr, tr, tr, tr, tr,                                           /* t[7] */
		t * dim, t * dim, t * qd, t * kvd, t * kvd, t * qd, t * ff, t * ff, t * ff, tr, /* dx .. gs */
		H * ATT_SCRATCH(t, hp->head_dim),                                     /* att_scratch */
		t * dim, t, t * (size_t)hp->rope_dim,                                 /* xf rf rope */
		C * dim, C * (size_t)hp->n_vocab, C * dim, C * r,                     /* xg logits dxg tout */
		t * MAX3(dim, qd, ff),                                                /* act (F32 is the widest) */
	};
	s->k = (int)(sizeof list / sizeof list[0]);
	memcpy(s->n, list, sizeof list);
}

size_t pass_bytes(const struct sam_hparams *hp, int rank, int max_T)
{
	struct sizes s;
	sizes_of(hp, rank, max_T, &s);
	size_t floats = 0;
	for (int i = 0; i < s.k; i++) floats += s.n[i];
	return floats * sizeof(float) + 2 * (size_t)max_T * sizeof(int32_t) +
	       (size_t)hp->n_layer * sizeof(struct op_lora[SAM_LORA_N_TARGET]);
}

static void bind_lora(struct op_lora *o, struct sam_lora *lora, float *grad, int l, int t, float user_scale)
{
	float *a, *b;
	memset(o, 0, sizeof *o);
	if (!sam_lora_params(lora, l, t, &a, &b)) return;
	const struct sam_lora_pair *p = l < 0 ? &lora->output : &lora->layer[l][t];
	o->a = a;
	o->b = b;
	o->da = grad + (a - lora->mem);
	o->db = grad + (b - lora->mem);
	o->rank = (int)p->a.rows;
	o->s = sam_lora_pair_scale(lora, p, user_scale);
}

int pass_init(struct pass *ps, const struct sam_model *m, struct sam_lora *lora, float *grad, float user_scale,
	      struct sam_pool *pool, int max_T, struct sam_error *err)
{
	memset(ps, 0, sizeof *ps);
	const struct sam_hparams *hp = &m->hp;
	ps->m = m;
	ps->lora = lora;
	ps->grad = grad;
	ps->pool = pool;
	ps->max_T = max_T;
	int rank = lora->rank > 0 ? lora->rank : 1;
	struct sizes s;
	sizes_of(hp, rank, max_T, &s);
	for (int i = 0; i < s.k; i++) ps->buf_floats += s.n[i];
	ps->buf = malloc(ps->buf_floats * sizeof(float));
	ps->lo = calloc((size_t)hp->n_layer, sizeof *ps->lo);
	ps->rows = malloc((size_t)max_T * sizeof(int32_t));
	ps->targets = malloc((size_t)max_T * sizeof(int32_t));
	if (!ps->buf || !ps->lo || !ps->rows || !ps->targets) {
		pass_free(ps);
		return sam_errorf(err, SAM_ENOMEM, "not enough memory for training buffers (%zu MiB)",
				  pass_bytes(hp, rank, max_T) >> 20);
	}
	float **carve[] = { &ps->xs,   &ps->xn,   &ps->r1,  &ps->q,    &ps->k,    &ps->v,    &ps->p,
			    &ps->att,  &ps->x2,   &ps->xn2, &ps->r2,   &ps->g,    &ps->u,    &ps->h,
			    &ps->tmp,  &ps->t[0], &ps->t[1], &ps->t[2], &ps->t[3], &ps->t[4], &ps->t[5],
			    &ps->t[6], &ps->dx,   &ps->dxn, &ps->dq,   &ps->dk,   &ps->dv,   &ps->datt,
			    &ps->dh,   &ps->dg,   &ps->du,  &ps->gs,   &ps->att_scratch, &ps->xf, &ps->rf,
			    &ps->rope, &ps->xg,   &ps->logits, &ps->dxg, &ps->tout, (float **)&ps->act };
	_Static_assert(sizeof carve / sizeof carve[0] == 41, "one buffer per size");
	float *at = ps->buf;
	for (int i = 0; i < s.k; i++) {
		*carve[i] = at;
		at += s.n[i];
	}
	for (int l = 0; l < hp->n_layer; l++)
		for (int t = 0; t < SAM_LORA_N_TARGET; t++) bind_lora(&ps->lo[l][t], lora, grad, l, t, user_scale);
	bind_lora(ps->no_lora ? NULL : &ps->lo_out, lora, grad, -1, 0, user_scale);
	op_rope_cache(m, ps->rope, max_T);
	return 0;
}

void pass_free(struct pass *ps)
{
	free(ps->buf);
	free(ps->lo);
	free(ps->rows);
	free(ps->targets);
	memset(ps, 0, sizeof *ps);
}

static void add_into(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static const float *bias_of(const struct sam_tensor *t)
{
	return t->data;
}

/* Layer l's LoRA pair of target t, NULL while the adapter is off. */
#define LO(t) (ps->no_lora ? NULL : &ps->lo[l][t])

/* Layer l from its input xs[l] into xs[l+1], every activation left in the layer buffers. */
static void layer_forward(struct pass *ps, int l, int T)
{
	const struct sam_hparams *hp = &ps->m->hp;
	const struct sam_layer *L = &ps->m->layers[l];
	size_t dim = (size_t)hp->dim;
	const float *x = ps->xs + (size_t)l * ps->max_T * dim;
	float *y = ps->xs + (size_t)(l + 1) * ps->max_T * dim;
	op_rmsnorm(ps->xn, ps->r1, x, L->attn_norm.data, T, hp->dim, hp->norm_eps);
	op_linear(ps->pool, ps->act, ps->q, ps->t[SAM_LORA_Q], &L->wq, bias_of(&L->bq), LO(SAM_LORA_Q), ps->xn, T);
	op_linear(ps->pool, ps->act, ps->k, ps->t[SAM_LORA_K], &L->wk, bias_of(&L->bk), LO(SAM_LORA_K), ps->xn, T);
	op_linear(ps->pool, ps->act, ps->v, ps->t[SAM_LORA_V], &L->wv, bias_of(&L->bv), LO(SAM_LORA_V), ps->xn, T);
	op_rope(hp, ps->q, T, hp->n_head, ps->rope, 0);
	op_rope(hp, ps->k, T, hp->n_head_kv, ps->rope, 0);
	op_attention(ps->pool, hp, ps->att, ps->p, ps->q, ps->k, ps->v, T);
	op_linear(ps->pool, ps->act, ps->tmp, ps->t[SAM_LORA_O], &L->wo, NULL, LO(SAM_LORA_O), ps->att, T);
	memcpy(ps->x2, x, (size_t)T * dim * sizeof(float));
	add_into(ps->x2, ps->tmp, (size_t)T * dim);
	op_rmsnorm(ps->xn2, ps->r2, ps->x2, L->ffn_norm.data, T, hp->dim, hp->norm_eps);
	op_linear(ps->pool, ps->act, ps->g, ps->t[SAM_LORA_GATE], &L->w_gate, NULL, LO(SAM_LORA_GATE), ps->xn2, T);
	op_linear(ps->pool, ps->act, ps->u, ps->t[SAM_LORA_UP], &L->w_up, NULL, LO(SAM_LORA_UP), ps->xn2, T);
	op_swiglu(ps->h, ps->g, ps->u, (size_t)T * hp->n_ff);
	op_linear(ps->pool, ps->act, ps->tmp, ps->t[SAM_LORA_DOWN], &L->w_down, NULL, LO(SAM_LORA_DOWN), ps->h, T);
	memcpy(y, ps->x2, (size_t)T * dim * sizeof(float));
	add_into(y, ps->tmp, (size_t)T * dim);
}

static void zero(float *x, size_t n)
{
	memset(x, 0, n * sizeof *x);
}

/*
 * ps->dx holds d loss / d xs[l+1]; recompute layer l and replace it with
 * d loss / d xs[l]. need_dx false (layer 0): only the LoRA gradients.
 */
static void layer_backward(struct pass *ps, int l, int T, bool need_dx)
{
	const struct sam_hparams *hp = &ps->m->hp;
	const struct sam_layer *L = &ps->m->layers[l];
	size_t dim = (size_t)hp->dim, ff = (size_t)T * hp->n_ff;
	size_t qd = (size_t)T * hp->n_head * hp->head_dim, kvd = (size_t)T * hp->n_head_kv * hp->head_dim;
	const float *x = ps->xs + (size_t)l * ps->max_T * dim;
	layer_forward(ps, l, T);

	/* MLP: x_out = x2 + down(silu(gate(xn2)) * up(xn2)) */
	zero(ps->dh, ff);
	op_linear_back(ps->pool, ps->dh, ps->dx, &L->w_down, LO(SAM_LORA_DOWN), ps->h, ps->t[SAM_LORA_DOWN], T, ps->gs);
	zero(ps->dg, ff);
	zero(ps->du, ff);
	op_swiglu_back(ps->dg, ps->du, ps->dh, ps->g, ps->u, ff);
	zero(ps->dxn, (size_t)T * dim);
	op_linear_back(ps->pool, ps->dxn, ps->dg, &L->w_gate, LO(SAM_LORA_GATE), ps->xn2, ps->t[SAM_LORA_GATE], T, ps->gs);
	op_linear_back(ps->pool, ps->dxn, ps->du, &L->w_up, LO(SAM_LORA_UP), ps->xn2, ps->t[SAM_LORA_UP], T, ps->gs);
	op_rmsnorm_back(ps->dx, ps->dxn, ps->x2, ps->r2, L->ffn_norm.data, T, hp->dim); /* dx: now d/d x2 */

	/* attention: x2 = x + o(attention(rope(q(xn)), rope(k(xn)), v(xn))) */
	zero(ps->datt, qd);
	op_linear_back(ps->pool, ps->datt, ps->dx, &L->wo, LO(SAM_LORA_O), ps->att, ps->t[SAM_LORA_O], T, ps->gs);
	zero(ps->dq, qd);
	zero(ps->dk, kvd);
	zero(ps->dv, kvd);
	op_attention_back(ps->pool, hp, ps->dq, ps->dk, ps->dv, ps->datt, ps->p, ps->q, ps->k, ps->v, T,
			  ps->att_scratch);
	op_rope(hp, ps->dq, T, hp->n_head, ps->rope, 1);
	op_rope(hp, ps->dk, T, hp->n_head_kv, ps->rope, 1);
	float *dxn = need_dx ? ps->dxn : NULL;
	if (dxn) zero(dxn, (size_t)T * dim);
	op_linear_back(ps->pool, dxn, ps->dq, &L->wq, LO(SAM_LORA_Q), ps->xn, ps->t[SAM_LORA_Q], T, ps->gs);
	op_linear_back(ps->pool, dxn, ps->dk, &L->wk, LO(SAM_LORA_K), ps->xn, ps->t[SAM_LORA_K], T, ps->gs);
	op_linear_back(ps->pool, dxn, ps->dv, &L->wv, LO(SAM_LORA_V), ps->xn, ps->t[SAM_LORA_V], T, ps->gs);
	if (dxn) op_rmsnorm_back(ps->dx, dxn, x, ps->r1, L->attn_norm.data, T, hp->dim);
}

/*
 * The loss of the counted positions through the output matrix, a chunk
 * of positions at a time; with backward, ps->dx receives d loss / d xf
 * of those rows (others stay zero).
 */
static double head(struct pass *ps, int n_rows, bool backward, float loss_scale)
{
	const struct sam_model *m = ps->m;
	size_t dim = (size_t)m->hp.dim;
	double loss = 0.0;
	for (int c0 = 0; c0 < n_rows; c0 += PASS_LOGIT_CHUNK) {
		int C = n_rows - c0 < PASS_LOGIT_CHUNK ? n_rows - c0 : PASS_LOGIT_CHUNK;
		for (int i = 0; i < C; i++)
			memcpy(ps->xg + (size_t)i * dim, ps->xf + (size_t)ps->rows[c0 + i] * dim, dim * sizeof(float));
		op_linear(ps->pool, ps->act, ps->logits, ps->tout, &m->output, NULL, ps->no_lora ? NULL : &ps->lo_out, ps->xg, C);
		loss += op_cross_entropy(backward ? ps->logits : NULL, ps->logits, ps->targets + c0, C, m->hp.n_vocab,
					 loss_scale);
		if (!backward) continue;
		zero(ps->dxg, (size_t)C * dim);
		op_linear_back(ps->pool, ps->dxg, ps->logits, &m->output, ps->no_lora ? NULL : &ps->lo_out, ps->xg, ps->tout, C, ps->gs);
		for (int i = 0; i < C; i++)
			memcpy(ps->dx + (size_t)ps->rows[c0 + i] * dim, ps->dxg + (size_t)i * dim, dim * sizeof(float));
	}
	return loss;
}

double pass_run(struct pass *ps, const int32_t *tok, const uint8_t *loss, int n, bool backward, float loss_scale,
		int *n_loss)
{
	const struct sam_model *m = ps->m;
	const struct sam_hparams *hp = &m->hp;
	int T = n - 1;
	size_t dim = (size_t)hp->dim;
	*n_loss = 0;
	if (T < 1 || T > ps->max_T) return 0.0;
	int n_rows = 0;
	for (int i = 0; i < T; i++)
		if (!loss || loss[i + 1]) {
			ps->rows[n_rows] = i;
			ps->targets[n_rows++] = tok[i + 1];
		}
	*n_loss = n_rows;
	if (!n_rows) return 0.0;
	const struct quant_traits *et = quant_traits(m->tok_embd.type);
	for (int i = 0; i < T; i++)
		et->to_float((const uint8_t *)m->tok_embd.data + (size_t)tok[i] * m->tok_embd.row_bytes, ps->xs + (size_t)i * dim,
			     hp->dim);
	for (int l = 0; l < hp->n_layer; l++) layer_forward(ps, l, T);
	const float *top = ps->xs + (size_t)hp->n_layer * ps->max_T * dim;
	op_rmsnorm(ps->xf, ps->rf, top, m->output_norm.data, T, hp->dim, hp->norm_eps);
	if (backward) zero(ps->dx, (size_t)T * dim);
	double sum = head(ps, n_rows, backward, loss_scale);
	if (!backward) return sum;
	/* d loss / d top, through the final norm: rows without loss have zero gradient there */
	memcpy(ps->dxn, ps->dx, (size_t)T * dim * sizeof(float));
	zero(ps->dx, (size_t)T * dim);
	op_rmsnorm_back(ps->dx, ps->dxn, top, ps->rf, m->output_norm.data, T, hp->dim);
	for (int l = hp->n_layer - 1; l >= 0; l--) layer_backward(ps, l, T, l > 0);
	return sum;
}
