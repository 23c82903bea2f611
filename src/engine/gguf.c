/*
 * gguf.c - GGUF v2/v3 reader. A cursor walks the header; every read is
 * bounds-checked, and every count is checked against the bytes that could
 * possibly hold it before anything is allocated for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/ggml_types.h"
#include "sam/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

#define MAX_KEY_LEN (1u << 16)   /* llama.cpp's keys are < 100 bytes */
#define MAX_NAME_LEN (1u << 16)

struct cursor {
	const uint8_t *p;
	size_t size, off;
	struct sam_error *err;
};

static int need(struct cursor *c, uint64_t n, const char *what)
{
	if (n > c->size - c->off)
		return sam_errorf(c->err, SAM_EFORMAT,
				  "truncated file: %s needs %llu bytes at offset %zu, file has %zu",
				  what, (unsigned long long)n, c->off, c->size);
	return 0;
}

static int rd_bytes(struct cursor *c, void *out, size_t n, const char *what)
{
	int rc = need(c, n, what);
	if (rc) return rc;
	memcpy(out, c->p + c->off, n);
	c->off += n;
	return 0;
}

static int rd_u32(struct cursor *c, uint32_t *v, const char *what) { return rd_bytes(c, v, 4, what); }
static int rd_u64(struct cursor *c, uint64_t *v, const char *what) { return rd_bytes(c, v, 8, what); }

static int rd_str(struct cursor *c, struct gguf_str *s, uint64_t max, const char *what)
{
	uint64_t n;
	int rc = rd_u64(c, &n, what);
	if (rc) return rc;
	if (n > max)
		return sam_errorf(c->err, SAM_EFORMAT, "%s: length %llu exceeds the limit %llu",
				  what, (unsigned long long)n, (unsigned long long)max);
	if ((rc = need(c, n, what))) return rc;
	s->s = (const char *)c->p + c->off;
	s->n = n;
	c->off += n;
	return 0;
}

static const uint8_t scalar_size[GGUF_T_COUNT] = {
	[GGUF_T_U8] = 1, [GGUF_T_I8] = 1, [GGUF_T_U16] = 2, [GGUF_T_I16] = 2,
	[GGUF_T_U32] = 4, [GGUF_T_I32] = 4, [GGUF_T_F32] = 4, [GGUF_T_BOOL] = 1,
	[GGUF_T_U64] = 8, [GGUF_T_I64] = 8, [GGUF_T_F64] = 8,
};

const char *gguf_vtype_name(uint32_t type)
{
	static const char *names[GGUF_T_COUNT] = {
		"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
		"string", "array", "u64", "i64", "f64",
	};
	return type < GGUF_T_COUNT ? names[type] : "invalid";
}

/* Decode one scalar at p (unaligned) into v. */
static void decode_scalar(uint32_t type, const uint8_t *p, struct gguf_value *v)
{
	v->type = type;
	switch (type) {
	case GGUF_T_U8: case GGUF_T_BOOL: v->u = p[0]; break;
	case GGUF_T_I8: v->i = (int8_t)p[0]; break;
	case GGUF_T_U16: { uint16_t x; memcpy(&x, p, 2); v->u = x; break; }
	case GGUF_T_I16: { int16_t x; memcpy(&x, p, 2); v->i = x; break; }
	case GGUF_T_U32: { uint32_t x; memcpy(&x, p, 4); v->u = x; break; }
	case GGUF_T_I32: { int32_t x; memcpy(&x, p, 4); v->i = x; break; }
	case GGUF_T_F32: { float x; memcpy(&x, p, 4); v->f = x; break; }
	case GGUF_T_U64: memcpy(&v->u, p, 8); break;
	case GGUF_T_I64: memcpy(&v->i, p, 8); break;
	case GGUF_T_F64: memcpy(&v->f, p, 8); break;
	}
}

static int rd_value(struct cursor *c, uint32_t type, struct gguf_value *v, const char *key)
{
	int rc;
	if (type >= GGUF_T_COUNT)
		return sam_errorf(c->err, SAM_EFORMAT, "key '%s': invalid value type %u", key, type);
	if (type == GGUF_T_STRING) {
		v->type = type;
		return rd_str(c, &v->str, UINT64_MAX, key);
	}
	if (type != GGUF_T_ARRAY) {
		if ((rc = need(c, scalar_size[type], key))) return rc;
		decode_scalar(type, c->p + c->off, v);
		c->off += scalar_size[type];
		return 0;
	}
	uint32_t et;
	uint64_t n;
	if ((rc = rd_u32(c, &et, key)) || (rc = rd_u64(c, &n, key))) return rc;
	if (et >= GGUF_T_COUNT)
		return sam_errorf(c->err, SAM_EFORMAT, "key '%s': invalid array element type %u", key, et);
	if (et == GGUF_T_ARRAY)
		return sam_errorf(c->err, SAM_EUNSUPPORTED, "key '%s': nested arrays are not supported", key);
	v->type = GGUF_T_ARRAY;
	v->arr.type = et;
	v->arr.n = n;
	v->arr.data = c->p + c->off;
	v->arr.offs = NULL;
	if (et != GGUF_T_STRING) {
		uint64_t es = scalar_size[et];
		if (n > (c->size - c->off) / es)
			return sam_errorf(c->err, SAM_EFORMAT,
					  "truncated file or corrupt count: key '%s': array of %llu %s elements "
					  "runs past the end of the file", key, (unsigned long long)n, gguf_vtype_name(et));
		c->off += n * es;
		return 0;
	}
	/* each string takes at least its 8-byte length */
	if (n > (c->size - c->off) / 8)
		return sam_errorf(c->err, SAM_EFORMAT,
				  "truncated file or corrupt count: key '%s': array of %llu strings "
				  "runs past the end of the file", key, (unsigned long long)n);
	uint64_t *offs = malloc((n ? n : 1) * sizeof *offs);
	if (!offs) return sam_errorf(c->err, SAM_ENOMEM, "key '%s': no memory for %llu strings",
				     key, (unsigned long long)n);
	size_t base = c->off;
	for (uint64_t i = 0; i < n; i++) {
		struct gguf_str s;
		offs[i] = c->off - base;
		if ((rc = rd_str(c, &s, UINT64_MAX, key))) {
			free(offs);
			return rc;
		}
	}
	v->arr.offs = offs;
	return 0;
}

struct gguf_str gguf_arr_str(const struct gguf_value *v, uint64_t i)
{
	struct gguf_str s;
	const uint8_t *p = v->arr.data + v->arr.offs[i];
	memcpy(&s.n, p, 8);
	s.s = (const char *)p + 8;
	return s;
}

double gguf_arr_num(const struct gguf_value *v, uint64_t i)
{
	struct gguf_value e = { 0 };
	decode_scalar(v->arr.type, v->arr.data + i * scalar_size[v->arr.type], &e);
	switch (e.type) {
	case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64: return (double)e.i;
	case GGUF_T_F32: case GGUF_T_F64: return e.f;
	default: return (double)e.u;
	}
}

bool gguf_str_eq(struct gguf_str a, const char *b)
{
	size_t n = strlen(b);
	return a.n == n && memcmp(a.s, b, n) == 0;
}

/* ---- name index: open addressing over FNV-1a ------------------------- */

static uint64_t hash_bytes(const char *s, uint64_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

typedef struct gguf_str (*name_of_fn)(const struct gguf_file *f, uint64_t i);
static struct gguf_str kv_name(const struct gguf_file *f, uint64_t i) { return f->kv[i].key; }
static struct gguf_str tensor_name(const struct gguf_file *f, uint64_t i) { return f->tensors[i].name; }

/* Returns the slot for name: either holding it, or the empty slot to fill. */
static uint64_t index_slot(const struct gguf_file *f, const uint32_t *idx, uint64_t cap,
			   name_of_fn name_of, const char *s, uint64_t n)
{
	uint64_t h = hash_bytes(s, n) & (cap - 1);
	while (idx[h]) {
		struct gguf_str o = name_of(f, idx[h] - 1);
		if (o.n == n && memcmp(o.s, s, n) == 0) break;
		h = (h + 1) & (cap - 1);
	}
	return h;
}

static int build_index(struct gguf_file *f, uint64_t count, name_of_fn name_of,
		       uint32_t **out, uint64_t *out_cap, const char *what, struct sam_error *err)
{
	uint64_t cap = 16;
	while (cap < count * 2) cap <<= 1;
	uint32_t *idx = calloc(cap, sizeof *idx);
	if (!idx) return sam_errorf(err, SAM_ENOMEM, "no memory to index %llu %ss",
				    (unsigned long long)count, what);
	for (uint64_t i = 0; i < count; i++) {
		struct gguf_str s = name_of(f, i);
		uint64_t slot = index_slot(f, idx, cap, name_of, s.s, s.n);
		if (idx[slot]) {
			free(idx);
			return sam_errorf(err, SAM_EFORMAT, "duplicate %s '%.*s'", what,
					  (int)(s.n > 200 ? 200 : s.n), s.s);
		}
		idx[slot] = (uint32_t)(i + 1);
	}
	*out = idx;
	*out_cap = cap;
	return 0;
}

const struct gguf_kv *gguf_find(const struct gguf_file *f, const char *key)
{
	if (!f->kv_index) return NULL;
	uint64_t slot = index_slot(f, f->kv_index, f->kv_index_cap, kv_name, key, strlen(key));
	return f->kv_index[slot] ? &f->kv[f->kv_index[slot] - 1] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
	if (!f->tensor_index) return NULL;
	uint64_t slot = index_slot(f, f->tensor_index, f->tensor_index_cap, tensor_name, name, strlen(name));
	return f->tensor_index[slot] ? &f->tensors[f->tensor_index[slot] - 1] : NULL;
}

/* ---- parsing ----------------------------------------------------------- */

static int parse_tensor(struct gguf_file *f, struct cursor *c, struct gguf_tensor *t)
{
	int rc;
	if ((rc = rd_str(c, &t->name, MAX_NAME_LEN, "tensor name"))) return rc;
	int nl = (int)(t->name.n > 200 ? 200 : t->name.n);
	if ((rc = rd_u32(c, &t->n_dims, "tensor dimension count"))) return rc;
	if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
		return sam_errorf(c->err, SAM_EFORMAT, "tensor '%.*s': %u dimensions (1..%d allowed)",
				  nl, t->name.s, t->n_dims, GGUF_MAX_DIMS);
	uint64_t nelem = 1;
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
		t->ne[d] = 1;
		if (d < t->n_dims && (rc = rd_u64(c, &t->ne[d], "tensor dimension"))) return rc;
		if (t->ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(nelem, t->ne[d], &nelem) ||
		    nelem > (uint64_t)INT64_MAX)
			return sam_errorf(c->err, SAM_EFORMAT, "tensor '%.*s': absurd dimensions", nl, t->name.s);
	}
	if ((rc = rd_u32(c, &t->type, "tensor type")) || (rc = rd_u64(c, &t->offset, "tensor offset")))
		return rc;
	const struct ggml_type_info *ti = ggml_type_info(t->type);
	if (!ti)
		return sam_errorf(c->err, SAM_EFORMAT, "tensor '%.*s': unknown tensor type %u", nl, t->name.s, t->type);
	if (t->ne[0] % ti->block)
		return sam_errorf(c->err, SAM_EFORMAT,
				  "tensor '%.*s': row length %llu is not a multiple of the %s block size %u",
				  nl, t->name.s, (unsigned long long)t->ne[0], ti->name, ti->block);
	if (__builtin_mul_overflow(nelem / ti->block, (uint64_t)ti->size, &t->nbytes))
		return sam_errorf(c->err, SAM_EFORMAT, "tensor '%.*s': absurd size", nl, t->name.s);
	(void)f;
	return 0;
}

static int parse(struct gguf_file *f, struct sam_error *err)
{
	struct cursor c = { f->map, f->size, 0, err };
	int rc;
	if (f->size < 4 || memcmp(f->map, "GGUF", 4) != 0)
		return sam_errorf(err, SAM_EFORMAT, "not a GGUF file (bad magic)");
	c.off = 4;
	if ((rc = rd_u32(&c, &f->version, "version"))) return rc;
	if (f->version == 1)
		return sam_errorf(err, SAM_EUNSUPPORTED, "GGUF version 1 is not supported (v2 and v3 are)");
	if (f->version < 2 || f->version > 3)
		return sam_errorf(err, SAM_EFORMAT, "unknown GGUF version %u", f->version);
	if ((rc = rd_u64(&c, &f->n_tensors, "tensor count")) || (rc = rd_u64(&c, &f->n_kv, "kv count")))
		return rc;
	/* a kv needs >= 12 bytes (key length + type), a tensor info >= 32 */
	if (f->n_kv > (c.size - c.off) / 12)
		return sam_errorf(err, SAM_EFORMAT,
				  "truncated file or corrupt count: %llu kv pairs cannot fit in the remaining %zu bytes",
				  (unsigned long long)f->n_kv, c.size - c.off);
	if (f->n_tensors > (c.size - c.off) / 32)
		return sam_errorf(err, SAM_EFORMAT,
				  "truncated file or corrupt count: %llu tensors cannot fit in the remaining %zu bytes",
				  (unsigned long long)f->n_tensors, c.size - c.off);
	if (f->n_kv >= UINT32_MAX || f->n_tensors >= UINT32_MAX)
		return sam_errorf(err, SAM_EFORMAT, "absurd kv or tensor count");
	f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
	f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
	if (!f->kv || !f->tensors) return sam_errorf(err, SAM_ENOMEM, "no memory for the GGUF tables");

	f->alignment = GGUF_DEFAULT_ALIGNMENT;
	for (uint64_t i = 0; i < f->n_kv; i++) {
		struct gguf_kv *kv = &f->kv[i];
		char key[256];
		uint32_t type;
		if ((rc = rd_str(&c, &kv->key, MAX_KEY_LEN, "key"))) return rc;
		snprintf(key, sizeof key, "%.*s", (int)(kv->key.n > 200 ? 200 : kv->key.n), kv->key.s);
		if ((rc = rd_u32(&c, &type, key))) return rc;
		/* unparsed entries stay zeroed, so gguf_close() frees only what exists */
		if ((rc = rd_value(&c, type, &kv->v, key))) return rc;
		if (gguf_str_eq(kv->key, "general.alignment")) {
			if (type != GGUF_T_U32 || kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) || kv->v.u > (1u << 30))
				return sam_errorf(err, SAM_EFORMAT, "general.alignment must be a power-of-two u32");
			f->alignment = kv->v.u;
		}
	}
	if ((rc = build_index(f, f->n_kv, kv_name, &f->kv_index, &f->kv_index_cap, "key", err))) return rc;

	for (uint64_t i = 0; i < f->n_tensors; i++)
		if ((rc = parse_tensor(f, &c, &f->tensors[i]))) return rc;
	if ((rc = build_index(f, f->n_tensors, tensor_name, &f->tensor_index, &f->tensor_index_cap,
			      "tensor", err)))
		return rc;

	uint64_t data = (c.off + f->alignment - 1) / f->alignment * f->alignment;
	if (f->n_tensors && data > f->size)
		return sam_errorf(err, SAM_EFORMAT, "truncated file: no tensor data section");
	f->data_offset = data;
	uint64_t avail = data <= f->size ? f->size - data : 0;
	for (uint64_t i = 0; i < f->n_tensors; i++) {
		struct gguf_tensor *t = &f->tensors[i];
		int nl = (int)(t->name.n > 200 ? 200 : t->name.n);
		if (t->offset % f->alignment)
			return sam_errorf(err, SAM_EFORMAT, "tensor '%.*s': offset %llu is not aligned to %llu",
					  nl, t->name.s, (unsigned long long)t->offset,
					  (unsigned long long)f->alignment);
		if (t->offset > avail || t->nbytes > avail - t->offset)
			return sam_errorf(err, SAM_EFORMAT,
					  "truncated file or corrupt offset: tensor '%.*s': data [%llu, +%llu) runs past "
					  "the end of the file "
					  "(data section has %llu bytes)",
					  nl, t->name.s, (unsigned long long)t->offset,
					  (unsigned long long)t->nbytes, (unsigned long long)avail);
		t->data = f->map + data + t->offset;
	}
	return 0;
}

void gguf_close(struct gguf_file *f)
{
	if (f->kv)
		for (uint64_t i = 0; i < f->n_kv; i++)
			if (f->kv[i].v.type == GGUF_T_ARRAY) free((void *)f->kv[i].v.arr.offs);
	free(f->kv);
	free(f->tensors);
	free(f->kv_index);
	free(f->tensor_index);
	if (f->mapped && f->map) munmap((void *)f->map, f->size);
	memset(f, 0, sizeof *f);
}

int gguf_open_mem(struct gguf_file *f, const void *buf, size_t size, struct sam_error *err)
{
	memset(f, 0, sizeof *f);
	f->map = buf;
	f->size = size;
	int rc = parse(f, err);
	if (rc) gguf_close(f);
	return rc;
}

int gguf_open(struct gguf_file *f, const char *path, struct sam_error *err)
{
	memset(f, 0, sizeof *f);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return sam_errorf(err, SAM_EINVAL, "%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return sam_errorf(err, SAM_EFORMAT, "%s: empty file", path);
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (m == MAP_FAILED) return sam_errorf(err, SAM_EIO, "%s: mmap: %s", path, strerror(e));
	f->map = m;
	f->size = (size_t)st.st_size;
	f->mapped = true;
	int rc = parse(f, err);
	if (rc) {
		sam_error_prefix(err, path);
		gguf_close(f);
	}
	return rc;
}

/* ---- typed getters ----------------------------------------------------- */

static int type_error(const struct gguf_kv *kv, const char *want, struct sam_error *err)
{
	return sam_errorf(err, SAM_EFORMAT, "key '%.*s' has type %s, expected %s",
			  (int)kv->key.n, kv->key.s, gguf_vtype_name(kv->v.type), want);
}

static bool is_signed(uint32_t t) { return t == GGUF_T_I8 || t == GGUF_T_I16 || t == GGUF_T_I32 || t == GGUF_T_I64; }
static bool is_unsigned(uint32_t t) { return t == GGUF_T_U8 || t == GGUF_T_U16 || t == GGUF_T_U32 || t == GGUF_T_U64; }

int gguf_get_int(const struct gguf_file *f, const char *key, int64_t *out, struct sam_error *err)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) return SAM_ENOTFOUND;
	if (is_signed(kv->v.type)) { *out = kv->v.i; return 0; }
	if (is_unsigned(kv->v.type)) {
		if (kv->v.u > (uint64_t)INT64_MAX) return type_error(kv, "an integer below 2^63", err);
		*out = (int64_t)kv->v.u;
		return 0;
	}
	return type_error(kv, "an integer", err);
}

int gguf_get_float(const struct gguf_file *f, const char *key, double *out, struct sam_error *err)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) return SAM_ENOTFOUND;
	if (kv->v.type == GGUF_T_F32 || kv->v.type == GGUF_T_F64) { *out = kv->v.f; return 0; }
	if (is_signed(kv->v.type)) { *out = (double)kv->v.i; return 0; }
	if (is_unsigned(kv->v.type)) { *out = (double)kv->v.u; return 0; }
	return type_error(kv, "a number", err);
}

int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out, struct sam_error *err)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) return SAM_ENOTFOUND;
	if (kv->v.type != GGUF_T_BOOL) return type_error(kv, "bool", err);
	*out = kv->v.u != 0;
	return 0;
}

int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out, struct sam_error *err)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) return SAM_ENOTFOUND;
	if (kv->v.type != GGUF_T_STRING) return type_error(kv, "string", err);
	*out = kv->v.str;
	return 0;
}

int gguf_get_arr(const struct gguf_file *f, const char *key, uint32_t etype,
		 const struct gguf_value **out, struct sam_error *err)
{
	const struct gguf_kv *kv = gguf_find(f, key);
	if (!kv) return SAM_ENOTFOUND;
	if (kv->v.type != GGUF_T_ARRAY) return type_error(kv, "array", err);
	if (etype != GGUF_T_COUNT && kv->v.arr.type != etype)
		return sam_errorf(err, SAM_EFORMAT, "key '%s' is an array of %s, expected %s", key,
				  gguf_vtype_name(kv->v.arr.type), gguf_vtype_name(etype));
	*out = &kv->v;
	return 0;
}
