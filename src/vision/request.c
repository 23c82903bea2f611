/*
 * request.c - one vision request as the service and the api's fallback
 * serve it: settings, base64, files from the allowed directories only, the
 * tasks, and the prompt "describe/ask" gives the LLM.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/vision.h"

int sam_vision_conf_load(struct sam_vision_conf *vc, const struct sam_conf *conf, struct sam_error *err)
{
	memset(vc, 0, sizeof *vc);
	long long mb, mp;
	int rc;
	if ((rc = sam_conf_int(conf, "vision", "max_bytes", 20 << 20, 64, 1LL << 31, &mb, err)) ||
	    (rc = sam_conf_int(conf, "vision", "max_pixels", 40000000, 1, 1LL << 32, &mp, err)))
		return rc;
	vc->max_bytes = (size_t)mb;
	vc->max_pixels = mp;
	const char *lang = sam_conf_str(conf, "vision", "lang", "eng");
	if (strlen(lang) >= sizeof vc->lang) return sam_errorf(err, SAM_EFORMAT, "config vision.lang: too long");
	snprintf(vc->lang, sizeof vc->lang, "%s", lang);
	char buf[SAM_VISION_MAX_DIRS * 256];
	snprintf(buf, sizeof buf, "%s", sam_conf_str(conf, "vision", "allowed_dirs", ""));
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (vc->n_dirs == SAM_VISION_MAX_DIRS)
			return sam_errorf(err, SAM_EFORMAT, "config vision.allowed_dirs: at most %d directories",
					  SAM_VISION_MAX_DIRS);
		char real[PATH_MAX];
		if (d[0] != '/') return sam_errorf(err, SAM_EFORMAT, "config vision.allowed_dirs: '%s' is not absolute", d);
		/* a directory that does not exist (yet) is kept as written: it allows nothing until it does */
		snprintf(vc->dirs[vc->n_dirs++], sizeof vc->dirs[0], "%s", realpath(d, real) ? real : d);
	}
	return 0;
}

/* ---- base64 ---- */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+' || c == '-') return 62;
	if (c == '/' || c == '_') return 63;
	return -1;
}

int sam_base64_decode(const char *s, size_t len, size_t max_out, unsigned char **out, size_t *out_len,
		      struct sam_error *err)
{
	*out = NULL;
	*out_len = 0;
	/* a data: URL prefix ("data:image/png;base64,") is accepted */
	if (len > 5 && !strncmp(s, "data:", 5)) {
		const char *comma = memchr(s, ',', len);
		if (!comma) return sam_errorf(err, SAM_EINVAL, "field 'image': a data: URL without a comma");
		len -= (size_t)(comma + 1 - s);
		s = comma + 1;
	}
	if (len / 4 * 3 > max_out + 3)
		return sam_errorf(err, SAM_ERANGE, "the image is larger than %zu bytes ([vision] max_bytes)", max_out);
	unsigned char *o = malloc(len / 4 * 3 + 3);
	if (!o) return sam_errorf(err, SAM_ENOMEM, "out of memory decoding base64");
	size_t n = 0, pad = 0;
	unsigned acc = 0, bits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = b64val(c);
		if (v < 0 || pad) {
			free(o);
			return sam_errorf(err, SAM_EINVAL, "field 'image' is not valid base64 (bad character at offset %zu)", i);
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* leftover bits: 0 (complete), 2 (one byte + 2 bits) or 4 (two bytes + 4 bits); 6 means a lone character */
	if (bits == 6 || pad > 2 || (acc & ((1u << bits) - 1))) {
		free(o);
		return sam_errorf(err, SAM_EINVAL, "field 'image' is not valid base64 (bad length or padding)");
	}
	if (n > max_out) {
		free(o);
		return sam_errorf(err, SAM_ERANGE, "the image is %zu bytes; the limit is %zu ([vision] max_bytes)", n, max_out);
	}
	*out = o;
	*out_len = n;
	return 0;
}

char *sam_base64_encode(const void *data, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char *o = xmalloc((len + 2) / 3 * 4 + 1), *q = o;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		*q++ = tab[v >> 18], *q++ = tab[(v >> 12) & 63], *q++ = tab[(v >> 6) & 63], *q++ = tab[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
		*q++ = tab[v >> 18], *q++ = tab[(v >> 12) & 63];
		*q++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*q++ = '=';
	}
	*q = 0;
	return o;
}

/* ---- paths ---- */

static bool has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/')) return true;
	return false;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/') return true;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

int sam_vision_read_path(const struct sam_vision_conf *vc, const char *path, unsigned char **data, size_t *len,
			 struct sam_error *err)
{
	*data = NULL;
	*len = 0;
	if (!vc->n_dirs)
		return sam_errorf(err, SAM_EBUSY, "reading images by path is off: no [vision] allowed_dirs are configured");
	if (path[0] != '/') return sam_errorf(err, SAM_EBUSY, "field 'path' must be an absolute path");
	if (has_dotdot(path)) return sam_errorf(err, SAM_EBUSY, "field 'path' must not contain '..'");
	bool lexical = false;
	for (int i = 0; i < vc->n_dirs; i++) lexical |= under(path, vc->dirs[i]);
	char real[PATH_MAX];
	if (!realpath(path, real)) {
		/* say "not found" only inside an allowed directory: outside, existence is nobody's business */
		if (lexical && (errno == ENOENT || errno == ENOTDIR))
			return sam_errorf(err, SAM_ENOTFOUND, "no file %s", path);
		return sam_errorf(err, SAM_EBUSY, "path %s is outside the allowed directories", path);
	}
	bool ok = false;
	for (int i = 0; i < vc->n_dirs && !ok; i++) ok = under(real, vc->dirs[i]);
	if (!ok) return sam_errorf(err, SAM_EBUSY, "path %s is outside the allowed directories", path);
	int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) return sam_errorf(err, errno == ENOENT ? SAM_ENOTFOUND : SAM_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
	int rc = 0;
	unsigned char *buf = NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rc = sam_errorf(err, SAM_EINVAL, "%s is not a regular file", path);
		goto out;
	}
	if ((size_t)st.st_size > vc->max_bytes) {
		rc = sam_errorf(err, SAM_ERANGE, "%s is %lld bytes; the limit is %zu ([vision] max_bytes)", path,
				(long long)st.st_size, vc->max_bytes);
		goto out;
	}
	size_t n = 0, cap = (size_t)st.st_size + 1;
	if (!(buf = malloc(cap))) {
		rc = sam_errorf(err, SAM_ENOMEM, "out of memory reading %s", path);
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR) continue;
		if (got < 0) {
			rc = sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0) break;
		n += (size_t)got;
		if (n == cap) { /* grew while we read */
			rc = sam_errorf(err, SAM_ERANGE, "%s changed size while being read", path);
			goto out;
		}
	}
	*data = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* ---- requests ---- */

int sam_vision_status(int rc)
{
	switch (rc) {
	case 0: return 200;
	case SAM_EINVAL: case SAM_EFORMAT: case SAM_EUNSUPPORTED: return 400;
	case SAM_ERANGE: return 413;
	case SAM_EBUSY: return 403;
	case SAM_ENOTFOUND: return 404;
	case SAM_ENOMEM: return 503;
	default: return 500;
	}
}

static int parse_task(const char *s, enum sam_vision_task *t, struct sam_error *err)
{
	if (!s || !strcmp(s, "ocr")) *t = SAM_VISION_OCR;
	else if (!strcmp(s, "analyze") || !strcmp(s, "analyse")) *t = SAM_VISION_ANALYZE;
	else if (!strcmp(s, "describe") || !strcmp(s, "ask")) *t = SAM_VISION_DESCRIBE;
	else return sam_errorf(err, SAM_EINVAL, "unknown task '%.40s' (expected ocr, analyze, describe or ask)", s);
	return 0;
}

static const char *opt_str(json_t *body, const char *key, int *rc, struct sam_error *err)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v)) return NULL;
	if (!json_is_string(v)) *rc = sam_errorf(err, SAM_EINVAL, "field '%s' must be a string", key);
	return json_string_value(v);
}

int sam_vision_process(const struct sam_vision_conf *vc, const char *body, size_t len, bool raw, const char *task_q,
		       const char *lang_q, json_t **out, struct sam_error *err)
{
	*out = NULL;
	double t0 = sam_now();
	json_t *req = NULL;
	unsigned char *bytes = NULL;
	size_t n = 0;
	struct sam_image *im = NULL;
	json_t *res = NULL;
	const char *task_s = task_q, *lang = lang_q;
	int rc = 0;
	if (!raw) {
		json_error_t je;
		req = json_loadb(body, len, 0, &je);
		if (!req || !json_is_object(req)) {
			rc = sam_errorf(err, SAM_EINVAL, "the body must be a JSON object (%s) or a raw image",
					req ? "not an object" : je.text);
			goto out;
		}
		const char *t = opt_str(req, "task", &rc, err), *l = opt_str(req, "lang", &rc, err);
		const char *image = opt_str(req, "image", &rc, err), *path = opt_str(req, "path", &rc, err);
		if (rc) goto out;
		if (t) task_s = t;
		if (l) lang = l;
		enum sam_vision_task tk;
		if ((rc = parse_task(task_s, &tk, err))) goto out;
		if (!image == !path) {
			rc = sam_errorf(err, SAM_EINVAL, "give exactly one of 'image' (base64) and 'path'");
			goto out;
		}
		if (image) rc = sam_base64_decode(image, json_string_length(json_object_get(req, "image")), vc->max_bytes,
						  &bytes, &n, err);
		else rc = sam_vision_read_path(vc, path, &bytes, &n, err);
		if (rc) goto out;
	}
	enum sam_vision_task task;
	if ((rc = parse_task(task_s, &task, err))) goto out;
	const unsigned char *img = raw ? (const unsigned char *)body : bytes;
	if (raw) n = len;
	if ((rc = sam_image_decode(vc, img, n, &im, err))) goto out;
	res = json_pack("{s:s, s:o}", "task",
			task == SAM_VISION_OCR ? "ocr" : task == SAM_VISION_ANALYZE ? "analyze" : "describe", "image",
			sam_image_analyze(im));
	if (task != SAM_VISION_ANALYZE) {
		json_t *ocr;
		if ((rc = sam_image_ocr(im, lang ? lang : vc->lang, &ocr, err))) goto out;
		json_object_set_new(res, "ocr", ocr);
	}
	json_object_set_new(res, "seconds", json_real(sam_now() - t0));
	*out = res;
	res = NULL;
out:
	json_decref(res);
	sam_image_free(im);
	free(bytes);
	json_decref(req);
	return rc;
}

static long long jint_or(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

char *sam_vision_prompt(json_t *res, const char *question)
{
	json_t *im = json_object_get(res, "image"), *ocr = json_object_get(res, "ocr");
	char cols[256] = "";
	size_t off = 0;
	json_t *c;
	size_t i;
	json_array_foreach(json_object_get(im, "dominant_colours"), i, c)
	{
		int k = snprintf(cols + off, sizeof cols - off, "%s%s (%.0f%%)", i ? ", " : "",
				 json_string_value(json_object_get(c, "hex")),
				 json_number_value(json_object_get(c, "share")) * 100);
		if (k < 0 || (size_t)k >= sizeof cols - off) break;
		off += (size_t)k;
	}
	const char *text = ocr ? json_string_value(json_object_get(ocr, "text")) : NULL;
	char *p = NULL;
	size_t cap = 0;
	FILE *f = open_memstream(&p, &cap);
	if (!f) return xstrdup(question ? question : "Describe this image.");
	fprintf(f,
		"You are looking at an image. What is known about it:\n"
		"- %lld x %lld pixels, %s, %lld channel(s), mean brightness %.0f of 255\n"
		"- dominant colours: %s\n- it %s like a screenshot and %s like text\n",
		jint_or(im, "width"), jint_or(im, "height"), json_string_value(json_object_get(im, "format")),
		jint_or(im, "channels"), json_number_value(json_object_get(im, "mean_brightness")), cols[0] ? cols : "none",
		json_is_true(json_object_get(im, "looks_like_screenshot")) ? "looks" : "does not look",
		json_is_true(json_object_get(im, "looks_like_text")) ? "looks" : "does not look");
	if (text && *text) fprintf(f, "- text read from it (OCR):\n\"\"\"\n%.4000s\n\"\"\"\n", text);
	else fprintf(f, "- no text could be read from it\n");
	fprintf(f, "\nQuestion: %s\nAnswer:", question && *question ? question : "Describe this image.");
	fclose(f);
	return p;
}
