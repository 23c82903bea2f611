/*
 * test.h - the test framework. Each TEST runs in its own forked process
 * with a timeout, so a crash or hang fails that test alone.
 *
 *   TEST(gguf_rejects_bad_magic) { ... CHECK(rc == SAM_EFORMAT); }
 *
 * Helpers find the fixtures (../shared/models) and the real binary
 * (SAM_BIN, set by `make check`), and run it as a user would.
 */
#ifndef SAM_TEST_H
#define SAM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn);

#define TEST(name)                                                            \
	static void name(void);                                               \
	__attribute__((constructor)) static void test_reg_##name(void)        \
	{                                                                     \
		test_register(#name, __FILE__, name);                         \
	}                                                                     \
	static void name(void)

/* Report a failure and end the test (the test's process exits). */
_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* End the test as skipped, saying why (printed loudly by the runner). */
_Noreturn void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #c);     \
	} while (0)
#define CHECKF(c, ...)                                                        \
	do {                                                                  \
		if (!(c)) test_fail(__FILE__, __LINE__, __VA_ARGS__);         \
	} while (0)
#define CHECK_INT(a, b)                                                       \
	do {                                                                  \
		long long a_ = (long long)(a), b_ = (long long)(b);           \
		if (a_ != b_)                                                 \
			test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", \
				  #a, a_, #b, b_);                            \
	} while (0)
#define CHECK_STR(a, b)                                                       \
	do {                                                                  \
		const char *a_ = (a), *b_ = (b);                              \
		if (!a_ || !b_ || strcmp(a_, b_))                             \
			test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", \
				  #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
	} while (0)

/* Path of a file in ../shared/models (or $SAM_MODELS); skips the test when absent. */
const char *test_model(const char *name);
/* Path to the sam binary under test ($SAM_BIN, default build/sam). */
const char *test_sam_bin(void);
/* Path of a helper program built from tests/helpers/NAME.c ($SAM_TEST_HELPERS); fails if missing. */
const char *test_helper(const char *name);
/* A fresh temporary directory, removed when the test process ends. */
const char *test_tmpdir(void);

/* Result of running a command. */
struct test_proc {
	int status;   /* exit code, or 128+signal when killed */
	char *out;    /* captured stdout, NUL-terminated (malloc'd) */
	size_t out_len;
	char *err;    /* captured stderr, NUL-terminated (malloc'd) */
};
/* Run argv (argv[0] is a path) with stdin from /dev/null; waits at most timeout_s. */
void test_run(struct test_proc *p, const char *const argv[], int timeout_s);
/* Run the sam binary with args (NULL-terminated list). */
void test_run_sam(struct test_proc *p, int timeout_s, ...);
void test_proc_free(struct test_proc *p);

/* Read a whole file (malloc'd, NUL-terminated); NULL if unreadable. */
char *test_read_file(const char *path, size_t *len);
/* Write a whole file; fails the test on error. */
void test_write_file(const char *path, const void *data, size_t len);

#endif
