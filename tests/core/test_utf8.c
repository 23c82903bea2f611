/* test_utf8.c - UTF-8 boundaries and repair. */
#include <stdlib.h>
#include <string.h>

#include "sam/utf8.h"
#include "test.h"

TEST(utf8_safe_end_never_splits_a_character)
{
	const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a é € 😀 */
	CHECK_INT(utf8_safe_end(s, 10), 10);
	CHECK_INT(utf8_safe_end(s, 9), 6);
	CHECK_INT(utf8_safe_end(s, 7), 6);
	CHECK_INT(utf8_safe_end(s, 5), 3);
	CHECK_INT(utf8_safe_end(s, 2), 1);
	CHECK_INT(utf8_safe_end(s, 1), 1);
	CHECK_INT(utf8_safe_end("\x80\x80", 2), 2); /* stray continuations are not held back forever */
}

TEST(utf8_sanitize_replaces_invalid_bytes)
{
	size_t n;
	char *o = utf8_sanitize("ok\xFF\xC3(\xED\xA0\x80\xC0\xAF", 10, &n);
	CHECK_STR(o, "ok\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	CHECK_INT(n, strlen(o));
	free(o);
	o = utf8_sanitize("h\xC3\xA9llo", 6, &n);
	CHECK_STR(o, "h\xC3\xA9llo");
	free(o);
}

TEST(utf8_valid_whole_buffers)
{
	CHECK(utf8_valid("", 0));
	static const char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	CHECK(utf8_valid(ok, sizeof ok - 1));
	CHECK(!utf8_valid("caf\xc3", 4));          /* cut inside a character */
	CHECK(!utf8_valid("\xff\xfe", 2));          /* never valid */
	CHECK(!utf8_valid("a\xc0\xaf", 3));         /* overlong */
	CHECK(!utf8_valid("\xed\xa0\x80", 3));      /* a surrogate */
}
