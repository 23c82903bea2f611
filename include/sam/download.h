/*
 * download.h - resumable, verified downloads of large files (GGUF models)
 * over HTTP(S) with libcurl, and the built-in catalogue of models that
 * `sam pull` knows by name.
 *
 * A download goes to "DEST.part" and becomes DEST only when it is complete
 * and verified: the .part file is fsynced and renamed over DEST, then the
 * directory is fsynced. So DEST is never a torn or unverified file, and an
 * interrupted download leaves its .part to be resumed by the next call.
 */
#ifndef SAM_DOWNLOAD_H
#define SAM_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/sha256.h"

/* Hugging Face, which the catalogue's URLs start with. */
#define SAM_HF_BASE_URL "https://huggingface.co"
/* Replaces SAM_HF_BASE_URL in catalogue URLs (tests, mirrors). */
#define SAM_PULL_BASE_URL_ENV "SAM_PULL_BASE_URL"

/* Seconds allowed to connect; a transfer slower than the limit for the
 * time is abandoned. There is no total timeout: models are gigabytes. */
#define SAM_DOWNLOAD_CONNECT_TIMEOUT 30
#define SAM_DOWNLOAD_LOW_SPEED_BYTES 1024
#define SAM_DOWNLOAD_LOW_SPEED_TIME 60

/*
 * Called as bytes arrive with the bytes of the file on disk so far (the
 * resumed part included) and the expected total (0 while unknown). done may
 * go back to 0 when a server ignores a resume request and the download
 * restarts. Called from the thread that called sam_download().
 */
typedef void (*sam_download_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* What happened, for the caller to explain; filled even on failure. */
struct sam_download_info {
	int http_status;          /* status of the last response, 0 if none */
	bool unreachable;         /* could not resolve or connect: offline, DNS, refused */
	bool interrupted;         /* the transfer broke off; DEST.part was kept to resume */
	bool part_removed;        /* DEST.part was deleted (failed verification) */
	uint64_t resumed_from;    /* bytes that were already in DEST.part and kept (0: fresh) */
	uint64_t size;            /* bytes in DEST (or in DEST.part on failure) */
	char host[256];           /* host of the URL, for messages */
	char sha256[SAM_SHA256_HEX_LEN + 1]; /* of the complete file, "" if not computed */
};

/*
 * Download url to dest_path via dest_path + ".part":
 *  - an existing .part is resumed with "Range: bytes=N-"; a server that
 *    ignores the range (200) restarts the file from zero; 416 with a .part
 *    that already has the full size counts as complete;
 *  - redirects are followed; an HTTP status >= 400 fails, naming it;
 *  - expected_size (0 = unknown) and expected_sha256 (64 hex digits, NULL =
 *    none) are checked once the file is complete; the whole file is hashed
 *    (info->sha256 is filled either way). On a mismatch the .part file is
 *    deleted and the error says so;
 *  - then fsync, rename over dest_path (replacing it), fsync the directory.
 * Only one process downloads to a given .part at a time (flock); a second
 * fails at once. progress may be NULL. info may be NULL. dest_path's
 * directory must exist. Nothing passed in is kept after the call.
 * Returns 0 or SAM_EIO (network, disk), SAM_ENOTFOUND (HTTP 404/410),
 * SAM_EFORMAT (size or sha256 mismatch), SAM_EINVAL (bad URL or hash).
 */
int sam_download(const char *url, const char *dest_path, uint64_t expected_size, const char *expected_sha256,
		 sam_download_progress_fn progress, void *progress_arg, struct sam_download_info *info,
		 struct sam_error *err);

/* A model the catalogue knows by name. */
struct sam_catalogue_entry {
	const char *name;        /* what `sam pull NAME` takes */
	const char *file;        /* file name in $SAM_HOME/models */
	const char *url;         /* starts with SAM_HF_BASE_URL */
	uint64_t size;           /* bytes, 0 = not known for certain */
	const char *sha256;      /* lowercase hex, NULL = not known for certain */
	const char *description; /* one line */
	const char *notes;       /* caveats (e.g. engine support), NULL if none */
};

/* The entries, terminated by a zeroed one. Static; never freed. */
extern const struct sam_catalogue_entry sam_catalogue[];
/* The entry `sam pull` fetches without arguments. */
const struct sam_catalogue_entry *sam_catalogue_default(void);
/* The entry named name, or NULL. */
const struct sam_catalogue_entry *sam_catalogue_find(const char *name);

/*
 * Write the URL to fetch url from into buf: when $SAM_PULL_BASE_URL is set
 * and url starts with SAM_HF_BASE_URL, that prefix is replaced by it.
 * SAM_ERANGE when the result does not fit.
 */
int sam_catalogue_url(const char *url, char *buf, size_t cap);

#endif
