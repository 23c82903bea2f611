/*
 * cmd_down.c - `sam down [--timeout S]`: ask the supervisor to stop every
 * service and exit, then wait until its process and its control socket
 * are gone.
 *
 * Exit status: 0 stopped, or nothing was running ("SAM is not running" on
 * stderr); 1 on an error or when it is still there after the timeout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "sam/core.h"
#include "sam/fs.h"
#include "sam/supervise.h"

#define DEFAULT_TIMEOUT_S 60.0

/* True while pid runs (a zombie nobody reaps counts as gone). */
static bool pid_alive(pid_t pid)
{
	if (kill(pid, 0) != 0 && errno != EPERM) return false;
#ifdef __linux__
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f) return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* "pid (comm) S ..." */
	if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X')) return false;
#endif
	return true;
}

/* True when nobody listens on the control socket any more (file gone, or a stale file). */
static bool socket_gone(const char *sock)
{
	struct stat st;
	if (stat(sock, &st) != 0) return true;
	char *reply;
	struct sam_error err;
	int rc = sup_request("ping", &reply, 0.5, &err);
	if (!rc) free(reply);
	return rc == SAM_ENOTFOUND;
}

int cmd_down(int argc, char **argv)
{
	double timeout_s = DEFAULT_TIMEOUT_S;
	int usage = cli_sup_timeout_opts("down", argc, argv, &timeout_s);
	if (usage) return usage;

	struct sam_error err;
	json_t *r;
	int rc = cli_sup_call("ping", &r, 5.0, &err);
	if (rc == SAM_ENOTFOUND) {
		fprintf(stderr, "SAM is not running\n");
		return 0;
	}
	if (rc) {
		fprintf(stderr, "sam down: %s\n", err.msg);
		return 1;
	}
	pid_t pid = (pid_t)json_integer_value(json_object_get(r, "pid"));
	json_decref(r);

	double t0 = sam_now();
	rc = cli_sup_call("shutdown", &r, 10.0, &err);
	if (rc == SAM_EINVAL) { /* it answered, and said no */
		fprintf(stderr, "sam down: %s\n", err.msg);
		return 1;
	}
	json_decref(r);
	/* SAM_ENOTFOUND / SAM_EIO here: it may already be on its way out; the wait tells */
	bool tty = isatty(STDERR_FILENO);
	if (tty) fprintf(stderr, "Stopping SAM (supervisor pid %d)", (int)pid);
	char sock[1100];
	if (sam_home_path(sock, sizeof sock, SUP_SOCK)) {
		fprintf(stderr, "sam down: SAM_HOME is too long\n");
		return 1;
	}
	double next_dot = t0 + 1;
	for (;;) {
		bool gone = pid <= 0 || !pid_alive(pid);
		if (gone && socket_gone(sock)) break;
		double now = sam_now();
		if (now - t0 > timeout_s) {
			if (tty) fputc('\n', stderr);
			if (rc) fprintf(stderr, "sam down: asking the supervisor to shut down: %s\n", err.msg);
			if (!gone)
				fprintf(stderr, "sam down: the supervisor (pid %d) is still running after %.0f s\n", (int)pid,
					timeout_s);
			else fprintf(stderr, "sam down: the supervisor is gone but %s still answers\n", sock);
			return 1;
		}
		if (tty && now > next_dot) {
			fputc('.', stderr);
			next_dot = now + 1;
		}
		usleep(50 * 1000);
	}
	if (tty) fputc('\n', stderr);
	printf("SAM is stopped (%.1f s)\n", sam_now() - t0);
	return 0;
}
