/*
 * voice_dl.c - loading libespeak-ng (see voice_dl.h).
 */
#define SAM_VOICE_DL_H_IMPL
#include "sam/dl.h"
#include "voice/voice_dl.h"

#define DEFINE(f) __typeof__(&f) edl_##f;
VOICE_DL_FUNCS(DEFINE)
#define NAME(f) #f,
static const char *const names[] = { VOICE_DL_FUNCS(NAME) };
#define PTR(f) (void **)&edl_##f,
static void **const ptrs[] = { VOICE_DL_FUNCS(PTR) };

static const char *const libs[] = { "libespeak-ng.so.1", NULL };
static struct sam_dl_set set = SAM_DL_SET(libs, names, ptrs, " (Debian: apt-get install libespeak-ng1 espeak-ng-data)");

int voice_dl_load(struct sam_error *err)
{
	return sam_dl_load(&set, err);
}
