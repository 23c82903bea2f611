/*
 * engine.h - the api's generation scheduler: one thread that owns a model
 * and a multi-sequence context, admits requests from a bounded queue into
 * KV slots, and decodes every active request together in one batch per
 * step (continuous batching): prompts in chunks, then one token each.
 *
 * A request (struct gen_req) is shared by the scheduler and the HTTP
 * thread that submitted it; each side drops its reference with
 * gen_release(), and the last one frees it. The HTTP side reads text with
 * gen_wait()/gen_take(); text is released only up to a point that cannot
 * become part of a stop string and never splits a UTF-8 character.
 *
 * LoRA adapters (struct api_adapter) are shared by reference: the engine
 * holds one on its current adapter, and each KV slot on the adapter its
 * cache was computed with (which the context borrows for that sequence).
 * A request uses its slot's adapter from admission to its end, so a swap
 * (engine_set_adapter) affects only requests admitted after it, and a
 * slot's cached prefix is reused only by a request of the same adapter.
 */
#ifndef SAM_API_ENGINE_H
#define SAM_API_ENGINE_H

#include <pthread.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sam/adapters.h"
#include "sam/lora.h"
#include "sam/model.h"
#include "sam/resource.h"
#include "sam/sampler.h"

#define GEN_MAX_STOP 8

struct gen_params {
	int max_tokens;
	struct sam_sampler_params sp;
	const char *stop[GEN_MAX_STOP]; /* copied at submit */
	int n_stop;
	int32_t stop_ids[8]; /* tokens that end generation besides the vocabulary's EOG ones */
	int n_stop_ids;
	double timeout_s; /* from submission to the last token */
};

enum gen_finish { GEN_RUNNING = 0, GEN_STOP, GEN_LENGTH, GEN_CANCELLED, GEN_TIMEOUT, GEN_ERROR };
const char *gen_finish_name(int f); /* "stop", "length", "cancelled", "timeout", "error" */

struct api_engine;

struct gen_req {
	/* immutable after submit */
	int32_t *prompt;
	int n_prompt;
	struct gen_params p;
	char *stop_copy[GEN_MAX_STOP];
	int max_stop_len;
	double t_submit, deadline;
	/* guarded by the engine's mutex */
	int refs;
	int finish;            /* enum gen_finish */
	char *text;            /* generated text so far */
	size_t text_len, text_cap;
	size_t ready;          /* bytes of text safe to hand out */
	size_t taken;          /* bytes handed out by gen_take */
	int n_gen;             /* tokens generated (not counting EOS) */
	int n_cached;          /* prompt tokens reused from the slot's cache */
	double t_start, t_first, t_end; /* admitted, first token, finished */
	bool cancel;
	char error[512];
	/* scheduler-private */
	int slot, n_past, n_fed;
	int32_t next_token;
	struct sam_sampler smp;
	struct gen_req *qnext;
};

struct engine_stats {
	int queued, active, slots;
	uint64_t requests, prompt_tokens, gen_tokens, rejected_full;
	double last_gen_tps;
	uint64_t wait_buckets[12]; /* histogram of queue wait (see engine_wait_bounds) */
	double wait_sum;
	uint64_t wait_count;
};
extern const double engine_wait_bounds[11];

struct engine_opts {
	int n_ctx;      /* per slot; 0 = model's trained length, capped at 4096 */
	int n_slots;    /* concurrent sequences (default 4) */
	int n_batch;    /* tokens per step (default 256) */
	int n_threads;  /* 0 = cores */
	int queue_max;  /* waiting requests (default 16) */
};

int engine_start(struct api_engine **out, const char *model_path, const struct engine_opts *o,
		 struct sam_resource *res, struct sam_error *err);
void engine_stop(struct api_engine *e);
const struct sam_model *engine_model(const struct api_engine *e);
const char *engine_model_path(const struct api_engine *e);
int engine_n_ctx(const struct api_engine *e);
void engine_get_stats(struct api_engine *e, struct engine_stats *s);

/*
 * A loaded adapter. Nothing in it changes after api_adapter_load, so any
 * thread holding a reference may read it. The one who drops the last
 * reference frees it (and unmaps its file).
 */
struct api_adapter {
	atomic_int refs;
	struct sam_lora lora;
	char id[SAM_ADAPTER_ID_MAX + 1];
	char *path;
	float scale;   /* the user's scale (alpha/rank comes on top) */
	double load_ms; /* how long loading and checking took */
	struct stat st; /* the file as loaded: a reload of the same file keeps this copy */
};

/*
 * Load the adapter file path (id is its name in adapters/) for model m,
 * in the calling thread: the file is checked against m and its pages read
 * in, so the scheduler never waits on the disk for it. *out holds one
 * reference, the caller's. On failure *out is NULL and err says why.
 */
int api_adapter_load(struct api_adapter **out, const struct sam_model *m, const char *id, const char *path, float scale,
		     struct sam_error *err);
/* Add a reference (NULL passes through). */
struct api_adapter *api_adapter_ref(struct api_adapter *a);
/* Drop a reference; the last one frees a. NULL is fine. */
void api_adapter_unref(struct api_adapter *a);

/*
 * Make a (NULL: none) the adapter of every request admitted from now on;
 * the engine takes its own reference (the caller keeps its own).
 * Requests already admitted finish with the adapter they started with.
 * Never blocks on the scheduler's forward pass: only the engine's mutex.
 * a must have been loaded for this engine's model.
 */
void engine_set_adapter(struct api_engine *e, struct api_adapter *a);
/* The current adapter with a new reference for the caller (unref it), or NULL. */
struct api_adapter *engine_adapter(struct api_engine *e);

/*
 * Queue a generation. prompt is copied. Fails with SAM_ERANGE when the
 * prompt does not fit the context, SAM_EUNSUPPORTED ("busy") when the
 * queue is full. The returned request holds a reference for the caller.
 */
int engine_submit(struct api_engine *e, const int32_t *prompt, int n_prompt, const struct gen_params *p,
		  struct gen_req **out, struct sam_error *err);

/* Wait until new text is ready, the request finished, or timeout_ms passed. */
void gen_wait(struct api_engine *e, struct gen_req *g, int timeout_ms);
/* Copy out up to max bytes of newly ready text; *finished when no more will come. */
size_t gen_take(struct api_engine *e, struct gen_req *g, char *buf, size_t max, bool *finished);
/* Ask the scheduler to stop this request at its next step. */
void gen_cancel(struct api_engine *e, struct gen_req *g);
/* Snapshot of finish state and counters (under the lock). */
void gen_result(struct api_engine *e, struct gen_req *g, int *finish, int *n_prompt, int *n_gen);
void gen_release(struct api_engine *e, struct gen_req *g);

#endif
