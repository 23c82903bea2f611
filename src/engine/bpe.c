/*
 * bpe.c - byte-level BPE (tokenizer.ggml.model = "gpt2"), reproducing
 * llama.cpp's llm_tokenizer_bpe and unicode_regex_split (c392e509). See
 * bpe.h for the parts.
 *
 * Pre-tokenization. llama.cpp splits the text with a list of regexes, each
 * applied to every piece the previous ones left ("words"): matches and the
 * gaps between them both become words. Two regexes have hand-written
 * splitters in llama.cpp (GPT-2's and Llama 3's); the others run through
 * std::regex, on the text "collapsed" to one byte per code point when the
 * regex uses \p{..} (non-ASCII code points become a byte per category, and
 * whitespace becomes \v), else on std::wregex with non-ASCII whitespace
 * turned into \v. Every regex of the lists here is a stage below, written by
 * hand with the semantics it has there (ECMAScript, leftmost match, first
 * alternative wins). The classes a regex uses are evaluated the same way:
 *   \s      whitespace of uni_is_space (what \s sees of both text forms)
 *   \p{X}   the general category group X (ASCII: the same, by the ranges
 *           llama.cpp substitutes)
 *   [...]   explicit code point ranges (std::wregex path: a non-ASCII
 *           whitespace code point is \v there, so no range holds it)
 *
 * Qwen2's regex is Llama 3's with \p{N} for \p{N}{1,3}; std::regex gives it
 * exactly the Llama 3 splitter's result with one-digit numbers.
 *
 * Merges. Each word's bytes become GPT-2's printable code points (space ->
 * U+0120), one symbol per byte; the adjacent pair whose "left right" is the
 * earliest merge is merged first (ties: the leftmost pair), until no pair is
 * a merge. Each final symbol is its token, or else the single-byte tokens of
 * its encoded bytes that exist (llama.cpp's fallback; others are dropped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bpe.h"
#include "engine/unicode.h"

/* ---- GPT-2's byte <-> code point map ------------------------------------ */

/*
 * Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the 68
 * others (0x00..0x20, 0x7F..0xA0, 0xAD), in order, are U+0100..U+0143.
 */
static uint32_t byte_to_cp(uint8_t b)
{
	if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
	if (b <= 0x20) return 0x100u + b;
	if (b <= 0xA0) return 0x100u + 33 + (b - 0x7Fu);
	return 0x100u + 67; /* 0xAD */
}

/* The byte code point cp stands for, or -1. */
static int cp_to_byte(uint32_t cp)
{
	if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
	if (cp < 0x100 || cp > 0x143) return -1;
	uint32_t i = cp - 0x100;
	if (i < 33) return (int)i;
	if (i < 67) return (int)(0x7F + i - 33);
	return 0xAD;
}

/* ---- merge ranks: "left right" -> index ---------------------------------- */

#define FNV_INIT 1469598103934665603ull

static uint64_t fnv1a_more(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

static struct gguf_str merge_str(const struct tok_vocab *v, uint32_t rank)
{
	return gguf_arr_str(v->merges, rank);
}

/*
 * Rank of the merge of left (ln bytes) and right (rn bytes), or -1.
 * llama.cpp keys its ranks by the pair (text before, text after the first
 * space at index >= 1 of the merge string), keeping the first of equal
 * pairs. Symbol texts never contain a space byte (the byte map moves 0x20 to
 * U+0120), so for them that pair matches exactly when the merge string is
 * left + " " + right, which is what is hashed and compared here.
 */
static int32_t merge_rank(const struct tok_vocab *v, const char *left, size_t ln, const char *right, size_t rn)
{
	uint64_t h = fnv1a_more(fnv1a_more(fnv1a_more(FNV_INIT, left, ln), " ", 1), right, rn);
	uint32_t mask = v->merge_hash_cap - 1, tag = (uint32_t)(h >> 32);
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		uint64_t e = v->merge_hash[i];
		if (!e) return -1;
		if ((uint32_t)(e >> 32) != tag) continue;
		uint32_t rank = (uint32_t)e - 1;
		struct gguf_str m = merge_str(v, rank);
		if (m.n == ln + 1 + rn && memcmp(m.s, left, ln) == 0 && m.s[ln] == ' ' &&
		    memcmp(m.s + ln + 1, right, rn) == 0)
			return (int32_t)rank;
	}
}

static int load_merges(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err)
{
	const struct gguf_value *arr;
	int rc = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_T_STRING, &arr, err);
	if (rc == SAM_ENOTFOUND)
		return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.merges is missing (a gpt2 tokenizer needs it)");
	if (rc) return rc;
	if (arr->arr.n > (1u << 28))
		return sam_errorf(err, SAM_EFORMAT, "tokenizer.ggml.merges has %llu entries (limit %u)",
		                  (unsigned long long)arr->arr.n, 1u << 28);
	v->merges = arr;
	v->n_merges = (uint32_t)arr->arr.n;
	v->merge_hash_cap = 16;
	while (v->merge_hash_cap < 2 * v->n_merges)
		v->merge_hash_cap *= 2;
	v->merge_hash = calloc(v->merge_hash_cap, sizeof *v->merge_hash);
	if (!v->merge_hash) return sam_errorf(err, SAM_ENOMEM, "out of memory loading %u merges", v->n_merges);
	uint32_t mask = v->merge_hash_cap - 1;
	for (uint32_t r = 0; r < v->n_merges; r++) {
		struct gguf_str m = merge_str(v, r);
		uint64_t h = fnv1a_more(FNV_INIT, m.s, m.n);
		uint32_t tag = (uint32_t)(h >> 32), i = (uint32_t)h & mask;
		for (;; i = (i + 1) & mask) {
			uint64_t e = v->merge_hash[i];
			if (!e) break;
			if ((uint32_t)(e >> 32) != tag) continue;
			struct gguf_str o = merge_str(v, (uint32_t)e - 1);
			if (o.n == m.n && memcmp(o.s, m.s, m.n) == 0) break; /* a repeat: the first rank stays */
		}
		if (!v->merge_hash[i]) v->merge_hash[i] = (uint64_t)tag << 32 | (r + 1);
	}
	return 0;
}

/* ---- pre-tokenizer names -------------------------------------------------- */

enum { PRE_ADD_BOS = 1, PRE_IGNORE_MERGES = 2, PRE_NO_BOS = 4 };

/* tokenizer.ggml.pre values and the regex list llama.cpp uses for each. */
static const struct {
	const char *name;
	uint8_t pre, flags;
} PRE_NAMES[] = {
    {"default", TOK_PRE_DEFAULT, 0},
    {"llama3", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"llama-v3", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"llama-bpe", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"falcon3", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"falcon-h1", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"pixtral", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"midm-2.0", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"lfm2", TOK_PRE_LLAMA3, PRE_ADD_BOS | PRE_IGNORE_MERGES},
    {"dbrx", TOK_PRE_LLAMA3, 0},
    {"smaug-bpe", TOK_PRE_LLAMA3, 0},
    {"glm4", TOK_PRE_LLAMA3, PRE_NO_BOS},
    {"chatglm-bpe", TOK_PRE_LLAMA3, PRE_NO_BOS},
    {"deepseek-llm", TOK_PRE_DEEPSEEK_LLM, 0},
    {"deepseek-coder", TOK_PRE_DEEPSEEK_CODER, 0},
    {"falcon", TOK_PRE_FALCON, 0},
    {"mpt", TOK_PRE_GPT2, 0},
    {"gpt-2", TOK_PRE_GPT2, 0},
    {"phi-2", TOK_PRE_GPT2, 0},
    {"jina-es", TOK_PRE_GPT2, 0},
    {"jina-de", TOK_PRE_GPT2, 0},
    {"gigachat", TOK_PRE_GPT2, 0},
    {"jina-v2-es", TOK_PRE_GPT2, 0},
    {"jina-v2-de", TOK_PRE_GPT2, 0},
    {"a.x-4.0", TOK_PRE_GPT2, 0},
    {"mellum", TOK_PRE_GPT2, 0},
    {"exaone4", TOK_PRE_GPT2, 0},
    {"olmo", TOK_PRE_GPT2, 0},
    {"jais", TOK_PRE_GPT2, 0},
    {"trillion", TOK_PRE_GPT2, 0},
    {"granite-docling", TOK_PRE_GPT2, 0},
    /* llama.cpp also adds a SEP token for these when add_special; we do not */
    {"jina-v1-en", TOK_PRE_GPT2, 0},
    {"jina-v2-code", TOK_PRE_GPT2, 0},
    {"roberta-bpe", TOK_PRE_GPT2, 0},
    {"starcoder", TOK_PRE_STARCODER, 0},
    {"refact", TOK_PRE_STARCODER, 0},
    {"command-r", TOK_PRE_STARCODER, 0},
    {"smollm", TOK_PRE_STARCODER, 0},
    {"codeshell", TOK_PRE_STARCODER, 0},
    {"exaone", TOK_PRE_STARCODER, 0},
    {"minerva-7b", TOK_PRE_STARCODER, 0},
    {"qwen2", TOK_PRE_QWEN2, 0},
    {"deepseek-r1-qwen", TOK_PRE_QWEN2, 0},
    {"kormo", TOK_PRE_QWEN2, 0},
    {"stablelm2", TOK_PRE_QWEN2, 0},
    {"megrez", TOK_PRE_QWEN2, 0},
    {"hunyuan", TOK_PRE_QWEN2, 0},
    {"grok-2", TOK_PRE_QWEN2, 0},
};

/* Names llama.cpp knows with regexes not implemented here: refused, not guessed. */
static const char *const PRE_UNSUPPORTED[] = {
    "deepseek-v3", "hunyuan-dense", "poro-chat",  "bloom",   "gpt3-finnish", "viking",
    "tekken",      "chameleon",     "gpt-4o",     "llama4",  "superbpe",     "bailingmoe",
    "bailingmoe2", "llada-moe",     "seed-coder", "kimi-k2", "afmoe",        "minimax-m2",
};

static int load_pre(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err)
{
	struct gguf_str pre = {"", 0};
	int rc = gguf_get_str(f, "tokenizer.ggml.pre", &pre, err);
	if (rc && rc != SAM_ENOTFOUND) return rc;
	for (size_t i = 0; i < sizeof PRE_NAMES / sizeof PRE_NAMES[0]; i++) {
		if (!gguf_str_eq(pre, PRE_NAMES[i].name)) continue;
		v->pre = PRE_NAMES[i].pre;
		v->ignore_merges = PRE_NAMES[i].flags & PRE_IGNORE_MERGES;
		if (PRE_NAMES[i].flags & PRE_ADD_BOS) v->add_bos = true;
		if (PRE_NAMES[i].flags & PRE_NO_BOS) v->bos = -1;
		return 0;
	}
	int shown = (int)(pre.n > 64 ? 64 : pre.n);
	for (size_t i = 0; i < sizeof PRE_UNSUPPORTED / sizeof PRE_UNSUPPORTED[0]; i++)
		if (gguf_str_eq(pre, PRE_UNSUPPORTED[i]))
			return sam_errorf(err, SAM_EUNSUPPORTED, "BPE pre-tokenizer '%.*s' is not supported", shown,
			                  pre.s);
	if (rc == SAM_ENOTFOUND)
		sam_log(SAM_LOG_WARN, "tokenizer: tokenizer.ggml.pre is missing, using the 'default' pre-tokenizer");
	else
		sam_log(SAM_LOG_WARN, "tokenizer: unknown pre-tokenizer '%.*s', using 'default'", shown, pre.s);
	v->pre = TOK_PRE_DEFAULT;
	return 0;
}

int bpe_load(struct tok_vocab *v, const struct gguf_file *f, struct sam_error *err)
{
	int rc;
	if ((rc = load_merges(v, f, err))) return rc;
	if ((rc = load_pre(v, f, err))) return rc;
	for (int b = 0; b < 256; b++) {
		char u[4];
		size_t n = uni_encode(byte_to_cp((uint8_t)b), u);
		v->byte_id[b] = tok_find(v, u, n);
	}
	return 0;
}

void bpe_free(struct tok_vocab *v)
{
	free(v->merge_hash);
	v->merge_hash = NULL;
	v->merge_hash_cap = 0;
}

/* ---- pre-tokenizer stages ------------------------------------------------- */

/* Class bits of a code point (B_ANY: every code point, so never 0 in range). */
enum { B_L = 1, B_N = 2, B_P = 4, B_WS = 8, B_ANY = 0x80 };

static uint8_t class_bits(uint32_t cp)
{
	static const uint8_t bits[8] = {
	    [UNI_CN] = B_ANY,      [UNI_C] = B_ANY,       [UNI_L] = B_ANY | B_L, [UNI_M] = B_ANY,
	    [UNI_N] = B_ANY | B_N, [UNI_P] = B_ANY | B_P, [UNI_S] = B_ANY,       [UNI_Z] = B_ANY,
	};
	return (uint8_t)(bits[uni_category(cp)] | (uni_is_space(cp) ? B_WS : 0));
}

struct range {
	uint32_t lo, hi;
};

/* deepseek-llm's letters: [A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓ ... 𞤀-𞥃] */
static const struct range DS_LETTERS[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

/* deepseek-llm's punctuation: [!-/:-~！-／：-～‘-‟　-。] (sorted) */
static const struct range DS_PUNCT[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
};

/* deepseek's CJK: [一-龥ࠀ-一가-퟿], i.e. U+0800..U+9FA5 and U+AC00..U+D7FF */
static const struct range DS_CJK[] = {{0x0800, 0x9FA5}, {0xAC00, 0xD7FF}};

static bool in_ranges(const struct range *r, size_t n, uint32_t cp)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cp < r[mid].lo)
			hi = mid;
		else if (cp > r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Character classes of the regexes with no hand-written splitter in llama.cpp. */
enum cls {
	K_NEWLINE,       /* [\r\n] */
	K_DIGIT,         /* [0-9] */
	K_LETTER,        /* \p{L} */
	K_NUMBER,        /* \p{N} */
	K_PUNCT,         /* \p{P} */
	K_PUNCT_DEFAULT, /* [\p{P}\$\+<=>\^~\|] */
	K_PUNCT_FALCON,  /* [\p{P}\$\+<=>\^~\|`] */
	K_DS_LETTER,     /* deepseek-llm's letters */
	K_DS_PUNCT,      /* deepseek-llm's punctuation */
	K_DS_CJK,        /* deepseek's CJK */
};

/* The ASCII symbols the default and falcon punctuation classes add to \p{P}. */
static bool punct_extra(uint32_t cp, bool falcon)
{
	switch (cp) {
	case '$':
	case '+':
	case '<':
	case '=':
	case '>':
	case '^':
	case '~':
	case '|': return true;
	case '`': return falcon;
	default: return false;
	}
}

static bool in_class(int k, uint32_t cp, uint8_t bits)
{
	/* std::wregex sees non-ASCII whitespace as \v, which no range holds */
	uint32_t w = cp > 0x7F && (bits & B_WS) ? 0x0B : cp;
	switch (k) {
	case K_NEWLINE: return cp == '\r' || cp == '\n';
	case K_DIGIT: return cp >= '0' && cp <= '9';
	case K_LETTER: return bits & B_L;
	case K_NUMBER: return bits & B_N;
	case K_PUNCT: return bits & B_P;
	case K_PUNCT_DEFAULT: return (bits & B_P) || punct_extra(cp, false);
	case K_PUNCT_FALCON: return (bits & B_P) || punct_extra(cp, true);
	case K_DS_LETTER: return in_ranges(DS_LETTERS, sizeof DS_LETTERS / sizeof DS_LETTERS[0], w);
	case K_DS_PUNCT: return in_ranges(DS_PUNCT, sizeof DS_PUNCT / sizeof DS_PUNCT[0], w);
	case K_DS_CJK: return in_ranges(DS_CJK, sizeof DS_CJK / sizeof DS_CJK[0], w);
	}
	return false;
}

enum stage_kind {
	ST_GPT2,      /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
	ST_LLAMA3,    /* (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
	                 \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
	ST_QWEN2,     /* the same with \p{N} for \p{N}{1,3} */
	ST_RUN,       /* [class]+ */
	ST_ONE,       /* [class] */
	ST_SPACE_RUN, /* \s?[class]+ */
	ST_TRAILING,  /* \s+$ */
	ST_DIGITS3,   /* [0-9][0-9][0-9] */
};

struct stage {
	uint8_t kind, cls;
};

#define MAX_STAGES 6

/*
 * The regex lists of llm_tokenizer_bpe, by enum tok_pre:
 *   DEFAULT         [\p{P}\$\+<=>\^~\|]+, GPT-2's, \p{N}+, [0-9][0-9][0-9]
 *   GPT2            GPT-2's                          (gpt-2, mpt, olmo, ...)
 *   LLAMA3          Llama 3's                        (llama3, llama-bpe, dbrx, ...)
 *   QWEN2           Qwen2's                          (qwen2, deepseek-r1-qwen, ...)
 *   DEEPSEEK_LLM    [\r\n], \s?[A-Za-zµÀ-Ö...𞤀-𞥃]+, \s?[!-/:-~！-／：-～‘-‟　-。]+, \s+$,
 *                   [一-龥ࠀ-一가-퟿]+, \p{N}+
 *   DEEPSEEK_CODER  [\r\n], \s?\p{L}+, \s?\p{P}+, [一-龥ࠀ-一가-퟿]+, \p{N}
 *   FALCON          [\p{P}\$\+<=>\^~\|`]+, GPT-2's, [0-9][0-9][0-9]
 *   STARCODER       \p{N}, GPT-2's                   (starcoder, refact, smollm, ...)
 */
static const struct {
	uint8_t n;
	struct stage st[MAX_STAGES];
} PRE_STAGES[] = {
    [TOK_PRE_DEFAULT] = {4, {{ST_RUN, K_PUNCT_DEFAULT}, {ST_GPT2, 0}, {ST_RUN, K_NUMBER}, {ST_DIGITS3, 0}}},
    [TOK_PRE_GPT2] = {1, {{ST_GPT2, 0}}},
    [TOK_PRE_LLAMA3] = {1, {{ST_LLAMA3, 0}}},
    [TOK_PRE_QWEN2] = {1, {{ST_QWEN2, 0}}},
    [TOK_PRE_DEEPSEEK_LLM] = {6,
                              {{ST_ONE, K_NEWLINE},
                               {ST_SPACE_RUN, K_DS_LETTER},
                               {ST_SPACE_RUN, K_DS_PUNCT},
                               {ST_TRAILING, 0},
                               {ST_RUN, K_DS_CJK},
                               {ST_RUN, K_NUMBER}}},
    [TOK_PRE_DEEPSEEK_CODER] = {5,
                                {{ST_ONE, K_NEWLINE},
                                 {ST_SPACE_RUN, K_LETTER},
                                 {ST_SPACE_RUN, K_PUNCT},
                                 {ST_RUN, K_DS_CJK},
                                 {ST_ONE, K_NUMBER}}},
    [TOK_PRE_FALCON] = {3, {{ST_RUN, K_PUNCT_FALCON}, {ST_GPT2, 0}, {ST_DIGITS3, 0}}},
    [TOK_PRE_STARCODER] = {2, {{ST_ONE, K_NUMBER}, {ST_GPT2, 0}}},
};

/* One word [a, b) of code points to split, and where its pieces go. */
struct split {
	const uint32_t *cp;
	const uint8_t *cls;
	size_t a, b;
	uint32_t *out; /* piece lengths */
	size_t n;      /* pieces written */
	size_t prev;   /* end of the last piece */
};

/* The piece from the end of the last one to end, if not empty. */
static void cut(struct split *s, size_t end)
{
	if (end > s->prev) s->out[s->n++] = (uint32_t)(end - s->prev);
	s->prev = end;
}

/* Class bits at i, 0 outside the word (as llama.cpp's _get_flags). */
static uint8_t bits_at(const struct split *s, size_t i)
{
	return i < s->b ? s->cls[i] : 0;
}

static bool is_rn(uint32_t c)
{
	return c == '\r' || c == '\n';
}

static uint32_t ascii_lower(uint32_t c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/*
 * The contractions 's 't 're 've 'm 'll 'd at pos (fold: any case). Returns
 * the length matched (2 or 3), or 0.
 */
static size_t contraction(const struct split *s, size_t pos, bool fold)
{
	if (s->cp[pos] != '\'' || pos + 1 >= s->b) return 0;
	uint32_t c1 = fold ? ascii_lower(s->cp[pos + 1]) : s->cp[pos + 1];
	if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
	if (pos + 2 >= s->b) return 0;
	uint32_t c2 = fold ? ascii_lower(s->cp[pos + 2]) : s->cp[pos + 2];
	if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
	return 0;
}

/*
 * After the alternatives that end the regexes: \s+(?!\S) (all of a run of
 * whitespace but its last code point, unless it runs to the end) and \s+.
 * Returns the new position; pos itself if pos is no whitespace.
 */
static size_t trailing_space(const struct split *s, size_t pos)
{
	size_t k = 0;
	while (bits_at(s, pos + k) & B_WS)
		k++;
	if (k > 1 && pos + k < s->b) return pos + k - 1;
	return pos + k;
}

/* GPT-2's regex (llama.cpp's unicode_regex_split_custom_gpt2). */
static void split_gpt2(struct split *s)
{
	size_t pos = s->a;
	while (pos < s->b) {
		uint32_t c = s->cp[pos];
		size_t k = contraction(s, pos, false);
		if (k) {
			cut(s, pos += k);
			continue;
		}
		uint8_t f = c == ' ' ? bits_at(s, pos + 1) : s->cls[pos];
		if (f & (B_L | B_N)) { /* ' ?\p{L}+' or ' ?\p{N}+' */
			uint8_t want = f & B_L ? B_L : B_N;
			pos += c == ' ';
			while (bits_at(s, pos) & want)
				pos++;
			cut(s, pos);
			continue;
		}
		if (!(f & (B_WS | B_L | B_N)) && f) { /* ' ?[^\s\p{L}\p{N}]+' */
			pos += c == ' ';
			for (f = bits_at(s, pos); !(f & (B_WS | B_L | B_N)) && f; f = bits_at(s, pos))
				pos++;
			cut(s, pos);
			continue;
		}
		size_t end = trailing_space(s, pos);
		cut(s, pos = end > pos ? end : pos + 1);
	}
}

/*
 * Llama 3's regex (llama.cpp's unicode_regex_split_custom_llama3), numbers
 * in groups of at most max_digits.
 */
static void split_llama3(struct split *s, size_t max_digits)
{
	size_t pos = s->a;
	while (pos < s->b) {
		uint32_t c = s->cp[pos];
		uint8_t f = s->cls[pos];
		size_t k = contraction(s, pos, true);
		if (k) {
			cut(s, pos += k);
			continue;
		}
		/* [^\r\n\p{L}\p{N}]?\p{L}+ */
		if (!is_rn(c) && !(f & B_N) && ((f & B_L) || (bits_at(s, pos + 1) & B_L))) {
			pos++;
			while (bits_at(s, pos) & B_L)
				pos++;
			cut(s, pos);
			continue;
		}
		/* \p{N}{1,max_digits} */
		if (f & B_N) {
			for (size_t ini = pos; bits_at(s, pos) & B_N;)
				if (++pos - ini >= max_digits) {
					cut(s, pos);
					ini = pos;
				}
			cut(s, pos);
			continue;
		}
		/* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
		uint8_t f2 = c == ' ' ? bits_at(s, pos + 1) : f;
		if (!(f2 & (B_WS | B_L | B_N))) {
			pos += c == ' ';
			for (f2 = bits_at(s, pos); !(f2 & (B_WS | B_L | B_N)) && f2; f2 = bits_at(s, pos))
				pos++;
			while (pos < s->b && is_rn(s->cp[pos]))
				pos++;
			cut(s, pos);
			continue;
		}
		/* \s*[\r\n]+: whitespace up to its last \r or \n */
		size_t last_rn = 0;
		for (size_t i = pos; bits_at(s, i) & B_WS; i++)
			if (is_rn(s->cp[i])) last_rn = i + 1;
		if (last_rn) {
			cut(s, pos = last_rn);
			continue;
		}
		size_t end = trailing_space(s, pos);
		cut(s, pos = end > pos ? end : pos + 1);
	}
}

static bool cls_at(const struct split *s, int k, size_t i)
{
	return i < s->b && in_class(k, s->cp[i], s->cls[i]);
}

/* A std::regex stage: each leftmost match, and the gaps between, become pieces. */
static void split_regex(struct split *s, const struct stage *st)
{
	size_t i = s->a;
	if (st->kind == ST_TRAILING) { /* \s+$: the whitespace the word ends with */
		size_t j = s->b;
		while (j > s->a && (s->cls[j - 1] & B_WS))
			j--;
		cut(s, j);
		cut(s, s->b);
		return;
	}
	while (i < s->b) {
		size_t end = i;
		switch (st->kind) {
		case ST_RUN:
		case ST_ONE:
			if (!cls_at(s, st->cls, i)) break;
			end = i + 1;
			if (st->kind == ST_RUN)
				while (cls_at(s, st->cls, end))
					end++;
			break;
		case ST_SPACE_RUN:
			if (cls_at(s, st->cls, i))
				end = i + 1;
			else if ((s->cls[i] & B_WS) && cls_at(s, st->cls, i + 1))
				end = i + 2;
			else
				break;
			while (cls_at(s, st->cls, end))
				end++;
			break;
		case ST_DIGITS3:
			if (cls_at(s, K_DIGIT, i) && cls_at(s, K_DIGIT, i + 1) && cls_at(s, K_DIGIT, i + 2))
				end = i + 3;
			break;
		}
		if (end == i) {
			i++;
			continue;
		}
		cut(s, i); /* the gap before the match */
		cut(s, end);
		i = end;
	}
	cut(s, s->b);
}

/* ---- encoding ------------------------------------------------------------- */

struct bpe_sym {
	int32_t prev, next; /* neighbours, -1 at the ends */
	uint32_t off, n;    /* text in the session's word; n == 0 once merged away */
};

struct bpe_bigram {
	uint64_t key;  /* rank << 32 | left: the order they run in (llm_bigram_bpe::comparator) */
	int32_t right; /* left's neighbour when queued */
	uint32_t size; /* bytes of left + right when queued; outdated if that changed */
};

void bpe_session_free(struct bpe_session *s)
{
	free(s->cp);
	free(s->cls);
	free(s->seg[0]);
	free(s->seg[1]);
	free(s->word);
	free(s->sym);
	free(s->heap);
	memset(s, 0, sizeof *s);
}

/*
 * The queue of merges: a 4-ary min-heap on key, so the lowest rank runs
 * first and, among equal ranks, the leftmost pair. (Two entries with equal
 * keys are the same pair, so their order does not matter.)
 */
static void sift_down(struct bpe_bigram *h, size_t n, size_t i)
{
	struct bpe_bigram x = h[i];
	for (;;) {
		size_t c = 4 * i + 1, best = c;
		if (c >= n) break;
		for (size_t j = c + 1; j < c + 4 && j < n; j++)
			if (h[j].key < h[best].key) best = j;
		if (h[best].key >= x.key) break;
		h[i] = h[best];
		i = best;
	}
	h[i] = x;
}

static int heap_push(struct bpe_session *s, struct bpe_bigram b)
{
	struct bpe_bigram *h = sam_grow(s->heap, &s->heap_cap, s->heap_n + 1, sizeof *h);
	if (!h) return SAM_ENOMEM;
	s->heap = h;
	size_t i = s->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 4;
		if (h[p].key <= b.key) break;
		h[i] = h[p];
		i = p;
	}
	h[i] = b;
	return 0;
}

static struct bpe_bigram heap_pop(struct bpe_session *s)
{
	struct bpe_bigram top = s->heap[0];
	if (--s->heap_n) {
		s->heap[0] = s->heap[s->heap_n];
		sift_down(s->heap, s->heap_n, 0);
	}
	return top;
}

/* The merge of neighbours left and right, if there is one (rank >= 0). */
static int32_t pair_rank(const struct tok_vocab *v, const struct bpe_session *s, int32_t left, int32_t right)
{
	const struct bpe_sym *l = &s->sym[left], *r = &s->sym[right];
	return merge_rank(v, s->word + l->off, l->n, s->word + r->off, r->n);
}

static struct bpe_bigram bigram(const struct bpe_session *s, int32_t left, int32_t right, int32_t rank)
{
	return (struct bpe_bigram){(uint64_t)rank << 32 | (uint32_t)left, right, s->sym[left].n + s->sym[right].n};
}

/* add_new_bigram: queue the merge of two neighbours if there is one. */
static int add_bigram(const struct tok_vocab *v, struct bpe_session *s, int32_t left, int32_t right)
{
	if (left < 0 || right < 0) return 0;
	int32_t rank = pair_rank(v, s, left, right);
	return rank < 0 ? 0 : heap_push(s, bigram(s, left, right, rank));
}

/* Merge the symbols of s->word[0..n) (one per byte of the original) and append their ids. */
static int merge_word(const struct tok_vocab *v, struct bpe_session *s, size_t n, int32_t n_sym, struct tok_ivec *out)
{
	if (v->ignore_merges) {
		int32_t id = tok_find(v, s->word, n);
		if (id >= 0) return tok_ivec_push(out, id);
	}
	/* every neighbour pair that is a merge, then heapified at once */
	struct bpe_bigram *h = sam_grow(s->heap, &s->heap_cap, (size_t)n_sym, sizeof *h);
	if (!h) return SAM_ENOMEM;
	s->heap = h;
	s->heap_n = 0;
	for (int32_t i = 1; i < n_sym; i++) {
		int32_t rank = pair_rank(v, s, i - 1, i);
		if (rank >= 0) h[s->heap_n++] = bigram(s, i - 1, i, rank);
	}
	for (size_t i = s->heap_n / 4 + 1; i-- > 0;)
		if (i < s->heap_n) sift_down(h, s->heap_n, i);
	while (s->heap_n) {
		struct bpe_bigram b = heap_pop(s);
		int32_t left = (int32_t)(uint32_t)b.key;
		struct bpe_sym *l = &s->sym[left], *r = &s->sym[b.right];
		if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* outdated */
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0) s->sym[r->next].prev = left;
		if (add_bigram(v, s, l->prev, left) || add_bigram(v, s, left, l->next)) return SAM_ENOMEM;
	}
	for (int32_t i = 0; i != -1; i = s->sym[i].next) {
		const struct bpe_sym *y = &s->sym[i];
		int32_t id = tok_find(v, s->word + y->off, y->n);
		if (id >= 0) {
			if (tok_ivec_push(out, id)) return SAM_ENOMEM;
			continue;
		}
		/* not a token: the tokens of its single bytes, where there are any */
		for (uint32_t j = 0; j < y->n; j++) {
			id = tok_find(v, s->word + y->off + j, 1);
			if (id >= 0 && tok_ivec_push(out, id)) return SAM_ENOMEM;
		}
	}
	return 0;
}

/* Encode code points cp[a..b) byte-level into s->word and tokenize them. */
static int encode_word(const struct tok_vocab *v, struct bpe_session *s, size_t a, size_t b, struct tok_ivec *out)
{
	char u[4], e[4];
	size_t n_bytes = 0;
	for (size_t i = a; i < b; i++)
		n_bytes += uni_encode(s->cp[i], u);
	/* one symbol per byte of the word; each byte encodes in 1 or 2 bytes */
	char *w = sam_grow(s->word, &s->word_cap, 2 * n_bytes, 1);
	if (!w) return SAM_ENOMEM;
	s->word = w;
	struct bpe_sym *sy = sam_grow(s->sym, &s->sym_cap, n_bytes, sizeof *sy);
	if (!sy) return SAM_ENOMEM;
	s->sym = sy;
	size_t n = 0;
	int32_t n_sym = 0;
	for (size_t i = a; i < b; i++) {
		size_t k = uni_encode(s->cp[i], u);
		for (size_t j = 0; j < k; j++) {
			size_t m = uni_encode(byte_to_cp((uint8_t)u[j]), e);
			memcpy(w + n, e, m);
			sy[n_sym] = (struct bpe_sym){n_sym - 1, n_sym + 1, (uint32_t)n, (uint32_t)m};
			n_sym++;
			n += m;
		}
	}
	if (n_sym == 0) return 0;
	sy[n_sym - 1].next = -1;
	return merge_word(v, s, n, n_sym, out);
}

/* Room for the code points of len bytes (at most one each) and their word lengths. */
static int session_reserve(struct bpe_session *s, size_t len)
{
	if (len + 1 <= s->cp_cap) return 0;
	size_t cap = s->cp_cap ? s->cp_cap : 256;
	while (cap < len + 1)
		cap *= 2;
	uint32_t *cp = realloc(s->cp, cap * sizeof *cp);
	if (cp) s->cp = cp;
	uint8_t *cl = realloc(s->cls, cap);
	if (cl) s->cls = cl;
	uint32_t *s0 = realloc(s->seg[0], cap * sizeof *s0);
	if (s0) s->seg[0] = s0;
	uint32_t *s1 = realloc(s->seg[1], cap * sizeof *s1);
	if (s1) s->seg[1] = s1;
	if (!cp || !cl || !s0 || !s1) return SAM_ENOMEM;
	s->cp_cap = cap;
	return 0;
}

/*
 * unicode_regex_split over s->cp[0..n) (n > 0): every stage of pre splits
 * every word the last one left. Returns the number of words; their lengths
 * (code points) are in s->seg[0].
 */
static size_t pre_split(int pre, struct bpe_session *s, size_t n)
{
	const struct stage *st = PRE_STAGES[pre].st;
	size_t n_words = 1;
	s->seg[0][0] = (uint32_t)n;
	for (unsigned i = 0; i < PRE_STAGES[pre].n; i++) {
		struct split sp = {.cp = s->cp, .cls = s->cls, .out = s->seg[1]};
		for (size_t w = 0, at = 0; w < n_words; at += s->seg[0][w++]) {
			sp.a = sp.prev = at;
			sp.b = at + s->seg[0][w];
			switch (st[i].kind) {
			case ST_GPT2: split_gpt2(&sp); break;
			case ST_LLAMA3: split_llama3(&sp, 3); break;
			case ST_QWEN2: split_llama3(&sp, 1); break;
			default: split_regex(&sp, &st[i]); break;
			}
		}
		uint32_t *t = s->seg[0];
		s->seg[0] = s->seg[1];
		s->seg[1] = t;
		n_words = sp.n;
	}
	return n_words;
}

int bpe_tokenize(const struct tok_vocab *v, struct bpe_session *s, const char *text, size_t len, struct tok_ivec *out,
                 struct sam_error *err)
{
	if (len == 0) return 0;
	if (len > UINT32_MAX / 8) return sam_errorf(err, SAM_ERANGE, "text of %zu bytes is too long", len);
	if (session_reserve(s, len)) goto nomem;
	size_t n = 0;
	for (size_t off = 0; off < len; n++) {
		size_t k;
		uint32_t c = uni_decode(text + off, len - off, &k);
		s->cp[n] = c;
		s->cls[n] = class_bits(c);
		off += k;
	}

	size_t n_words = pre_split(v->pre, s, n);
	for (size_t w = 0, at = 0; w < n_words; at += s->seg[0][w++])
		if (encode_word(v, s, at, at + s->seg[0][w], out)) goto nomem;
	return 0;
nomem:
	return sam_errorf(err, SAM_ENOMEM, "out of memory tokenizing %zu bytes", len);
}

/* ---- decoding ------------------------------------------------------------- */

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t n)
{
	if (at < cap) memcpy(buf + at, s, n < cap - at ? n : cap - at);
	return at + n;
}

size_t bpe_piece(const struct tok_vocab *v, int32_t id, char *buf, size_t cap)
{
	struct gguf_str t = v->text[id];
	size_t at = 0;
	for (size_t off = 0; off < t.n;) {
		size_t k;
		uint32_t c = uni_decode(t.s + off, t.n - off, &k);
		off += k;
		int b = cp_to_byte(c);
		if (b >= 0) {
			char ch = (char)b;
			at = put(buf, cap, at, &ch, 1);
			continue;
		}
		/* llama_decode_text: "[UNK_BYTE_0x" + the code point's UTF-8 in hex + the token's text + "]" */
		char u[4], hex[9];
		size_t m = uni_encode(c, u);
		for (size_t j = 0; j < m; j++)
			snprintf(hex + 2 * j, 3, "%02x", (uint8_t)u[j]);
		at = put(buf, cap, at, "[UNK_BYTE_0x", 12);
		at = put(buf, cap, at, hex, 2 * m);
		at = put(buf, cap, at, t.s, t.n);
		at = put(buf, cap, at, "]", 1);
	}
	return at;
}
