/*
 * watch.c - the watcher's event side (watch.h): inotify watches on every
 * directory of the roots, and the pending files in a hash table threaded
 * on a list in due order. A file's due time is always now + debounce when
 * it is (re)queued and now only grows, so moving it to the tail keeps the
 * list sorted and the head is the next file due: every operation is O(1).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/learn.h"
#include "sam/watch.h"

/* Writes in progress (MODIFY) only postpone a pending file; a finished
 * write (CLOSE_WRITE), a rename into the tree (MOVED_TO) or a new name
 * (CREATE) makes it pending. MOVE_SELF tells that a directory moved away
 * from its recorded path. */
#define DIR_MASK                                                                                      \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_CREATE | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | \
	 IN_EXCL_UNLINK)

struct dirw {
	char *path;  /* NULL: free slot */
	dev_t dev;
	ino_t ino;
	bool root;
};

struct pend {
	char *path;
	uint64_t hash;
	double due;
	struct pend *hnext;       /* bucket chain */
	struct pend *prev, *next; /* due order */
};

struct sam_watch {
	int fd;
	double debounce, rescan_s;
	struct dirw *dirs;   /* indexed by watch descriptor */
	int dirs_cap;
	char **roots;
	int n_roots;
	bool rescan_owed;    /* events were lost: scan everything at the next read */
	bool roots_missing;  /* some root is not watched: retry every rescan_s */
	bool warned_limit;
	double next_rescan;
	struct pend **buckets;
	size_t n_buckets;
	struct pend *head, *tail;
	struct sam_watch_stats st;
};

/* ---- the pending set ---------------------------------------------------------- */

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct pend **bucket_of(struct sam_watch *w, uint64_t h)
{
	return &w->buckets[h & (w->n_buckets - 1)];
}

static void list_unlink(struct sam_watch *w, struct pend *p)
{
	if (p->prev) p->prev->next = p->next;
	else w->head = p->next;
	if (p->next) p->next->prev = p->prev;
	else w->tail = p->prev;
	p->prev = p->next = NULL;
}

static void list_append(struct sam_watch *w, struct pend *p)
{
	p->prev = w->tail;
	p->next = NULL;
	if (w->tail) w->tail->next = p;
	else w->head = p;
	w->tail = p;
}

static struct pend *pend_find(struct sam_watch *w, const char *path, uint64_t h)
{
	for (struct pend *p = *bucket_of(w, h); p; p = p->hnext)
		if (p->hash == h && !strcmp(p->path, path)) return p;
	return NULL;
}

static void grow_buckets(struct sam_watch *w)
{
	size_t nb = w->n_buckets * 2;
	struct pend **b = xcalloc(nb, sizeof *b);
	for (size_t i = 0; i < w->n_buckets; i++) {
		for (struct pend *p = w->buckets[i], *next; p; p = next) {
			next = p->hnext;
			p->hnext = b[p->hash & (nb - 1)];
			b[p->hash & (nb - 1)] = p;
		}
	}
	free(w->buckets);
	w->buckets = b;
	w->n_buckets = nb;
}

/* Make path pending, due at due (create: add it if absent; else only postpone one already there). */
static void pend_put(struct sam_watch *w, const char *path, double due, bool create)
{
	uint64_t h = hash_path(path);
	struct pend *p = pend_find(w, path, h);
	if (p) {
		list_unlink(w, p);
	} else {
		if (!create) return;
		if ((size_t)w->st.pending >= w->n_buckets) grow_buckets(w);
		p = xcalloc(1, sizeof *p);
		p->path = xstrdup(path);
		p->hash = h;
		p->hnext = *bucket_of(w, h);
		*bucket_of(w, h) = p;
		w->st.pending++;
	}
	p->due = due;
	list_append(w, p);
}

static void pend_remove(struct sam_watch *w, struct pend *p)
{
	list_unlink(w, p);
	struct pend **pp = bucket_of(w, p->hash);
	while (*pp != p) pp = &(*pp)->hnext;
	*pp = p->hnext;
	free(p->path);
	free(p);
	w->st.pending--;
}

/* ---- directories ---------------------------------------------------------------- */

static void slot_free(struct sam_watch *w, int wd)
{
	if (wd < 0 || wd >= w->dirs_cap || !w->dirs[wd].path) return;
	free(w->dirs[wd].path);
	/* all of it: the kernel may hand this descriptor to another directory later */
	w->dirs[wd] = (struct dirw){ 0 };
	w->st.dirs--;
}

/* Watch dir (a new watch, or the existing one of the same inode, which then takes this path). */
static void add_watch(struct sam_watch *w, const char *dir, bool root)
{
	int wd = inotify_add_watch(w->fd, dir, DIR_MASK);
	if (wd < 0) {
		if (errno == ENOSPC || errno == ENOMEM) {
			/* Out of watches: events in the rest of the tree are lost, so
			 * keep finding its files by rescanning. */
			w->st.incomplete = true;
			if (!w->warned_limit)
				sam_log(SAM_LOG_WARN,
					"learn watch: cannot watch %s: inotify watch limit reached (raise "
					"fs.inotify.max_user_watches); rescanning every %.0f s instead",
					dir, w->rescan_s);
			w->warned_limit = true;
		}
		return; /* vanished or unreadable: nothing to watch */
	}
	if (wd >= w->dirs_cap) {
		int cap = w->dirs_cap ? w->dirs_cap : 64;
		while (cap <= wd) cap *= 2;
		w->dirs = xrealloc(w->dirs, (size_t)cap * sizeof *w->dirs);
		memset(w->dirs + w->dirs_cap, 0, (size_t)(cap - w->dirs_cap) * sizeof *w->dirs);
		w->dirs_cap = cap;
	}
	struct dirw *d = &w->dirs[wd];
	if (d->path) free(d->path);
	else w->st.dirs++;
	d->path = xstrdup(dir);
	d->root = d->root || root;
	struct stat sb;
	if (stat(dir, &sb) == 0) d->dev = sb.st_dev, d->ino = sb.st_ino;
}

struct scan_ctx {
	struct sam_watch *w;
	double due;
	const char *root;
};

static int scan_dir(void *ctx, const char *dir)
{
	struct scan_ctx *c = ctx;
	add_watch(c->w, dir, c->root && !strcmp(dir, c->root));
	return 0;
}

static int scan_file(void *ctx, const char *path)
{
	struct scan_ctx *c = ctx;
	pend_put(c->w, path, c->due, true);
	return 0;
}

/* Watch the tree at dir (each directory before its entries are listed, so nothing slips between) and queue its files. */
static void add_tree(struct sam_watch *w, const char *dir, const char *root, double now)
{
	struct scan_ctx c = { .w = w, .due = now + w->debounce, .root = root };
	sam_learn_walk(dir, &(struct sam_walk_cb){ .on_dir = scan_dir, .on_file = scan_file }, &c);
}

static bool is_dir(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void scan_all(struct sam_watch *w, double now)
{
	w->roots_missing = false;
	w->st.incomplete = false;
	w->warned_limit = false;
	for (int i = 0; i < w->n_roots; i++) {
		if (is_dir(w->roots[i])) add_tree(w, w->roots[i], w->roots[i], now);
		else w->roots_missing = true;
	}
	w->next_rescan = now + w->rescan_s;
}

/* Stop watching dir and everything under it (it left the tree, or moved where its paths are stale). */
static void drop_tree(struct sam_watch *w, const char *dir)
{
	size_t n = strlen(dir);
	for (int wd = 0; wd < w->dirs_cap; wd++) {
		const char *p = w->dirs[wd].path;
		if (!p || strncmp(p, dir, n) || (p[n] && p[n] != '/')) continue;
		if (w->dirs[wd].root) w->roots_missing = true;
		inotify_rm_watch(w->fd, wd);
		slot_free(w, wd);
	}
}

/* A watched directory moved: still where we think it is (moved within the tree and re-added), or gone? */
static void check_moved(struct sam_watch *w, int wd)
{
	struct dirw *d = &w->dirs[wd];
	struct stat sb;
	if (stat(d->path, &sb) == 0 && sb.st_dev == d->dev && sb.st_ino == d->ino) return;
	char *gone = xstrdup(d->path);
	drop_tree(w, gone);
	free(gone);
}

static void handle(struct sam_watch *w, const struct inotify_event *ev, double now)
{
	w->st.events++;
	if (ev->mask & IN_Q_OVERFLOW) {
		w->st.overflows++;
		w->rescan_owed = true;
		return;
	}
	if (ev->wd < 0 || ev->wd >= w->dirs_cap || !w->dirs[ev->wd].path) return;
	struct dirw *d = &w->dirs[ev->wd];
	if (ev->mask & IN_IGNORED) { /* deleted, or unmounted */
		if (d->root) w->roots_missing = true;
		slot_free(w, ev->wd);
		return;
	}
	if (ev->mask & IN_MOVE_SELF) {
		check_moved(w, ev->wd);
		return;
	}
	if (!ev->len || sam_learn_ignored(ev->name)) return;
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", d->path, ev->name) >= sizeof path) return;
	if (ev->mask & IN_ISDIR) {
		if (ev->mask & (IN_CREATE | IN_MOVED_TO)) add_tree(w, path, NULL, now);
	} else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)) {
		/* CREATE too, for files that appear without a write (hard links);
		 * a writer's later writes postpone it and its close re-queues it. */
		pend_put(w, path, now + w->debounce, true);
	} else if (ev->mask & IN_MODIFY) {
		pend_put(w, path, now + w->debounce, false);
	}
}

/* ---- the interface ---------------------------------------------------------------- */

int sam_watch_open(struct sam_watch **out, double debounce_s, double rescan_s, struct sam_error *err)
{
	*out = NULL;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0) return sam_errorf(err, SAM_EIO, "inotify: %s", strerror(errno));
	struct sam_watch *w = xcalloc(1, sizeof *w);
	w->fd = fd;
	w->debounce = debounce_s > 0 ? debounce_s : 0;
	w->rescan_s = rescan_s > 0 ? rescan_s : 60;
	w->n_buckets = 256;
	w->buckets = xcalloc(w->n_buckets, sizeof *w->buckets);
	*out = w;
	return 0;
}

void sam_watch_close(struct sam_watch *w)
{
	if (!w) return;
	close(w->fd);
	for (int i = 0; i < w->dirs_cap; i++) free(w->dirs[i].path);
	free(w->dirs);
	for (int i = 0; i < w->n_roots; i++) free(w->roots[i]);
	free(w->roots);
	while (w->head) pend_remove(w, w->head);
	free(w->buckets);
	free(w);
}

int sam_watch_add_root(struct sam_watch *w, const char *dir, struct sam_error *err)
{
	char abs[PATH_MAX];
	if (strlen(dir) >= sizeof abs) return sam_errorf(err, SAM_ERANGE, "%s: path too long", dir);
	/* Events name files by the path the watch was added under; the real path
	 * is what sam_ingest_file records, so use it where it exists. */
	if (!realpath(dir, abs)) snprintf(abs, sizeof abs, "%s", dir);
	size_t n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/') abs[--n] = '\0';
	w->roots = xrealloc(w->roots, (size_t)(w->n_roots + 1) * sizeof *w->roots);
	w->roots[w->n_roots++] = xstrdup(abs);
	double now = sam_now();
	if (is_dir(abs)) add_tree(w, abs, abs, now);
	else w->roots_missing = true;
	if (w->roots_missing && !w->next_rescan) w->next_rescan = now + w->rescan_s;
	return 0;
}

int sam_watch_fd(const struct sam_watch *w)
{
	return w->fd;
}

void sam_watch_read(struct sam_watch *w, double now)
{
	_Alignas(struct inotify_event) char buf[64 * 1024];
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof buf);
		if (n <= 0) {
			if (n < 0 && errno == EINTR) continue;
			break;
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			handle(w, ev, now);
			p += sizeof *ev + ev->len;
		}
	}
	bool timed = (w->roots_missing || w->st.incomplete) && now >= w->next_rescan;
	if (w->rescan_owed || timed) {
		w->rescan_owed = false;
		w->st.rescans++;
		scan_all(w, now);
	}
}

double sam_watch_timeout(const struct sam_watch *w, double now)
{
	if (w->rescan_owed) return 0;
	double t = -1;
	if (w->head) t = w->head->due - now;
	if (w->roots_missing || w->st.incomplete) {
		double r = w->next_rescan - now;
		if (t < 0 || r < t) t = r;
	}
	if (t < 0 && (w->head || w->roots_missing || w->st.incomplete)) t = 0;
	return t;
}

bool sam_watch_next(struct sam_watch *w, double now, char *path, size_t cap)
{
	struct pend *p = w->head;
	if (!p || p->due > now) return false;
	snprintf(path, cap, "%s", p->path);
	pend_remove(w, p);
	return true;
}

void sam_watch_stats(const struct sam_watch *w, struct sam_watch_stats *st)
{
	*st = w->st;
}
