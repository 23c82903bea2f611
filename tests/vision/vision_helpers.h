/*
 * vision_helpers.h - what the vision tests share: images of known text
 * rendered by ImageMagick (CI installs it: scripts/deps.sh), how well OCR
 * read them, and requests with an image in them.
 */
#ifndef SAM_TEST_VISION_HELPERS_H
#define SAM_TEST_VISION_HELPERS_H

#include <stddef.h>

#include <jansson.h>

#include "api/api_helpers.h"

/* Render the four known lines into a PNG at path. */
void vt_render_text(const char *path);
/* Render n lines of made-up words (10 a line, the same every time) into a PNG at path: a page of text. */
void vt_render_page(const char *path, int n);
/* Share of the known lines' words found, in order, in an OCR text. */
double vt_word_accuracy(const char *ocr);

/* {"image": base64 of file, "task": task} as a JSON string (malloc'd). */
char *vt_image_body(const char *file, const char *task);
/* POST a JSON body to s's path; check the status (and an error message when it is not 200); return the JSON. */
json_t *vt_post(const struct api_server *s, const char *path, const char *body, long status);
/* POST len bytes of data as Content-Type ctype (binary-safe), plus headers ("Name: value"; NULL-ended or NULL). */
void vt_post_raw(const struct api_server *s, const char *path, const char *ctype, const void *data, size_t len,
		 const char *const *headers, struct api_resp *r);

#endif
