/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader (and, on inputs the
 * reader accepts, the writer).
 *
 * The input is parsed from an exactly-sized buffer; on success everything
 * the reader hands out is walked: every kv and array element, every
 * tensor's first and last data byte, and the lookups by name. ASan/UBSan
 * turn any out-of-bounds read into a crash.
 *
 * Then the file is copied through the writer and read back: the copy must
 * parse and hold the same keys, values and tensor bytes (the invariant the
 * LoRA trainer and `sam synth` rely on). Inputs the writer rightly refuses
 * (llama.cpp-incompatible names) are skipped.
 *
 *   make fuzz FUZZ_SECONDS=60
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sam/gguf.h"
#include "sam/gguf_write.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void walk_value(const struct gguf_value *v)
{
	if (v->type == GGUF_T_STRING) {
		if (v->str.n) sink += (uint8_t)v->str.s[0] + (uint8_t)v->str.s[v->str.n - 1];
		return;
	}
	if (v->type != GGUF_T_ARRAY) {
		sink += v->u;
		return;
	}
	for (uint64_t i = 0; i < v->arr.n; i++) {
		if (v->arr.type == GGUF_T_STRING) {
			struct gguf_str s = gguf_arr_str(v, i);
			if (s.n) sink += (uint8_t)s.s[0] + (uint8_t)s.s[s.n - 1];
		} else {
			double d = gguf_arr_num(v, i);
			sink += d == d; /* reads it without UB on NaN or huge values */
		}
	}
}

/* A NUL-terminated copy of s, or NULL when s holds a NUL (not findable by C string). */
static char *cstr(struct gguf_str s)
{
	if (memchr(s.s, 0, s.n)) return NULL;
	char *p = malloc(s.n + 1);
	if (!p) abort();
	memcpy(p, s.s, s.n);
	p[s.n] = 0;
	return p;
}

static void walk(const struct gguf_file *f)
{
	for (uint64_t i = 0; i < f->n_kv; i++) {
		const struct gguf_kv *kv = &f->kv[i];
		walk_value(&kv->v);
		char *k = cstr(kv->key);
		if (!k) continue;
		if (gguf_find(f, k) != kv) abort();
		int64_t iv;
		double dv;
		bool bv;
		struct gguf_str sv;
		const struct gguf_value *av;
		sink += (uint64_t)gguf_get_int(f, k, &iv, NULL) + (uint64_t)gguf_get_float(f, k, &dv, NULL) +
			(uint64_t)gguf_get_bool(f, k, &bv, NULL) + (uint64_t)gguf_get_str(f, k, &sv, NULL) +
			(uint64_t)gguf_get_arr(f, k, GGUF_T_COUNT, &av, NULL);
		free(k);
	}
	for (uint64_t i = 0; i < f->n_tensors; i++) {
		const struct gguf_tensor *t = &f->tensors[i];
		if (t->nbytes) {
			const uint8_t *d = t->data;
			sink += d[0] + d[t->nbytes - 1];
		}
		char *name = cstr(t->name);
		if (!name) continue;
		if (gguf_find_tensor(f, name) != t) abort();
		free(name);
	}
}

/* Equal, or both NaN (an F32 signalling NaN comes back quiet: it went through a double). */
static bool same_num(double a, double b)
{
	return a == b || (a != a && b != b);
}

/* Copy f through the writer, read it back and compare. */
static void roundtrip(const struct gguf_file *f)
{
	struct gguf_writer w;
	gguf_writer_init(&w);
	for (uint64_t i = 0; i < f->n_kv; i++) gguf_writer_copy_kv(&w, &f->kv[i]);
	for (uint64_t i = 0; i < f->n_tensors; i++) gguf_writer_copy_tensor(&w, &f->tensors[i]);
	/* skip what the writer refuses, and huge paddings (alignment up to 2^30) */
	uint64_t size = gguf_writer_size(&w);
	if (w.status || size == 0 || size > (1u << 24)) {
		gguf_writer_free(&w);
		return;
	}
	void *buf;
	size_t n;
	struct sam_error err;
	if (gguf_writer_to_mem(&w, &buf, &n, &err)) abort();
	struct gguf_file g;
	if (gguf_open_mem(&g, buf, n, &err)) abort();
	if (g.n_kv != f->n_kv || g.n_tensors != f->n_tensors || g.alignment != f->alignment) abort();
	for (uint64_t i = 0; i < f->n_kv; i++) {
		const struct gguf_kv *a = &f->kv[i], *b = &g.kv[i];
		if (a->key.n != b->key.n || memcmp(a->key.s, b->key.s, a->key.n) || a->v.type != b->v.type) abort();
		if (a->v.type == GGUF_T_STRING) {
			if (a->v.str.n != b->v.str.n || memcmp(a->v.str.s, b->v.str.s, a->v.str.n)) abort();
		} else if (a->v.type == GGUF_T_ARRAY) {
			if (a->v.arr.type != b->v.arr.type || a->v.arr.n != b->v.arr.n) abort();
			for (uint64_t j = 0; j < a->v.arr.n; j++) {
				if (a->v.arr.type == GGUF_T_STRING) {
					struct gguf_str x = gguf_arr_str(&a->v, j), y = gguf_arr_str(&b->v, j);
					if (x.n != y.n || memcmp(x.s, y.s, x.n)) abort();
				} else if (!same_num(gguf_arr_num(&a->v, j), gguf_arr_num(&b->v, j))) {
					abort();
				}
			}
		} else if (a->v.type == GGUF_T_F32 || a->v.type == GGUF_T_F64) {
			if (!same_num(a->v.f, b->v.f)) abort();
		} else if (a->v.u != b->v.u) {
			abort();
		}
	}
	for (uint64_t i = 0; i < f->n_tensors; i++) {
		const struct gguf_tensor *a = &f->tensors[i], *b = &g.tensors[i];
		if (a->nbytes != b->nbytes || a->type != b->type || a->n_dims != b->n_dims ||
		    memcmp(a->ne, b->ne, sizeof a->ne) || (a->nbytes && memcmp(a->data, b->data, a->nbytes)))
			abort();
	}
	gguf_close(&g);
	free(buf);
	gguf_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exactly-sized copy, so reading one byte past the end is caught */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy) return 0;
	if (size) memcpy(copy, data, size);
	struct gguf_file f;
	struct sam_error err;
	if (gguf_open_mem(&f, copy, size, &err) == 0) {
		walk(&f);
		roundtrip(&f);
		gguf_close(&f);
	} else if (f.kv || f.tensors || f.kv_index || f.tensor_index) {
		abort(); /* a failed open must leave nothing behind */
	}
	free(copy);
	return 0;
}
