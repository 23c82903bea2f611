/*
 * request.c - what a vision request needs besides the image code:
 * settings, base64, files from the allowed directories only, and the HTTP
 * status of each error (the tasks run in job.c, the LLM prompt is prompt.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/confine.h"
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
	return sam_confine_parse(sam_conf_str(conf, "vision", "allowed_dirs", ""), "vision.allowed_dirs", vc->dirs,
				 SAM_VISION_MAX_DIRS, &vc->n_dirs, err);
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

int sam_vision_read_path(const struct sam_vision_conf *vc, const char *path, unsigned char **data, size_t *len,
			 struct sam_error *err)
{
	*data = NULL;
	*len = 0;
	if (!vc->n_dirs)
		return sam_errorf(err, SAM_EBUSY, "reading images by path is off: no [vision] allowed_dirs are configured");
	char real[SAM_CONFINE_DIR_CAP];
	int rc = sam_confine_read_path(vc->dirs, vc->n_dirs, path, "field 'path'", real, err);
	if (rc) return rc;
	int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) return sam_errorf(err, errno == ENOENT ? SAM_ENOTFOUND : SAM_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
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
	case SAM_EINVAL: case SAM_EFORMAT: return 400;
	case SAM_ERANGE: return 413;
	case SAM_EBUSY: return 403;
	case SAM_ENOTFOUND: return 404;
	case SAM_ENOMEM: case SAM_EUNSUPPORTED: return 503; /* EUNSUPPORTED: leptonica/tesseract are not installed */
	default: return 500;
	}
}

size_t sam_vision_max_body(const struct sam_vision_conf *vc)
{
	return (vc->max_bytes + 2) / 3 * 4 + 64 * 1024;
}
