/*
 * download.c - resumable, verified downloads with libcurl, and the model
 * catalogue (see download.h).
 *
 * One download is a loop of at most two HTTP transfers into DEST.part:
 * the first resumes from the .part's size when there is one; if the server
 * will not resume (200 instead of 206, a range that does not start where we
 * asked, or 416 on a .part that is not complete) the .part is emptied and
 * the second transfer starts from zero. Then the complete file is checked
 * (size, sha256), fsynced and renamed into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sam/download.h"
#include "sam/fs.h"

/*
 * The catalogue. Sizes and hashes are filled in only where they are known
 * for certain (taken from the file itself, not from memory): this build
 * machine cannot reach huggingface.co, so none are yet, and `sam pull`
 * prints the sha256 of what it downloaded so that they can be added. An
 * unknown size is taken from the server's Content-Length; an unknown hash
 * is not checked. Never guess these values: a wrong hash deletes every
 * download of the model.
 */
const struct sam_catalogue_entry sam_catalogue[] = {
	{ "tinyllama", "tinyllama-1.1b-chat-v1.0.Q8_0.gguf",
	  SAM_HF_BASE_URL "/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/main/tinyllama-1.1b-chat-v1.0.Q8_0.gguf",
	  0, NULL, "TinyLlama 1.1B Chat v1.0, Q8_0 (about 1.2 GB); the default", NULL },
	{ "qwen2.5-1.5b", "qwen2.5-1.5b-instruct-q4_k_m.gguf",
	  SAM_HF_BASE_URL "/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf", 0, NULL,
	  "Qwen2.5 1.5B Instruct, Q4_K_M (about 1 GB)", "needs qwen2 + K-quant support (coming)" },
	{ "qwen2.5-0.5b", "qwen2.5-0.5b-instruct-q4_k_m.gguf",
	  SAM_HF_BASE_URL "/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf", 0, NULL,
	  "Qwen2.5 0.5B Instruct, Q4_K_M (about 0.5 GB)", "needs qwen2 + K-quant support (coming)" },
	{ 0 },
};

const struct sam_catalogue_entry *sam_catalogue_default(void)
{
	return &sam_catalogue[0];
}

const struct sam_catalogue_entry *sam_catalogue_find(const char *name)
{
	for (const struct sam_catalogue_entry *e = sam_catalogue; e->name; e++)
		if (!strcmp(e->name, name)) return e;
	return NULL;
}

int sam_catalogue_url(const char *url, char *buf, size_t cap)
{
	const char *base = getenv(SAM_PULL_BASE_URL_ENV);
	size_t pl = strlen(SAM_HF_BASE_URL);
	int n;
	if (base && *base && !strncmp(url, SAM_HF_BASE_URL, pl) && (url[pl] == '/' || url[pl] == 0)) {
		size_t bl = strlen(base);
		while (bl > 0 && base[bl - 1] == '/') bl--; /* "http://host/" + "/path" */
		n = snprintf(buf, cap, "%.*s%s", (int)bl, base, url + pl);
	} else {
		n = snprintf(buf, cap, "%s", url);
	}
	return n < 0 || (size_t)n >= cap ? SAM_ERANGE : 0;
}

/* ---- one download ---- */

#define MB(x) ((double)(x) / 1e6)

enum abort_reason {
	ABORT_NONE,
	ABORT_HTTP,  /* status >= 400 (the body is not wanted) or not 2xx */
	ABORT_RANGE, /* 206 that does not continue our .part */
	ABORT_SIZE,  /* the server's file is not expected_size bytes */
	ABORT_WRITE, /* writing the .part failed (errno in write_errno) */
};

struct dl {
	const char *url, *part;
	int fd;
	uint64_t have;          /* bytes of the file in .part */
	uint64_t range_from;    /* what this transfer asked for (0 = whole file) */
	uint64_t expected_size; /* 0 = unknown */
	uint64_t total;         /* size of the whole file, once known */
	sam_download_progress_fn progress;
	void *progress_arg;
	struct sam_download_info *info;

	/* of the response being received: reset at every status line */
	long status;
	bool cr_known, cr_total_known; /* Content-Range: "bytes A-B/TOTAL" (or a star for A-B) */
	uint64_t cr_start, cr_total;
	bool cl_known; /* Content-Length */
	uint64_t cl;

	bool body_started;
	enum abort_reason abort;
	int write_errno;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool parse_u64(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9') return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10) return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	if (end) *end = p;
	return true;
}

/* "bytes 100-199/1000" or "bytes * /1000" (without the space) */
static void parse_content_range(struct dl *d, const char *v)
{
	const char *p;
	uint64_t a, b, t;
	if (strncasecmp(v, "bytes", 5)) return;
	v += 5;
	while (*v == ' ' || *v == '\t') v++;
	if (*v == '*') {
		if (v[1] == '/' && parse_u64(v + 2, NULL, &t)) {
			d->cr_total_known = true;
			d->cr_total = t;
		}
		return;
	}
	if (!parse_u64(v, &p, &a) || *p != '-' || !parse_u64(p + 1, &p, &b) || b < a || *p != '/') return;
	d->cr_known = true;
	d->cr_start = a;
	if (parse_u64(p + 1, NULL, &t)) {
		d->cr_total_known = true;
		d->cr_total = t;
	}
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t len = size * n;
	char line[512];
	size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
	memcpy(line, buf, l);
	line[l] = 0;
	while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n' || line[l - 1] == ' ')) line[--l] = 0;

	if (!strncmp(line, "HTTP/", 5)) { /* a new response (redirects, 100 Continue) */
		const char *sp = strchr(line, ' ');
		d->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		d->cr_known = d->cr_total_known = d->cl_known = false;
		return len;
	}
	const char *colon = strchr(line, ':');
	if (!colon) return len;
	const char *v = colon + 1;
	while (*v == ' ' || *v == '\t') v++;
	size_t kl = (size_t)(colon - line);
	if (kl == 13 && !strncasecmp(line, "content-range", kl)) {
		parse_content_range(d, v);
	} else if (kl == 14 && !strncasecmp(line, "content-length", kl)) {
		d->cl_known = parse_u64(v, NULL, &d->cl);
	}
	return len;
}

static int empty_part(struct dl *d)
{
	if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) {
		d->write_errno = errno;
		return -1;
	}
	d->have = 0;
	return 0;
}

/*
 * The final response's headers are in: decide whether its body continues
 * the .part (206 from where we asked), replaces it (200), or is not wanted.
 * Sets d->abort and returns false to stop the transfer.
 */
static bool begin_body(struct dl *d)
{
	d->body_started = true;
	if (d->status < 200 || d->status > 299) {
		d->abort = ABORT_HTTP;
		return false;
	}
	if (d->status == 206) {
		if (!d->cr_known || d->cr_start != d->have || d->range_from == 0) {
			d->abort = ABORT_RANGE;
			return false;
		}
		d->total = d->cr_total_known ? d->cr_total : 0;
		if (d->info) d->info->resumed_from = d->have;
	} else {
		/* the whole file: a server that ignores Range answers 200 */
		if (d->have > 0) {
			sam_log(SAM_LOG_INFO, "the server does not resume downloads: starting %s again from zero", d->part);
			if (empty_part(d)) {
				d->abort = ABORT_WRITE;
				return false;
			}
		}
		if (d->info) d->info->resumed_from = 0;
		d->total = d->cl_known ? d->cl : 0;
	}
	if (d->expected_size && d->total && d->total != d->expected_size) {
		d->abort = ABORT_SIZE;
		return false;
	}
	if (!d->total) d->total = d->expected_size;
	if (d->progress) d->progress(d->progress_arg, d->have, d->total);
	return true;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t len = size * n;
	if (!d->body_started && !begin_body(d)) return 0;
	if (d->abort) return 0;
	if (d->expected_size && d->have + len > d->expected_size) {
		d->total = 0; /* unknown, but too many */
		d->abort = ABORT_SIZE;
		return 0;
	}
	if (sam_write_all(d->fd, buf, len)) {
		d->write_errno = errno;
		d->abort = ABORT_WRITE;
		return 0;
	}
	d->have += len;
	if (d->progress) d->progress(d->progress_arg, d->have, d->total);
	return len;
}

/* One HTTP transfer of d->url into the .part, from d->range_from. */
static CURLcode perform(struct dl *d, char errbuf[CURL_ERROR_SIZE])
{
	CURL *c = curl_easy_init();
	if (!c) return CURLE_FAILED_INIT;
	char range[32];
	errbuf[0] = 0;
	curl_easy_setopt(c, CURLOPT_URL, d->url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* Hugging Face redirects to its CDN */
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sam/" SAM_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)SAM_DOWNLOAD_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)SAM_DOWNLOAD_LOW_SPEED_BYTES);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)SAM_DOWNLOAD_LOW_SPEED_TIME);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	if (d->range_from) {
		snprintf(range, sizeof range, "%" PRIu64 "-", d->range_from);
		curl_easy_setopt(c, CURLOPT_RANGE, range);
	}
	CURLcode res = curl_easy_perform(c);
	long code = 0;
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code) d->status = code;
	curl_easy_cleanup(c);
	return res;
}

/* Check url (http or https only) and write "host" or "host:port" into host. */
static int url_host(const char *url, char *host, size_t cap, struct sam_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *port = NULL;
	int rc = 0;
	if (!u) return sam_errorf(err, SAM_ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
		rc = sam_errorf(err, SAM_EINVAL, "not a valid URL: %s", url);
	} else if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) {
		rc = sam_errorf(err, SAM_EINVAL, "unsupported URL scheme '%s' (only http and https): %s", scheme, url);
	} else {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK) port = NULL;
		if (port) snprintf(host, cap, "%s:%s", h, port);
		else snprintf(host, cap, "%s", h);
	}
	curl_free(scheme);
	curl_free(h);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/*
 * Open (creating) and lock the .part. A process that held the lock may have
 * renamed the file we opened into place meanwhile: then open the new one.
 */
static int open_part(const char *part, int *fd_out, struct sam_error *err)
{
	for (int tries = 0; tries < 5; tries++) {
		int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) return sam_errorf(err, SAM_EIO, "%s: %s", part, strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;
			if (e == EWOULDBLOCK) {
				close(fd);
				return sam_errorf(err, SAM_EIO, "%s: another download of this file is in progress", part);
			}
			/* a filesystem without locks: go on unlocked */
			sam_log(SAM_LOG_DEBUG, "%s: flock: %s", part, strerror(e));
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(part, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
	}
	return sam_errorf(err, SAM_EIO, "%s: the file keeps being replaced", part);
}

static bool is_unreachable(CURLcode res, const struct dl *d)
{
	switch (res) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT: return true;
	case CURLE_OPERATION_TIMEDOUT: return d->status == 0 && !d->body_started; /* no answer at all */
	default: return false;
	}
}

int sam_download(const char *url, const char *dest_path, uint64_t expected_size, const char *expected_sha256,
		 sam_download_progress_fn progress, void *progress_arg, struct sam_download_info *info,
		 struct sam_error *err)
{
	struct sam_download_info local_info;
	char want_hex[SAM_SHA256_HEX_LEN + 1], real_url[4096], errbuf[CURL_ERROR_SIZE];
	struct dl d = { 0 };
	char *part = NULL;
	bool complete = false;
	int rc = 0;

	if (!info) info = &local_info;
	memset(info, 0, sizeof *info);
	if (expected_sha256 && !sam_sha256_hex_valid(expected_sha256, want_hex))
		return sam_errorf(err, SAM_EINVAL, "not a sha256 (64 hex digits): '%s'", expected_sha256);
	if (sam_catalogue_url(url, real_url, sizeof real_url)) return sam_errorf(err, SAM_ERANGE, "URL too long");
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return sam_errorf(err, SAM_EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	rc = url_host(real_url, info->host, sizeof info->host, err);
	if (rc) return rc;

	size_t pl = strlen(dest_path) + sizeof ".part";
	part = xmalloc(pl);
	snprintf(part, pl, "%s.part", dest_path);
	d.fd = -1;
	rc = open_part(part, &d.fd, err);
	if (rc) goto out;
	struct stat st;
	if (fstat(d.fd, &st) != 0) {
		rc = sam_errorf(err, SAM_EIO, "%s: %s", part, strerror(errno));
		goto out;
	}
	d.url = real_url;
	d.part = part;
	d.have = (uint64_t)st.st_size;
	d.expected_size = expected_size;
	d.progress = progress;
	d.progress_arg = progress_arg;
	d.info = info;
	if (lseek(d.fd, (off_t)d.have, SEEK_SET) < 0 || (expected_size && d.have > expected_size && empty_part(&d))) {
		rc = sam_errorf(err, SAM_EIO, "%s: %s", part, strerror(errno));
		goto out;
	}
	if (expected_size && d.have == expected_size) { /* finished earlier, not yet verified */
		complete = true;
		d.total = expected_size;
		info->resumed_from = d.have;
	}

	for (int attempt = 0; !complete && attempt < 2; attempt++) {
		d.range_from = d.have;
		d.status = 0;
		d.cr_known = d.cr_total_known = d.cl_known = false;
		d.body_started = false;
		d.abort = ABORT_NONE;
		d.total = 0;
		if (d.have) sam_log(SAM_LOG_DEBUG, "resuming %s at byte %" PRIu64, part, d.have);
		CURLcode res = perform(&d, errbuf);
		info->http_status = (int)d.status;
		if (res == CURLE_OK && !d.body_started) begin_body(&d); /* an empty body */

		if (d.abort == ABORT_WRITE) {
			rc = sam_errorf(err, SAM_EIO, "%s: write: %s", part, strerror(d.write_errno));
			goto out;
		}
		if (d.status == 416 && d.range_from > 0) {
			/* nothing left to send: complete if the .part has the whole file */
			uint64_t total = expected_size ? expected_size : d.cr_total_known ? d.cr_total : 0;
			if (total && total == d.have) {
				complete = true;
				d.total = total;
				info->resumed_from = d.have;
				break;
			}
			sam_log(SAM_LOG_INFO, "%s does not match the server's file: starting again from zero", part);
			if (empty_part(&d)) {
				rc = sam_errorf(err, SAM_EIO, "%s: %s", part, strerror(d.write_errno));
				goto out;
			}
			continue;
		}
		if (d.abort == ABORT_RANGE) {
			sam_log(SAM_LOG_INFO, "the server sent another range than asked: starting %s again from zero", part);
			if (empty_part(&d)) {
				rc = sam_errorf(err, SAM_EIO, "%s: %s", part, strerror(d.write_errno));
				goto out;
			}
			continue;
		}
		if (d.abort == ABORT_SIZE) {
			unlink(part);
			info->part_removed = true;
			if (d.total)
				rc = sam_errorf(err, SAM_EFORMAT,
						"size mismatch: the server's file has %" PRIu64 " bytes, expected %" PRIu64
						"; deleted %s",
						d.total, expected_size, part);
			else
				rc = sam_errorf(err, SAM_EFORMAT,
						"size mismatch: the server sent more than the expected %" PRIu64
						" bytes; deleted %s",
						expected_size, part);
			goto out;
		}
		if (d.abort == ABORT_HTTP || (res == CURLE_OK && (d.status < 200 || d.status > 299))) {
			rc = sam_errorf(err, d.status == 404 || d.status == 410 ? SAM_ENOTFOUND : SAM_EIO,
					"HTTP %ld from %s", d.status, real_url);
			goto out;
		}
		if (res != CURLE_OK) {
			const char *why = errbuf[0] ? errbuf : curl_easy_strerror(res);
			if (is_unreachable(res, &d)) {
				info->unreachable = true;
				rc = sam_errorf(err, SAM_EIO, "cannot reach %s (%s)", info->host, why);
			} else if (d.have > 0) {
				info->interrupted = true;
				if (d.total)
					rc = sam_errorf(err, SAM_EIO,
							"download interrupted at %.1f of %.1f MB (%s); %s is kept: run the "
							"same command again to resume",
							MB(d.have), MB(d.total), why, part);
				else
					rc = sam_errorf(err, SAM_EIO,
							"download interrupted at %.1f MB (%s); %s is kept: run the same "
							"command again to resume",
							MB(d.have), why, part);
			} else {
				rc = sam_errorf(err, SAM_EIO, "download from %s failed: %s", info->host, why);
			}
			goto out;
		}
		if (d.total && d.have != d.total) { /* a server that closed cleanly too early */
			info->interrupted = true;
			rc = sam_errorf(err, SAM_EIO,
					"download ended at %.1f of %.1f MB; %s is kept: run the same command again to "
					"resume",
					MB(d.have), MB(d.total), part);
			goto out;
		}
		complete = true;
	}
	if (!complete) {
		rc = sam_errorf(err, SAM_EIO, "%s: the server would not send the file from the start", real_url);
		goto out;
	}
	if (progress) progress(progress_arg, d.have, d.have);

	/* verify, then move into place */
	if (fsync(d.fd) != 0) {
		rc = sam_errorf(err, SAM_EIO, "%s: fsync: %s", part, strerror(errno));
		goto out;
	}
	if (expected_size && d.have != expected_size) {
		unlink(part);
		info->part_removed = true;
		rc = sam_errorf(err, SAM_EFORMAT, "size mismatch: downloaded %" PRIu64 " bytes, expected %" PRIu64 "; deleted %s",
				d.have, expected_size, part);
		goto out;
	}
	rc = sam_sha256_file(part, info->sha256, err);
	if (rc) goto out;
	if (expected_sha256 && strcmp(info->sha256, want_hex)) {
		unlink(part);
		info->part_removed = true;
		rc = sam_errorf(err, SAM_EFORMAT, "sha256 mismatch: expected %s, got %s; deleted %s", want_hex,
				info->sha256, part);
		goto out;
	}
	if (rename(part, dest_path) != 0) {
		rc = sam_errorf(err, SAM_EIO, "rename %s to %s: %s", part, dest_path, strerror(errno));
		goto out;
	}
	rc = sam_fsync_parent(dest_path, err);

out:
	info->size = d.have;
	if (d.fd >= 0) {
		/* an empty .part (nothing downloaded) is not worth keeping */
		if (rc && !info->part_removed && d.have == 0 && fstat(d.fd, &st) == 0 && st.st_size == 0) unlink(part);
		close(d.fd);
	}
	free(part);
	return rc;
}
