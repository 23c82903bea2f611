/*
 * sha256.h - SHA-256 (FIPS 180-4) over OpenSSL's EVP API: streaming
 * (init / update / final), one-shot, over a whole file, and helpers for
 * the 64-character lowercase hex form.
 *
 * Used to verify downloaded models (sam pull) and to key deduplicated
 * training data, so it is general: any number of independent hashes may be
 * in flight, in any threads (one struct sam_sha256 per hash, not shared).
 *
 * Ownership: a struct sam_sha256 owns an OpenSSL context from
 * sam_sha256_init() until sam_sha256_final*() or sam_sha256_free(), which
 * release it. Allocating that context is treated like xmalloc (it is small):
 * on failure, or if OpenSSL cannot provide SHA-256 at all, the process dies
 * with a message. So only the file function can fail.
 */
#ifndef SAM_SHA256_H
#define SAM_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"

#define SAM_SHA256_LEN 32     /* bytes of a digest */
#define SAM_SHA256_HEX_LEN 64 /* hex characters, without the NUL */

struct sam_sha256 {
	void *md_ctx; /* EVP_MD_CTX *, owned; NULL when released */
};

/* Start a hash. */
void sam_sha256_init(struct sam_sha256 *h);
/* Add len bytes (len may be 0, data may then be NULL). */
void sam_sha256_update(struct sam_sha256 *h, const void *data, size_t len);
/* Finish into out (32 bytes) and release h. */
void sam_sha256_final(struct sam_sha256 *h, uint8_t out[SAM_SHA256_LEN]);
/* Finish into hex (64 lowercase hex digits + NUL) and release h. */
void sam_sha256_final_hex(struct sam_sha256 *h, char hex[SAM_SHA256_HEX_LEN + 1]);
/* Release h without finishing. Safe on a released or zeroed struct. */
void sam_sha256_free(struct sam_sha256 *h);

/* One-shot digests of a buffer. */
void sam_sha256(const void *data, size_t len, uint8_t out[SAM_SHA256_LEN]);
void sam_sha256_hex(const void *data, size_t len, char hex[SAM_SHA256_HEX_LEN + 1]);

/* Write the lowercase hex form of a digest (65 bytes with the NUL). */
void sam_sha256_to_hex(const uint8_t digest[SAM_SHA256_LEN], char hex[SAM_SHA256_HEX_LEN + 1]);
/*
 * True when s is exactly 64 hex digits (either case). When lower is not
 * NULL the lowercase form (65 bytes with the NUL) is written there.
 */
bool sam_sha256_hex_valid(const char *s, char lower[SAM_SHA256_HEX_LEN + 1]);

/*
 * Hash the whole file at path into hex (lowercase, NUL-terminated). Reads
 * in chunks, so files of any size use constant memory. Errors:
 * SAM_ENOTFOUND (no such file), SAM_EIO (open/read failed), SAM_ENOMEM
 * (read buffer). On error hex is left untouched.
 */
int sam_sha256_file(const char *path, char hex[SAM_SHA256_HEX_LEN + 1], struct sam_error *err);

#endif
