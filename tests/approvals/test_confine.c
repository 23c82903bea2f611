/* test_confine.c - the directory confinement that file_write (and vision's paths) rely on (confine.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/confine.h"
#include "test.h"

TEST(approvals_confine_parses_dirs)
{
	char dirs[4][SAM_CONFINE_DIR_CAP], real[PATH_MAX], list[4400], link[4200];
	int n;
	struct sam_error err;
	CHECK(realpath(test_tmpdir(), real) != NULL);
	snprintf(link, sizeof link, "%s/alias", test_tmpdir());
	CHECK(symlink(real, link) == 0);
	snprintf(list, sizeof list, "::%s:/no/such/dir:", link);
	CHECK(sam_confine_parse(list, "x.allowed_dirs", dirs, 4, &n, &err) == 0);
	CHECK_INT(n, 2);
	CHECK_STR(dirs[0], real); /* resolved */
	CHECK_STR(dirs[1], "/no/such/dir"); /* kept as written */
	CHECK(sam_confine_parse("", "x", dirs, 4, &n, &err) == 0 && n == 0);
	CHECK(sam_confine_parse(NULL, "x", dirs, 4, &n, &err) == 0 && n == 0);
	CHECK(sam_confine_parse("/a:rel", "x.allowed_dirs", dirs, 4, &n, &err) == SAM_EFORMAT);
	CHECK_STR(err.msg, "config x.allowed_dirs: 'rel' is not absolute");
	CHECK(sam_confine_parse("/a:/b:/c:/d:/e", "x.allowed_dirs", dirs, 4, &n, &err) == SAM_EFORMAT);
	CHECK_STR(err.msg, "config x.allowed_dirs: at most 4 directories");
}

TEST(approvals_confine_checks_paths)
{
	CHECK(sam_confine_has_dotdot("/a/../b"));
	CHECK(sam_confine_has_dotdot(".."));
	CHECK(sam_confine_has_dotdot("/a/.."));
	CHECK(!sam_confine_has_dotdot("/a/..b/c..d/...")); /* only whole components */
	CHECK(sam_confine_under("/a/b", "/a"));
	CHECK(sam_confine_under("/a", "/a"));
	CHECK(!sam_confine_under("/ab", "/a"));
	CHECK(sam_confine_under("/anything", "/"));

	char dirs[1][SAM_CONFINE_DIR_CAP], real[SAM_CONFINE_DIR_CAP], path[4300], out[4300];
	int n;
	struct sam_error err;
	snprintf(path, sizeof path, "%s/in", test_tmpdir());
	CHECK(mkdir(path, 0755) == 0);
	CHECK(sam_confine_parse(path, "x", dirs, 1, &n, &err) == 0);
	const char (*cd)[SAM_CONFINE_DIR_CAP] = (const char (*)[SAM_CONFINE_DIR_CAP])dirs;
	snprintf(out, sizeof out, "%s/out.txt", test_tmpdir());
	test_write_file(out, "secret", 6);
	snprintf(path, sizeof path, "%s/file.txt", dirs[0]);
	test_write_file(path, "ok", 2);
	CHECK(sam_confine_read_path(cd, 1, path, "field 'path'", real, &err) == 0);
	CHECK_STR(real, path);
	snprintf(path, sizeof path, "%s/missing.txt", dirs[0]);
	CHECK(sam_confine_read_path(cd, 1, path, "field 'path'", real, &err) == SAM_ENOTFOUND);
	/* outside, existing or not, is the same refusal */
	CHECK(sam_confine_read_path(cd, 1, out, "field 'path'", real, &err) == SAM_EBUSY);
	CHECK(sam_confine_read_path(cd, 1, "/no/such", "field 'path'", real, &err) == SAM_EBUSY);
	CHECK(sam_confine_read_path(cd, 1, "rel", "field 'path'", real, &err) == SAM_EBUSY);
	CHECK_STR(err.msg, "field 'path' must be an absolute path");
	snprintf(path, sizeof path, "%s/link", dirs[0]);
	CHECK(symlink(out, path) == 0);
	CHECK(sam_confine_read_path(cd, 1, path, "field 'path'", real, &err) == SAM_EBUSY);
	/* writing: the name itself is not followed; the directory must be inside */
	CHECK(sam_confine_write_path(cd, 1, path, "p", real, &err) == 0);
	CHECK_STR(real, path);
	CHECK(sam_confine_write(cd, 1, path, "p", "new", 3, false, 0, NULL, &err) == 0);
	char *t = test_read_file(out, NULL);
	CHECK_STR(t, "secret");
	free(t);
	snprintf(path, sizeof path, "%s/.", dirs[0]);
	CHECK(sam_confine_write_path(cd, 1, path, "p", real, &err) == SAM_EBUSY);
	CHECK(sam_confine_write_path(cd, 1, dirs[0], "p", real, &err) == SAM_EBUSY); /* the allowed directory itself */
	/* appending past the cap */
	snprintf(path, sizeof path, "%s/file.txt", dirs[0]);
	CHECK(sam_confine_write(cd, 1, path, "p", "x", 1, true, 1, NULL, &err) == SAM_ERANGE);
	CHECK(sam_confine_write(cd, 1, path, "p", "x", 1, true, 2, NULL, &err) == 0);
	t = test_read_file(path, NULL);
	CHECK_STR(t, "okx");
	free(t);
	/* a directory at the name is not replaced */
	snprintf(path, sizeof path, "%s/d", dirs[0]);
	CHECK(mkdir(path, 0755) == 0);
	CHECK(sam_confine_write(cd, 1, path, "p", "x", 1, false, 0, NULL, &err) == SAM_EINVAL);
}
