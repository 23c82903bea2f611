/*
 * confine.h - keeping file access inside configured directories: the
 * "allowed_dirs" of vision (reading images by path) and of the approval
 * queue (file_write). A list of directories comes from a config value;
 * a path is allowed when it lies under one of them after every symbolic
 * link is resolved, so a link inside that points outside does not lead out.
 *
 * The directory list is a plain array of rows, SAM_CONFINE_DIR_CAP bytes
 * each (the caller owns it; nothing here allocates what it returns):
 *
 *   char dirs[8][SAM_CONFINE_DIR_CAP];
 *   int n;
 *   sam_confine_parse("/srv/a:/srv/b", "vision.allowed_dirs", dirs, 8, &n, &err);
 *
 * Refusals are SAM_EBUSY (vision answers them 403); "not found" is only
 * ever said about paths inside an allowed directory: outside, whether a
 * file exists is nobody's business.
 */
#ifndef SAM_CONFINE_H
#define SAM_CONFINE_H

#include <stdbool.h>
#include <stddef.h>

#include "sam/core.h"

#define SAM_CONFINE_DIR_CAP 4096 /* bytes of one directory row, and of resolved paths (Linux PATH_MAX) */

/*
 * Parse list, directories separated by ':' (empty entries are skipped),
 * into dirs[0..max), *n of them. Each must be absolute; an existing one is
 * stored resolved (realpath), one that does not exist yet as written (it
 * allows nothing until it exists). what names the config key in messages:
 * "config vision.allowed_dirs: '%s' is not absolute" (SAM_EFORMAT), also
 * for more than max entries or one longer than a row.
 */
int sam_confine_parse(const char *list, const char *what, char (*dirs)[SAM_CONFINE_DIR_CAP], int max, int *n,
		      struct sam_error *err);

/* Whether path contains a ".." component. */
bool sam_confine_has_dotdot(const char *path);
/* Whether path is dir or lies below it (by its text: resolve both first). "/" holds everything. */
bool sam_confine_under(const char *path, const char *dir);

/*
 * Check an existing path for reading: absolute, no "..", and its realpath
 * under one of dirs[0..n). On 0, real (SAM_CONFINE_DIR_CAP bytes) holds
 * the resolved path, to be opened with O_NOFOLLOW. field names the path in
 * messages ("field 'path'"). SAM_EBUSY when refused ("field 'path' must be
 * an absolute path", "... must not contain '..'", "path P is outside the
 * allowed directories"), SAM_ENOTFOUND ("no file P") when it is missing
 * inside an allowed directory.
 */
int sam_confine_read_path(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *field,
			  char *real, struct sam_error *err);

/*
 * Check a path for writing a new or existing file: absolute, no "..", a
 * final component that is a plain name (not "", "." or ".."), and a parent
 * directory that exists and whose realpath is under one of dirs[0..n).
 * The final component itself is not looked at (a symlink there is
 * replaced by a write, never followed). On 0, real (SAM_CONFINE_DIR_CAP
 * bytes, may be NULL) gets the resolved parent joined with the name.
 * SAM_EBUSY when refused; SAM_ENOTFOUND when the parent directory is
 * missing inside an allowed directory.
 */
int sam_confine_write_path(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *field,
			   char *real, struct sam_error *err);

/*
 * Write data to path (checked as by sam_confine_write_path) atomically:
 * the parent is opened component by component from the allowed directory
 * with O_NOFOLLOW (a directory swapped for a link meanwhile is refused),
 * the data goes to a new temporary file in it (O_CREAT|O_EXCL|O_NOFOLLOW),
 * is fsynced and renamed over the name, and the directory is fsynced: the
 * file is the old or the new one, never torn, and a symbolic link at the
 * name is replaced, never followed. With append, the new file starts with
 * the old one's bytes (a regular file of at most max_old bytes: more is
 * SAM_ERANGE; a link or nothing there counts as empty). An existing file
 * keeps its permission bits; a new one is 0644 (less the umask).
 * real as for sam_confine_write_path.
 */
int sam_confine_write(const char (*dirs)[SAM_CONFINE_DIR_CAP], int n, const char *path, const char *field,
		      const void *data, size_t len, bool append, size_t max_old, char *real, struct sam_error *err);

#endif
