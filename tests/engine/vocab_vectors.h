/*
 * vocab_vectors.h - helpers shared by the tokenizer tests (test_tokenizer.c
 * for SPM, test_bpe.c for BPE): vocabularies opened from the fixtures,
 * encode/decode with checks, llama.cpp's test vectors run as its
 * test-tokenizer-0 does, and small GGUF vocabularies built in memory.
 */
#ifndef SAM_TEST_VOCAB_VECTORS_H
#define SAM_TEST_VOCAB_VECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/gguf.h"
#include "sam/tokenizer.h"

/* Open the fixture NAME (a path below the models directory) and load its vocabulary. */
void vocab_open(const char *name, struct gguf_file *f, struct tok_vocab *v);
void vocab_close(struct gguf_file *f, struct tok_vocab *v);
/* tok_encode, failing the test on error. */
void vocab_encode(const struct tok_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                  int32_t **ids, size_t *n);
/* "1 2 3" of ids, into one of two static buffers (for messages). */
const char *vocab_ids_str(const int32_t *ids, size_t n);
/* Parse space-separated ids; returns the count (at most cap stored). */
size_t vocab_parse_ids(const char *s, const char *end, int32_t *out, size_t cap);
/* Encode text (NUL-terminated) and check the ids are exactly want. */
void vocab_check_ids(const struct tok_vocab *v, const char *text, bool add_special, bool parse_special,
                     const int32_t *want, size_t n_want);
/* Decode ids with tok_piece(special) into a malloc'd buffer. */
char *vocab_decode(const struct tok_vocab *v, const int32_t *ids, size_t n, bool special, size_t *len);
/*
 * Every case of vocab/<vectors>.gguf.inp against its .out (46 cases),
 * tokenized with vocab/<gguf_name>.gguf, whose type must be `type`, as
 * llama.cpp's test-tokenizer-0 does (add_special = parse_special = false).
 * All cases run; the first mismatch is reported.
 */
void vocab_run_vectors(const char *gguf_name, const char *vectors, enum tok_type type);

/* ---- a GGUF v3 file with metadata only, built in memory ----------------- */

struct gb {
	char *p;
	size_t n, cap;
	uint64_t n_kv;
};

void gb_bytes(struct gb *b, const void *d, size_t n);
void gb_u32(struct gb *b, uint32_t x);
void gb_u64(struct gb *b, uint64_t x);
void gb_str(struct gb *b, const char *s);
void gb_key(struct gb *b, const char *key, uint32_t type);
void gb_kv_str(struct gb *b, const char *key, const char *val);
void gb_kv_u32(struct gb *b, const char *key, uint32_t val);
void gb_kv_bool(struct gb *b, const char *key, bool val);
/* A string array; NULL entries end it early (n is the maximum). */
void gb_kv_strs(struct gb *b, const char *key, const char *const *s, size_t n);
/* "tokenizer.ggml.tokens", the first n of toks (a NULL ends it early). */
void gb_kv_tokens(struct gb *b, const char *const *toks, size_t n);
void gb_kv_f32s(struct gb *b, const char *key, const float *x, size_t n);
void gb_kv_i32s(struct gb *b, const char *key, const int32_t *x, size_t n);

/* A vocabulary loaded from a file built with gb. */
struct toy {
	char *buf;
	struct gguf_file f;
	struct tok_vocab v;
};

/* Header + kv section from b (released and zeroed), opened and loaded into t; tok_load's result. */
int toy_load(struct toy *t, struct gb *b, struct sam_error *err);
void toy_free(struct toy *t);

#endif
