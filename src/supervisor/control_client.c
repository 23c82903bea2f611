/*
 * control_client.c - the client side of the supervisor's control socket
 * (see supervise.h): connect to $SAM_HOME/run/samd.sock, write one command
 * line, read one JSON line back. Used by `sam up|down|status|start|stop|
 * restart`; plain POSIX, no libcurl, so the lean supervisor binary could
 * link it too.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sam/fs.h"
#include "sam/supervise.h"

/* A reply longer than this is not the supervisor talking. */
#define REPLY_MAX (1u << 20)

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE below instead */
#endif

/* Milliseconds left until deadline (a sam_now() time); -1 = no deadline. */
static int ms_left(double deadline)
{
	if (deadline <= 0) return -1;
	double left = deadline - sam_now();
	if (left <= 0) return 0;
	return left > 1e6 ? 1000000000 : (int)(left * 1000) + 1;
}

/* Wait until fd is ready for events; 0, or SAM_EIO on timeout/error (detail in err). */
static int wait_fd(int fd, short events, double deadline, double timeout_s, const char *doing,
		   struct sam_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int ms = ms_left(deadline);
		if (ms == 0) break;
		int r = poll(&p, 1, ms);
		if (r > 0) return 0;
		if (r == 0) break;
		if (errno != EINTR) return sam_errorf(err, SAM_EIO, "supervisor control socket: poll: %s", strerror(errno));
	}
	return sam_errorf(err, SAM_EIO, "the supervisor did not answer within %.1f s (%s)", timeout_s, doing);
}

/* Connect fd (non-blocking) to addr, retrying while the listen queue is full. */
static int connect_sock(int fd, const struct sockaddr_un *addr, const char *path, double deadline, double timeout_s,
			struct sam_error *err)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0) return 0;
		int e = errno;
		if (e == EINTR) continue;
		if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
			return sam_errorf(err, SAM_ENOTFOUND, "SAM is not running (no supervisor listens on %s)", path);
		if (e == EINPROGRESS) {
			/* a unix socket does not normally get here; wait and read the outcome */
			int rc = wait_fd(fd, POLLOUT, deadline, timeout_s, "connecting", err);
			if (rc) return rc;
			int soerr = 0;
			socklen_t len = sizeof soerr;
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
			if (!soerr) return 0;
			if (soerr == ECONNREFUSED || soerr == ENOENT)
				return sam_errorf(err, SAM_ENOTFOUND, "SAM is not running (no supervisor listens on %s)",
						  path);
			return sam_errorf(err, SAM_EIO, "cannot connect to %s: %s", path, strerror(soerr));
		}
		if (e == EAGAIN) { /* backlog full: the supervisor is busy; try again shortly */
			if (ms_left(deadline) == 0)
				return sam_errorf(err, SAM_EIO, "the supervisor did not accept the connection within %.1f s",
						  timeout_s);
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		return sam_errorf(err, SAM_EIO, "cannot connect to %s: %s", path, strerror(e));
	}
}

/*
 * Send cmd (one line, no '\n' in it) to the supervisor and return its reply
 * in *reply without the final newline (malloc'd; the caller frees; NULL on
 * failure). timeout_s bounds the whole exchange; <= 0 waits forever.
 * SAM_ENOTFOUND: the socket file is missing, nobody listens on it, or the
 * listener closed with this connection still queued (a supervisor exiting);
 * SAM_EINVAL: a bad command; SAM_EIO: any other failure, including no
 * answer in time or a connection closed without an answer.
 */
int sup_request(const char *cmd, char **reply, double timeout_s, struct sam_error *err)
{
	char path[1024];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	double deadline = timeout_s > 0 ? sam_now() + timeout_s : 0;
	char *buf = NULL;
	int fd = -1, rc;

	*reply = NULL;
	if (err) {
		err->code = 0;
		err->msg[0] = 0;
	}
	size_t cmd_len = strlen(cmd);
	if (!cmd_len || cmd_len >= SUP_MAX_LINE || strchr(cmd, '\n') || strchr(cmd, '\r'))
		return sam_errorf(err, SAM_EINVAL, "bad supervisor command (empty, too long or several lines)");
	if (sam_home_path(path, sizeof path, SUP_SOCK)) return sam_errorf(err, SAM_ERANGE, "SAM_HOME is too long");
	if (strlen(path) >= sizeof addr.sun_path)
		return sam_errorf(err, SAM_ERANGE, "the control socket path %s is longer than %zu bytes: use a shorter SAM_HOME",
				  path, sizeof addr.sun_path - 1);
	memcpy(addr.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) return sam_errorf(err, SAM_EIO, "socket: %s", strerror(errno));
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		rc = sam_errorf(err, SAM_EIO, "fcntl: %s", strerror(errno));
		goto fail;
	}
#ifdef SO_NOSIGPIPE
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
	if ((rc = connect_sock(fd, &addr, path, deadline, timeout_s, err))) goto fail;

	/* the command line */
	char line[SUP_MAX_LINE + 1];
	memcpy(line, cmd, cmd_len);
	line[cmd_len] = '\n';
	size_t off = 0, want = cmd_len + 1;
	while (off < want) {
		ssize_t w = send(fd, line + off, want - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR) continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((rc = wait_fd(fd, POLLOUT, deadline, timeout_s, "sending the command", err))) goto fail;
			continue;
		}
		if (errno == ECONNRESET || errno == EPIPE)
			rc = sam_errorf(err, SAM_ENOTFOUND, "SAM is not running (the supervisor closed %s)", path);
		else rc = sam_errorf(err, SAM_EIO, "sending '%s' to the supervisor: %s", cmd, strerror(errno));
		goto fail;
	}

	/* one reply line */
	size_t cap = 4096, n = 0;
	buf = xmalloc(cap);
	for (;;) {
		if (n + 1 >= cap) {
			if (cap >= REPLY_MAX) {
				rc = sam_errorf(err, SAM_EIO, "the supervisor's answer is longer than %u bytes", REPLY_MAX);
				goto fail;
			}
			buf = xrealloc(buf, cap *= 2);
		}
		ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
		if (r > 0) {
			char *nl = memchr(buf + n, '\n', (size_t)r);
			n += (size_t)r;
			if (nl) {
				n = (size_t)(nl - buf);
				break;
			}
			continue;
		}
		if (r == 0) { /* EOF: a line without its newline still counts */
			if (n) break;
			rc = sam_errorf(err, SAM_EIO, "the supervisor closed the connection without answering '%s'", cmd);
			goto fail;
		}
		if (errno == EINTR) continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if ((rc = wait_fd(fd, POLLIN, deadline, timeout_s, "waiting for the answer", err))) goto fail;
			continue;
		}
		if (errno == ECONNRESET && !n) { /* it closed its socket with us still queued: it is going away */
			rc = sam_errorf(err, SAM_ENOTFOUND, "SAM is not running (the supervisor closed %s)", path);
			goto fail;
		}
		rc = sam_errorf(err, SAM_EIO, "reading the supervisor's answer: %s", strerror(errno));
		goto fail;
	}
	while (n && buf[n - 1] == '\r') n--;
	buf[n] = 0;
	close(fd);
	*reply = buf;
	return 0;
fail:
	free(buf);
	if (fd >= 0) close(fd);
	return rc;
}
