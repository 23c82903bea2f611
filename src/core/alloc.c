/* alloc.c - aborting allocators for small objects, clocks and memory stats. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sam/core.h"

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) sam_die("out of memory allocating %zu bytes", n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) sam_die("out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) sam_die("out of memory reallocating %zu bytes", n);
	return q;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

void *sam_grow(void *p, size_t *cap, size_t want, size_t elem)
{
	if (want <= *cap) return p;
	size_t c = *cap ? *cap : 64;
	while (c < want) {
		if (c > SIZE_MAX / 2) return NULL;
		c *= 2;
	}
	if (c > SIZE_MAX / elem) return NULL;
	void *q = realloc(p, c * elem);
	if (q) *cap = c;
	return q;
}

double sam_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t sam_peak_rss(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
	return (size_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

size_t sam_rss_anon(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f) return 0;
	char line[256];
	size_t kb = 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "RssAnon:", 8)) {
			kb = (size_t)strtoull(line + 8, NULL, 10);
			break;
		}
	fclose(f);
	return kb * 1024;
}
