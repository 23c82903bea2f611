/*
 * dl.c - resolving optional libraries at run time (see dl.h).
 */
#include <dlfcn.h>
#include <stdio.h>

#include "sam/dl.h"

#define MAX_LIBS 4

int sam_dl_resolve(const char *const *libs, const char *const *names, void **const *ptrs, size_t n, const char *hint,
		   struct sam_error *err)
{
	void *h[MAX_LIBS];
	int nh = 0;
	for (; libs[nh] && nh < MAX_LIBS; nh++) {
		h[nh] = dlopen(libs[nh], RTLD_NOW | RTLD_LOCAL);
		if (!h[nh]) return sam_errorf(err, SAM_EUNSUPPORTED, "cannot load %s (%s)%s", libs[nh], dlerror(), hint);
	}
	for (size_t i = 0; i < n; i++) {
		void *p = NULL;
		for (int k = 0; k < nh && !p; k++) p = dlsym(h[k], names[i]);
		if (!p) return sam_errorf(err, SAM_EUNSUPPORTED, "%s has no %s%s", libs[0], names[i], hint);
		*ptrs[i] = p;
	}
	return 0;
}
