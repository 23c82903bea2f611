/* resource.c - memory levels with hysteresis and the heavy-work gate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sam/fs.h"
#include "sam/resource.h"

#ifdef __APPLE__
#include <mach/mach.h>
#include <sys/sysctl.h>
#endif

const char *sam_level_name(int level)
{
	static const char *names[] = { "critical", "low", "medium", "ok" };
	return level >= 0 && level <= 3 ? names[level] : "unknown";
}

static int parse_mb(const char *s, double *mb)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	while (*end == ' ' || *end == '\n' || *end == '\t') end++;
	if (errno || end == s || *end || v < 0 || v != v) return SAM_EFORMAT;
	*mb = v;
	return 0;
}

#ifdef __linux__
/* A field of /proc/meminfo in MB. */
static int meminfo_mb(const char *field, double *mb)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f) return SAM_EIO;
	char line[256];
	size_t fl = strlen(field);
	int rc = SAM_ENOTFOUND;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, fl) && line[fl] == ':') {
			*mb = strtod(line + fl + 1, NULL) / 1024.0; /* kB */
			rc = 0;
			break;
		}
	fclose(f);
	return rc;
}
#endif

int sam_mem_available_mb(double *mb, struct sam_error *err)
{
	const char *file = getenv("SAM_FAKE_MEMAVAILABLE_FILE");
	if (file && *file) {
		char *text;
		int rc = sam_read_file(file, 4096, &text, NULL, err);
		if (rc) return rc;
		rc = parse_mb(text, mb);
		free(text);
		return rc ? sam_errorf(err, rc, "%s: expected a number of MB", file) : 0;
	}
	const char *fake = getenv("SAM_FAKE_MEMAVAILABLE_MB");
	if (fake && *fake)
		return parse_mb(fake, mb) ? sam_errorf(err, SAM_EFORMAT, "SAM_FAKE_MEMAVAILABLE_MB: expected a number") : 0;
#if defined(__linux__)
	if (meminfo_mb("MemAvailable", mb)) return sam_errorf(err, SAM_EIO, "/proc/meminfo: no MemAvailable");
	return 0;
#elif defined(__APPLE__)
	vm_statistics64_data_t vs;
	mach_msg_type_number_t count = HOST_VM_INFO64_COUNT;
	if (host_statistics64(mach_host_self(), HOST_VM_INFO64, (host_info64_t)&vs, &count) != KERN_SUCCESS)
		return sam_errorf(err, SAM_EIO, "host_statistics64 failed");
	double page = (double)sysconf(_SC_PAGESIZE);
	*mb = ((double)vs.free_count + (double)vs.inactive_count + (double)vs.purgeable_count) * page / 1048576.0;
	return 0;
#else
	return sam_errorf(err, SAM_EUNSUPPORTED, "no memory statistics on this platform");
#endif
}

double sam_mem_total_mb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? (double)pages * (double)size / 1048576.0 : 0;
}

size_t sam_rss_bytes(void)
{
#ifdef __linux__
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f) return 0;
	unsigned long size = 0, rss = 0;
	int n = fscanf(f, "%lu %lu", &size, &rss);
	fclose(f);
	return n == 2 ? (size_t)rss * (size_t)sysconf(_SC_PAGESIZE) : 0;
#else
	return sam_peak_rss();
#endif
}

int sam_resource_init(struct sam_resource *r, const struct sam_conf *conf, struct sam_error *err)
{
	memset(r, 0, sizeof *r);
	double c, l, m, h;
	long long slots;
	int rc;
	if ((rc = sam_conf_float(conf, "resource", "critical_gb", 1.0, &c, err)) ||
	    (rc = sam_conf_float(conf, "resource", "low_gb", 1.5, &l, err)) ||
	    (rc = sam_conf_float(conf, "resource", "medium_gb", 2.5, &m, err)) ||
	    (rc = sam_conf_float(conf, "resource", "hysteresis_gb", 0.1, &h, err)) ||
	    (rc = sam_conf_int(conf, "resource", "heavy_slots", 1, 1, 64, &slots, err)))
		return rc;
	if (!(c >= 0 && c <= l && l <= m && h >= 0))
		return sam_errorf(err, SAM_EINVAL, "resource thresholds must satisfy 0 <= critical <= low <= medium");
	r->critical_mb = c * 1024;
	r->low_mb = l * 1024;
	r->medium_mb = m * 1024;
	r->hysteresis_mb = h * 1024;
	r->gate_cap = (int)slots;
	r->level = SAM_LEVEL_OK;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	sam_resource_poll(r, NULL);
	return 0;
}

void sam_resource_free(struct sam_resource *r)
{
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

int sam_resource_level_for(const struct sam_resource *r, int prev, double mb)
{
	const double lower[4] = { 0, r->critical_mb, r->low_mb, r->medium_mb }; /* level L needs mb >= lower[L] */
	int target = SAM_LEVEL_CRITICAL;
	for (int l = SAM_LEVEL_OK; l > SAM_LEVEL_CRITICAL; l--)
		if (mb >= lower[l]) {
			target = l;
			break;
		}
	if (target >= prev) {
		/* going up (or staying): each step up needs the hysteresis margin */
		int up = prev;
		while (up < SAM_LEVEL_OK && mb >= lower[up + 1] + r->hysteresis_mb) up++;
		return up > target ? target : up;
	}
	return target; /* going down is immediate */
}

int sam_resource_poll(struct sam_resource *r, bool *changed)
{
	double mb;
	pthread_mutex_lock(&r->mu);
	int prev = r->level;
	if (sam_mem_available_mb(&mb, NULL) == 0) {
		r->avail_mb = mb;
		r->level = sam_resource_level_for(r, prev, mb);
	}
	int level = r->level;
	pthread_mutex_unlock(&r->mu);
	if (changed) *changed = level != prev;
	return level;
}

int sam_resource_level(struct sam_resource *r)
{
	pthread_mutex_lock(&r->mu);
	int l = r->level;
	pthread_mutex_unlock(&r->mu);
	return l;
}

bool sam_gate_acquire(struct sam_resource *r, double timeout_s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + (timeout_s > 0 ? timeout_s : 0);
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	pthread_mutex_lock(&r->mu);
	while (r->gate_used >= r->gate_cap) {
		if (timeout_s < 0) {
			pthread_cond_wait(&r->cv, &r->mu);
		} else if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&r->mu);
			return false;
		}
	}
	r->gate_used++;
	pthread_mutex_unlock(&r->mu);
	return true;
}

bool sam_gate_try(struct sam_resource *r)
{
	return sam_gate_acquire(r, 0);
}

void sam_gate_release(struct sam_resource *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->gate_used > 0) r->gate_used--;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}
