/* utf8.h - UTF-8 helpers for text that crosses token and network boundaries. */
#ifndef SAM_UTF8_H
#define SAM_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Largest p <= n such that s[0..p) does not end inside a (possibly valid) multi-byte character. */
size_t utf8_safe_end(const char *s, size_t n);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if s[0..n) does not start with one. */
size_t utf8_valid_len(const char *s, size_t n);

/* Whether all of s[0..n) is valid UTF-8. */
bool utf8_valid(const char *s, size_t n);

/* A malloc'd, NUL-terminated copy of s[0..n) with each invalid byte replaced by U+FFFD; *out_len its length. */
char *utf8_sanitize(const char *s, size_t n, size_t *out_len);

#endif
