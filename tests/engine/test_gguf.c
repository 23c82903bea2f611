/*
 * test_gguf.c - the GGUF reader and writer, and `sam gguf`.
 *
 * Valid files are made with the writer; hostile ones with a tiny raw byte
 * builder (struct rb) so each test shows exactly which field is broken.
 * Every malformed input is parsed from its own exactly-sized malloc'd
 * buffer, so under ASan an out-of-bounds read fails the test.
 */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sam/ggml_types.h"
#include "sam/gguf.h"
#include "sam/gguf_write.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------ */

/* A growable byte buffer for hand-made (usually broken) files. */
struct rb {
	uint8_t *p;
	size_t n, cap;
};

static void rb_put(struct rb *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p) abort();
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void rb_u32(struct rb *b, uint32_t v) { rb_put(b, &v, 4); }
static void rb_u64(struct rb *b, uint64_t v) { rb_put(b, &v, 8); }
static void rb_str(struct rb *b, const char *s)
{
	rb_u64(b, strlen(s));
	rb_put(b, s, strlen(s));
}

static void rb_zeros(struct rb *b, size_t n)
{
	while (n--) rb_put(b, "", 1);
}

static void rb_align(struct rb *b, size_t a) { rb_zeros(b, (a - b->n % a) % a); }

static void rb_header(struct rb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	rb_put(b, "GGUF", 4);
	rb_u32(b, version);
	rb_u64(b, n_tensors);
	rb_u64(b, n_kv);
}

static void rb_kv_u32(struct rb *b, const char *key, uint32_t v)
{
	rb_str(b, key);
	rb_u32(b, GGUF_T_U32);
	rb_u32(b, v);
}

static void rb_tensor(struct rb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
		      uint64_t offset)
{
	rb_str(b, name);
	rb_u32(b, n_dims);
	for (uint32_t d = 0; d < n_dims; d++) rb_u64(b, ne[d]);
	rb_u32(b, type);
	rb_u64(b, offset);
}

/* A file with one tensor (no kv), its data section padded and data_bytes long. */
static void one_tensor(struct rb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset,
		       size_t data_bytes)
{
	rb_header(b, 3, 1, 0);
	rb_tensor(b, "t", n_dims, ne, type, offset);
	rb_align(b, 32);
	rb_zeros(b, data_bytes);
}

/* Parse buf[0..n) from an exactly-sized copy; must fail with code and a message holding substr. */
#define EXPECT_FAIL(buf, n, code, substr) expect_fail(__LINE__, (buf), (n), (code), (substr))
static void expect_fail(int line, const void *buf, size_t n, int code, const char *substr)
{
	uint8_t *copy = malloc(n ? n : 1);
	if (n) memcpy(copy, buf, n);
	struct gguf_file f;
	struct sam_error err = { 0 };
	int rc = gguf_open_mem(&f, copy, n, &err);
	if (rc != code)
		test_fail(__FILE__, line, "gguf_open_mem returned %d (%s), expected %d; message: %s", rc,
			  sam_strerror(rc), code, err.msg);
	if (!strstr(err.msg, substr))
		test_fail(__FILE__, line, "message \"%s\" does not mention \"%s\"", err.msg, substr);
	if (f.kv || f.tensors || f.kv_index || f.tensor_index || f.map)
		test_fail(__FILE__, line, "the failed open left state behind");
	free(copy);
}

static void expect_fail_rb(int line, struct rb *b, int code, const char *substr)
{
	expect_fail(line, b->p, b->n, code, substr);
	free(b->p);
	memset(b, 0, sizeof *b);
}
#define EXPECT_FAIL_RB(b, code, substr) expect_fail_rb(__LINE__, (b), (code), (substr))

static void open_or_fail(int line, struct gguf_file *f, const void *buf, size_t n)
{
	struct sam_error err = { 0 };
	int rc = gguf_open_mem(f, buf, n, &err);
	if (rc) test_fail(__FILE__, line, "gguf_open_mem: %d %s", rc, err.msg);
}
#define OPEN_MEM(f, buf, n) open_or_fail(__LINE__, (f), (buf), (n))

static void to_mem_or_fail(int line, struct gguf_writer *w, void **buf, size_t *n)
{
	struct sam_error err = { 0 };
	int rc = gguf_writer_to_mem(w, buf, n, &err);
	if (rc) test_fail(__FILE__, line, "gguf_writer_to_mem: %d %s", rc, err.msg);
}
#define TO_MEM(w, buf, n) to_mem_or_fail(__LINE__, (w), (buf), &(n))

static bool str_is(struct gguf_str s, const char *want, size_t n)
{
	return s.n == n && memcmp(s.s, want, n) == 0;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/*
 * A small file with every value type and three tensors (F32, Q8_0, F16)
 * whose data are recognisable patterns. The last tensor's size is a multiple
 * of the alignment, so the file has no trailing padding and every strict
 * prefix of it is missing something.
 */
static float g_f32[6] = { 1, -2, 3.5f, 4, 5, 6 };
static uint8_t g_q8[2 * 34];
static uint16_t g_f16[32];

static void build_small(struct gguf_writer *w, uint32_t alignment)
{
	static const int16_t i16s[] = { -1, 2, -3 };
	static const float f32s[] = { 0.5f, -1.25f };
	static const double f64s[] = { 1e300, -0.0 };
	static const uint64_t u64s[] = { UINT64_MAX, 0 };
	static const uint8_t bools[] = { 1, 0, 1 };
	static const char *strs[] = { "a", "", "three", "\xe2\x96\x81x" };
	for (size_t i = 0; i < sizeof g_q8; i++) g_q8[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < 32; i++) g_f16[i] = (uint16_t)(0x3c00 + i);

	gguf_writer_init(w);
	gguf_writer_set_str(w, "general.architecture", "llama");
	if (alignment) gguf_writer_set_alignment(w, alignment);
	gguf_writer_set_u8(w, "t.u8", 200);
	gguf_writer_set_i8(w, "t.i8", -100);
	gguf_writer_set_u16(w, "t.u16", 60000);
	gguf_writer_set_i16(w, "t.i16", -30000);
	gguf_writer_set_u32(w, "t.u32", 4000000000u);
	gguf_writer_set_i32(w, "t.i32", -2000000000);
	gguf_writer_set_u64(w, "t.u64", (1ull << 63) + 5);
	gguf_writer_set_i64(w, "t.i64", INT64_MIN);
	gguf_writer_set_f32(w, "t.f32", 1.5f);
	gguf_writer_set_f64(w, "t.f64", -2.25e300);
	gguf_writer_set_bool(w, "t.bool", true);
	gguf_writer_set_strn(w, "t.str", "he\0llo", 6);
	gguf_writer_set_str(w, "t.empty", "");
	gguf_writer_set_arr(w, "t.arr_i16", GGUF_T_I16, i16s, 3);
	gguf_writer_set_arr(w, "t.arr_f32", GGUF_T_F32, f32s, 2);
	gguf_writer_set_arr(w, "t.arr_f64", GGUF_T_F64, f64s, 2);
	gguf_writer_set_arr(w, "t.arr_u64", GGUF_T_U64, u64s, 2);
	gguf_writer_set_arr(w, "t.arr_bool", GGUF_T_BOOL, bools, 3);
	gguf_writer_set_arr(w, "t.arr_empty", GGUF_T_U32, NULL, 0);
	gguf_writer_set_arr_str(w, "t.arr_str", strs, NULL, 4);
	gguf_writer_set_arr_str(w, "t.arr_str_empty", NULL, NULL, 0);
	gguf_writer_add_tensor(w, "a.f32", 2, (const uint64_t[]){ 3, 2 }, GGML_TYPE_F32, g_f32, sizeof g_f32);
	gguf_writer_add_tensor(w, "b.q8", 2, (const uint64_t[]){ 32, 2 }, GGML_TYPE_Q8_0, g_q8, sizeof g_q8);
	gguf_writer_add_tensor(w, "c.f16", 1, (const uint64_t[]){ 32 }, GGML_TYPE_F16, g_f16, sizeof g_f16);
}

static void *small_file(uint32_t alignment, size_t *n)
{
	struct gguf_writer w;
	void *buf;
	build_small(&w, alignment);
	TO_MEM(&w, &buf, *n);
	gguf_writer_free(&w);
	return buf;
}

/* ---- reader round trips ------------------------------------------------- */

TEST(gguf_roundtrip_every_value_type)
{
	size_t n;
	void *buf = small_file(0, &n);
	struct gguf_file f;
	OPEN_MEM(&f, buf, n);
	CHECK_INT(f.version, 3);
	CHECK_INT(f.n_kv, 22);
	CHECK_INT(f.n_tensors, 3);
	CHECK_INT(f.alignment, 32);
	CHECK(gguf_str_eq(f.kv[0].key, "general.architecture")); /* order is kept */
	CHECK(gguf_str_eq(f.kv[21].key, "t.arr_str_empty"));

	const struct gguf_kv *kv;
	CHECK((kv = gguf_find(&f, "t.u8")) && kv->v.type == GGUF_T_U8 && kv->v.u == 200);
	CHECK((kv = gguf_find(&f, "t.i8")) && kv->v.type == GGUF_T_I8 && kv->v.i == -100);
	CHECK((kv = gguf_find(&f, "t.u16")) && kv->v.type == GGUF_T_U16 && kv->v.u == 60000);
	CHECK((kv = gguf_find(&f, "t.i16")) && kv->v.type == GGUF_T_I16 && kv->v.i == -30000);
	CHECK((kv = gguf_find(&f, "t.u32")) && kv->v.type == GGUF_T_U32 && kv->v.u == 4000000000u);
	CHECK((kv = gguf_find(&f, "t.i32")) && kv->v.type == GGUF_T_I32 && kv->v.i == -2000000000);
	CHECK((kv = gguf_find(&f, "t.u64")) && kv->v.type == GGUF_T_U64 && kv->v.u == (1ull << 63) + 5);
	CHECK((kv = gguf_find(&f, "t.i64")) && kv->v.type == GGUF_T_I64 && kv->v.i == INT64_MIN);
	CHECK((kv = gguf_find(&f, "t.f32")) && kv->v.type == GGUF_T_F32 && kv->v.f == 1.5);
	CHECK((kv = gguf_find(&f, "t.f64")) && kv->v.type == GGUF_T_F64 && kv->v.f == -2.25e300);
	CHECK((kv = gguf_find(&f, "t.bool")) && kv->v.type == GGUF_T_BOOL && kv->v.u == 1);
	CHECK((kv = gguf_find(&f, "t.str")) && kv->v.type == GGUF_T_STRING && str_is(kv->v.str, "he\0llo", 6));
	CHECK((kv = gguf_find(&f, "t.empty")) && kv->v.type == GGUF_T_STRING && kv->v.str.n == 0);
	CHECK(gguf_find(&f, "t.absent") == NULL);
	CHECK(gguf_find(&f, "t.u") == NULL); /* prefixes are not matches */

	const struct gguf_value *v;
	CHECK_INT(gguf_get_arr(&f, "t.arr_i16", GGUF_T_I16, &v, NULL), 0);
	CHECK(v->arr.n == 3 && gguf_arr_num(v, 0) == -1 && gguf_arr_num(v, 1) == 2 && gguf_arr_num(v, 2) == -3);
	CHECK_INT(gguf_get_arr(&f, "t.arr_f32", GGUF_T_F32, &v, NULL), 0);
	CHECK(v->arr.n == 2 && gguf_arr_num(v, 0) == 0.5 && gguf_arr_num(v, 1) == -1.25);
	CHECK_INT(gguf_get_arr(&f, "t.arr_f64", GGUF_T_F64, &v, NULL), 0);
	CHECK(v->arr.n == 2 && gguf_arr_num(v, 0) == 1e300 && gguf_arr_num(v, 1) == 0 && signbit(gguf_arr_num(v, 1)));
	CHECK_INT(gguf_get_arr(&f, "t.arr_u64", GGUF_T_U64, &v, NULL), 0);
	CHECK(v->arr.n == 2 && gguf_arr_num(v, 0) == 18446744073709551615.0 && gguf_arr_num(v, 1) == 0);
	CHECK_INT(gguf_get_arr(&f, "t.arr_bool", GGUF_T_BOOL, &v, NULL), 0);
	CHECK(v->arr.n == 3 && gguf_arr_num(v, 0) == 1 && gguf_arr_num(v, 1) == 0 && gguf_arr_num(v, 2) == 1);
	CHECK_INT(gguf_get_arr(&f, "t.arr_empty", GGUF_T_U32, &v, NULL), 0);
	CHECK_INT(v->arr.n, 0);
	CHECK_INT(gguf_get_arr(&f, "t.arr_str", GGUF_T_STRING, &v, NULL), 0);
	CHECK_INT(v->arr.n, 4);
	CHECK(str_is(gguf_arr_str(v, 0), "a", 1));
	CHECK(str_is(gguf_arr_str(v, 1), "", 0));
	CHECK(str_is(gguf_arr_str(v, 2), "three", 5));
	CHECK(str_is(gguf_arr_str(v, 3), "\xe2\x96\x81x", 4));
	CHECK_INT(gguf_get_arr(&f, "t.arr_str_empty", GGUF_T_STRING, &v, NULL), 0);
	CHECK_INT(v->arr.n, 0);

	CHECK(gguf_find_tensor(&f, "a.f32") == &f.tensors[0]);
	CHECK(gguf_find_tensor(&f, "c.f16") == &f.tensors[2]);
	CHECK(gguf_find_tensor(&f, "nope") == NULL);
	gguf_close(&f);
	free(buf);
}

TEST(gguf_typed_getters)
{
	size_t n;
	void *buf = small_file(0, &n);
	struct gguf_file f;
	struct sam_error err = { 0 };
	int64_t iv;
	double dv;
	bool bv;
	struct gguf_str sv;
	const struct gguf_value *av;
	OPEN_MEM(&f, buf, n);

	/* gguf_get_int accepts every integer type */
	static const struct { const char *key; int64_t want; } ints[] = {
		{ "t.u8", 200 }, { "t.i8", -100 }, { "t.u16", 60000 }, { "t.i16", -30000 },
		{ "t.u32", 4000000000ll }, { "t.i32", -2000000000 }, { "t.i64", INT64_MIN },
	};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		iv = 0;
		CHECKF(gguf_get_int(&f, ints[i].key, &iv, &err) == 0 && iv == ints[i].want, "%s", ints[i].key);
	}
	/* a u64 above INT64_MAX does not fit */
	CHECK_INT(gguf_get_int(&f, "t.u64", &iv, &err), SAM_EFORMAT);
	CHECK(strstr(err.msg, "t.u64") != NULL);
	/* type mismatches */
	CHECK_INT(gguf_get_int(&f, "t.f32", &iv, &err), SAM_EFORMAT);
	CHECK(strstr(err.msg, "t.f32") && strstr(err.msg, "f32"));
	CHECK_INT(gguf_get_int(&f, "t.str", &iv, &err), SAM_EFORMAT);
	CHECK_INT(gguf_get_int(&f, "t.bool", &iv, &err), SAM_EFORMAT);
	CHECK_INT(gguf_get_int(&f, "t.arr_i16", &iv, &err), SAM_EFORMAT);
	CHECK_INT(gguf_get_bool(&f, "t.u8", &bv, &err), SAM_EFORMAT);
	CHECK_INT(gguf_get_str(&f, "t.u32", &sv, &err), SAM_EFORMAT);
	CHECK_INT(gguf_get_float(&f, "t.str", &dv, &err), SAM_EFORMAT);
	CHECK_INT(gguf_get_arr(&f, "t.str", GGUF_T_COUNT, &av, &err), SAM_EFORMAT);
	CHECK_INT(gguf_get_arr(&f, "t.arr_f32", GGUF_T_I32, &av, &err), SAM_EFORMAT);
	CHECK(strstr(err.msg, "array of f32") != NULL);
	/* absent: SAM_ENOTFOUND and the output untouched */
	iv = 77;
	CHECK_INT(gguf_get_int(&f, "t.absent", &iv, &err), SAM_ENOTFOUND);
	CHECK_INT(iv, 77);
	dv = 7.5;
	CHECK_INT(gguf_get_float(&f, "t.absent", &dv, NULL), SAM_ENOTFOUND);
	CHECK(dv == 7.5);
	CHECK_INT(gguf_get_bool(&f, "t.absent", &bv, NULL), SAM_ENOTFOUND);
	CHECK_INT(gguf_get_str(&f, "t.absent", &sv, NULL), SAM_ENOTFOUND);
	CHECK_INT(gguf_get_arr(&f, "t.absent", GGUF_T_COUNT, &av, NULL), SAM_ENOTFOUND);
	/* the right types */
	CHECK(gguf_get_float(&f, "t.f64", &dv, NULL) == 0 && dv == -2.25e300);
	CHECK(gguf_get_float(&f, "t.i32", &dv, NULL) == 0 && dv == -2000000000.0);
	CHECK(gguf_get_float(&f, "t.u64", &dv, NULL) == 0 && dv == 9223372036854775813.0);
	CHECK(gguf_get_bool(&f, "t.bool", &bv, NULL) == 0 && bv);
	CHECK(gguf_get_str(&f, "general.architecture", &sv, NULL) == 0 && gguf_str_eq(sv, "llama"));
	CHECK(gguf_get_arr(&f, "t.arr_str", GGUF_T_COUNT, &av, NULL) == 0 && av->arr.type == GGUF_T_STRING);
	gguf_close(&f);
	free(buf);
}

/* Offsets, alignment and data pointers, for the default and a custom alignment. */
static void check_tensors(uint32_t alignment)
{
	struct gguf_writer w;
	void *buf;
	size_t n;
	build_small(&w, alignment);
	TO_MEM(&w, &buf, n);
	uint64_t a = alignment ? alignment : 32;
	CHECK_INT(gguf_writer_alignment(&w), a);
	CHECK_INT(gguf_writer_size(&w), n);

	struct gguf_file f;
	OPEN_MEM(&f, buf, n);
	CHECK_INT(f.alignment, a);
	CHECK_INT(f.data_offset, gguf_writer_data_offset(&w));
	CHECK_INT(f.data_offset % a, 0);
	const void *want[3] = { g_f32, g_q8, g_f16 };
	uint64_t want_bytes[3] = { sizeof g_f32, sizeof g_q8, sizeof g_f16 };
	uint64_t off = 0;
	for (int i = 0; i < 3; i++) {
		const struct gguf_tensor *t = &f.tensors[i];
		/* llama.cpp's layout: each tensor starts at the aligned end of the previous one */
		CHECK_INT(t->offset, off);
		CHECK_INT(t->offset, gguf_writer_tensor_offset(&w, (size_t)i));
		CHECK_INT(t->nbytes, want_bytes[i]);
		CHECK((const uint8_t *)t->data == (const uint8_t *)buf + f.data_offset + t->offset);
		CHECK(memcmp(t->data, want[i], want_bytes[i]) == 0);
		/* the padding is zeros */
		for (uint64_t p = t->offset + t->nbytes; p < align_up(t->offset + t->nbytes, a); p++)
			CHECK(((const uint8_t *)buf)[f.data_offset + p] == 0);
		off = align_up(off + t->nbytes, a);
	}
	CHECK_INT(f.data_offset + off, n);
	const struct gguf_tensor *q = gguf_find_tensor(&f, "b.q8");
	CHECK(q && q->type == GGML_TYPE_Q8_0 && q->n_dims == 2 && q->ne[0] == 32 && q->ne[1] == 2 &&
	      q->ne[2] == 1 && q->ne[3] == 1);
	gguf_close(&f);
	gguf_writer_free(&w);
	free(buf);
}

TEST(gguf_alignment_default_and_custom)
{
	check_tensors(0);
	check_tensors(64);
	check_tensors(1);
	check_tensors(4096);
}

TEST(gguf_v2_files_are_read)
{
	size_t n;
	uint8_t *buf = small_file(0, &n);
	buf[4] = 2; /* v2 has the same layout with 64-bit counts */
	struct gguf_file f;
	OPEN_MEM(&f, buf, n);
	CHECK_INT(f.version, 2);
	gguf_close(&f);
	free(buf);
}

/* ---- writer ------------------------------------------------------------- */

static bool dir_has_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;
	while (d && (e = readdir(d)))
		if (strstr(e->d_name, ".tmp.")) found = true;
	if (d) closedir(d);
	return found;
}

TEST(gguf_writer_writes_files_atomically)
{
	struct gguf_writer w;
	struct sam_error err = { 0 };
	char path[512];
	void *buf;
	size_t n, got_n;
	build_small(&w, 64);
	TO_MEM(&w, &buf, n);
	snprintf(path, sizeof path, "%s/m.gguf", test_tmpdir());
	test_write_file(path, "old", 3); /* replaced by the rename */
	CHECK_INT(gguf_writer_write(&w, path, &err), 0);
	char *got = test_read_file(path, &got_n);
	CHECK(got && got_n == n && memcmp(got, buf, n) == 0);
	CHECK(!dir_has_tmp(test_tmpdir()));

	struct gguf_file f;
	CHECK_INT(gguf_open(&f, path, &err), 0);
	CHECK(f.mapped && f.size == n && f.alignment == 64);
	CHECK(memcmp(gguf_find_tensor(&f, "c.f16")->data, g_f16, sizeof g_f16) == 0);
	gguf_close(&f);

	/* an unwritable destination fails cleanly and leaves nothing behind */
	snprintf(path, sizeof path, "%s/no/such/dir/m.gguf", test_tmpdir());
	CHECK_INT(gguf_writer_write(&w, path, &err), SAM_EIO);
	CHECK(strstr(err.msg, "no/such/dir") != NULL);
	CHECK(!dir_has_tmp(test_tmpdir()));
	free(got);
	free(buf);
	gguf_writer_free(&w);
}

TEST(gguf_writer_large_tensor_relative_path)
{
	/* bigger than the writer's 1 MiB file buffer, written to a bare file name */
	size_t count = 3u << 18;
	float *big = malloc(count * sizeof *big);
	CHECK(big != NULL);
	for (size_t i = 0; i < count; i++) big[i] = (float)i;
	struct gguf_writer w;
	struct sam_error err = { 0 };
	gguf_writer_init(&w);
	gguf_writer_set_str(&w, "general.name", "big");
	gguf_writer_add_tensor(&w, "small", 1, (const uint64_t[]){ 3 }, GGML_TYPE_F32, big, 12);
	gguf_writer_add_tensor(&w, "big", 2, (const uint64_t[]){ 1024, count / 1024 }, GGML_TYPE_F32, big,
			       count * sizeof *big);
	CHECK(chdir(test_tmpdir()) == 0);
	CHECK_INT(gguf_writer_write(&w, "big.gguf", &err), 0);
	struct gguf_file f;
	CHECK_INT(gguf_open(&f, "big.gguf", &err), 0);
	CHECK_INT(f.size, gguf_writer_size(&w));
	const struct gguf_tensor *t = gguf_find_tensor(&f, "big");
	CHECK(t && t->offset == 32 && t->nbytes == count * sizeof *big);
	CHECK(memcmp(t->data, big, count * sizeof *big) == 0);
	CHECK(memcmp(gguf_find_tensor(&f, "small")->data, big, 12) == 0);
	CHECK(!dir_has_tmp("."));
	gguf_close(&f);
	gguf_writer_free(&w);
	free(big);
}

TEST(gguf_writer_null_data_and_empty_file)
{
	struct gguf_writer w;
	void *buf;
	size_t n;
	gguf_writer_init(&w);
	TO_MEM(&w, &buf, n);
	CHECK_INT(n, 32); /* 24-byte header padded to the alignment, as llama.cpp does */
	struct gguf_file f;
	OPEN_MEM(&f, buf, n);
	CHECK(f.n_kv == 0 && f.n_tensors == 0 && gguf_find(&f, "x") == NULL && gguf_find_tensor(&f, "x") == NULL);
	gguf_close(&f);
	free(buf);

	uint64_t ne[2] = { 256, 3 };
	CHECK_INT(gguf_writer_add_tensor(&w, "z", 2, ne, GGML_TYPE_Q4_K, NULL, 3 * 144), 0);
	TO_MEM(&w, &buf, n);
	OPEN_MEM(&f, buf, n);
	const uint8_t *d = f.tensors[0].data;
	for (size_t i = 0; i < 3 * 144; i++) CHECK(d[i] == 0);
	gguf_close(&f);
	free(buf);
	gguf_writer_free(&w);
}

TEST(gguf_writer_set_replaces_and_remove)
{
	struct gguf_writer w;
	void *buf;
	size_t n;
	gguf_writer_init(&w);
	gguf_writer_set_u32(&w, "a", 1);
	gguf_writer_set_str(&w, "b", "x");
	gguf_writer_set_u32(&w, "c", 3);
	CHECK_INT(gguf_writer_set_str(&w, "a", "replaced"), 0);
	CHECK_INT(gguf_writer_remove(&w, "c"), 0);
	CHECK_INT(gguf_writer_remove(&w, "c"), SAM_ENOTFOUND);
	CHECK_INT(w.status, 0); /* ENOTFOUND from remove is not sticky */
	TO_MEM(&w, &buf, n);
	struct gguf_file f;
	OPEN_MEM(&f, buf, n);
	CHECK_INT(f.n_kv, 2);
	CHECK(gguf_str_eq(f.kv[0].key, "a") && f.kv[0].v.type == GGUF_T_STRING && gguf_str_eq(f.kv[0].v.str, "replaced"));
	CHECK(gguf_str_eq(f.kv[1].key, "b"));
	gguf_close(&f);
	free(buf);
	gguf_writer_free(&w);
}

TEST(gguf_writer_rejects_bad_input)
{
	struct gguf_writer w;
	struct sam_error err = { 0 };
	void *buf = (void *)1;
	size_t n = 1;
	uint64_t ne[4] = { 32, 2, 1, 1 };

#define REJECT(call, code, substr)                                                    \
	do {                                                                          \
		gguf_writer_init(&w);                                                 \
		CHECK_INT(call, code);                                                \
		CHECK_INT(gguf_writer_set_u32(&w, "later", 1), code); /* sticky */   \
		CHECK_INT(gguf_writer_to_mem(&w, &buf, &n, &err), code);             \
		CHECK(buf == NULL && n == 0);                                         \
		CHECKF(strstr(err.msg, substr), "message \"%s\" lacks \"%s\"", err.msg, substr); \
		gguf_writer_free(&w);                                                 \
	} while (0)

	REJECT(gguf_writer_set_u32(&w, "", 1), SAM_EINVAL, "key length");
	REJECT(gguf_writer_set_alignment(&w, 0), SAM_EINVAL, "general.alignment");
	REJECT(gguf_writer_set_alignment(&w, 3), SAM_EINVAL, "general.alignment");
	REJECT(gguf_writer_set_alignment(&w, 1u << 31), SAM_EINVAL, "general.alignment");
	REJECT(gguf_writer_set_i32(&w, "general.alignment", 64), SAM_EINVAL, "general.alignment");
	REJECT(gguf_writer_set_arr(&w, "k", GGUF_T_STRING, NULL, 0), SAM_EINVAL, "element type");
	REJECT(gguf_writer_set_arr(&w, "k", GGUF_T_ARRAY, NULL, 0), SAM_EINVAL, "element type");
	REJECT(gguf_writer_add_tensor(&w, "t", 0, ne, GGML_TYPE_F32, NULL, 0), SAM_EINVAL, "dimensions");
	REJECT(gguf_writer_add_tensor(&w, "t", 5, ne, GGML_TYPE_F32, NULL, 0), SAM_EINVAL, "dimensions");
	REJECT(gguf_writer_add_tensor(&w, "t", 2, ne, 99, NULL, 0), SAM_EINVAL, "unknown tensor type");
	REJECT(gguf_writer_add_tensor(&w, "t", 2, ne, 4, NULL, 0), SAM_EINVAL, "unknown tensor type");
	REJECT(gguf_writer_add_tensor(&w, "t", 1, (const uint64_t[]){ 33 }, GGML_TYPE_Q8_0, NULL, 34), SAM_EINVAL,
	       "not a multiple");
	REJECT(gguf_writer_add_tensor(&w, "t", 2, ne, GGML_TYPE_Q8_0, NULL, 64), SAM_EINVAL, "68");
	REJECT(gguf_writer_add_tensor(&w, "t", 2, (const uint64_t[]){ 1ull << 32, 1ull << 32 }, GGML_TYPE_F32, NULL,
				      0), SAM_EINVAL, "too large");
	REJECT(gguf_writer_add_tensor(&w, "", 1, ne, GGML_TYPE_F32, NULL, 128), SAM_EINVAL, "name");
	REJECT(gguf_writer_add_tensor(&w, "0123456789012345678901234567890123456789012345678901234567890123", 1, ne,
				      GGML_TYPE_F32, NULL, 128), SAM_EINVAL, "name");
	REJECT((gguf_writer_add_tensor(&w, "t", 1, ne, GGML_TYPE_F32, NULL, 128),
		gguf_writer_add_tensor(&w, "t", 1, ne, GGML_TYPE_F32, NULL, 128)), SAM_EINVAL, "duplicate tensor");
#undef REJECT

	/* a 63-byte name is fine */
	gguf_writer_init(&w);
	CHECK_INT(gguf_writer_add_tensor(&w, "012345678901234567890123456789012345678901234567890123456789012", 1, ne,
					 GGML_TYPE_F32, NULL, 128), 0);
	gguf_writer_free(&w);
}

/* The writer reproduces a file written by llama.cpp byte for byte. */
static void check_reproduces(const char *name)
{
	const char *path = test_model(name);
	size_t n;
	char *orig = test_read_file(path, &n);
	CHECK(orig != NULL);
	struct gguf_file f;
	OPEN_MEM(&f, orig, n);
	struct gguf_writer w;
	gguf_writer_init(&w);
	for (uint64_t i = 0; i < f.n_kv; i++) CHECK_INT(gguf_writer_copy_kv(&w, &f.kv[i]), 0);
	for (uint64_t i = 0; i < f.n_tensors; i++) CHECK_INT(gguf_writer_copy_tensor(&w, &f.tensors[i]), 0);
	void *buf;
	size_t bn;
	TO_MEM(&w, &buf, bn);
	CHECK_INT(bn, n);
	for (size_t i = 0; i < n; i++)
		CHECKF(((uint8_t *)buf)[i] == (uint8_t)orig[i], "%s: first difference at byte %zu", name, i);
	free(buf);
	gguf_writer_free(&w);
	gguf_close(&f);
	free(orig);
}

TEST(gguf_writer_matches_llama_cpp_bytes)
{
	check_reproduces("stories260K.gguf");
	check_reproduces("stories260K-q4_0.gguf");
	check_reproduces("stories260K-q8_0.gguf");
}

/* ---- malformed input ------------------------------------------------------ */

TEST(gguf_rejects_bad_magic_and_versions)
{
	size_t n;
	uint8_t *buf = small_file(0, &n);
	EXPECT_FAIL(buf, 0, SAM_EFORMAT, "bad magic");
	buf[0] = 'X';
	EXPECT_FAIL(buf, n, SAM_EFORMAT, "bad magic");
	buf[0] = 'G';
	buf[4] = 1;
	EXPECT_FAIL(buf, n, SAM_EUNSUPPORTED, "version 1");
	buf[4] = 99;
	EXPECT_FAIL(buf, n, SAM_EFORMAT, "version 99");
	buf[4] = 0;
	EXPECT_FAIL(buf, n, SAM_EFORMAT, "version 0");
	free(buf);
}

TEST(gguf_rejects_every_truncation)
{
	size_t n;
	uint8_t *buf = small_file(64, &n);
	struct gguf_file f;
	OPEN_MEM(&f, buf, n); /* the whole file is fine ... */
	gguf_close(&f);
	for (size_t len = 0; len < n; len++) { /* ... and every strict prefix is not */
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, buf, len);
		struct sam_error err = { 0 };
		int rc = gguf_open_mem(&f, copy, len, &err);
		CHECKF(rc == SAM_EFORMAT, "length %zu of %zu: rc %d", len, n, rc);
		CHECKF(len < 4 || strstr(err.msg, "truncated"), "length %zu: message \"%s\"", len, err.msg);
		CHECK(f.kv == NULL && f.tensors == NULL);
		free(copy);
	}
	free(buf);
}

TEST(gguf_rejects_truncated_real_file)
{
	const char *path = test_model("stories260K-q8_0.gguf");
	size_t n;
	char *orig = test_read_file(path, &n);
	CHECK(orig != NULL);
	struct gguf_file f;
	OPEN_MEM(&f, orig, n);
	size_t data = (size_t)f.data_offset;
	gguf_close(&f);
	/* every byte of the metadata, then a stride through the tensor data */
	for (size_t len = 0; len < n; len += len < data + 64 ? 1 : 997) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, orig, len);
		struct sam_error err = { 0 };
		int rc = gguf_open_mem(&f, copy, len, &err);
		CHECKF(rc == SAM_EFORMAT, "length %zu of %zu: rc %d", len, n, rc);
		free(copy);
	}
	free(orig);
}

TEST(gguf_rejects_huge_counts)
{
	struct rb b = { 0 };
	rb_header(&b, 3, 0, UINT64_MAX);
	rb_zeros(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "kv pairs cannot fit");
	rb_header(&b, 3, 1ull << 62, 0);
	rb_zeros(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "tensors cannot fit");
	rb_header(&b, 3, 3, 1); /* plausible counts, but the bytes are missing */
	rb_kv_u32(&b, "a", 1);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "truncated");
}

TEST(gguf_rejects_huge_lengths)
{
	struct rb b = { 0 };
	/* key length */
	rb_header(&b, 3, 0, 1);
	rb_u64(&b, 1ull << 63);
	rb_zeros(&b, 32);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "length");
	/* string value length */
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "s");
	rb_u32(&b, GGUF_T_STRING);
	rb_u64(&b, UINT64_MAX);
	rb_zeros(&b, 32);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "truncated file: s needs 18446744073709551615 bytes");
	/* numeric array count: n * 8 overflows 64 bits */
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "arr");
	rb_u32(&b, GGUF_T_ARRAY);
	rb_u32(&b, GGUF_T_U64);
	rb_u64(&b, (1ull << 61) + 1);
	rb_zeros(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "array of");
	/* string array count */
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "arr");
	rb_u32(&b, GGUF_T_ARRAY);
	rb_u32(&b, GGUF_T_STRING);
	rb_u64(&b, 1ull << 60);
	rb_zeros(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "array of");
	/* a string inside an array whose length runs past the end */
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "arr");
	rb_u32(&b, GGUF_T_ARRAY);
	rb_u32(&b, GGUF_T_STRING);
	rb_u64(&b, 2);
	rb_str(&b, "ok");
	rb_u64(&b, 1000);
	rb_zeros(&b, 16);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "truncated");
	/* tensor name */
	rb_header(&b, 3, 1, 0);
	rb_u64(&b, 1ull << 40);
	rb_zeros(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "tensor name");
}

TEST(gguf_rejects_bad_value_types)
{
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "k");
	rb_u32(&b, 13);
	rb_zeros(&b, 16);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "invalid value type 13");
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "k");
	rb_u32(&b, UINT32_MAX);
	rb_zeros(&b, 16);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "invalid value type");
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "k");
	rb_u32(&b, GGUF_T_ARRAY);
	rb_u32(&b, 13);
	rb_u64(&b, 1);
	rb_zeros(&b, 16);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "invalid array element type 13");
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "nested");
	rb_u32(&b, GGUF_T_ARRAY);
	rb_u32(&b, GGUF_T_ARRAY);
	rb_u64(&b, 1);
	rb_u32(&b, GGUF_T_U8);
	rb_u64(&b, 1);
	rb_zeros(&b, 8);
	EXPECT_FAIL_RB(&b, SAM_EUNSUPPORTED, "nested");
}

TEST(gguf_rejects_bad_tensor_infos)
{
	struct rb b = { 0 };
	uint64_t ne[5] = { 4, 1, 1, 1, 1 };
	one_tensor(&b, 0, ne, GGML_TYPE_F32, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "0 dimensions");
	one_tensor(&b, 5, ne, GGML_TYPE_F32, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "5 dimensions");
	one_tensor(&b, 2, (const uint64_t[]){ 1ull << 32, 1ull << 32 }, GGML_TYPE_F32, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "absurd dimensions");
	one_tensor(&b, 4, (const uint64_t[]){ 1ull << 16, 1ull << 16, 1ull << 16, 1ull << 16 }, GGML_TYPE_F32, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "absurd dimensions");
	one_tensor(&b, 1, (const uint64_t[]){ UINT64_MAX }, GGML_TYPE_F32, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "absurd dimensions");
	/* a product that fits int64 but whose byte size does not */
	one_tensor(&b, 2, (const uint64_t[]){ 1ull << 31, 1ull << 31 }, 28 /* F64 */, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "absurd size");
	one_tensor(&b, 1, ne, 99, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "unknown tensor type 99");
	one_tensor(&b, 1, ne, 4, 0, 64); /* a retired id */
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "unknown tensor type 4");
	one_tensor(&b, 1, (const uint64_t[]){ 33 }, GGML_TYPE_Q8_0, 0, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "not a multiple");
	one_tensor(&b, 1, ne, GGML_TYPE_F32, 8, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "not aligned");
	one_tensor(&b, 1, ne, GGML_TYPE_F32, 32, 40); /* 16 bytes at 32 of a 40-byte data section */
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "runs past the end");
	one_tensor(&b, 1, ne, GGML_TYPE_F32, UINT64_MAX - 31, 64); /* offset + size wraps around */
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "runs past the end");
	one_tensor(&b, 1, ne, GGML_TYPE_F32, 0, 15);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "runs past the end");
	/* no data section at all */
	rb_header(&b, 3, 1, 0);
	rb_tensor(&b, "t", 1, ne, GGML_TYPE_F32, 0);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "truncated");

	/* the same shapes, well-formed, are accepted */
	one_tensor(&b, 1, ne, GGML_TYPE_F32, 0, 16);
	struct gguf_file f;
	OPEN_MEM(&f, b.p, b.n);
	CHECK(f.tensors[0].nbytes == 16);
	gguf_close(&f);
	free(b.p);
	memset(&b, 0, sizeof b);
	one_tensor(&b, 1, (const uint64_t[]){ 0 }, GGML_TYPE_Q8_0, 0, 0); /* empty tensors are legal */
	OPEN_MEM(&f, b.p, b.n);
	CHECK(f.tensors[0].nbytes == 0);
	gguf_close(&f);
	free(b.p);
}

TEST(gguf_rejects_duplicates)
{
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 3);
	rb_kv_u32(&b, "a", 1);
	rb_kv_u32(&b, "b", 2);
	rb_kv_u32(&b, "a", 3);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "duplicate key 'a'");

	uint64_t ne[1] = { 4 };
	rb_header(&b, 3, 2, 0);
	rb_tensor(&b, "w", 1, ne, GGML_TYPE_F32, 0);
	rb_tensor(&b, "w", 1, ne, GGML_TYPE_F32, 32);
	rb_align(&b, 32);
	rb_zeros(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "duplicate tensor 'w'");
}

TEST(gguf_rejects_bad_alignment)
{
	struct rb b = { 0 };
	static const uint32_t bad[] = { 0, 3, 48, 1u << 31 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		rb_header(&b, 3, 0, 1);
		rb_kv_u32(&b, "general.alignment", bad[i]);
		EXPECT_FAIL_RB(&b, SAM_EFORMAT, "general.alignment");
	}
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "general.alignment");
	rb_u32(&b, GGUF_T_I32);
	rb_u32(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "general.alignment");
	rb_header(&b, 3, 0, 1);
	rb_str(&b, "general.alignment");
	rb_u32(&b, GGUF_T_U64);
	rb_u64(&b, 64);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "general.alignment");

	/* a tensor aligned to 32 but not to the declared 64 */
	uint64_t ne[1] = { 8 };
	rb_header(&b, 3, 2, 1);
	rb_kv_u32(&b, "general.alignment", 64);
	rb_tensor(&b, "a", 1, ne, GGML_TYPE_F32, 0);
	rb_tensor(&b, "b", 1, ne, GGML_TYPE_F32, 32);
	rb_align(&b, 64);
	rb_zeros(&b, 128);
	EXPECT_FAIL_RB(&b, SAM_EFORMAT, "not aligned to 64");
}

TEST(gguf_open_reports_file_errors)
{
	struct gguf_file f;
	struct sam_error err = { 0 };
	char path[512];
	snprintf(path, sizeof path, "%s/missing.gguf", test_tmpdir());
	CHECK_INT(gguf_open(&f, path, &err), SAM_EIO);
	CHECK(strstr(err.msg, "missing.gguf") && strstr(err.msg, "No such file"));
	CHECK_INT(gguf_open(&f, test_tmpdir(), &err), SAM_EINVAL);
	snprintf(path, sizeof path, "%s/empty.gguf", test_tmpdir());
	test_write_file(path, "", 0);
	CHECK_INT(gguf_open(&f, path, &err), SAM_EFORMAT);
	snprintf(path, sizeof path, "%s/bad.gguf", test_tmpdir());
	test_write_file(path, "GGUF\x03\0\0\0\x01", 9);
	CHECK_INT(gguf_open(&f, path, &err), SAM_EFORMAT);
	CHECK(strncmp(err.msg, path, strlen(path)) == 0); /* prefixed with the path */
	CHECK(strstr(err.msg, "truncated") != NULL);
	CHECK(f.map == NULL && f.kv == NULL);
}

/* ---- sam gguf ------------------------------------------------------------ */

TEST(gguf_cli_dumps_real_model)
{
	const char *path = test_model("stories260K.gguf");
	struct test_proc p;
	test_run_sam(&p, 60, "gguf", path, NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK(strstr(p.out, "GGUF version 3, 48 tensors, 19 kv, alignment 32"));
	CHECK(strstr(p.out, "general.architecture") && strstr(p.out, "\"llama\""));
	CHECK(strstr(p.out, "token_embd.weight"));
	CHECK(strstr(p.out, "tokenizer.ggml.tokens") && strstr(p.out, "arr[string,512]"));
	CHECK(strstr(p.out, "[\"<unk>\", \"<s>\", \"</s>\"") && strstr(p.out, ", ...]"));
	CHECK(strstr(p.out, "1e-05")); /* the f32 epsilon, printed shortest */
	CHECK(strstr(p.out, "[172, 64]"));
	CHECK(!strstr(p.out, "<0x0A>")); /* abbreviated ... */
	test_proc_free(&p);

	test_run_sam(&p, 60, "gguf", "--all", path, NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "<0x0A>")); /* ... unless --all */
	test_proc_free(&p);
}

TEST(gguf_cli_errors_and_usage)
{
	const char *path = test_model("stories260K.gguf");
	struct test_proc p;
	size_t n;
	char *data = test_read_file(path, &n);
	char tpath[512];
	CHECK(data && n > 1000);
	snprintf(tpath, sizeof tpath, "%s/truncated.gguf", test_tmpdir());
	test_write_file(tpath, data, 1000);
	free(data);

	test_run_sam(&p, 30, "gguf", tpath, NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "sam gguf: ") && strstr(p.err, "truncated"), "stderr: %s", p.err);
	test_proc_free(&p);

	snprintf(tpath, sizeof tpath, "%s/missing.gguf", test_tmpdir());
	test_run_sam(&p, 30, "gguf", tpath, NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "sam gguf: ") && strstr(p.err, "missing.gguf"));
	test_proc_free(&p);

	test_run_sam(&p, 30, "gguf", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "usage: sam gguf"));
	test_proc_free(&p);

	test_run_sam(&p, 30, "gguf", path, path, NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);

	test_run_sam(&p, 30, "gguf", "--bogus", path, NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "--bogus"));
	test_proc_free(&p);
}

TEST(gguf_cli_escapes_and_formats_values)
{
	struct gguf_writer w;
	struct sam_error err = { 0 };
	char path[512];
	static const int32_t nums[10] = { 0, -1, 2, 3, 4, 5, 6, 7, 8, 9 };
	static const char *strs[] = { "\x1b[31m", "\xff" };
	gguf_writer_init(&w);
	gguf_writer_set_alignment(&w, 64);
	gguf_writer_set_str(&w, "s.esc", "a\"b\\c\n\t\x01");
	gguf_writer_set_str(&w, "s.utf8", "\xe2\x96\x81\xc2\x85");
	gguf_writer_set_arr(&w, "a.i32", GGUF_T_I32, nums, 10);
	gguf_writer_set_arr_str(&w, "a.str", strs, NULL, 2);
	gguf_writer_set_f32(&w, "f.f32", 0.1f);
	gguf_writer_set_f64(&w, "f.f64", 0.1);
	gguf_writer_set_i64(&w, "i.min", INT64_MIN);
	gguf_writer_set_bool(&w, "b", false);
	char longs[301];
	for (int i = 0; i < 100; i++) memcpy(longs + 3 * i, "\xe2\x96\x81", 3);
	longs[300] = 0;
	gguf_writer_set_str(&w, "s.long", longs); /* 300 bytes, abbreviated between characters */
	gguf_writer_add_tensor(&w, "w", 2, (const uint64_t[]){ 64, 3 }, GGML_TYPE_Q8_0, NULL, 3 * 2 * 34);
	snprintf(path, sizeof path, "%s/esc.gguf", test_tmpdir());
	CHECK_INT(gguf_writer_write(&w, path, &err), 0);
	uint64_t data_off = gguf_writer_data_offset(&w);
	gguf_writer_free(&w);

	struct test_proc p;
	test_run_sam(&p, 30, "gguf", path, NULL);
	CHECKF(p.status == 0, "stderr: %s", p.err);
	CHECK(strstr(p.out, "alignment 64"));
	CHECK(strstr(p.out, "\"a\\\"b\\\\c\\n\\t\\x01\""));
	CHECK(strstr(p.out, "\"\xe2\x96\x81\\u0085\""));
	CHECK(strstr(p.out, "arr[i32,10]") && strstr(p.out, "[0, -1, 2, 3, 4, 5, 6, 7, ...]"));
	CHECK(strstr(p.out, "[\"\\x1b[31m\", \"\\xff\"]"));
	CHECK(!strchr(p.out, '\x1b'));
	CHECK(strstr(p.out, "f32  ") && strstr(p.out, " 0.1\n"));
	CHECK(strstr(p.out, "-9223372036854775808"));
	CHECK(strstr(p.out, "false"));
	CHECK(strstr(p.out, "\xe2\x96\x81\"... (300 bytes)") && !strstr(p.out, "\\xe2"));
	char row[128];
	snprintf(row, sizeof row, "Q8_0  [64, 3]  %12d %12llu %12d", 192, (unsigned long long)data_off, 204);
	CHECKF(strstr(p.out, row), "no \"%s\" in:\n%s", row, p.out);
	test_proc_free(&p);

	test_run_sam(&p, 30, "gguf", "--all", path, NULL);
	CHECK(strstr(p.out, "[0, -1, 2, 3, 4, 5, 6, 7, 8, 9]"));
	CHECK(!strstr(p.out, "(300 bytes)"));
	test_proc_free(&p);
}
