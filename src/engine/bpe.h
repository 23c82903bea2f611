/*
 * bpe.h - the byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2"),
 * internal to tokenizer.c, which owns loading, the special-token partition
 * and BOS/EOS. It reproduces llama.cpp's llm_tokenizer_bpe (c392e509):
 *
 *   bpe_load      merge ranks, the pre-tokenizer tokenizer.ggml.pre names,
 *                 and what that name implies (llama3: add BOS, ignore merges)
 *   bpe_tokenize  one raw-text fragment: unicode_regex_split (the regex list
 *                 of the pre-tokenizer, each regex hand-coded here), the
 *                 GPT-2 byte -> code point mapping, then lowest-rank-first
 *                 merges per word (llm_tokenizer_bpe_session::tokenize)
 *   bpe_piece     the raw bytes of a NORMAL token (llama_decode_text)
 */
#ifndef SAM_ENGINE_BPE_H
#define SAM_ENGINE_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/gguf.h"
#include "sam/tokenizer.h"

/* A growable list of ids (tok_encode's output), defined in tokenizer.c. */
struct tok_ivec {
	int32_t *a;
	size_t n, cap;
};

/* Append x; 0 or SAM_ENOMEM (o unchanged). */
int tok_ivec_push(struct tok_ivec *o, int32_t x);

/*
 * After tok_load has read the tokens of f (v->text and its hash): read
 * tokenizer.ggml.merges and tokenizer.ggml.pre, set v->pre,
 * v->ignore_merges, v->merges/n_merges and the merge hash, v->byte_id (the
 * token of each byte's code point), and the defaults the pre-tokenizer name
 * implies (v->add_bos for llama3, v->bos = -1 for chatglm). SAM_EFORMAT if
 * the merges are missing, SAM_EUNSUPPORTED for a known pre-tokenizer that is
 * not implemented. What it allocated is released by bpe_free (tok_free).
 */
int bpe_load(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err);
void bpe_free(struct tok_vocab *v);

/* Scratch of one tok_encode call, reused across its fragments. Zero-init. */
struct bpe_sym;
struct bpe_bigram;
struct bpe_session {
	uint32_t *cp;     /* code points of the fragment */
	uint8_t *cls;     /* their class bits */
	uint32_t *seg[2]; /* word lengths (code points), before and after a split */
	size_t cp_cap;
	char *word; /* one word, byte-level encoded */
	size_t word_cap;
	struct bpe_sym *sym;
	size_t sym_cap;
	struct bpe_bigram *heap;
	size_t heap_n, heap_cap;
};

void bpe_session_free(struct bpe_session *s);

/* Tokenize text[0..len) (raw text, no special tokens) and append the ids to out. */
int bpe_tokenize(const struct tok_vocab *v, struct bpe_session *s, const char *text, size_t len, struct tok_ivec *out,
                 struct sam_error *err);

/*
 * Bytes of NORMAL token id (in range): each code point of its text mapped
 * back to its byte; one outside the map becomes "[UNK_BYTE_0x<utf8 hex><the
 * token text>]" as in llama.cpp. Writes at most cap bytes to buf; returns
 * the full length.
 */
size_t bpe_piece(const struct tok_vocab *v, int32_t id, char *buf, size_t cap);

#endif
