/*
 * core.h - error codes, error detail buffers, logging and aborting
 * allocators shared by every part of SAM.
 *
 * Conventions (see docs/conventions.md):
 *  - Fallible functions return 0 on success or a negative SAM_E* code.
 *    Detail for a human goes into a caller-provided struct sam_error.
 *  - xmalloc() and friends abort on failure: use them for small, bounded
 *    objects only. Anything sized by input (models, caches, files) uses
 *    plain malloc() and reports SAM_ENOMEM.
 */
#ifndef SAM_CORE_H
#define SAM_CORE_H

#include <stdarg.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define SAM_VERSION "0.1.0"

enum sam_status {
	SAM_OK = 0,
	SAM_EIO = -1,          /* a system call failed (errno in the message) */
	SAM_EFORMAT = -2,      /* malformed or hostile input file or data */
	SAM_ENOMEM = -3,       /* an allocation sized by input failed */
	SAM_EINVAL = -4,       /* bad argument from the caller or the user */
	SAM_EUNSUPPORTED = -5, /* well-formed, but not something we implement */
	SAM_ENOTFOUND = -6,    /* a key, tensor, file or token does not exist */
	SAM_ERANGE = -7,       /* a value is outside the allowed range */
	SAM_EBUSY = -8,        /* held by someone else (a lock); try again later */
	SAM_ESTOPPED = -9,     /* stopped on request (a signal, a control file); resumable */
	SAM_ECONFLICT = -10,   /* not allowed in the object's present state (approving twice) */
};

/* Human-readable detail of the last failure of a call that took it. */
struct sam_error {
	int code;
	char msg[512];
};

/* Short name of a status code ("format error", ...). Never NULL. */
const char *sam_strerror(int code);

/*
 * Fill err (may be NULL) with a formatted message and return code, so a
 * failing function can end with `return sam_errorf(err, SAM_EFORMAT, ...)`.
 */
int sam_errorf(struct sam_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " to err's message (truncating), e.g. a file name. */
void sam_error_prefix(struct sam_error *err, const char *prefix);

enum sam_log_level { SAM_LOG_DEBUG, SAM_LOG_INFO, SAM_LOG_WARN, SAM_LOG_ERROR };

/* Messages below this level are dropped; SAM_LOG env (debug|info|warn|error). */
void sam_log_set_level(enum sam_log_level level);
void sam_log(enum sam_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "sam: fatal: ..." to stderr and exit(1). Only for impossible-to-continue states. */
_Noreturn void sam_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An internal invariant was broken: report file/line and abort(). */
#define SAM_BUG(...) sam_bug_at(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void sam_bug_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Aborting allocators: never return NULL. Free with free(). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/*
 * Fallible growth of an array p of elem-sized items to hold want of them:
 * returns p itself when *cap already suffices, else a realloc'd array with
 * *cap doubled up to at least want (starting at 64). NULL on overflow or
 * failure, with p and *cap untouched (the caller still owns p).
 */
void *sam_grow(void *p, size_t *cap, size_t want, size_t elem);

/*
 * For a service, before it starts threads: block SIGINT, SIGTERM and extra
 * (0: none) in this thread and so in every thread it starts, for the
 * caller to take them from *set with sigwait() or a signalfd; and ignore
 * SIGPIPE, so a client that went away is an error return, not a death.
 */
void sam_service_signals(sigset_t *set, int extra);

/* Seconds from a monotonic clock. */
double sam_now(void);

/* Peak resident set size of this process in bytes (0 if unknown). */
size_t sam_peak_rss(void);
/*
 * Resident anonymous memory in bytes: what the process itself allocated,
 * without mapped files (model weights) and shared library pages (0 if unknown).
 */
size_t sam_rss_anon(void);

#endif
