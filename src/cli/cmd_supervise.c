/*
 * cmd_supervise.c - `sam supervise [--foreground]`: become the supervisor.
 * The supervisor is its own lean binary, sam-supervise, installed next to
 * sam; this command exec()s it (same pid, same arguments), so the big
 * multi-call binary never stays resident as the supervisor.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/core.h"

#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

/* Path of sam-supervise in the directory of the running sam binary, or "" if unknown. */
static void sibling_path(char *out, size_t cap)
{
	char self[PATH_MAX] = "";
#if defined(__linux__)
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
#elif defined(__APPLE__)
	char raw[PATH_MAX];
	uint32_t sz = sizeof raw;
	if (_NSGetExecutablePath(raw, &sz) != 0 || !realpath(raw, self)) self[0] = 0;
#endif
	char *slash = strrchr(self, '/');
	if (!slash) {
		out[0] = 0;
		return;
	}
	*slash = 0;
	snprintf(out, cap, "%s/sam-supervise", self);
}

int cmd_supervise(int argc, char **argv)
{
	char path[PATH_MAX + 32];
	sibling_path(path, sizeof path);
	char **args = xcalloc((size_t)argc + 1, sizeof *args);
	for (int i = 1; i < argc; i++) args[i] = argv[i];
	if (path[0] && access(path, X_OK) == 0) {
		args[0] = path;
		execv(path, args);
		fprintf(stderr, "sam supervise: cannot run %s: %s\n", path, strerror(errno));
		free(args);
		return 1;
	}
	args[0] = "sam-supervise"; /* not installed side by side: try $PATH */
	execvp(args[0], args);
	fprintf(stderr, "sam supervise: sam-supervise is neither next to sam%s%s%s nor in $PATH: %s\n",
		path[0] ? " (" : "", path, path[0] ? ")" : "", strerror(errno));
	free(args);
	return 1;
}
