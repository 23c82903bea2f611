/* sha256.c - SHA-256 over OpenSSL's EVP API (see sha256.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include "sam/sha256.h"

#define FILE_CHUNK (1u << 20)

/*
 * OpenSSL 3 looks the algorithm up in its provider tables on every
 * EVP_DigestInit_ex(EVP_sha256()); fetching it once makes many small
 * hashes (dedup keys) cheap. The fetched EVP_MD lives for the process.
 */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
static EVP_MD *fetched_md;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_md(void)
{
	fetched_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
	pthread_once(&fetch_once, fetch_md);
	return fetched_md ? fetched_md : EVP_sha256();
}
#else
static const EVP_MD *sha256_md(void)
{
	return EVP_sha256();
}
#endif

void sam_sha256_init(struct sam_sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c) sam_die("sha256: out of memory");
	if (EVP_DigestInit_ex(c, sha256_md(), NULL) != 1) sam_die("sha256: OpenSSL cannot provide SHA-256");
	h->md_ctx = c;
}

void sam_sha256_update(struct sam_sha256 *h, const void *data, size_t len)
{
	if (!h->md_ctx) SAM_BUG("sam_sha256_update on a released hash");
	if (len && EVP_DigestUpdate(h->md_ctx, data, len) != 1) sam_die("sha256: EVP_DigestUpdate failed");
}

void sam_sha256_final(struct sam_sha256 *h, uint8_t out[SAM_SHA256_LEN])
{
	unsigned int n = 0;
	if (!h->md_ctx) SAM_BUG("sam_sha256_final on a released hash");
	if (EVP_DigestFinal_ex(h->md_ctx, out, &n) != 1 || n != SAM_SHA256_LEN)
		sam_die("sha256: EVP_DigestFinal_ex failed");
	sam_sha256_free(h);
}

void sam_sha256_final_hex(struct sam_sha256 *h, char hex[SAM_SHA256_HEX_LEN + 1])
{
	uint8_t d[SAM_SHA256_LEN];
	sam_sha256_final(h, d);
	sam_sha256_to_hex(d, hex);
}

void sam_sha256_free(struct sam_sha256 *h)
{
	EVP_MD_CTX_free(h->md_ctx);
	h->md_ctx = NULL;
}

void sam_sha256(const void *data, size_t len, uint8_t out[SAM_SHA256_LEN])
{
	struct sam_sha256 h;
	sam_sha256_init(&h);
	sam_sha256_update(&h, data, len);
	sam_sha256_final(&h, out);
}

void sam_sha256_hex(const void *data, size_t len, char hex[SAM_SHA256_HEX_LEN + 1])
{
	uint8_t d[SAM_SHA256_LEN];
	sam_sha256(data, len, d);
	sam_sha256_to_hex(d, hex);
}

void sam_sha256_to_hex(const uint8_t digest[SAM_SHA256_LEN], char hex[SAM_SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < SAM_SHA256_LEN; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[SAM_SHA256_HEX_LEN] = 0;
}

bool sam_sha256_hex_valid(const char *s, char lower[SAM_SHA256_HEX_LEN + 1])
{
	char tmp[SAM_SHA256_HEX_LEN + 1];
	if (!s) return false;
	for (int i = 0; i < SAM_SHA256_HEX_LEN; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false; /* also stops at the NUL */
		tmp[i] = c;
	}
	if (s[SAM_SHA256_HEX_LEN]) return false;
	tmp[SAM_SHA256_HEX_LEN] = 0;
	if (lower) memcpy(lower, tmp, sizeof tmp);
	return true;
}

int sam_sha256_file(const char *path, char hex[SAM_SHA256_HEX_LEN + 1], struct sam_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return sam_errorf(err, errno == ENOENT ? SAM_ENOTFOUND : SAM_EIO, "%s: %s", path, strerror(errno));
	uint8_t *buf = malloc(FILE_CHUNK);
	if (!buf) {
		close(fd);
		return sam_errorf(err, SAM_ENOMEM, "%s: out of memory", path);
	}
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	struct sam_sha256 h;
	int rc = 0;
	sam_sha256_init(&h);
	for (;;) {
		ssize_t r = read(fd, buf, FILE_CHUNK);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			rc = sam_errorf(err, SAM_EIO, "%s: read: %s", path, strerror(errno));
			break;
		}
		if (r == 0) break;
		sam_sha256_update(&h, buf, (size_t)r);
	}
	if (rc) sam_sha256_free(&h);
	else sam_sha256_final_hex(&h, hex);
	free(buf);
	close(fd);
	return rc;
}
