/* test_run.c - `sam run` as a user meets it: options, errors, determinism, memory. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

TEST(run_usage_errors_exit_2)
{
	struct test_proc p;
	const char *m = test_model("stories260K.gguf");
	test_run_sam(&p, 10, "run", "-p", "hi", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "model is required") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 10, "run", "-m", m, NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 10, "run", "-m", m, "-p", "hi", "-n", "lots", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "-n") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 10, "run", "-m", m, "-p", "hi", "--top-p", "1.5", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 10, "run", "-m", m, "-p", "hi", "--bogus", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "--bogus") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 10, "run", "-m", m, "-p", "hi", "-t", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
}

TEST(run_bad_model_files_exit_1)
{
	struct test_proc p;
	test_run_sam(&p, 10, "run", "-m", "/nonexistent/model.gguf", "-p", "hi", NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "No such file") != NULL);
	test_proc_free(&p);

	size_t len;
	char *data = test_read_file(test_model("stories260K.gguf"), &len);
	CHECK(data != NULL);
	char path[512];
	snprintf(path, sizeof path, "%s/cut.gguf", test_tmpdir());
	test_write_file(path, data, len - 100); /* tensor data cut short */
	test_run_sam(&p, 10, "run", "-m", path, "-p", "hi", NULL);
	CHECK_INT(p.status, 1);
	CHECKF(strstr(p.err, "past the end") != NULL, "stderr: %s", p.err);
	test_proc_free(&p);
	test_write_file(path, "hello, not a model", 18);
	test_run_sam(&p, 10, "run", "-m", path, "-p", "hi", NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "not a GGUF file") != NULL);
	test_proc_free(&p);
	free(data);
}

TEST(run_seed_makes_sampling_reproducible)
{
	struct test_proc a, b, c;
	const char *m = test_model("stories260K.gguf");
	test_run_sam(&a, 30, "run", "-m", m, "-p", "Lily", "-n", "40", "--temp", "1.0", "--seed", "7", NULL);
	test_run_sam(&b, 30, "run", "-m", m, "-p", "Lily", "-n", "40", "--temp", "1.0", "--seed", "7", "-t", "1",
		     NULL);
	test_run_sam(&c, 30, "run", "-m", m, "-p", "Lily", "-n", "40", "--temp", "1.0", "--seed", "8", NULL);
	CHECK_INT(a.status, 0);
	CHECK(a.out_len > 0);
	CHECK_STR(a.out, b.out);
	CHECKF(strcmp(a.out, c.out) != 0, "seeds 7 and 8 gave the same text: %s", a.out);
	test_proc_free(&a), test_proc_free(&b), test_proc_free(&c);
}

TEST(run_prompt_from_file_and_n_limits)
{
	struct test_proc p, q;
	const char *m = test_model("stories260K.gguf");
	char path[512];
	snprintf(path, sizeof path, "%s/prompt.txt", test_tmpdir());
	test_write_file(path, "Once upon a time", 16);
	test_run_sam(&p, 30, "run", "-m", m, "-f", path, "-n", "10", "--temp", "0", "--output-ids", NULL);
	test_run_sam(&q, 30, "run", "-m", m, "-p", "Once upon a time", "-n", "10", "--temp", "0", "--output-ids",
		     NULL);
	CHECK_INT(p.status, 0);
	CHECK_STR(p.out, q.out);
	int n = 0;
	for (char *s = strtok(p.out, " \n"); s; s = strtok(NULL, " \n")) n++;
	CHECK_INT(n, 10);
	test_proc_free(&p), test_proc_free(&q);
	test_run_sam(&p, 30, "run", "-m", m, "-p", "Once", "-n", "0", NULL);
	CHECK_INT(p.status, 0);
	CHECK_INT(p.out_len, 0);
	CHECK(strstr(p.err, "tok/s") != NULL); /* timings go to stderr */
	test_proc_free(&p);
	/* a context smaller than the prompt is an error, not a crash */
	test_run_sam(&p, 30, "run", "-m", m, "-p", "Once upon a time there was", "-c", "3", NULL);
	CHECK_INT(p.status, 1);
	test_proc_free(&p);
	/* generation stops cleanly when the context is full */
	test_run_sam(&p, 30, "run", "-m", m, "-p", "Once", "-c", "16", "-n", "100", "--ignore-eos", "--output-ids",
		     NULL);
	CHECK_INT(p.status, 0);
	n = 0;
	for (char *s = strtok(p.out, " \n"); s; s = strtok(NULL, " \n")) n++;
	CHECK_INT(n, 15); /* 16 positions - BOS - "Once", + 1 sampled from the last */
	test_proc_free(&p);
}

/* Peak RSS stays a few MB above the model size (weights are mmapped, buffers fixed). */
TEST(run_peak_memory_is_model_plus_a_few_mb)
{
	if (getenv("SAM_SANITIZED")) test_skip("sanitizers inflate memory use");
	struct test_proc p;
	test_run_sam(&p, 30, "run", "-m", test_model("stories260K.gguf"), "-p", "Once upon a time", "-n", "128",
		     "--temp", "0", NULL);
	CHECK_INT(p.status, 0);
	/* peak RSS counts the mapped model and shared library pages; own memory is the engine's buffers */
	const char *s = strstr(p.err, "peak RSS "), *o = strstr(p.err, "own memory ");
	CHECK(s != NULL && o != NULL);
	double mib = atof(s + 9), own = atof(o + 11);
	CHECKF(mib > 0.5 && mib < 1.2 + 16.0, "peak RSS %.1f MiB", mib);
	CHECKF(own > 0.1 && own < 4.0, "own memory %.1f MiB", own);
	test_proc_free(&p);
}

TEST(run_no_leaks_under_valgrind)
{
	if (getenv("SAM_SANITIZED")) test_skip("valgrind cannot run sanitized binaries (LSan covers them)");
	if (access("/usr/bin/valgrind", X_OK) != 0) test_skip("valgrind is not installed");
	const char *argv[] = { "/usr/bin/valgrind", "--leak-check=full", "--show-leak-kinds=all",
			       "--errors-for-leak-kinds=all", "--error-exitcode=99", "-q", test_sam_bin(), "run",
			       "-m", test_model("stories260K.gguf"), "-p", "Once upon a time", "-n", "32",
			       "--temp", "0.8", "--seed", "1", "-t", "2", NULL };
	struct test_proc p;
	test_run(&p, argv, 300);
	CHECKF(p.status == 0, "valgrind exit %d:\n%s", p.status, p.err);
	test_proc_free(&p);
}
