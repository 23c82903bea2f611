/*
 * test_bpe.c - the byte-level BPE ("gpt2") tokenizer: llama.cpp's test
 * vectors (vocab/NAME.gguf.inp/.out, run as test-tokenizer-0 does) for every
 * BPE vocabulary there, round trips through tok_piece, the tiny-qwen2
 * reference prompt, `sam tokenize`, speed, the Unicode tables, and small
 * synthetic vocabularies (built in memory) for merge order and corner cases.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/unicode.h"
#include "sam/gguf.h"
#include "sam/tokenizer.h"
#include "test.h"
#include "vocab_vectors.h"

/* ---- llama.cpp's vectors ------------------------------------------------ */

TEST(bpe_vectors_gpt2)
{
	vocab_run_vectors("ggml-vocab-gpt-2", "ggml-vocab-gpt-2", TOK_BPE);
}

TEST(bpe_vectors_llama_bpe)
{
	vocab_run_vectors("ggml-vocab-llama-bpe", "ggml-vocab-llama-bpe", TOK_BPE);
}

TEST(bpe_vectors_qwen2)
{
	vocab_run_vectors("ggml-vocab-qwen2", "ggml-vocab-qwen2", TOK_BPE);
}

/* upstream has no deepseek-r1-qwen GGUF; its vectors are qwen2's (README) */
TEST(bpe_vectors_deepseek_r1_qwen)
{
	vocab_run_vectors("ggml-vocab-qwen2", "ggml-vocab-deepseek-r1-qwen", TOK_BPE);
}

TEST(bpe_vectors_deepseek_llm)
{
	vocab_run_vectors("ggml-vocab-deepseek-llm", "ggml-vocab-deepseek-llm", TOK_BPE);
}

TEST(bpe_vectors_deepseek_coder)
{
	vocab_run_vectors("ggml-vocab-deepseek-coder", "ggml-vocab-deepseek-coder", TOK_BPE);
}

TEST(bpe_vectors_falcon)
{
	vocab_run_vectors("ggml-vocab-falcon", "ggml-vocab-falcon", TOK_BPE);
}

TEST(bpe_vectors_mpt)
{
	vocab_run_vectors("ggml-vocab-mpt", "ggml-vocab-mpt", TOK_BPE);
}

TEST(bpe_vectors_starcoder)
{
	vocab_run_vectors("ggml-vocab-starcoder", "ggml-vocab-starcoder", TOK_BPE);
}

TEST(bpe_vectors_refact)
{
	vocab_run_vectors("ggml-vocab-refact", "ggml-vocab-refact", TOK_BPE);
}

/* ---- what the loader reads ---------------------------------------------- */

TEST(bpe_metadata)
{
	static const struct {
		const char *file;
		int pre;
		bool add_bos, ignore_merges;
		int32_t bos, eos, eog; /* eog: another end-of-generation id, or -1 */
	} want[] = {
	    {"vocab/ggml-vocab-gpt-2.gguf", TOK_PRE_GPT2, false, false, 50256, 50256, -1},
	    {"vocab/ggml-vocab-llama-bpe.gguf", TOK_PRE_LLAMA3, true, true, 128000, 128001, 128009},
	    {"vocab/ggml-vocab-qwen2.gguf", TOK_PRE_QWEN2, false, false, 151643, 151643, 151645},
	    {"vocab/ggml-vocab-deepseek-llm.gguf", TOK_PRE_DEEPSEEK_LLM, true, false, 100000, 100001, -1},
	    {"vocab/ggml-vocab-deepseek-coder.gguf", TOK_PRE_DEEPSEEK_CODER, true, false, 32013, 32014, -1},
	    {"vocab/ggml-vocab-falcon.gguf", TOK_PRE_FALCON, false, false, 11, 11, -1},
	    {"vocab/ggml-vocab-mpt.gguf", TOK_PRE_GPT2, false, false, 0, 0, -1},
	    {"vocab/ggml-vocab-starcoder.gguf", TOK_PRE_STARCODER, false, false, 0, 0, -1},
	    {"vocab/ggml-vocab-refact.gguf", TOK_PRE_STARCODER, false, false, 0, 0, -1},
	    {"vocab/ggml-vocab-gpt-neox.gguf", TOK_PRE_DEFAULT, false, false, 0, 0, -1}, /* no tokenizer.ggml.pre */
	    {"tiny-qwen2.gguf", TOK_PRE_QWEN2, false, false, 4093, 4093, 4095},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct gguf_file f;
		struct tok_vocab v;
		vocab_open(want[i].file, &f, &v);
		CHECKF(v.type == TOK_BPE && v.pre == want[i].pre, "%s: type %d pre %d", want[i].file, v.type, v.pre);
		CHECKF(v.add_bos == want[i].add_bos && !v.add_eos && !v.add_space_prefix, "%s: add_bos %d",
		       want[i].file, v.add_bos);
		CHECKF(v.ignore_merges == want[i].ignore_merges, "%s", want[i].file);
		CHECKF(v.bos == want[i].bos && v.eos == want[i].eos, "%s: bos %d eos %d", want[i].file, v.bos, v.eos);
		CHECK(tok_is_eog(&v, v.eos));
		if (want[i].eog >= 0) CHECKF(tok_is_eog(&v, want[i].eog), "%s: %d", want[i].file, want[i].eog);
		CHECK(v.n_merges > 0 && v.merges != NULL);
		/* a byte's token is its printable code point ("\xc4\xa0" is U+0120, for ' ') */
		for (int b = ' '; b < 0x7F; b++)
			CHECKF(v.byte_id[b] >= 0, "%s: byte 0x%02X", want[i].file, b);
		CHECK_INT(v.byte_id[' '], tok_find(&v, "\xc4\xa0", 2));
		CHECK_INT(v.byte_id['a'], tok_find(&v, "a", 1));
		vocab_close(&f, &v);
	}
}

/* ---- round trips ------------------------------------------------------- */

static const char *const TEXTS[] = {
    "Hello world",
    " Hello World!",
    "  leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\n\n\n   \t \n",
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
    "3 33 333 3333 33333 3.14159 1,000,000 0x1F 2024-06-01 \xd9\xa1\xd9\xa2\xd9\xa3 \xc2\xb2\xc2\xbd",
    ("Gr\xc3\xbc\xc3\x9f"
     "e, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, C\xe1\xba\xa1"
     "a Vi\xe1\xbb\x87t"),
    ("\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8"
     "apple\xe5\xb7\xa5\xe4\xbd\x9c"
     "1314151\xe5\xa4\xa9\xef\xbd\x9e"),
    ("\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd8\xa7\xd9\x84\xd8\xb9\xd8\xa7\xd9\x84\xd9\x85 "
     "\xd9\x8b\xd9\x8c"),
    "emoji \xf0\x9f\xa6\x99\xf0\x9f\x98\x80 and \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb \xe2\x9c\x85",
    "\xe1\x9e\x80\xe1\x9e\xb6\xe1\x9e\x93\xe1\x9f\x8b\xe1\x9e\x8f\xe1\x9f\x82",
    "no-break\xc2\xa0space, ideographic\xe3\x80\x80space, line\xe2\x80\xa8sep, nel\xc2\x85.",
    "------======= ''''''```````\"\"\"\"......!!!!!!?????? $+<=>^~|` \\ [x]{y}(z)",
    "int main(void) {\n\treturn printf(\"%d\\n\", a[i] >= 0 ? 1 : -1);\n}\n",
    "<|endoftext|> <|im_start|> <s> </s> <unk> as plain text",
    "\x01\x02\x1f\x7f \xc2\x80\xc2\xa0\xc2\xad control bytes and Latin-1",
};

/* text decodes back to itself (add_special = parse_special = false) */
static void round_trip(const struct tok_vocab *v, const char *name, const char *text, size_t len)
{
	int32_t *ids;
	size_t n, dl;
	vocab_encode(v, text, len, false, false, &ids, &n);
	char *d = vocab_decode(v, ids, n, false, &dl);
	CHECKF(dl == len && memcmp(d, text, len) == 0, "%s: round trip of \"%.*s\" gave \"%.*s\"", name, (int)len, text,
	       (int)dl, d);
	free(d);
	free(ids);
}

/*
 * n random code points (valid UTF-8, no surrogates) from a mix of scripts
 * into buf; returns the length. Code points with a byte that has no token in
 * v are left out: llama.cpp drops such bytes (see bpe_missing_byte_tokens).
 */
static size_t random_utf8(const struct tok_vocab *v, uint32_t *seed, char *buf, size_t n)
{
	static const uint32_t ranges[][2] = {
	    {0x20, 0x7E},     {0x09, 0x0D},     {0xA0, 0x17F},    {0x300, 0x36F},     {0x370, 0x52F},
	    {0x600, 0x6FF},   {0x900, 0x97F},   {0x1780, 0x17FF}, {0x2000, 0x206F},   {0x3000, 0x303F},
	    {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0xFF00, 0xFFEF}, {0x1F300, 0x1FAFF}, {0x0, 0x10FFFF},
	};
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 1103515245u + 12345u;
		const uint32_t *g = ranges[(*seed >> 8) % (sizeof ranges / sizeof ranges[0])];
		*seed = *seed * 1103515245u + 12345u;
		uint32_t cp = g[0] + (*seed >> 4) % (g[1] - g[0] + 1);
		if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
		size_t k = uni_encode(cp, buf + at);
		bool ok = true;
		for (size_t j = 0; j < k; j++)
			ok &= v->byte_id[(uint8_t)buf[at + j]] >= 0;
		if (ok) at += k;
	}
	return at;
}

static const char *const BPE_VOCABS[] = {
    "vocab/ggml-vocab-gpt-2.gguf",
    "vocab/ggml-vocab-llama-bpe.gguf",
    "vocab/ggml-vocab-qwen2.gguf",
    "vocab/ggml-vocab-deepseek-llm.gguf",
    "vocab/ggml-vocab-deepseek-coder.gguf",
    "vocab/ggml-vocab-falcon.gguf",
    "vocab/ggml-vocab-mpt.gguf",
    "vocab/ggml-vocab-starcoder.gguf",
    "vocab/ggml-vocab-refact.gguf",
    "vocab/ggml-vocab-gpt-neox.gguf",
    "tiny-qwen2.gguf",
};

TEST(bpe_round_trip)
{
	for (size_t m = 0; m < sizeof BPE_VOCABS / sizeof BPE_VOCABS[0]; m++) {
		struct gguf_file f;
		struct tok_vocab v;
		vocab_open(BPE_VOCABS[m], &f, &v);
		for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++)
			round_trip(&v, BPE_VOCABS[m], TEXTS[i], strlen(TEXTS[i]));
		char buf[4 * 300];
		uint32_t seed = 42 + (uint32_t)m;
		for (int r = 0; r < 30; r++) {
			size_t len = random_utf8(&v, &seed, buf, 1 + (size_t)r * 10);
			round_trip(&v, BPE_VOCABS[m], buf, len);
		}
		/* each ASCII byte, NUL included, alone (if it has a token) */
		for (int b = 0; b < 0x80; b++) {
			char c = (char)b;
			if (v.byte_id[b] >= 0) round_trip(&v, BPE_VOCABS[m], &c, 1);
		}
		vocab_close(&f, &v);
	}
}

/* gpt-neox has no vectors upstream: it loads (no pre: the default regexes) and round-trips. */
TEST(bpe_gpt_neox)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-gpt-neox.gguf", &f, &v);
	CHECK_INT(v.pre, TOK_PRE_DEFAULT);
	CHECK_INT(v.n_tokens, 50432);
	for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++)
		round_trip(&v, "gpt-neox", TEXTS[i], strlen(TEXTS[i]));
	/* the default list cuts numbers into groups of three: "1234567" starts like "123" */
	int32_t *a, *b;
	size_t na, nb;
	vocab_encode(&v, "1234567", 7, false, false, &a, &na);
	vocab_encode(&v, "123", 3, false, false, &b, &nb);
	CHECK(na >= 3 && nb >= 1 && memcmp(a, b, nb * sizeof *b) == 0);
	free(a);
	free(b);
	vocab_close(&f, &v);
}

/*
 * A symbol that is no token falls back to the single-byte tokens of its
 * (byte-level encoded) text, and bytes without one vanish, as in llama.cpp:
 * falcon has no token for U+010B, the code point of byte 0x0B.
 */
TEST(bpe_missing_byte_tokens)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-falcon.gguf", &f, &v);
	CHECK_INT(v.byte_id[0x0B], -1);
	CHECK_INT(tok_find(&v, "\xc4\x8b", 2), -1);
	int32_t *a, *b, *c;
	size_t na, nb, nc;
	vocab_encode(&v, "a\vb", 3, false, false, &a, &na);
	vocab_encode(&v, "a", 1, false, false, &b, &nb);
	vocab_encode(&v, "b", 1, false, false, &c, &nc);
	CHECK(na == nb + nc && memcmp(a, b, nb * sizeof *a) == 0 && memcmp(a + nb, c, nc * sizeof *a) == 0);
	free(a);
	free(b);
	free(c);
	vocab_close(&f, &v);
}

/* Not UTF-8: each bad byte is U+FFFD before pre-tokenization (llama.cpp's unicode_cpts_from_utf8). */
TEST(bpe_invalid_utf8)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-qwen2.gguf", &f, &v);
	static const struct {
		const char *bad;
		size_t nbad;
		const char *same;
		size_t nsame;
	} cases[] = {
	    {"\xff", 1, "\xef\xbf\xbd", 3},
	    {"a\xc3", 2, "a\xef\xbf\xbd", 4},
	    {"\xe2\x82 x", 4, "\xef\xbf\xbd\xef\xbf\xbd x", 8},
	    {"\x80\x80-", 3, "\xef\xbf\xbd\xef\xbf\xbd-", 7},
	    {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 12}, /* above U+10FFFF */
	    {"\xc0\x80z", 3, "\0z", 2}, /* overlong NUL: it is NUL */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int32_t *a, *b;
		size_t na, nb;
		vocab_encode(&v, cases[i].bad, cases[i].nbad, false, false, &a, &na);
		vocab_encode(&v, cases[i].same, cases[i].nsame, false, false, &b, &nb);
		CHECKF(na == nb && memcmp(a, b, na * sizeof *a) == 0, "case %zu: [%s] vs [%s]", i, vocab_ids_str(a, na),
		       vocab_ids_str(b, nb));
		free(a);
		free(b);
	}
	vocab_close(&f, &v);
}

/* ---- special tokens, BOS, pieces ---------------------------------------- */

TEST(bpe_special_tokens)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-qwen2.gguf", &f, &v);
	static const char chat[] = "<|im_start|>user\nHi<|im_end|>\n";
	int32_t *a, *b;
	size_t na, nb;
	vocab_encode(&v, chat, sizeof chat - 1, true, true, &a, &na); /* add_special: qwen2 adds no BOS */
	CHECK(na >= 5);
	CHECK_INT(a[0], 151644);
	bool end = false;
	for (size_t i = 0; i < na; i++)
		end |= a[i] == 151645;
	CHECK(end);
	free(a);
	/* without parse_special the control texts are plain text */
	vocab_encode(&v, chat, sizeof chat - 1, false, false, &a, &na);
	for (size_t i = 0; i < na; i++)
		CHECK(a[i] < 151643);
	size_t dl;
	char *d = vocab_decode(&v, a, na, false, &dl);
	CHECK(dl == sizeof chat - 1 && memcmp(d, chat, dl) == 0);
	free(d);
	free(a);
	/* the text around a special token is tokenized fragment by fragment */
	vocab_encode(&v, "Hi<|im_end|>there", 17, false, true, &a, &na);
	vocab_encode(&v, "Hi", 2, false, false, &b, &nb);
	CHECK(na > nb && memcmp(a, b, nb * sizeof *b) == 0 && a[nb] == 151645);
	free(a);
	free(b);
	/* pieces: control tokens render only when special */
	char buf[64];
	CHECK_INT(tok_piece(&v, 151645, false, buf, sizeof buf), 0);
	CHECK_INT(tok_piece(&v, 151645, true, buf, sizeof buf), 10);
	CHECK(memcmp(buf, "<|im_end|>", 10) == 0);
	CHECK_INT(tok_piece(&v, -1, true, buf, sizeof buf), 0);
	CHECK_INT(tok_piece(&v, (int32_t)v.n_tokens, true, buf, sizeof buf), 0);
	vocab_close(&f, &v);

	/* llama-bpe: add_bos_token is true */
	vocab_open("vocab/ggml-vocab-llama-bpe.gguf", &f, &v);
	const int32_t hello_bos[] = {128000, 9906, 1917};
	vocab_check_ids(&v, "Hello world", true, false, hello_bos, 3);
	vocab_check_ids(&v, "Hello world", false, false, hello_bos + 1, 2);
	const int32_t two_bos[] = {128000, 128000};
	vocab_check_ids(&v, "<|begin_of_text|>", true, true, two_bos, 2);
	vocab_close(&f, &v);

	/* gpt-2: a byte-level piece turns back into bytes */
	vocab_open("vocab/ggml-vocab-gpt-2.gguf", &f, &v);
	CHECK_INT(tok_find(&v, "\xc4\xa0the", 5), 262);
	CHECK_INT(tok_piece(&v, 262, false, buf, sizeof buf), 4);
	CHECK(memcmp(buf, " the", 4) == 0);
	memset(buf, '#', sizeof buf);
	CHECK_INT(tok_piece(&v, 262, false, buf, 2), 4); /* too small: the full length, what fits */
	CHECK(buf[0] == ' ' && buf[1] == 't' && buf[2] == '#');
	CHECK_INT(tok_piece(&v, 262, false, NULL, 0), 4);
	vocab_close(&f, &v);
}

/* The tiny-qwen2 reference prompt (no BOS) and llama.cpp's rendering of its greedy continuations. */
TEST(bpe_tiny_qwen2_reference)
{
	static const char prompt[] = "Once upon a time, there was a little girl named Lily. She loved to play outside";
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("tiny-qwen2.gguf", &f, &v);
	size_t wl;
	char *ws = test_read_file(test_model("ref/tiny-qwen2.logits.ids"), &wl);
	CHECK(ws != NULL);
	int32_t want[256];
	size_t n_want = vocab_parse_ids(ws, ws + wl, want, 256);
	CHECK(n_want > 10 && n_want <= 256);
	vocab_check_ids(&v, prompt, true, true, want, n_want);
	vocab_check_ids(&v, prompt, false, false, want, n_want);

	static const char *const slugs[] = {"once-upon-a-time", "lily-and-ben", "the-little-dog", "hello-world"};
	for (size_t i = 0; i < 4; i++) {
		char ip[128], tp[128];
		snprintf(ip, sizeof ip, "ref/tiny-qwen2.%s.greedy.ids", slugs[i]);
		snprintf(tp, sizeof tp, "ref/tiny-qwen2.%s.greedy.txt", slugs[i]);
		size_t il, tl, dl;
		char *is = test_read_file(test_model(ip), &il), *ts = test_read_file(test_model(tp), &tl);
		CHECK(is && ts);
		int32_t ids[1024];
		size_t n = vocab_parse_ids(is, is + il, ids, 1024);
		char *d = vocab_decode(&v, ids, n, false, &dl);
		CHECKF(dl == tl && memcmp(d, ts, tl) == 0, "%s: pieces differ from llama.cpp's text", tp);
		free(d);
		free(is);
		free(ts);
	}
	free(ws);
	vocab_close(&f, &v);
}

TEST(bpe_cli_tokenize)
{
	const char *model = test_model("tiny-qwen2.gguf");
	struct test_proc p;
	test_run_sam(&p, 30, "tokenize", "-m", model, "Hello world", NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("tiny-qwen2.gguf", &f, &v);
	int32_t *ids;
	size_t n;
	vocab_encode(&v, "Hello world", 11, true, false, &ids, &n);
	char want[256];
	snprintf(want, sizeof want, "%s\n", vocab_ids_str(ids, n));
	CHECK_STR(p.out, want);
	free(ids);
	vocab_close(&f, &v);
	test_proc_free(&p);

	test_run_sam(&p, 30, "tokenize", "-m", model,
	             "Once upon a time, there was a little girl named Lily. She loved to play outside", NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	size_t wl;
	char *ws = test_read_file(test_model("ref/tiny-qwen2.logits.ids"), &wl);
	CHECK(ws != NULL);
	while (wl && (ws[wl - 1] == '\n' || ws[wl - 1] == ' '))
		ws[--wl] = 0;
	CHECK(strncmp(p.out, ws, wl) == 0 && strcmp(p.out + wl, "\n") == 0);
	free(ws);
	test_proc_free(&p);

	test_run_sam(&p, 30, "tokenize", "-m", model, "--parse-special", "<|im_start|>hi<|im_end|>", NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	CHECKF(strncmp(p.out, "4094 ", 5) == 0 && strstr(p.out, " 4095\n") != NULL, "%s", p.out);
	test_proc_free(&p);

	const char *bert = test_model("vocab/ggml-vocab-bert-bge.gguf");
	test_run_sam(&p, 30, "tokenize", "-m", bert, "hi", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "tokenizer model 'bert' is not supported") != NULL, "stderr: %s", p.err);
	test_proc_free(&p);
}

/* ---- speed -------------------------------------------------------------- */

TEST(bpe_large_text_is_fast)
{
	static const char *const vocabs[] = {"vocab/ggml-vocab-qwen2.gguf", "vocab/ggml-vocab-llama-bpe.gguf",
	                                     "vocab/ggml-vocab-deepseek-llm.gguf", "vocab/ggml-vocab-gpt-2.gguf"};
	static const char line[] = "Once upon a time, there was a little girl named Lily. She loved to play outside, "
	                           "3.14159 \xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8 \xf0\x9f\xa6\x99 don't\n";
	const size_t mb = 1 << 20, ll = sizeof line - 1;
	char *text = malloc(mb);
	CHECK(text != NULL);
	/* generous for sanitizer builds; a plain build takes a fraction of a second */
	const double limit = getenv("SAM_SANITIZED") ? 60 : 5;
	for (size_t m = 0; m < sizeof vocabs / sizeof vocabs[0]; m++) {
		struct gguf_file f;
		struct tok_vocab v;
		vocab_open(vocabs[m], &f, &v);
		for (int kind = 0; kind < 3; kind++) {
			if (kind == 0)
				for (size_t i = 0; i < mb; i++)
					text[i] = line[i % ll];
			else
				memset(text, kind == 1 ? 'a' : ' ', mb); /* one 1 MB word; a 1 MB run of spaces */
			double t0 = sam_now();
			int32_t *ids;
			size_t n;
			vocab_encode(&v, text, mb, false, false, &ids, &n);
			double dt = sam_now() - t0;
			fprintf(stderr, "    %s: 1 MB of %s -> %zu tokens in %.3f s\n", vocabs[m],
			        kind == 0   ? "prose"
			        : kind == 1 ? "'a'"
			                    : "spaces",
			        n, dt);
			CHECK(n > 1000);
			CHECKF(dt < limit, "tokenizing 1 MB took %.1f s", dt);
			size_t dl;
			char *d = vocab_decode(&v, ids, n, false, &dl);
			CHECK(dl == mb && memcmp(d, text, mb) == 0);
			free(d);
			free(ids);
		}
		vocab_close(&f, &v);
	}
	free(text);
}

/* ---- Unicode tables ----------------------------------------------------- */

TEST(bpe_unicode_tables)
{
	CHECK_STR(uni_version(), "15.1.0");
	static const struct {
		uint32_t cp;
		enum uni_cat cat;
	} cats[] = {
	    {'A', UNI_L},     {'z', UNI_L},       {'0', UNI_N},       {'!', UNI_P},         {'$', UNI_S},
	    {'~', UNI_S},     {'`', UNI_S},       {'_', UNI_P},       {' ', UNI_Z},         {'\n', UNI_C},
	    {0x7F, UNI_C},    {0xA0, UNI_Z},      {0xAD, UNI_C},      {0xB2, UNI_N},        {0xB5, UNI_L},
	    {0x301, UNI_M},   {0x378, UNI_CN},    {0x660, UNI_N},     {0x1680, UNI_Z},      {0x2028, UNI_Z},
	    {0x200B, UNI_C},  {0x3000, UNI_Z},    {0x3001, UNI_P},    {0x4E00, UNI_L},      {0xD800, UNI_C},
	    {0xE000, UNI_C},  {0xFFFD, UNI_S},    {0x1F999, UNI_S},   {0x31350, UNI_L}, /* 15.0 */
	    {0x2EBF0, UNI_L}, {0x2EE5D, UNI_L},   {0x2EE5E, UNI_CN},  {0x31EF, UNI_S},  /* 15.1 */
	    {0x1C89, UNI_CN}, {0x10FFFF, UNI_CN}, {0x110000, UNI_CN}, {0xFFFFFFFF, UNI_CN},
	};
	for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
		CHECKF(uni_category(cats[i].cp) == cats[i].cat, "U+%04X: %d, expected %d", (unsigned)cats[i].cp,
		       uni_category(cats[i].cp), cats[i].cat);
	static const uint32_t space[] = {9,      10,     11,     12,     13,     32,     0x85,   0xA0,
	                                 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
	static const uint32_t no_space[] = {0, 8, 14, 0x1C, 0x1F, 0x21, 0x84, 0x86, 0x180E, 0x200B, 0x2060, 0xFEFF};
	for (size_t i = 0; i < sizeof space / sizeof space[0]; i++)
		CHECKF(uni_is_space(space[i]), "U+%04X", (unsigned)space[i]);
	for (size_t i = 0; i < sizeof no_space / sizeof no_space[0]; i++)
		CHECKF(!uni_is_space(no_space[i]), "U+%04X", (unsigned)no_space[i]);

	static const struct {
		const char *s;
		size_t n;
		uint32_t cp;
		size_t len;
	} dec[] = {
	    {"a", 1, 'a', 1},
	    {"\xc3\xa9", 2, 0xE9, 2},
	    {"\xe2\x82\xac", 3, 0x20AC, 3},
	    {"\xf0\x9f\xa6\x99", 4, 0x1F999, 4},
	    {"\xc0\x80", 2, 0, 2},              /* overlong: accepted */
	    {"\xed\xa0\x80", 3, 0xD800, 3},     /* surrogate: accepted */
	    {"\xf4\x90\x80\x80", 4, 0xFFFD, 1}, /* above U+10FFFF */
	    {"\x80", 1, 0xFFFD, 1},
	    {"\xe2\x82", 2, 0xFFFD, 1},
	    {"\xe2\x28\xa1", 3, 0xFFFD, 1},
	    {"\xf8\x88\x80\x80\x80", 5, 0xFFFD, 1},
	};
	for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
		size_t len;
		uint32_t cp = uni_decode(dec[i].s, dec[i].n, &len);
		CHECKF(cp == dec[i].cp && len == dec[i].len, "case %zu: U+%04X/%zu", i, (unsigned)cp, len);
		char out[4];
		size_t k = uni_encode(cp, out);
		CHECK(k >= 1 && k <= 4);
		size_t back;
		CHECK(uni_decode(out, k, &back) == cp && back == k);
	}
}

/* ---- synthetic vocabularies --------------------------------------------- */

#define NMAX 16

/* A "gpt2" vocabulary of toks with merges (NULL-terminated lists) and pre (NULL: no key). */
static void toy_bpe(struct toy *t, const char *pre, const char *const toks[NMAX], const char *const merges[NMAX])
{
	struct gb b = {0};
	struct sam_error err = {0};
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	if (pre) gb_kv_str(&b, "tokenizer.ggml.pre", pre);
	gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, NMAX);
	gb_kv_strs(&b, "tokenizer.ggml.merges", merges, NMAX);
	CHECKF(toy_load(t, &b, &err) == 0, "tok_load: %s", err.msg);
}

#define G "\xc4\xa0" /* U+0120, the code point of ' ' */

TEST(bpe_toy_merge_order)
{
	const char *const toks[NMAX] = {"a", "b", "c", "ab", "bc", "abc", G};
	struct toy t = {0};
	/* lowest rank first: b+c, then a+bc */
	const char *const m1[NMAX] = {"b c", "a b", "a bc"};
	toy_bpe(&t, "gpt-2", toks, m1);
	CHECK_INT(t.v.n_merges, 3);
	const int32_t want1[] = {5};
	vocab_check_ids(&t.v, "abc", false, false, want1, 1);
	toy_free(&t);
	/* a+b first; "ab c" is no merge */
	const char *const m2[NMAX] = {"a b", "b c", "a bc"};
	toy_bpe(&t, "gpt-2", toks, m2);
	const int32_t want2[] = {3, 2};
	vocab_check_ids(&t.v, "abc", false, false, want2, 2);
	/* words are merged separately: " abc" is the word "Ġabc" with no merge for Ġ */
	const int32_t want3[] = {3, 2, 6, 3, 2};
	vocab_check_ids(&t.v, "abc abc", false, false, want3, 5);
	toy_free(&t);
	/* a repeated merge keeps its first rank (llama.cpp's emplace) */
	const char *const m3[NMAX] = {"a b", "b c", "a b"};
	toy_bpe(&t, "gpt-2", toks, m3);
	vocab_check_ids(&t.v, "abc", false, false, want2, 2);
	toy_free(&t);
	/* equal ranks: the leftmost pair first */
	const char *const toks2[NMAX] = {"a", "aa"};
	const char *const m4[NMAX] = {"a a"};
	toy_bpe(&t, "gpt-2", toks2, m4);
	const int32_t want4[] = {1, 0};
	vocab_check_ids(&t.v, "aaa", false, false, want4, 2);
	const int32_t want5[] = {1, 1, 0};
	vocab_check_ids(&t.v, "aaaaa", false, false, want5, 3);
	toy_free(&t);
}

TEST(bpe_toy_fallback)
{
	/* "ab" is merged but is no token: its single bytes */
	const char *const toks[NMAX] = {"a", "b", "x"};
	const char *const merges[NMAX] = {"a b"};
	struct toy t = {0};
	toy_bpe(&t, "gpt-2", toks, merges);
	const int32_t want[] = {0, 1};
	vocab_check_ids(&t.v, "ab", false, false, want, 2);
	toy_free(&t);
	/* "é" is C3 A9: symbols "Ã" (C3 83) and "©" (C2 A9); "©" is no token, so its bytes C2 and A9 are looked up */
	const char *const toks2[NMAX] = {"\xc3\x83", "\xc2", "\xa9", "z"};
	const char *const none[NMAX] = {"q q"};
	toy_bpe(&t, "gpt-2", toks2, none);
	const int32_t want2[] = {0, 1, 2};
	vocab_check_ids(&t.v, "\xc3\xa9", false, false, want2, 3);
	/* a byte with nothing at all vanishes */
	const int32_t want3[] = {3};
	vocab_check_ids(&t.v, "\x01z", false, false, want3, 1);
	toy_free(&t);
}

TEST(bpe_toy_pre_tokenizers)
{
	const char *const toks[NMAX] = {"1", "2", "3", "4", "12", "123", "a", "b", "c", "abc", G};
	const char *const merges[NMAX] = {"1 2", "12 3"};
	struct toy t = {0};
	/* qwen2: \p{N} alone, so digits never merge */
	toy_bpe(&t, "qwen2", toks, merges);
	CHECK_INT(t.v.pre, TOK_PRE_QWEN2);
	const int32_t q[] = {0, 1, 2, 3};
	vocab_check_ids(&t.v, "1234", false, false, q, 4);
	toy_free(&t);
	/* dbrx: Llama 3's regex (\p{N}{1,3}), merges not ignored */
	toy_bpe(&t, "dbrx", toks, merges);
	CHECK(t.v.pre == TOK_PRE_LLAMA3 && !t.v.ignore_merges && !t.v.add_bos);
	const int32_t l3[] = {5, 3};
	vocab_check_ids(&t.v, "1234", false, false, l3, 2);
	const int32_t abc[] = {6, 7, 8}; /* no merges for letters */
	vocab_check_ids(&t.v, "abc", false, false, abc, 3);
	toy_free(&t);
	/* llama-bpe: a word that is a token is taken whole (ignore_merges); BOS is on (the default id, 11, is
	 * past this vocabulary) */
	toy_bpe(&t, "llama-bpe", toks, merges);
	CHECK(t.v.pre == TOK_PRE_LLAMA3 && t.v.ignore_merges && t.v.add_bos && t.v.bos == -1);
	const int32_t whole[] = {9};
	vocab_check_ids(&t.v, "abc", false, false, whole, 1);
	toy_free(&t);
	/* starcoder family (smollm): each digit is its own word before GPT-2's regex */
	toy_bpe(&t, "smollm", toks, merges);
	CHECK_INT(t.v.pre, TOK_PRE_STARCODER);
	vocab_check_ids(&t.v, "1234", false, false, q, 4);
	toy_free(&t);
	/* gpt-2: ' ?\p{N}+' is one word, merged */
	toy_bpe(&t, "gpt-2", toks, merges);
	vocab_check_ids(&t.v, "1234", false, false, l3, 2);
	toy_free(&t);
}

TEST(bpe_toy_pieces_and_special)
{
	const char *const toks[NMAX] = {"a", G "hi", "x\xe2\x98\x83", "<u>", "<c>", "[PAD]", "b", G};
	const int32_t types[] = {1, 1, 1, 4, 3, 5, 6, 1};
	const char *const merges[NMAX] = {"h i", G " hi"}; /* "hi" itself is no token */
	struct gb b = {0};
	struct sam_error err = {0};
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	gb_kv_str(&b, "tokenizer.ggml.pre", "gpt-2");
	gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, NMAX);
	gb_kv_i32s(&b, "tokenizer.ggml.token_type", types, 8);
	gb_kv_strs(&b, "tokenizer.ggml.merges", merges, NMAX);
	gb_kv_u32(&b, "tokenizer.ggml.bos_token_id", 4);
	gb_kv_bool(&b, "tokenizer.ggml.add_bos_token", true);
	gb_kv_bool(&b, "tokenizer.ggml.add_space_prefix", true);
	struct toy t = {0};
	CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
	/* the key is read, but byte-level BPE never adds a space (as llama.cpp) */
	CHECK(t.v.add_space_prefix && t.v.add_bos && t.v.bos == 4);
	const int32_t want[] = {4, 0, 3, 6, 3}; /* BOS, a, <u> (user-defined: always split out), b, <u> */
	vocab_check_ids(&t.v, "a<u>b<u>", true, false, want, 5);
	const int32_t want2[] = {0, 4, 1};
	vocab_check_ids(&t.v, "a<c> hi", false, true, want2, 3);

	char buf[64];
	size_t n = tok_piece(&t.v, 1, false, buf, sizeof buf);
	CHECK(n == 3 && memcmp(buf, " hi", 3) == 0);
	/* a code point outside the byte map: llama_decode_text's marker, with the whole token text */
	static const char unk[] = "x[UNK_BYTE_0xe29883x\xe2\x98\x83]";
	n = tok_piece(&t.v, 2, false, buf, sizeof buf);
	CHECKF(n == sizeof unk - 1 && memcmp(buf, unk, n) == 0, "%.*s", (int)n, buf);
	CHECK_INT(tok_piece(&t.v, 3, false, buf, sizeof buf), 3); /* user-defined: verbatim */
	CHECK(memcmp(buf, "<u>", 3) == 0);
	CHECK_INT(tok_piece(&t.v, 4, false, buf, sizeof buf), 0); /* control */
	CHECK_INT(tok_piece(&t.v, 4, true, buf, sizeof buf), 3);
	CHECK_INT(tok_piece(&t.v, 5, true, buf, sizeof buf), 0); /* unused */
	CHECK_INT(tok_piece(&t.v, 6, true, buf, sizeof buf), 0); /* a BYTE token means nothing to BPE */
	toy_free(&t);
}

/* jina-v2-de: "<mask>" drops the whitespace to its left (LSTRIP), as llama.cpp sets it by pre name. */
TEST(bpe_toy_lstrip)
{
	const char *const toks[NMAX] = {"a", G, "<mask>"};
	const int32_t types[] = {1, 1, 4};
	const char *const none[NMAX] = {"q q"};
	const int32_t stripped[] = {0, 2}, kept[] = {0, 1, 2};
	for (int k = 0; k < 2; k++) {
		struct gb b = {0};
		struct sam_error err = {0};
		gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
		gb_kv_str(&b, "tokenizer.ggml.pre", k ? "jina-v2-de" : "gpt-2");
		gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, NMAX);
		gb_kv_i32s(&b, "tokenizer.ggml.token_type", types, 3);
		gb_kv_strs(&b, "tokenizer.ggml.merges", none, NMAX);
		struct toy t = {0};
		CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
		CHECK_INT(t.v.pre, TOK_PRE_GPT2);
		vocab_check_ids(&t.v, "a <mask>", false, false, k ? stripped : kept, k ? 2 : 3);
		toy_free(&t);
	}
}

TEST(bpe_toy_load_errors)
{
	const char *const toks[NMAX] = {"a", "b"};
	const char *const merges[NMAX] = {"a b"};
	struct sam_error err = {0};
	struct toy t = {0};
	/* no merges */
	struct gb b = {0};
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, NMAX);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EFORMAT);
	CHECKF(strstr(err.msg, "tokenizer.ggml.merges") != NULL, "%s", err.msg);
	CHECK(t.v.text == NULL && t.v.merge_hash == NULL && t.v.n_tokens == 0);
	toy_free(&t);
	/* merges of the wrong type */
	const int32_t ints[] = {1, 2};
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, NMAX);
	gb_kv_i32s(&b, "tokenizer.ggml.merges", ints, 2);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EFORMAT);
	toy_free(&t);
	/* a known pre-tokenizer that is not implemented */
	gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
	gb_kv_str(&b, "tokenizer.ggml.pre", "tekken");
	gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, NMAX);
	gb_kv_strs(&b, "tokenizer.ggml.merges", merges, NMAX);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EUNSUPPORTED);
	CHECK_STR(err.msg, "BPE pre-tokenizer 'tekken' is not supported");
	toy_free(&t);
	/* an unknown one: the default regexes, as llama.cpp */
	toy_bpe(&t, "brand-new-model", toks, merges);
	CHECK_INT(t.v.pre, TOK_PRE_DEFAULT);
	const int32_t ab[] = {0, 1}; /* "ab" is no token: its bytes */
	vocab_check_ids(&t.v, "ab", false, false, ab, 2);
	toy_free(&t);
	/* other tokenizer models */
	gb_kv_str(&b, "tokenizer.ggml.model", "t5");
	gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, NMAX);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EUNSUPPORTED);
	CHECK_STR(err.msg, "tokenizer model 't5' is not supported (only 'llama' and 'gpt2')");
	toy_free(&t);
}
