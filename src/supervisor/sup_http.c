/*
 * sup_http.c - the supervisor's HTTP client: one non-blocking HTTP/1.0 GET
 * to a numeric local address, driven by the poll loop (connect, send the
 * request, read the status line, drain the rest until the server closes),
 * with a deadline. No libcurl: the supervisor links none of it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/sup.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define DRAIN_MAX (64 * 1024) /* body bytes read before giving up on the server closing */

enum { PH_CONNECT = 1, PH_SEND, PH_READ };

int sup_url_parse(struct sup_url *u, const char *url, struct sam_error *err)
{
	memset(u, 0, sizeof *u);
	if (strlen(url) >= sizeof u->text) return sam_errorf(err, SAM_EINVAL, "URL too long");
	snprintf(u->text, sizeof u->text, "%s", url);
	if (strncmp(url, "http://", 7))
		return sam_errorf(err, SAM_EINVAL, "'%s': expected http://HOST:PORT/PATH (or notify)", url);
	const char *h = url + 7, *hend, *rest;
	char host[64];
	if (*h == '[') {
		hend = strchr(h, ']');
		if (!hend) return sam_errorf(err, SAM_EINVAL, "'%s': unterminated [", url);
		rest = hend + 1;
		h++;
	} else {
		hend = h + strcspn(h, ":/");
		rest = hend;
	}
	if (hend == h || (size_t)(hend - h) >= sizeof host) return sam_errorf(err, SAM_EINVAL, "'%s': bad host", url);
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = 0;
	long port = 80;
	if (*rest == ':') {
		char *end;
		errno = 0;
		port = strtol(rest + 1, &end, 10);
		if (errno || end == rest + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
			return sam_errorf(err, SAM_EINVAL, "'%s': bad port", url);
		rest = end;
	}
	if (*rest && *rest != '/') return sam_errorf(err, SAM_EINVAL, "'%s': bad URL", url);
	snprintf(u->path, sizeof u->path, "%s", *rest ? rest : "/");
	if (strpbrk(u->path, " \r\n")) return sam_errorf(err, SAM_EINVAL, "'%s': spaces in the path", url);

	struct sockaddr_in *a4 = (struct sockaddr_in *)&u->addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&u->addr;
	if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((unsigned short)port);
		u->addrlen = sizeof *a4;
		snprintf(u->hostport, sizeof u->hostport, "%s:%ld", host, port);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((unsigned short)port);
		u->addrlen = sizeof *a6;
		snprintf(u->hostport, sizeof u->hostport, "[%s]:%ld", host, port);
	} else {
		return sam_errorf(err, SAM_EINVAL, "'%s': the host must be a numeric address or localhost", url);
	}
	return 0;
}

void sup_http_init(struct sup_http *h)
{
	memset(h, 0, sizeof *h);
	h->fd = -1;
}

void sup_http_cancel(struct sup_http *h)
{
	if (h->fd >= 0) close(h->fd);
	unsigned gen = h->gen;
	sup_http_init(h);
	h->gen = gen;
}

const char *sup_http_strerror(int result)
{
	switch (result) {
	case SUP_HTTP_ECONN: return "connection failed";
	case SUP_HTTP_ETIMEOUT: return "timed out";
	case SUP_HTTP_EPROTO: return "not an HTTP response";
	default: return "HTTP error";
	}
}

/* End the check with result (status or error): h is idle again. */
static int finish(struct sup_http *h, int result)
{
	sup_http_cancel(h);
	return result;
}

int sup_http_start(struct sup_http *h, const struct sup_url *u, double timeout_s, double now)
{
	sup_http_cancel(h);
	h->gen++;
	h->fd = socket(u->addr.ss_family, SOCK_STREAM, 0);
	if (h->fd < 0 || sup_fd_nonblock(h->fd)) return finish(h, SUP_HTTP_ECONN);
	h->deadline = now + timeout_s;
	int n = snprintf(h->req, sizeof h->req,
			 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: sam-supervise\r\nConnection: close\r\n\r\n",
			 u->path, u->hostport);
	if (n < 0 || (size_t)n >= sizeof h->req) return finish(h, SUP_HTTP_EPROTO);
	h->req_len = (size_t)n;
	if (connect(h->fd, (const struct sockaddr *)&u->addr, u->addrlen) == 0) {
		h->phase = PH_SEND;
	} else if (errno == EINPROGRESS || errno == EINTR) {
		h->phase = PH_CONNECT;
	} else {
		return finish(h, SUP_HTTP_ECONN);
	}
	return SUP_HTTP_PENDING;
}

short sup_http_events(const struct sup_http *h)
{
	return h->phase == PH_READ ? POLLIN : POLLOUT;
}

/* Read what is there; returns a final result or PENDING. */
static int do_read(struct sup_http *h)
{
	char buf[4096];
	for (;;) {
		ssize_t r = recv(h->fd, buf, sizeof buf, 0);
		if (r < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) return SUP_HTTP_PENDING;
			return finish(h, h->status ? h->status : SUP_HTTP_ECONN);
		}
		if (r == 0) return finish(h, h->status ? h->status : SUP_HTTP_EPROTO);
		size_t off = 0;
		if (!h->status) {
			/* collect the status line: "HTTP/1.x NNN reason" */
			while (off < (size_t)r && h->head_len < sizeof h->head - 1 && buf[off] != '\n')
				h->head[h->head_len++] = buf[off++];
			h->head[h->head_len] = 0;
			if (off < (size_t)r && buf[off] == '\n') {
				int code = 0;
				if (strncmp(h->head, "HTTP/1.", 7) || sscanf(h->head + 8, " %3d", &code) != 1 ||
				    code < 100 || code > 599)
					return finish(h, SUP_HTTP_EPROTO);
				h->status = code;
			} else if (h->head_len >= sizeof h->head - 1) {
				return finish(h, SUP_HTTP_EPROTO);
			}
		}
		h->drained += (size_t)r - off;
		if (h->status && h->drained > DRAIN_MAX) return finish(h, h->status);
	}
}

int sup_http_step(struct sup_http *h, short revents, double now)
{
	if (h->fd < 0) return SUP_HTTP_ECONN;
	if (revents && h->phase == PH_CONNECT) {
		int e = 0;
		socklen_t l = sizeof e;
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0 || e) return finish(h, SUP_HTTP_ECONN);
		h->phase = PH_SEND;
	}
	if (revents && h->phase == PH_SEND) {
		while (h->req_off < h->req_len) {
			ssize_t w = send(h->fd, h->req + h->req_off, h->req_len - h->req_off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR) continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
			if (w <= 0) return finish(h, SUP_HTTP_ECONN);
			h->req_off += (size_t)w;
		}
		if (h->req_off == h->req_len) h->phase = PH_READ;
	} else if (revents && h->phase == PH_READ) {
		int rc = do_read(h);
		if (rc != SUP_HTTP_PENDING) return rc;
	}
	if (now >= h->deadline) return finish(h, h->status ? h->status : SUP_HTTP_ETIMEOUT);
	return SUP_HTTP_PENDING;
}
