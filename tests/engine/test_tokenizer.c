/*
 * test_tokenizer.c - the SPM tokenizer against llama.cpp's own vectors
 * (vocab/NAME.gguf.inp/.out and the ids of the reference prompts), the
 * `sam tokenize` command, tok_piece round trips, and small synthetic
 * vocabularies (built in memory) for the corner cases.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sam/gguf.h"
#include "sam/tokenizer.h"
#include "test.h"
#include "vocab_vectors.h"

/* ---- llama.cpp's vectors ------------------------------------------------ */

TEST(tok_vectors_llama_spm)
{
	vocab_run_vectors("ggml-vocab-llama-spm", "ggml-vocab-llama-spm", TOK_SPM);
}

TEST(tok_vectors_phi3)
{
	vocab_run_vectors("ggml-vocab-phi-3", "ggml-vocab-phi-3", TOK_SPM);
}

TEST(tok_llama_spm_metadata)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-llama-spm.gguf", &f, &v);
	CHECK_INT(v.type, TOK_SPM);
	CHECK_INT(v.n_tokens, 32000);
	CHECK_INT(v.bos, 1);
	CHECK_INT(v.eos, 2);
	CHECK_INT(v.unk, 0);
	CHECK_INT(v.pad, -1);
	CHECK_INT(v.eot, -1);
	CHECK(v.add_bos && !v.add_eos && v.add_space_prefix);
	CHECK_INT(v.byte_id[0], 3);
	CHECK_INT(v.byte_id['\n'], 13);
	CHECK_INT(v.byte_id[0xff], 258);
	CHECK_INT(tok_find(&v, "<s>", 3), 1);
	CHECK_INT(tok_find(&v,
	                   "\xe2\x96\x81"
	                   "the",
	                   6),
	          278);
	CHECK_INT(tok_find(&v, "no such token here", 18), -1);
	CHECK_INT(tok_find(&v, "", 0), -1);
	CHECK(tok_is_eog(&v, 2));
	CHECK(!tok_is_eog(&v, 1) && !tok_is_eog(&v, -1) && !tok_is_eog(&v, 278));
	/* the special cache: <unk>, <s>, </s>, longest first */
	CHECK_INT(v.n_special, 3);
	CHECK_INT(v.special[0], 0);
	CHECK_INT(v.special[1], 2);
	CHECK_INT(v.special[2], 1);
	vocab_close(&f, &v);
}

TEST(tok_empty_text)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-llama-spm.gguf", &f, &v);
	vocab_check_ids(&v, "", false, false, NULL, 0);
	const int32_t bos[] = {1};
	vocab_check_ids(&v, "", true, false, bos, 1);
	const int32_t space[] = {1, 259}; /* " " -> "▁▁" */
	vocab_check_ids(&v, " ", true, false, space, 2);
	vocab_close(&f, &v);
}

TEST(tok_parse_special_api)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-llama-spm.gguf", &f, &v);
	/* with parse_special, "<s>" is BOS and the text after it gets the space prefix */
	int32_t *a, *b;
	size_t na, nb;
	vocab_encode(&v, "<s>Hello world</s>", 18, false, true, &a, &na);
	vocab_encode(&v, "Hello world", 11, false, false, &b, &nb);
	CHECK_INT(na, nb + 2);
	CHECK_INT(a[0], 1);
	CHECK(memcmp(a + 1, b, nb * sizeof *b) == 0);
	CHECK_INT(a[na - 1], 2);
	free(a);
	free(b);
	/* without it, "<s>" is plain text */
	vocab_encode(&v, "<s>", 3, false, false, &a, &na);
	CHECK(na > 1);
	for (size_t i = 0; i < na; i++)
		CHECK(a[i] != 1);
	free(a);
	/* add_special adds BOS in front of a parsed one too (llama.cpp only warns) */
	const int32_t two_bos[] = {1, 1};
	vocab_check_ids(&v, "<s>", true, true, two_bos, 2);
	vocab_close(&f, &v);
}

TEST(tok_phi3_rstrip_and_eog)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-phi-3.gguf", &f, &v);
	CHECK_INT(v.eos, 32000);
	CHECK_INT(v.pad, 32000);
	CHECK(tok_is_eog(&v, 32000));  /* <|endoftext|> */
	CHECK(tok_is_eog(&v, 32007));  /* <|end|> */
	CHECK(!tok_is_eog(&v, 32010)); /* <|user|> */
	/* general.name "Phi3": special tokens strip whitespace to their right */
	CHECK(v.attr[32010] & TOK_ATTR_RSTRIP);
	CHECK(v.attr[2] & TOK_ATTR_RSTRIP);
	CHECK(!(v.attr[1] & TOK_ATTR_RSTRIP));
	CHECK(!(v.attr[32000] & TOK_ATTR_RSTRIP));
	/* "</s>" is USER_DEFINED here: split out even without parse_special */
	int32_t *a, *b;
	size_t na, nb;
	vocab_encode(&v, "Hi</s>  \n there", 15, false, false, &a, &na);
	vocab_encode(&v, "Hi</s>there", 11, false, false, &b, &nb);
	CHECK_INT(na, nb);
	CHECK(memcmp(a, b, na * sizeof *a) == 0);
	bool has_eos_text = false;
	for (size_t i = 0; i < na; i++)
		has_eos_text |= a[i] == 2;
	CHECK(has_eos_text);
	free(a);
	free(b);
	/* a chat turn */
	static const char chat[] = "<|user|>\nHi<|end|>\n<|assistant|>";
	vocab_encode(&v, chat, sizeof chat - 1, true, true, &a, &na);
	int32_t *hi;
	size_t nhi;
	vocab_encode(&v, "Hi", 2, false, false, &hi, &nhi);
	CHECK_INT(na, 4 + nhi); /* RSTRIP ate both newlines */
	CHECK_INT(a[0], 1);
	CHECK_INT(a[1], 32010);
	CHECK(memcmp(a + 2, hi, nhi * sizeof *hi) == 0);
	CHECK_INT(a[2 + nhi], 32007);
	CHECK_INT(a[3 + nhi], 32001);
	free(a);
	free(hi);
	vocab_close(&f, &v);
}

TEST(tok_large_text_is_fast)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-llama-spm.gguf", &f, &v);
	static const char line[] = "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
	size_t reps = 12000, ll = sizeof line - 1, len = reps * ll;
	char *text = malloc(len + (1 << 20));
	CHECK(text != NULL);
	for (size_t i = 0; i < reps; i++)
		memcpy(text + i * ll, line, ll);
	double t0 = sam_now();
	int32_t *ids;
	size_t n;
	vocab_encode(&v, text, len, true, false, &ids, &n);
	CHECK(n > reps * 10);
	free(ids);
	/* one megabyte without a single space: every merge in one symbol list */
	memset(text, 'a', 1 << 20);
	vocab_encode(&v, text, 1 << 20, false, false, &ids, &n);
	CHECK(n > 1000);
	free(ids);
	double dt = sam_now() - t0;
	CHECKF(dt < 60, "tokenizing 2 MB took %.1f s", dt);
	free(text);
	vocab_close(&f, &v);
}

/* ---- tok_piece ---------------------------------------------------------- */

static void check_round_trip(const struct tok_vocab *v, const char *text, size_t len)
{
	int32_t *ids;
	size_t n, dl;
	vocab_encode(v, text, len, true, false, &ids, &n);
	char *d = vocab_decode(v, ids, n, false, &dl);
	CHECKF(dl == len + 1 && d[0] == ' ' && memcmp(d + 1, text, len) == 0, "round trip of \"%.*s\" gave \"%.*s\"",
	       (int)len, text, (int)dl, d);
	free(d);
	free(ids);
}

TEST(tok_piece_round_trip)
{
	static const char *const texts[] = {
	    "Hello world",
	    "  leading and trailing spaces  ",
	    "tabs\tand\nnewlines\r\n",
	    "Gr\xc3\xbc\xc3\x9f"
	    "e, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
	    "emoji \xf0\x9f\xa6\x99\xf0\x9f\x98\x80 and \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
	    /* a bad lead byte swallows what follows it (a space would stay "▁"), so: letters */
	    "invalid utf-8: \xff"
	    "abc\xfe"
	    "abc \xc3x \xe2\x82x z\xf0",
	    "</s> and <unk> as text",
	};
	const char *models[] = {"vocab/ggml-vocab-llama-spm.gguf", "tiny-llama.gguf", "stories260K.gguf"};
	for (size_t m = 0; m < 3; m++) {
		struct gguf_file f;
		struct tok_vocab v;
		vocab_open(models[m], &f, &v);
		for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
			check_round_trip(&v, texts[i], strlen(texts[i]));
		/* every byte value but ' ' (see above), including NUL, survives through the byte tokens */
		char bytes[512];
		uint32_t x = 12345;
		for (int r = 0; r < 20; r++) {
			for (size_t i = 0; i < sizeof bytes; i++) {
				x = x * 1103515245u + 12345u;
				bytes[i] = (char)(x >> 16);
				if (bytes[i] == ' ') bytes[i] = 'x';
				if (i >= 2 && (uint8_t)bytes[i - 2] == 0xe2 && (uint8_t)bytes[i - 1] == 0x96 &&
				    (uint8_t)bytes[i] == 0x81)
					bytes[i] = 'x'; /* U+2581 itself decodes as a space */
			}
			check_round_trip(&v, bytes, sizeof bytes);
		}
		vocab_close(&f, &v);
	}
}

TEST(tok_piece_rendering)
{
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open("vocab/ggml-vocab-llama-spm.gguf", &f, &v);
	char buf[64];
	CHECK_INT(tok_piece(&v, 1, false, buf, sizeof buf), 0); /* control */
	CHECK_INT(tok_piece(&v, 1, true, buf, sizeof buf), 3);
	CHECK(memcmp(buf, "<s>", 3) == 0);
	CHECK_INT(tok_piece(&v, 0, false, buf, sizeof buf), 0); /* unknown, as llama.cpp */
	CHECK_INT(tok_piece(&v, 0, true, buf, sizeof buf), 5);
	CHECK_INT(tok_piece(&v, 13, false, buf, sizeof buf), 1); /* <0x0A> */
	CHECK_INT(buf[0], '\n');
	CHECK_INT(tok_piece(&v, 278, false, buf, sizeof buf), 4); /* ▁the */
	CHECK(memcmp(buf, " the", 4) == 0);
	/* too small: returns the full length, writes what fits */
	memset(buf, '#', sizeof buf);
	CHECK_INT(tok_piece(&v, 278, false, buf, 2), 4);
	CHECK(buf[0] == ' ' && buf[1] == 't' && buf[2] == '#');
	CHECK_INT(tok_piece(&v, 278, false, NULL, 0), 4);
	CHECK_INT(tok_piece(&v, -1, true, buf, sizeof buf), 0);
	CHECK_INT(tok_piece(&v, 32000, true, buf, sizeof buf), 0);
	vocab_close(&f, &v);
}

/* The greedy continuations rendered by llama.cpp equal our pieces of their ids. */
TEST(tok_piece_matches_reference_text)
{
	static const char *const models[] = {"stories260K", "tiny-llama"};
	static const char *const slugs[] = {"once-upon-a-time", "lily-and-ben", "the-little-dog", "hello-world"};
	int checked = 0;
	for (size_t m = 0; m < 2; m++) {
		char name[256];
		snprintf(name, sizeof name, "%s.gguf", models[m]);
		struct gguf_file f;
		struct tok_vocab v;
		vocab_open(name, &f, &v);
		for (size_t s = 0; s < 4; s++) {
			char ip[256], tp[256];
			snprintf(ip, sizeof ip, "%s/ref/%s.%s.greedy.ids",
			         getenv("SAM_MODELS") ? getenv("SAM_MODELS") : "../shared/models", models[m], slugs[s]);
			snprintf(tp, sizeof tp, "%.*s.txt", (int)(strlen(ip) - 4), ip);
			size_t il, tl;
			char *is = test_read_file(ip, &il), *ts = test_read_file(tp, &tl);
			if (!is || !ts) {
				free(is);
				free(ts);
				continue; /* hello-world exists for tiny-* only */
			}
			int32_t ids[1024];
			size_t n = vocab_parse_ids(is, is + il, ids, 1024);
			size_t dl;
			char *d = vocab_decode(&v, ids, n, false, &dl);
			CHECKF(dl == tl && memcmp(d, ts, tl) == 0, "%s: pieces differ from llama.cpp's text", tp);
			free(d);
			free(is);
			free(ts);
			checked++;
		}
		vocab_close(&f, &v);
	}
	CHECK_INT(checked, 7);
}

/* ---- the sam tokenize command ------------------------------------------- */

TEST(tok_cli_once_upon_a_time)
{
	const char *model = test_model("stories260K.gguf");
	struct test_proc p;
	test_run_sam(&p, 30, "tokenize", "-m", model, "Once upon a time", NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	CHECK_STR(p.out, "1 403 407 261 378\n");
	test_proc_free(&p);
	test_run_sam(&p, 30, "tokenize", "--no-bos", "-m", model, "Once upon a time", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "403 407 261 378\n");
	test_proc_free(&p);
}

static void check_cli_reference_prompt(const char *model)
{
	char gguf[256], ids[256];
	snprintf(gguf, sizeof gguf, "%s.gguf", model);
	snprintf(ids, sizeof ids, "ref/%s.logits.ids", model);
	const char *mp = test_model(gguf);
	size_t len;
	char *want = test_read_file(test_model(ids), &len);
	CHECK(want != NULL);
	while (len && (want[len - 1] == '\n' || want[len - 1] == ' '))
		want[--len] = 0;
	char *full = malloc(len + 2);
	snprintf(full, len + 2, "%s\n", want);
	struct test_proc p;
	test_run_sam(&p, 30, "tokenize", "-m", mp,
	             "Once upon a time, there was a little girl named Lily. She loved to play outside", NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	CHECK_STR(p.out, full);
	test_proc_free(&p);
	/* the same from a file, with --parse-special as llama.cpp's reference run had */
	char path[512];
	snprintf(path, sizeof path, "%s/prompt.txt", test_tmpdir());
	static const char prompt[] = "Once upon a time, there was a little girl named Lily. She loved to play outside";
	test_write_file(path, prompt, sizeof prompt - 1);
	test_run_sam(&p, 30, "tokenize", "-m", mp, "--parse-special", "-f", path, NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	CHECK_STR(p.out, full);
	test_proc_free(&p);
	free(full);
	free(want);
}

TEST(tok_cli_reference_prompt_stories260K)
{
	check_cli_reference_prompt("stories260K");
}

TEST(tok_cli_reference_prompt_tiny_llama)
{
	check_cli_reference_prompt("tiny-llama");
}

TEST(tok_cli_parse_special)
{
	const char *model = test_model("stories260K.gguf");
	struct test_proc p;
	test_run_sam(&p, 30, "tokenize", "-m", model, "--no-bos", "--parse-special", "<s>", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "1\n");
	test_proc_free(&p);
	test_run_sam(&p, 30, "tokenize", "-m", model, "--parse-special", "<s>Once</s>", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "1 1 403 2\n");
	test_proc_free(&p);
	/* without --parse-special, "<s>" is text: no id 1 after the BOS */
	test_run_sam(&p, 30, "tokenize", "-m", model, "--no-bos", "<s>", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strcmp(p.out, "1\n") != 0);
	int32_t ids[64];
	size_t n = vocab_parse_ids(p.out, p.out + p.out_len, ids, 64);
	CHECK(n > 1);
	for (size_t i = 0; i < n; i++)
		CHECK(ids[i] != 1);
	test_proc_free(&p);
}

TEST(tok_cli_empty_and_file)
{
	const char *model = test_model("stories260K.gguf");
	struct test_proc p;
	test_run_sam(&p, 30, "tokenize", "-m", model, "", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "1\n");
	test_proc_free(&p);
	test_run_sam(&p, 30, "tokenize", "-m", model, "--no-bos", "", NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, "\n");
	test_proc_free(&p);
	/* a file's bytes are taken as they are, trailing newline included */
	char path[512];
	snprintf(path, sizeof path, "%s/t.txt", test_tmpdir());
	test_write_file(path, "Once upon a time\n", 17);
	test_run_sam(&p, 30, "tokenize", "-m", model, "-f", path, NULL);
	CHECK_INT(p.status, 0);
	struct test_proc q;
	test_run_sam(&q, 30, "tokenize", "-m", model, "Once upon a time\n", NULL);
	CHECK_INT(q.status, 0);
	CHECK_STR(p.out, q.out);
	CHECK(strncmp(p.out, "1 403 407 261 378 ", 18) == 0);
	test_proc_free(&p);
	test_proc_free(&q);
}

TEST(tok_cli_errors)
{
	const char *model = test_model("stories260K.gguf");
	struct test_proc p;
	/* runtime errors: exit 1 with a message */
	test_run_sam(&p, 30, "tokenize", "-m", "/nonexistent/model.gguf", "hi", NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "sam tokenize: ") && strstr(p.err, "/nonexistent/model.gguf") &&
	      strstr(p.err, "No such file"));
	test_proc_free(&p);
	test_run_sam(&p, 30, "tokenize", "-m", model, "-f", "/nonexistent/prompt.txt", NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "/nonexistent/prompt.txt") != NULL);
	test_proc_free(&p);
	const char *bert = test_model("vocab/ggml-vocab-bert-bge.gguf");
	test_run_sam(&p, 30, "tokenize", "-m", bert, "hi", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "tokenizer model 'bert' is not supported") != NULL, "stderr: %s", p.err);
	test_proc_free(&p);
	/* usage errors: exit 2 */
	const char *const bad[][6] = {
	    {"tokenize", "hi", NULL},                             /* no model */
	    {"tokenize", "-m", model, NULL},                      /* no text */
	    {"tokenize", "-m", model, "a", "b", NULL},            /* two texts */
	    {"tokenize", "-m", model, "-f", "x.txt", "a"},        /* both */
	    {"tokenize", "-m", model, "--frobnicate", "a", NULL}, /* unknown option */
	    {"tokenize", "-m", NULL},                             /* missing value */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		test_run_sam(&p, 30, bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5], NULL);
		CHECKF(p.status == 2, "case %zu: status %d", i, p.status);
		CHECKF(strstr(p.err, "usage: sam tokenize") != NULL, "case %zu: stderr %s", i, p.err);
		test_proc_free(&p);
	}
	test_run_sam(&p, 30, "tokenize", "--help", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "usage: sam tokenize") != NULL);
	test_proc_free(&p);
}

TEST(tok_rejects_other_tokenizers)
{
	struct sam_error err = {0};
	struct gguf_file f;
	struct tok_vocab v;
	const char *path = test_model("vocab/ggml-vocab-bert-bge.gguf");
	CHECK(gguf_open(&f, path, &err) == 0);
	memset(&v, 0x55, sizeof v);
	CHECK_INT(tok_load(&v, &f, &err), SAM_EUNSUPPORTED);
	CHECKF(strstr(err.msg, "'bert'") != NULL, "%s", err.msg);
	CHECK(v.text == NULL && v.hash == NULL && v.n_tokens == 0); /* zeroed on failure */
	gguf_close(&f);
	/* gpt2 is supported now (tests/engine/test_bpe.c) */
	path = test_model("vocab/ggml-vocab-gpt-2.gguf");
	CHECK(gguf_open(&f, path, &err) == 0);
	CHECK_INT(tok_load(&v, &f, &err), 0);
	CHECK_INT(v.type, TOK_BPE);
	vocab_close(&f, &v);
}

/* ---- synthetic vocabularies --------------------------------------------- */

#define U2581 "\xe2\x96\x81"

/*
 * A toy vocabulary: 0 <unk>, 1 <s>, 2 </s>, then the texts given, all
 * NORMAL unless types[] says otherwise (index into the whole table).
 */
static void toy_basic(struct gb *b, const char *const *toks, const float *scores, const int32_t *types, size_t n)
{
	gb_kv_str(b, "tokenizer.ggml.model", "llama");
	gb_kv_tokens(b, toks, n);
	if (scores) gb_kv_f32s(b, "tokenizer.ggml.scores", scores, n);
	if (types) gb_kv_i32s(b, "tokenizer.ggml.token_type", types, n);
}

TEST(tok_toy_merge_order)
{
	static const char *const toks[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "abc", U2581};
	static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1, 1};
	struct sam_error err = {0};
	/* 1: "bc" scores higher than "ab": a + bc, then "abc" */
	{
		float scores[] = {0, 0, 0, 0, 0, 0, -5, -1, -10, 0};
		struct gb b = {0};
		toy_basic(&b, toks, scores, types, 10);
		gb_kv_bool(&b, "tokenizer.ggml.add_space_prefix", false);
		struct toy t = {0};
		CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
		CHECK(!t.v.add_space_prefix);
		const int32_t want[] = {8};
		vocab_check_ids(&t.v, "abc", false, false, want, 1);
		const int32_t want3[] = {8, 5};
		vocab_check_ids(&t.v, "abcc", false, false, want3, 2);
		toy_free(&t);
	}
	/* 2: without "abc", the higher score decides: a | bc */
	{
		static const char *const toks2[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "zzz", U2581};
		float scores[] = {0, 0, 0, 0, 0, 0, -5, -1, 0, 0};
		struct gb b = {0};
		toy_basic(&b, toks2, scores, types, 10);
		gb_kv_bool(&b, "tokenizer.ggml.add_space_prefix", false);
		struct toy t = {0};
		CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
		const int32_t want[] = {3, 7};
		vocab_check_ids(&t.v, "abc", false, false, want, 2);
		toy_free(&t);
	}
	/* 3: equal scores: the leftmost pair first: ab | c */
	{
		static const char *const toks3[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "zzz", U2581};
		float scores[] = {0, 0, 0, 0, 0, 0, -2, -2, 0, 0};
		struct gb b = {0};
		toy_basic(&b, toks3, scores, types, 10);
		gb_kv_bool(&b, "tokenizer.ggml.add_space_prefix", false);
		struct toy t = {0};
		CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
		const int32_t want[] = {6, 5};
		vocab_check_ids(&t.v, "abc", false, false, want, 2);
		/* the space prefix is off; a space still becomes U+2581 */
		const int32_t want2[] = {6, 9, 5};
		vocab_check_ids(&t.v, "ab c", false, false, want2, 3);
		toy_free(&t);
	}
}

TEST(tok_toy_bytes_duplicates_and_empty)
{
	/* no scores, no types: all NORMAL, score 0 */
	static const char *const toks[] = {"<unk>", "<s>", "</s>", "x", "<0xC3>", "", "q", "x", U2581, "<0x00>"};
	struct gb b = {0};
	toy_basic(&b, toks, NULL, NULL, 10);
	struct sam_error err = {0};
	struct toy t = {0};
	CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
	/* a later duplicate wins */
	CHECK_INT(tok_find(&t.v, "x", 1), 7);
	/* an empty text is renamed as llama.cpp does */
	CHECK_INT(tok_find(&t.v, "[EMPTY_5]", 9), 5);
	CHECK_INT(tok_find(&t.v, "", 0), -1);
	/* byte ids: "<0xXX>" first, else the byte itself (never for NUL) */
	CHECK_INT(t.v.byte_id[0xC3], 4);
	CHECK_INT(t.v.byte_id['q'], 6);
	CHECK_INT(t.v.byte_id['x'], 7);
	CHECK_INT(t.v.byte_id[0], 9);
	CHECK_INT(t.v.byte_id[0xA9], -1);
	/* "é" = C3 A9: byte token, then <unk>; "z" has nothing: <unk> */
	const int32_t want[] = {1, 8, 7, 4, 0, 0};
	vocab_check_ids(&t.v, "x\xc3\xa9z", true, false, want, 6);
	/* defaults without metadata */
	CHECK(t.v.add_bos && !t.v.add_eos && t.v.add_space_prefix);
	CHECK_INT(t.v.bos, 1);
	CHECK_INT(t.v.eos, 2);
	CHECK_INT(t.v.unk, 0);
	CHECK_INT(t.v.n_special, 0); /* all NORMAL */
	/* a NORMAL "<s>" is not split out even with parse_special: "▁" "<" "s" ">" */
	const int32_t want2[] = {8, 0, 0, 0};
	vocab_check_ids(&t.v, "<s>", false, true, want2, 4);
	toy_free(&t);
}

TEST(tok_toy_special_ids_and_flags)
{
	static const char *const toks[] = {"<unk>", "<s>", "</s>", "a", U2581, "<|end|>", "<B>", "<BB>"};
	static const int32_t types[] = {2, 3, 3, 1, 1, 1, 4, 4};
	struct gb b = {0};
	toy_basic(&b, toks, NULL, types, 8);
	gb_kv_u32(&b, "tokenizer.ggml.bos_token_id", 3);
	gb_kv_u32(&b, "tokenizer.ggml.eos_token_id", 1000);            /* out of range: default kept */
	gb_kv_u32(&b, "tokenizer.ggml.padding_token_id", 0xFFFFFFFFu); /* "none" */
	gb_kv_bool(&b, "tokenizer.ggml.add_bos_token", false);
	gb_kv_bool(&b, "tokenizer.ggml.add_eos_token", true);
	struct sam_error err = {0};
	struct toy t = {0};
	CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
	CHECK_INT(t.v.bos, 3);
	CHECK_INT(t.v.eos, 2);
	CHECK_INT(t.v.pad, -1);
	CHECK(!t.v.add_bos && t.v.add_eos);
	/* "<|end|>" is found by its text: EOT, end-of-generation, forced CONTROL */
	CHECK_INT(t.v.eot, 5);
	CHECK(tok_is_eog(&t.v, 5) && tok_is_eog(&t.v, 2) && !tok_is_eog(&t.v, 3));
	CHECK(t.v.attr[5] & TOK_ATTR_CONTROL);
	/* user-defined tokens split out always, longest first; control only when parsing */
	const int32_t want[] = {4, 3, 7, 6, 4, 3, 2}; /* "▁a" isn't a token: ▁ a */
	vocab_check_ids(&t.v, "a<BB><B>a", true, false, want, 7);
	const int32_t want2[] = {5, 4, 3, 2};
	vocab_check_ids(&t.v, "<|end|>a", true, true, want2, 4);
	toy_free(&t);
}

TEST(tok_toy_load_errors)
{
	static const char *const toks[] = {"<unk>", "<s>", "</s>"};
	static const float scores[] = {0, 0};
	static const int32_t types[] = {2, 3};
	struct sam_error err = {0};
	struct toy t = {0};
	struct gb b = {0};
	gb_kv_str(&b, "tokenizer.ggml.model", "llama");
	gb_kv_tokens(&b, toks, 3);
	gb_kv_f32s(&b, "tokenizer.ggml.scores", scores, 2);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EFORMAT);
	CHECKF(strstr(err.msg, "scores") != NULL, "%s", err.msg);
	toy_free(&t);

	b = (struct gb){0};
	gb_kv_str(&b, "tokenizer.ggml.model", "llama");
	gb_kv_tokens(&b, toks, 3);
	gb_kv_i32s(&b, "tokenizer.ggml.token_type", types, 2);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EFORMAT);
	CHECKF(strstr(err.msg, "token_type") != NULL, "%s", err.msg);
	toy_free(&t);

	b = (struct gb){0};
	gb_kv_str(&b, "tokenizer.ggml.model", "llama");
	CHECK_INT(toy_load(&t, &b, &err), SAM_EFORMAT);
	CHECKF(strstr(err.msg, "tokenizer.ggml.tokens") != NULL, "%s", err.msg);
	toy_free(&t);

	b = (struct gb){0};
	gb_kv_tokens(&b, toks, 3);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EFORMAT);
	CHECKF(strstr(err.msg, "tokenizer.ggml.model") != NULL, "%s", err.msg);
	toy_free(&t);

	b = (struct gb){0};
	gb_kv_str(&b, "tokenizer.ggml.model", "t5");
	gb_kv_tokens(&b, toks, 3);
	CHECK_INT(toy_load(&t, &b, &err), SAM_EUNSUPPORTED);
	CHECK_STR(err.msg, "tokenizer model 't5' is not supported (only 'llama' and 'gpt2')");
	toy_free(&t);

	/* a one-token vocabulary: default BOS/EOS do not exist */
	b = (struct gb){0};
	gb_kv_str(&b, "tokenizer.ggml.model", "llama");
	gb_kv_tokens(&b, toks, 1);
	CHECKF(toy_load(&t, &b, &err) == 0, "%s", err.msg);
	CHECK_INT(t.v.bos, -1);
	CHECK_INT(t.v.eos, -1);
	CHECK_INT(t.v.unk, 0);
	const int32_t want[] = {0, 0, 0, 0}; /* the 3 bytes of "▁" and "a": nothing but <unk> */
	vocab_check_ids(&t.v, "a", true, false, want, 4);
	toy_free(&t);
}
