/*
 * sup_proc.c - processes: fork/exec of a service into its own session and
 * process group (so a stop reaches its children too), with a close-on-exec
 * pipe that reports an exec failure synchronously; group signals; who holds
 * a TCP port (/proc/net/tcp + /proc/PID/fd); and the replacement of
 * leftovers of a supervisor that was killed.
 *
 * OS specifics (Linux /proc, prctl) are behind #ifdef __linux__; elsewhere
 * the port holder is unknown and leftovers are never touched (we cannot
 * tell a SAM service from an unrelated process that reused its pid).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sam/fs.h"
#include "supervisor/sup.h"

#ifdef __linux__
#include <sys/prctl.h>
#endif
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

extern char **environ;

#define NOTIFY_FD 3 /* the child's readiness fd number (SAM_NOTIFY_FD) */

int sup_fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}


/* The environment of a service: ours without the systemd and SAM_ variables meant for us, plus its own. */
static char **child_env(const struct sup_service *s)
{
	static const char *const drop[] = { "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=",
					    "LISTEN_PID=", "LISTEN_FDNAMES=", "SAM_SERVICE=", "SAM_NOTIFY_FD=", NULL };
	size_t n = 0;
	while (environ[n]) n++;
	char **env = xcalloc(n + 3, sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool skip = false;
		for (const char *const *p = drop; *p && !skip; p++) skip = !strncmp(environ[i], *p, strlen(*p));
		if (!skip) env[k++] = xstrdup(environ[i]);
	}
	char buf[128];
	snprintf(buf, sizeof buf, "SAM_SERVICE=%s", s->name);
	env[k++] = xstrdup(buf);
	if (s->ready_kind == SUP_READY_NOTIFY) {
		snprintf(buf, sizeof buf, "SAM_NOTIFY_FD=%d", NOTIFY_FD);
		env[k++] = xstrdup(buf);
	}
	env[k] = NULL;
	return env;
}

int sup_spawn(const struct sup *d, const struct sup_service *s, struct sup_spawn *sp, struct sam_error *err)
{
	(void)d;
	char prog[PATH_MAX];
	if (sam_find_program(s->argv[0], prog, sizeof prog))
		return sam_errorf(err, SAM_EIO, "cannot execute %s: %s", s->argv[0], strerror(errno));
	int out[2] = { -1, -1 }, nt[2] = { -1, -1 }, ex[2] = { -1, -1 };
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || sam_pipe_cloexec(out) || sam_pipe_cloexec(ex) ||
	    (s->ready_kind == SUP_READY_NOTIFY && sam_pipe_cloexec(nt))) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			if (out[i] >= 0) close(out[i]);
			if (nt[i] >= 0) close(nt[i]);
			if (ex[i] >= 0) close(ex[i]);
		}
		if (devnull >= 0) close(devnull);
		return sam_errorf(err, SAM_EIO, "pipe: %s", strerror(e));
	}
	char **env = child_env(s);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* the child: only async-signal-safe calls from here to exec */
		setsid();
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* do not outlive a supervisor killed with -9 */
		if (getppid() != parent) _exit(127);
#endif
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		static const int sigs[] = { SIGPIPE, SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT };
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
		int exfd = fcntl(ex[1], F_DUPFD_CLOEXEC, 10); /* keep it clear of 0..3 */
		if (exfd < 0) exfd = ex[1];
		int ntfd = nt[1] >= 0 ? fcntl(nt[1], F_DUPFD, 10) : -1;
		dup2(devnull, 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		if (ntfd >= 0) dup2(ntfd, NOTIFY_FD); /* dup2 leaves the copy inheritable */
		/* nothing else of ours crosses exec: everything else is close-on-exec */
		for (int fd = ntfd >= 0 ? NOTIFY_FD + 1 : 3; fd < 1024; fd++)
			if (fd != exfd) fcntl(fd, F_SETFD, FD_CLOEXEC);
		execve(prog, s->argv, env);
		int e = errno;
		if (write(exfd, &e, sizeof e) < 0) _exit(127);
		_exit(127);
	}
	int fork_errno = errno;
	for (char **e = env; *e; e++) free(*e);
	free(env);
	close(devnull);
	close(out[1]);
	close(ex[1]);
	if (nt[1] >= 0) close(nt[1]);
	if (pid < 0) {
		close(out[0]);
		close(ex[0]);
		if (nt[0] >= 0) close(nt[0]);
		return sam_errorf(err, SAM_EIO, "fork: %s", strerror(fork_errno));
	}
	/* EOF: exec succeeded (the pipe closed on exec); an int: exec's errno */
	int e = 0;
	ssize_t r;
	while ((r = read(ex[0], &e, sizeof e)) < 0 && errno == EINTR) {
	}
	close(ex[0]);
	if (r == (ssize_t)sizeof e) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
		}
		close(out[0]);
		if (nt[0] >= 0) close(nt[0]);
		return sam_errorf(err, SAM_EIO, "cannot execute %s: %s", prog, strerror(e));
	}
	sup_fd_nonblock(out[0]);
	if (nt[0] >= 0) sup_fd_nonblock(nt[0]);
	sp->pid = pid;
	sp->out_fd = out[0];
	sp->notify_fd = nt[0];
	return 0;
}

void sup_kill_group(pid_t pgid, int sig)
{
	if (pgid > 1) kill(-pgid, sig);
}

bool sup_port_busy(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) return false;
	int one = 1; /* TIME_WAIT leftovers of our own checks do not count */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { 0 };
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	int e = errno;
	close(fd);
	return rc != 0 && e == EADDRINUSE;
}

#ifdef __linux__
/* A small /proc file into buf (NUL-terminated); its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		n += (size_t)r;
		if (n == cap - 1) break;
	}
	close(fd);
	buf[n] = 0;
	return (ssize_t)n;
}

/* The inode of a socket listening on TCP port (IPv4 or IPv6), 0 if none is visible. */
static unsigned long listen_inode(int port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	for (size_t f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "re");
		if (!fp) continue;
		char line[512];
		unsigned long found = 0;
		while (!found && fgets(line, sizeof line, fp)) {
			unsigned lport, st;
			unsigned long inode;
			if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*u %*u %lu", &lport,
				   &st, &inode) == 3 &&
			    (int)lport == port && st == 0x0A)
				found = inode;
		}
		fclose(fp);
		if (found) return found;
	}
	return 0;
}
#endif

pid_t sup_port_holder(int port, char *comm, size_t cap)
{
	if (cap) comm[0] = 0;
#ifdef __linux__
	unsigned long inode = listen_inode(port);
	if (!inode) return 0;
	char want[64];
	snprintf(want, sizeof want, "socket:[%lu]", inode);
	DIR *proc = opendir("/proc");
	if (!proc) return 0;
	pid_t found = 0;
	struct dirent *de;
	while (!found && (de = readdir(proc))) {
		if (!isdigit((unsigned char)de->d_name[0])) continue;
		char fddir[300];
		snprintf(fddir, sizeof fddir, "/proc/%s/fd", de->d_name);
		DIR *fds = opendir(fddir);
		if (!fds) continue; /* another user's: we cannot tell */
		struct dirent *fe;
		while (!found && (fe = readdir(fds))) {
			char link[600], target[128];
			snprintf(link, sizeof link, "%s/%s", fddir, fe->d_name);
			ssize_t l = readlink(link, target, sizeof target - 1);
			if (l <= 0) continue;
			target[l] = 0;
			if (!strcmp(target, want)) found = (pid_t)atol(de->d_name);
		}
		closedir(fds);
	}
	closedir(proc);
	if (found && cap) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%ld/comm", (long)found);
		if (read_small(path, comm, cap) > 0) comm[strcspn(comm, "\n")] = 0;
	}
	return found;
#else
	(void)port;
	return 0;
#endif
}

bool sup_pid_alive(pid_t pid)
{
	if (pid <= 1) return false;
	if (kill(pid, 0) != 0 && errno != EPERM) return false;
#ifdef __linux__
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if (read_small(path, buf, sizeof buf) <= 0) return false;
	const char *p = strrchr(buf, ')'); /* "pid (comm) S ..." */
	if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X')) return false;
#endif
	return true;
}

bool sup_pid_is_sam_service(pid_t pid, const char *name)
{
#ifdef __linux__
	char path[64];
	static char buf[256 * 1024];
	snprintf(path, sizeof path, "/proc/%ld/environ", (long)pid);
	ssize_t n = read_small(path, buf, sizeof buf);
	char want[SUP_NAME_MAX + 16];
	int wl = snprintf(want, sizeof want, "SAM_SERVICE=%s", name);
	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1)
		if (!strncmp(buf + i, want, (size_t)wl) && buf[i + wl] == 0) return true;
	/* no environment to read: a program named sam or sam-* (not just any "sam" substring: samba is not us) */
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	n = read_small(path, buf, sizeof buf);
	if (n <= 0) return false;
	const char *base = strrchr(buf, '/');
	base = base ? base + 1 : buf;
	return !strcmp(base, "sam") || !strncmp(base, "sam-", 4);
#else
	(void)pid;
	(void)name;
	return false;
#endif
}

/* ---- leftovers ---------------------------------------------------------------------- */

struct leftover {
	pid_t pid;
	char name[SUP_NAME_MAX + 1];
	double timeout;
};

static void add_leftover(struct sup *d, struct leftover *l, int *n, int max, const char *name, long long pid)
{
	if (pid <= 1 || pid == getpid() || *n == max) return;
	for (int i = 0; i < *n; i++)
		if (l[i].pid == (pid_t)pid) return;
	struct sup_service *s = sup_find(d, name);
	l[*n].pid = (pid_t)pid;
	snprintf(l[*n].name, sizeof l[*n].name, "%s", name);
	l[*n].timeout = s ? s->stop_timeout : 10;
	(*n)++;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

void sup_replace_leftovers(struct sup *d)
{
	struct leftover l[SUP_MAX_SERVICES * 2];
	int n = 0, max = SUP_MAX_SERVICES * 2;
	char path[1200];

	/* services.json: {"NAME": {"pid": N, ...}} */
	snprintf(path, sizeof path, "%s/services.json", d->run_dir);
	json_t *root = json_load_file(path, 0, NULL);
	const char *key;
	json_t *v;
	if (json_is_object(root))
		json_object_foreach(root, key, v) {
			json_t *p = json_object_get(v, "pid");
			if (json_is_integer(p) && strlen(key) <= SUP_NAME_MAX)
				add_leftover(d, l, &n, max, key, json_integer_value(p));
		}
	json_decref(root);

	/* run/NAME.pid */
	DIR *dir = opendir(d->run_dir);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || len > SUP_NAME_MAX + 4 || strcmp(de->d_name + len - 4, ".pid") ||
		    !strcmp(de->d_name, "samd.pid"))
			continue;
		char name[SUP_NAME_MAX + 1];
		snprintf(name, sizeof name, "%.*s", (int)(len - 4), de->d_name);
		char buf[64];
		snprintf(path, sizeof path, "%s/%s.pid", d->run_dir, name);
		FILE *f = fopen(path, "re");
		long long pid = 0;
		if (f) {
			if (fgets(buf, sizeof buf, f)) pid = atoll(buf);
			fclose(f);
		}
		add_leftover(d, l, &n, max, name, pid);
		unlink(path); /* stale now either way */
	}
	if (dir) closedir(dir);

	double wait = 0;
	int live = 0;
	for (int i = 0; i < n; i++) {
		if (!sup_pid_alive(l[i].pid) || !sup_pid_is_sam_service(l[i].pid, l[i].name)) {
			if (sup_pid_alive(l[i].pid))
				sup_log(SAM_LOG_INFO, "pid %ld recorded for %s is not a SAM service now: left alone",
					(long)l[i].pid, l[i].name);
			l[i].pid = 0;
			continue;
		}
		sup_log(SAM_LOG_WARN, "%s: replacing leftover pid %ld of a previous supervisor (SIGTERM, then SIGKILL "
				      "after %g s)",
			l[i].name, (long)l[i].pid, l[i].timeout);
		pid_t target = getpgid(l[i].pid) == l[i].pid ? -l[i].pid : l[i].pid;
		kill(target, SIGTERM);
		kill(target, SIGCONT); /* a paused one must wake up to die */
		if (l[i].timeout > wait) wait = l[i].timeout;
		live++;
	}
	if (!live) return;
	double t0 = sam_now();
	bool killed = false;
	for (;;) {
		int left = 0;
		for (int i = 0; i < n; i++)
			if (l[i].pid && sup_pid_alive(l[i].pid)) left++;
		if (!left) break;
		double dt = sam_now() - t0;
		if (!killed && dt >= wait) {
			for (int i = 0; i < n; i++)
				if (l[i].pid && sup_pid_alive(l[i].pid)) {
					sup_log(SAM_LOG_WARN, "%s: leftover pid %ld ignored SIGTERM: SIGKILL", l[i].name,
						(long)l[i].pid);
					pid_t target = getpgid(l[i].pid) == l[i].pid ? -l[i].pid : l[i].pid;
					kill(target, SIGKILL);
				}
			killed = true;
		}
		if (dt >= wait + 5) {
			sup_log(SAM_LOG_ERROR, "%d leftover process(es) survived SIGKILL", left);
			break;
		}
		sleep_ms(20);
	}
	for (int i = 0; i < n; i++)
		if (l[i].pid) sup_log(SAM_LOG_INFO, "%s: leftover pid %ld is gone", l[i].name, (long)l[i].pid);
}

int sup_self_dir(char *buf, size_t cap, const char *argv0)
{
	char p[PATH_MAX] = "";
#if defined(__linux__)
	ssize_t n = readlink("/proc/self/exe", p, sizeof p - 1);
	if (n > 0) p[n] = 0;
	else p[0] = 0;
#elif defined(__APPLE__)
	char raw[PATH_MAX];
	uint32_t sz = sizeof raw;
	if (_NSGetExecutablePath(raw, &sz) != 0 || !realpath(raw, p)) p[0] = 0;
#endif
	if (!p[0] && argv0 && strchr(argv0, '/') && !realpath(argv0, p)) p[0] = 0;
	if (!p[0]) return -1;
	char *slash = strrchr(p, '/');
	if (!slash) return -1;
	*slash = 0;
	if (snprintf(buf, cap, "%s", p[0] ? p : "/") >= (int)cap) return -1;
	return 0;
}
