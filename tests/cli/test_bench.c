/* test_bench.c - `sam bench` options and output shape, and the triad's contract (never speed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sam/membw.h"
#include "test.h"

TEST(bench_membw_triad_returns_a_positive_rate)
{
	/* small arrays: this checks that it runs and returns a number, not how fast */
	double g1 = sam_membw_triad(1, 64 << 10);
	double g2 = sam_membw_triad(2, 64 << 10);
	double g0 = sam_membw_triad(0, 1000); /* fewer bytes than one slice per thread rounds up */
	CHECKF(isfinite(g1) && g1 > 0, "1 thread: %g", g1);
	CHECKF(isfinite(g2) && g2 > 0, "2 threads: %g", g2);
	CHECKF(isfinite(g0) && g0 > 0, "0 threads: %g", g0);
}

TEST(bench_usage_errors_exit_2)
{
	struct test_proc p;
	const char *m = test_model("stories260K.gguf");
	test_run_sam(&p, 10, "bench", "-p", "8", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "-m MODEL is required") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 10, "bench", "-m", m, "-r", "0", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 10, "bench", "-m", m, "-p", "0", "-n", "0", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 10, "bench", "-m", m, "--bogus", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "--bogus") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 10, "bench", "-m", "/nonexistent/model.gguf", NULL);
	CHECK_INT(p.status, 1);
	test_proc_free(&p);
}

TEST(bench_prints_a_llama_bench_table)
{
	struct test_proc p;
	const char *m = test_model("stories260K.gguf");
	test_run_sam(&p, 60, "bench", "-m", m, "-p", "600", "-n", "8", "-r", "2", "-t", "2", NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	CHECKF(strstr(p.out, "| model ") && strstr(p.out, "t/s |"), "no header: %s", p.out);
	CHECKF(strstr(p.out, "pp600") && strstr(p.out, "tg8"), "no test rows: %s", p.out);
	CHECK(strstr(p.out, " ± ") != NULL);
	CHECK(strstr(p.out, "peak RSS") != NULL);
	CHECK(strstr(p.out, "bandwidth") == NULL);
	test_proc_free(&p);
}

TEST(bench_json_and_bandwidth)
{
	struct test_proc p;
	const char *m = test_model("stories260K.gguf");
	test_run_sam(&p, 60, "bench", "-m", m, "-p", "16", "-n", "4", "-r", "2", "-t", "1", "--json",
		     "--bandwidth-mib", "1", NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	CHECKF(p.out[0] == '[', "not a JSON array: %s", p.out);
	CHECK(strstr(p.out, "\"n_prompt\": 16") != NULL);
	CHECK(strstr(p.out, "\"n_gen\": 4") != NULL);
	CHECK(strstr(p.out, "\"avg_ts\"") != NULL);
	CHECK(strstr(p.out, "\"bandwidth_gbs\"") != NULL);
	CHECK(strstr(p.out, "\"bandwidth_limit_ts\"") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 60, "bench", "-m", m, "-p", "0", "-n", "4", "-r", "1", "-t", "1", "--bandwidth-mib", "1",
		     NULL);
	CHECKF(p.status == 0, "status %d: %s", p.status, p.err);
	CHECK(strstr(p.out, "pp") == NULL);
	CHECK(strstr(p.out, "bandwidth: triad") != NULL);
	CHECK(strstr(p.out, "of the limit") != NULL);
	test_proc_free(&p);
}
