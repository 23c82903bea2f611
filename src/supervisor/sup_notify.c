/*
 * sup_notify.c - sd_notify(3) without libsystemd: one datagram to the unix
 * socket named by $NOTIFY_SOCKET ("/path", or "@name" in the abstract
 * namespace). The supervisor sends READY=1 once the initial start-up has
 * settled, WATCHDOG=1 every WATCHDOG_USEC/2 and STOPPING=1 when it shuts
 * down. The variables are remembered here; services never see them (they
 * are not the unit's main process).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/sup.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

void sup_sd_init(struct sup *d)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	d->notify_socket[0] = 0;
	d->watchdog_interval = 0;
	if (!ns || (ns[0] != '/' && ns[0] != '@') || strlen(ns) >= sizeof d->notify_socket) return;
	snprintf(d->notify_socket, sizeof d->notify_socket, "%s", ns);
	const char *us = getenv("WATCHDOG_USEC"), *wp = getenv("WATCHDOG_PID");
	if (us && (!wp || atol(wp) == (long)getpid())) {
		double usec = strtod(us, NULL);
		if (usec > 0) d->watchdog_interval = usec / 2e6;
	}
}

void sup_sd_notify(const struct sup *d, const char *msg)
{
	const char *ns = d->notify_socket;
	if (!ns[0]) return;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	size_t l = strlen(ns);
	if (l >= sizeof sa.sun_path) return;
	memcpy(sa.sun_path, ns, l);
	if (ns[0] == '@') sa.sun_path[0] = 0; /* abstract: the length says where the name ends */
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + (ns[0] == '@' ? 0 : 1));
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0) return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		sup_log(SAM_LOG_DEBUG, "sd_notify %s: failed", msg);
	close(fd);
}
