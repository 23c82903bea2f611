/*
 * test_trainer.c - the training loop on the real stories260K model: it
 * learns a small story set (validation loss falls by a clear margin and
 * the adapter file is one the engine loads), a stopped run resumes to the
 * same adapter bit for bit, and a checkpoint is refused under other
 * settings.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sam/lora.h"
#include "sam/lora_train.h"
#include "sam/model.h"
#include "test.h"
#include "train/data.h"
#include "train/stories.h"

static const char *make_data(void)
{
	static char dir[512];
	snprintf(dir, sizeof dir, "%s/run", test_tmpdir());
	mkdir(dir, 0755);
	char p[600];
	snprintf(p, sizeof p, "%s/train.jsonl", dir);
	stories_write(p, 24, 0, 4);
	snprintf(p, sizeof p, "%s/valid.jsonl", dir);
	stories_write(p, 6, 1, 4);
	return dir;
}

static void small_opts(struct sam_lora_train_opts *o)
{
	sam_lora_train_defaults(o);
	o->rank = 4;
	o->alpha = 8;
	o->lr = 1e-2;
	o->steps = 24;
	o->batch = 3;
	o->ctx = 64;
	o->n_threads = 2;
	o->checkpoint_every = 5;
}

TEST(trainer_learns_a_story_set)
{
	const char *dir = make_data();
	char adapter[600];
	snprintf(adapter, sizeof adapter, "%s/a.gguf", dir);
	struct sam_lora_train_opts o;
	small_opts(&o);
	struct sam_lora_train_result res;
	struct sam_error err = { 0 };
	const char *model = test_model("stories260K.gguf");
	CHECKF(!sam_lora_train(model, dir, adapter, &o, false, NULL, &res, &err), "%s", err.msg);
	CHECK_INT(res.steps_done, 24);
	CHECK_INT(res.n_train, 24);
	CHECK_INT(res.n_valid, 6);
	CHECKF(res.valid_loss < 0.7 * res.valid_loss_base, "validation loss %.4f, base %.4f: not learnt", res.valid_loss,
	       res.valid_loss_base);
	/* the checkpoint of a completed run is gone; the adapter loads */
	char ck[600];
	snprintf(ck, sizeof ck, "%s/checkpoint.bin", dir);
	CHECK(access(ck, F_OK) != 0);
	struct sam_model m;
	struct sam_lora lo;
	CHECK(!sam_model_load(&m, model, &err));
	CHECKF(!sam_lora_load(&lo, &m, adapter, &err), "%s", err.msg);
	CHECK_INT(lo.rank, 4);
	CHECK_INT(lo.targets, SAM_LORA_ALL);
	sam_lora_free(&lo);
	sam_model_free(&m);
}

static volatile sig_atomic_t stop_flag;
static void stop_at_7(void *ctx, const struct sam_lora_train_progress *p)
{
	(void)ctx;
	if (p->step == 7) stop_flag = 1;
}

static char *slurp(const char *path, size_t *len)
{
	char *d = test_read_file(path, len);
	CHECKF(d != NULL, "cannot read %s", path);
	return d;
}

TEST(trainer_stopped_and_resumed_equals_uninterrupted)
{
	const char *dir = make_data();
	const char *model = test_model("stories260K.gguf");
	struct sam_lora_train_opts o;
	small_opts(&o);
	struct sam_lora_train_result res;
	struct sam_error err = { 0 };
	char a1[600], a2[600], ck[600];
	snprintf(a1, sizeof a1, "%s/whole.gguf", dir);
	snprintf(a2, sizeof a2, "%s/resumed.gguf", dir);
	snprintf(ck, sizeof ck, "%s/checkpoint.bin", dir);
	CHECKF(!sam_lora_train(model, dir, a1, &o, false, NULL, &res, &err), "%s", err.msg);

	/* resume with nothing to resume from */
	CHECK(sam_lora_train(model, dir, a2, &o, true, NULL, &res, &err) == SAM_ENOTFOUND);

	struct sam_lora_train_hooks hk = { .progress = stop_at_7, .stop = &stop_flag };
	stop_flag = 0;
	o.n_threads = 1; /* the result does not depend on the threads either */
	int rc = sam_lora_train(model, dir, a2, &o, false, &hk, &res, &err);
	CHECKF(rc == SAM_ESTOPPED, "rc %d: %s", rc, err.msg);
	CHECK_INT(res.steps_done, 7);
	CHECK(access(ck, F_OK) == 0);
	CHECK(access(a2, F_OK) != 0);

	/* other settings: refused, naming the setting */
	o.lr = 2e-2;
	CHECK(sam_lora_train(model, dir, a2, &o, true, NULL, &res, &err) == SAM_EINVAL);
	CHECKF(strstr(err.msg, "lr=") != NULL, "%s", err.msg);
	o.lr = 1e-2;

	stop_flag = 0;
	o.n_threads = 2;
	CHECKF(!sam_lora_train(model, dir, a2, &o, true, NULL, &res, &err), "%s", err.msg);
	CHECK(res.resumed);
	CHECK_INT(res.resumed_at, 7);
	size_t l1, l2;
	char *d1 = slurp(a1, &l1), *d2 = slurp(a2, &l2);
	CHECK(l1 == l2 && !memcmp(d1, d2, l1));
	free(d1);
	free(d2);
}

/* A damaged checkpoint is refused, not half-loaded. */
TEST(trainer_refuses_a_damaged_checkpoint)
{
	const char *dir = make_data();
	const char *model = test_model("stories260K.gguf");
	struct sam_lora_train_opts o;
	small_opts(&o);
	struct sam_lora_train_result res;
	struct sam_error err = { 0 };
	char a[600], ck[600];
	snprintf(a, sizeof a, "%s/x.gguf", dir);
	snprintf(ck, sizeof ck, "%s/checkpoint.bin", dir);
	struct sam_lora_train_hooks hk = { .progress = stop_at_7, .stop = &stop_flag };
	stop_flag = 0;
	CHECK(sam_lora_train(model, dir, a, &o, false, &hk, &res, &err) == SAM_ESTOPPED);
	size_t len;
	char *d = slurp(ck, &len);
	d[len / 2] ^= 1;
	test_write_file(ck, d, len);
	CHECK(sam_lora_train(model, dir, a, &o, true, NULL, &res, &err) == SAM_EFORMAT);
	test_write_file(ck, d, len / 3);
	CHECK(sam_lora_train(model, dir, a, &o, true, NULL, &res, &err) == SAM_EFORMAT);
	free(d);
}

/* Chat examples: loss on the assistant's answer and its end marker only. */
TEST(trainer_data_masks_all_but_the_answers)
{
	struct sam_model m;
	struct sam_error err = { 0 };
	CHECK(!sam_model_load(&m, test_model("tiny-qwen2.gguf"), &err));
	const char *line = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
			   "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello there\"},"
			   "{\"role\":\"user\",\"content\":\"Bye\"},{\"role\":\"assistant\",\"content\":\"See you\"}]}";
	struct train_seq s;
	CHECKF(!train_tokenize_line(&m, line, strlen(line), 1000, &s, &err), "%s", err.msg);
	/* the counted tokens spell the two answers with their end-of-turn markers */
	char text[512] = "";
	size_t at = 0;
	for (int i = 0; i < s.n; i++)
		if (s.loss[i]) at += tok_piece(&m.vocab, s.tok[i], true, text + at, sizeof text - 1 - at);
	text[at] = '\0';
	CHECK_STR(text, "Hello there<|im_end|>\nSee you<|im_end|>\n");
	free(s.tok);
	free(s.loss);
	/* a text example: everything but the first token counts, EOS at the end */
	const char *t = "{\"text\":\"plain words here\"}";
	CHECKF(!train_tokenize_line(&m, t, strlen(t), 1000, &s, &err), "%s", err.msg);
	CHECK(s.loss[0] == 0);
	for (int i = 1; i < s.n; i++) CHECK(s.loss[i] == 1);
	if (m.vocab.eos >= 0) CHECK(s.tok[s.n - 1] == m.vocab.eos);
	free(s.tok);
	free(s.loss);
	/* not an example */
	CHECK(train_tokenize_line(&m, "{\"x\":1}", 7, 1000, &s, &err) == SAM_EINVAL);
	sam_model_free(&m);
}
