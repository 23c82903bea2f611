/* confine.c - file access kept inside configured directories (see confine.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/confine.h"
#include "sam/fs.h"

#define NAME_CAP 256 /* a final component: NAME_MAX 255 + NUL */

int sam_confine_parse(const char *list, const char *what, char (*dirs)[SAM_CONFINE_DIR_CAP], int max, int *n,
		      struct sam_error *err)
{
	*n = 0;
	for (const char *p = list ? list : ""; *p;) {
		size_t len = strcspn(p, ":");
		if (len) {
			if (*n == max) return sam_errorf(err, SAM_EFORMAT, "config %s: at most %d directories", what, max);
			if (len >= SAM_CONFINE_DIR_CAP)
				return sam_errorf(err, SAM_EFORMAT, "config %s: a directory longer than %d bytes", what,
						  SAM_CONFINE_DIR_CAP - 1);
			char d[SAM_CONFINE_DIR_CAP], real[PATH_MAX];
			memcpy(d, p, len);
			d[len] = 0;
			if (d[0] != '/') return sam_errorf(err, SAM_EFORMAT, "config %s: '%s' is not absolute", what, d);
			/* a directory that does not exist (yet) is kept as written: it allows nothing until it does */
			snprintf(dirs[(*n)++], SAM_CONFINE_DIR_CAP, "%s", realpath(d, real) ? real : d);
		}
		p += len;
		if (*p == ':') p++;
	}
	return 0;
}

bool sam_confine_has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/')) return true;
	return false;
}

bool sam_confine_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/') return true;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

/* The first of dirs that path lies under, or -1. */
static int dir_of(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path)
{
	for (int i = 0; i < n; i++)
		if (sam_confine_under(path, dirs[i])) return i;
	return -1;
}

static int outside(const char *path, struct sam_error *err)
{
	return sam_errorf(err, SAM_EBUSY, "path %s is outside the allowed directories", path);
}

/* The checks that need no file system: absolute, no "..". */
static int lexical_ok(const char *path, const char *field, struct sam_error *err)
{
	if (path[0] != '/') return sam_errorf(err, SAM_EBUSY, "%s must be an absolute path", field);
	if (sam_confine_has_dotdot(path)) return sam_errorf(err, SAM_EBUSY, "%s must not contain '..'", field);
	return 0;
}

/*
 * realpath(path) into real, under an allowed directory (*which: its
 * index). A missing path is "not found" (what: "file", "directory") only
 * when its text lies inside.
 */
static int resolve(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *what, char *real,
		   int *which, struct sam_error *err)
{
	char buf[PATH_MAX];
	if (!realpath(path, buf)) {
		if (dir_of(dirs, n, path) >= 0 && (errno == ENOENT || errno == ENOTDIR))
			return sam_errorf(err, SAM_ENOTFOUND, "no %s %s", what, path);
		return outside(path, err);
	}
	if ((*which = dir_of(dirs, n, buf)) < 0) return outside(path, err);
	snprintf(real, SAM_CONFINE_DIR_CAP, "%s", buf);
	return 0;
}

int sam_confine_read_path(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *field,
			  char *real, struct sam_error *err)
{
	int which, rc = lexical_ok(path, field, err);
	return rc ? rc : resolve(dirs, n, path, "file", real, &which, err);
}

/* Check path for writing: the resolved parent into parent, the final component into name. */
static int write_target(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *field,
			char *parent, char name[NAME_CAP], int *which, struct sam_error *err)
{
	int rc = lexical_ok(path, field, err);
	if (rc) return rc;
	const char *slash = strrchr(path, '/');
	const char *base = slash + 1;
	if (!*base || !strcmp(base, "."))
		return sam_errorf(err, SAM_EBUSY, "%s must name a file, not a directory", field);
	if (strlen(base) >= NAME_CAP) return sam_errorf(err, SAM_EBUSY, "%s: the file name is too long", field);
	snprintf(name, NAME_CAP, "%s", base);
	char dir[SAM_CONFINE_DIR_CAP];
	if ((size_t)(slash - path) >= sizeof dir) return sam_errorf(err, SAM_EBUSY, "%s is too long", field);
	if (slash == path) snprintf(dir, sizeof dir, "/");
	else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	return resolve(dirs, n, dir, "directory", parent, which, err);
}

/* dir/name into out (SAM_CONFINE_DIR_CAP bytes). */
static int join(char *out, const char *dir, const char *name, const char *field, struct sam_error *err)
{
	char buf[SAM_CONFINE_DIR_CAP + NAME_CAP + 1];
	snprintf(buf, sizeof buf, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	if (strlen(buf) >= SAM_CONFINE_DIR_CAP) return sam_errorf(err, SAM_EBUSY, "%s is too long", field);
	memcpy(out, buf, strlen(buf) + 1);
	return 0;
}

int sam_confine_write_path(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *field,
			   char *real, struct sam_error *err)
{
	char parent[SAM_CONFINE_DIR_CAP], name[NAME_CAP], full[SAM_CONFINE_DIR_CAP];
	int which, rc = write_target(dirs, n, path, field, parent, name, &which, err);
	if (rc || (rc = join(full, parent, name, field, err))) return rc;
	if (real) memcpy(real, full, strlen(full) + 1);
	return 0;
}

/*
 * Open the resolved directory parent, which lies under root, walking down
 * from root one component at a time without following links: a component
 * replaced by a link since realpath() looked is refused, not followed.
 */
static int open_below(const char *root, const char *parent, const char *path, struct sam_error *err)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) return sam_errorf(err, SAM_EIO, "%s: %s", root, strerror(errno));
	const char *p = parent + (strcmp(root, "/") ? strlen(root) : 0);
	while (*p) {
		p += strspn(p, "/");
		size_t len = strcspn(p, "/");
		if (!len) break;
		char comp[NAME_CAP];
		if (len >= sizeof comp) {
			close(fd);
			return outside(path, err);
		}
		memcpy(comp, p, len);
		comp[len] = 0;
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		if (next < 0) {
			if (e == ELOOP || e == ENOTDIR) return outside(path, err);
			return sam_errorf(err, SAM_EIO, "%s: %s", parent, strerror(e));
		}
		fd = next;
		p += len;
	}
	return fd;
}

/* Copy the regular file name in dirfd (at most max bytes) to out; a link or nothing there copies nothing. */
static int copy_old(int dirfd, const char *name, const char *real, size_t max, int out, struct sam_error *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP) return 0;
		return sam_errorf(err, SAM_EIO, "%s: %s", real, strerror(errno));
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = sam_errorf(err, SAM_EINVAL, "%s exists and is not a regular file", real);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = sam_errorf(err, SAM_ERANGE, "%s is %lld bytes; appending is allowed to files of at most %zu", real,
				(long long)st.st_size, max);
		goto out;
	}
	char buf[65536];
	for (size_t total = 0;;) {
		ssize_t got = read(fd, buf, sizeof buf);
		if (got < 0 && errno == EINTR) continue;
		if (got < 0) {
			rc = sam_errorf(err, SAM_EIO, "%s: %s", real, strerror(errno));
			break;
		}
		if (got == 0) break;
		if ((total += (size_t)got) > max) {
			rc = sam_errorf(err, SAM_ERANGE, "%s grew past %zu bytes while being read", real, max);
			break;
		}
		if (sam_write_all(out, buf, (size_t)got)) {
			rc = sam_errorf(err, SAM_EIO, "writing beside %s: %s", real, strerror(errno));
			break;
		}
	}
out:
	close(fd);
	return rc;
}

int sam_confine_write(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *field,
		      const void *data, size_t len, bool append, size_t max_old, char *real, struct sam_error *err)
{
	char parent[SAM_CONFINE_DIR_CAP], name[NAME_CAP], full[SAM_CONFINE_DIR_CAP];
	int which, rc = write_target(dirs, n, path, field, parent, name, &which, err);
	if (rc || (rc = join(full, parent, name, field, err))) return rc;
	if (real) snprintf(real, SAM_CONFINE_DIR_CAP, "%s", full);
	int dirfd = open_below(dirs[which], parent, path, err);
	if (dirfd < 0) return dirfd;

	/* an existing file keeps its permissions; anything but a file or a link there is not ours to replace */
	struct stat st;
	mode_t mode = 0644;
	bool keep_mode = false;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(st.st_mode)) {
			mode = st.st_mode & 0777;
			keep_mode = true;
		} else if (!S_ISLNK(st.st_mode)) {
			close(dirfd);
			return sam_errorf(err, SAM_EINVAL, "%s exists and is not a regular file", full);
		}
	}
	static int seq;
	char tmp[64];
	snprintf(tmp, sizeof tmp, ".sam-write.%ld.%d.tmp", (long)getpid(), __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = sam_errorf(err, SAM_EIO, "%s/%s: %s", parent, tmp, strerror(errno));
		close(dirfd);
		return rc;
	}
	if (keep_mode && fchmod(fd, mode) != 0) /* open() applied the umask */
		rc = sam_errorf(err, SAM_EIO, "%s: chmod: %s", full, strerror(errno));
	if (!rc && append) rc = copy_old(dirfd, name, full, max_old, fd, err);
	if (!rc && sam_write_all(fd, data, len)) rc = sam_errorf(err, SAM_EIO, "%s: write: %s", full, strerror(errno));
	if (!rc && fsync(fd) != 0) rc = sam_errorf(err, SAM_EIO, "%s: fsync: %s", full, strerror(errno));
	if (close(fd) != 0 && !rc) rc = sam_errorf(err, SAM_EIO, "%s: close: %s", full, strerror(errno));
	if (!rc && renameat(dirfd, tmp, dirfd, name) != 0)
		rc = sam_errorf(err, SAM_EIO, "%s: rename: %s", full, strerror(errno));
	if (rc) unlinkat(dirfd, tmp, 0);
	else if (fsync(dirfd) != 0 && errno != EINVAL)
		rc = sam_errorf(err, SAM_EIO, "%s: fsync: %s", parent, strerror(errno));
	close(dirfd);
	return rc;
}
