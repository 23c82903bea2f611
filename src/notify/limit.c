/*
 * limit.c - the notifier's rate limit and de-duplication (notify.h).
 * A desktop flooded by a crash loop is as useless as a silent one: at most
 * `rate` notifications go out per window, what is held back is counted and
 * announced by one summary once the window has room, and the same text
 * within dedup_window is shown once.
 */
#include <stdio.h>
#include <string.h>

#include "sam/notify.h"

void sam_notify_limit_init(struct sam_notify_limit *l, int rate, double window, double dedup_window)
{
	memset(l, 0, sizeof *l);
	l->rate = rate < 1 ? 1 : rate > SAM_NOTIFY_RATE_MAX ? SAM_NOTIFY_RATE_MAX : rate;
	l->window = window > 0 ? window : 1;
	l->dedup_window = dedup_window > 0 ? dedup_window : 0;
}

/* FNV-1a over title, a separator no text contains, and body. */
static uint64_t text_key(const struct sam_notification *n)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = n->title; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ 0x1f) * 1099511628211ull;
	for (const char *p = n->body; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h | 1; /* 0 would read as a free slot's key */
}

/* Whether the window has room at now: fewer than rate sends, or the oldest has left it. */
static bool has_room(const struct sam_notify_limit *l, double now)
{
	if (l->count < l->rate) return true;
	return l->times[l->head] <= now - l->window; /* full ring: head is the oldest */
}

static void record_send(struct sam_notify_limit *l, double now)
{
	if (l->count < l->rate) {
		l->times[(l->head + l->count++) % l->rate] = now;
	} else {
		l->times[l->head] = now;
		l->head = (l->head + 1) % l->rate;
	}
}

enum sam_notify_verdict sam_notify_limit_offer(struct sam_notify_limit *l, struct sam_notification *n, double now)
{
	uint64_t key = l->dedup_window > 0 ? text_key(n) : 0;
	int slot = -1, oldest = 0;
	for (int i = 0; key && i < SAM_NOTIFY_DEDUP_SLOTS; i++) {
		if (l->seen[i].shown && l->seen[i].key == key) slot = i;
		if (l->seen[i].shown < l->seen[oldest].shown) oldest = i;
	}
	if (slot >= 0 && now - l->seen[slot].shown < l->dedup_window) {
		l->seen[slot].repeats++;
		l->duplicates++;
		return SAM_NOTIFY_DUPLICATE;
	}
	if (!has_room(l, now)) {
		l->held++;
		l->limited++;
		return SAM_NOTIFY_LIMITED;
	}
	record_send(l, now);
	l->sent++;
	if (!key) return SAM_NOTIFY_SEND;
	if (slot >= 0 && l->seen[slot].repeats) {
		/* shown again after its window: say how often it happened unseen in between */
		char body[SAM_NOTIFY_BODY_MAX + 64];
		snprintf(body, sizeof body, "%s (%lld more times since the last notice)", n->body,
			 (long long)l->seen[slot].repeats);
		sam_notification_set(n, n->urgency, n->title, "%s", body);
	}
	int i = slot >= 0 ? slot : oldest; /* a free slot has shown = 0: the oldest */
	l->seen[i].key = key;
	l->seen[i].shown = now > 0 ? now : 1e-9;
	l->seen[i].repeats = 0;
	return SAM_NOTIFY_SEND;
}

bool sam_notify_limit_summary(struct sam_notify_limit *l, double now, struct sam_notification *out)
{
	if (!l->held || !has_room(l, now)) return false;
	char title[SAM_NOTIFY_TITLE_MAX];
	snprintf(title, sizeof title, "SAM: %lld more event%s", (long long)l->held, l->held == 1 ? "" : "s");
	sam_notification_set(out, SAM_NOTIFY_NORMAL, title,
			     "%lld notification%s held back (at most %d per %g s); `sam logs notifier` lists them.",
			     (long long)l->held, l->held == 1 ? " was" : "s were", l->rate, l->window);
	record_send(l, now);
	l->held = 0;
	l->summaries++;
	return true;
}

double sam_notify_limit_wait(const struct sam_notify_limit *l, double now)
{
	if (!l->held) return -1;
	if (has_room(l, now)) return 0;
	return l->times[l->head] + l->window - now;
}
