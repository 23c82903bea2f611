/*
 * watch.h - which files in a set of directory trees need ingesting, as
 * inotify reports them (Linux): the watcher's event side, without the
 * ingesting itself (`sam learn watch` pairs the two).
 *
 * Every directory of every root is watched (new subdirectories as they
 * appear, and their contents scanned, since files may land there before
 * the watch does). A file becomes pending when it is closed after writing
 * or moved in, and due once it has been quiet for the debounce interval
 * (writes push it back), so a file is taken once its writer is done. When
 * the kernel's event queue overflows, or a watch cannot be added (the
 * user's inotify watch limit), events may have been lost: every root is
 * scanned again, then (watch limit) every rescan_s seconds, and every file
 * found becomes pending. Rescans are cheap for the consumer because
 * sam_ingest_file skips unchanged files without reading them; that is also
 * what makes a restart neither lose nor repeat work: the first scan offers
 * every file, the store knows which it has.
 *
 * Names that sam_learn_ignored() rejects are left out, with their
 * subtrees. Symlinked directories are not followed.
 *
 * Single-threaded: one thread calls all of these; sam_watch_stats may be
 * copied for other threads by the caller.
 */
#ifndef SAM_WATCH_H
#define SAM_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"

struct sam_watch; /* opaque */

struct sam_watch_stats {
	int64_t dirs;        /* directories watched now */
	int64_t pending;     /* files waiting to be due */
	int64_t events;      /* inotify events read */
	int64_t overflows;   /* event queue overflows */
	int64_t rescans;     /* full scans after the first */
	bool incomplete;     /* some directory could not be watched: rescanning every rescan_s */
};

/* A watcher with no roots. debounce_s >= 0; rescan_s > 0. SAM_EIO when inotify is unavailable. */
int sam_watch_open(struct sam_watch **out, double debounce_s, double rescan_s, struct sam_error *err);
void sam_watch_close(struct sam_watch *w);

/*
 * Watch the tree at dir and make every file in it pending. A root that
 * does not exist (yet) or goes away is retried at every rescan.
 * SAM_ERANGE when the path is too long.
 */
int sam_watch_add_root(struct sam_watch *w, const char *dir, struct sam_error *err);

/* The descriptor to poll for input; then call sam_watch_read. */
int sam_watch_fd(const struct sam_watch *w);

/*
 * Read whatever events are queued (never blocks) and update the pending
 * set; runs a rescan when one is owed. now is sam_now().
 */
void sam_watch_read(struct sam_watch *w, double now);

/* Seconds from now until something is due (a file or a rescan); < 0 when nothing is owed. */
double sam_watch_timeout(const struct sam_watch *w, double now);

/*
 * Take the next due file: its path is copied into path (cap bytes) and it
 * leaves the pending set (it comes back if written again). false when no
 * file is due.
 */
bool sam_watch_next(struct sam_watch *w, double now, char *path, size_t cap);

void sam_watch_stats(const struct sam_watch *w, struct sam_watch_stats *st);

#endif
