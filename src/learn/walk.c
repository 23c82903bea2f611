/*
 * walk.c - which names a directory ingest leaves out, and the recursive
 * walk `sam learn add DIR` and the watcher share (learn.h). Written with
 * opendir rather than nftw because a hidden directory's whole subtree
 * (.git/) must be skipped, which POSIX nftw cannot do.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sam/learn.h"

bool sam_learn_ignored(const char *name)
{
	static const char *const temp_ext[] = { ".part", ".tmp", ".swp", ".swx", ".crdownload", ".partial", NULL };
	size_t n = strlen(name);
	if (!n || name[0] == '.' || name[n - 1] == '~') return true;
	for (const char *const *e = temp_ext; *e; e++) {
		size_t k = strlen(*e);
		if (n > k && !strcasecmp(name + n - k, *e)) return true;
	}
	return false;
}

/* Deeper trees than this are a loop of bind mounts or a mistake, not data. */
#define WALK_MAX_DEPTH 64

static int walk(const char *dir, int depth, const struct sam_walk_cb *cb, void *ctx)
{
	int rc = cb->on_dir ? cb->on_dir(ctx, dir) : 0;
	if (rc) return rc;
	DIR *d = opendir(dir);
	if (!d) {
		if (cb->on_error) return cb->on_error(ctx, dir, errno);
		return 0;
	}
	struct dirent *e;
	char path[PATH_MAX];
	while (!rc && (e = readdir(d))) {
		if (sam_learn_ignored(e->d_name)) continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) {
			if (cb->on_error) rc = cb->on_error(ctx, dir, ENAMETOOLONG);
			continue;
		}
		unsigned char type = e->d_type;
		struct stat sb;
		if (type == DT_UNKNOWN || type == DT_LNK) {
			/* A symlink to a file is followed (the file is ingested under its real
			 * path); a symlink to a directory is not, which rules out loops. */
			if (type == DT_UNKNOWN && lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) type = DT_DIR;
			else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) type = DT_REG;
			else continue;
		}
		if (type == DT_DIR) {
			if (depth + 1 < WALK_MAX_DEPTH) rc = walk(path, depth + 1, cb, ctx);
			else if (cb->on_error) rc = cb->on_error(ctx, path, ELOOP);
		} else if (type == DT_REG && cb->on_file) {
			rc = cb->on_file(ctx, path);
		}
	}
	closedir(d);
	return rc;
}

int sam_learn_walk(const char *dir, const struct sam_walk_cb *cb, void *ctx)
{
	return walk(dir, 0, cb, ctx);
}
