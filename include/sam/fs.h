/*
 * fs.h - files and directories: SAM_HOME paths, mkdir -p, whole-file reads
 * with a size cap, and atomic rewrites (temporary name, fsync, rename,
 * fsync of the directory), so a crash leaves the old or the new file,
 * never a torn one.
 */
#ifndef SAM_FS_H
#define SAM_FS_H

#include <stddef.h>

#include "sam/core.h"

/* $SAM_HOME, else ~/.local/share/sam. The string is static; never NULL. */
const char *sam_home(void);
/* Write "$SAM_HOME/rel" into buf; SAM_ERANGE if it does not fit. */
int sam_home_path(char *buf, size_t cap, const char *rel);
/* Create SAM_HOME and its standard subdirectories (models, adapters, data, run, logs, inbox). */
int sam_home_init(struct sam_error *err);

/* mkdir -p with mode 0755. */
int sam_mkdirs(const char *path, struct sam_error *err);

/* Read a whole file of at most cap bytes; *data is malloc'd and NUL-terminated. */
int sam_read_file(const char *path, size_t cap, char **data, size_t *len, struct sam_error *err);

/* An atomic rewrite in progress: write to fd, then commit or abort. */
struct sam_afile {
	int fd;
	char *path, *tmp;
};
int sam_afile_open(struct sam_afile *af, const char *path, int mode, struct sam_error *err);
/* fsync, close, rename over path, fsync the directory. Always releases af. */
int sam_afile_commit(struct sam_afile *af, struct sam_error *err);
/* fsync the directory that holds path ("." when it has no '/'), so a rename into it lasts. */
int sam_fsync_parent(const char *path, struct sam_error *err);
/* Close and remove the temporary file. Safe after a failed open or a commit. */
void sam_afile_abort(struct sam_afile *af);

/* write(2) all of buf, retrying on EINTR and short writes. */
int sam_write_all(int fd, const void *buf, size_t len);
/* Replace path with data atomically. */
int sam_write_file_atomic(const char *path, const void *data, size_t len, struct sam_error *err);

/*
 * The file a program name runs, as exec would find it but decided before
 * forking (a child of a threaded process may only make async-signal-safe
 * calls): prog itself when it contains '/', else the first executable
 * regular file of that name in $PATH (default /usr/local/bin:/usr/bin:/bin).
 * -1 with errno ENOENT (not found) or ENAMETOOLONG when it does not fit cap.
 */
int sam_find_program(const char *prog, char *out, size_t cap);
/* pipe(2) whose ends are close-on-exec from the start (atomically where the system can), so no
 * other thread's child inherits them. -1 with errno on failure. */
int sam_pipe_cloexec(int fd[2]);

#endif
