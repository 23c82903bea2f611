/*
 * cmd_logs.c - `sam logs [-n LINES] [-f] NAME`: the last lines of
 * $SAM_HOME/logs/NAME.log, read directly (no supervisor needed), and with
 * -f every line written after them, like `tail -F`: when the supervisor
 * rotates the log (NAME.log -> NAME.log.1, a new NAME.log) the rest of the
 * old file is printed and the new one followed; a file that shrinks is read
 * again from its start. Ctrl-C ends it (status 0).
 *
 * Exit status: 0 ok; 1 no such log (or a read error); 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#define DEFAULT_LINES 50
#define CHUNK 65536
#define FOLLOW_POLL_US (200 * 1000)

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64 || s[0] == '-' || s[0] == '.') return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/*
 * Offset in fd (size bytes long) where its last n lines start; *found is
 * how many lines there are from there (fewer than n when the file is short).
 */
static off_t last_lines(int fd, off_t size, long long n, long long *found)
{
	*found = 0;
	if (n <= 0 || size <= 0) return size;
	char *buf = xmalloc(CHUNK);
	off_t end = size, result = 0;
	long long count = 0;
	char last;
	if (pread(fd, &last, 1, size - 1) == 1 && last == '\n') end--; /* the last line's own newline */
	while (end > 0) {
		size_t len = end > CHUNK ? CHUNK : (size_t)end;
		off_t at = end - (off_t)len;
		ssize_t r = pread(fd, buf, len, at);
		if (r != (ssize_t)len) break; /* changed under us: show what we have */
		for (size_t i = len; i-- > 0;) {
			if (buf[i] == '\n' && ++count == n) {
				*found = n;
				free(buf);
				return at + (off_t)i + 1;
			}
		}
		end = at;
	}
	free(buf);
	*found = count + 1;
	return result;
}

/* Copy fd from its current offset to EOF onto stdout. -1 when stdout fails. */
static int copy_out(int fd)
{
	char buf[CHUNK];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR) {
			if (interrupted) return 0;
			continue;
		}
		if (r <= 0) return 0;
		if (sam_write_all(STDOUT_FILENO, buf, (size_t)r)) return -1;
	}
}

/* Print the last n lines of path (a missing file prints nothing); the lines printed, -1 on error. */
static long long print_last(const char *path, long long n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	struct stat st;
	long long found = 0;
	if (fstat(fd, &st) == 0) {
		off_t from = last_lines(fd, st.st_size, n, &found);
		if (lseek(fd, from, SEEK_SET) < 0 || copy_out(fd)) found = -1;
	}
	close(fd);
	return found;
}

/* Is name a service the supervisor knows (in run/services.json)? */
static bool known_service(const char *name)
{
	char path[1100];
	if (sam_home_path(path, sizeof path, "run/services.json")) return false;
	json_t *j = json_load_file(path, 0, NULL);
	bool known = json_object_get(j, name) != NULL;
	json_decref(j);
	return known;
}

/* "api, vision" - the logs there are, for the error message. */
static void list_logs(const char *dir, char *buf, size_t cap)
{
	buf[0] = 0;
	DIR *d = opendir(dir);
	if (!d) return;
	struct dirent *e;
	size_t used = 0;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n <= 4 || e->d_name[0] == '.' || strcmp(e->d_name + n - 4, ".log")) continue;
		int w = snprintf(buf + used, cap - used, "%s%.*s", used ? ", " : "", (int)(n - 4), e->d_name);
		if (w < 0 || (size_t)w >= cap - used) {
			buf[used] = 0;
			break;
		}
		used += (size_t)w;
	}
	closedir(d);
}

/* tail -F: follow path from fd's offset (fd may be -1: the file is not there yet) until Ctrl-C. */
static int follow(const char *path, int fd)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: the sleep ends at once */
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		if (fd >= 0 && copy_out(fd)) return 1;
		if (interrupted) break;
		usleep(FOLLOW_POLL_US);
		struct stat now, cur;
		if (stat(path, &now) != 0) continue; /* between rename and re-create */
		if (fd < 0 || fstat(fd, &cur) != 0 || now.st_ino != cur.st_ino || now.st_dev != cur.st_dev) {
			/* rotated (or appeared): finish the old file, then read the new one from its start */
			if (fd >= 0) {
				if (copy_out(fd)) return 1;
				close(fd);
			}
			fd = open(path, O_RDONLY | O_CLOEXEC);
			continue;
		}
		off_t pos = lseek(fd, 0, SEEK_CUR);
		if (pos > cur.st_size) {
			fprintf(stderr, "sam logs: %s was truncated\n", path);
			lseek(fd, 0, SEEK_SET);
		}
	}
	if (fd >= 0) close(fd);
	return 0;
}

static const struct option logs_opts[] = {
	{ "lines", required_argument, NULL, 'n' },
	{ "follow", no_argument, NULL, 'f' },
	{ 0 },
};

int cmd_logs(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("logs");
	long long n = DEFAULT_LINES;
	bool follow_it = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:f", logs_opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!cli_parse_int(optarg, 0, 1000000000, &n))
				return cli_usage_error(cmd, "-n: expected a number of lines >= 0");
			break;
		case 'f': follow_it = true; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc) return cli_usage_error(cmd, "which service? (e.g. sam logs api)");
	if (argc - optind > 1) return cli_usage_error(cmd, "one service at a time");
	const char *name = argv[optind];
	if (!name_valid(name)) return cli_usage_error(cmd, "'%s' is not a service name", name);

	char dir[1100], path[1200], old[1300];
	if (sam_home_path(dir, sizeof dir, "logs")) {
		fprintf(stderr, "sam logs: SAM_HOME is too long\n");
		return 1;
	}
	snprintf(path, sizeof path, "%s/%s.log", dir, name);
	snprintf(old, sizeof old, "%s.1", path);

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && !(errno == ENOENT && follow_it && known_service(name))) {
		if (errno != ENOENT) {
			fprintf(stderr, "sam logs: %s: %s\n", path, strerror(errno));
			return 1;
		}
		char have[512];
		list_logs(dir, have, sizeof have);
		fprintf(stderr, "sam logs: no log for '%s' (%s does not exist)\n", name, path);
		if (have[0]) fprintf(stderr, "logs there are: %s\n", have);
		return 1;
	}
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) != 0) {
			fprintf(stderr, "sam logs: %s: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
		long long found;
		off_t from = last_lines(fd, st.st_size, n, &found);
		/* just rotated? the rest of the lines are at the end of NAME.log.1 */
		if (found < n && print_last(old, n - found) < 0) {
			close(fd);
			return 1;
		}
		if (lseek(fd, from, SEEK_SET) < 0 || copy_out(fd)) {
			close(fd);
			return 1;
		}
	}
	if (!follow_it) {
		close(fd);
		return 0;
	}
	return follow(path, fd);
}
