/* test_resource.c - memory levels, hysteresis, fake memory sources, the gate. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sam/resource.h"
#include "test.h"

static void init_default(struct sam_resource *r)
{
	struct sam_conf c = { 0 };
	setenv("SAM_FAKE_MEMAVAILABLE_MB", "8000", 1);
	CHECK(sam_resource_init(r, &c, NULL) == 0);
}

TEST(resource_levels_follow_thresholds_with_hysteresis)
{
	struct sam_resource r;
	init_default(&r);
	CHECK_INT(r.level, SAM_LEVEL_OK);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_OK, 2400), SAM_LEVEL_MEDIUM);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_OK, 1400), SAM_LEVEL_LOW);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_OK, 900), SAM_LEVEL_CRITICAL);
	/* back up only past threshold + 0.1 GB */
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_MEDIUM, 2600), SAM_LEVEL_MEDIUM);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_MEDIUM, 2700), SAM_LEVEL_OK);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_CRITICAL, 1050), SAM_LEVEL_CRITICAL);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_CRITICAL, 1200), SAM_LEVEL_LOW);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_CRITICAL, 9000), SAM_LEVEL_OK);
	CHECK_INT(sam_resource_level_for(&r, SAM_LEVEL_LOW, 1450), SAM_LEVEL_LOW); /* no flapping */
	sam_resource_free(&r);
}

TEST(resource_reads_fake_memory_file_each_poll)
{
	struct sam_resource r;
	init_default(&r);
	char path[512];
	snprintf(path, sizeof path, "%s/mem", test_tmpdir());
	setenv("SAM_FAKE_MEMAVAILABLE_FILE", path, 1);
	test_write_file(path, "1200\n", 5);
	bool changed;
	CHECK_INT(sam_resource_poll(&r, &changed), SAM_LEVEL_LOW);
	CHECK(changed);
	test_write_file(path, "500", 3);
	CHECK_INT(sam_resource_poll(&r, &changed), SAM_LEVEL_CRITICAL);
	test_write_file(path, "garbage", 7);
	CHECK_INT(sam_resource_poll(&r, &changed), SAM_LEVEL_CRITICAL); /* unreadable: keep the last level */
	CHECK(!changed);
	unsetenv("SAM_FAKE_MEMAVAILABLE_FILE");
	unsetenv("SAM_FAKE_MEMAVAILABLE_MB");
	double mb;
	CHECK(sam_mem_available_mb(&mb, NULL) == 0 && mb > 0); /* the real source works */
	CHECK(sam_rss_bytes() > 0);
	sam_resource_free(&r);
}

TEST(resource_config_overrides_and_validates)
{
	struct sam_conf c = { 0 };
	struct sam_resource r;
	struct sam_error err;
	CHECK(sam_conf_parse(&c, "[resource]\ncritical_gb = 2\nlow_gb = 3\nmedium_gb = 4\n", NULL) == 0);
	setenv("SAM_FAKE_MEMAVAILABLE_MB", "2500", 1);
	CHECK(sam_resource_init(&r, &c, NULL) == 0);
	CHECK_INT(r.level, SAM_LEVEL_CRITICAL + 1);
	sam_resource_free(&r);
	sam_conf_free(&c);
	CHECK(sam_conf_parse(&c, "[resource]\ncritical_gb = 3\nlow_gb = 2\n", NULL) == 0);
	CHECK_INT(sam_resource_init(&r, &c, &err), SAM_EINVAL);
	sam_conf_free(&c);
}

static struct sam_resource gate_r;
static int inside, max_inside;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++) {
		CHECK(sam_gate_acquire(&gate_r, -1));
		pthread_mutex_lock(&mu);
		if (++inside > max_inside) max_inside = inside;
		pthread_mutex_unlock(&mu);
		pthread_mutex_lock(&mu);
		inside--;
		pthread_mutex_unlock(&mu);
		sam_gate_release(&gate_r);
	}
	return NULL;
}

TEST(resource_gate_admits_one_at_a_time)
{
	init_default(&gate_r);
	pthread_t t[4];
	for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
	CHECK_INT(max_inside, 1);
	CHECK(sam_gate_try(&gate_r));
	CHECK(!sam_gate_acquire(&gate_r, 0.05)); /* times out while held */
	sam_gate_release(&gate_r);
	CHECK(sam_gate_try(&gate_r));
	sam_gate_release(&gate_r);
	sam_resource_free(&gate_r);
}
