/* test_fs.c - SAM_HOME paths, mkdir -p, capped reads, atomic rewrites. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/fs.h"
#include "test.h"

TEST(fs_home_from_env_and_init)
{
	char home[512], p[1200];
	snprintf(home, sizeof home, "%s/home/a", test_tmpdir());
	setenv("SAM_HOME", home, 1);
	CHECK_STR(sam_home(), home);
	CHECK(sam_home_init(NULL) == 0);
	CHECK(sam_home_path(p, sizeof p, "models") == 0);
	struct stat st;
	CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
	char small[8];
	CHECK_INT(sam_home_path(small, sizeof small, "models"), SAM_ERANGE);
	unsetenv("SAM_HOME");
	setenv("HOME", "/nowhere", 1);
	CHECK_STR(sam_home(), "/nowhere/.local/share/sam");
}

TEST(fs_atomic_write_replaces_and_leaves_no_temp)
{
	char path[512];
	snprintf(path, sizeof path, "%s/f.txt", test_tmpdir());
	CHECK(sam_write_file_atomic(path, "one", 3, NULL) == 0);
	CHECK(sam_write_file_atomic(path, "second", 6, NULL) == 0);
	char *d;
	size_t n;
	CHECK(sam_read_file(path, 100, &d, &n, NULL) == 0);
	CHECK(n == 6 && !strcmp(d, "second"));
	free(d);
	DIR *dir = opendir(test_tmpdir());
	struct dirent *e;
	int files = 0;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.') files++;
	closedir(dir);
	CHECK_INT(files, 1);
	/* an aborted rewrite leaves the old content */
	struct sam_afile af;
	CHECK(sam_afile_open(&af, path, 0644, NULL) == 0);
	CHECK(sam_write_all(af.fd, "partial", 7) == 0);
	sam_afile_abort(&af);
	CHECK(sam_read_file(path, 100, &d, &n, NULL) == 0);
	CHECK_STR(d, "second");
	free(d);
	/* a directory that does not exist is an error, not a crash */
	struct sam_error err;
	CHECK_INT(sam_write_file_atomic("/nonexistent/dir/x", "a", 1, &err), SAM_EIO);
}

TEST(fs_read_file_caps_size)
{
	char path[512];
	snprintf(path, sizeof path, "%s/big", test_tmpdir());
	char buf[10000];
	memset(buf, 'x', sizeof buf);
	test_write_file(path, buf, sizeof buf);
	char *d = NULL;
	size_t n;
	struct sam_error err;
	CHECK_INT(sam_read_file(path, 5000, &d, &n, &err), SAM_ERANGE);
	CHECK(d == NULL);
	CHECK(sam_read_file(path, 10000, &d, &n, &err) == 0 && n == 10000);
	free(d);
	CHECK_INT(sam_read_file("/nonexistent", 10, &d, &n, &err), SAM_ENOTFOUND);
	snprintf(path, sizeof path, "%s/x/y/z", test_tmpdir());
	CHECK(sam_mkdirs(path, NULL) == 0);
	CHECK(sam_mkdirs(path, NULL) == 0);
}
