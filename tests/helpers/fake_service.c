/*
 * fake_service.c - a tiny service for the supervisor's tests: a one-request-
 * at-a-time HTTP/1.0 server on 127.0.0.1 (its own socket code, so it stays
 * tiny) whose behaviour the test chooses:
 *
 *   --name NAME              name in marks (default $SAM_SERVICE, else "fake")
 *   --port N                 serve HTTP: 200 "ok" on any GET ...
 *   --ready-after S          ... but 503 until S seconds after start
 *   --fail-health-after S    ... and 500 from S seconds after start on
 *   --crash-after S          exit 3 after S seconds
 *   --exit-after S           exit 0 after S seconds
 *   --ignore-term            SIGTERM is noted (mark "term-ignored") and ignored
 *   --notify                 write "\n" to fd $SAM_NOTIFY_FD once ready
 *   --grandchild             fork a child that sleeps in the same process group
 *   --print-lines N          write N lines of 100 characters to stdout at start
 *   --mark FILE              append "NAME EVENT PID TIME" lines (events: started,
 *                            ready, term, term-ignored, grandchild, exit,
 *                            saw-notify-socket) with
 *                            TIME in seconds since the epoch
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *name = "fake", *mark_file;
static volatile sig_atomic_t got_term;

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void mark(const char *event, long pid)
{
	if (!mark_file) return;
	char line[256];
	int n = snprintf(line, sizeof line, "%s %s %ld %.6f\n", name, event, pid, wall());
	int fd = open(mark_file, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0) return;
	if (write(fd, line, (size_t)n) < 0) perror("fake_service: mark");
	close(fd);
}

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { 0 };
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16)) {
		fprintf(stderr, "fake_service %s: port %d: %s\n", name, port, strerror(errno));
		exit(4);
	}
	return fd;
}

static void serve_one(int lfd, int status)
{
	int c = accept(lfd, NULL, NULL);
	if (c < 0) return;
	struct timeval tv = { 1, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char req[2048];
	size_t n = 0;
	while (n < sizeof req - 1) {
		ssize_t r = read(c, req + n, sizeof req - 1 - n);
		if (r <= 0) break;
		n += (size_t)r;
		req[n] = 0;
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
	}
	const char *reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Internal Server Error";
	char resp[256];
	int l = snprintf(resp, sizeof resp, "HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
			 "Connection: close\r\n\r\n%s\n", status, reason, status == 200 ? "ok" : "no");
	if (write(c, resp, (size_t)l) < 0) {
	}
	close(c);
}

int main(int argc, char **argv)
{
	int port = 0, print_lines = 0;
	double ready_after = 0, fail_after = -1, crash_after = -1, exit_after = -1;
	bool ignore_term = false, notify = false, grandchild = false;
	if (getenv("SAM_SERVICE")) name = getenv("SAM_SERVICE");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--ignore-term")) ignore_term = true;
		else if (!strcmp(a, "--notify")) notify = true;
		else if (!strcmp(a, "--grandchild")) grandchild = true;
		else if (!v) {
			fprintf(stderr, "fake_service: bad argument %s\n", a);
			return 2;
		} else {
			i++;
			if (!strcmp(a, "--name")) name = v;
			else if (!strcmp(a, "--port")) port = atoi(v);
			else if (!strcmp(a, "--ready-after")) ready_after = atof(v);
			else if (!strcmp(a, "--fail-health-after")) fail_after = atof(v);
			else if (!strcmp(a, "--crash-after")) crash_after = atof(v);
			else if (!strcmp(a, "--exit-after")) exit_after = atof(v);
			else if (!strcmp(a, "--print-lines")) print_lines = atoi(v);
			else if (!strcmp(a, "--mark")) mark_file = v;
			else {
				fprintf(stderr, "fake_service: unknown option %s\n", a);
				return 2;
			}
		}
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	double t0 = mono();
	mark("started", (long)getpid());
	if (getenv("NOTIFY_SOCKET")) mark("saw-notify-socket", (long)getpid());
	int lfd = port ? listen_on(port) : -1;
	printf("fake_service %s pid %ld port %d\n", name, (long)getpid(), port);
	for (int i = 0; i < print_lines; i++)
		printf("line %06d %.*s\n", i, 88, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	fflush(stdout);
	if (grandchild) {
		pid_t g = fork();
		if (g == 0) {
			if (lfd >= 0) close(lfd);
			signal(SIGTERM, SIG_IGN); /* only the group's SIGKILL ends it */
			for (;;) pause();
		}
		mark("grandchild", (long)g);
	}
	bool ready = false;
	for (;;) {
		double t = mono() - t0;
		if (got_term) {
			got_term = 0;
			mark(ignore_term ? "term-ignored" : "term", (long)getpid());
			if (!ignore_term) {
				mark("exit", (long)getpid());
				return 0;
			}
		}
		if (!ready && t >= ready_after) {
			ready = true;
			mark("ready", (long)getpid());
			const char *nfd = getenv("SAM_NOTIFY_FD");
			if (notify && nfd) {
				int fd = atoi(nfd);
				if (write(fd, "\n", 1) != 1) perror("fake_service: notify");
				close(fd);
			}
		}
		if (crash_after >= 0 && t >= crash_after) {
			fprintf(stderr, "fake_service %s: crashing as asked\n", name);
			return 3;
		}
		if (exit_after >= 0 && t >= exit_after) {
			mark("exit", (long)getpid());
			return 0;
		}
		struct pollfd p = { lfd, POLLIN, 0 };
		int r = poll(&p, lfd >= 0 ? 1 : 0, 20);
		if (r > 0 && (p.revents & POLLIN)) {
			int status = !ready ? 503 : (fail_after >= 0 && mono() - t0 >= fail_after) ? 500 : 200;
			serve_one(lfd, status);
		}
	}
}
