/*
 * engine.c - the continuous-batching scheduler (see engine.h).
 *
 * Locking: one mutex guards the queue, the active list and every field of
 * a gen_req marked "guarded". The scheduler thread holds it only to move
 * requests between states and to publish text; the forward pass runs
 * unlocked. Consumers sleep on `more`, the scheduler on `work`.
 *
 * Adapters: only the scheduler thread calls sam_ctx_set_lora (the forward
 * pass reads the context's per-sequence adapters unlocked), and it does
 * so for a free slot only: when a request is admitted into a slot whose
 * adapter is not the current one (slot_bind), and when a slot whose
 * adapter was replaced becomes free (slot_release_stale), so an old
 * adapter is freed once the last request that started with it ends.
 * engine_set_adapter only swaps the pointer under the mutex and wakes
 * the scheduler.
 */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/engine.h"
#include "sam/utf8.h"

#define PREFILL_CHUNK 64 /* prompt tokens per request per step: bounds cancellation latency */

const double engine_wait_bounds[11] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120 };

struct slot {
	int32_t *tokens; /* what the KV slot holds, positions 0..n-1 */
	int n;
	struct gen_req *owner;
	/* what those tokens were computed with, and the context's adapter of
	 * this sequence (a reference, which the context borrows); NULL: none */
	struct api_adapter *adapter;
};

struct api_engine {
	struct sam_model model;
	struct sam_ctx ctx;
	char *path;
	struct engine_opts o;
	struct sam_resource *res;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, more;
	bool stop, gate_held;
	struct gen_req *q_head, *q_tail;
	int q_len;
	struct gen_req **active;
	int n_active;
	struct slot *slots;
	struct api_adapter *adapter; /* for requests admitted from now on (a reference); NULL: none */
	bool adapter_changed;        /* set by engine_set_adapter: free slots may hold a stale one */
	int rr; /* round-robin start for fairness */
	struct engine_stats st;
	/* batch scratch */
	int32_t *b_tok, *b_pos, *b_seq;
	bool *b_logits;
	struct gen_req **b_req; /* request of each logits row */
};

const char *gen_finish_name(int f)
{
	static const char *n[] = { "running", "stop", "length", "cancelled", "timeout", "error" };
	return f >= 0 && f <= GEN_ERROR ? n[f] : "unknown";
}

static void free_req(struct gen_req *g)
{
	sam_sampler_free(&g->smp);
	for (int i = 0; i < g->p.n_stop; i++) free(g->stop_copy[i]);
	free(g->prompt);
	free(g->text);
	free(g);
}

void gen_release(struct api_engine *e, struct gen_req *g)
{
	pthread_mutex_lock(&e->mu);
	int left = --g->refs;
	pthread_mutex_unlock(&e->mu);
	if (!left) free_req(g);
}

/* Called with the lock held. */
static void finish(struct api_engine *e, struct gen_req *g, int how)
{
	if (g->finish) return;
	g->finish = how;
	g->ready = g->text_len;
	g->t_end = sam_now();
	pthread_cond_broadcast(&e->more);
}

static void append_text(struct gen_req *g, const char *s, size_t n)
{
	if (g->text_len + n + 1 > g->text_cap) {
		g->text_cap = (g->text_len + n + 1) * 2;
		g->text = xrealloc(g->text, g->text_cap);
	}
	memcpy(g->text + g->text_len, s, n);
	g->text_len += n;
	g->text[g->text_len] = 0;
}

/* After new text: cut at a stop string (finishing), else advance `ready`. Lock held. */
static void publish_text(struct api_engine *e, struct gen_req *g, size_t old_len)
{
	size_t from = old_len > (size_t)g->max_stop_len ? old_len - (size_t)g->max_stop_len : 0;
	for (int i = 0; i < g->p.n_stop; i++) {
		/* memmem: generated text may hold NUL bytes */
		char *hit = g->text_len > from ? memmem(g->text + from, g->text_len - from, g->stop_copy[i],
							strlen(g->stop_copy[i]))
					       : NULL;
		if (hit) {
			g->text_len = (size_t)(hit - g->text);
			g->text[g->text_len] = 0;
			finish(e, g, GEN_STOP);
			return;
		}
	}
	size_t hold = g->max_stop_len > 0 ? (size_t)g->max_stop_len - 1 : 0;
	size_t r = g->text_len > hold ? g->text_len - hold : 0;
	r = utf8_safe_end(g->text, r);
	if (r > g->ready) {
		g->ready = r;
		pthread_cond_broadcast(&e->more);
	}
}

/* ---- consumer side ------------------------------------------------------- */

void gen_wait(struct api_engine *e, struct gen_req *g, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)timeout_ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&e->mu);
	if (g->ready == g->taken && !g->finish) pthread_cond_timedwait(&e->more, &e->mu, &ts);
	pthread_mutex_unlock(&e->mu);
}

size_t gen_take(struct api_engine *e, struct gen_req *g, char *buf, size_t max, bool *finished)
{
	pthread_mutex_lock(&e->mu);
	size_t n = g->ready - g->taken;
	if (n > max) n = max;
	if (n) memcpy(buf, g->text + g->taken, n); /* text is NULL until the first piece */
	g->taken += n;
	*finished = g->finish && g->taken == g->ready;
	pthread_mutex_unlock(&e->mu);
	return n;
}

void gen_cancel(struct api_engine *e, struct gen_req *g)
{
	pthread_mutex_lock(&e->mu);
	g->cancel = true;
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->mu);
}

void gen_result(struct api_engine *e, struct gen_req *g, int *fin, int *n_prompt, int *n_gen)
{
	pthread_mutex_lock(&e->mu);
	if (fin) *fin = g->finish;
	if (n_prompt) *n_prompt = g->n_prompt;
	if (n_gen) *n_gen = g->n_gen;
	pthread_mutex_unlock(&e->mu);
}

int engine_submit(struct api_engine *e, const int32_t *prompt, int n_prompt, const struct gen_params *p,
		  struct gen_req **out, struct sam_error *err)
{
	if (n_prompt < 1) return sam_errorf(err, SAM_EINVAL, "empty prompt");
	if (n_prompt >= e->o.n_ctx)
		return sam_errorf(err, SAM_ERANGE, "the prompt has %d tokens; the context holds %d", n_prompt,
				  e->o.n_ctx);
	struct gen_req *g = xcalloc(1, sizeof *g);
	g->prompt = xmalloc((size_t)n_prompt * sizeof(int32_t));
	memcpy(g->prompt, prompt, (size_t)n_prompt * sizeof(int32_t));
	g->n_prompt = n_prompt;
	g->p = *p;
	if (g->p.n_stop > GEN_MAX_STOP) g->p.n_stop = GEN_MAX_STOP;
	for (int i = 0; i < g->p.n_stop; i++) {
		g->stop_copy[i] = xstrdup(p->stop[i]);
		g->p.stop[i] = g->stop_copy[i];
		int l = (int)strlen(g->stop_copy[i]);
		if (l > g->max_stop_len) g->max_stop_len = l;
	}
	g->t_submit = sam_now();
	g->deadline = g->t_submit + (p->timeout_s > 0 ? p->timeout_s : 120);
	g->slot = -1;
	g->refs = 2;
	if (sam_sampler_init(&g->smp, &p->sp, e->model.hp.n_vocab, err)) {
		free_req(g);
		return SAM_ENOMEM;
	}
	pthread_mutex_lock(&e->mu);
	if (e->q_len >= e->o.queue_max) {
		e->st.rejected_full++;
		pthread_mutex_unlock(&e->mu);
		free_req(g);
		return sam_errorf(err, SAM_EUNSUPPORTED, "the queue is full (%d waiting)", e->o.queue_max);
	}
	if (e->q_tail) e->q_tail->qnext = g;
	else e->q_head = g;
	e->q_tail = g;
	e->q_len++;
	e->st.requests++;
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->mu);
	*out = g;
	return 0;
}

/* ---- adapters ------------------------------------------------------------------ */

/* Touch every page of the mapping, so the first decode with it does not wait on the disk. */
static void prefault(const struct gguf_file *f)
{
	volatile uint8_t sink = 0;
	for (size_t o = 0; f->map && o < f->size; o += 4096) sink ^= f->map[o];
	(void)sink;
}

int api_adapter_load(struct api_adapter **out, const struct sam_model *m, const char *id, const char *path, float scale,
		     struct sam_error *err)
{
	*out = NULL;
	struct api_adapter *a = xcalloc(1, sizeof *a);
	double t0 = sam_now();
	/*
	 * Before opening: a file replaced meanwhile then looks changed at the
	 * next reload (one load too many), never unchanged while stale.
	 */
	if (stat(path, &a->st) != 0) memset(&a->st, 0, sizeof a->st);
	int rc = sam_lora_load(&a->lora, m, path, err);
	if (rc) {
		free(a);
		return rc;
	}
	prefault(&a->lora.gguf);
	atomic_init(&a->refs, 1);
	snprintf(a->id, sizeof a->id, "%s", id);
	a->path = xstrdup(path);
	a->scale = scale;
	a->load_ms = (sam_now() - t0) * 1000.0;
	*out = a;
	return 0;
}

struct api_adapter *api_adapter_ref(struct api_adapter *a)
{
	if (a) atomic_fetch_add(&a->refs, 1);
	return a;
}

void api_adapter_unref(struct api_adapter *a)
{
	if (!a || atomic_fetch_sub(&a->refs, 1) != 1) return;
	sam_lora_free(&a->lora);
	free(a->path);
	free(a);
}

void engine_set_adapter(struct api_engine *e, struct api_adapter *a)
{
	api_adapter_ref(a);
	pthread_mutex_lock(&e->mu);
	struct api_adapter *old = e->adapter;
	e->adapter = a;
	e->adapter_changed = true;
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->mu);
	api_adapter_unref(old); /* slots that still compute with it hold their own reference */
}

struct api_adapter *engine_adapter(struct api_engine *e)
{
	pthread_mutex_lock(&e->mu);
	struct api_adapter *a = api_adapter_ref(e->adapter);
	pthread_mutex_unlock(&e->mu);
	return a;
}

/*
 * Give free slot s the current adapter, in the context too; its cache was
 * computed with another one, so it is emptied. Scheduler thread, lock held.
 * On failure (no memory for the adapter's scratch) nothing changed.
 */
static int slot_bind(struct api_engine *e, int s, struct sam_error *err)
{
	struct slot *sl = &e->slots[s];
	struct api_adapter *a = e->adapter;
	if (sl->adapter == a) return 0;
	int rc = sam_ctx_set_lora(&e->ctx, s, a ? &a->lora : NULL, a ? a->scale : 0.0f, err);
	if (rc) return rc;
	api_adapter_unref(sl->adapter);
	sl->adapter = api_adapter_ref(a);
	sl->n = 0;
	return 0;
}

/*
 * A free slot whose adapter was replaced lets go of it (and of its cache,
 * which no new request may reuse), so the old adapter is freed as soon as
 * nothing computes with it. A cache made without adapter is kept: it
 * serves again once the adapter is switched off. Scheduler thread, lock held.
 */
static void slot_release_stale(struct api_engine *e, int s)
{
	struct slot *sl = &e->slots[s];
	if (sl->owner || !sl->adapter || sl->adapter == e->adapter) return;
	sam_ctx_set_lora(&e->ctx, s, NULL, 0.0f, NULL); /* cannot fail for NULL */
	api_adapter_unref(sl->adapter);
	sl->adapter = NULL;
	sl->n = 0;
}

/* ---- scheduler --------------------------------------------------------------- */

static void observe_wait(struct api_engine *e, double w)
{
	int b = 0;
	while (b < 11 && w > engine_wait_bounds[b]) b++;
	e->st.wait_buckets[b]++;
	e->st.wait_sum += w;
	e->st.wait_count++;
}

/* Drop a request from the active list and free its slot. Lock held. */
static void retire(struct api_engine *e, int i)
{
	struct gen_req *g = e->active[i];
	if (g->slot >= 0) {
		e->slots[g->slot].owner = NULL;
		slot_release_stale(e, g->slot);
	}
	e->active[i] = e->active[--e->n_active];
	if (--g->refs == 0) free_req(g);
}

/*
 * The free slot whose cache shares the longest prefix with g's prompt, or
 * -1 when none is free. Only a cache computed with the current adapter
 * counts: the same tokens under another adapter have other keys and values.
 */
static int best_slot(const struct api_engine *e, const struct gen_req *g, int *best_len)
{
	int best = -1;
	*best_len = -1;
	for (int s = 0; s < e->o.n_slots; s++) {
		const struct slot *sl = &e->slots[s];
		if (sl->owner) continue;
		int l = 0, max = g->n_prompt - 1; /* the last prompt token is always evaluated */
		if (sl->adapter == e->adapter)
			while (l < max && l < sl->n && sl->tokens[l] == g->prompt[l]) l++;
		if (l > *best_len) {
			best = s;
			*best_len = l;
		}
	}
	return best;
}

/*
 * Admit queued requests into free slots, reusing the longest cached prefix;
 * without can_admit only drop the cancelled and expired ones. Lock held.
 */
static void admit(struct api_engine *e, bool can_admit)
{
	double now = sam_now();
	struct gen_req **pp = &e->q_head, *prev = NULL;
	while (*pp) {
		struct gen_req *g = *pp;
		bool drop = g->cancel || now > g->deadline;
		int best = -1, best_len = -1;
		if (!drop) best = best_slot(e, g, &best_len);
		if (!drop && (best < 0 || !can_admit)) { /* FIFO: nobody overtakes */
			prev = g;
			pp = &g->qnext;
			if (can_admit) break;
			continue;
		}
		*pp = g->qnext;
		if (e->q_tail == g) e->q_tail = prev;
		g->qnext = NULL;
		e->q_len--;
		struct sam_error err;
		if (!drop && slot_bind(e, best, &err)) {
			snprintf(g->error, sizeof g->error, "%s", err.msg);
			sam_log(SAM_LOG_ERROR, "engine: %s", err.msg);
			finish(e, g, GEN_ERROR);
			drop = true;
		}
		if (drop) {
			finish(e, g, g->cancel ? GEN_CANCELLED : GEN_TIMEOUT);
			if (--g->refs == 0) free_req(g);
			continue;
		}
		g->slot = best;
		g->n_cached = best_len;
		g->n_past = best_len;
		g->n_fed = best_len;
		e->slots[best].owner = g;
		e->slots[best].n = best_len;
		g->t_start = now;
		observe_wait(e, now - g->t_submit);
		e->active[e->n_active++] = g;
	}
}

/* Sample the next token of g from logits and handle its end conditions. Lock held. */
static void step_token(struct api_engine *e, struct gen_req *g, const float *logits, double now)
{
	if (g->finish) return;
	int32_t id = sam_sampler_sample(&g->smp, logits);
	if (!g->t_first) g->t_first = now;
	bool eog = tok_is_eog(&e->model.vocab, id);
	for (int i = 0; i < g->p.n_stop_ids; i++) eog |= id == g->p.stop_ids[i];
	if (eog) {
		finish(e, g, GEN_STOP);
		return;
	}
	sam_sampler_accept(&g->smp, id);
	g->n_gen++;
	e->st.gen_tokens++;
	char piece[256];
	size_t n = tok_piece(&e->model.vocab, id, false, piece, sizeof piece);
	size_t old = g->text_len;
	if (n <= sizeof piece) {
		append_text(g, piece, n);
	} else {
		char *big = xmalloc(n);
		tok_piece(&e->model.vocab, id, false, big, n);
		append_text(g, big, n);
		free(big);
	}
	publish_text(e, g, old);
	if (g->finish) return;
	if (g->n_gen >= g->p.max_tokens || g->n_past + 1 >= e->o.n_ctx) {
		finish(e, g, GEN_LENGTH);
		return;
	}
	g->next_token = id;
}

static void *engine_main(void *arg)
{
	struct api_engine *e = arg;
	struct sam_error err;
	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->stop && !e->n_active && !e->q_head && !e->adapter_changed) pthread_cond_wait(&e->work, &e->mu);
		if (e->stop) break;
		if (e->adapter_changed) {
			e->adapter_changed = false;
			for (int s = 0; s < e->o.n_slots; s++) slot_release_stale(e, s);
		}
		/* finished, cancelled or timed-out requests leave before anything is computed */
		double now = sam_now();
		for (int i = e->n_active - 1; i >= 0; i--) {
			struct gen_req *g = e->active[i];
			if (g->cancel) finish(e, g, GEN_CANCELLED);
			else if (now > g->deadline) finish(e, g, GEN_TIMEOUT);
			if (g->finish) retire(e, i);
		}
		if (!e->gate_held && e->q_head) {
			/* heavy work waits for the gate (shared with vision/training) */
			pthread_mutex_unlock(&e->mu);
			bool got = sam_gate_acquire(e->res, 0.1);
			pthread_mutex_lock(&e->mu);
			e->gate_held = got;
			if (!got) {
				admit(e, false);
				continue;
			}
		}
		admit(e, e->gate_held);
		if (!e->n_active) {
			if (e->gate_held && !e->q_head) {
				sam_gate_release(e->res);
				e->gate_held = false;
			}
			continue;
		}
		/* build one batch: prompt chunks and one token per decoding request */
		int n = 0, n_rows = 0, budget = e->o.n_batch;
		for (int k = 0; k < e->n_active && budget > 0; k++) {
			struct gen_req *g = e->active[(e->rr + k) % e->n_active];
			struct slot *s = &e->slots[g->slot];
			if (g->n_fed < g->n_prompt) {
				int take = g->n_prompt - g->n_fed;
				if (take > PREFILL_CHUNK) take = PREFILL_CHUNK;
				if (take > budget) take = budget;
				for (int t = 0; t < take; t++) {
					e->b_tok[n] = g->prompt[g->n_fed];
					e->b_pos[n] = g->n_past;
					e->b_seq[n] = g->slot;
					e->b_logits[n] = false;
					s->tokens[g->n_past] = g->prompt[g->n_fed];
					g->n_fed++;
					g->n_past++;
					n++;
				}
				if (g->n_fed == g->n_prompt) {
					e->b_logits[n - 1] = true;
					e->b_req[n_rows++] = g;
				}
				budget -= take;
				e->st.prompt_tokens += (uint64_t)take;
			} else {
				e->b_tok[n] = g->next_token;
				e->b_pos[n] = g->n_past;
				e->b_seq[n] = g->slot;
				e->b_logits[n] = true;
				s->tokens[g->n_past] = g->next_token;
				g->n_past++;
				e->b_req[n_rows++] = g;
				n++;
				budget--;
			}
			s->n = g->n_past;
		}
		e->rr = (e->rr + 1) % (e->n_active ? e->n_active : 1);
		pthread_mutex_unlock(&e->mu);

		struct sam_batch bt = { n, e->b_tok, e->b_pos, e->b_seq, e->b_logits };
		double t0 = sam_now();
		int rc = sam_decode_batch(&e->ctx, &bt, &err);
		double t1 = sam_now();

		pthread_mutex_lock(&e->mu);
		if (rc) { /* a bug, not bad input: everything in flight fails, the service goes on */
			for (int i = 0; i < e->n_active; i++) {
				memcpy(e->active[i]->error, err.msg, sizeof err.msg);
				finish(e, e->active[i], GEN_ERROR);
			}
			sam_log(SAM_LOG_ERROR, "engine: %s", err.msg);
			continue;
		}
		int decoding = 0;
		for (int i = 0; i < n_rows; i++) {
			if (e->b_req[i]->n_gen > 0) decoding++;
			step_token(e, e->b_req[i], sam_ctx_logits(&e->ctx, i), t1);
		}
		if (decoding && n == n_rows) e->st.last_gen_tps = (double)decoding / (t1 - t0);
	}
	/* shutting down: everyone still waiting or running is told */
	for (struct gen_req *g = e->q_head, *nx; g; g = nx) {
		nx = g->qnext;
		finish(e, g, GEN_CANCELLED);
		if (--g->refs == 0) free_req(g);
	}
	e->q_head = e->q_tail = NULL;
	while (e->n_active) {
		finish(e, e->active[0], GEN_CANCELLED);
		retire(e, 0);
	}
	if (e->gate_held) sam_gate_release(e->res);
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int engine_start(struct api_engine **out, const char *model_path, const struct engine_opts *o,
		 struct sam_resource *res, struct sam_error *err)
{
	struct api_engine *e = xcalloc(1, sizeof *e);
	int rc = sam_model_load(&e->model, model_path, err);
	if (rc) {
		free(e);
		return rc;
	}
	e->path = xstrdup(model_path);
	e->o = *o;
	if (e->o.n_slots <= 0) e->o.n_slots = 4;
	if (e->o.n_batch <= 0) e->o.n_batch = 256;
	if (e->o.queue_max <= 0) e->o.queue_max = 16;
	if (e->o.n_ctx <= 0) e->o.n_ctx = e->model.hp.n_ctx_train < 4096 ? e->model.hp.n_ctx_train : 4096;
	if (e->o.n_batch < e->o.n_slots) e->o.n_batch = e->o.n_slots;
	e->res = res;
	struct sam_ctx_params cp = { .n_ctx = e->o.n_ctx, .n_batch = e->o.n_batch, .n_seq = e->o.n_slots,
				     .n_threads = e->o.n_threads };
	/*
	 * Before allocating: the KV caches of every slot must leave the machine
	 * room. Shrink the context (not below 512) until they take at most half
	 * of the memory available now, and say so.
	 */
	double avail_mb;
	if (sam_mem_available_mb(&avail_mb, NULL) == 0) {
		while (cp.n_ctx > 512 && (double)sam_ctx_bytes(&e->model.hp, &cp) / 1048576.0 > avail_mb / 2) cp.n_ctx /= 2;
		if (cp.n_batch > cp.n_ctx * cp.n_seq) cp.n_batch = cp.n_ctx * cp.n_seq;
		if (cp.n_ctx != e->o.n_ctx)
			sam_log(SAM_LOG_WARN, "engine: context per slot lowered from %d to %d tokens to fit %.0f MB available",
				e->o.n_ctx, cp.n_ctx, avail_mb);
		e->o.n_ctx = cp.n_ctx;
		e->o.n_batch = cp.n_batch;
	}
	sam_log(SAM_LOG_INFO, "engine: %s: %d slots x %d tokens, buffers %.1f MiB", model_path, cp.n_seq, cp.n_ctx,
		(double)sam_ctx_bytes(&e->model.hp, &cp) / 1048576.0);
	if ((rc = sam_ctx_new(&e->ctx, &e->model, &cp, err))) {
		sam_model_free(&e->model);
		free(e->path);
		free(e);
		return rc;
	}
	e->slots = xcalloc((size_t)e->o.n_slots, sizeof *e->slots);
	for (int s = 0; s < e->o.n_slots; s++) e->slots[s].tokens = xmalloc((size_t)e->o.n_ctx * sizeof(int32_t));
	e->active = xcalloc((size_t)e->o.n_slots, sizeof *e->active);
	e->b_tok = xmalloc((size_t)e->o.n_batch * sizeof(int32_t));
	e->b_pos = xmalloc((size_t)e->o.n_batch * sizeof(int32_t));
	e->b_seq = xmalloc((size_t)e->o.n_batch * sizeof(int32_t));
	e->b_logits = xmalloc((size_t)e->o.n_batch);
	e->b_req = xmalloc((size_t)e->o.n_batch * sizeof *e->b_req);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->work, NULL);
	pthread_cond_init(&e->more, NULL);
	if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
		engine_stop(e); /* never started: engine_stop copes */
		return sam_errorf(err, SAM_EIO, "cannot start the engine thread");
	}
	*out = e;
	return 0;
}

void engine_stop(struct api_engine *e)
{
	if (!e) return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->work);
	pthread_mutex_unlock(&e->mu);
	if (e->thread) pthread_join(e->thread, NULL);
	sam_ctx_free(&e->ctx); /* before the adapters it borrows */
	for (int s = 0; s < e->o.n_slots; s++) {
		free(e->slots[s].tokens);
		api_adapter_unref(e->slots[s].adapter);
	}
	api_adapter_unref(e->adapter);
	free(e->slots);
	free(e->active);
	free(e->b_tok);
	free(e->b_pos);
	free(e->b_seq);
	free(e->b_logits);
	free(e->b_req);
	sam_model_free(&e->model);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->work);
	pthread_cond_destroy(&e->more);
	free(e->path);
	free(e);
}

const struct sam_model *engine_model(const struct api_engine *e) { return &e->model; }
const char *engine_model_path(const struct api_engine *e) { return e->path; }
int engine_n_ctx(const struct api_engine *e) { return e->o.n_ctx; }

void engine_get_stats(struct api_engine *e, struct engine_stats *s)
{
	pthread_mutex_lock(&e->mu);
	*s = e->st;
	s->queued = e->q_len;
	s->active = e->n_active;
	s->slots = e->o.n_slots;
	pthread_mutex_unlock(&e->mu);
}
