/*
 * backend.c - how a notification reaches the user (notify.h): a desktop
 * notifier run as a child process without a shell, or a log line. The
 * platform specifics stop here: notify-send (libnotify) on Linux desktops,
 * osascript on macOS, the log everywhere else.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/fs.h"
#include "sam/notify.h"

extern char **environ;

static const char *const kind_names[] = { "auto", "notify-send", "osascript", "log", "command" };

const char *sam_notify_backend_name(const struct sam_notify_backend *b)
{
	return b->kind >= 0 && b->kind <= SAM_NOTIFY_BACKEND_COMMAND ? kind_names[b->kind] : "?";
}

static bool desktop_session(void)
{
	static const char *const vars[] = { "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS" };
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v) return true;
	}
	return false;
}

int sam_notify_backend_init(struct sam_notify_backend *b, const char *name, const char *command, double timeout,
			    struct sam_error *err)
{
	memset(b, 0, sizeof *b);
	b->timeout = timeout > 0 ? timeout : 10;
	b->kind = -1;
	for (int i = 0; i <= SAM_NOTIFY_BACKEND_COMMAND; i++)
		if (!strcmp(name ? name : "auto", kind_names[i])) b->kind = i;
	if (b->kind < 0)
		return sam_errorf(err, SAM_EINVAL,
				  "notify backend '%s' is unknown: expected auto, notify-send, osascript, log or command",
				  name);
	switch (b->kind) {
	case SAM_NOTIFY_BACKEND_AUTO:
#ifdef __APPLE__
		if (sam_find_program("osascript", b->program, sizeof b->program) == 0) {
			b->kind = SAM_NOTIFY_BACKEND_OSASCRIPT;
			break;
		}
#endif
		if (desktop_session() && sam_find_program("notify-send", b->program, sizeof b->program) == 0)
			b->kind = SAM_NOTIFY_BACKEND_NOTIFY_SEND;
		else
			b->kind = SAM_NOTIFY_BACKEND_LOG;
		break;
	case SAM_NOTIFY_BACKEND_NOTIFY_SEND:
		if (sam_find_program("notify-send", b->program, sizeof b->program) != 0)
			return sam_errorf(err, SAM_ENOTFOUND,
					  "notify backend notify-send: no notify-send on PATH (Debian: apt install "
					  "libnotify-bin), or choose backend = log");
		break;
	case SAM_NOTIFY_BACKEND_OSASCRIPT:
		if (sam_find_program("osascript", b->program, sizeof b->program) != 0)
			return sam_errorf(err, SAM_ENOTFOUND, "notify backend osascript: no osascript on PATH (it is macOS's)");
		break;
	case SAM_NOTIFY_BACKEND_COMMAND:
		if (!command || command[0] != '/')
			return sam_errorf(err, SAM_EINVAL,
					  "notify backend command needs [notify] command = an absolute path to a program "
					  "(run as PROGRAM TITLE BODY)");
		char resolved[4096];
		if (sam_find_program(command, resolved, sizeof resolved))
			return sam_errorf(err, SAM_ENOTFOUND, "[notify] command %s is not an executable file", command);
		if (snprintf(b->program, sizeof b->program, "%s", command) >= (int)sizeof b->program)
			return sam_errorf(err, SAM_ERANGE, "[notify] command is too long");
		break;
	default: break;
	}
	return 0;
}

/* "&", "<", ">" as entities: notification servers may read the body as markup. */
static void markup_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 6 < cap; s++) {
		const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
		if (e) {
			memcpy(out + o, e, strlen(e));
			o += strlen(e);
		} else {
			out[o++] = *s;
		}
	}
	out[o] = 0;
}

/* Start a child for n; false (logged, counted) when it cannot be started. */
static bool spawn(struct sam_notify_backend *b, const struct sam_notification *n, double now)
{
	static const char *const urgency[] = { "low", "normal", "critical" };
	char body[SAM_NOTIFY_BODY_MAX * 5];
	const char *argv[16];
	int k = 0;
	argv[k++] = b->program;
	if (b->kind == SAM_NOTIFY_BACKEND_NOTIFY_SEND) {
		markup_escape(n->body, body, sizeof body);
		argv[k++] = "--app-name=SAM";
		argv[k++] = "-u";
		argv[k++] = urgency[n->urgency >= 0 && n->urgency <= SAM_NOTIFY_CRITICAL ? n->urgency : 1];
		argv[k++] = "--";
		argv[k++] = n->title;
		argv[k++] = body;
	} else if (b->kind == SAM_NOTIFY_BACKEND_OSASCRIPT) {
		/* the texts go in as arguments, never into the script's source: nothing to quote */
		argv[k++] = "-e";
		argv[k++] = "on run argv";
		argv[k++] = "-e";
		argv[k++] = "display notification (item 2 of argv) with title (item 1 of argv)";
		argv[k++] = "-e";
		argv[k++] = "end run";
		argv[k++] = n->title;
		argv[k++] = n->body;
	} else {
		argv[k++] = n->title;
		argv[k++] = n->body;
	}
	argv[k] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	/* stdin from nowhere; stdout into our stderr, which is the service's log */
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* libcurl's socket to the api need not be close-on-exec: a slow notifier must not hold it open */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	/* our own signal setup (SIGPIPE ignored) is not the child's business */
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawn(&pid, b->program, &fa, &at, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		b->failed++;
		sam_log(SAM_LOG_ERROR, "notify: cannot run %s: %s (not shown: %s: %s)", b->program, strerror(rc),
			n->title, n->body);
		return false;
	}
	b->child = pid;
	b->deadline = now + b->timeout;
	b->killed = false;
	return true;
}

void sam_notify_backend_send(struct sam_notify_backend *b, const struct sam_notification *n, double now)
{
	if (b->kind == SAM_NOTIFY_BACKEND_LOG) {
		/* a warning: it is what the user must see, also with SAM_LOG=warn */
		sam_log(SAM_LOG_WARN, "notification: %s: %s", n->title, n->body);
		b->delivered++;
		return;
	}
	if (b->qlen == SAM_NOTIFY_QUEUE_MAX) {
		b->dropped++;
		sam_log(SAM_LOG_WARN, "notify: %d deliveries are waiting; dropped: %s: %s", b->qlen, n->title, n->body);
		return;
	}
	b->queue[(b->qhead + b->qlen++) % SAM_NOTIFY_QUEUE_MAX] = *n;
	sam_notify_backend_poll(b, now);
}

double sam_notify_backend_poll(struct sam_notify_backend *b, double now)
{
	if (b->child > 0) {
		int st;
		pid_t r = waitpid(b->child, &st, WNOHANG);
		if (r == 0) {
			if (now < b->deadline) return b->deadline - now;
			if (!b->killed) {
				sam_log(SAM_LOG_WARN, "notify: %s took longer than %g s: killed", b->program, b->timeout);
				kill(b->child, SIGKILL);
				b->killed = true;
			}
			return 0.05; /* SIGKILL is not ignored: it is gone within a moment */
		}
		if (r < 0 && errno == EINTR) return 0;
		if (r == b->child && !b->killed && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			b->delivered++;
		} else {
			b->failed++;
			if (r == b->child && !b->killed) {
				if (WIFEXITED(st))
					sam_log(SAM_LOG_WARN, "notify: %s exited with status %d", b->program, WEXITSTATUS(st));
				else if (WIFSIGNALED(st))
					sam_log(SAM_LOG_WARN, "notify: %s died of signal %d", b->program, WTERMSIG(st));
			}
		}
		b->child = 0;
	}
	while (b->qlen) {
		struct sam_notification *n = &b->queue[b->qhead];
		b->qhead = (b->qhead + 1) % SAM_NOTIFY_QUEUE_MAX;
		b->qlen--;
		if (spawn(b, n, now)) return b->timeout;
	}
	return -1;
}

int sam_notify_backend_pending(const struct sam_notify_backend *b)
{
	return b->qlen + (b->child > 0);
}

void sam_notify_backend_free(struct sam_notify_backend *b)
{
	if (b->child > 0) {
		kill(b->child, SIGKILL);
		while (waitpid(b->child, NULL, 0) < 0 && errno == EINTR) {
		}
		b->child = 0;
	}
	b->qlen = 0;
}
