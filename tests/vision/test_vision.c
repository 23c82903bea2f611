/*
 * test_vision.c - the vision library (decode limits, analysis of synthetic
 * images, OCR of text rendered by ImageMagick), `sam vision` and the api's
 * /api/vision/process with its in-process fallback, and `sam see`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <leptonica/allheaders.h>

#include "sam/fs.h"
#include "sam/vision.h"
#include "test.h"
#include "vision/vision_helpers.h"

static struct sam_vision_conf conf_default(void)
{
	struct sam_conf c = { 0 };
	struct sam_vision_conf vc;
	struct sam_error err;
	CHECK(sam_vision_conf_load(&vc, &c, &err) == 0);
	sam_conf_free(&c);
	return vc;
}

TEST(vision_ocr_reads_rendered_text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/text.png", test_tmpdir());
	vt_render_text(path);
	struct sam_vision_conf vc = conf_default();
	struct sam_error err;
	char *data;
	size_t len;
	CHECK(sam_read_file(path, vc.max_bytes, &data, &len, &err) == 0);
	struct sam_image *im;
	CHECKF(sam_image_decode(&vc, data, len, &im, &err) == 0, "%s", err.msg);
	json_t *ocr, *an = sam_image_analyze(im);
	CHECKF(sam_image_ocr(im, "eng", &ocr, &err) == 0, "%s", err.msg);
	const char *text = jstr(ocr, "text");
	double acc = vt_word_accuracy(text);
	printf("    OCR word accuracy %.1f%% (%s)\n", acc * 100, text);
	CHECKF(acc >= 0.9, "word accuracy %.2f: %s", acc, text);
	long long w = jint(an, "width"), h = jint(an, "height");
	json_t *words = json_object_get(ocr, "words"), *wd;
	size_t i;
	CHECK(json_array_size(words) >= 25);
	json_array_foreach(words, i, wd)
	{
		long long x = jint(wd, "box.x"), y = jint(wd, "box.y"), bw = jint(wd, "box.w"), bh = jint(wd, "box.h");
		CHECKF(x >= 0 && y >= 0 && bw > 0 && bh > 0 && x + bw <= w && y + bh <= h, "word %zu box outside", i);
		double c = json_number_value(json_object_get(wd, "confidence"));
		CHECKF(c >= 0 && c <= 100, "confidence %f", c);
	}
	CHECK(jint(ocr, "mean_confidence") >= 70);
	CHECK(json_is_true(json_object_get(an, "looks_like_text")));
	/* a language that is not installed is the caller's mistake */
	json_t *bad;
	CHECK(sam_image_ocr(im, "xxx", &bad, &err) == SAM_EINVAL);
	CHECK(sam_image_ocr(im, "../eng", &bad, &err) == SAM_EINVAL);
	json_decref(ocr);
	json_decref(an);
	sam_image_free(im);
	sam_vision_shutdown();
	free(data);
}

/* A w x h PNG (or fmt) whose left half is colour a and right half b (0xRRGGBB). */
static l_uint8 *make_image(int w, int h, unsigned a, unsigned b, int fmt, size_t *len)
{
	PIX *p = pixCreate(w, h, 32);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			unsigned c = x < w / 2 ? a : b;
			pixSetRGBPixel(p, x, y, (l_int32)(c >> 16), (l_int32)((c >> 8) & 255), (l_int32)(c & 255));
		}
	if (fmt == IFF_GIF) { /* GIF: 8-bit (the test images are grey) */
		PIX *cm = pixConvertRGBToLuminance(p);
		pixDestroy(&p);
		p = cm;
	}
	l_uint8 *data = NULL;
	CHECK(pixWriteMem(&data, len, p, fmt) == 0);
	pixDestroy(&p);
	return data;
}

static json_t *analyze(const void *data, size_t len)
{
	struct sam_vision_conf vc = conf_default();
	struct sam_image *im;
	struct sam_error err;
	CHECKF(sam_image_decode(&vc, data, len, &im, &err) == 0, "%s", err.msg);
	json_t *j = sam_image_analyze(im);
	sam_image_free(im);
	return j;
}

TEST(vision_analysis_of_synthetic_images)
{
	size_t len;
	l_uint8 *d = make_image(64, 48, 0xc81e3c, 0xc81e3c, IFF_PNG, &len);
	json_t *j = analyze(d, len);
	CHECK_INT(jint(j, "width"), 64);
	CHECK_INT(jint(j, "height"), 48);
	CHECK_STR(jstr(j, "format"), "png");
	CHECK_INT(jint(j, "channels"), 3);
	double want = 0.299 * 200 + 0.587 * 30 + 0.114 * 60;
	CHECKF(fabs(json_number_value(json_object_get(j, "mean_brightness")) - want) < 0.02, "brightness");
	json_t *cols = json_object_get(j, "dominant_colours");
	CHECK_INT(json_array_size(cols), 1);
	CHECK_STR(jstr(json_array_get(cols, 0), "hex"), "#c81e3c");
	CHECK(json_number_value(json_object_get(json_array_get(cols, 0), "share")) == 1.0);
	CHECK(!json_is_true(json_object_get(j, "looks_like_text")));
	json_decref(j);
	lept_free(d);

	/* halves: white and blue */
	d = make_image(100, 40, 0xffffff, 0x0000ff, IFF_PNG, &len);
	j = analyze(d, len);
	want = (255.0 + 0.114 * 255) / 2;
	CHECKF(fabs(json_number_value(json_object_get(j, "mean_brightness")) - want) < 0.02, "brightness %f",
	       json_number_value(json_object_get(j, "mean_brightness")));
	cols = json_object_get(j, "dominant_colours");
	CHECK_INT(json_array_size(cols), 2);
	const char *h0 = jstr(json_array_get(cols, 0), "hex"), *h1 = jstr(json_array_get(cols, 1), "hex");
	CHECK((!strcmp(h0, "#ffffff") && !strcmp(h1, "#0000ff")) || (!strcmp(h0, "#0000ff") && !strcmp(h1, "#ffffff")));
	CHECK(json_number_value(json_object_get(json_array_get(cols, 1), "share")) == 0.5);
	json_decref(j);
	lept_free(d);

	/* other formats: BMP, GIF, JPEG, WebP; a grey image has one channel */
	static const struct {
		int fmt;
		const char *name;
	} f[] = { { IFF_BMP, "bmp" }, { IFF_GIF, "gif" }, { IFF_JFIF_JPEG, "jpeg" }, { IFF_WEBP, "webp" } };
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		d = make_image(32, 16, 0x808080, 0x808080, f[i].fmt, &len);
		j = analyze(d, len);
		CHECK_STR(jstr(j, "format"), f[i].name);
		CHECK_INT(jint(j, "width"), 32);
		CHECKF(fabs(json_number_value(json_object_get(j, "mean_brightness")) - 128) < 3, "%s brightness", f[i].name);
		json_decref(j);
		lept_free(d);
	}
	PIX *g = pixCreate(10, 10, 8);
	pixSetAllArbitrary(g, 77);
	l_uint8 *gd;
	CHECK(pixWriteMem(&gd, &len, g, IFF_PNG) == 0);
	pixDestroy(&g);
	j = analyze(gd, len);
	CHECK_INT(jint(j, "channels"), 1);
	CHECKF(fabs(json_number_value(json_object_get(j, "mean_brightness")) - 77) < 0.01, "grey");
	json_decref(j);
	lept_free(gd);
}

/* A PNG signature and IHDR claiming w x h, nothing else. */
static size_t png_header(unsigned char *b, unsigned w, unsigned h)
{
	static const unsigned char sig[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R' };
	memcpy(b, sig, sizeof sig);
	unsigned char *p = b + sizeof sig;
	p[0] = (unsigned char)(w >> 24), p[1] = (unsigned char)(w >> 16), p[2] = (unsigned char)(w >> 8), p[3] = (unsigned char)w;
	p[4] = (unsigned char)(h >> 24), p[5] = (unsigned char)(h >> 16), p[6] = (unsigned char)(h >> 8), p[7] = (unsigned char)h;
	p[8] = 8, p[9] = 2, p[10] = 0, p[11] = 0, p[12] = 0;
	memset(p + 13, 0, 4 + 16);
	return sizeof sig + 13 + 4 + 16;
}

static int process(const struct sam_vision_conf *vc, const char *body, struct sam_error *err)
{
	json_t *out = NULL;
	int rc = sam_vision_process(vc, body, strlen(body), false, NULL, NULL, &out, err);
	json_decref(out);
	return rc;
}

TEST(vision_rejects_bad_input_with_documented_errors)
{
	struct sam_vision_conf vc = conf_default();
	struct sam_error err;
	struct sam_image *im;
	size_t len;
	/* corrupt bytes */
	CHECK(sam_image_decode(&vc, "this is not an image at all", 27, &im, &err) == SAM_EFORMAT);
	CHECK_INT(sam_vision_status(SAM_EFORMAT), 400);
	/* truncated PNG */
	l_uint8 *d = make_image(200, 200, 0x123456, 0xabcdef, IFF_PNG, &len);
	CHECK(sam_image_decode(&vc, d, len / 2, &im, &err) == SAM_EFORMAT);
	CHECKF(strstr(err.msg, "png"), "%s", err.msg);
	/* too many bytes */
	struct sam_vision_conf small = vc;
	small.max_bytes = 100;
	CHECK(sam_image_decode(&small, d, len, &im, &err) == SAM_ERANGE);
	CHECK_INT(sam_vision_status(SAM_ERANGE), 413);
	lept_free(d);
	/* too many pixels: a header claiming 100000 x 100000, refused before decoding */
	unsigned char hdr[64];
	size_t n = png_header(hdr, 100000, 100000);
	CHECK(sam_image_decode(&vc, hdr, n, &im, &err) == SAM_ERANGE);
	CHECKF(strstr(err.msg, "100000x100000"), "%s", err.msg);
	/* bad base64, unknown task, both or neither of image and path */
	CHECK(process(&vc, "{\"image\": \"!!!notbase64\"}", &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "base64"), "%s", err.msg);
	CHECK(process(&vc, "{\"image\": \"QUJD=A\"}", &err) == SAM_EINVAL);
	CHECK(process(&vc, "{\"image\": \"QUJD\", \"task\": \"paint\"}", &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "unknown task"), "%s", err.msg);
	CHECK(process(&vc, "{}", &err) == SAM_EINVAL);
	CHECK(process(&vc, "[1]", &err) == SAM_EINVAL);
	/* base64 round trip */
	unsigned char *o;
	size_t ol;
	for (size_t k = 0; k < 7; k++) {
		char *e = sam_base64_encode("abcdefg", k);
		CHECK(sam_base64_decode(e, strlen(e), 100, &o, &ol, &err) == 0);
		CHECK(ol == k && !memcmp(o, "abcdefg", k));
		free(o);
		free(e);
	}
	/* paths: none allowed by default; then only inside the allowed directory */
	char dir[512], inside[600], body[1400];
	snprintf(dir, sizeof dir, "%s/images", test_tmpdir());
	mkdir(dir, 0700);
	snprintf(inside, sizeof inside, "%s/a.png", dir);
	d = make_image(8, 8, 0, 0, IFF_PNG, &len);
	FILE *f = fopen(inside, "wb");
	fwrite(d, 1, len, f);
	fclose(f);
	lept_free(d);
	snprintf(body, sizeof body, "{\"path\": \"%s\", \"task\": \"analyze\"}", inside);
	CHECK(process(&vc, body, &err) == SAM_EBUSY);
	CHECK_INT(sam_vision_status(SAM_EBUSY), 403);
	snprintf(vc.dirs[0], sizeof vc.dirs[0], "%s", dir);
	vc.n_dirs = 1;
	CHECKF(process(&vc, body, &err) == 0, "%s", err.msg);
	CHECK(process(&vc, "{\"path\": \"/etc/passwd\"}", &err) == SAM_EBUSY);
	snprintf(body, sizeof body, "{\"path\": \"%s/../../../etc/passwd\"}", dir);
	CHECK(process(&vc, body, &err) == SAM_EBUSY);
	CHECKF(strstr(err.msg, ".."), "%s", err.msg);
	snprintf(body, sizeof body, "{\"path\": \"%s/missing.png\"}", dir);
	CHECK(process(&vc, body, &err) == SAM_ENOTFOUND);
	/* a symlink inside that points outside */
	char link[600];
	snprintf(link, sizeof link, "%s/escape", dir);
	CHECK(symlink("/etc/passwd", link) == 0);
	snprintf(body, sizeof body, "{\"path\": \"%s\"}", link);
	CHECK(process(&vc, body, &err) == SAM_EBUSY);
	CHECK(process(&vc, "{\"path\": \"relative.png\"}", &err) == SAM_EBUSY);
}

TEST(vision_api_uses_service_then_falls_back_in_process)
{
	char png[512];
	snprintf(png, sizeof png, "%s/text.png", test_tmpdir());
	vt_render_text(png);
	struct api_server vis, api;
	svc_start(&vis, (const char *[]){ "vision", NULL }, NULL, NULL);
	/* the service's own errors */
	json_decref(vt_post(&vis, "/process", "{\"image\": \"@@@\"}", 400));
	json_decref(vt_post(&vis, "/process", "{\"image\": \"QUJD\", \"task\": \"paint\"}", 400));
	json_decref(vt_post(&vis, "/process", "{\"path\": \"/etc/passwd\"}", 403));
	json_decref(vt_post(&vis, "/process", "{\"image\": \"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=\"}", 400));
	struct api_resp rr;
	char env[128];
	snprintf(env, sizeof env, "SAM_VISION_URL=%s", vis.url);
	api_start(&api, NULL, NULL, (const char *[]){ env, NULL });
	char *body = vt_image_body(png, "ocr");
	json_t *a = vt_post(&api, "/api/vision/process", body, 200);
	CHECK_STR(jstr(a, "served_by"), "service");
	CHECKF(vt_word_accuracy(jstr(a, "ocr.text")) >= 0.9, "%s", jstr(a, "ocr.text"));
	json_decref(vt_post(&api, "/api/vision/process", "{\"image\": \"@@@\"}", 400));
	/* `sam see` through the api prints the text */
	char api_env[128];
	snprintf(api_env, sizeof api_env, "%s", api.url);
	setenv("SAM_API_URL", api_env, 1);
	struct test_proc p;
	test_run_sam(&p, 120, "see", png, NULL);
	CHECKF(p.status == 0 && vt_word_accuracy(p.out) >= 0.9, "sam see: %d %s %s", p.status, p.out, p.err);
	test_proc_free(&p);

	api_kill(&vis); /* the service dies: the api serves the same request itself */
	json_t *b = vt_post(&api, "/api/vision/process", body, 200);
	CHECK_STR(jstr(b, "served_by"), "in-process");
	CHECK_STR(jstr(b, "ocr.text"), jstr(a, "ocr.text"));
	CHECK(json_equal(json_object_get(a, "image"), json_object_get(b, "image")));
	CHECK(json_equal(json_object_get(json_object_get(a, "ocr"), "words"),
			 json_object_get(json_object_get(b, "ocr"), "words")));
	json_decref(vt_post(&api, "/api/vision/process", "{\"image\": \"@@@\"}", 400));
	json_decref(vt_post(&api, "/api/vision/process", "{\"image\": \"QUJD\", \"task\": \"paint\"}", 400));
	json_decref(vt_post(&api, "/api/vision/process", "{\"path\": \"/etc/../etc/passwd\"}", 403));
	/* describe: analysis and OCR become a prompt; the (tiny) model answers */
	free(body);
	body = vt_image_body(png, "ask");
	json_t *c = vt_post(&api, "/api/vision/process", body, 200);
	CHECK(jstr(c, "answer") != NULL);
	CHECK(jstr(c, "ocr.text") && jint(c, "image.width") > 0);
	json_decref(c);
	/* and as a stream: tokens, then "done" with the vision result */
	api_request(&api, "POST", "/api/vision/stream", body, (const char *const[]){ "Content-Type: application/json", NULL },
		    120, &rr);
	CHECK_INT(rr.status, 200);
	struct sse_event *ev;
	int n = sse_parse(rr.body, rr.len, &ev);
	CHECK(n >= 1 && !strcmp(ev[n - 1].event, "done"));
	json_t *done = json_loads(ev[n - 1].data, 0, NULL);
	CHECK(done && jstr(done, "vision.served_by") && jstr(done, "response"));
	json_decref(done);
	sse_free(ev, n);
	api_resp_free(&rr);
	free(body);
	json_decref(a);
	json_decref(b);
	api_stop(&api);
}
