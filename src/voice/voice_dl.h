/*
 * voice_dl.h - libespeak-ng, loaded when speech is first asked for (sam/dl.h):
 * the functions this engine calls, by name.
 */
#ifndef SAM_VOICE_DL_H
#define SAM_VOICE_DL_H

#include <espeak-ng/speak_lib.h>

#include "sam/core.h"

#define VOICE_DL_FUNCS(X) \
	X(espeak_Initialize) \
	X(espeak_ListVoices) \
	X(espeak_SetParameter) \
	X(espeak_SetSynthCallback) \
	X(espeak_SetVoiceByName) \
	X(espeak_Synchronize) \
	X(espeak_Synth)

#define EDL_PTR(f) extern __typeof__(&f) edl_##f;
VOICE_DL_FUNCS(EDL_PTR)
#undef EDL_PTR

/* Load the library once; SAM_EUNSUPPORTED when it is not installed. */
int voice_dl_load(struct sam_error *err);

/* Calls by the library's own names go through the resolved pointers. */
#ifndef SAM_VOICE_DL_H_IMPL
#define espeak_Initialize (*edl_espeak_Initialize)
#define espeak_ListVoices (*edl_espeak_ListVoices)
#define espeak_SetParameter (*edl_espeak_SetParameter)
#define espeak_SetSynthCallback (*edl_espeak_SetSynthCallback)
#define espeak_SetVoiceByName (*edl_espeak_SetVoiceByName)
#define espeak_Synchronize (*edl_espeak_Synchronize)
#define espeak_Synth (*edl_espeak_Synth)
#endif

#endif
