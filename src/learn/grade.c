/*
 * grade.c - grading curriculum answers (curriculum.h): normalisation into
 * words, whole-word containment, token F1, and agreement of samples.
 * Pure functions: no I/O, no global state.
 */
#include <stdlib.h>
#include <string.h>

#include "sam/curriculum.h"
#include "sam/utf8.h"

/* A normalised text cut into words: w[i] point into buf, each NUL-terminated. */
struct words {
	char *buf;
	char **w;
	size_t n;
};

static const char *const number_words[][2] = {
	{ "zero", "0" },       { "one", "1" },       { "two", "2" },        { "three", "3" },     { "four", "4" },
	{ "five", "5" },       { "six", "6" },       { "seven", "7" },      { "eight", "8" },     { "nine", "9" },
	{ "ten", "10" },       { "eleven", "11" },   { "twelve", "12" },    { "thirteen", "13" }, { "fourteen", "14" },
	{ "fifteen", "15" },   { "sixteen", "16" },  { "seventeen", "17" }, { "eighteen", "18" }, { "nineteen", "19" },
	{ "twenty", "20" },    { "thirty", "30" },   { "forty", "40" },     { "fifty", "50" },    { "sixty", "60" },
	{ "seventy", "70" },   { "eighty", "80" },   { "ninety", "90" },
};

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(unsigned char c) { return is_digit(c) || (unsigned)((c | 32) - 'a') < 26; }

/* The code point of the valid UTF-8 sequence s[0..n) (n = 2..4). */
static unsigned decode(const unsigned char *s, size_t n)
{
	unsigned cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

static bool is_separator_cp(unsigned cp)
{
	return (cp >= 0xa0 && cp <= 0xbf) || (cp >= 0x2000 && cp <= 0x206f) || (cp >= 0x3000 && cp <= 0x303f);
}

/* A ',' at s[i] that groups thousands: digit before, exactly three digits after. */
static bool thousands_comma(const unsigned char *s, size_t i, size_t n)
{
	if (i == 0 || !is_digit(s[i - 1]) || i + 3 >= n) return false;
	for (size_t k = 1; k <= 3; k++)
		if (!is_digit(s[i + k])) return false;
	return i + 4 >= n || !is_digit(s[i + 4]);
}

/* The word out[start..*len) is complete: drop an article, spell number words as digits. */
static void end_word(char *out, size_t start, size_t *len)
{
	size_t wl = *len - start;
	if (!wl) return;
	const char *w = out + start;
	if ((wl == 1 && w[0] == 'a') || (wl == 2 && !memcmp(w, "an", 2)) || (wl == 3 && !memcmp(w, "the", 3))) {
		*len = start ? start - 1 : 0; /* and the space before it */
		return;
	}
	for (size_t i = 0; i < sizeof number_words / sizeof number_words[0]; i++) {
		if (strlen(number_words[i][0]) == wl && !memcmp(w, number_words[i][0], wl)) {
			size_t dl = strlen(number_words[i][1]); /* never longer than the word */
			memcpy(out + start, number_words[i][1], dl);
			*len = start + dl;
			return;
		}
	}
}

char *sam_grade_normalise(const char *text)
{
	const unsigned char *s = (const unsigned char *)(text ? text : "");
	size_t n = strlen((const char *)s);
	if (n > SAM_GRADE_TEXT_MAX) n = utf8_safe_end((const char *)s, SAM_GRADE_TEXT_MAX);
	char *out = xmalloc(n + 1); /* every rule emits at most one byte per input byte */
	size_t len = 0, start = 0;
	bool in_word = false;
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t step = 1;
		int emit = -1; /* a byte to append to the word, or -1: a separator */
		bool keep_bytes = false;
		if (is_alnum(c)) {
			emit = c >= 'A' && c <= 'Z' ? c + 32 : c;
		} else if (c < 0x80) {
			bool digit_before = in_word && len > start && is_digit((unsigned char)out[len - 1]);
			bool digit_after = i + 1 < n && is_digit(s[i + 1]);
			if ((c == '.' || c == ':') && digit_before && digit_after) emit = c;
			else if (c == ',' && digit_before && thousands_comma(s, i, n)) emit = -2; /* dropped */
			else if (c == '-' && !in_word && digit_after) emit = '-';
		} else {
			size_t ul = utf8_valid_len((const char *)s + i, n - i);
			if (ul) {
				step = ul;
				keep_bytes = !is_separator_cp(decode(s + i, ul));
			}
		}
		if (emit == -2) {
			i += step;
			continue;
		}
		if (emit >= 0 || keep_bytes) {
			if (!in_word) {
				if (len) out[len++] = ' ';
				start = len;
				in_word = true;
			}
			if (keep_bytes) {
				memcpy(out + len, s + i, step);
				len += step;
			} else {
				out[len++] = (char)emit;
			}
		} else if (in_word) {
			end_word(out, start, &len);
			in_word = false;
		}
		i += step;
	}
	if (in_word) end_word(out, start, &len);
	out[len] = 0;
	return out;
}

static void words_init(struct words *ws, const char *text)
{
	ws->buf = sam_grade_normalise(text);
	ws->n = 0;
	size_t cap = 1;
	for (const char *p = ws->buf; *p; p++) cap += *p == ' ';
	ws->w = xmalloc(cap * sizeof *ws->w);
	for (char *p = ws->buf; *p;) {
		ws->w[ws->n++] = p;
		char *sp = strchr(p, ' ');
		if (!sp) break;
		*sp = 0;
		p = sp + 1;
	}
}

static void words_free(struct words *ws)
{
	free(ws->buf);
	free(ws->w);
}

static int cmp_word(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* b's words as a contiguous run of a's. */
static bool contains(const struct words *a, const struct words *b)
{
	if (!b->n || b->n > a->n) return false;
	for (size_t i = 0; i + b->n <= a->n; i++) {
		size_t k = 0;
		while (k < b->n && !strcmp(a->w[i + k], b->w[k])) k++;
		if (k == b->n) return true;
	}
	return false;
}

static double f1_words(const struct words *a, const struct words *b)
{
	if (!a->n || !b->n) return 0;
	char **sa = xmalloc(a->n * sizeof *sa), **sb = xmalloc(b->n * sizeof *sb);
	memcpy(sa, a->w, a->n * sizeof *sa);
	memcpy(sb, b->w, b->n * sizeof *sb);
	qsort(sa, a->n, sizeof *sa, cmp_word);
	qsort(sb, b->n, sizeof *sb, cmp_word);
	size_t i = 0, j = 0, common = 0;
	while (i < a->n && j < b->n) {
		int c = strcmp(sa[i], sb[j]);
		if (!c) common++, i++, j++;
		else if (c < 0) i++;
		else j++;
	}
	free(sa);
	free(sb);
	return 2.0 * (double)common / (double)(a->n + b->n);
}

static bool is_number(const char *w)
{
	return is_digit((unsigned char)w[0]) || (w[0] == '-' && is_digit((unsigned char)w[1]));
}

static bool numbers_present(const struct words *answer, const struct words *ref)
{
	for (size_t i = 0; i < ref->n; i++) {
		if (!is_number(ref->w[i])) continue;
		size_t k = 0;
		while (k < answer->n && strcmp(answer->w[k], ref->w[i])) k++;
		if (k == answer->n) return false;
	}
	return true;
}

static bool match(const struct words *answer, const struct words *ref, double *score)
{
	*score = 0;
	if (!answer->n || !ref->n) return false;
	if (contains(answer, ref)) {
		*score = 1;
		return true;
	}
	*score = f1_words(answer, ref);
	return ref->n >= 3 && *score >= SAM_GRADE_F1 && numbers_present(answer, ref);
}

double sam_grade_f1(const char *a, const char *b)
{
	struct words wa, wb;
	words_init(&wa, a);
	words_init(&wb, b);
	double f = f1_words(&wa, &wb);
	words_free(&wa);
	words_free(&wb);
	return f;
}

void sam_grade_reference(const char *answer, const char *reference, struct sam_grade *g)
{
	struct words wa, wr;
	words_init(&wa, answer);
	words_init(&wr, reference);
	g->pick = 0;
	g->correct = match(&wa, &wr, &g->score);
	words_free(&wa);
	words_free(&wr);
}

void sam_grade_agreement(const char *const *samples, int k, struct sam_grade *g)
{
	*g = (struct sam_grade){ 0 };
	if (k < 1) return;
	struct words *ws = xcalloc((size_t)k, sizeof *ws);
	int *agree = xcalloc((size_t)k, sizeof *agree);
	for (int i = 0; i < k; i++) words_init(&ws[i], samples[i]);
	for (int i = 0; i < k; i++) {
		for (int j = i + 1; j < k; j++) {
			double s;
			if (match(&ws[i], &ws[j], &s) || match(&ws[j], &ws[i], &s)) agree[i]++, agree[j]++;
		}
	}
	int best = 0;
	for (int i = 1; i < k; i++)
		if (agree[i] > agree[best]) best = i;
	int support = 1 + agree[best];
	g->pick = best;
	g->score = (double)support / k;
	g->correct = ws[best].n > 0 && 2 * support > k;
	for (int i = 0; i < k; i++) words_free(&ws[i]);
	free(ws);
	free(agree);
}
