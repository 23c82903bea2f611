/*
 * vision.h - the vision library, linked by `sam vision` (the service), the
 * api (its in-process fallback) and `sam see`: image decoding with size
 * limits, analysis (size, format, channels, brightness, dominant colours,
 * screenshot/text heuristics) and OCR through libtesseract.
 *
 * Decoding is leptonica's (PNG, JPEG, GIF, BMP, WebP, TIFF, PNM: whatever
 * the Debian build links). Limits are checked before any pixel is decoded:
 * the byte count first, then width x height from the header
 * (pixReadHeaderMem), so a tiny file claiming 100000x100000 is refused
 * without allocating for it.
 *
 * Threads: every function may be called from any thread. OCR handles are
 * kept per thread-independent pool entry under a mutex (tesseract handles
 * are not thread-safe), one handle per language, reused between calls;
 * sam_vision_shutdown releases them at exit.
 *
 * Errors: functions return 0 or a negative SAM_E* code with a sentence in
 * err; sam_vision_status maps a code to the HTTP status the endpoints use:
 *   SAM_EINVAL  400  bad request: unknown task, bad base64, bad field, unknown language
 *   SAM_EFORMAT 400  not a decodable image (corrupt, truncated, unknown format)
 *   SAM_ERANGE  413  too many bytes or pixels
 *   SAM_EBUSY   403  path outside the allowed directories, or with ".."
 *   SAM_ENOTFOUND 404 path (inside an allowed directory) does not exist
 *   SAM_ENOMEM, SAM_EUNSUPPORTED 503  out of memory; leptonica/tesseract not installed
 *   other       500
 */
#ifndef SAM_VISION_H
#define SAM_VISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sam/config.h"
#include "sam/core.h"

#define SAM_VISION_DEFAULT_PORT 8766
#define SAM_VISION_MAX_DIRS 32

/* Settings, from [vision] in sam.conf. */
struct sam_vision_conf {
	size_t max_bytes;     /* max_bytes: largest encoded image (default 20 MiB) */
	int64_t max_pixels;   /* max_pixels: largest width*height (default 40 000 000) */
	char lang[32];        /* lang: default OCR language(s), tesseract names joined by '+' (default "eng") */
	/* allowed_dirs: colon-separated directories "path" may name (default none: "path" is refused) */
	char dirs[SAM_VISION_MAX_DIRS][4096];
	int n_dirs;
};
int sam_vision_conf_load(struct sam_vision_conf *vc, const struct sam_conf *conf, struct sam_error *err);

/* A decoded image (opaque; holds a leptonica PIX). Free with sam_image_free. */
struct sam_image;

/*
 * Check data against vc's limits and read its header (format, size), all
 * without decoding: what can be known about an image at once.
 */
int sam_image_check(const struct sam_vision_conf *vc, const void *data, size_t len, struct sam_error *err);
/*
 * sam_image_check, then decode data. On 0, *out is the image (caller
 * frees). data is not kept.
 */
int sam_image_decode(const struct sam_vision_conf *vc, const void *data, size_t len, struct sam_image **out,
		     struct sam_error *err);
void sam_image_free(struct sam_image *im);

/*
 * Analysis of im as a new JSON object: width, height, format ("png", ...),
 * channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), mean_brightness (0-255,
 * Rec. 601 luma), dominant_colours ([{hex, rgb:[r,g,b], share}], biggest
 * first, at most 5, each at least 1% of the pixels), edge_density,
 * looks_like_screenshot, looks_like_text. Caller decrefs.
 */
json_t *sam_image_analyze(const struct sam_image *im);

/*
 * OCR im with tesseract in language lang (NULL: "eng"): a new JSON object
 * {lang, text, mean_confidence, words: [{text, confidence (0-100),
 * box: {x, y, w, h}}]}. SAM_EINVAL when lang is malformed or not installed.
 */
int sam_image_ocr(const struct sam_image *im, const char *lang, json_t **out, struct sam_error *err);

/* Release the cached tesseract handles (at exit; OCR after this re-creates them). */
void sam_vision_shutdown(void);

/* Base64 (RFC 4648, padding optional on input; whitespace ignored). Results malloc'd; caller frees. */
int sam_base64_decode(const char *s, size_t len, size_t max_out, unsigned char **out, size_t *out_len,
		      struct sam_error *err);
char *sam_base64_encode(const void *data, size_t len);

/*
 * Read the file at path for a request, only inside vc's allowed
 * directories: the path must be absolute, without "..", and resolve
 * (symlinks followed) inside one of them. SAM_EBUSY when forbidden,
 * SAM_ENOTFOUND when missing, SAM_ERANGE when larger than max_bytes.
 */
int sam_vision_read_path(const struct sam_vision_conf *vc, const char *path, unsigned char **data, size_t *len,
			 struct sam_error *err);

/*
 * The request body a server must accept for images up to vc->max_bytes:
 * base64 is 4/3 of the image, plus room for the JSON around it.
 */
size_t sam_vision_max_body(const struct sam_vision_conf *vc);

/* The tasks. */
enum sam_vision_task { SAM_VISION_OCR, SAM_VISION_ANALYZE, SAM_VISION_DESCRIBE };
/* "ocr", "analyze", "describe" (which "ask" is too). */
const char *sam_vision_task_name(enum sam_vision_task t);

/* The stages of a job, in the order they run. */
enum sam_vision_stage { SAM_VISION_DECODING, SAM_VISION_ANALYZING, SAM_VISION_READING, SAM_VISION_DONE };

/*
 * One request, checked, then run a stage at a time so a caller can report
 * progress between stages (the api's /api/vision/stream). Fill it with
 * sam_vision_job_json or sam_vision_job_raw, call sam_vision_job_step
 * until stage is SAM_VISION_DONE, take sam_vision_job_result, and always
 * sam_vision_job_free. The fields are read-only for callers.
 */
struct sam_vision_job {
	enum sam_vision_task task;
	char lang[32];               /* OCR language */
	const unsigned char *data;   /* the encoded image: own (base64, path) or the caller's (raw); NULL once done */
	size_t len;
	unsigned char *own;          /* data when it is ours */
	enum sam_vision_stage stage; /* the next one to run */
	struct sam_image *im;        /* after decoding */
	json_t *res;                 /* the result so far */
	double t0;
};

/*
 * A JSON request {"image": base64 | "path": ..., "task"?, "lang"?} (other
 * fields, such as "prompt", are the caller's). task "ocr" (default),
 * "analyze", or "describe"/"ask" (both: analysis and OCR). The image is
 * decoded from base64 or read from the path, and checked (sam_image_check)
 * now, so all but decoding errors come here. req is not kept. Free the job
 * also when this fails.
 */
int sam_vision_job_json(struct sam_vision_job *job, const struct sam_vision_conf *vc, json_t *req,
			struct sam_error *err);
/* A raw image body with task and lang from a query (NULL: defaults), checked. data is borrowed: keep it alive. */
int sam_vision_job_raw(struct sam_vision_job *job, const struct sam_vision_conf *vc, const void *data, size_t len,
		       const char *task, const char *lang, struct sam_error *err);
/* Run the stage job->stage names, then move on to the next one the task needs. */
int sam_vision_job_step(struct sam_vision_job *job, const struct sam_vision_conf *vc, struct sam_error *err);
/*
 * What is known as the next stage begins, for a progress report: {"stage":
 * "decoding", "bytes"}, {"stage": "analyzing", "width", "height",
 * "format"}, {"stage": "ocr", "lang", "width", "height"}. NULL when done.
 */
json_t *sam_vision_job_progress(const struct sam_vision_job *job);
/* When done: {task, image: {analysis}, ocr?: {...}, seconds} (the job's; caller decrefs). */
json_t *sam_vision_job_result(struct sam_vision_job *job);
void sam_vision_job_free(struct sam_vision_job *job);

/*
 * Is a request body JSON (else: the raw image)? When Content-Type says
 * application/json or nothing, or the body begins with '{', which no
 * image format does (so `curl -d '{...}'`, sent as a form, still works).
 */
bool sam_vision_body_is_json(const char *content_type, const char *body, size_t len);

/*
 * A whole request, as the service and the api's fallback serve it: body
 * is JSON (as sam_vision_job_json) or, raw true, the image bytes with task
 * and lang from the query (task_q / lang_q, NULL for defaults). On 0, *out
 * is the job's result. Caller decrefs.
 */
int sam_vision_process(const struct sam_vision_conf *vc, const char *body, size_t len, bool raw, const char *task_q,
		       const char *lang_q, json_t **out, struct sam_error *err);

/* The HTTP status for an error code of this library (see the table above). */
int sam_vision_status(int rc);

/*
 * The prompt for the LLM that answers question (NULL or "": "Describe
 * this image.") about the image whose result is res, with the first
 * keep_words words of its OCR text (SIZE_MAX: all); a cut is marked
 * "[... N more words]". malloc'd.
 */
char *sam_vision_prompt(json_t *res, const char *question, size_t keep_words);
/* Words in res's OCR text (runs of non-space characters). */
size_t sam_vision_ocr_words(json_t *res);

/*
 * The longest such prompt that fits: fits(prompt, ud) answers 1 (fits), 0
 * (too long) or a negative SAM_E* code (passed on). The OCR text is cut
 * after a whole word, as late as fits allows. On 0, *out (malloc'd) holds
 * *kept of the text's *words words. SAM_ERANGE when even the prompt
 * without any OCR text does not fit.
 */
int sam_vision_prompt_fit(json_t *res, const char *question, int (*fits)(const char *prompt, void *ud), void *ud,
			  char **out, size_t *words, size_t *kept);

#endif
