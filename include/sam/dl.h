/*
 * dl.h - optional shared libraries loaded when first needed (dlopen), so
 * that the many `sam` commands that never read an image or speak do not
 * pay for libtesseract, leptonica, OpenMP or espeak-ng: their load-time
 * pages (several MiB of RSS), their threads, their start-up.
 */
#ifndef SAM_DL_H
#define SAM_DL_H

#include <stddef.h>

#include "sam/core.h"

/*
 * Open each library of libs (sonames, NULL-terminated; kept open for the
 * life of the process) and resolve names[i] into *ptrs[i] from the first
 * library that has it. SAM_EUNSUPPORTED naming the missing library or
 * symbol, with hint (e.g. the package to install) appended.
 */
int sam_dl_resolve(const char *const *libs, const char *const *names, void **const *ptrs, size_t n, const char *hint,
		   struct sam_error *err);

#endif
