/* fs.c - SAM_HOME paths and durable file operations (see fs.h). */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/fs.h"

const char *sam_home(void)
{
	static _Thread_local char home[1024]; /* per thread: callers on many threads each get a stable copy */
	const char *h = getenv("SAM_HOME");
	if (h && *h) {
		snprintf(home, sizeof home, "%s", h);
	} else {
		const char *u = getenv("HOME");
		snprintf(home, sizeof home, "%s/.local/share/sam", u && *u ? u : ".");
	}
	return home;
}

int sam_home_path(char *buf, size_t cap, const char *rel)
{
	int n = snprintf(buf, cap, "%s/%s", sam_home(), rel);
	return n < 0 || (size_t)n >= cap ? SAM_ERANGE : 0;
}

int sam_mkdirs(const char *path, struct sam_error *err)
{
	char p[1024];
	if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
		return sam_errorf(err, SAM_ERANGE, "path too long: %s", path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				return sam_errorf(err, SAM_EIO, "mkdir %s: %s", p, strerror(errno));
			*s = c;
			if (!c) break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return sam_errorf(err, SAM_EIO, "%s: not a directory", path);
	return 0;
}

int sam_home_init(struct sam_error *err)
{
	static const char *subdirs[] = { "", "models", "adapters", "data", "run", "logs", "inbox" };
	char p[1100];
	for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
		if (sam_home_path(p, sizeof p, subdirs[i])) return sam_errorf(err, SAM_ERANGE, "SAM_HOME is too long");
		int rc = sam_mkdirs(p, err);
		if (rc) return rc;
	}
	return 0;
}

int sam_read_file(const char *path, size_t cap, char **data, size_t *len, struct sam_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return sam_errorf(err, errno == ENOENT ? SAM_ENOTFOUND : SAM_EIO, "%s: %s", path, strerror(errno));
	size_t n = 0, sz = 4096;
	char *buf = malloc(sz);
	int rc = 0;
	for (;;) {
		if (!buf) {
			rc = sam_errorf(err, SAM_ENOMEM, "%s: out of memory", path);
			break;
		}
		if (n + 1 >= sz) {
			char *nb = sz > cap ? NULL : realloc(buf, sz * 2);
			if (!nb) {
				rc = sz > cap ? sam_errorf(err, SAM_ERANGE, "%s: larger than %zu bytes", path, cap)
					      : sam_errorf(err, SAM_ENOMEM, "%s: out of memory", path);
				break;
			}
			buf = nb;
			sz *= 2;
		}
		ssize_t r = read(fd, buf + n, sz - n - 1);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			rc = sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
			break;
		}
		if (r == 0) break;
		n += (size_t)r;
		if (n > cap) {
			rc = sam_errorf(err, SAM_ERANGE, "%s: larger than %zu bytes", path, cap);
			break;
		}
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[n] = 0;
	*data = buf;
	if (len) *len = n;
	return 0;
}

int sam_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) return SAM_EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int sam_afile_open(struct sam_afile *af, const char *path, int mode, struct sam_error *err)
{
	memset(af, 0, sizeof *af);
	af->fd = -1;
	size_t n = strlen(path) + 40;
	af->path = strdup(path);
	af->tmp = malloc(n);
	if (!af->path || !af->tmp) {
		sam_afile_abort(af);
		return sam_errorf(err, SAM_ENOMEM, "out of memory");
	}
	/* pid and a counter: two writers in one process never share a temp name */
	static int seq;
	snprintf(af->tmp, n, "%s.tmp.%ld.%d", path, (long)getpid(), __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (af->fd < 0) {
		int rc = sam_errorf(err, SAM_EIO, "%s: %s", af->tmp, strerror(errno));
		free(af->tmp);
		af->tmp = NULL;
		sam_afile_abort(af);
		return rc;
	}
	return 0;
}

int sam_fsync_parent(const char *path, struct sam_error *err)
{
	char dir[1024];
	const char *slash = strrchr(path, '/');
	if (!slash) snprintf(dir, sizeof dir, ".");
	else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
		rc = sam_errorf(err, SAM_EIO, "%s: fsync: %s", dir, strerror(errno));
	if (fd >= 0) close(fd);
	return rc;
}

int sam_afile_commit(struct sam_afile *af, struct sam_error *err)
{
	int rc = 0;
	if (fsync(af->fd) != 0) rc = sam_errorf(err, SAM_EIO, "%s: fsync: %s", af->tmp, strerror(errno));
	if (close(af->fd) != 0 && !rc) rc = sam_errorf(err, SAM_EIO, "%s: close: %s", af->tmp, strerror(errno));
	af->fd = -1;
	if (!rc && rename(af->tmp, af->path) != 0)
		rc = sam_errorf(err, SAM_EIO, "rename %s to %s: %s", af->tmp, af->path, strerror(errno));
	if (!rc) {
		free(af->tmp);
		af->tmp = NULL; /* renamed: nothing left to unlink */
		rc = sam_fsync_parent(af->path, err);
	}
	sam_afile_abort(af);
	return rc;
}

void sam_afile_abort(struct sam_afile *af)
{
	if (af->fd >= 0) close(af->fd);
	if (af->tmp) unlink(af->tmp);
	free(af->tmp);
	free(af->path);
	memset(af, 0, sizeof *af);
	af->fd = -1;
}

int sam_write_file_atomic(const char *path, const void *data, size_t len, struct sam_error *err)
{
	struct sam_afile af;
	int rc = sam_afile_open(&af, path, 0644, err);
	if (rc) return rc;
	if (sam_write_all(af.fd, data, len)) {
		rc = sam_errorf(err, SAM_EIO, "%s: write: %s", af.tmp, strerror(errno));
		sam_afile_abort(&af);
		return rc;
	}
	return sam_afile_commit(&af, err);
}

static bool runnable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int sam_find_program(const char *prog, char *out, size_t cap)
{
	if (strchr(prog, '/')) {
		if ((size_t)snprintf(out, cap, "%s", prog) >= cap) return errno = ENAMETOOLONG, -1;
		if (runnable(out)) return 0;
		errno = access(out, F_OK) == 0 ? EACCES : ENOENT;
		return -1;
	}
	const char *path = getenv("PATH");
	if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *d = path; *d;) {
		size_t len = strcspn(d, ":");
		int k = snprintf(out, cap, "%.*s/%s", (int)len, len ? d : ".", prog);
		if (k > 0 && (size_t)k < cap && runnable(out)) return 0;
		d += len;
		if (*d) d++;
	}
	errno = ENOENT;
	return -1;
}

int sam_pipe_cloexec(int fd[2])
{
#ifdef __linux__
	return pipe2(fd, O_CLOEXEC);
#else
	if (pipe(fd)) return -1;
	fcntl(fd[0], F_SETFD, FD_CLOEXEC);
	fcntl(fd[1], F_SETFD, FD_CLOEXEC);
	return 0;
#endif
}
