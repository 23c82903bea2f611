/*
 * voice.c - the [voice] settings, request checking, and the disk cache of
 * synthesised WAVs (see voice.h for the cache's rules).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/fs.h"
#include "sam/sha256.h"
#include "sam/voice.h"

/* Largest cached file read back: a bound on what a hostile file could make us allocate. */
#define CACHE_FILE_MAX ((size_t)64 << 20)

int sam_voice_conf_load(struct sam_voice_conf *vc, const struct sam_conf *c, struct sam_error *err)
{
	long long speed, pitch, max_chars;
	double mb;
	int rc;
	const char *voice = sam_conf_str(c, "voice", "voice", "en");
	if (!*voice || strlen(voice) > SAM_VOICE_NAME_MAX)
		return sam_errorf(err, SAM_EFORMAT, "config voice.voice: expected a voice name of 1-%d characters",
				  SAM_VOICE_NAME_MAX);
	if ((rc = sam_conf_int(c, "voice", "speed", 175, SAM_VOICE_SPEED_MIN, SAM_VOICE_SPEED_MAX, &speed, err)) ||
	    (rc = sam_conf_int(c, "voice", "pitch", 50, SAM_VOICE_PITCH_MIN, SAM_VOICE_PITCH_MAX, &pitch, err)) ||
	    (rc = sam_conf_int(c, "voice", "max_chars", 5000, 1, 1000000, &max_chars, err)) ||
	    (rc = sam_conf_float(c, "voice", "cache_mb", 64, &mb, err)))
		return rc;
	if (!(mb >= 0 && mb <= 1 << 20)) return sam_errorf(err, SAM_EFORMAT, "config voice.cache_mb: expected 0..1048576");
	snprintf(vc->voice, sizeof vc->voice, "%s", voice);
	vc->speed = (int)speed;
	vc->pitch = (int)pitch;
	vc->max_chars = (int)max_chars;
	vc->cache_bytes = (int64_t)(mb * 1024 * 1024);
	if (sam_home_path(vc->cache_dir, sizeof vc->cache_dir, "cache/voice"))
		return sam_errorf(err, SAM_ERANGE, "SAM_HOME is too long");
	return 0;
}

static bool blank(const char *s)
{
	while (*s && strchr(" \t\n\v\f\r", *s)) s++;
	return !*s;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static bool voice_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > SAM_VOICE_NAME_MAX) return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/.", *s)) return false;
	return true;
}

static int int_field(json_t *body, const char *name, int def, int min, int max, int *out, struct sam_error *err)
{
	json_t *j = json_object_get(body, name);
	if (!j || json_is_null(j)) {
		*out = def;
		return 0;
	}
	double v = json_number_value(j);
	if (!json_is_number(j) || v != (double)(long long)v || v < min || v > max)
		return sam_errorf(err, SAM_EINVAL, "field '%s' must be an integer in [%d, %d]", name, min, max);
	*out = (int)v;
	return 0;
}

int sam_voice_req_parse(json_t *body, const struct sam_voice_conf *vc, struct sam_voice_req *q, struct sam_error *err)
{
	memset(q, 0, sizeof *q);
	if (!json_is_object(body)) return sam_errorf(err, SAM_EINVAL, "the body must be a JSON object");
	json_t *text = json_object_get(body, "text"), *voice = json_object_get(body, "voice");
	if (!text || json_is_null(text)) return sam_errorf(err, SAM_EINVAL, "field 'text' is required");
	if (!json_is_string(text)) return sam_errorf(err, SAM_EINVAL, "field 'text' must be a string");
	/* jansson refuses invalid UTF-8; a NUL inside would cut the text short, so refuse it */
	if (strlen(json_string_value(text)) != json_string_length(text))
		return sam_errorf(err, SAM_EINVAL, "field 'text' must not contain NUL characters");
	if (blank(json_string_value(text))) return sam_errorf(err, SAM_EINVAL, "field 'text' is empty");
	size_t chars = utf8_chars(json_string_value(text));
	if (chars > (size_t)vc->max_chars)
		return sam_errorf(err, SAM_ERANGE, "field 'text' has %zu characters; the limit is %d", chars,
				  vc->max_chars);
	q->text = json_string_value(text);
	if (voice && !json_is_null(voice)) {
		if (!json_is_string(voice) || !voice_name_ok(json_string_value(voice)))
			return sam_errorf(err, SAM_EINVAL,
					  "field 'voice' must be a voice name (1-%d characters of A-Z a-z 0-9 - _ + / .)",
					  SAM_VOICE_NAME_MAX);
		snprintf(q->voice, sizeof q->voice, "%s", json_string_value(voice));
	} else {
		snprintf(q->voice, sizeof q->voice, "%s", vc->voice);
	}
	int rc;
	if ((rc = int_field(body, "speed", vc->speed, SAM_VOICE_SPEED_MIN, SAM_VOICE_SPEED_MAX, &q->speed, err)) ||
	    (rc = int_field(body, "pitch", vc->pitch, SAM_VOICE_PITCH_MIN, SAM_VOICE_PITCH_MAX, &q->pitch, err)))
		return rc;
	return 0;
}

void sam_voice_key(const struct sam_voice_req *q, char hex[65])
{
	struct sam_sha256 h;
	char num[64];
	sam_sha256_init(&h);
	sam_sha256_update(&h, "sam-voice-1", 12); /* format version, NUL included */
	sam_sha256_update(&h, q->text, strlen(q->text) + 1);
	sam_sha256_update(&h, q->voice, strlen(q->voice) + 1);
	int n = snprintf(num, sizeof num, "%d,%d", q->speed, q->pitch);
	sam_sha256_update(&h, num, (size_t)n + 1);
	sam_sha256_final_hex(&h, hex);
	sam_sha256_free(&h);
}

static int key_path(const struct sam_voice_conf *vc, const char *key, char *buf, size_t cap, struct sam_error *err)
{
	if ((size_t)snprintf(buf, cap, "%s/%s.wav", vc->cache_dir, key) >= cap)
		return sam_errorf(err, SAM_ERANGE, "cache path too long");
	return 0;
}

int sam_voice_cache_get(const struct sam_voice_conf *vc, const char *key, uint8_t **wav, size_t *len,
			struct sam_error *err)
{
	char path[1200];
	char *data = NULL;
	int rc;
	*wav = NULL;
	*len = 0;
	if ((rc = key_path(vc, key, path, sizeof path, err))) return rc;
	if ((rc = sam_read_file(path, CACHE_FILE_MAX, &data, len, err))) {
		if (rc == SAM_ENOTFOUND) return sam_errorf(err, SAM_ENOTFOUND, "not cached");
		return rc;
	}
	if (sam_voice_wav_seconds((uint8_t *)data, *len) <= 0) {
		free(data);
		unlink(path); /* damaged: synthesise again */
		return sam_errorf(err, SAM_ENOTFOUND, "cached file was not a valid WAV");
	}
	utimensat(AT_FDCWD, path, NULL, 0); /* most recently used; a racing eviction only costs a resynthesis */
	*wav = (uint8_t *)data;
	return 0;
}

struct entry {
	char name[80];
	int64_t size;
	struct timespec mtime;
};

static int by_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec) return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec) return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

int sam_voice_cache_evict(const char *dir, int64_t max, int64_t *total, struct sam_error *err)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (total) *total = 0;
		if (errno == ENOENT) return 0;
		return sam_errorf(err, SAM_EIO, "%s: %s", dir, strerror(errno));
	}
	struct entry *e = NULL;
	size_t n = 0, cap = 0;
	int64_t sum = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		if (nl != 64 + 4 || strcmp(de->d_name + 64, ".wav")) continue; /* only our files; temporaries are not counted */
		struct stat sb;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) || !S_ISREG(sb.st_mode)) continue;
		struct entry *g = sam_grow(e, &cap, n + 1, sizeof *e);
		if (!g) break;
		e = g;
		memcpy(e[n].name, de->d_name, nl + 1); /* nl is 68: fits */
		e[n].size = sb.st_size;
		e[n].mtime = sb.st_mtim;
		sum += sb.st_size;
		n++;
	}
	if (sum > max) {
		qsort(e, n, sizeof *e, by_age);
		for (size_t i = 0; i < n && sum > max; i++) {
			/* ENOENT: another process evicted it first, which is just as good */
			if (unlinkat(dirfd(d), e[i].name, 0) == 0 || errno == ENOENT) sum -= e[i].size;
		}
	}
	closedir(d);
	free(e);
	if (total) *total = sum;
	return 0;
}

int sam_voice_cache_put(const struct sam_voice_conf *vc, const char *key, const uint8_t *wav, size_t len,
			struct sam_error *err)
{
	char path[1200];
	int rc;
	if ((int64_t)len > vc->cache_bytes) return 0; /* would be evicted at once */
	if ((rc = key_path(vc, key, path, sizeof path, err)) || (rc = sam_mkdirs(vc->cache_dir, err)) ||
	    (rc = sam_write_file_atomic(path, wav, len, err)))
		return rc;
	return sam_voice_cache_evict(vc->cache_dir, vc->cache_bytes, NULL, err);
}

int sam_voice_speak(const struct sam_voice_conf *vc, const struct sam_voice_req *q, uint8_t **wav, size_t *len,
		    bool *hit, struct sam_error *err)
{
	char key[65];
	struct sam_error cerr = { 0 };
	*hit = false;
	if (vc->cache_bytes > 0) {
		sam_voice_key(q, key);
		int rc = sam_voice_cache_get(vc, key, wav, len, &cerr);
		if (rc == 0) {
			*hit = true;
			return 0;
		}
		if (rc != SAM_ENOTFOUND) sam_log(SAM_LOG_WARN, "voice cache: %s", cerr.msg);
	}
	int rc = sam_voice_synth(q, wav, len, err);
	if (rc) return rc;
	if (vc->cache_bytes > 0 && sam_voice_cache_put(vc, key, *wav, *len, &cerr))
		sam_log(SAM_LOG_WARN, "voice cache: %s", cerr.msg);
	return 0;
}
