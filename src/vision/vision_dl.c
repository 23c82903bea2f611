/*
 * vision_dl.c - loading leptonica and libtesseract (see vision_dl.h).
 */
#define SAM_VISION_DL_H_IMPL
#include <pthread.h>
#include <stdio.h>

#include "sam/dl.h"
#include "vision/vision_dl.h"

#define DEFINE(f) __typeof__(&f) vdl_##f;
VISION_DL_FUNCS(DEFINE)
#define NAME(f) #f,
static const char *const names[] = { VISION_DL_FUNCS(NAME) };
#define PTR(f) (void **)&vdl_##f,
static void **const ptrs[] = { VISION_DL_FUNCS(PTR) };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct sam_error load_err;
static int load_rc;

static void load(void)
{
	static const char *const libs[] = { "libtesseract.so.5", "liblept.so.5", NULL };
	load_rc = sam_dl_resolve(libs, names, ptrs, sizeof names / sizeof names[0], " (Debian: apt-get install libtesseract5 tesseract-ocr-eng)", &load_err);
}

int vision_dl_load(struct sam_error *err)
{
	pthread_once(&once, load);
	return load_rc ? sam_errorf(err, load_rc, "%s", load_err.msg) : 0;
}
