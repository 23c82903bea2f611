/*
 * adapters.c - the adapters directory and its "current" link (see adapters.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/adapters.h"
#include "sam/client.h"
#include "sam/fs.h"

bool sam_adapter_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > SAM_ADAPTER_ID_MAX || id[0] == '.') return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

static int dir_path(char *buf, size_t cap, const char *rel, struct sam_error *err)
{
	char r[SAM_ADAPTER_ID_MAX + 64];
	snprintf(r, sizeof r, "adapters%s%s", rel ? "/" : "", rel ? rel : "");
	if (sam_home_path(buf, cap, r)) return sam_errorf(err, SAM_ERANGE, "SAM_HOME path too long");
	return 0;
}

int sam_adapter_path(const char *id, char *buf, size_t cap, struct sam_error *err)
{
	if (!sam_adapter_id_ok(id)) return sam_errorf(err, SAM_EINVAL, "'%s' is not an adapter id", id ? id : "");
	char name[SAM_ADAPTER_ID_MAX + 8];
	snprintf(name, sizeof name, "%s.gguf", id);
	return dir_path(buf, cap, name, err);
}

/* Point "current" at <id>.gguf: a new link under a temporary name, renamed over the old. */
static int switch_current(const char *id, struct sam_error *err)
{
	char cur[4096], tmp[4200], target[SAM_ADAPTER_ID_MAX + 8];
	int rc = dir_path(cur, sizeof cur, "current", err);
	if (rc) return rc;
	static atomic_uint seq; /* two threads of one process switching at once need two names */
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", cur, (long)getpid(), atomic_fetch_add(&seq, 1));
	snprintf(target, sizeof target, "%s.gguf", id);
	unlink(tmp);
	if (symlink(target, tmp) != 0) return sam_errorf(err, SAM_EIO, "%s: %s", tmp, strerror(errno));
	if (rename(tmp, cur) != 0) {
		rc = sam_errorf(err, SAM_EIO, "%s: %s", cur, strerror(errno));
		unlink(tmp);
		return rc;
	}
	return sam_fsync_parent(cur, err);
}

int sam_adapters_use(const char *id, struct sam_error *err)
{
	char path[4096];
	int rc = sam_adapter_path(id, path, sizeof path, err);
	if (rc) return rc;
	if (access(path, R_OK) != 0) return sam_errorf(err, SAM_ENOTFOUND, "there is no adapter '%s' (%s)", id, path);
	return switch_current(id, err);
}

static int copy_atomic(const char *src, const char *dst, struct sam_error *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) return sam_errorf(err, SAM_EIO, "%s: %s", src, strerror(errno));
	struct sam_afile af;
	int rc = sam_afile_open(&af, dst, 0644, err);
	if (rc) {
		close(in);
		return rc;
	}
	char buf[1 << 16];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && sam_write_all(af.fd, buf, (size_t)n)) break;
	int e = errno;
	close(in);
	if (n != 0) {
		sam_afile_abort(&af);
		return sam_errorf(err, SAM_EIO, "copying %s to %s: %s", src, dst, strerror(e));
	}
	return sam_afile_commit(&af, err);
}

int sam_adapters_deploy(const char *src, const char *id, struct sam_error *err)
{
	char dst[4096];
	int rc = sam_adapter_path(id, dst, sizeof dst, err);
	if (rc) return rc;
	char dir[4096];
	if ((rc = dir_path(dir, sizeof dir, NULL, err)) || (rc = sam_mkdirs(dir, err))) return rc;
	if ((rc = copy_atomic(src, dst, err))) return rc;
	return switch_current(id, err);
}

int sam_adapters_off(struct sam_error *err)
{
	char cur[4096];
	int rc = dir_path(cur, sizeof cur, "current", err);
	if (rc) return rc;
	if (unlink(cur) != 0) return errno == ENOENT ? 0 : sam_errorf(err, SAM_EIO, "%s: %s", cur, strerror(errno));
	return sam_fsync_parent(cur, err);
}

int sam_adapters_current(char *id, size_t cap, char *path, size_t pcap, struct sam_error *err)
{
	char cur[4096], target[256];
	int rc = dir_path(cur, sizeof cur, "current", err);
	if (rc) return rc;
	ssize_t n = readlink(cur, target, sizeof target - 1);
	if (n < 0) {
		if (errno == ENOENT) return sam_errorf(err, SAM_ENOTFOUND, "no adapter is in use");
		return sam_errorf(err, SAM_EIO, "%s: %s", cur, strerror(errno));
	}
	target[n] = '\0';
	size_t len = strlen(target);
	if (len < 6 || strcmp(target + len - 5, ".gguf") || strchr(target, '/'))
		return sam_errorf(err, SAM_EFORMAT, "%s points at '%s', not an adapter in the directory", cur, target);
	target[len - 5] = '\0';
	if (!sam_adapter_id_ok(target) || strlen(target) >= cap)
		return sam_errorf(err, SAM_EFORMAT, "%s points at a bad adapter id '%s'", cur, target);
	char full[4096];
	if ((rc = sam_adapter_path(target, full, sizeof full, err))) return rc;
	if (access(full, R_OK) != 0) /* not "none": a broken deployment must not pass for "no adapter" */
		return sam_errorf(err, SAM_EFORMAT, "the current adapter '%s' is gone (%s)", target, full);
	snprintf(id, cap, "%s", target);
	if (path && snprintf(path, pcap, "%s", full) >= (int)pcap) return sam_errorf(err, SAM_ERANGE, "path too long");
	return 0;
}

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct sam_adapter_info *)a)->id, ((const struct sam_adapter_info *)b)->id);
}

int sam_adapters_list(struct sam_adapter_info **out, size_t *n, struct sam_error *err)
{
	*out = NULL;
	*n = 0;
	char dir[4096], cur[SAM_ADAPTER_ID_MAX + 1] = "";
	int rc = dir_path(dir, sizeof dir, NULL, err);
	if (rc) return rc;
	struct sam_error ignore;
	if (sam_adapters_current(cur, sizeof cur, NULL, 0, &ignore)) cur[0] = '\0';
	DIR *d = opendir(dir);
	if (!d) return errno == ENOENT ? 0 : sam_errorf(err, SAM_EIO, "%s: %s", dir, strerror(errno));
	size_t cap = 0;
	struct dirent *ent;
	while ((ent = readdir(d))) {
		size_t len = strlen(ent->d_name);
		if (len < 6 || strcmp(ent->d_name + len - 5, ".gguf") || len - 5 > SAM_ADAPTER_ID_MAX) continue;
		struct sam_adapter_info a = { 0 };
		memcpy(a.id, ent->d_name, len - 5);
		if (!sam_adapter_id_ok(a.id)) continue;
		char full[4400];
		struct stat st;
		snprintf(full, sizeof full, "%s/%s", dir, ent->d_name);
		if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
		a.size = (int64_t)st.st_size;
		a.mtime = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
		a.current = !strcmp(a.id, cur);
		*out = sam_grow(*out, &cap, *n + 1, sizeof **out);
		(*out)[(*n)++] = a;
	}
	closedir(d);
	if (*n) qsort(*out, *n, sizeof **out, by_id);
	return 0;
}

int sam_adapters_reload_api(struct sam_api_reload *out, struct sam_error *err)
{
	struct sam_client c;
	memset(out, 0, sizeof *out);
	int rc = sam_client_init(&c, NULL, err);
	if (rc) return rc;
	c.timeout_ms = 60000; /* loading an adapter is quick, but the api may be busy */
	json_t *body = json_object(), *resp = NULL;
	rc = sam_client_json(&c, "/api/adapters/reload", body, &resp, err);
	json_decref(body);
	out->reached = !c.unreachable;
	out->status = c.status;
	if (!rc) {
		const char *id = json_string_value(json_object_get(resp, "adapter"));
		snprintf(out->adapter, sizeof out->adapter, "%s", id ? id : "");
	} else if (c.status == 503) {
		out->later = true;
		snprintf(out->message, sizeof out->message, "%s", err->msg);
		rc = 0;
	} else if (!out->reached) {
		rc = 0;
	}
	json_decref(resp);
	sam_client_free(&c);
	return rc;
}

int sam_adapters_reload_or_revert(const char *prev, struct sam_api_reload *out, struct sam_error *err)
{
	int rc = sam_adapters_reload_api(out, err);
	if (!rc || out->status != 409) return rc;
	snprintf(out->message, sizeof out->message, "%s", err->msg);
	int rc2 = prev ? sam_adapters_use(prev, err) : sam_adapters_off(err);
	if (rc2) return rc2;
	out->reverted = true;
	snprintf(err->msg, sizeof err->msg, "%s", out->message);
	return rc;
}

int sam_adapters_notify_api(bool *reached, struct sam_error *err)
{
	struct sam_api_reload r;
	int rc = sam_adapters_reload_api(&r, err);
	*reached = r.reached;
	return rc;
}
