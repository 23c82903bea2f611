/*
 * lora_train.h - LoRA fine-tuning of a model on a run's exported data:
 * the training loop (gradient accumulation, AdamW with warm-up and cosine
 * decay, gradient clipping), checkpoints that make a stopped or killed
 * run resumable with the same result, evaluation of base and adapter on
 * the validation set, and the memory estimate that decides whether a run
 * may start at all.
 *
 * The base model is read-only (mapped, any supported type, never copied
 * to F32); the adapter is F32. Results do not depend on the number of
 * threads.
 */
#ifndef SAM_LORA_TRAIN_H
#define SAM_LORA_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/model.h"

struct sam_lora_train_opts {
	int rank;              /* 8 */
	float alpha;           /* 16 */
	unsigned targets;      /* sam_lora_parse_targets mask; default all seven projections */
	double lr;             /* peak learning rate, 2e-4 */
	double min_lr_frac;    /* cosine floor as a fraction of lr, 0.1 */
	double warmup_frac;    /* warm-up steps as a fraction of all steps, 0.05 (at least 1 step) */
	double weight_decay;   /* 0 */
	double beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
	double clip;           /* global gradient norm limit, 1 (<= 0: none) */
	int epochs;            /* passes over the training set when steps is 0; 1 */
	int64_t steps;         /* optimiser steps; 0: epochs * examples / batch, rounded up */
	int batch;             /* sequences per optimiser step (gradient accumulation), 4 */
	int ctx;               /* positions per sequence (longer examples are cut), 256 */
	int n_threads;         /* 0: every core */
	int checkpoint_every;  /* steps between checkpoints, 50 (0: only when stopped) */
	uint64_t seed;         /* adapter initialisation and data order, 42 */
};

void sam_lora_train_defaults(struct sam_lora_train_opts *o);

/* What the progress callback sees, after every optimiser step (and while paused). */
struct sam_lora_train_progress {
	int64_t step, steps;   /* steps done, of steps */
	int epoch;             /* 1-based */
	double loss;           /* mean loss of the last step */
	double lr;
	double tok_per_s;      /* tokens (forward+backward) per second, this session */
	double eta_s;          /* remaining time at that rate */
	bool paused;
	const char *phase;     /* "train", "eval-base", "eval-adapter", "paused" */
};

struct sam_lora_train_hooks {
	void (*progress)(void *ctx, const struct sam_lora_train_progress *p);
	void *ctx;
	/*
	 * Polled between sequences: *stop nonzero ends the run after saving a
	 * checkpoint of the last whole step (SAM_ESTOPPED); *pause nonzero
	 * pauses until it is zero again. Either may be NULL.
	 */
	volatile sig_atomic_t *stop, *pause;
	/*
	 * A file polled the same way (may be NULL): containing "pause" pauses,
	 * "stop" stops, anything else (or no file) runs.
	 */
	const char *control_file;
};

struct sam_lora_train_result {
	int64_t steps_done;
	bool resumed;          /* continued from a checkpoint */
	int64_t resumed_at;    /* step it continued from */
	int n_train, n_valid;  /* sequences used */
	int64_t train_tokens;  /* tokens processed this session */
	double seconds;        /* of training this session */
	double final_loss;     /* mean loss of the last step */
	double valid_loss_base, valid_loss; /* NAN when there is no validation set */
};

/*
 * Peak memory of a run in bytes (mapped weights, adapter with gradient
 * and moments, activations for ctx, logits chunk, data), for the model
 * file at model_path; SAM_E* on an unreadable model.
 */
int sam_lora_train_estimate(const char *model_path, const struct sam_lora_train_opts *o, int64_t data_tokens,
			    size_t *bytes, struct sam_error *err);

/*
 * Train on data_dir/train.jsonl, evaluate on data_dir/valid.jsonl (if
 * present and non-empty), write the adapter to adapter_path (atomically).
 * The checkpoint lives at data_dir/checkpoint.bin: with resume, training
 * continues from it (refused, SAM_EINVAL, when it was made with other
 * options or data); it is written every checkpoint_every steps and when
 * stopped, and removed when the run completes. SAM_ESTOPPED when stopped
 * (the checkpoint is saved; nothing else is written).
 */
int sam_lora_train(const char *model_path, const char *data_dir, const char *adapter_path,
		   const struct sam_lora_train_opts *o, bool resume, const struct sam_lora_train_hooks *hooks,
		   struct sam_lora_train_result *res, struct sam_error *err);

#endif
