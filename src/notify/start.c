/*
 * start.c - where a notifier resumes (notify.h): the last event it handled,
 * kept in run/notify.state, so a restart misses nothing; but never the
 * backlog of a long downtime, which would only flood the desktop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sam/fs.h"
#include "sam/notify.h"

int64_t sam_notify_state_load(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	struct sam_error err;
	if (access(path, F_OK)) return -1; /* never ran here */
	if (sam_read_file(path, 64, &text, &len, &err)) {
		sam_log(SAM_LOG_WARN, "notify: %s (starting afresh)", err.msg);
		return -1;
	}
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	bool ok = end != text && !errno && v >= 0 && (*end == '\n' || !*end);
	if (!ok) sam_log(SAM_LOG_WARN, "notify: %s does not hold an event number (starting afresh)", path);
	free(text);
	return ok ? (int64_t)v : -1;
}

int sam_notify_state_save(const char *path, int64_t seq, struct sam_error *err)
{
	char text[32];
	int n = snprintf(text, sizeof text, "%lld\n", (long long)seq);
	return sam_write_file_atomic(path, text, (size_t)n, err);
}

int sam_notify_start_seq(struct sam_db *db, int64_t saved, double max_age, double now, int64_t *after,
			 int64_t *skipped, struct sam_error *err)
{
	int64_t last, from = saved, passed = 0;
	int rc = sam_events_last_seq(db, &last, err);
	if (rc) return rc;
	if (from > last) {
		sam_log(SAM_LOG_WARN, "notify: the saved position %lld is past the end of the event log (%lld): "
			"was sam.db replaced? starting over", (long long)from, (long long)last);
		from = -1;
	}
	if (from < 0) from = 0;
	double cutoff = now - max_age;
	for (;;) {
		struct sam_event *ev = NULL;
		size_t n = 0;
		if ((rc = sam_events_since(db, from, 1000, &ev, &n, err))) return rc;
		bool done = n < 1000;
		for (size_t i = 0; i < n; i++) {
			if (ev[i].time >= cutoff) {
				done = true;
				break;
			}
			from = ev[i].seq;
			passed++;
		}
		sam_events_free(ev, n);
		if (done) break;
	}
	*after = from;
	if (skipped) *skipped = passed;
	return 0;
}
