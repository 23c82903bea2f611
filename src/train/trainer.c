/*
 * trainer.c - the training loop (see lora_train.h).
 *
 * Determinism: the data order of epoch e is a permutation drawn from
 * (seed, e); step s takes the sequences s*batch .. s*batch+batch-1 of
 * the concatenated epochs; every sum in the passes has a fixed order. So
 * the state after step s depends on s alone, and a run resumed from a
 * checkpoint at step s continues exactly as the uninterrupted run.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sam/lora.h"
#include "sam/lora_train.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/pass.h"

void sam_lora_train_defaults(struct sam_lora_train_opts *o)
{
	*o = (struct sam_lora_train_opts){
		.rank = 8, .alpha = 16.0f, .targets = SAM_LORA_ALL, .lr = 2e-4, .min_lr_frac = 0.1,
		.warmup_frac = 0.05, .weight_decay = 0.0, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
		.clip = 1.0, .epochs = 1, .steps = 0, .batch = 4, .ctx = 256, .n_threads = 0,
		.checkpoint_every = 50, .seed = 42,
	};
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The order of epoch e: a Fisher-Yates shuffle from (seed, e). */
static void epoch_order(int *order, int n, uint64_t seed, int64_t e)
{
	uint64_t s = seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(e + 1));
	for (int i = 0; i < n; i++) order[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(splitmix64(&s) % (uint64_t)(i + 1));
		int t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

/* Everything one run holds. */
struct run {
	const struct sam_lora_train_opts *o;
	const struct sam_lora_train_hooks *hk;
	struct sam_model model;
	struct train_set train, valid;
	struct sam_pool *pool;
	struct sam_lora lora;
	float *grad;
	struct adamw opt;
	struct pass ps;
	int *order;
	int64_t order_epoch;
	int64_t steps, warmup;
	char fingerprint[1024];
	char ckpt[4096];
};

static void run_free(struct run *r)
{
	pass_free(&r->ps);
	adamw_free(&r->opt);
	free(r->grad);
	free(r->order);
	sam_lora_free(&r->lora);
	sam_pool_free(r->pool);
	train_set_free(&r->train);
	train_set_free(&r->valid);
	sam_model_free(&r->model);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

/* "k=v k=v ...": what the state after step s depends on. */
static void make_fingerprint(struct run *r, const char *model_path)
{
	const struct sam_lora_train_opts *o = r->o;
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < r->train.n; i++) {
		h = fnv1a(h, r->train.seq[i].tok, (size_t)r->train.seq[i].n * sizeof(int32_t));
		h = fnv1a(h, r->train.seq[i].loss, (size_t)r->train.seq[i].n);
	}
	const char *base = strrchr(model_path, '/');
	struct stat st;
	long long size = stat(model_path, &st) == 0 ? (long long)st.st_size : -1;
	snprintf(r->fingerprint, sizeof r->fingerprint,
		 "model=%s:%lld rank=%d alpha=%g targets=%#x lr=%g min_lr=%g warmup=%lld wd=%g betas=%g,%g eps=%g"
		 " clip=%g steps=%lld batch=%d ctx=%d seed=%llu data=%d:%016llx",
		 base ? base + 1 : model_path, size, o->rank, (double)o->alpha, o->targets, o->lr, o->min_lr_frac,
		 (long long)r->warmup, o->weight_decay, o->beta1, o->beta2, o->eps, o->clip, (long long)r->steps, o->batch,
		 o->ctx, (unsigned long long)o->seed, r->train.n, (unsigned long long)h);
}

static int check_opts(const struct sam_lora_train_opts *o, struct sam_error *err)
{
	if (o->rank < 1 || o->rank > 1024) return sam_errorf(err, SAM_EINVAL, "rank %d is out of range [1, 1024]", o->rank);
	if (!(o->alpha >= 0.0f)) return sam_errorf(err, SAM_EINVAL, "alpha must be >= 0");
	if (!(o->lr > 0.0) || o->lr > 1.0) return sam_errorf(err, SAM_EINVAL, "learning rate %g is out of range (0, 1]", o->lr);
	if (o->batch < 1 || o->batch > 4096) return sam_errorf(err, SAM_EINVAL, "batch %d is out of range [1, 4096]", o->batch);
	if (o->ctx < 2 || o->ctx > 32768) return sam_errorf(err, SAM_EINVAL, "context %d is out of range [2, 32768]", o->ctx);
	if (o->steps < 0 || (o->steps == 0 && o->epochs < 1))
		return sam_errorf(err, SAM_EINVAL, "nothing to do: steps %lld, epochs %d", (long long)o->steps, o->epochs);
	if (!o->targets) return sam_errorf(err, SAM_EINVAL, "no target modules");
	return 0;
}

/* Sequence k of the concatenated epochs. */
static const struct train_seq *seq_at(struct run *r, int64_t k)
{
	int64_t e = k / r->train.n;
	if (e != r->order_epoch) {
		epoch_order(r->order, r->train.n, r->o->seed, e);
		r->order_epoch = e;
	}
	return &r->train.seq[r->order[k % r->train.n]];
}

/* What the control file asks: 0 run, 1 pause, 2 stop. */
static int control(const char *path)
{
	if (!path) return 0;
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	char word[16] = "";
	if (!fgets(word, sizeof word, f)) word[0] = '\0';
	fclose(f);
	word[strcspn(word, " \t\r\n")] = '\0';
	return !strcmp(word, "stop") ? 2 : !strcmp(word, "pause") ? 1 : 0;
}

static bool stop_asked(const struct sam_lora_train_hooks *hk)
{
	return hk && ((hk->stop && *hk->stop) || control(hk->control_file) == 2);
}

static bool pause_asked(const struct sam_lora_train_hooks *hk)
{
	return hk && ((hk->pause && *hk->pause) || control(hk->control_file) == 1);
}

static void report(struct run *r, struct sam_lora_train_progress *p)
{
	if (r->hk && r->hk->progress) r->hk->progress(r->hk->ctx, p);
}

/* Wait while paused; true when a stop came meanwhile. */
static bool wait_if_paused(struct run *r, struct sam_lora_train_progress *p, double *paused_s)
{
	if (!pause_asked(r->hk)) return stop_asked(r->hk);
	double t0 = sam_now();
	p->paused = true;
	const char *phase = p->phase;
	p->phase = "paused";
	report(r, p);
	while (pause_asked(r->hk) && !stop_asked(r->hk)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	p->paused = false;
	p->phase = phase;
	*paused_s += sam_now() - t0;
	report(r, p);
	return stop_asked(r->hk);
}

static int save_ckpt(struct run *r, int64_t step, struct sam_error *err)
{
	struct ckpt_state cs = { .step = step, .adam_t = r->opt.t, .n = r->lora.mem_floats, .params = r->lora.mem,
				 .m = r->opt.m, .v = r->opt.v };
	return ckpt_save(r->ckpt, r->fingerprint, &cs, err);
}

/* Mean loss per counted token over a set, with or without the adapter. */
static double eval_set(struct run *r, const struct train_set *set, bool with_adapter)
{
	r->ps.no_lora = !with_adapter;
	double sum = 0.0;
	int64_t n = 0;
	for (int i = 0; i < set->n; i++) {
		int nl;
		sum += pass_run(&r->ps, set->seq[i].tok, set->seq[i].loss, set->seq[i].n, false, 1.0f, &nl);
		n += nl;
	}
	r->ps.no_lora = false;
	return n ? sum / (double)n : NAN;
}

static int setup(struct run *r, const char *model_path, const char *data_dir, struct sam_error *err)
{
	const struct sam_lora_train_opts *o = r->o;
	char path[4200];
	int rc = sam_model_load_flags(&r->model, model_path, SAM_LOAD_NO_REPACK, err);
	if (rc) return rc;
	snprintf(path, sizeof path, "%s/train.jsonl", data_dir);
	if ((rc = train_set_load(&r->train, &r->model, path, o->ctx + 1, err))) return rc;
	snprintf(path, sizeof path, "%s/valid.jsonl", data_dir);
	struct sam_error verr = { 0 };
	if (access(path, F_OK) == 0 && train_set_load(&r->valid, &r->model, path, o->ctx + 1, &verr))
		sam_log(SAM_LOG_WARN, "validation set: %s", verr.msg);
	r->steps = o->steps > 0 ? o->steps : ((int64_t)o->epochs * r->train.n + o->batch - 1) / o->batch;
	r->warmup = (int64_t)llround(o->warmup_frac * (double)r->steps);
	if (r->warmup < 1) r->warmup = 1;
	if (!(r->pool = sam_pool_new(o->n_threads > 0 ? o->n_threads : sam_cpu_count())))
		return sam_errorf(err, SAM_ENOMEM, "cannot start threads");
	if ((rc = sam_lora_init(&r->lora, &r->model, o->targets, o->rank, o->alpha, o->seed, err))) return rc;
	r->grad = calloc(r->lora.mem_floats, sizeof *r->grad);
	r->order = malloc((size_t)r->train.n * sizeof *r->order);
	r->order_epoch = -1;
	if (!r->grad || !r->order || adamw_init(&r->opt, r->lora.mem_floats, o->beta1, o->beta2, o->eps, o->weight_decay))
		return sam_errorf(err, SAM_ENOMEM, "out of memory for the adapter's gradients and moments");
	if ((rc = pass_init(&r->ps, &r->model, &r->lora, r->grad, 1.0f, r->pool, o->ctx, err))) return rc;
	snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.bin", data_dir);
	make_fingerprint(r, model_path);
	return 0;
}

/* One optimiser step over sequences k0 .. k0+batch-1; SAM_ESTOPPED when asked to stop halfway. */
static int train_step(struct run *r, int64_t s, struct sam_lora_train_progress *p, double *paused_s, int64_t *tokens,
		      double *loss)
{
	int64_t k0 = s * r->o->batch;
	int64_t counted = 0;
	for (int i = 0; i < r->o->batch; i++) {
		const struct train_seq *q = seq_at(r, k0 + i);
		for (int t = 1; t < q->n; t++) counted += q->loss[t];
	}
	float scale = counted ? (float)(1.0 / (double)counted) : 0.0f;
	double sum = 0.0;
	for (int i = 0; i < r->o->batch; i++) {
		if (wait_if_paused(r, p, paused_s)) {
			memset(r->grad, 0, r->lora.mem_floats * sizeof *r->grad);
			return SAM_ESTOPPED;
		}
		const struct train_seq *q = seq_at(r, k0 + i);
		int nl;
		sum += pass_run(&r->ps, q->tok, q->loss, q->n, true, scale, &nl);
		*tokens += q->n - 1;
	}
	clip_grad(r->grad, r->lora.mem_floats, r->o->clip);
	p->lr = lr_at(s, r->steps, r->warmup, r->o->lr, r->o->min_lr_frac);
	adamw_step(&r->opt, r->lora.mem, r->grad, p->lr);
	memset(r->grad, 0, r->lora.mem_floats * sizeof *r->grad);
	*loss = counted ? sum / (double)counted : NAN;
	return 0;
}

int sam_lora_train(const char *model_path, const char *data_dir, const char *adapter_path,
		   const struct sam_lora_train_opts *o, bool resume, const struct sam_lora_train_hooks *hooks,
		   struct sam_lora_train_result *res, struct sam_error *err)
{
	memset(res, 0, sizeof *res);
	res->valid_loss_base = res->valid_loss = res->final_loss = NAN;
	int rc = check_opts(o, err);
	if (rc) return rc;
	struct run r = { .o = o, .hk = hooks };
	if ((rc = setup(&r, model_path, data_dir, err))) goto out;
	res->n_train = r.train.n;
	res->n_valid = r.valid.n;
	int64_t start = 0;
	if (resume) {
		struct ckpt_state cs = { .n = r.lora.mem_floats, .params = r.lora.mem, .m = r.opt.m, .v = r.opt.v };
		if ((rc = ckpt_load(r.ckpt, r.fingerprint, &cs, err))) goto out;
		start = cs.step;
		r.opt.t = cs.adam_t;
		res->resumed = true;
		res->resumed_at = start;
	}
	struct sam_lora_train_progress p = { .steps = r.steps, .phase = "train", .step = start };
	double t0 = sam_now(), paused_s = 0.0;
	int64_t tokens = 0, last_saved = resume ? start : -1;
	for (int64_t s = start; s < r.steps; s++) {
		double loss;
		rc = train_step(&r, s, &p, &paused_s, &tokens, &loss);
		if (rc == SAM_ESTOPPED) {
			int rc2 = s != last_saved ? save_ckpt(&r, s, err) : 0;
			if (rc2) rc = rc2;
			else sam_errorf(err, SAM_ESTOPPED, "stopped after step %lld of %lld; the checkpoint is saved",
					(long long)s, (long long)r.steps);
			goto done;
		}
		double busy = sam_now() - t0 - paused_s;
		p.step = s + 1;
		p.epoch = (int)((s * o->batch) / r.train.n) + 1;
		p.loss = loss;
		p.tok_per_s = busy > 0 ? (double)tokens / busy : 0.0;
		p.eta_s = p.step > start ? busy / (double)(p.step - start) * (double)(r.steps - p.step) : 0.0;
		res->final_loss = loss;
		report(&r, &p);
		if (o->checkpoint_every > 0 && p.step % o->checkpoint_every == 0 && p.step < r.steps) {
			if ((rc = save_ckpt(&r, p.step, err))) goto done;
			last_saved = p.step;
		}
	}
	res->steps_done = r.steps;
	if ((rc = sam_lora_save(&r.lora, &r.model, adapter_path, "sam lora", err))) goto done;
	if (r.valid.n) {
		p.phase = "eval-base";
		report(&r, &p);
		res->valid_loss_base = eval_set(&r, &r.valid, false);
		p.phase = "eval-adapter";
		report(&r, &p);
		res->valid_loss = eval_set(&r, &r.valid, true);
	}
	unlink(r.ckpt);
done:
	res->steps_done = p.step;
	res->train_tokens = tokens;
	res->seconds = sam_now() - t0 - paused_s;
out:
	run_free(&r);
	return rc;
}

static size_t lora_floats(const struct sam_hparams *hp, const struct sam_lora_train_opts *o)
{
	size_t dim = (size_t)hp->dim, qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
	size_t ff = (size_t)hp->n_ff;
	size_t io[SAM_LORA_N_TARGET] = { dim + qd, dim + kvd, dim + kvd, qd + dim, dim + ff, dim + ff, ff + dim };
	size_t n = 0;
	for (int t = 0; t < SAM_LORA_N_TARGET; t++)
		if (o->targets & (1u << t)) n += io[t] * (size_t)o->rank;
	n *= (size_t)hp->n_layer;
	if (o->targets & SAM_LORA_OUTPUT) n += (dim + (size_t)hp->n_vocab) * (size_t)o->rank;
	return n;
}

int sam_lora_train_estimate(const char *model_path, const struct sam_lora_train_opts *o, int64_t data_tokens,
			    size_t *bytes, struct sam_error *err)
{
	struct sam_model m;
	int rc = sam_model_load_flags(&m, model_path, SAM_LOAD_NO_REPACK, err);
	if (rc) return rc;
	size_t n = lora_floats(&m.hp, o);
	*bytes = sam_model_weight_bytes(&m) + 4 * n * sizeof(float) + pass_bytes(&m.hp, o->rank, o->ctx) +
		 (size_t)(data_tokens > 0 ? data_tokens : 0) * (sizeof(int32_t) + 1) + ((size_t)48 << 20);
	sam_model_free(&m);
	return 0;
}
