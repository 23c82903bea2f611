/*
 * voice_dl.c - loading libespeak-ng (see voice_dl.h).
 */
#define SAM_VOICE_DL_H_IMPL
#include <pthread.h>
#include <stdio.h>

#include "sam/dl.h"
#include "voice/voice_dl.h"

#define DEFINE(f) __typeof__(&f) edl_##f;
VOICE_DL_FUNCS(DEFINE)
#define NAME(f) #f,
static const char *const names[] = { VOICE_DL_FUNCS(NAME) };
#define PTR(f) (void **)&edl_##f,
static void **const ptrs[] = { VOICE_DL_FUNCS(PTR) };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct sam_error load_err;
static int load_rc;

static void load(void)
{
	static const char *const libs[] = { "libespeak-ng.so.1", NULL };
	load_rc = sam_dl_resolve(libs, names, ptrs, sizeof names / sizeof names[0], " (Debian: apt-get install libespeak-ng1 espeak-ng-data)", &load_err);
}

int voice_dl_load(struct sam_error *err)
{
	pthread_once(&once, load);
	return load_rc ? sam_errorf(err, load_rc, "%s", load_err.msg) : 0;
}
