/*
 * dl.h - optional shared libraries loaded when first needed (dlopen), so
 * that the many `sam` commands that never read an image or speak do not
 * pay for libtesseract, leptonica, OpenMP or espeak-ng: their load-time
 * pages (several MiB of RSS), their threads, their start-up.
 */
#ifndef SAM_DL_H
#define SAM_DL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "sam/core.h"

/*
 * A set of functions from one or more libraries, resolved once per
 * process: libs are sonames (NULL-terminated; kept open for the life of
 * the process), names[i] is resolved into *ptrs[i] from the first library
 * that has it, hint is appended to any error (e.g. the package to
 * install). Define one statically with SAM_DL_SET and load it with
 * sam_dl_load.
 */
struct sam_dl_set {
	const char *const *libs;
	const char *const *names;
	void **const *ptrs;
	size_t n;
	const char *hint;
	/* the outcome of the one attempt */
	pthread_mutex_t mu;
	bool tried;
	int rc;
	struct sam_error err;
};
#define SAM_DL_SET(libs_, names_, ptrs_, hint_)                                                              \
	{ .libs = (libs_), .names = (names_), .ptrs = (ptrs_), .n = sizeof(names_) / sizeof(names_)[0],       \
	  .hint = (hint_), .mu = PTHREAD_MUTEX_INITIALIZER }

/*
 * Resolve the set (the first call does, later ones repeat its outcome):
 * 0, or SAM_EUNSUPPORTED naming the missing library or symbol.
 */
int sam_dl_load(struct sam_dl_set *s, struct sam_error *err);

#endif
