/*
 * sup_log.c - log files: every line gets a UTC timestamp, and a file that
 * would grow past its maximum is rotated first (NAME.log -> NAME.log.1 ->
 * ... -> NAME.log.KEEP, the oldest dropped). One write(2) per line on an
 * O_APPEND descriptor, so lines stay whole.
 *
 * The supervisor's own messages go to stderr; unless --foreground, stderr
 * is logs/supervisor.log (the descriptor is dup2'd again after each rotation).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sam/fs.h"
#include "supervisor/sup.h"

void sup_timestamp(char *buf, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char base[32];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	int ms = (int)(ts.tv_nsec / 1000000) % 1000;
	snprintf(buf, cap, "%s.%03dZ", base, ms);
}

static int open_append(struct sup_logfile *lf)
{
	lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (lf->fd < 0) return -1;
	struct stat st;
	lf->size = fstat(lf->fd, &st) == 0 ? (long long)st.st_size : 0;
	if (lf->dup_to >= 0) dup2(lf->fd, lf->dup_to);
	return 0;
}

int sup_logfile_open(struct sup_logfile *lf, const char *path, long long max, int keep, int dup_to,
		     struct sam_error *err)
{
	sup_logfile_close(lf);
	snprintf(lf->path, sizeof lf->path, "%s", path);
	lf->max = max;
	lf->keep = keep;
	lf->dup_to = dup_to;
	if (open_append(lf)) return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

void sup_logfile_close(struct sup_logfile *lf)
{
	if (lf->fd >= 0) close(lf->fd);
	lf->fd = -1;
}

void sup_logfile_reopen(struct sup_logfile *lf)
{
	if (lf->fd < 0) return;
	close(lf->fd);
	lf->fd = -1;
	open_append(lf);
}

static void rotate(struct sup_logfile *lf)
{
	char from[1100], to[1100];
	for (int i = lf->keep; i >= 1; i--) {
		if (i == 1) snprintf(from, sizeof from, "%s", lf->path);
		else snprintf(from, sizeof from, "%s.%d", lf->path, i - 1);
		snprintf(to, sizeof to, "%s.%d", lf->path, i);
		if (rename(from, to) != 0 && errno != ENOENT) break;
	}
	if (lf->keep == 0) unlink(lf->path);
	close(lf->fd);
	lf->fd = -1;
	open_append(lf);
}

void sup_logfile_line(struct sup_logfile *lf, const char *line, size_t len)
{
	if (lf->fd < 0) return;
	char ts[40];
	sup_timestamp(ts, sizeof ts);
	size_t tl = strlen(ts);
	char buf[SUP_LINE_MAX + 64];
	if (len > SUP_LINE_MAX) len = SUP_LINE_MAX;
	memcpy(buf, ts, tl);
	buf[tl] = ' ';
	memcpy(buf + tl + 1, line, len);
	size_t n = tl + 1 + len;
	buf[n++] = '\n';
	if (lf->size > 0 && lf->size + (long long)n > lf->max) rotate(lf);
	if (lf->fd < 0) return;
	if (sam_write_all(lf->fd, buf, n) == 0) lf->size += (long long)n;
}

/* ---- the supervisor's own log ---------------------------------------------------------- */

static struct sup_logfile *self_log; /* NULL: stderr as it is (--foreground) */

void sup_log_to_file(struct sup_logfile *lf)
{
	self_log = lf;
}

void sup_log(enum sam_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warning", "error" };
	static int min_level = -1;
	if (min_level < 0) {
		const char *e = getenv("SAM_LOG");
		min_level = !e ? SAM_LOG_INFO
			    : !strcmp(e, "debug") ? SAM_LOG_DEBUG
			    : !strcmp(e, "warn")  ? SAM_LOG_WARN
			    : !strcmp(e, "error") ? SAM_LOG_ERROR
						  : SAM_LOG_INFO;
	}
	if ((int)level < min_level) return;
	char line[SUP_LINE_MAX];
	int n = snprintf(line, sizeof line, "samd[%ld]: %s: ", (long)getpid(), names[level]);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	if (self_log && self_log->fd >= 0) {
		sup_logfile_line(self_log, line, strlen(line));
	} else {
		char ts[40];
		sup_timestamp(ts, sizeof ts);
		fprintf(stderr, "%s %s\n", ts, line);
	}
}
