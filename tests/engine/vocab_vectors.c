/*
 * vocab_vectors.c - helpers shared by the tokenizer tests; see
 * vocab_vectors.h.
 */
#include "vocab_vectors.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

void vocab_open(const char *name, struct gguf_file *f, struct tok_vocab *v)
{
	struct sam_error err = {0};
	const char *path = test_model(name);
	CHECKF(gguf_open(f, path, &err) == 0, "gguf_open %s: %s", path, err.msg);
	CHECKF(tok_load(v, f, &err) == 0, "tok_load %s: %s", path, err.msg);
}

void vocab_close(struct gguf_file *f, struct tok_vocab *v)
{
	tok_free(v);
	gguf_close(f);
}

void vocab_encode(const struct tok_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                  int32_t **ids, size_t *n)
{
	struct sam_error err = {0};
	int rc = tok_encode(v, text, len, add_special, parse_special, ids, n, &err);
	CHECKF(rc == 0, "tok_encode: %s", err.msg);
	CHECK(*ids != NULL);
}

const char *vocab_ids_str(const int32_t *ids, size_t n)
{
	static char buf[2][4096];
	static int slot;
	char *b = buf[slot++ & 1];
	size_t at = 0;
	b[0] = 0;
	for (size_t i = 0; i < n && at + 16 < sizeof buf[0]; i++)
		at += (size_t)snprintf(b + at, sizeof buf[0] - at, i ? " %d" : "%d", (int)ids[i]);
	return b;
}

size_t vocab_parse_ids(const char *s, const char *end, int32_t *out, size_t cap)
{
	size_t n = 0;
	while (s < end) {
		while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
			s++;
		if (s >= end) break;
		char *e;
		long x = strtol(s, &e, 10);
		if (e == s) break;
		if (n < cap) out[n] = (int32_t)x;
		n++;
		s = e;
	}
	return n;
}

void vocab_check_ids(const struct tok_vocab *v, const char *text, bool add_special, bool parse_special,
                     const int32_t *want, size_t n_want)
{
	int32_t *ids;
	size_t n;
	vocab_encode(v, text, strlen(text), add_special, parse_special, &ids, &n);
	CHECKF(n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0), "\"%s\": got [%s], expected [%s]",
	       text, vocab_ids_str(ids, n), vocab_ids_str(want, n_want));
	free(ids);
}

char *vocab_decode(const struct tok_vocab *v, const int32_t *ids, size_t n, bool special, size_t *len)
{
	size_t cap = 64, at = 0;
	char *s = malloc(cap);
	CHECK(s != NULL);
	for (size_t i = 0; i < n; i++) {
		size_t k = tok_piece(v, ids[i], special, s + at, cap - at);
		if (k > cap - at) {
			while (cap - at < k)
				cap *= 2;
			s = realloc(s, cap);
			CHECK(s != NULL);
			CHECK_INT(tok_piece(v, ids[i], special, s + at, cap - at), k);
		}
		at += k;
	}
	*len = at;
	return s;
}

void vocab_run_vectors(const char *gguf_name, const char *vectors, enum tok_type type)
{
	char gguf[256], inp[256], outp[256];
	snprintf(gguf, sizeof gguf, "vocab/%s.gguf", gguf_name);
	snprintf(inp, sizeof inp, "vocab/%s.gguf.inp", vectors);
	snprintf(outp, sizeof outp, "vocab/%s.gguf.out", vectors);
	struct gguf_file f;
	struct tok_vocab v;
	vocab_open(gguf, &f, &v);
	CHECK_INT(v.type, type);
	size_t in_len, out_len;
	char *in = test_read_file(test_model(inp), &in_len);
	char *out = test_read_file(test_model(outp), &out_len);
	CHECK(in && out);

	static const char sep[] = "\n__ggml_vocab_test__\n";
	const size_t sep_len = sizeof sep - 1;
	const char *p = in, *end = in + in_len, *o = out, *oend = out + out_len;
	int n_cases = 0, n_bad = 0;
	char first[8192] = "";
	for (;;) {
		const char *hit = NULL;
		for (const char *q = p; q + sep_len <= end; q++)
			if (*q == '\n' && memcmp(q, sep, sep_len) == 0) {
				hit = q;
				break;
			}
		if (!hit) break;
		CHECKF(o < oend, "%s: .out has fewer lines than .inp has cases", vectors);
		const char *eol = memchr(o, '\n', (size_t)(oend - o));
		if (!eol) eol = oend;
		int32_t want[1024];
		size_t n_want = vocab_parse_ids(o, eol, want, 1024);
		CHECK(n_want <= 1024);

		int32_t *ids;
		size_t n;
		vocab_encode(&v, p, (size_t)(hit - p), false, false, &ids, &n);
		if (n != n_want || memcmp(ids, want, n * sizeof *ids) != 0) {
			if (!n_bad++)
				snprintf(first, sizeof first, "case %d \"%.*s\": got [%s], expected [%s]", n_cases,
				         (int)(hit - p), p, vocab_ids_str(ids, n), vocab_ids_str(want, n_want));
		}
		free(ids);
		n_cases++;
		p = hit + sep_len;
		o = eol < oend ? eol + 1 : oend;
	}
	CHECKF(n_bad == 0, "%s with %s: %d of %d cases differ; first: %s", vectors, gguf_name, n_bad, n_cases, first);
	CHECKF(n_cases == 46, "%s: %d cases", vectors, n_cases);
	CHECKF(o == oend, "%s: .out has more lines than .inp has cases", vectors);
	free(in);
	free(out);
	vocab_close(&f, &v);
}

/* ---- a GGUF v3 file with metadata only, built in memory ----------------- */

void gb_bytes(struct gb *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		while (b->n + n > b->cap)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->p = realloc(b->p, b->cap);
		CHECK(b->p != NULL);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

void gb_u32(struct gb *b, uint32_t x)
{
	gb_bytes(b, &x, 4);
}

void gb_u64(struct gb *b, uint64_t x)
{
	gb_bytes(b, &x, 8);
}

void gb_str(struct gb *b, const char *s)
{
	gb_u64(b, strlen(s));
	gb_bytes(b, s, strlen(s));
}

void gb_key(struct gb *b, const char *key, uint32_t type)
{
	gb_str(b, key);
	gb_u32(b, type);
	b->n_kv++;
}

void gb_kv_str(struct gb *b, const char *key, const char *val)
{
	gb_key(b, key, GGUF_T_STRING);
	gb_str(b, val);
}

void gb_kv_u32(struct gb *b, const char *key, uint32_t val)
{
	gb_key(b, key, GGUF_T_U32);
	gb_u32(b, val);
}

void gb_kv_bool(struct gb *b, const char *key, bool val)
{
	uint8_t x = val;
	gb_key(b, key, GGUF_T_BOOL);
	gb_bytes(b, &x, 1);
}

void gb_kv_strs(struct gb *b, const char *key, const char *const *s, size_t n)
{
	size_t k = 0;
	while (k < n && s[k])
		k++;
	gb_key(b, key, GGUF_T_ARRAY);
	gb_u32(b, GGUF_T_STRING);
	gb_u64(b, k);
	for (size_t i = 0; i < k; i++)
		gb_str(b, s[i]);
}

void gb_kv_tokens(struct gb *b, const char *const *toks, size_t n)
{
	gb_kv_strs(b, "tokenizer.ggml.tokens", toks, n);
}

void gb_kv_f32s(struct gb *b, const char *key, const float *x, size_t n)
{
	gb_key(b, key, GGUF_T_ARRAY);
	gb_u32(b, GGUF_T_F32);
	gb_u64(b, n);
	gb_bytes(b, x, n * 4);
}

void gb_kv_i32s(struct gb *b, const char *key, const int32_t *x, size_t n)
{
	gb_key(b, key, GGUF_T_ARRAY);
	gb_u32(b, GGUF_T_I32);
	gb_u64(b, n);
	gb_bytes(b, x, n * 4);
}

int toy_load(struct toy *t, struct gb *b, struct sam_error *err)
{
	struct gb out = {0};
	gb_bytes(&out, "GGUF", 4);
	gb_u32(&out, 3);
	gb_u64(&out, 0);
	gb_u64(&out, b->n_kv);
	gb_bytes(&out, b->p, b->n);
	free(b->p);
	*b = (struct gb){0};
	t->buf = out.p;
	CHECKF(gguf_open_mem(&t->f, t->buf, out.n, err) == 0, "gguf_open_mem: %s", err->msg);
	return tok_load(&t->v, &t->f, err);
}

void toy_free(struct toy *t)
{
	tok_free(&t->v);
	gguf_close(&t->f);
	free(t->buf);
}
