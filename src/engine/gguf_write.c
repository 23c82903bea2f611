/*
 * gguf_write.c - GGUF v3 writer. Values are encoded into their file bytes
 * when set; tensors are described when added and their (borrowed) data is
 * streamed out at write time. One emitter feeds either a memory buffer or a
 * file descriptor, so both outputs are byte-identical.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/ggml_types.h"
#include "sam/fs.h"
#include "sam/gguf_write.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF writer assumes a little-endian host"
#endif

#define GGUF_VERSION 3
#define FILE_BUF_SIZE (1u << 20)

static const uint8_t scalar_size[GGUF_T_COUNT] = {
	[GGUF_T_U8] = 1, [GGUF_T_I8] = 1, [GGUF_T_U16] = 2, [GGUF_T_I16] = 2,
	[GGUF_T_U32] = 4, [GGUF_T_I32] = 4, [GGUF_T_F32] = 4, [GGUF_T_BOOL] = 1,
	[GGUF_T_U64] = 8, [GGUF_T_I64] = 8, [GGUF_T_F64] = 8,
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

/* Record the first failure (sticky) and return code. */
static int fail(struct gguf_writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct gguf_writer *w, int code, const char *fmt, ...)
{
	if (w->status) return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->err.msg, sizeof w->err.msg, fmt, ap);
	va_end(ap);
	w->err.code = code;
	w->status = code;
	return code;
}

static int report(const struct gguf_writer *w, struct sam_error *err)
{
	if (err) *err = w->err;
	return w->status;
}

void gguf_writer_init(struct gguf_writer *w)
{
	memset(w, 0, sizeof *w);
}

void gguf_writer_free(struct gguf_writer *w)
{
	for (size_t i = 0; i < w->n_kv; i++) {
		free(w->kv[i].key);
		free(w->kv[i].val);
	}
	for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
	free(w->kv);
	free(w->tensors);
	memset(w, 0, sizeof *w);
}

/* Grow *arr (of elem-sized items) so it holds at least n + 1. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap) return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	if (nc > SIZE_MAX / elem) return SAM_ENOMEM;
	void *p = realloc(*arr, nc * elem);
	if (!p) return SAM_ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static char *dup_bytes(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p) return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static struct gguf_wkv *find_kv(struct gguf_writer *w, const char *key, size_t n, uint64_t h)
{
	for (size_t i = 0; i < w->n_kv; i++)
		if (w->kv[i].hash == h && w->kv[i].key_len == n && memcmp(w->kv[i].key, key, n) == 0)
			return &w->kv[i];
	return NULL;
}

static bool is_alignment_key(const char *key, size_t n)
{
	return n == strlen("general.alignment") && memcmp(key, "general.alignment", n) == 0;
}

/* Store key = (type, val[0..n)). Takes ownership of val (malloc'd) in every case. */
static int set_encoded(struct gguf_writer *w, const char *key, size_t key_len, uint32_t type,
		       uint8_t *val, size_t n)
{
	int nk = (int)(key_len > 200 ? 200 : key_len);
	if (w->status) {
		free(val);
		return w->status;
	}
	if (key_len == 0 || key_len > GGUF_WRITER_MAX_KEY) {
		free(val);
		return fail(w, SAM_EINVAL, "gguf writer: key length %zu is outside 1..%u", key_len,
			    GGUF_WRITER_MAX_KEY);
	}
	if (is_alignment_key(key, key_len)) {
		uint32_t a = 0;
		if (type == GGUF_T_U32) memcpy(&a, val, 4);
		if (type != GGUF_T_U32 || a == 0 || (a & (a - 1)) || a > GGUF_WRITER_MAX_ALIGNMENT) {
			free(val);
			return fail(w, SAM_EINVAL, "gguf writer: general.alignment must be a power-of-two u32 <= 2^30");
		}
	}
	uint64_t h = hash_bytes(key, key_len);
	struct gguf_wkv *kv = find_kv(w, key, key_len, h);
	if (kv) {
		free(kv->val);
		kv->type = type;
		kv->val = val;
		kv->val_len = n;
		return 0;
	}
	char *k = dup_bytes(key, key_len);
	if (!k || grow((void **)&w->kv, &w->kv_cap, w->n_kv, sizeof *w->kv)) {
		free(k);
		free(val);
		return fail(w, SAM_ENOMEM, "gguf writer: no memory for key '%.*s'", nk, key);
	}
	w->kv[w->n_kv++] = (struct gguf_wkv){ k, key_len, h, type, val, n };
	return 0;
}

static int set_scalar(struct gguf_writer *w, const char *key, uint32_t type, const void *v)
{
	if (w->status) return w->status;
	size_t n = scalar_size[type];
	uint8_t *val = malloc(n);
	if (!val) return fail(w, SAM_ENOMEM, "gguf writer: out of memory");
	memcpy(val, v, n);
	return set_encoded(w, key, strlen(key), type, val, n);
}

int gguf_writer_set_u8(struct gguf_writer *w, const char *key, uint8_t v) { return set_scalar(w, key, GGUF_T_U8, &v); }
int gguf_writer_set_i8(struct gguf_writer *w, const char *key, int8_t v) { return set_scalar(w, key, GGUF_T_I8, &v); }
int gguf_writer_set_u16(struct gguf_writer *w, const char *key, uint16_t v) { return set_scalar(w, key, GGUF_T_U16, &v); }
int gguf_writer_set_i16(struct gguf_writer *w, const char *key, int16_t v) { return set_scalar(w, key, GGUF_T_I16, &v); }
int gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_T_U32, &v); }
int gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_T_I32, &v); }
int gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_T_U64, &v); }
int gguf_writer_set_i64(struct gguf_writer *w, const char *key, int64_t v) { return set_scalar(w, key, GGUF_T_I64, &v); }
int gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v) { return set_scalar(w, key, GGUF_T_F32, &v); }
int gguf_writer_set_f64(struct gguf_writer *w, const char *key, double v) { return set_scalar(w, key, GGUF_T_F64, &v); }

int gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v)
{
	uint8_t b = v ? 1 : 0;
	return set_scalar(w, key, GGUF_T_BOOL, &b);
}

int gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment)
{
	return gguf_writer_set_u32(w, "general.alignment", alignment);
}

int gguf_writer_set_strn(struct gguf_writer *w, const char *key, const char *s, size_t n)
{
	if (w->status) return w->status;
	if (n > SIZE_MAX - 8) return fail(w, SAM_ERANGE, "gguf writer: string too long");
	uint8_t *val = malloc(8 + n);
	if (!val) return fail(w, SAM_ENOMEM, "gguf writer: no memory for a %zu-byte string", n);
	uint64_t n64 = n;
	memcpy(val, &n64, 8);
	if (n) memcpy(val + 8, s, n);
	return set_encoded(w, key, strlen(key), GGUF_T_STRING, val, 8 + n);
}

int gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *s)
{
	return gguf_writer_set_strn(w, key, s, strlen(s));
}

/* Array header (element type, count) followed by body bytes still to fill. */
static uint8_t *arr_alloc(struct gguf_writer *w, uint32_t etype, uint64_t n, size_t body, size_t *len)
{
	if (body > SIZE_MAX - 12) {
		fail(w, SAM_ERANGE, "gguf writer: array too large");
		return NULL;
	}
	uint8_t *val = malloc(12 + body);
	if (!val) {
		fail(w, SAM_ENOMEM, "gguf writer: no memory for an array of %llu elements", (unsigned long long)n);
		return NULL;
	}
	memcpy(val, &etype, 4);
	memcpy(val + 4, &n, 8);
	*len = 12 + body;
	return val;
}

int gguf_writer_set_arr(struct gguf_writer *w, const char *key, uint32_t etype, const void *data, size_t n)
{
	if (w->status) return w->status;
	if (etype >= GGUF_T_COUNT || etype == GGUF_T_STRING || etype == GGUF_T_ARRAY)
		return fail(w, SAM_EINVAL, "gguf writer: key '%s': invalid array element type %u "
			    "(use gguf_writer_set_arr_str for strings)", key, etype);
	size_t es = scalar_size[etype], len;
	if (n > SIZE_MAX / es) return fail(w, SAM_ERANGE, "gguf writer: key '%s': array too large", key);
	uint8_t *val = arr_alloc(w, etype, n, n * es, &len);
	if (!val) return w->status;
	if (n) memcpy(val + 12, data, n * es);
	return set_encoded(w, key, strlen(key), GGUF_T_ARRAY, val, len);
}

int gguf_writer_set_arr_str(struct gguf_writer *w, const char *key, const char *const *strs,
			    const size_t *lens, size_t n)
{
	if (w->status) return w->status;
	size_t body = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = lens ? lens[i] : strlen(strs[i]);
		if (l > SIZE_MAX - 8 - body) return fail(w, SAM_ERANGE, "gguf writer: key '%s': array too large", key);
		body += 8 + l;
	}
	size_t len;
	uint8_t *val = arr_alloc(w, GGUF_T_STRING, n, body, &len);
	if (!val) return w->status;
	uint8_t *p = val + 12;
	for (size_t i = 0; i < n; i++) {
		uint64_t l = lens ? lens[i] : strlen(strs[i]);
		memcpy(p, &l, 8);
		if (l) memcpy(p + 8, strs[i], l);
		p += 8 + l;
	}
	return set_encoded(w, key, strlen(key), GGUF_T_ARRAY, val, len);
}

int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv)
{
	if (w->status) return w->status;
	const struct gguf_value *v = &kv->v;
	int nk = (int)(kv->key.n > 200 ? 200 : kv->key.n);
	if (kv->key.n > SIZE_MAX) return fail(w, SAM_ERANGE, "gguf writer: key too long");
	uint8_t *val = NULL;
	size_t len = 0;
	if (v->type == GGUF_T_STRING) {
		if (v->str.n > SIZE_MAX - 8) return fail(w, SAM_ERANGE, "gguf writer: string too long");
		len = 8 + (size_t)v->str.n;
		if (!(val = malloc(len))) return fail(w, SAM_ENOMEM, "gguf writer: out of memory");
		memcpy(val, &v->str.n, 8);
		if (v->str.n) memcpy(val + 8, v->str.s, (size_t)v->str.n);
	} else if (v->type == GGUF_T_ARRAY) {
		uint32_t et = v->arr.type;
		size_t body = 0;
		if (et >= GGUF_T_COUNT || et == GGUF_T_ARRAY)
			return fail(w, SAM_EINVAL, "gguf writer: key '%.*s': invalid array element type %u", nk,
				    kv->key.s, et);
		if (et == GGUF_T_STRING) {
			for (uint64_t i = 0; i < v->arr.n; i++) {
				struct gguf_str s = gguf_arr_str(v, i);
				if (s.n > SIZE_MAX - 8 - body) return fail(w, SAM_ERANGE, "gguf writer: array too large");
				body += 8 + (size_t)s.n;
			}
		} else {
			if (v->arr.n > SIZE_MAX / scalar_size[et]) return fail(w, SAM_ERANGE, "gguf writer: array too large");
			body = (size_t)v->arr.n * scalar_size[et];
		}
		/* string elements are contiguous in the source too: copy the body as is */
		if (!(val = arr_alloc(w, et, v->arr.n, body, &len))) return w->status;
		if (body) memcpy(val + 12, v->arr.data, body);
	} else if (v->type < GGUF_T_COUNT) {
		uint8_t b[8];
		switch (v->type) {
		case GGUF_T_U8: case GGUF_T_BOOL: b[0] = (uint8_t)v->u; break;
		case GGUF_T_I8: b[0] = (uint8_t)(int8_t)v->i; break;
		case GGUF_T_U16: { uint16_t x = (uint16_t)v->u; memcpy(b, &x, 2); break; }
		case GGUF_T_I16: { int16_t x = (int16_t)v->i; memcpy(b, &x, 2); break; }
		case GGUF_T_U32: { uint32_t x = (uint32_t)v->u; memcpy(b, &x, 4); break; }
		case GGUF_T_I32: { int32_t x = (int32_t)v->i; memcpy(b, &x, 4); break; }
		case GGUF_T_F32: { float x = (float)v->f; memcpy(b, &x, 4); break; }
		case GGUF_T_U64: memcpy(b, &v->u, 8); break;
		case GGUF_T_I64: memcpy(b, &v->i, 8); break;
		case GGUF_T_F64: memcpy(b, &v->f, 8); break;
		}
		len = scalar_size[v->type];
		if (!(val = malloc(len))) return fail(w, SAM_ENOMEM, "gguf writer: out of memory");
		memcpy(val, b, len);
	} else {
		return fail(w, SAM_EINVAL, "gguf writer: key '%.*s': invalid value type %u", nk, kv->key.s, v->type);
	}
	return set_encoded(w, kv->key.s, (size_t)kv->key.n, v->type, val, len);
}

int gguf_writer_remove(struct gguf_writer *w, const char *key)
{
	if (w->status) return w->status;
	size_t n = strlen(key);
	struct gguf_wkv *kv = find_kv(w, key, n, hash_bytes(key, n));
	if (!kv) return SAM_ENOTFOUND;
	free(kv->key);
	free(kv->val);
	size_t i = (size_t)(kv - w->kv);
	memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
	w->n_kv--;
	return 0;
}

/* ---- tensors ------------------------------------------------------------ */

static int add_tensor(struct gguf_writer *w, const char *name, size_t name_len, uint32_t n_dims,
		      const uint64_t *ne, uint32_t type, const void *data, uint64_t nbytes)
{
	if (w->status) return w->status;
	int nl = (int)(name_len > 200 ? 200 : name_len);
	if (name_len == 0 || name_len > GGUF_WRITER_MAX_NAME)
		return fail(w, SAM_EINVAL, "gguf writer: tensor name '%.*s' is %zu bytes (1..%u allowed)", nl, name,
			    name_len, GGUF_WRITER_MAX_NAME);
	if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
		return fail(w, SAM_EINVAL, "gguf writer: tensor '%.*s': %u dimensions (1..%d allowed)", nl, name,
			    n_dims, GGUF_MAX_DIMS);
	const struct ggml_type_info *ti = ggml_type_info(type);
	if (!ti) return fail(w, SAM_EINVAL, "gguf writer: tensor '%.*s': unknown tensor type %u", nl, name, type);
	struct gguf_wtensor t = { .n_dims = n_dims, .type = type, .data = data };
	uint64_t nelem = 1;
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
		t.ne[d] = d < n_dims ? ne[d] : 1;
		if (t.ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(nelem, t.ne[d], &nelem) ||
		    nelem > (uint64_t)INT64_MAX)
			return fail(w, SAM_EINVAL, "gguf writer: tensor '%.*s': dimensions too large", nl, name);
	}
	if (t.ne[0] % ti->block)
		return fail(w, SAM_EINVAL, "gguf writer: tensor '%.*s': row length %llu is not a multiple of the %s "
			    "block size %u", nl, name, (unsigned long long)t.ne[0], ti->name, ti->block);
	if (__builtin_mul_overflow(nelem / ti->block, (uint64_t)ti->size, &t.nbytes))
		return fail(w, SAM_EINVAL, "gguf writer: tensor '%.*s': size overflows", nl, name);
	if (t.nbytes != nbytes)
		return fail(w, SAM_EINVAL, "gguf writer: tensor '%.*s': %llu bytes given, its shape and type need %llu",
			    nl, name, (unsigned long long)nbytes, (unsigned long long)t.nbytes);
	t.hash = hash_bytes(name, name_len);
	for (size_t i = 0; i < w->n_tensors; i++)
		if (w->tensors[i].hash == t.hash && w->tensors[i].name_len == name_len &&
		    memcmp(w->tensors[i].name, name, name_len) == 0)
			return fail(w, SAM_EINVAL, "gguf writer: duplicate tensor '%.*s'", nl, name);
	t.name = dup_bytes(name, name_len);
	t.name_len = name_len;
	if (!t.name || grow((void **)&w->tensors, &w->tensors_cap, w->n_tensors, sizeof *w->tensors)) {
		free(t.name);
		return fail(w, SAM_ENOMEM, "gguf writer: no memory for tensor '%.*s'", nl, name);
	}
	w->tensors[w->n_tensors++] = t;
	return 0;
}

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
			   uint32_t type, const void *data, size_t nbytes)
{
	return add_tensor(w, name, strlen(name), n_dims, ne, type, data, nbytes);
}

int gguf_writer_copy_tensor(struct gguf_writer *w, const struct gguf_tensor *t)
{
	if (t->name.n > GGUF_WRITER_MAX_NAME)
		return fail(w, SAM_EINVAL, "gguf writer: tensor name of %llu bytes is too long (at most %u)",
			    (unsigned long long)t->name.n, GGUF_WRITER_MAX_NAME);
	return add_tensor(w, t->name.s, (size_t)t->name.n, t->n_dims, t->ne, t->type, t->data, t->nbytes);
}

/* ---- layout -------------------------------------------------------------- */

uint32_t gguf_writer_alignment(const struct gguf_writer *w)
{
	for (size_t i = 0; i < w->n_kv; i++)
		if (is_alignment_key(w->kv[i].key, w->kv[i].key_len)) {
			uint32_t a;
			memcpy(&a, w->kv[i].val, 4); /* validated when set */
			return a;
		}
	return GGUF_DEFAULT_ALIGNMENT;
}

static bool add_ok(uint64_t *acc, uint64_t v) { return !__builtin_add_overflow(*acc, v, acc); }

static bool align_ok(uint64_t *x, uint64_t a)
{
	uint64_t r = *x % a;
	return r == 0 || add_ok(x, a - r);
}

/* Bytes before the data section (unpadded); false on overflow. */
static bool meta_size(const struct gguf_writer *w, uint64_t *out)
{
	uint64_t n = 24;
	for (size_t i = 0; i < w->n_kv; i++)
		if (!add_ok(&n, 12) || !add_ok(&n, w->kv[i].key_len) || !add_ok(&n, w->kv[i].val_len)) return false;
	for (size_t i = 0; i < w->n_tensors; i++)
		if (!add_ok(&n, 8 + 4 + 4 + 8) || !add_ok(&n, w->tensors[i].name_len) ||
		    !add_ok(&n, 8ull * w->tensors[i].n_dims))
			return false;
	*out = n;
	return true;
}

/* Data offset and total size; SAM_ERANGE (sticky) when they do not fit 64 bits. */
static int layout(struct gguf_writer *w, uint64_t *data_off, uint64_t *size)
{
	uint64_t a = gguf_writer_alignment(w), d, off = 0;
	if (!meta_size(w, &d) || !align_ok(&d, a)) goto overflow;
	for (size_t i = 0; i < w->n_tensors; i++)
		if (!add_ok(&off, w->tensors[i].nbytes) || !align_ok(&off, a)) goto overflow;
	if (!add_ok(&off, d)) goto overflow;
	*data_off = d;
	*size = off;
	return 0;
overflow:
	return fail(w, SAM_ERANGE, "gguf writer: the file would exceed 2^64 bytes");
}

uint64_t gguf_writer_size(const struct gguf_writer *w)
{
	uint64_t a = gguf_writer_alignment(w), n, off = 0;
	if (w->status || !meta_size(w, &n) || !align_ok(&n, a)) return 0;
	for (size_t i = 0; i < w->n_tensors; i++)
		if (!add_ok(&off, w->tensors[i].nbytes) || !align_ok(&off, a)) return 0;
	return add_ok(&off, n) ? off : 0;
}

uint64_t gguf_writer_data_offset(const struct gguf_writer *w)
{
	uint64_t n;
	if (!meta_size(w, &n) || !align_ok(&n, gguf_writer_alignment(w))) return 0;
	return n;
}

uint64_t gguf_writer_tensor_offset(const struct gguf_writer *w, size_t i)
{
	uint64_t a = gguf_writer_alignment(w), off = 0;
	for (size_t j = 0; j < i && j < w->n_tensors; j++)
		if (!add_ok(&off, w->tensors[j].nbytes) || !align_ok(&off, a)) return 0;
	return off;
}

/* ---- emitting ----------------------------------------------------------- */

/* Where bytes go: a memory buffer of the exact file size, or fd through buf. */
struct sink {
	uint8_t *buf;
	size_t len, cap;
	int fd;            /* -1: memory */
	const char *path;  /* for messages */
	uint64_t written;
	struct sam_error *err;
};

static int write_all(struct sink *s, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = write(s->fd, p, n);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) return sam_errorf(s->err, SAM_EIO, "%s: write: %s", s->path, strerror(errno));
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int flush(struct sink *s)
{
	if (s->fd < 0 || !s->len) return 0;
	int rc = write_all(s, s->buf, s->len);
	s->len = 0;
	return rc;
}

static int put(struct sink *s, const void *p, size_t n)
{
	s->written += n;
	if (s->fd < 0) {
		if (n > s->cap - s->len) SAM_BUG("gguf writer: layout and output disagree");
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		return 0;
	}
	if (n > s->cap - s->len) {
		int rc = flush(s);
		if (rc) return rc;
		if (n >= s->cap) return write_all(s, p, n); /* large tensors bypass the buffer */
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static int put_zeros(struct sink *s, uint64_t n)
{
	static const uint8_t zeros[4096];
	while (n) {
		size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
		int rc = put(s, zeros, k);
		if (rc) return rc;
		n -= k;
	}
	return 0;
}

static int put_u32(struct sink *s, uint32_t v) { return put(s, &v, 4); }
static int put_u64(struct sink *s, uint64_t v) { return put(s, &v, 8); }

static int put_str(struct sink *s, const char *p, size_t n)
{
	int rc = put_u64(s, n);
	return rc ? rc : put(s, p, n);
}

static int pad(struct sink *s, uint64_t a)
{
	uint64_t r = s->written % a;
	return r ? put_zeros(s, a - r) : 0;
}

static int emit(const struct gguf_writer *w, struct sink *s)
{
	uint64_t a = gguf_writer_alignment(w);
	int rc;
	if ((rc = put(s, "GGUF", 4)) || (rc = put_u32(s, GGUF_VERSION)) || (rc = put_u64(s, w->n_tensors)) ||
	    (rc = put_u64(s, w->n_kv)))
		return rc;
	for (size_t i = 0; i < w->n_kv; i++) {
		const struct gguf_wkv *kv = &w->kv[i];
		if ((rc = put_str(s, kv->key, kv->key_len)) || (rc = put_u32(s, kv->type)) ||
		    (rc = put(s, kv->val, kv->val_len)))
			return rc;
	}
	uint64_t off = 0;
	for (size_t i = 0; i < w->n_tensors; i++) {
		const struct gguf_wtensor *t = &w->tensors[i];
		if ((rc = put_str(s, t->name, t->name_len)) || (rc = put_u32(s, t->n_dims)) ||
		    (rc = put(s, t->ne, 8 * (size_t)t->n_dims)) || (rc = put_u32(s, t->type)) || (rc = put_u64(s, off)))
			return rc;
		off += t->nbytes;
		off += (a - off % a) % a; /* layout() checked for overflow */
	}
	if ((rc = pad(s, a))) return rc;
	for (size_t i = 0; i < w->n_tensors; i++) {
		const struct gguf_wtensor *t = &w->tensors[i];
		rc = t->data ? put(s, t->data, (size_t)t->nbytes) : put_zeros(s, t->nbytes);
		if (rc || (rc = pad(s, a))) return rc;
	}
	return flush(s);
}

int gguf_writer_to_mem(struct gguf_writer *w, void **out, size_t *size, struct sam_error *err)
{
	uint64_t d, n;
	*out = NULL;
	*size = 0;
	if (w->status || layout(w, &d, &n)) return report(w, err);
	if (n > SIZE_MAX) return sam_errorf(err, SAM_ERANGE, "gguf writer: %llu bytes do not fit in memory",
					     (unsigned long long)n);
	struct sink s = { .buf = malloc(n ? (size_t)n : 1), .cap = (size_t)n, .fd = -1, .path = "memory", .err = err };
	if (!s.buf) return sam_errorf(err, SAM_ENOMEM, "gguf writer: no memory for %llu bytes", (unsigned long long)n);
	int rc = emit(w, &s);
	if (!rc && s.written != n) SAM_BUG("gguf writer: wrote %llu bytes, layout said %llu",
					  (unsigned long long)s.written, (unsigned long long)n);
	if (rc) {
		free(s.buf);
		return rc;
	}
	*out = s.buf;
	*size = (size_t)n;
	return 0;
}

int gguf_writer_write(struct gguf_writer *w, const char *path, struct sam_error *err)
{
	uint64_t d, n;
	if (w->status || layout(w, &d, &n)) return report(w, err);
	struct sam_afile af;
	int rc = sam_afile_open(&af, path, 0644, err);
	if (rc) return rc;
	struct sink s = { .buf = malloc(FILE_BUF_SIZE), .cap = FILE_BUF_SIZE, .fd = af.fd, .path = af.tmp, .err = err };
	if (!s.buf) {
		sam_afile_abort(&af);
		return sam_errorf(err, SAM_ENOMEM, "out of memory");
	}
	rc = emit(w, &s);
	free(s.buf);
	if (rc) {
		sam_afile_abort(&af);
		return rc;
	}
	if (s.written != n) SAM_BUG("gguf writer: wrote %llu bytes, layout said %llu",
				    (unsigned long long)s.written, (unsigned long long)n);
	return sam_afile_commit(&af, err);
}
