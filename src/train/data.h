/*
 * data.h - training examples as token sequences with a loss mask.
 *
 * A file is JSONL in any form `sam learn add` accepts (OpenAI "messages",
 * ShareGPT "conversations", {"text": ...}); `sam train` reads the
 * train.jsonl / valid.jsonl a run exported. A chat example is rendered
 * with the model's chat template and its loss covers the assistant
 * answers (with their end-of-turn marker) only; a text example is BOS,
 * its tokens and EOS, all with loss.
 */
#ifndef SAM_TRAIN_DATA_H
#define SAM_TRAIN_DATA_H

#include <stdint.h>

#include "sam/core.h"
#include "sam/model.h"

struct train_seq {
	int32_t *tok;  /* [n] */
	uint8_t *loss; /* [n]: 1 where tok[i] is a target the loss counts */
	int n;
};

struct train_set {
	struct train_seq *seq;
	int n;
	int64_t n_tokens, n_loss; /* over all sequences, after truncation */
	int n_truncated;          /* sequences cut to max_len */
	int n_skipped;            /* lines with no loss left (or unusable: see n_bad) */
	int n_bad;                /* lines that were not examples */
	char first_bad[256];      /* why the first bad line was refused */
};

/*
 * Tokenize every example of path, each cut to max_len tokens (>= 2).
 * Lines that are not examples are counted, not fatal; a file with no
 * usable example is SAM_EINVAL. set is freed with train_set_free.
 */
int train_set_load(struct train_set *set, const struct sam_model *m, const char *path, int max_len,
		   struct sam_error *err);
void train_set_free(struct train_set *set);

/* Tokens and loss mask of one example given as a JSON line (for tests). */
int train_tokenize_line(const struct sam_model *m, const char *line, size_t len, int max_len, struct train_seq *out,
			struct sam_error *err);

#endif
