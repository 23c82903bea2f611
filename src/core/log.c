/* log.c - one logging function for every service; stderr is the sink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/core.h"

static int min_level = -1;

static int level_from_env(void)
{
	const char *s = getenv("SAM_LOG");
	if (!s) return SAM_LOG_INFO;
	if (!strcmp(s, "debug")) return SAM_LOG_DEBUG;
	if (!strcmp(s, "warn")) return SAM_LOG_WARN;
	if (!strcmp(s, "error")) return SAM_LOG_ERROR;
	return SAM_LOG_INFO;
}

void sam_log_set_level(enum sam_log_level level)
{
	min_level = (int)level;
}

void sam_log(enum sam_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warning", "error" };
	if (min_level < 0) min_level = level_from_env();
	if ((int)level < min_level) return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* one fprintf per line keeps lines whole when threads log at once */
	fprintf(stderr, "sam: %s: %s\n", names[level], line);
}

_Noreturn void sam_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sam: fatal: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

_Noreturn void sam_bug_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sam: BUG at %s:%d: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}
