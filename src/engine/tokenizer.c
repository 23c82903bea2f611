/*
 * tokenizer.c - the tokenizers of a GGUF vocabulary, reproducing llama.cpp's
 * llama-vocab.cpp (c392e509) exactly: SentencePiece-style ("llama", SPM)
 * here, byte-level BPE ("gpt2") in bpe.c.
 *
 *   tok_load    llama_vocab::impl::load: token table, defaults, special ids,
 *               text-based detection of EOT/EOM/FIM/EOG tokens (which also
 *               forces them to CONTROL), the special-token cache, and the
 *               per-model attributes (phi-3: RSTRIP); for BPE, bpe_load.
 *   tok_encode  tokenizer_st_partition (split out special-token text), then
 *               per raw fragment llm_tokenizer_spm_session (scored bigram
 *               merges over UTF-8 symbols with a binary heap, then byte
 *               fallback) or bpe_tokenize.
 *   tok_piece   token_to_piece.
 *
 * Memory: everything sized by the vocabulary or by the input is allocated
 * with malloc and reported as SAM_ENOMEM; tok_encode's scratch is freed
 * before it returns.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bpe.h"
#include "sam/tokenizer.h"

/* Keeps 2 * n_tokens (the hash capacity) and every id inside int32. */
#define TOK_MAX_TOKENS (1u << 28)
/* Longest text one tok_encode call accepts: escaped (x3) it still fits int32 offsets. */
#define TOK_MAX_TEXT ((size_t)(INT32_MAX / 4))

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space. */
static const char SPM_SPACE[3] = {'\xe2', '\x96', '\x81'};

/* ---- text -> id: open addressing over FNV-1a ---------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

/* Slot of text s[0..n): the slot holding it, or the empty slot that ends its probe. */
static uint32_t hash_slot(const struct tok_vocab *v, const char *s, size_t n)
{
	uint32_t mask = v->hash_cap - 1;
	uint32_t i = (uint32_t)fnv1a(s, n) & mask;
	for (;;) {
		int32_t id = v->hash[i];
		if (id < 0) return i;
		if (v->text[id].n == n && memcmp(v->text[id].s, s, n) == 0) return i;
		i = (i + 1) & mask;
	}
}

static int32_t lookup(const struct tok_vocab *v, const char *s, size_t n)
{
	if (!v->hash_cap || n == 0) return -1; /* no token has empty text */
	return v->hash[hash_slot(v, s, n)];
}

int32_t tok_find(const struct tok_vocab *v, const char *text, size_t len)
{
	return lookup(v, text, len);
}

static int32_t lookup_cstr(const struct tok_vocab *v, const char *s)
{
	return lookup(v, s, strlen(s));
}

/* ---- loading ------------------------------------------------------------- */

/* llama_token_type values stored in tokenizer.ggml.token_type */
static uint8_t attr_of_type(double t)
{
	if (!(t >= 0 && t <= 16)) return TOK_ATTR_UNDEFINED;
	switch ((int)t) {
	case 1: return TOK_ATTR_NORMAL;
	case 2: return TOK_ATTR_UNKNOWN;
	case 3: return TOK_ATTR_CONTROL;
	case 4: return TOK_ATTR_USER_DEFINED;
	case 5: return TOK_ATTR_UNUSED;
	case 6: return TOK_ATTR_BYTE;
	default: return TOK_ATTR_UNDEFINED;
	}
}

/*
 * A special id from key, if present: like llama.cpp, a value outside the
 * vocabulary is reported and the default kept. 0xFFFFFFFF (what converters
 * write for "none") is only logged at debug level.
 */
static int read_special_id(const struct gguf_file *f, const struct tok_vocab *v, const char *key, int32_t *id,
                           struct sam_error *err)
{
	int64_t x;
	int rc = gguf_get_int(f, key, &x, err);
	if (rc == SAM_ENOTFOUND) return 0;
	if (rc) return rc;
	if (x >= 0 && x < (int64_t)v->n_tokens) {
		*id = (int32_t)x;
		return 0;
	}
	sam_log(x == -1 || x == 0xFFFFFFFFll ? SAM_LOG_DEBUG : SAM_LOG_WARN,
	        "tokenizer: bad special token '%s' = %lld (vocabulary has %u tokens), using default id %d", key,
	        (long long)x, v->n_tokens, (int)*id);
	return 0;
}

static int read_bool(const struct gguf_file *f, const char *key, bool *out, struct sam_error *err)
{
	int rc = gguf_get_bool(f, key, out, err);
	return rc == SAM_ENOTFOUND ? 0 : rc;
}

/* Texts llama.cpp (c392e509) recognises when the metadata names no such token. */
static const char *const EOT_TEXTS[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<EOT>",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {"<|fim_prefix|>", "<fim-prefix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "begin\xef\xbd\x9c>",
                                            "<PRE>", NULL};
static const char *const FIM_SUF_TEXTS[] = {"<|fim_suffix|>", "<fim-suffix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                            "<SUF>", NULL};
static const char *const FIM_MID_TEXTS[] = {"<|fim_middle|>", "<fim-middle>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "end\xef\xbd\x9c>",
                                            "<MID>", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
static const char *const EOG_TEXTS[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<|eom_id|>", "<EOT>",   NULL};

/*
 * If *id is unset, the token of the first text of list that the vocabulary
 * has becomes it and is forced to CONTROL. (llama.cpp walks its hash map, so
 * when several texts are present its pick is unspecified.)
 */
static void detect_special(struct tok_vocab *v, const char *const *list, int32_t *id)
{
	if (*id >= 0) return;
	for (; *list; list++) {
		int32_t t = lookup_cstr(v, *list);
		if (t < 0) continue;
		*id = t;
		v->attr[t] |= TOK_ATTR_CONTROL;
		return;
	}
}

static void add_eog(struct tok_vocab *v, int32_t id)
{
	if (id < 0) return;
	for (uint32_t i = 0; i < v->n_eog; i++)
		if (v->eog[i] == id) return;
	if (v->n_eog < TOK_MAX_EOG) v->eog[v->n_eog++] = id;
}

struct len_id {
	uint64_t len;
	int32_t id;
};

/* Longest text first; equal lengths by id, so the order is deterministic. */
static int cmp_len_id(const void *a, const void *b)
{
	const struct len_id *x = a, *y = b;
	if (x->len != y->len) return x->len > y->len ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* The special-token cache: CONTROL/USER_DEFINED/UNKNOWN ids, longest text first. */
static int build_special(struct tok_vocab *v, struct sam_error *err)
{
	const uint8_t want = TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN;
	uint32_t n = 0;
	for (uint32_t i = 0; i < v->n_tokens; i++)
		n += (v->attr[i] & want) != 0;
	struct len_id *tmp = malloc((n ? n : 1) * sizeof *tmp);
	v->special = malloc((n ? n : 1) * sizeof *v->special);
	if (!tmp || !v->special) {
		free(tmp);
		return sam_errorf(err, SAM_ENOMEM, "out of memory loading %u special tokens", n);
	}
	n = 0;
	for (uint32_t i = 0; i < v->n_tokens; i++)
		if (v->attr[i] & want) tmp[n++] = (struct len_id){v->text[i].n, (int32_t)i};
	qsort(tmp, n, sizeof *tmp, cmp_len_id);
	for (uint32_t i = 0; i < n; i++)
		v->special[i] = tmp[i].id;
	v->n_special = n;
	free(tmp);
	return 0;
}

static void set_attr(struct tok_vocab *v, const char *text, uint8_t bit, bool on)
{
	int32_t id = lookup_cstr(v, text);
	if (id < 0) return; /* llama.cpp would fail to load; we just skip it */
	if (on)
		v->attr[id] |= bit;
	else
		v->attr[id] &= (uint8_t)~bit;
}

/* needle occurs in s; fold: compare s lowercased */
static bool contains(struct gguf_str s, const char *needle, bool fold)
{
	size_t n = strlen(needle);
	for (uint64_t i = 0; i + n <= s.n; i++) {
		size_t j = 0;
		while (j < n && (fold ? tolower((unsigned char)s.s[i + j]) : s.s[i + j]) == needle[j])
			j++;
		if (j == n) return true;
	}
	return false;
}

/* "Handle per token attributes" of llama.cpp: attributes chosen by model name. */
static int per_model_attrs(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err)
{
	struct gguf_str name = {"", 0}, pre = {"", 0};
	int rc = gguf_get_str(f, "general.name", &name, err);
	if (rc && rc != SAM_ENOTFOUND) return rc;
	rc = gguf_get_str(f, "tokenizer.ggml.pre", &pre, err);
	if (rc && rc != SAM_ENOTFOUND) return rc;
	if (contains(pre, "jina-v2-de", false) || contains(pre, "jina-v2-es", false) ||
	    contains(pre, "jina-v2-code", false)) {
		set_attr(v, "<mask>", TOK_ATTR_LSTRIP, true);
	} else if (contains(name, "phi-3", true) || contains(name, "phi3", true)) {
		for (uint32_t i = 0; i < v->n_special; i++)
			v->attr[v->special[i]] |= TOK_ATTR_RSTRIP;
		set_attr(v, "</s>", TOK_ATTR_RSTRIP, true);
		set_attr(v, "<unk>", TOK_ATTR_RSTRIP, false);
		set_attr(v, "<s>", TOK_ATTR_RSTRIP, false);
		set_attr(v, "<|endoftext|>", TOK_ATTR_RSTRIP, false);
	}
	return 0;
}

static int load_tokens(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err)
{
	const struct gguf_value *toks, *scores = NULL, *types = NULL;
	int rc = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_T_STRING, &toks, err);
	if (rc == SAM_ENOTFOUND) return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.tokens is missing");
	if (rc) return rc;
	if (toks->arr.n == 0) return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.tokens is empty");
	if (toks->arr.n > TOK_MAX_TOKENS)
		return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.tokens has %llu tokens (limit %u)",
		                  (unsigned long long)toks->arr.n, TOK_MAX_TOKENS);
	uint32_t n = (uint32_t)toks->arr.n;
	v->n_tokens = n;

	rc = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_T_COUNT, &scores, err);
	if (rc == SAM_ENOTFOUND)
		scores = NULL;
	else if (rc)
		return rc;
	else if (scores->arr.type != GGUF_T_F32)
		return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.scores is an array of %s, expected f32",
		                  gguf_vtype_name(scores->arr.type));
	else if (scores->arr.n != n)
		return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.scores has %llu entries for %u tokens",
		                  (unsigned long long)scores->arr.n, n);

	rc = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_T_COUNT, &types, err);
	if (rc == SAM_ENOTFOUND)
		types = NULL;
	else if (rc)
		return rc;
	else if (types->arr.type == GGUF_T_STRING || types->arr.type == GGUF_T_F32 || types->arr.type == GGUF_T_F64 ||
	         types->arr.type == GGUF_T_BOOL)
		return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.token_type is an array of %s, expected i32",
		                  gguf_vtype_name(types->arr.type));
	else if (types->arr.n != n)
		return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.token_type has %llu entries for %u tokens",
		                  (unsigned long long)types->arr.n, n);

	v->text = malloc(n * sizeof *v->text);
	v->score = malloc(n * sizeof *v->score);
	v->attr = malloc(n);
	v->hash_cap = 16;
	while (v->hash_cap < 2 * n)
		v->hash_cap *= 2;
	v->hash = malloc(v->hash_cap * sizeof *v->hash);
	if (!v->text || !v->score || !v->attr || !v->hash)
		return sam_errorf(err, SAM_ENOMEM, "out of memory loading %u tokens", n);

	size_t n_empty = 0;
	for (uint32_t i = 0; i < n; i++) {
		v->text[i] = gguf_arr_str(toks, i);
		if (v->text[i].n == 0) n_empty++;
		v->score[i] = scores ? (float)gguf_arr_num(scores, i) : 0.0f;
		v->attr[i] = types ? attr_of_type(gguf_arr_num(types, i)) : TOK_ATTR_NORMAL;
	}
	if (n_empty) {
		/* llama.cpp renames an empty token to "[EMPTY_<id>]" */
		enum { NAME_MAX_LEN = 24 };
		v->owned_text = malloc(n_empty * NAME_MAX_LEN);
		if (!v->owned_text) return sam_errorf(err, SAM_ENOMEM, "out of memory loading tokens");
		char *p = v->owned_text;
		for (uint32_t i = 0; i < n; i++) {
			if (v->text[i].n) continue;
			int len = snprintf(p, NAME_MAX_LEN, "[EMPTY_%u]", i);
			sam_log(SAM_LOG_WARN, "tokenizer: empty token at index %u", i);
			v->text[i].s = p;
			v->text[i].n = (uint64_t)len;
			p += NAME_MAX_LEN;
		}
	}

	/* token_to_id[text] = i in order: a later duplicate text wins */
	memset(v->hash, 0xff, v->hash_cap * sizeof *v->hash);
	for (uint32_t i = 0; i < n; i++)
		v->hash[hash_slot(v, v->text[i].s, v->text[i].n)] = (int32_t)i;
	return 0;
}

int tok_load(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err)
{
	memset(v, 0, sizeof *v);
	struct gguf_str model;
	int rc = gguf_get_str(f, "tokenizer.ggml.model", &model, err);
	if (rc == SAM_ENOTFOUND) {
		rc = sam_errorf(err, SAM_EFORMAT, "the model has no tokenizer (tokenizer.ggml.model is missing)");
		goto fail;
	}
	if (rc) goto fail;
	if (gguf_str_eq(model, "llama")) {
		v->type = TOK_SPM;
		v->bos = 1;
		v->eos = 2;
		v->unk = 0;
		v->add_bos = true;
		v->add_space_prefix = true;
	} else if (gguf_str_eq(model, "gpt2")) {
		v->type = TOK_BPE;
		v->bos = 11;
		v->eos = 11;
		v->unk = -1;
		v->add_bos = false;
		v->add_space_prefix = false; /* read below, but BPE never adds one (as llama.cpp) */
	} else {
		rc = sam_errorf(err, SAM_EUNSUPPORTED,
		                "tokenizer model '%.*s' is not supported (only 'llama' and 'gpt2')",
		                (int)(model.n > 64 ? 64 : model.n), model.s);
		goto fail;
	}
	v->pad = -1;
	v->eot = -1;
	v->add_eos = false;

	if ((rc = read_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err))) goto fail;
	if ((rc = load_tokens(v, f, err))) goto fail;

	if (v->type == TOK_BPE) {
		/* merges, the pre-tokenizer (and the defaults its name implies), byte ids */
		if ((rc = bpe_load(v, f, err))) goto fail;
	} else {
		for (int b = 0; b < 256; b++) {
			char hex[7];
			snprintf(hex, sizeof hex, "<0x%02X>", b);
			char c = (char)b;
			v->byte_id[b] = lookup_cstr(v, hex);
			/* llama.cpp falls back to the byte as a C string, so never for NUL */
			if (v->byte_id[b] < 0 && b != 0) v->byte_id[b] = lookup(v, &c, 1);
		}
	}

	/* special ids: the metadata overrides the defaults (later keys win) */
	int32_t eom = -1, sep = -1, mask = -1;
	int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
	const struct {
		const char *key;
		int32_t *id;
	} ids[] = {
	    {"tokenizer.ggml.bos_token_id", &v->bos},      {"tokenizer.ggml.eos_token_id", &v->eos},
	    {"tokenizer.ggml.eot_token_id", &v->eot},      {"tokenizer.ggml.eom_token_id", &eom},
	    {"tokenizer.ggml.unknown_token_id", &v->unk},  {"tokenizer.ggml.seperator_token_id", &sep},
	    {"tokenizer.ggml.padding_token_id", &v->pad},  {"tokenizer.ggml.mask_token_id", &mask},
	    {"tokenizer.ggml.fim_pre_token_id", &fim_pre}, {"tokenizer.ggml.fim_suf_token_id", &fim_suf},
	    {"tokenizer.ggml.fim_mid_token_id", &fim_mid}, {"tokenizer.ggml.fim_pad_token_id", &fim_pad},
	    {"tokenizer.ggml.fim_rep_token_id", &fim_rep}, {"tokenizer.ggml.fim_sep_token_id", &fim_sep},
	    {"tokenizer.ggml.prefix_token_id", &fim_pre}, /* deprecated names */
	    {"tokenizer.ggml.suffix_token_id", &fim_suf},  {"tokenizer.ggml.middle_token_id", &fim_mid},
	};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		if ((rc = read_special_id(f, v, ids[i].key, ids[i].id, err))) goto fail;
	/* a default may itself be outside a tiny vocabulary */
	int32_t *all[] = {&v->bos, &v->eos, &v->unk};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (*all[i] >= (int32_t)v->n_tokens) *all[i] = -1;
	if ((rc = read_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos, err))) goto fail;
	if ((rc = read_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos, err))) goto fail;

	detect_special(v, EOT_TEXTS, &v->eot);
	detect_special(v, EOM_TEXTS, &eom);
	detect_special(v, FIM_PRE_TEXTS, &fim_pre);
	detect_special(v, FIM_SUF_TEXTS, &fim_suf);
	detect_special(v, FIM_MID_TEXTS, &fim_mid);
	detect_special(v, FIM_PAD_TEXTS, &fim_pad);
	detect_special(v, FIM_REP_TEXTS, &fim_rep);
	detect_special(v, FIM_SEP_TEXTS, &fim_sep);

	/* end-of-generation tokens; those found by text are forced to CONTROL */
	add_eog(v, fim_pad);
	add_eog(v, fim_rep);
	add_eog(v, fim_sep);
	for (const char *const *t = EOG_TEXTS; *t; t++) {
		int32_t id = lookup_cstr(v, *t);
		if (id < 0) continue;
		add_eog(v, id);
		v->attr[id] |= TOK_ATTR_CONTROL;
	}
	add_eog(v, v->eos);
	add_eog(v, v->eot);
	add_eog(v, eom);

	if ((rc = build_special(v, err))) goto fail;
	if ((rc = per_model_attrs(v, f, err))) goto fail;
	return 0;
fail:
	tok_free(v);
	return rc;
}

void tok_free(struct tok_vocab *v)
{
	free(v->text);
	free(v->score);
	free(v->attr);
	free(v->hash);
	free(v->special);
	free(v->owned_text);
	bpe_free(v);
	memset(v, 0, sizeof *v);
}

bool tok_is_eog(const struct tok_vocab *v, int32_t id)
{
	if (id < 0) return false;
	for (uint32_t i = 0; i < v->n_eog; i++)
		if (v->eog[i] == id) return true;
	return false;
}

/* ---- encoding ----------------------------------------------------------- */

int tok_ivec_push(struct tok_ivec *o, int32_t x)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		int32_t *a = realloc(o->a, cap * sizeof *a);
		if (!a) return SAM_ENOMEM;
		o->a = a;
		o->cap = cap;
	}
	o->a[o->n++] = x;
	return 0;
}

/* A piece of the input: a token already recognised (id >= 0) or raw text. */
struct frag {
	int32_t id;
	size_t off, len; /* raw text: text[off..off+len), never empty */
};

struct fvec {
	struct frag *a;
	size_t n, cap;
};

static int fvec_push(struct fvec *o, int32_t id, size_t off, size_t len)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		struct frag *a = realloc(o->a, cap * sizeof *a);
		if (!a) return SAM_ENOMEM;
		o->a = a;
		o->cap = cap;
	}
	o->a[o->n++] = (struct frag){id, off, len};
	return 0;
}

/* First occurrence of needle (nn > 0) in hay[0..hn), or NULL. */
static const char *find_bytes(const char *hay, size_t hn, const char *needle, size_t nn)
{
	if (nn > hn) return NULL;
	const char *end = hay + (hn - nn) + 1;
	for (const char *p = hay; p < end; p++) {
		p = memchr(p, needle[0], (size_t)(end - p));
		if (!p) return NULL;
		if (memcmp(p, needle, nn) == 0) return p;
	}
	return NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * tokenizer_st_partition: for each special token, longest first, split every
 * occurrence out of the raw fragments (left to right, non-overlapping).
 * *fr holds the fragments on entry and on return; *tmp is scratch.
 */
static int partition(const struct tok_vocab *v, const char *text, bool parse_special, struct fvec *fr, struct fvec *tmp)
{
	for (uint32_t s = 0; s < v->n_special; s++) {
		int32_t id = v->special[s];
		uint8_t attr = v->attr[id];
		if (!parse_special && (attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
		const char *t = v->text[id].s;
		size_t tn = v->text[id].n;
		if (tn == 0) continue;

		/* most tokens occur nowhere: look before copying the list */
		size_t first = fr->n;
		for (size_t i = 0; i < fr->n && first == fr->n; i++)
			if (fr->a[i].id < 0 && find_bytes(text + fr->a[i].off, fr->a[i].len, t, tn)) first = i;
		if (first == fr->n) continue;

		tmp->n = 0;
		for (size_t i = 0; i < fr->n; i++) {
			struct frag g = fr->a[i];
			if (i < first || g.id >= 0) {
				if (fvec_push(tmp, g.id, g.off, g.len)) return SAM_ENOMEM;
				continue;
			}
			size_t pos = g.off, end = g.off + g.len;
			const char *m;
			while ((m = find_bytes(text + pos, end - pos, t, tn))) {
				size_t at = (size_t)(m - text), left = at - pos;
				if (attr & TOK_ATTR_LSTRIP)
					while (left > 0 && is_space(text[pos + left - 1]))
						left--;
				if (left > 0 && fvec_push(tmp, -1, pos, left)) return SAM_ENOMEM;
				if (fvec_push(tmp, id, 0, 0)) return SAM_ENOMEM;
				pos = at + tn;
				if (attr & TOK_ATTR_RSTRIP)
					while (pos < end && is_space(text[pos]))
						pos++;
			}
			if (pos < end && fvec_push(tmp, -1, pos, end - pos)) return SAM_ENOMEM;
		}
		struct fvec swap = *fr;
		*fr = *tmp;
		*tmp = swap;
	}
	return 0;
}

struct sym {
	int32_t prev, next; /* neighbours in the list, -1 at the ends */
	uint32_t off, n;    /* text in the session buffer; n == 0 once merged away */
};

struct bigram {
	float score;
	int32_t left, right;
	uint32_t size; /* bytes of left + right when pushed; stale if they changed */
};

/* Scratch of one tok_encode call, grown as needed and reused across fragments. */
struct session {
	char *buf;
	size_t buf_cap;
	struct sym *sym;
	size_t sym_cap;
	struct bigram *heap;
	size_t heap_n, heap_cap;
};

static void session_free(struct session *s)
{
	free(s->buf);
	free(s->sym);
	free(s->heap);
}

/* llm_bigram_spm::comparator: l is below r in the max-heap */
static bool bigram_less(const struct bigram *l, const struct bigram *r)
{
	return l->score < r->score || (l->score == r->score && l->left > r->left);
}

static int heap_push(struct session *s, struct bigram b)
{
	struct bigram *h = sam_grow(s->heap, &s->heap_cap, s->heap_n + 1, sizeof *h);
	if (!h) return SAM_ENOMEM;
	s->heap = h;
	size_t i = s->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!bigram_less(&s->heap[p], &b)) break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = b;
	return 0;
}

static struct bigram heap_pop(struct session *s)
{
	struct bigram top = s->heap[0], last = s->heap[--s->heap_n];
	size_t i = 0, n = s->heap_n;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n) break;
		if (c + 1 < n && bigram_less(&s->heap[c], &s->heap[c + 1])) c++;
		if (!bigram_less(&last, &s->heap[c])) break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n) s->heap[i] = last;
	return top;
}

/* try_add_bigram: queue the merge of two neighbours if their text is a token. */
static int try_add_bigram(const struct tok_vocab *v, struct session *s, int32_t left, int32_t right)
{
	if (left < 0 || right < 0) return 0;
	uint32_t size = s->sym[left].n + s->sym[right].n;
	int32_t id = lookup(v, s->buf + s->sym[left].off, size);
	if (id < 0) return 0;
	return heap_push(s, (struct bigram){v->score[id], left, right, size});
}

/* llama.cpp's unicode_len_utf8: sequence length from the high nibble of the lead byte. */
static uint32_t utf8_len(uint8_t c)
{
	static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
	return len[c >> 4];
}

/*
 * llm_tokenizer_spm_session::tokenize over s->buf[0..n). Its rev_merge map
 * is not needed: a symbol is only resegmented when its text is no token,
 * while every text rev_merge holds is a token, so that lookup never hits.
 * What is left is: a token, or each byte as its byte token (else unk).
 */
static int spm_session(const struct tok_vocab *v, struct session *s, size_t n, struct tok_ivec *out,
                       struct sam_error *err)
{
	struct sym *sy = sam_grow(s->sym, &s->sym_cap, n, sizeof *sy);
	if (!sy) return sam_errorf(err, SAM_ENOMEM, "out of memory tokenizing %zu bytes", n);
	s->sym = sy;
	int32_t n_sym = 0;
	for (size_t off = 0; off < n;) {
		size_t len = utf8_len((uint8_t)s->buf[off]);
		if (len > n - off) len = n - off;
		s->sym[n_sym] = (struct sym){n_sym - 1, off + len == n ? -1 : n_sym + 1, (uint32_t)off, (uint32_t)len};
		n_sym++;
		off += len;
	}
	if (n_sym == 0) return 0;

	s->heap_n = 0;
	for (int32_t i = 1; i < n_sym; i++)
		if (try_add_bigram(v, s, i - 1, i)) goto nomem;

	while (s->heap_n) {
		struct bigram b = heap_pop(s);
		struct sym *l = &s->sym[b.left], *r = &s->sym[b.right];
		if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0) s->sym[r->next].prev = b.left;
		if (try_add_bigram(v, s, l->prev, b.left) || try_add_bigram(v, s, b.left, l->next)) goto nomem;
	}

	for (int32_t i = 0; i != -1; i = s->sym[i].next) {
		const struct sym *y = &s->sym[i];
		int32_t id = lookup(v, s->buf + y->off, y->n);
		if (id >= 0) {
			if (tok_ivec_push(out, id)) goto nomem;
			continue;
		}
		for (uint32_t j = 0; j < y->n; j++) {
			uint8_t c = (uint8_t)s->buf[y->off + j];
			id = v->byte_id[c] >= 0 ? v->byte_id[c] : v->unk;
			if (id < 0)
				return sam_errorf(err, SAM_EFORMAT,
				                  "byte 0x%02X has no token and the vocabulary has no unknown token",
				                  c);
			if (tok_ivec_push(out, id)) goto nomem;
		}
	}
	return 0;
nomem:
	return sam_errorf(err, SAM_ENOMEM, "out of memory tokenizing %zu bytes", n);
}

/* Escape a raw fragment (optional leading space, ' ' -> U+2581) into s->buf and tokenize it. */
static int spm_fragment(const struct tok_vocab *v, struct session *s, const char *t, size_t len, bool prefix,
                        struct tok_ivec *out, struct sam_error *err)
{
	size_t spaces = prefix;
	for (size_t i = 0; i < len; i++)
		spaces += t[i] == ' ';
	size_t n = len + prefix + 2 * spaces;
	char *buf = sam_grow(s->buf, &s->buf_cap, n, 1);
	if (!buf) return sam_errorf(err, SAM_ENOMEM, "out of memory tokenizing %zu bytes", len);
	s->buf = buf;
	char *p = s->buf;
	if (prefix) {
		memcpy(p, SPM_SPACE, 3);
		p += 3;
	}
	for (size_t i = 0; i < len; i++) {
		if (t[i] == ' ') {
			memcpy(p, SPM_SPACE, 3);
			p += 3;
		} else {
			*p++ = t[i];
		}
	}
	return spm_session(v, s, n, out, err);
}

int tok_encode(const struct tok_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
               int32_t **ids, size_t *n, struct sam_error *err)
{
	*ids = NULL;
	*n = 0;
	if (v->type != TOK_SPM && v->type != TOK_BPE) return sam_errorf(err, SAM_EINVAL, "tokenizer not loaded");
	if (len > TOK_MAX_TEXT)
		return sam_errorf(err, SAM_ERANGE, "text of %zu bytes is too long to tokenize (limit %zu)", len,
		                  TOK_MAX_TEXT);

	struct tok_ivec out = {0};
	struct fvec fr = {0}, tmp = {0};
	struct session s = {0};
	struct bpe_session bs = {0};
	int rc = SAM_ENOMEM;
	if (tok_ivec_push(&out, 0)) goto nomem; /* allocate, so *ids is never NULL */
	out.n = 0;

	if (len > 0) {
		if (fvec_push(&fr, -1, 0, len)) goto nomem;
		if (partition(v, text, parse_special, &fr, &tmp)) goto nomem;
	}

	bool prev_special = true; /* the first text gets the space prefix */
	if (add_special && v->add_bos && v->bos >= 0 && tok_ivec_push(&out, v->bos)) goto nomem;
	for (size_t i = 0; i < fr.n; i++) {
		if (fr.a[i].id >= 0) {
			if (tok_ivec_push(&out, fr.a[i].id)) goto nomem;
			prev_special = true;
			continue;
		}
		if (v->type == TOK_BPE)
			rc = bpe_tokenize(v, &bs, text + fr.a[i].off, fr.a[i].len, &out, err);
		else
			rc = spm_fragment(v, &s, text + fr.a[i].off, fr.a[i].len, v->add_space_prefix && prev_special,
			                  &out, err);
		if (rc) goto fail;
		prev_special = false;
	}
	if (add_special && v->add_eos && v->eos >= 0 && tok_ivec_push(&out, v->eos)) goto nomem;

	free(fr.a);
	free(tmp.a);
	session_free(&s);
	bpe_session_free(&bs);
	*ids = out.a;
	*n = out.n;
	return 0;
nomem:
	rc = sam_errorf(err, SAM_ENOMEM, "out of memory tokenizing %zu bytes", len);
fail:
	free(out.a);
	free(fr.a);
	free(tmp.a);
	session_free(&s);
	bpe_session_free(&bs);
	return rc;
}

/* ---- decoding ----------------------------------------------------------- */

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t n)
{
	if (at < cap) memcpy(buf + at, s, n < cap - at ? n : cap - at);
	return at + n;
}

size_t tok_piece(const struct tok_vocab *v, int32_t id, bool special, char *buf, size_t cap)
{
	if (id < 0 || (uint32_t)id >= v->n_tokens) return 0;
	uint8_t attr = v->attr[id];
	struct gguf_str t = v->text[id];
	if (!special && (attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) return 0;
	if (attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) return put(buf, cap, 0, t.s, t.n);
	if (v->type == TOK_BPE) return attr & TOK_ATTR_NORMAL ? bpe_piece(v, id, buf, cap) : 0;
	if (attr & TOK_ATTR_NORMAL) {
		/* U+2581 -> ' ' */
		size_t at = 0, i = 0, run = 0;
		while (i < t.n) {
			if (i + 3 <= t.n && memcmp(t.s + i, SPM_SPACE, 3) == 0) {
				at = put(buf, cap, at, t.s + run, i - run);
				at = put(buf, cap, at, " ", 1);
				i += 3;
				run = i;
			} else {
				i++;
			}
		}
		return put(buf, cap, at, t.s + run, t.n - run);
	}
	if (attr & TOK_ATTR_BYTE) {
		/* token_to_byte: strtol(text.substr(3, 2), 16) */
		char hex[3] = {0};
		for (size_t i = 0; i < 2 && 3 + i < t.n; i++)
			hex[i] = t.s[3 + i];
		char b = (char)(uint8_t)strtol(hex, NULL, 16);
		return put(buf, cap, 0, &b, 1);
	}
	return 0;
}
