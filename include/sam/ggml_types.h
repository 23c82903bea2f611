/*
 * ggml_types.h - the tensor element types a GGUF file can name, with their
 * block geometry. The numbering is GGUF's and must never change.
 */
#ifndef SAM_GGML_TYPES_H
#define SAM_GGML_TYPES_H

#include <stddef.h>
#include <stdint.h>

enum ggml_type {
	GGML_TYPE_F32 = 0,
	GGML_TYPE_F16 = 1,
	GGML_TYPE_Q4_0 = 2,
	GGML_TYPE_Q4_1 = 3,
	GGML_TYPE_Q5_0 = 6,
	GGML_TYPE_Q5_1 = 7,
	GGML_TYPE_Q8_0 = 8,
	GGML_TYPE_Q8_1 = 9,
	GGML_TYPE_Q2_K = 10,
	GGML_TYPE_Q3_K = 11,
	GGML_TYPE_Q4_K = 12,
	GGML_TYPE_Q5_K = 13,
	GGML_TYPE_Q6_K = 14,
	GGML_TYPE_Q8_K = 15,
	GGML_TYPE_BF16 = 30,
	GGML_TYPE_COUNT = 39,
};

/* Geometry of one type: elements per block and bytes per block. */
struct ggml_type_info {
	const char *name; /* NULL for ids that are unassigned or retired */
	uint32_t block;   /* elements per block */
	uint32_t size;    /* bytes per block */
};

/* Info for a type id, or NULL when the id names no known type. */
const struct ggml_type_info *ggml_type_info(uint32_t type);

/* Name of a type id; "type<N>" style names are not produced: "unknown". */
const char *ggml_type_name(uint32_t type);

#endif
