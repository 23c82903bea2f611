/*
 * job.c - one vision request, checked first (so bad input is refused
 * before any work), then run stage by stage: decoding, analysis, OCR.
 * Callers that report progress (the api's stream) step it themselves;
 * sam_vision_process runs it whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sam/vision.h"
#include "vision/vision_dl.h"
#include "vision/vision_int.h"

static int parse_task(const char *s, enum sam_vision_task *t, struct sam_error *err)
{
	if (!s || !strcmp(s, "ocr")) *t = SAM_VISION_OCR;
	else if (!strcmp(s, "analyze") || !strcmp(s, "analyse")) *t = SAM_VISION_ANALYZE;
	else if (!strcmp(s, "describe") || !strcmp(s, "ask")) *t = SAM_VISION_DESCRIBE;
	else return sam_errorf(err, SAM_EINVAL, "unknown task '%.40s' (expected ocr, analyze, describe or ask)", s);
	return 0;
}

const char *sam_vision_task_name(enum sam_vision_task t)
{
	return t == SAM_VISION_OCR ? "ocr" : t == SAM_VISION_ANALYZE ? "analyze" : "describe";
}

/* Task and language into job (NULL: the defaults). */
static int job_begin(struct sam_vision_job *job, const struct sam_vision_conf *vc, const char *task, const char *lang,
		     struct sam_error *err)
{
	memset(job, 0, sizeof *job);
	job->t0 = sam_now();
	if (!lang) lang = vc->lang;
	/* the OCR step says which names are valid; only the length matters for the copy */
	if (strlen(lang) >= sizeof job->lang)
		return sam_errorf(err, SAM_EINVAL,
				  "language '%.40s' is not a tesseract language name (e.g. eng, deu+eng)", lang);
	snprintf(job->lang, sizeof job->lang, "%s", lang);
	return parse_task(task, &job->task, err);
}

static const char *opt_str(json_t *body, const char *key, int *rc, struct sam_error *err)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v)) return NULL;
	if (!json_is_string(v)) *rc = sam_errorf(err, SAM_EINVAL, "field '%s' must be a string", key);
	return json_string_value(v);
}

int sam_vision_job_json(struct sam_vision_job *job, const struct sam_vision_conf *vc, json_t *req,
			struct sam_error *err)
{
	memset(job, 0, sizeof *job);
	if (!json_is_object(req)) return sam_errorf(err, SAM_EINVAL, "the body must be a JSON object or a raw image");
	int rc = 0;
	const char *t = opt_str(req, "task", &rc, err), *l = opt_str(req, "lang", &rc, err);
	const char *image = opt_str(req, "image", &rc, err), *path = opt_str(req, "path", &rc, err);
	if (rc || (rc = job_begin(job, vc, t, l, err))) return rc;
	if (!image == !path) return sam_errorf(err, SAM_EINVAL, "give exactly one of 'image' (base64) and 'path'");
	size_t n = 0;
	if (image)
		rc = sam_base64_decode(image, json_string_length(json_object_get(req, "image")), vc->max_bytes,
				       &job->own, &n, err);
	else
		rc = sam_vision_read_path(vc, path, &job->own, &n, err);
	job->data = job->own;
	job->len = n;
	return rc ? rc : sam_image_check(vc, job->data, job->len, err);
}

int sam_vision_job_raw(struct sam_vision_job *job, const struct sam_vision_conf *vc, const void *data, size_t len,
		       const char *task, const char *lang, struct sam_error *err)
{
	int rc = job_begin(job, vc, task, lang, err);
	job->data = data;
	job->len = len;
	if (rc) return rc;
	if (!len)
		return sam_errorf(err, SAM_EINVAL,
				  "the body is empty: send the image itself, or JSON {\"image\": BASE64}");
	return sam_image_check(vc, data, len, err);
}

int sam_vision_job_step(struct sam_vision_job *job, const struct sam_vision_conf *vc, struct sam_error *err)
{
	int rc = 0;
	switch (job->stage) {
	case SAM_VISION_DECODING:
		if ((rc = sam_image_decode(vc, job->data, job->len, &job->im, err))) return rc;
		job->stage = SAM_VISION_ANALYZING;
		break;
	case SAM_VISION_ANALYZING:
		job->res = json_pack("{s:s, s:o}", "task", sam_vision_task_name(job->task), "image",
				     sam_image_analyze(job->im));
		job->stage = job->task == SAM_VISION_ANALYZE ? SAM_VISION_DONE : SAM_VISION_READING;
		break;
	case SAM_VISION_READING: {
		json_t *ocr;
		if ((rc = sam_image_ocr(job->im, job->lang, &ocr, err))) return rc;
		json_object_set_new(job->res, "ocr", ocr);
		job->stage = SAM_VISION_DONE;
		break;
	}
	case SAM_VISION_DONE: SAM_BUG("vision job stepped past its end");
	}
	if (job->stage == SAM_VISION_DONE) { /* image and pixels are no longer needed: free them before the LLM runs */
		sam_image_free(job->im);
		job->im = NULL;
		free(job->own);
		job->own = NULL;
		job->data = NULL;
	}
	return 0;
}

json_t *sam_vision_job_progress(const struct sam_vision_job *job)
{
	switch (job->stage) {
	case SAM_VISION_DECODING: return json_pack("{s:s, s:I}", "stage", "decoding", "bytes", (json_int_t)job->len);
	case SAM_VISION_ANALYZING:
		return json_pack("{s:s, s:i, s:i, s:s}", "stage", "analyzing", "width", pixGetWidth(job->im->pix),
				 "height", pixGetHeight(job->im->pix), "format", job->im->format);
	case SAM_VISION_READING:
		return json_pack("{s:s, s:s, s:i, s:i}", "stage", "ocr", "lang", job->lang, "width",
				 pixGetWidth(job->im->pix), "height", pixGetHeight(job->im->pix));
	default: return NULL;
	}
}

json_t *sam_vision_job_result(struct sam_vision_job *job)
{
	if (job->stage != SAM_VISION_DONE) SAM_BUG("vision job result taken before its end");
	json_t *res = job->res;
	job->res = NULL;
	json_object_set_new(res, "seconds", json_real(sam_now() - job->t0));
	return res;
}

void sam_vision_job_free(struct sam_vision_job *job)
{
	sam_image_free(job->im);
	json_decref(job->res);
	free(job->own);
	memset(job, 0, sizeof *job);
}

bool sam_vision_body_is_json(const char *content_type, const char *body, size_t len)
{
	if (!content_type || !*content_type || !strncasecmp(content_type, "application/json", 16)) return true;
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')) i++;
	return i < len && body[i] == '{';
}

int sam_vision_process(const struct sam_vision_conf *vc, const char *body, size_t len, bool raw, const char *task_q,
		       const char *lang_q, json_t **out, struct sam_error *err)
{
	struct sam_vision_job job;
	int rc;
	*out = NULL;
	if (raw) {
		rc = sam_vision_job_raw(&job, vc, body, len, task_q, lang_q, err);
	} else {
		json_error_t je;
		json_t *req = json_loadb(body, len, 0, &je);
		if (!req)
			return sam_errorf(err, SAM_EINVAL, "the body must be a JSON object (%s) or a raw image", je.text);
		rc = sam_vision_job_json(&job, vc, req, err);
		json_decref(req);
	}
	while (!rc && job.stage != SAM_VISION_DONE) rc = sam_vision_job_step(&job, vc, err);
	if (!rc) *out = sam_vision_job_result(&job);
	sam_vision_job_free(&job);
	return rc;
}
