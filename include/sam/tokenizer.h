/*
 * tokenizer.h - text <-> token ids, from the vocabulary stored in a GGUF.
 *
 * Supported tokenizer.ggml.model values:
 *   "llama"  SentencePiece-style (SPM): scored bigram merges, byte fallback,
 *            U+2581 for spaces, optional space prefix.
 *   "gpt2"   byte-level BPE: text is split into words by the pre-tokenizer
 *            that tokenizer.ggml.pre names (enum tok_pre), each word's bytes
 *            are mapped to printable code points (space -> U+0120) and merged
 *            by the ranks of tokenizer.ggml.merges ("left right", rank =
 *            index), lowest rank first. Text that is not UTF-8 becomes U+FFFD
 *            first, as in llama.cpp.
 * Other models (e.g. "bert", "t5") give SAM_EUNSUPPORTED naming the model,
 * and so does a known pre-tokenizer that is not implemented (e.g. "tekken").
 *
 * Behaviour follows llama.cpp's tokenizer (llama-vocab.cpp) exactly, so ids
 * match its test vectors: special/user-defined token text is split out
 * first (control tokens only when parse_special), the rest is tokenized.
 *
 * Ownership: a struct tok_vocab borrows token texts (and BPE merges) from
 * the gguf_file it was loaded from; that file must stay open until
 * tok_free().
 */
#ifndef SAM_TOKENIZER_H
#define SAM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/gguf.h"

enum tok_type { TOK_SPM = 1, TOK_BPE = 2 };

/*
 * BPE pre-tokenizers: the regex lists of llama.cpp's llm_tokenizer_bpe, one
 * value per distinct list. tokenizer.ggml.pre names map onto them as in
 * llama.cpp (e.g. "llama-bpe" -> LLAMA3, "deepseek-r1-qwen" -> QWEN2,
 * "smollm" and "refact" -> STARCODER, "mpt" -> GPT2); a missing or unknown
 * name is DEFAULT, with a warning (gpt-neox GGUFs have none).
 */
enum tok_pre {
	TOK_PRE_DEFAULT = 0,
	TOK_PRE_GPT2,
	TOK_PRE_LLAMA3,
	TOK_PRE_QWEN2,
	TOK_PRE_DEEPSEEK_LLM,
	TOK_PRE_DEEPSEEK_CODER,
	TOK_PRE_FALCON,
	TOK_PRE_STARCODER,
};

/* Token attributes, as llama.cpp derives them from tokenizer.ggml.token_type. */
enum tok_attr {
	TOK_ATTR_UNDEFINED = 0,
	TOK_ATTR_UNKNOWN = 1 << 0,
	TOK_ATTR_UNUSED = 1 << 1,
	TOK_ATTR_NORMAL = 1 << 2,
	TOK_ATTR_CONTROL = 1 << 3,
	TOK_ATTR_USER_DEFINED = 1 << 4,
	TOK_ATTR_BYTE = 1 << 5,
	/* llama.cpp sets these by model name (phi-3: RSTRIP on special tokens):
	 * whitespace left (LSTRIP) / right (RSTRIP) of the token's text is dropped
	 * when the token is split out of the input. */
	TOK_ATTR_LSTRIP = 1 << 6,
	TOK_ATTR_RSTRIP = 1 << 7,
};

#define TOK_MAX_EOG 16

struct tok_vocab {
	int type;            /* enum tok_type */
	uint32_t n_tokens;
	struct gguf_str *text; /* [n_tokens], into the GGUF mapping */
	float *score;          /* [n_tokens] */
	uint8_t *attr;         /* [n_tokens] enum tok_attr bits */
	int32_t bos, eos, unk, pad, eot; /* -1 when the model has none */
	bool add_bos, add_eos, add_space_prefix;
	/* private: text -> id hash (open addressing), special tokens by length */
	int32_t *hash;
	uint32_t hash_cap;
	int32_t *special; /* ids of CONTROL/USER_DEFINED/UNKNOWN tokens, longest text first */
	uint32_t n_special;
	int32_t byte_id[256]; /* token of each byte (byte fallback), -1 if none */
	int32_t eog[TOK_MAX_EOG]; /* end-of-generation ids (EOS, EOT, EOM, "<|end|>", ...) */
	uint32_t n_eog;
	char *owned_text; /* texts of tokens stored empty ("[EMPTY_i]", as llama.cpp names them) */
	/* BPE only (type TOK_BPE); zero for SPM */
	int pre;            /* enum tok_pre */
	bool ignore_merges; /* a word that is itself a token is not merged (llama3) */
	const struct gguf_value *merges; /* tokenizer.ggml.merges, in the GGUF mapping */
	uint32_t n_merges;
	/* private: (pair, rank) hash: slot = (fnv >> 32) << 32 | (rank + 1), 0 empty */
	uint64_t *merge_hash;
	uint32_t merge_hash_cap;
};

/* Load the vocabulary of f. On failure v is zeroed and err says why. */
int tok_load(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err);
void tok_free(struct tok_vocab *v);

/*
 * Tokenize text[0..len). add_special: add BOS/EOS as the metadata says.
 * parse_special: recognise control-token text (e.g. "<s>") as that token.
 * On success *ids (malloc'd, caller frees) holds *n ids. Invalid UTF-8 is
 * accepted as llama.cpp does: SPM tokenizes it bytewise, BPE replaces each
 * bad byte with U+FFFD.
 */
int tok_encode(const struct tok_vocab *v, const char *text, size_t len, bool add_special,
	       bool parse_special, int32_t **ids, size_t *n, struct sam_error *err);

/*
 * Text of one token as it should be printed: spaces restored, byte tokens
 * as their byte; for BPE, the byte-level code points turned back into the
 * raw bytes (a code point outside the byte map renders as llama.cpp's
 * "[UNK_BYTE_0x..]"). User-defined tokens render verbatim. Control and
 * unknown tokens (e.g. <unk>) render as "" unless special, as in llama.cpp.
 * Writes at most cap bytes to buf (not NUL-terminated) and returns the full
 * length, so a return > cap means buf was too small. id out of range: 0.
 */
size_t tok_piece(const struct tok_vocab *v, int32_t id, bool special, char *buf, size_t cap);

/* Id of a token's exact text, or -1. */
int32_t tok_find(const struct tok_vocab *v, const char *text, size_t len);

/* True for end-of-generation tokens (EOS, EOT). */
bool tok_is_eog(const struct tok_vocab *v, int32_t id);

#endif
