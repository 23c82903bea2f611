/*
 * dl.c - resolving optional libraries at run time (see dl.h).
 */
#include <dlfcn.h>
#include <stdio.h>

#include "sam/dl.h"

#define MAX_LIBS 4

static int resolve(const struct sam_dl_set *s, struct sam_error *err)
{
	void *h[MAX_LIBS];
	int nh = 0;
	for (; s->libs[nh] && nh < MAX_LIBS; nh++) {
		h[nh] = dlopen(s->libs[nh], RTLD_NOW | RTLD_LOCAL);
		if (!h[nh])
			return sam_errorf(err, SAM_EUNSUPPORTED, "cannot load %s (%s)%s", s->libs[nh], dlerror(), s->hint);
	}
	for (size_t i = 0; i < s->n; i++) {
		void *p = NULL;
		for (int k = 0; k < nh && !p; k++) p = dlsym(h[k], s->names[i]);
		if (!p) return sam_errorf(err, SAM_EUNSUPPORTED, "%s has no %s%s", s->libs[0], s->names[i], s->hint);
		*s->ptrs[i] = p;
	}
	return 0;
}

int sam_dl_load(struct sam_dl_set *s, struct sam_error *err)
{
	pthread_mutex_lock(&s->mu);
	if (!s->tried) {
		s->rc = resolve(s, &s->err);
		s->tried = true;
	}
	int rc = s->rc;
	pthread_mutex_unlock(&s->mu);
	return rc ? sam_errorf(err, rc, "%s", s->err.msg) : 0;
}
