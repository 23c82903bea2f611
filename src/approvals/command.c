/*
 * command.c - running an approved command: no shell, its own session and
 * process group (so the timeout can kill everything it started), stdin
 * /dev/null, stdout and stderr read through pipes with poll() so neither
 * can fill up and block it, and only the first bytes of each kept.
 *
 * The caller may be a multi-threaded server: between fork() and exec()
 * the child only makes async-signal-safe calls, which is why the program
 * is looked up in PATH before forking (execv, not execvp) and every
 * descriptor is created close-on-exec.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "approvals/approvals_int.h"
#include "sam/fs.h"

#define GRACE_S 1.0 /* after the command exits: how long what it left behind may keep the pipes open */

/* In the child: tell the parent why we could not start (stage 'c' chdir, 'x' exec), and die. */
static _Noreturn void child_fail(int fd, char stage, int e)
{
	char msg[1 + sizeof e];
	msg[0] = stage;
	memcpy(msg + 1, &e, sizeof e);
	ssize_t w = write(fd, msg, sizeof msg);
	(void)w;
	_exit(127);
}

static _Noreturn void child(const char *prog, char *const *argv, const char *cwd, int devnull, int out, int errw,
			    int report, long maxfd)
{
	setsid();
	/* a server blocks and ignores signals for itself; ignored ones would survive exec */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
	/* first out of the way of 0..3 (a server may have started with some of them closed) */
	int fds[4] = { devnull, out, errw, report };
	for (int i = 0; i < 4; i++)
		if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0) child_fail(report, 'x', errno);
	/* then into place: 0..2 inherited, the report pipe at 3 close-on-exec, nothing else */
	for (int i = 0; i < 4; i++)
		if (dup2(fds[i], i) < 0) child_fail(fds[3], 'x', errno);
	report = 3;
	fcntl(report, F_SETFD, FD_CLOEXEC);
#if defined(__linux__) && defined(SYS_close_range)
	if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
#endif
		for (long fd = 4; fd < maxfd; fd++) close((int)fd);
	if (cwd && chdir(cwd) != 0) child_fail(report, 'c', errno);
	execv(prog, argv);
	child_fail(report, 'x', errno);
}

/* One captured stream. */
struct stream {
	int fd; /* -1 at EOF */
	char *buf;
	size_t len, total, keep;
};

static void drain(struct stream *s)
{
	char chunk[16384];
	ssize_t got = read(s->fd, chunk, sizeof chunk);
	if (got < 0 && (errno == EINTR || errno == EAGAIN)) return;
	if (got <= 0) {
		close(s->fd);
		s->fd = -1;
		return;
	}
	size_t n = (size_t)got, room = s->keep - s->len;
	memcpy(s->buf + s->len, chunk, n < room ? n : room);
	s->len += n < room ? n : room;
	s->total += n;
}

/* Read both streams until the command ends (or the timeout), then reap it; fills r. */
static void supervise(pid_t pid, struct stream *st, double timeout_s, struct appr_cmd_result *r)
{
	double t0 = sam_now(), deadline = t0 + timeout_s, drain_end = 0;
	bool reaped = false;
	int status = 0;
	for (;;) {
		double now = sam_now();
		if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
			reaped = true;
			drain_end = now + GRACE_S;
		}
		if (!reaped && now >= deadline) {
			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
			}
			reaped = true;
			r->timed_out = true;
			drain_end = now + GRACE_S;
		}
		bool open = st[0].fd >= 0 || st[1].fd >= 0;
		if (reaped && (!open || now >= drain_end)) {
			/* pipes still open: something it started lives on in its group */
			if (open) kill(-pid, SIGKILL);
			break;
		}
		double wait = (reaped ? drain_end : deadline) - now;
		int ms = wait > 0.1 ? 100 : wait < 0.001 ? 1 : (int)(wait * 1000);
		struct pollfd pf[2];
		int n = 0;
		for (int i = 0; i < 2; i++)
			if (st[i].fd >= 0) pf[n++] = (struct pollfd){ .fd = st[i].fd, .events = POLLIN };
		if (poll(pf, (nfds_t)n, ms) <= 0) continue;
		for (int i = 0, k = 0; i < 2; i++) {
			if (st[i].fd < 0) continue;
			if (pf[k++].revents) drain(&st[i]);
		}
	}
	for (int i = 0; i < 2; i++)
		if (st[i].fd >= 0) close(st[i].fd);
	r->seconds = sam_now() - t0;
	r->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

int appr_run_command(char *const *argv, const char *cwd, double timeout_s, size_t keep, struct appr_cmd_result *r,
		     struct sam_error *err)
{
	memset(r, 0, sizeof *r);
	char prog[PATH_MAX];
	if (sam_find_program(argv[0], prog, sizeof prog))
		return sam_errorf(err, SAM_ENOTFOUND, "command '%.200s' %s", argv[0],
				  errno == ENOENT ? (strchr(argv[0], '/') ? "does not exist" : "was not found in PATH")
						  : "is not an executable file");
	int rc;
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, rep[2] = { -1, -1 }, devnull = -1;
	struct stream st[2] = { { .fd = -1, .keep = keep }, { .fd = -1, .keep = keep } };
	if (!(st[0].buf = malloc(keep + 1)) || !(st[1].buf = malloc(keep + 1))) {
		rc = sam_errorf(err, SAM_ENOMEM, "out of memory");
		goto fail;
	}
	if (sam_pipe_cloexec(po) || sam_pipe_cloexec(pe) || sam_pipe_cloexec(rep) ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		rc = sam_errorf(err, SAM_EIO, "cannot start %s: %s", prog, strerror(errno));
		goto fail;
	}
	long maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
	pid_t pid = fork();
	if (pid < 0) {
		rc = sam_errorf(err, SAM_EIO, "cannot start %s: fork: %s", prog, strerror(errno));
		goto fail;
	}
	if (pid == 0) child(prog, argv, cwd, devnull, po[1], pe[1], rep[1], maxfd);
	close(po[1]), close(pe[1]), close(rep[1]), close(devnull);
	po[1] = pe[1] = rep[1] = devnull = -1;
	/* the report pipe closes at a successful exec, or brings the errno of a failed one */
	char msg[1 + sizeof(int)];
	ssize_t got;
	while ((got = read(rep[0], msg, sizeof msg)) < 0 && errno == EINTR) {
	}
	close(rep[0]);
	rep[0] = -1;
	if (got == (ssize_t)sizeof msg) {
		int e;
		memcpy(&e, msg + 1, sizeof e);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
		}
		if (msg[0] == 'c') rc = sam_errorf(err, SAM_EIO, "cannot change to directory %s: %s", cwd, strerror(e));
		else rc = sam_errorf(err, e == ENOENT ? SAM_ENOTFOUND : SAM_EIO, "cannot run %s: %s", prog, strerror(e));
		goto fail;
	}
	st[0].fd = po[0], st[1].fd = pe[0];
	po[0] = pe[0] = -1;
	supervise(pid, st, timeout_s, r);
	st[0].buf[st[0].len] = st[1].buf[st[1].len] = 0;
	r->out = st[0].buf, r->out_len = st[0].len, r->out_total = st[0].total;
	r->err = st[1].buf, r->err_len = st[1].len, r->err_total = st[1].total;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0) close(po[i]);
		if (pe[i] >= 0) close(pe[i]);
		if (rep[i] >= 0) close(rep[i]);
		free(st[i].buf);
	}
	if (devnull >= 0) close(devnull);
	return rc;
}

void appr_cmd_result_free(struct appr_cmd_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}
