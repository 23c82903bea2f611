/*
 * image.c - decoding with limits (leptonica) and image analysis: size,
 * format, channels, mean brightness, dominant colours, and the
 * screenshot/text heuristics.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "sam/vision.h"
#include "vision/vision_dl.h"
#include "vision/vision_int.h"

/* Pixels the analysis looks at, at most: bigger images are sampled on a grid. */
#define SAMPLE_MAX (4u << 20)
#define MAX_COLOURS 5

static pthread_once_t ready_once = PTHREAD_ONCE_INIT;
static int ready_rc;
static struct sam_error ready_err;

/*
 * Debian's libtesseract parallelises with OpenMP, whose worker threads on a
 * small machine spin against each other and against the engine's (OCR is
 * 8-11x slower on 2 cores). libgomp reads OMP_THREAD_LIMIT when it loads,
 * which is now: one thread per recognition, unless the user chose a limit.
 */
static void ready_init(void)
{
	setenv("OMP_THREAD_LIMIT", "1", 0);
	ready_rc = vision_dl_load(&ready_err);
	if (!ready_rc) setMsgSeverity(L_SEVERITY_NONE); /* errors are ours to report, not leptonica's stderr */
}

int vision_ready(struct sam_error *err)
{
	pthread_once(&ready_once, ready_init);
	return ready_rc ? sam_errorf(err, ready_rc, "%s", ready_err.msg) : 0;
}

static const char *format_name(int f)
{
	switch (f) {
	case IFF_BMP: return "bmp";
	case IFF_JFIF_JPEG: return "jpeg";
	case IFF_PNG: return "png";
	case IFF_TIFF: case IFF_TIFF_PACKBITS: case IFF_TIFF_RLE: case IFF_TIFF_G3:
	case IFF_TIFF_G4: case IFF_TIFF_LZW: case IFF_TIFF_ZIP: case IFF_TIFF_JPEG: return "tiff";
	case IFF_PNM: return "pnm";
	case IFF_GIF: return "gif";
	case IFF_WEBP: return "webp";
	default: return NULL;
	}
}

/* The checks of sam_image_check; on 0, the header's size and the format's name. */
static int check(const struct sam_vision_conf *vc, const void *data, size_t len, l_int32 *w, l_int32 *h,
		 const char **name, struct sam_error *err)
{
	int rc = vision_ready(err);
	if (rc) return rc;
	if (len > vc->max_bytes)
		return sam_errorf(err, SAM_ERANGE, "the image is %zu bytes; the limit is %zu ([vision] max_bytes)", len,
				  vc->max_bytes);
	if (len < 12) return sam_errorf(err, SAM_EFORMAT, "not an image: only %zu bytes", len);
	l_int32 fmt = IFF_UNKNOWN, bps = 0, spp = 0, cmap = 0;
	findFileFormatBuffer(data, &fmt);
	if (!(*name = format_name(fmt)))
		return sam_errorf(err, SAM_EFORMAT,
				  "not an image format SAM can decode (PNG, JPEG, GIF, BMP, WebP, TIFF, PNM)");
	if (pixReadHeaderMem(data, len, &fmt, w, h, &bps, &spp, &cmap) || *w <= 0 || *h <= 0)
		return sam_errorf(err, SAM_EFORMAT, "corrupt %s image: its header cannot be read", *name);
	if ((int64_t)*w * *h > vc->max_pixels)
		return sam_errorf(err, SAM_ERANGE, "the image is %dx%d (%lld pixels); the limit is %lld ([vision] max_pixels)",
				  *w, *h, (long long)*w * *h, (long long)vc->max_pixels);
	return 0;
}

int sam_image_check(const struct sam_vision_conf *vc, const void *data, size_t len, struct sam_error *err)
{
	l_int32 w, h;
	const char *name;
	return check(vc, data, len, &w, &h, &name, err);
}

int sam_image_decode(const struct sam_vision_conf *vc, const void *data, size_t len, struct sam_image **out,
		     struct sam_error *err)
{
	*out = NULL;
	l_int32 w = 0, h = 0;
	const char *name;
	int rc = check(vc, data, len, &w, &h, &name, err);
	if (rc) return rc;
	PIX *pix = pixReadMem(data, len);
	if (!pix) return sam_errorf(err, SAM_EFORMAT, "corrupt or truncated %s image: it cannot be decoded", name);
	if (pixGetWidth(pix) != w || pixGetHeight(pix) != h) { /* the header lied about the size */
		pixDestroy(&pix);
		return sam_errorf(err, SAM_EFORMAT, "corrupt %s image: its size differs from its header", name);
	}
	struct sam_image *im = xcalloc(1, sizeof *im);
	im->pix = pix;
	im->format = name;
	*out = im;
	return 0;
}

void sam_image_free(struct sam_image *im)
{
	if (!im) return;
	pixDestroy(&im->pix);
	free(im);
}

static int channels(PIX *pix)
{
	PIXCMAP *cm = pixGetColormap(pix);
	if (cm) {
		l_int32 opaque = 1;
		pixcmapIsOpaque(cm, &opaque);
		return opaque ? 3 : 4;
	}
	if (pixGetDepth(pix) == 32) return pixGetSpp(pix) == 4 ? 4 : 3;
	return 1;
}

struct bin {
	uint32_t count;
	uint64_t r, g, b;
};

static int cmp_bin(const void *a, const void *b)
{
	const struct bin *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static double luma(double r, double g, double b) { return 0.299 * r + 0.587 * g + 0.114 * b; }

json_t *sam_image_analyze(const struct sam_image *im)
{
	PIX *pix = im->pix;
	int w = pixGetWidth(pix), h = pixGetHeight(pix);
	PIX *rgb = pixConvertTo32(pix);
	json_t *j = json_pack("{s:i, s:i, s:s, s:i}", "width", w, "height", h, "format", im->format, "channels",
			      channels(pix));
	if (!rgb) return j;
	/* sample on a grid of step x step */
	double n_all = (double)w * h;
	int step = n_all > SAMPLE_MAX ? (int)ceil(sqrt(n_all / SAMPLE_MAX)) : 1;
	struct bin *bins = xcalloc(4096, sizeof *bins);
	l_uint32 *data = pixGetData(rgb);
	int wpl = pixGetWpl(rgb);
	double sum_luma = 0;
	uint64_t n = 0, edges = 0, pairs = 0;
	for (int y = 0; y < h; y += step) {
		const l_uint32 *row = data + (size_t)y * wpl;
		for (int x = 0; x < w; x += step) {
			l_uint32 p = row[x];
			unsigned r = p >> 24, g = (p >> 16) & 0xff, b = (p >> 8) & 0xff;
			double l = luma(r, g, b);
			sum_luma += l;
			n++;
			struct bin *bn = &bins[(r >> 4) << 8 | (g >> 4) << 4 | b >> 4];
			bn->count++;
			bn->r += r, bn->g += g, bn->b += b;
			if (x + 1 < w) {
				l_uint32 q = row[x + 1];
				double l2 = luma(q >> 24, (q >> 16) & 0xff, (q >> 8) & 0xff);
				pairs++;
				if (fabs(l - l2) > 48) edges++;
			}
		}
	}
	pixDestroy(&rgb);
	qsort(bins, 4096, sizeof *bins, cmp_bin);
	json_t *cols = json_array();
	for (int i = 0; i < MAX_COLOURS && bins[i].count; i++) {
		double share = (double)bins[i].count / (double)n;
		if (share < 0.01) break;
		int r = (int)lround((double)bins[i].r / bins[i].count), g = (int)lround((double)bins[i].g / bins[i].count),
		    b = (int)lround((double)bins[i].b / bins[i].count);
		char hex[8];
		snprintf(hex, sizeof hex, "#%02x%02x%02x", r, g, b);
		json_array_append_new(cols, json_pack("{s:s, s:[i,i,i], s:f}", "hex", hex, "rgb", r, g, b, "share",
						      round(share * 10000) / 10000));
	}
	/* bins that hold 95% of the pixels: few for drawn interfaces and text, many for photographs */
	uint64_t acc = 0;
	int bins95 = 0;
	while (bins95 < 4096 && acc < n * 95 / 100) acc += bins[bins95++].count;
	double top2 = (double)(bins[0].count + bins[1].count) / (double)n;
	double contrast = 0;
	if (bins[1].count)
		contrast = fabs(luma((double)bins[0].r / bins[0].count, (double)bins[0].g / bins[0].count,
				     (double)bins[0].b / bins[0].count) -
				luma((double)bins[1].r / bins[1].count, (double)bins[1].g / bins[1].count,
				     (double)bins[1].b / bins[1].count));
	double ed = pairs ? (double)edges / (double)pairs : 0;
	bool text = ed >= 0.005 && ed <= 0.3 && top2 >= 0.75 && contrast >= 96;
	bool shot = w >= 300 && h >= 200 && bins95 <= 64 && ed >= 0.002;
	json_object_set_new(j, "mean_brightness", json_real(round(sum_luma / (double)n * 100) / 100));
	json_object_set_new(j, "dominant_colours", cols);
	json_object_set_new(j, "edge_density", json_real(round(ed * 10000) / 10000));
	json_object_set_new(j, "looks_like_screenshot", json_boolean(shot));
	json_object_set_new(j, "looks_like_text", json_boolean(text));
	if (step > 1) json_object_set_new(j, "sample_step", json_integer(step));
	free(bins);
	return j;
}
