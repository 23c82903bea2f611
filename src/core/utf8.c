/* utf8.c - boundaries and repair of UTF-8 text (see utf8.h). */
#include <string.h>

#include "sam/core.h"
#include "sam/utf8.h"

size_t utf8_safe_end(const char *t, size_t n)
{
	for (size_t back = 1; back <= 4 && back <= n; back++) {
		unsigned char c = (unsigned char)t[n - back];
		if ((c & 0xC0) == 0x80) continue; /* continuation: keep looking for the lead byte */
		size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
		return need > back ? n - back : n;
	}
	return n;
}

size_t utf8_valid_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	if (!n) return 0;
	if (s[0] < 0x80) return 1;
	size_t len;
	unsigned cp;
	if ((s[0] & 0xE0) == 0xC0) len = 2, cp = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0) len = 3, cp = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0) len = 4, cp = s[0] & 0x07;
	else return 0;
	if (len > n) return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80) return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
	if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = utf8_valid_len(s + i, n - i);
		if (!l) return false;
		i += l;
	}
	return true;
}

char *utf8_sanitize(const char *s, size_t n, size_t *out_len)
{
	char *out = xmalloc(n * 3 + 1), *o = out; /* each bad byte becomes 3 bytes at most */
	for (size_t i = 0; i < n;) {
		size_t l = utf8_valid_len(s + i, n - i);
		if (l) {
			memcpy(o, s + i, l);
			o += l;
			i += l;
		} else {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	*o = 0;
	if (out_len) *out_len = (size_t)(o - out);
	return out;
}
