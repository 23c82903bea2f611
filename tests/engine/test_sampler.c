/* test_sampler.c - each stage of the sampling chain and its determinism. */
#include <math.h>
#include <string.h>

#include "sam/sampler.h"
#include "test.h"

static void init(struct sam_sampler *s, float temp, int top_k, float top_p, float min_p, uint64_t seed, int n)
{
	struct sam_sampler_params p;
	sam_sampler_defaults(&p);
	p.temp = temp;
	p.top_k = top_k;
	p.top_p = top_p;
	p.min_p = min_p;
	p.seed = seed;
	CHECK(sam_sampler_init(s, &p, n, NULL) == 0);
}

TEST(sampler_greedy_takes_argmax_lowest_id_on_tie)
{
	struct sam_sampler s;
	float l[5] = { 0.1f, 3.0f, -1.0f, 3.0f, 2.9f };
	init(&s, 0, 40, 0.95f, 0.05f, 1, 5);
	CHECK_INT(sam_sampler_sample(&s, l), 1);
	sam_sampler_free(&s);
}

TEST(sampler_top_k_one_is_greedy)
{
	struct sam_sampler s;
	float l[6] = { 0.5f, 0.4f, 0.45f, 0.1f, 0.49f, 0.3f };
	init(&s, 1.5f, 1, 1.0f, 0.0f, 7, 6);
	for (int i = 0; i < 200; i++) CHECK_INT(sam_sampler_sample(&s, l), 0);
	sam_sampler_free(&s);
}

TEST(sampler_same_seed_same_tokens)
{
	struct sam_sampler a, b, c;
	float l[50];
	for (int i = 0; i < 50; i++) l[i] = (float)(i % 7) * 0.3f;
	init(&a, 1.0f, 0, 1.0f, 0.0f, 42, 50);
	init(&b, 1.0f, 0, 1.0f, 0.0f, 42, 50);
	init(&c, 1.0f, 0, 1.0f, 0.0f, 43, 50);
	int differ = 0;
	for (int i = 0; i < 100; i++) {
		int32_t x = sam_sampler_sample(&a, l), y = sam_sampler_sample(&b, l), z = sam_sampler_sample(&c, l);
		CHECK_INT(x, y);
		differ += x != z;
	}
	CHECK(differ > 10);
	sam_sampler_free(&a), sam_sampler_free(&b), sam_sampler_free(&c);
}

/* With every filter off, frequencies follow softmax(logits / temp). */
TEST(sampler_distribution_follows_softmax)
{
	struct sam_sampler s;
	float l[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
	int count[3] = { 0 };
	init(&s, 1.0f, 0, 1.0f, 0.0f, 3, 3);
	for (int i = 0; i < 30000; i++) count[sam_sampler_sample(&s, l)]++;
	CHECKF(fabs(count[0] / 30000.0 - 0.5) < 0.02 && fabs(count[1] / 30000.0 - 0.3) < 0.02 &&
		       fabs(count[2] / 30000.0 - 0.2) < 0.02,
	       "counts %d %d %d", count[0], count[1], count[2]);
	sam_sampler_free(&s);
	/* temperature 2 flattens: p ~ sqrt(p) normalised */
	init(&s, 2.0f, 0, 1.0f, 0.0f, 4, 3);
	memset(count, 0, sizeof count);
	for (int i = 0; i < 30000; i++) count[sam_sampler_sample(&s, l)]++;
	double z = sqrt(0.5) + sqrt(0.3) + sqrt(0.2);
	CHECKF(fabs(count[2] / 30000.0 - sqrt(0.2) / z) < 0.02, "temp 2: %d %d %d", count[0], count[1], count[2]);
	sam_sampler_free(&s);
}

TEST(sampler_top_p_cuts_the_tail)
{
	struct sam_sampler s;
	float l[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
	int count[3] = { 0 };
	init(&s, 1.0f, 0, 0.6f, 0.0f, 5, 3);
	for (int i = 0; i < 5000; i++) count[sam_sampler_sample(&s, l)]++;
	CHECK(count[2] == 0 && count[1] > 0 && count[0] > count[1]);
	sam_sampler_free(&s);
}

TEST(sampler_min_p_cuts_unlikely_tokens)
{
	struct sam_sampler s;
	float l[4] = { logf(0.4f), logf(0.3f), logf(0.19f), logf(0.11f) };
	int count[4] = { 0 };
	init(&s, 1.0f, 0, 1.0f, 0.5f, 6, 4); /* keep p >= 0.2 */
	for (int i = 0; i < 5000; i++) count[sam_sampler_sample(&s, l)]++;
	CHECK(count[2] == 0 && count[3] == 0 && count[0] > 0 && count[1] > 0);
	sam_sampler_free(&s);
}

TEST(sampler_top_k_keeps_k_best)
{
	struct sam_sampler s;
	float l[1000];
	for (int i = 0; i < 1000; i++) l[i] = (float)((i * 7919) % 1000) / 100.0f; /* a permutation */
	init(&s, 100.0f, 3, 1.0f, 0.0f, 8, 1000);
	for (int i = 0; i < 2000; i++) {
		int32_t t = sam_sampler_sample(&s, l);
		CHECKF(l[t] >= 9.97f, "token %d with logit %f is outside the top 3", t, l[t]);
	}
	sam_sampler_free(&s);
}

TEST(sampler_repetition_penalty)
{
	struct sam_sampler s;
	struct sam_sampler_params p;
	sam_sampler_defaults(&p);
	p.temp = 0;
	p.repeat_penalty = 1.1f;
	p.repeat_last_n = 2;
	CHECK(sam_sampler_init(&s, &p, 3, NULL) == 0);
	float l[3] = { 2.0f, 1.9f, -0.1f };
	CHECK_INT(sam_sampler_sample(&s, l), 0);
	sam_sampler_accept(&s, 0); /* 2.0 / 1.1 < 1.9 */
	CHECK_INT(sam_sampler_sample(&s, l), 1);
	sam_sampler_accept(&s, 2);
	sam_sampler_accept(&s, 2); /* token 0 left the window of 2 */
	CHECK_INT(sam_sampler_sample(&s, l), 0);
	float neg[3] = { -1.0f, -1.05f, -5.0f };
	sam_sampler_accept(&s, 0);
	CHECK_INT(sam_sampler_sample(&s, neg), 1); /* negative logits are multiplied */
	sam_sampler_free(&s);
}
