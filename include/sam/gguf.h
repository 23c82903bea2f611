/*
 * gguf.h - a validating reader for GGUF v2/v3 model files.
 *
 * The file is mmapped read-only. Every count, length, offset and dimension
 * is checked against the file size before use, so a truncated or hostile
 * file yields SAM_EFORMAT with a message, never an out-of-bounds read.
 *
 * Ownership: struct gguf_file owns the mapping and the kv/tensor tables.
 * Every pointer handed out (strings, array data, tensor data) points into
 * the mapping and stays valid until gguf_close(). Strings are NOT
 * NUL-terminated: use the (s, n) pair.
 */
#ifndef SAM_GGUF_H
#define SAM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"

enum gguf_vtype {
	GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3,
	GGUF_T_U32 = 4, GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7,
	GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_U64 = 10, GGUF_T_I64 = 11,
	GGUF_T_F64 = 12,
	GGUF_T_COUNT
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

struct gguf_str {
	const char *s; /* into the mapping; not NUL-terminated */
	uint64_t n;
};

struct gguf_value {
	uint32_t type; /* enum gguf_vtype */
	union {
		uint64_t u;          /* U8..U64, BOOL */
		int64_t i;           /* I8..I64 */
		double f;            /* F32, F64 */
		struct gguf_str str; /* STRING */
		struct {
			uint32_t type;          /* element type; never ARRAY */
			uint64_t n;             /* element count */
			const uint8_t *data;    /* first element in the mapping */
			const uint64_t *offs;   /* STRING arrays: offset of each element from data */
		} arr;
	};
};

struct gguf_kv {
	struct gguf_str key;
	struct gguf_value v;
};

struct gguf_tensor {
	struct gguf_str name;
	uint32_t n_dims;
	uint64_t ne[GGUF_MAX_DIMS]; /* GGUF order: ne[0] is the row length; unused dims are 1 */
	uint32_t type;              /* enum ggml_type */
	uint64_t offset;            /* from the start of the data section */
	uint64_t nbytes;
	const void *data;           /* into the mapping */
};

struct gguf_file {
	const uint8_t *map;
	size_t size;
	bool mapped; /* true when gguf_open() mmapped it (gguf_close unmaps) */
	uint32_t version;
	uint64_t n_kv;
	struct gguf_kv *kv;
	uint64_t n_tensors;
	struct gguf_tensor *tensors;
	uint64_t alignment;
	uint64_t data_offset;
	/* open-addressing indexes of kv and tensors (slot = index + 1; 0 empty) */
	uint32_t *kv_index, *tensor_index;
	uint64_t kv_index_cap, tensor_index_cap;
};

/* Map and parse path. On failure f is left closed and err says why. */
int gguf_open(struct gguf_file *f, const char *path, struct sam_error *err);

/* Parse a buffer the caller owns and keeps alive until gguf_close(). */
int gguf_open_mem(struct gguf_file *f, const void *buf, size_t size, struct sam_error *err);

/* Release everything gguf_open*() allocated. Safe on a zeroed struct. */
void gguf_close(struct gguf_file *f);

/* Lookups by NUL-terminated name; NULL when absent. */
const struct gguf_kv *gguf_find(const struct gguf_file *f, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/*
 * Typed getters. Each returns 0 and stores the value, SAM_ENOTFOUND when the
 * key is absent (out untouched), or SAM_EFORMAT when it has an incompatible
 * type or does not fit (details in err, which may be NULL).
 * gguf_get_int accepts any integer type; gguf_get_float any int or float.
 */
int gguf_get_int(const struct gguf_file *f, const char *key, int64_t *out, struct sam_error *err);
int gguf_get_float(const struct gguf_file *f, const char *key, double *out, struct sam_error *err);
int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out, struct sam_error *err);
int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out, struct sam_error *err);
/* An array of element type etype (pass GGUF_T_COUNT to accept any). */
int gguf_get_arr(const struct gguf_file *f, const char *key, uint32_t etype,
		 const struct gguf_value **out, struct sam_error *err);

/* Element i (< arr.n, unchecked) of an array value. */
struct gguf_str gguf_arr_str(const struct gguf_value *v, uint64_t i);
double gguf_arr_num(const struct gguf_value *v, uint64_t i); /* numeric/bool element */

/* Name of a value type ("u32", "string", ...). */
const char *gguf_vtype_name(uint32_t type);

/* Compare a gguf_str to a C string. */
bool gguf_str_eq(struct gguf_str a, const char *b);

#endif
