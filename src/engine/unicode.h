/*
 * unicode.h - what the byte-level BPE pre-tokenizers need to know about code
 * points: the general category group of each one (tables generated from
 * Unicode 15.1, as llama.cpp's are, by scripts/gen-unicode-tables.py), the
 * whitespace set llama.cpp uses, and llama.cpp's lenient UTF-8 decoding.
 *
 * No allocation; everything here is a pure function over constant tables.
 */
#ifndef SAM_ENGINE_UNICODE_H
#define SAM_ENGINE_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* General category groups: \p{L}, \p{M}, \p{N}, \p{P}, \p{S}, \p{Z}, \p{C}. */
enum uni_cat {
	UNI_CN = 0, /* unassigned (Cn), or beyond U+10FFFF */
	UNI_C = 1,  /* Cc Cf Co Cs */
	UNI_L = 2,  /* Lu Ll Lt Lm Lo */
	UNI_M = 3,  /* Mn Mc Me */
	UNI_N = 4,  /* Nd Nl No */
	UNI_P = 5,  /* Pc Pd Ps Pe Pi Pf Po */
	UNI_S = 6,  /* Sm Sc Sk So */
	UNI_Z = 7,  /* Zs Zl Zp */
};

/* The Unicode version of the tables ("15.1.0"). */
const char *uni_version(void);

/* General category group of cp (any value: past U+10FFFF is UNI_CN). */
enum uni_cat uni_category(uint32_t cp);

/*
 * Whitespace as llama.cpp's unicode tables define it (Unicode White_Space):
 * U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000.
 */
bool uni_is_space(uint32_t cp);

/* Replacement for input that is not UTF-8. */
#define UNI_REPLACEMENT 0xFFFDu

/*
 * Decode one code point from s[0..n) (n > 0) the way llama.cpp's
 * unicode_cpt_from_utf8 does: the lead byte says the length; continuation
 * bytes must be 10xxxxxx; overlong forms and surrogates are accepted. A bad
 * or truncated sequence gives UNI_REPLACEMENT for its first byte alone
 * (*len = 1). So does a 4-byte form above U+10FFFF, which llama.cpp cannot
 * encode back (it throws there). Returns the code point; *len is the number
 * of bytes consumed (1..4).
 */
uint32_t uni_decode(const char *s, size_t n, size_t *len);

/* UTF-8 of cp (<= U+10FFFF) into out; returns its length (1..4). */
size_t uni_encode(uint32_t cp, char out[4]);

#endif
