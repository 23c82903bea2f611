/*
 * test_adapters.c - the adapters directory and its "current" link
 * (sam/adapters.h): ids, deploy/use/off/current/list, broken links, and a
 * reader that never sees "no adapter" while the link is switched.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "learn/learn_util.h"
#include "sam/adapters.h"
#include "sam/fs.h"
#include "test.h"

static void home_file(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/%s", learn_test_home(), rel);
}

/* A fake adapter file of n bytes (deploy does not parse it) at tmpdir/name; returns its path (static). */
static const char *src_file(const char *name, size_t n)
{
	static char path[4][600];
	static int k;
	char *p = path[k++ % 4];
	snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
	char *data = malloc(n);
	for (size_t i = 0; i < n; i++) data[i] = (char)(i * 7 + n);
	test_write_file(p, data, n);
	free(data);
	return p;
}

static void deploy(const char *src, const char *id)
{
	struct sam_error err = { 0 };
	CHECKF(sam_adapters_deploy(src, id, &err) == 0, "deploy %s: %s", id, err.msg);
}

/* The current id, or "" when none; rc into *rc_out when not NULL. */
static const char *current(int *rc_out, struct sam_error *err)
{
	static char id[SAM_ADAPTER_ID_MAX + 1];
	int rc = sam_adapters_current(id, sizeof id, NULL, 0, err);
	if (rc) id[0] = '\0';
	if (rc_out) *rc_out = rc;
	return id;
}

TEST(adapters_id_validation)
{
	char long_ok[SAM_ADAPTER_ID_MAX + 1], too_long[SAM_ADAPTER_ID_MAX + 2];
	memset(long_ok, 'a', SAM_ADAPTER_ID_MAX);
	long_ok[SAM_ADAPTER_ID_MAX] = '\0';
	memset(too_long, 'a', SAM_ADAPTER_ID_MAX + 1);
	too_long[SAM_ADAPTER_ID_MAX + 1] = '\0';
	const char *good[] = { "a", "run-20250101-120000", "A_b.c-9", "x.y.z", long_ok };
	const char *bad[] = { "", ".hidden", "..", "a/b", "../a", "a b", "a\nb", "caf\xc3\xa9", "a*", too_long };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECKF(sam_adapter_id_ok(good[i]), "'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECKF(!sam_adapter_id_ok(bad[i]), "'%s' accepted", bad[i]);
	CHECK(!sam_adapter_id_ok(NULL));

	learn_test_home();
	char path[4096], want[4096];
	struct sam_error err = { 0 };
	CHECK(sam_adapter_path("run-1", path, sizeof path, &err) == 0);
	home_file(want, sizeof want, "adapters/run-1.gguf");
	CHECK_STR(path, want);
	CHECK(sam_adapter_path("../x", path, sizeof path, &err) == SAM_EINVAL);
	CHECK(strstr(err.msg, "not an adapter id") != NULL);
	CHECK(sam_adapter_path("run-1", path, 10, &err) == SAM_ERANGE);
}

TEST(adapters_deploy_use_off_current_list)
{
	learn_test_home();
	struct sam_error err = { 0 };
	struct sam_adapter_info *list;
	size_t n;
	int rc;

	/* nothing yet: no directory, no link */
	CHECK(sam_adapters_list(&list, &n, &err) == 0);
	CHECK_INT(n, 0);
	free(list);
	current(&rc, &err);
	CHECK_INT(rc, SAM_ENOTFOUND);
	CHECK(sam_adapters_off(&err) == 0); /* off without a link is fine */

	deploy(src_file("one", 1000), "r1");
	CHECK_STR(current(NULL, &err), "r1");
	char id[SAM_ADAPTER_ID_MAX + 1], path[4096], want[4096];
	CHECK(sam_adapters_current(id, sizeof id, path, sizeof path, &err) == 0);
	home_file(want, sizeof want, "adapters/r1.gguf");
	CHECK_STR(path, want);
	size_t len;
	char *copy = test_read_file(path, &len), *orig = test_read_file(src_file("one", 1000), NULL);
	CHECK(copy && len == 1000 && !memcmp(copy, orig, len));
	free(copy);
	free(orig);

	deploy(src_file("two", 3000), "r2");
	CHECK_STR(current(NULL, &err), "r2");
	CHECK(sam_adapters_list(&list, &n, &err) == 0);
	CHECK_INT(n, 2);
	CHECK_STR(list[0].id, "r1");
	CHECK_STR(list[1].id, "r2");
	CHECK_INT(list[0].size, 1000);
	CHECK_INT(list[1].size, 3000);
	CHECK(!list[0].current && list[1].current);
	CHECK(list[0].mtime > 1e9);
	free(list);

	/* use: an existing one; an unknown or malformed id changes nothing */
	CHECK(sam_adapters_use("r1", &err) == 0);
	CHECK_STR(current(NULL, &err), "r1");
	CHECK_INT(sam_adapters_use("nosuch", &err), SAM_ENOTFOUND);
	CHECK(strstr(err.msg, "nosuch") != NULL);
	CHECK_INT(sam_adapters_use("../r2", &err), SAM_EINVAL);
	CHECK_INT(sam_adapters_deploy(src_file("x", 10), "bad/id", &err), SAM_EINVAL);
	char missing[600];
	snprintf(missing, sizeof missing, "%s/no-such-file", test_tmpdir());
	CHECK_INT(sam_adapters_deploy(missing, "r3", &err), SAM_EIO);
	CHECK_STR(current(NULL, &err), "r1");

	/* off, and off again */
	CHECK(sam_adapters_off(&err) == 0);
	current(&rc, &err);
	CHECK_INT(rc, SAM_ENOTFOUND);
	CHECK(sam_adapters_off(&err) == 0);
	CHECK(sam_adapters_list(&list, &n, &err) == 0);
	CHECK(n == 2 && !list[0].current && !list[1].current);
	free(list);

	/* a broken link is an error, not "no adapter" */
	CHECK(sam_adapters_use("r1", &err) == 0);
	home_file(path, sizeof path, "adapters/r1.gguf");
	CHECK(unlink(path) == 0);
	current(&rc, &err);
	CHECK_INT(rc, SAM_EFORMAT);
	CHECK(strstr(err.msg, "gone") != NULL);
	CHECK(sam_adapters_list(&list, &n, &err) == 0);
	CHECK(n == 1 && !strcmp(list[0].id, "r2") && !list[0].current);
	free(list);
	home_file(path, sizeof path, "adapters/current");
	CHECK(unlink(path) == 0 && symlink("../../etc/passwd", path) == 0);
	current(&rc, &err);
	CHECK_INT(rc, SAM_EFORMAT);

	/* switching leaves no temporary links behind */
	CHECK(sam_adapters_use("r2", &err) == 0);
	home_file(path, sizeof path, "adapters");
	DIR *d = opendir(path);
	CHECK(d != NULL);
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			entries++;
			CHECKF(!strcmp(e->d_name, "r2.gguf") || !strcmp(e->d_name, "current"), "left over: %s", e->d_name);
		}
	closedir(d);
	CHECK_INT(entries, 2);
}

struct reader {
	atomic_bool stop;
	long reads, none, other;
	char bad[600];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	while (!atomic_load(&r->stop)) {
		char id[SAM_ADAPTER_ID_MAX + 1];
		struct sam_error err = { 0 };
		int rc = sam_adapters_current(id, sizeof id, NULL, 0, &err);
		r->reads++;
		if (rc) {
			r->none++;
			snprintf(r->bad, sizeof r->bad, "%s", err.msg);
		} else if (strcmp(id, "a") && strcmp(id, "b")) {
			r->other++;
			snprintf(r->bad, sizeof r->bad, "read '%s'", id);
		}
	}
	return NULL;
}

TEST(adapters_current_never_none_while_switching)
{
	learn_test_home();
	deploy(src_file("a", 100), "a");
	deploy(src_file("b", 200), "b");
	struct reader r = { 0 };
	pthread_t t;
	CHECK(pthread_create(&t, NULL, reader_main, &r) == 0);
	struct sam_error err = { 0 };
	for (int i = 0; i < 500; i++) {
		CHECKF(sam_adapters_use(i % 2 ? "a" : "b", &err) == 0, "switch %d: %s", i, err.msg);
		if (i % 50 == 0) usleep(1000); /* let the reader run between bursts too */
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	CHECKF(r.none == 0 && r.other == 0, "%ld of %ld reads failed or saw another id: %s", r.none + r.other, r.reads,
	       r.bad);
	CHECK(r.reads > 0);
	CHECK_STR(current(NULL, &err), "a");
}
