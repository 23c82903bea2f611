/*
 * synth.c - espeak-ng behind one mutex: initialised once per process,
 * synthesis collected through the synth callback into a growable buffer
 * (capped) and wrapped in a RIFF/WAVE header (PCM 16-bit mono).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sam/voice.h"
#include "voice/voice_dl.h"

/* 10 minutes of audio at 22050 Hz: far beyond max_chars of text at the slowest speed. */
#define PCM_MAX_BYTES ((size_t)22050 * 2 * 600)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int rate; /* 0 until initialised; guarded by mu */

struct pcm {
	uint8_t *buf;
	size_t len, cap;
	bool overflow;
};

static int on_samples(short *wav, int n, espeak_EVENT *ev)
{
	struct pcm *p = ev ? ev->user_data : NULL;
	if (!p || !wav || n <= 0) return 0;
	size_t add = (size_t)n * 2;
	if (p->len + add > PCM_MAX_BYTES) {
		p->overflow = true;
		return 1; /* abort synthesis */
	}
	uint8_t *b = sam_grow(p->buf, &p->cap, p->len + add, 1);
	if (!b) {
		p->overflow = true;
		return 1;
	}
	p->buf = b;
	memcpy(p->buf + p->len, wav, add); /* little-endian hosts only (x86-64, arm64) */
	p->len += add;
	return 0;
}

/* With mu held. */
static int init_locked(struct sam_error *err)
{
	if (rate > 0) return 0;
	int rc = voice_dl_load(err);
	if (rc) return rc;
	int r = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, NULL, espeakINITIALIZE_DONT_EXIT);
	if (r <= 0) return sam_errorf(err, SAM_EIO, "espeak-ng: cannot initialise (is espeak-ng-data installed?)");
	espeak_SetSynthCallback(on_samples);
	rate = r;
	return 0;
}

int sam_voice_sample_rate(struct sam_error *err)
{
	pthread_mutex_lock(&mu);
	int rc = init_locked(err);
	int r = rc ? rc : rate;
	pthread_mutex_unlock(&mu);
	return r;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A 44-byte canonical header for data_len bytes of PCM 16-bit mono at sr Hz. */
static void wav_header(uint8_t *h, uint32_t sr, uint32_t data_len)
{
	memcpy(h, "RIFF", 4);
	put32(h + 4, 36 + data_len);
	memcpy(h + 8, "WAVEfmt ", 8);
	put32(h + 16, 16);     /* fmt chunk size */
	put16(h + 20, 1);      /* PCM */
	put16(h + 22, 1);      /* mono */
	put32(h + 24, sr);
	put32(h + 28, sr * 2); /* byte rate */
	put16(h + 32, 2);      /* block align */
	put16(h + 34, 16);     /* bits per sample */
	memcpy(h + 36, "data", 4);
	put32(h + 40, data_len);
}

double sam_voice_wav_seconds(const uint8_t *wav, size_t len)
{
	if (len < SAM_VOICE_WAV_HEADER || memcmp(wav, "RIFF", 4) || memcmp(wav + 8, "WAVEfmt ", 8) ||
	    memcmp(wav + 36, "data", 4))
		return 0;
	uint32_t sr = get32(wav + 24), data = get32(wav + 40);
	if (!sr || data > len - SAM_VOICE_WAV_HEADER || get32(wav + 4) != 36 + data) return 0;
	return (double)data / 2 / sr;
}

int sam_voice_synth(const struct sam_voice_req *q, uint8_t **wav, size_t *len, struct sam_error *err)
{
	*wav = NULL;
	*len = 0;
	struct pcm p = { 0 };
	int rc = 0;
	pthread_mutex_lock(&mu);
	if ((rc = init_locked(err))) goto out;
	if (espeak_SetVoiceByName(q->voice) != EE_OK) {
		rc = sam_errorf(err, SAM_ENOTFOUND,
				"unknown voice '%s' (the voice service's GET /voices, or `sam speak --voices`, lists the "
				"installed ones)",
				q->voice);
		goto out;
	}
	espeak_SetParameter(espeakRATE, q->speed, 0);
	espeak_SetParameter(espeakPITCH, q->pitch, 0);
	espeak_SetParameter(espeakRANGE, 50, 0);
	espeak_SetParameter(espeakVOLUME, 100, 0);
	espeak_SetParameter(espeakPUNCTUATION, espeakPUNCT_NONE, 0);
	espeak_SetParameter(espeakCAPITALS, 0, 0);
	espeak_SetParameter(espeakWORDGAP, 0, 0);
	espeak_ERROR e = espeak_Synth(q->text, strlen(q->text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, &p);
	if (e == EE_OK) e = espeak_Synchronize();
	if (p.overflow) {
		rc = sam_errorf(err, SAM_ERANGE, "the speech would be longer than %zu seconds", PCM_MAX_BYTES / 2 / 22050);
		goto out;
	}
	if (e != EE_OK) {
		rc = sam_errorf(err, SAM_EIO, "espeak-ng: synthesis failed (error %d)", (int)e);
		goto out;
	}
	size_t n = SAM_VOICE_WAV_HEADER + p.len;
	uint8_t *w = malloc(n);
	if (!w) {
		rc = sam_errorf(err, SAM_ENOMEM, "out of memory for %zu bytes of audio", n);
		goto out;
	}
	wav_header(w, (uint32_t)rate, (uint32_t)p.len);
	if (p.len) memcpy(w + SAM_VOICE_WAV_HEADER, p.buf, p.len);
	*wav = w;
	*len = n;
out:
	pthread_mutex_unlock(&mu);
	free(p.buf);
	return rc;
}

json_t *sam_voice_list(struct sam_error *err)
{
	pthread_mutex_lock(&mu);
	if (init_locked(err)) {
		pthread_mutex_unlock(&mu);
		return NULL;
	}
	json_t *arr = json_array();
	const espeak_VOICE **v = espeak_ListVoices(NULL);
	for (; v && *v; v++) {
		json_t *langs = json_array();
		/* languages: a priority byte, a NUL-terminated name, repeated; ends with a zero priority byte */
		for (const char *l = (*v)->languages; l && *l; l += strlen(l + 1) + 2)
			json_array_append_new(langs, json_string(l + 1));
		json_array_append_new(arr, json_pack("{s:s?, s:s?, s:o}", "name", (*v)->name, "identifier",
						     (*v)->identifier, "languages", langs));
	}
	pthread_mutex_unlock(&mu);
	return arr;
}
