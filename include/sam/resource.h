/*
 * resource.h - the resource manager: how much memory is available, what
 * level that is, and a gate that admits heavy work (an engine batch loop,
 * a vision job, a training job) a fixed number at a time.
 *
 * Levels, by available memory (defaults, GB): CRITICAL < 1.0 <= LOW < 1.5
 * <= MEDIUM < 2.5 <= OK. A level is entered at once when memory falls below
 * its threshold and left only when memory rises hysteresis above it, so the
 * level does not flap around a threshold.
 *
 * Memory source, first that applies: $SAM_FAKE_MEMAVAILABLE_FILE (a file
 * holding a number of MB, re-read on every poll, so tests can change the
 * pressure while a service runs), $SAM_FAKE_MEMAVAILABLE_MB, then the OS
 * (Linux /proc/meminfo MemAvailable; macOS host statistics).
 */
#ifndef SAM_RESOURCE_H
#define SAM_RESOURCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sam/config.h"
#include "sam/core.h"

enum sam_level { SAM_LEVEL_CRITICAL = 0, SAM_LEVEL_LOW = 1, SAM_LEVEL_MEDIUM = 2, SAM_LEVEL_OK = 3 };

/* "critical", "low", "medium", "ok" */
const char *sam_level_name(int level);

/* Available memory in MB from the source above; SAM_EIO if unreadable. */
int sam_mem_available_mb(double *mb, struct sam_error *err);
/* Total physical memory in MB (0 if unknown). */
double sam_mem_total_mb(void);
/* Resident set size of this process in bytes (0 if unknown). */
size_t sam_rss_bytes(void);

struct sam_resource {
	double critical_mb, low_mb, medium_mb, hysteresis_mb;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int level;        /* enum sam_level, as of the last poll */
	double avail_mb;  /* as of the last poll */
	int gate_cap;     /* heavy work admitted at once */
	int gate_used;
};

/* Thresholds from config section [resource] (critical_gb, low_gb, medium_gb, hysteresis_gb, heavy_slots). */
int sam_resource_init(struct sam_resource *r, const struct sam_conf *conf, struct sam_error *err);
void sam_resource_free(struct sam_resource *r);

/* Read memory and update the level; returns the level, *changed set when it moved. */
int sam_resource_poll(struct sam_resource *r, bool *changed);
int sam_resource_level(struct sam_resource *r);

/* The level memory mb gives, starting from level prev (pure: used by poll and tests). */
int sam_resource_level_for(const struct sam_resource *r, int prev, double mb);

/* Take a slot of the heavy-work gate, waiting at most timeout_s (< 0: forever). false on timeout. */
bool sam_gate_acquire(struct sam_resource *r, double timeout_s);
bool sam_gate_try(struct sam_resource *r);
void sam_gate_release(struct sam_resource *r);

#endif
