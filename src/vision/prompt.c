/*
 * prompt.c - the prompt "describe" and "ask" give the LLM: what the
 * analysis found, the OCR text, the question. A page of text can be far
 * longer than a small model's context, so the text is cut after a whole
 * word to what the caller's token count allows, and the cut is marked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/vision.h"

#define DEFAULT_QUESTION "Describe this image."

static bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Where the text's first keep words end (all of them: the text less trailing space); *n counts all words. */
static size_t words_end(const char *s, size_t keep, size_t *n)
{
	size_t end = 0, i = 0;
	*n = 0;
	while (s[i]) {
		while (s[i] && space(s[i])) i++;
		if (!s[i]) break;
		while (s[i] && !space(s[i])) i++;
		if (++*n <= keep) end = i;
	}
	return end;
}

static const char *ocr_text(json_t *res)
{
	return json_string_value(json_object_get(json_object_get(res, "ocr"), "text"));
}

size_t sam_vision_ocr_words(json_t *res)
{
	const char *t = ocr_text(res);
	size_t n = 0;
	if (t) words_end(t, 0, &n);
	return n;
}

static long long jint_of(json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

static const char *jstr_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "unknown";
}

char *sam_vision_prompt(json_t *res, const char *question, size_t keep_words)
{
	json_t *im = json_object_get(res, "image");
	char cols[256] = "";
	size_t off = 0;
	json_t *c;
	size_t i;
	json_array_foreach(json_object_get(im, "dominant_colours"), i, c)
	{
		int k = snprintf(cols + off, sizeof cols - off, "%s%s (%.0f%%)", i ? ", " : "", jstr_of(c, "hex"),
				 json_number_value(json_object_get(c, "share")) * 100);
		if (k < 0 || (size_t)k >= sizeof cols - off) break;
		off += (size_t)k;
	}
	if (!question || !*question) question = DEFAULT_QUESTION;
	const char *text = ocr_text(res);
	size_t words = 0, end = text ? words_end(text, keep_words, &words) : 0;
	char *p = NULL;
	size_t cap = 0;
	FILE *f = open_memstream(&p, &cap);
	if (!f) sam_die("out of memory building the vision prompt");
	fprintf(f,
		"You are looking at an image. What is known about it:\n"
		"- %lld x %lld pixels, %s, %lld channel(s), mean brightness %.0f of 255\n"
		"- dominant colours: %s\n- it %s like a screenshot and %s like text\n",
		jint_of(im, "width"), jint_of(im, "height"), jstr_of(im, "format"), jint_of(im, "channels"),
		json_number_value(json_object_get(im, "mean_brightness")), cols[0] ? cols : "none",
		json_is_true(json_object_get(im, "looks_like_screenshot")) ? "looks" : "does not look",
		json_is_true(json_object_get(im, "looks_like_text")) ? "looks" : "does not look");
	if (words) {
		fprintf(f, "- text read from it (OCR):\n\"\"\"\n%.*s\n", (int)end, text);
		if (keep_words < words) fprintf(f, "[... %zu more words]\n", words - keep_words);
		fprintf(f, "\"\"\"\n");
	} else {
		fprintf(f, "- no text could be read from it\n");
	}
	fprintf(f, "\nQuestion: %s\nAnswer:", question);
	if (fclose(f)) sam_die("out of memory building the vision prompt");
	return p;
}

int sam_vision_prompt_fit(json_t *res, const char *question, int (*fits)(const char *prompt, void *ud), void *ud,
			  char **out, size_t *words, size_t *kept)
{
	*out = NULL;
	*words = sam_vision_ocr_words(res);
	*kept = 0;
	/* the whole text usually fits: one count */
	char *best = sam_vision_prompt(res, question, SIZE_MAX);
	int rc = fits(best, ud);
	if (rc == 1) {
		*out = best;
		*kept = *words;
		return 0;
	}
	free(best);
	if (rc < 0) return rc;
	best = sam_vision_prompt(res, question, 0);
	if ((rc = fits(best, ud)) != 1) {
		free(best);
		return rc < 0 ? rc : SAM_ERANGE;
	}
	/* the longest cut that fits: lo words fit, hi words do not */
	size_t lo = 0, hi = *words;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		char *p = sam_vision_prompt(res, question, mid);
		if ((rc = fits(p, ud)) < 0) {
			free(p);
			free(best);
			return rc;
		}
		if (rc == 1) {
			free(best);
			best = p;
			lo = mid;
		} else {
			free(p);
			hi = mid;
		}
	}
	*out = best;
	*kept = lo;
	return 0;
}
