/*
 * vision_dl.c - loading leptonica and libtesseract (see vision_dl.h).
 */
#define SAM_VISION_DL_H_IMPL
#include "sam/dl.h"
#include "vision/vision_dl.h"

#define DEFINE(f) __typeof__(&f) vdl_##f;
VISION_DL_FUNCS(DEFINE)
#define NAME(f) #f,
static const char *const names[] = { VISION_DL_FUNCS(NAME) };
#define PTR(f) (void **)&vdl_##f,
static void **const ptrs[] = { VISION_DL_FUNCS(PTR) };

static const char *const libs[] = { "libtesseract.so.5", "liblept.so.5", NULL };
static struct sam_dl_set set = SAM_DL_SET(libs, names, ptrs, " (Debian: apt-get install libtesseract5 tesseract-ocr-eng)");

int vision_dl_load(struct sam_error *err)
{
	return sam_dl_load(&set, err);
}
