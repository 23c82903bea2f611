/*
 * sup_ctl.c - the control socket, $SAM_HOME/run/samd.sock (protocol in
 * include/sam/supervise.h): one command line in, one JSON line out, then
 * the connection is closed. Clients are non-blocking slots of the poll
 * loop with a deadline, so a stuck client never stalls the supervisor.
 *
 * One supervisor per SAM_HOME: run/samd.lock is flock()ed for the
 * supervisor's lifetime (never removed, it is only a lock), and a socket
 * that still answers is never taken over.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "sam/fs.h"
#include "supervisor/sup.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define CLIENT_TIMEOUT 5.0 /* seconds a client has to send its line and take the reply */

static int sock_addr(const struct sup *d, struct sockaddr_un *sa, struct sam_error *err)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/samd.sock", d->run_dir);
	if (n < 0 || (size_t)n >= sizeof sa->sun_path)
		return sam_errorf(err, SAM_ERANGE, "%s/samd.sock: path too long for a unix socket (%zu bytes max)",
				  d->run_dir, sizeof sa->sun_path - 1);
	return 0;
}

/* pid of a supervisor answering on the socket, 0 if none answers. */
static long ping_existing(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) return 0;
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	long pid = 0;
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0) {
		pid = -1; /* something answers */
		char buf[512];
		ssize_t r = 0;
		if (send(fd, "ping\n", 5, MSG_NOSIGNAL) == 5) r = recv(fd, buf, sizeof buf - 1, 0);
		if (r > 0) {
			buf[r] = 0;
			const char *p = strstr(buf, "\"pid\":");
			if (p) pid = atol(p + 6);
		}
	}
	close(fd);
	return pid;
}

static long pid_from_file(const struct sup *d)
{
	char path[1200], buf[32] = "";
	snprintf(path, sizeof path, "%s/samd.pid", d->run_dir);
	FILE *f = fopen(path, "re");
	if (!f) return 0;
	if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
	fclose(f);
	return atol(buf);
}

int sup_ctl_listen(struct sup *d, struct sam_error *err)
{
	struct sockaddr_un sa;
	int rc = sock_addr(d, &sa, err);
	if (rc) return rc;
	char lock[1200];
	snprintf(lock, sizeof lock, "%s/samd.lock", d->run_dir);
	d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) return sam_errorf(err, SAM_EIO, "%s: %s", lock, strerror(errno));
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		long pid = ping_existing(&sa);
		if (pid <= 0) pid = pid_from_file(d);
		if (pid > 0)
			return sam_errorf(err, SAM_EINVAL, "another supervisor is already running for %s (pid %ld)",
					  sam_home(), pid);
		return sam_errorf(err, SAM_EINVAL, "another supervisor is already running for %s (%s is locked)",
				  sam_home(), lock);
	}
	long other = ping_existing(&sa);
	if (other)
		return other > 0 ? sam_errorf(err, SAM_EINVAL, "another supervisor is already running for %s (pid %ld)",
					      sam_home(), other)
				 : sam_errorf(err, SAM_EINVAL, "%s is in use by another program", sa.sun_path);
	unlink(sa.sun_path); /* stale: nobody answers */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) return sam_errorf(err, SAM_EIO, "socket: %s", strerror(errno));
	mode_t old = umask(077); /* the socket is the user's only: mode 0600 */
	int b = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	int e = errno;
	umask(old);
	if (b != 0 || listen(fd, 16) != 0 || sup_fd_nonblock(fd) != 0) {
		if (b == 0) e = errno;
		close(fd);
		return sam_errorf(err, SAM_EIO, "%s: %s", sa.sun_path, strerror(e));
	}
	d->listen_fd = fd;
	return 0;
}

void sup_ctl_unlisten(struct sup *d)
{
	struct sockaddr_un sa;
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		d->listen_fd = -1;
		if (sock_addr(d, &sa, NULL) == 0) unlink(sa.sun_path);
	}
	for (int i = 0; i < SUP_MAX_CLIENTS; i++) sup_ctl_close(&d->clients[i]);
	if (d->lock_fd >= 0) close(d->lock_fd); /* releases the lock */
	d->lock_fd = -1;
}

void sup_ctl_close(struct sup_client *c)
{
	if (c->fd >= 0) close(c->fd);
	free(c->out);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

/* ---- commands --------------------------------------------------------------------- */

static char *reply(json_t *o)
{
	char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!t) return xstrdup("{\"ok\":false,\"error\":\"out of memory\"}\n");
	size_t l = strlen(t);
	char *out = xmalloc(l + 2);
	memcpy(out, t, l);
	memcpy(out + l, "\n", 2);
	free(t);
	return out;
}

static char *reply_error(const char *fmt, const char *arg)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, arg);
	json_t *o = json_object();
	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "error", json_string(msg));
	return reply(o);
}

char *sup_ctl_command(struct sup *d, const char *line)
{
	char cmd[32] = "", name[SUP_MAX_LINE] = "", extra[8] = "";
	int n = sscanf(line, "%31s %4095s %7s", cmd, name, extra);
	if (n <= 0) return reply_error("empty command%s", "");
	if (!strcmp(cmd, "ping") && n == 1) {
		json_t *o = json_object();
		json_object_set_new(o, "ok", json_true());
		json_object_set_new(o, "pid", json_integer(getpid()));
		json_object_set_new(o, "version", json_string(SAM_VERSION));
		return reply(o);
	}
	if (!strcmp(cmd, "status") && n == 1) return sup_status_json(d);
	if (!strcmp(cmd, "shutdown") && n == 1) {
		sup_log(SAM_LOG_INFO, "shutdown requested on the control socket");
		d->shutting_down = true;
		json_t *o = json_object();
		json_object_set_new(o, "ok", json_true());
		return reply(o);
	}
	int ev = !strcmp(cmd, "start") ? SUP_EV_START : !strcmp(cmd, "stop") ? SUP_EV_STOP
						      : !strcmp(cmd, "restart") ? SUP_EV_RESTART : -1;
	if (ev < 0) return reply_error("unknown command '%s' (ping, status, start, stop, restart, shutdown)", cmd);
	if (n != 2) return reply_error("usage: %s NAME", cmd);
	struct sup_service *s = sup_find(d, name);
	if (!s) return reply_error("unknown service '%s'", name);
	if (d->shutting_down) return reply_error("the supervisor is shutting down%s", "");
	if (s->state == SUP_DISABLED && ev != SUP_EV_STOP)
		return reply_error("service '%s' is disabled (set enabled = true in its [service.NAME] section)",
				   s->name);
	sup_log(SAM_LOG_INFO, "%s: '%s' requested on the control socket", s->name, cmd);
	sup_dispatch(d, s, ev);
	json_t *o = json_object();
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "state", json_string(sup_state_name(s->state)));
	return reply(o);
}

/* ---- connections ---------------------------------------------------------------------- */

void sup_ctl_accept(struct sup *d)
{
	for (;;) {
		int fd = accept(d->listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR) continue;
			return; /* EAGAIN, or a transient error: poll tells us again */
		}
		sup_fd_nonblock(fd);
		struct sup_client *c = NULL;
		for (int i = 0; i < SUP_MAX_CLIENTS && !c; i++)
			if (d->clients[i].fd < 0) c = &d->clients[i];
		if (!c) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many connections\"}\n";
			if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL) < 0) {
			}
			close(fd);
			continue;
		}
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->deadline = sam_now() + CLIENT_TIMEOUT;
	}
}

void sup_ctl_io(struct sup *d, struct sup_client *c, short revents, double now)
{
	if (c->fd < 0) return;
	if (!c->out && (revents & (POLLIN | POLLHUP | POLLERR))) {
		bool eof = false;
		for (;;) {
			ssize_t r = recv(c->fd, c->in + c->in_len, SUP_MAX_LINE - c->in_len, 0);
			if (r < 0 && errno == EINTR) continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
			if (r <= 0) {
				eof = true;
				break;
			}
			c->in_len += (size_t)r;
			if (memchr(c->in, '\n', c->in_len) || c->in_len == SUP_MAX_LINE) break;
		}
		c->in[c->in_len] = 0;
		char *nl = memchr(c->in, '\n', c->in_len);
		if (nl) {
			*nl = 0;
			if (nl > c->in && nl[-1] == '\r') nl[-1] = 0;
			c->out = sup_ctl_command(d, c->in);
		} else if (c->in_len == SUP_MAX_LINE) {
			c->out = reply_error("command longer than %s bytes", "4096");
		} else if (eof) {
			if (!c->in_len) {
				sup_ctl_close(c);
				return;
			}
			c->out = sup_ctl_command(d, c->in); /* a last line without its newline */
		}
		if (c->out) {
			c->out_len = strlen(c->out);
			c->out_off = 0;
			revents |= POLLOUT;
		}
	}
	if (c->out && (revents & (POLLOUT | POLLERR | POLLHUP))) {
		while (c->out_off < c->out_len) {
			ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR) continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
			if (w <= 0) {
				sup_ctl_close(c);
				return;
			}
			c->out_off += (size_t)w;
		}
		if (c->out_off == c->out_len) {
			sup_ctl_close(c);
			return;
		}
	}
	if (now >= c->deadline) sup_ctl_close(c);
}
