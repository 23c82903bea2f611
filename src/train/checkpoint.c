/*
 * checkpoint.c - saving and restoring a training run (see checkpoint.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sam/fs.h"
#include "sam/sha256.h"
#include "train/checkpoint.h"

#define MAGIC "SAMCKPT"
#define VERSION 1u

/* Writes through the hash, so the digest covers exactly what was written. */
struct hwriter {
	int fd;
	struct sam_sha256 h;
	int failed;
};

static void put(struct hwriter *w, const void *p, size_t n)
{
	if (w->failed) return;
	sam_sha256_update(&w->h, p, n);
	if (sam_write_all(w->fd, p, n)) w->failed = errno ? errno : EIO;
}

int ckpt_save(const char *path, const char *fingerprint, const struct ckpt_state *s, struct sam_error *err)
{
	struct sam_afile af;
	int rc = sam_afile_open(&af, path, 0600, err);
	if (rc) return rc;
	struct hwriter w = { .fd = af.fd };
	sam_sha256_init(&w.h);
	uint32_t version = VERSION, fl = (uint32_t)strlen(fingerprint);
	uint64_t n = s->n;
	put(&w, MAGIC, 8);
	put(&w, &version, 4);
	put(&w, &fl, 4);
	put(&w, fingerprint, fl);
	put(&w, &s->step, 8);
	put(&w, &s->adam_t, 8);
	put(&w, &n, 8);
	put(&w, s->params, s->n * sizeof(float));
	put(&w, s->m, s->n * sizeof(float));
	put(&w, s->v, s->n * sizeof(float));
	uint8_t digest[SAM_SHA256_LEN];
	sam_sha256_final(&w.h, digest);
	if (!w.failed && sam_write_all(af.fd, digest, sizeof digest)) w.failed = errno ? errno : EIO;
	if (w.failed) {
		sam_afile_abort(&af);
		return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(w.failed));
	}
	return sam_afile_commit(&af, err);
}

/* The first option that differs between two fingerprints ("k=v k=v ..."), for the message. */
static void first_difference(const char *a, const char *b, char *out, size_t cap)
{
	const char *pa = a, *pb = b;
	while (*pa && *pb) {
		size_t la = strcspn(pa, " "), lb = strcspn(pb, " ");
		if (la != lb || memcmp(pa, pb, la)) {
			snprintf(out, cap, "%.*s, now %.*s", (int)la, pa, (int)lb, pb);
			return;
		}
		pa += la + (pa[la] == ' ');
		pb += lb + (pb[lb] == ' ');
	}
	snprintf(out, cap, "%s", "a different setting");
}

int ckpt_load(const char *path, const char *fingerprint, struct ckpt_state *s, struct sam_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0) return sam_errorf(err, SAM_ENOTFOUND, "%s: no checkpoint", path);
	char *data;
	size_t len;
	int rc = sam_read_file(path, (size_t)st.st_size + 1, &data, &len, err);
	if (rc) return rc;
	size_t fl_total = strlen(fingerprint);
	uint32_t version, fl;
	uint64_t n;
	if (len < 8 + 4 + 4 + 24 + SAM_SHA256_LEN || memcmp(data, MAGIC, 8)) {
		rc = sam_errorf(err, SAM_EFORMAT, "%s: not a SAM checkpoint", path);
		goto out;
	}
	memcpy(&version, data + 8, 4);
	memcpy(&fl, data + 12, 4);
	if (version != VERSION || fl > len - (16 + 24 + SAM_SHA256_LEN)) {
		rc = sam_errorf(err, SAM_EFORMAT, "%s: checkpoint version %u or header damaged", path, version);
		goto out;
	}
	const char *p = data + 16 + fl;
	memcpy(&s->step, p, 8);
	memcpy(&s->adam_t, p + 8, 8);
	memcpy(&n, p + 16, 8);
	p += 24;
	size_t body = (size_t)(p - data);
	if (n > (len - body) / 12 || body + 12 * n + SAM_SHA256_LEN != len) {
		rc = sam_errorf(err, SAM_EFORMAT, "%s: checkpoint truncated or damaged", path);
		goto out;
	}
	uint8_t digest[SAM_SHA256_LEN];
	struct sam_sha256 h;
	sam_sha256_init(&h);
	sam_sha256_update(&h, data, len - SAM_SHA256_LEN);
	sam_sha256_final(&h, digest);
	if (memcmp(digest, data + len - SAM_SHA256_LEN, SAM_SHA256_LEN)) {
		rc = sam_errorf(err, SAM_EFORMAT, "%s: checkpoint damaged (checksum mismatch)", path);
		goto out;
	}
	if (fl != fl_total || memcmp(data + 16, fingerprint, fl) || n != s->n) {
		char diff[300];
		char *saved = strndup(data + 16, fl);
		first_difference(saved ? saved : "", fingerprint, diff, sizeof diff);
		free(saved);
		rc = sam_errorf(err, SAM_EINVAL, "the checkpoint was made with other settings or data (%s)", diff);
		goto out;
	}
	memcpy(s->params, p, n * sizeof(float));
	memcpy(s->m, p + 4 * n, n * sizeof(float));
	memcpy(s->v, p + 8 * n, n * sizeof(float));
out:
	free(data);
	return rc;
}
