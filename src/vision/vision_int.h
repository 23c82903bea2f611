/*
 * vision_int.h - what the vision library's files share (not public).
 */
#ifndef SAM_VISION_INT_H
#define SAM_VISION_INT_H

struct Pix;

struct sam_image {
	struct Pix *pix;    /* owned */
	const char *format; /* static: "png", "jpeg", ... */
};

#include "sam/core.h"

/*
 * Load leptonica and libtesseract and silence leptonica's messages on
 * stderr, once per process: every entry point that reaches the libraries
 * calls this first (SAM_EUNSUPPORTED when they are not installed).
 */
int vision_ready(struct sam_error *err);

#endif
