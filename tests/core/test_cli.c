/* test_cli.c - the multi-call binary's dispatch, help and exit codes. */
#include <string.h>

#include "test.h"

TEST(cli_version_prints_version)
{
	struct test_proc p;
	test_run_sam(&p, 10, "--version", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strncmp(p.out, "sam ", 4) == 0);
	test_proc_free(&p);
}

TEST(cli_help_lists_commands)
{
	struct test_proc p;
	test_run_sam(&p, 10, "help", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "run") && strstr(p.out, "tokenize") && strstr(p.out, "gguf"));
	test_proc_free(&p);
}

TEST(cli_command_help_is_usage)
{
	struct test_proc p;
	test_run_sam(&p, 10, "run", "--help", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "usage: sam run") != NULL);
	test_proc_free(&p);
}

TEST(cli_unknown_command_is_usage_error)
{
	struct test_proc p;
	test_run_sam(&p, 10, "frobnicate", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "unknown command") != NULL);
	test_proc_free(&p);
}

TEST(cli_no_arguments_is_usage_error)
{
	struct test_proc p;
	test_run_sam(&p, 10, NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
}
