/*
 * gguf_write.h - build a GGUF v3 file (metadata and tensors) and write it
 * to disk atomically or into a memory buffer.
 *
 * Layout is llama.cpp's (gguf_write_to_buf): header, kv pairs in the order
 * they were first set, tensor infos in the order they were added, zero
 * padding up to the alignment, then each tensor's data followed by zero
 * padding to the alignment. So tensor i starts at data offset
 *   offset[0] = 0, offset[i+1] = align_up(offset[i] + nbytes[i])
 * and the file size is data_offset + sum(align_up(nbytes[i])).
 * The alignment is the u32 value of "general.alignment" when set
 * (a power of two, at most 2^30), else GGUF_DEFAULT_ALIGNMENT (32).
 *
 * Ownership:
 *  - Keys, names and every kv value (strings and arrays included) are
 *    COPIED when set: the caller's buffers may be reused right away.
 *  - Tensor data is BORROWED: the pointer passed to gguf_writer_add_tensor()
 *    must stay valid and unchanged until the last gguf_writer_write() /
 *    gguf_writer_to_mem() call. A NULL data pointer writes zeros.
 *  - gguf_writer_free() releases everything the writer allocated; it never
 *    frees tensor data.
 *
 * Errors are sticky (like a FILE's error flag): every setter returns 0 or a
 * negative SAM_E* code, and once one call fails the writer remembers the
 * first failure, ignores later set/add calls, and gguf_writer_write() and
 * gguf_writer_to_mem() return it with its message. So a caller may check
 * each call or only the final write.
 */
#ifndef SAM_GGUF_WRITE_H
#define SAM_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/gguf.h"

#define GGUF_WRITER_MAX_KEY 65535u /* GGUF spec: keys are < 2^16 bytes */
#define GGUF_WRITER_MAX_NAME 63u   /* llama.cpp rejects tensor names of GGML_MAX_NAME (64) bytes */
#define GGUF_WRITER_MAX_ALIGNMENT (1u << 30)

/* One metadata pair: the key and its encoded value (the bytes after the type). */
struct gguf_wkv {
	char *key;        /* key_len bytes (malloc'd, NUL-terminated for convenience) */
	size_t key_len;
	uint64_t hash;    /* of the key, to speed up duplicate checks */
	uint32_t type;    /* enum gguf_vtype */
	uint8_t *val;     /* value bytes exactly as written to the file (malloc'd) */
	size_t val_len;
};

struct gguf_wtensor {
	char *name;                 /* name_len bytes (malloc'd, NUL-terminated) */
	size_t name_len;
	uint64_t hash;              /* of the name */
	uint32_t n_dims;
	uint64_t ne[GGUF_MAX_DIMS]; /* GGUF order; unused dims are 1 */
	uint32_t type;              /* enum ggml_type */
	uint64_t nbytes;
	const void *data;           /* borrowed; NULL writes zeros */
};

struct gguf_writer {
	struct gguf_wkv *kv;
	size_t n_kv, kv_cap;
	struct gguf_wtensor *tensors;
	size_t n_tensors, tensors_cap;
	int status;             /* first failure (sticky), 0 if none */
	struct sam_error err;   /* its message */
};

/* Start an empty writer. */
void gguf_writer_init(struct gguf_writer *w);
/* Free everything the writer owns (not tensor data); leaves it empty as after init. */
void gguf_writer_free(struct gguf_writer *w);

/*
 * Metadata setters. key is NUL-terminated, 1..GGUF_WRITER_MAX_KEY bytes.
 * Setting a key that already exists replaces its value (and type) and keeps
 * its position. "general.alignment" may only be set as a power-of-two u32
 * <= 2^30 (SAM_EINVAL otherwise).
 */
int gguf_writer_set_u8(struct gguf_writer *w, const char *key, uint8_t v);
int gguf_writer_set_i8(struct gguf_writer *w, const char *key, int8_t v);
int gguf_writer_set_u16(struct gguf_writer *w, const char *key, uint16_t v);
int gguf_writer_set_i16(struct gguf_writer *w, const char *key, int16_t v);
int gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_i64(struct gguf_writer *w, const char *key, int64_t v);
int gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v);
int gguf_writer_set_f64(struct gguf_writer *w, const char *key, double v);
int gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v);
/* A NUL-terminated string, or n bytes of s (may contain NULs). */
int gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *s);
int gguf_writer_set_strn(struct gguf_writer *w, const char *key, const char *s, size_t n);
/*
 * An array of n scalars of element type etype (any type but STRING and
 * ARRAY), read from data as a packed C array of that type (bool: one byte
 * per element, 0 or 1). data may be NULL when n is 0.
 */
int gguf_writer_set_arr(struct gguf_writer *w, const char *key, uint32_t etype, const void *data, size_t n);
/* An array of n strings; lens[i] is strs[i]'s length, or lens NULL for NUL-terminated strings. */
int gguf_writer_set_arr_str(struct gguf_writer *w, const char *key, const char *const *strs,
			    const size_t *lens, size_t n);
/* Copy a pair (key and value) from a file opened with gguf_open*(). */
int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv);
/* Remove key; SAM_ENOTFOUND (not sticky) when it is not set. */
int gguf_writer_remove(struct gguf_writer *w, const char *key);
/* Set general.alignment (shorthand for gguf_writer_set_u32). */
int gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment);

/*
 * Add a tensor. name: NUL-terminated, 1..GGUF_WRITER_MAX_NAME bytes, unique
 * (SAM_EINVAL on a duplicate). ne[0..n_dims) in GGUF order (ne[0] is the row
 * length, a multiple of the type's block size), 1 <= n_dims <= 4. nbytes must
 * equal the size computed from ne and the type's geometry (SAM_EINVAL
 * otherwise). data is borrowed (see above); NULL writes zeros.
 */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
			   uint32_t type, const void *data, size_t nbytes);
/* Add a tensor described by a file opened with gguf_open*(); borrows t->data. */
int gguf_writer_copy_tensor(struct gguf_writer *w, const struct gguf_tensor *t);

/* The alignment the file will use (general.alignment or 32). */
uint32_t gguf_writer_alignment(const struct gguf_writer *w);
/* Size in bytes of the file the writer would produce (0 after a failure). */
uint64_t gguf_writer_size(const struct gguf_writer *w);
/* Offset of the data section, and of tensor i within it. */
uint64_t gguf_writer_data_offset(const struct gguf_writer *w);
uint64_t gguf_writer_tensor_offset(const struct gguf_writer *w, size_t i);

/*
 * Write the file to path atomically: write "path.tmp.<pid>", fsync it,
 * rename it over path, fsync the directory. On failure the temporary file
 * is removed, path is untouched, and a negative SAM_E* code is returned
 * (SAM_EIO with errno's text for system errors). The writer is unchanged
 * and may be written again.
 */
int gguf_writer_write(struct gguf_writer *w, const char *path, struct sam_error *err);

/*
 * Serialize into a malloc'd buffer: *out (caller frees with free()) and
 * *size. On failure *out is NULL and *size 0.
 */
int gguf_writer_to_mem(struct gguf_writer *w, void **out, size_t *size, struct sam_error *err);

#endif
