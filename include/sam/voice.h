/*
 * voice.h - text to speech with libespeak-ng: text -> 16-bit PCM mono WAV,
 * with a voice (language), speed and pitch; and a size-bounded disk cache
 * of the results keyed by a hash of (text, voice, speed, pitch).
 *
 * espeak-ng is not thread-safe: this library initialises it once per
 * process and serialises every synthesis behind one mutex. Synthesis is
 * deterministic per process history: the first utterance of a fresh
 * process gives the same bytes for the same input in every process, but
 * espeak-ng keeps internal state between utterances, so repeating an input
 * in one process gives different bytes (about 3% longer the second time,
 * most samples different; the same with libespeak-ng called directly, so
 * not state of ours; a re-initialisation per utterance hangs libespeak-ng
 * 1.51). The cache, keyed by the inputs, makes repeats identical.
 *
 * The cache is one file per key, $SAM_HOME/cache/voice/<sha256>.wav,
 * written atomically (temporary name + rename). A hit bumps the file's
 * mtime; after a write the oldest files (by mtime) are removed until the
 * total is within the bound. Several processes may share the directory: a
 * reader that loses a file to another's eviction simply synthesises again.
 *
 * Ownership: WAV buffers returned here are malloc'd; the caller frees them.
 */
#ifndef SAM_VOICE_H
#define SAM_VOICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sam/config.h"
#include "sam/core.h"

#define SAM_VOICE_DEFAULT_PORT 8767
#define SAM_VOICE_SPEED_MIN 80   /* words per minute */
#define SAM_VOICE_SPEED_MAX 450
#define SAM_VOICE_PITCH_MIN 0
#define SAM_VOICE_PITCH_MAX 99
#define SAM_VOICE_NAME_MAX 64
#define SAM_VOICE_WAV_HEADER 44

/* The [voice] section of sam.conf, with defaults. */
struct sam_voice_conf {
	char voice[SAM_VOICE_NAME_MAX + 1]; /* [voice] voice, default "en" */
	int speed;                          /* [voice] speed, default 175 wpm */
	int pitch;                          /* [voice] pitch, default 50 */
	int max_chars;                      /* [voice] max_chars, default 5000 (characters, not bytes) */
	int64_t cache_bytes;                /* [voice] cache_mb (a number, may be fractional), default 64; 0 = no cache */
	char cache_dir[1024];               /* $SAM_HOME/cache/voice */
};
int sam_voice_conf_load(struct sam_voice_conf *vc, const struct sam_conf *c, struct sam_error *err);

/* One request. text points into the caller's storage (e.g. a JSON body). */
struct sam_voice_req {
	const char *text;
	char voice[SAM_VOICE_NAME_MAX + 1];
	int speed, pitch;
};

/*
 * Read {"text", "voice"?, "speed"?, "pitch"?} into q, defaults from vc.
 * Strings in q point into body, which must outlive q. Errors: SAM_EINVAL
 * (missing/empty/blank text, wrong types, speed/pitch out of range, a
 * malformed voice name) or SAM_ERANGE (text longer than vc->max_chars; an
 * HTTP server answers 413), with a sentence in err.
 */
int sam_voice_req_parse(json_t *body, const struct sam_voice_conf *vc, struct sam_voice_req *q, struct sam_error *err);

/* Sample rate of the synthesiser (initialising it if needed); < 0 on failure. */
int sam_voice_sample_rate(struct sam_error *err);

/*
 * Synthesise q->text into a WAV file image (*wav malloc'd, *len bytes).
 * SAM_ENOTFOUND for an unknown voice, SAM_EIO when espeak-ng fails.
 */
int sam_voice_synth(const struct sam_voice_req *q, uint8_t **wav, size_t *len, struct sam_error *err);

/* The installed voices: [{"name", "identifier", "languages": [..]}, ...]. New reference. */
json_t *sam_voice_list(struct sam_error *err);

/* Seconds of audio in a WAV image made here (0 when it is not one). */
double sam_voice_wav_seconds(const uint8_t *wav, size_t len);

/* The cache key of q: hex sha256 of (text, voice, speed, pitch). */
void sam_voice_key(const struct sam_voice_req *q, char hex[65]);

/*
 * The cached WAV for key, or SAM_ENOTFOUND. A hit bumps the file's mtime.
 * A file that is not a valid WAV is removed and reported as a miss.
 */
int sam_voice_cache_get(const struct sam_voice_conf *vc, const char *key, uint8_t **wav, size_t *len,
			struct sam_error *err);
/* Store wav under key atomically, then evict oldest files beyond vc->cache_bytes. */
int sam_voice_cache_put(const struct sam_voice_conf *vc, const char *key, const uint8_t *wav, size_t len,
			struct sam_error *err);
/* Remove the oldest cache files until the total is at most max bytes. Sets *total (after) when not NULL. */
int sam_voice_cache_evict(const char *dir, int64_t max, int64_t *total, struct sam_error *err);

/*
 * The whole job: the cache first (when vc->cache_bytes > 0), else synthesis
 * and a store. *hit says which. Cache write failures are logged, not errors.
 */
int sam_voice_speak(const struct sam_voice_conf *vc, const struct sam_voice_req *q, uint8_t **wav, size_t *len,
		    bool *hit, struct sam_error *err);

#endif
