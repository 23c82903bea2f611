/*
 * runner.c - runs every registered test in its own process with a timeout
 * and prints "N passed, N failed" last. Arguments filter tests by substring.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 1024
#define EXIT_SKIP 77

static struct {
	const char *name, *file;
	test_fn fn;
} tests[MAX_TESTS];
static int n_tests;
static char tmpdir[256];

void test_register(const char *name, const char *file, test_fn fn)
{
	if (n_tests == MAX_TESTS) {
		fprintf(stderr, "too many tests\n");
		abort();
	}
	tests[n_tests].name = name;
	tests[n_tests].file = file;
	tests[n_tests].fn = fn;
	n_tests++;
}

_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "    %s:%d: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stderr);
	exit(1);
}

_Noreturn void test_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "    SKIP: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stderr);
	exit(EXIT_SKIP);
}

const char *test_model(const char *name)
{
	static char path[4][1024];
	static int slot;
	const char *dir = getenv("SAM_MODELS");
	if (!dir) dir = "../shared/models";
	char *p = path[slot++ & 3];
	snprintf(p, sizeof path[0], "%s/%s", dir, name);
	if (access(p, R_OK) != 0) test_skip("fixture %s is missing (set SAM_MODELS or provide ../shared)", p);
	return p;
}

const char *test_sam_bin(void)
{
	const char *b = getenv("SAM_BIN");
	return b ? b : "build/sam";
}

const char *test_helper(const char *name)
{
	static char path[4][1024];
	static int slot;
	const char *dir = getenv("SAM_TEST_HELPERS");
	char *p = path[slot++ & 3];
	snprintf(p, sizeof path[0], "%s/%s", dir ? dir : "build/test-helpers", name);
	if (access(p, X_OK) != 0) test_fail(__FILE__, __LINE__, "test helper %s is missing (make builds it)", p);
	return p;
}

const char *test_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "%s/sam-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(tmpdir)) test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
	}
	return tmpdir;
}

static char *slurp_fd(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		n += (size_t)r;
	}
	buf[n] = 0;
	if (len) *len = n;
	return buf;
}

void test_run(struct test_proc *p, const char *const argv[], int timeout_s)
{
	char outp[300], errp[300];
	snprintf(outp, sizeof outp, "%s/.stdout", test_tmpdir());
	snprintf(errp, sizeof errp, "%s/.stderr", test_tmpdir());
	memset(p, 0, sizeof *p);
	pid_t pid = fork();
	if (pid < 0) test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		alarm((unsigned)timeout_s);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	int fd = open(outp, O_RDONLY);
	p->out = slurp_fd(fd, &p->out_len);
	close(fd);
	fd = open(errp, O_RDONLY);
	p->err = slurp_fd(fd, NULL);
	close(fd);
}

void test_run_sam(struct test_proc *p, int timeout_s, ...)
{
	const char *argv[64];
	int n = 0;
	argv[n++] = test_sam_bin();
	va_list ap;
	va_start(ap, timeout_s);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 63) argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	test_run(p, argv, timeout_s);
}

void test_proc_free(struct test_proc *p)
{
	free(p->out);
	free(p->err);
	memset(p, 0, sizeof *p);
}

char *test_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) return NULL;
	char *s = slurp_fd(fd, len);
	close(fd);
	return s;
}

void test_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		test_fail(__FILE__, __LINE__, "cannot write %s", path);
}

static void rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

static void cleanup_tmpdir(void)
{
	if (tmpdir[0]) rm_rf(tmpdir);
}

static int run_one(int i, int timeout_s)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		atexit(cleanup_tmpdir); /* also runs when test_fail() exits */
		alarm((unsigned)timeout_s);
		tests[i].fn();
		exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	if (WIFEXITED(st)) return WEXITSTATUS(st);
	fprintf(stderr, "    killed by signal %d%s\n", WTERMSIG(st),
		WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
	return 1;
}

int main(int argc, char **argv)
{
	int timeout_s = getenv("TEST_TIMEOUT") ? atoi(getenv("TEST_TIMEOUT")) : 300;
	int passed = 0, failed = 0, skipped = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < n_tests; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			if (strstr(tests[i].name, argv[a]) || strstr(tests[i].file, argv[a])) want = true;
		if (!want) continue;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = run_one(i, timeout_s);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
		const char *what = rc == 0 ? "ok" : rc == EXIT_SKIP ? "SKIP" : "FAIL";
		printf("%-4s %-50s %6.2fs\n", what, tests[i].name, dt);
		if (rc == 0) passed++;
		else if (rc == EXIT_SKIP) skipped++;
		else failed++;
	}
	if (skipped) printf("warning: %d tests skipped (see SKIP lines above)\n", skipped);
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	/* `make test` adds up the stages from these files */
	const char *sum = getenv("TEST_SUMMARY");
	FILE *f = sum ? fopen(sum, "w") : NULL;
	if (f) {
		fprintf(f, "%d %d %d\n", passed, failed, skipped);
		fclose(f);
	}
	return failed ? 1 : 0;
}
