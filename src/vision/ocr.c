/*
 * ocr.c - OCR through libtesseract's C API. A tesseract handle is not
 * thread-safe and costs ~100 ms to initialise, so handles are pooled: a
 * call borrows an idle handle for its language (or creates one) and gives
 * it back; at most POOL_MAX idle handles are kept.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "sam/vision.h"
#include "vision/vision_dl.h"
#include "vision/vision_int.h"

#define POOL_MAX 8

static struct {
	char lang[32];
	TessBaseAPI *api;
} pool[POOL_MAX];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;

static bool lang_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= sizeof pool[0].lang) return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '+'))
			return false;
	return s[0] != '+' && s[n - 1] != '+';
}

static TessBaseAPI *borrow(const char *lang)
{
	pthread_mutex_lock(&pool_mu);
	for (int i = 0; i < POOL_MAX; i++) {
		if (pool[i].api && !strcmp(pool[i].lang, lang)) {
			TessBaseAPI *api = pool[i].api;
			pool[i].api = NULL;
			pthread_mutex_unlock(&pool_mu);
			return api;
		}
	}
	pthread_mutex_unlock(&pool_mu);
	TessBaseAPI *api = TessBaseAPICreate();
	if (!api) return NULL;
	/* datapath NULL: $TESSDATA_PREFIX, else the distribution's tessdata */
	if (TessBaseAPIInit3(api, NULL, lang) != 0) {
		TessBaseAPIDelete(api);
		return NULL;
	}
	TessBaseAPISetVariable(api, "debug_file", "/dev/null"); /* no chatter on the service's stderr */
	return api;
}

static void give_back(TessBaseAPI *api, const char *lang)
{
	TessBaseAPIClear(api);
	pthread_mutex_lock(&pool_mu);
	for (int i = 0; i < POOL_MAX; i++) {
		if (!pool[i].api) {
			snprintf(pool[i].lang, sizeof pool[i].lang, "%s", lang);
			pool[i].api = api;
			api = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&pool_mu);
	if (api) {
		TessBaseAPIEnd(api);
		TessBaseAPIDelete(api);
	}
}

void sam_vision_shutdown(void)
{
	pthread_mutex_lock(&pool_mu);
	for (int i = 0; i < POOL_MAX; i++) {
		if (!pool[i].api) continue;
		TessBaseAPIEnd(pool[i].api);
		TessBaseAPIDelete(pool[i].api);
		pool[i].api = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
}

int sam_image_ocr(const struct sam_image *im, const char *lang, json_t **out, struct sam_error *err)
{
	*out = NULL;
	if (!lang) lang = "eng";
	if (!lang_valid(lang))
		return sam_errorf(err, SAM_EINVAL, "language '%.40s' is not a tesseract language name (e.g. eng, deu+eng)",
				  lang);
	int rc = vision_ready(err);
	if (rc) return rc;
	TessBaseAPI *api = borrow(lang);
	if (!api)
		return sam_errorf(err, SAM_EINVAL,
				  "OCR language '%s' is not installed (Debian: apt-get install tesseract-ocr-%s)", lang,
				  lang);
	TessBaseAPISetImage2(api, im->pix);
	/* screen and rendered text has no resolution; 0 would make tesseract guess and warn */
	l_int32 xres = pixGetXRes(im->pix);
	TessBaseAPISetSourceResolution(api, xres >= 70 && xres <= 2400 ? xres : 300);
	if (TessBaseAPIRecognize(api, NULL) != 0) {
		give_back(api, lang);
		return sam_errorf(err, SAM_EIO, "tesseract could not recognise the image");
	}
	json_t *words = json_array();
	TessResultIterator *ri = TessBaseAPIGetIterator(api);
	if (ri) {
		const TessPageIterator *pi = TessResultIteratorGetPageIterator(ri);
		do {
			char *t = TessResultIteratorGetUTF8Text(ri, RIL_WORD);
			int l, tp, r, b;
			if (t && *t && TessPageIteratorBoundingBox(pi, RIL_WORD, &l, &tp, &r, &b)) {
				float c = TessResultIteratorConfidence(ri, RIL_WORD);
				json_array_append_new(words,
						      json_pack("{s:s?, s:f, s:{s:i, s:i, s:i, s:i}}", "text", t,
								"confidence", (double)((int)(c * 10)) / 10, "box", "x", l,
								"y", tp, "w", r - l, "h", b - tp));
			}
			TessDeleteText(t);
		} while (TessResultIteratorNext(ri, RIL_WORD));
		TessResultIteratorDelete(ri);
	}
	char *text = TessBaseAPIGetUTF8Text(api);
	int mean = TessBaseAPIMeanTextConf(api);
	*out = json_pack("{s:s, s:s, s:i, s:o}", "lang", lang, "text", text ? text : "", "mean_confidence", mean,
			 "words", words);
	TessDeleteText(text);
	give_back(api, lang);
	if (!*out) return sam_errorf(err, SAM_EFORMAT, "tesseract returned text that is not UTF-8");
	return 0;
}
