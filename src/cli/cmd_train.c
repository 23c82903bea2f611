/*
 * cmd_train.c - `sam train`: one LoRA training run behind the machine-wide
 * training lock (train.h): the run record, the data, the trainer
 * (lora_train.h) with its progress line and its stop/pause controls, and
 * the deployment of an adapter that beats the base model.
 *
 * Exit status: 0 the run finished (deployed or not) or exported; 1 it
 * failed, or was refused (memory, no model, nothing to train on); 2 usage;
 * 3 another training holds the lock (nothing was started); 4 stopped on
 * request with a checkpoint saved (`sam train --resume` continues it).
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/adapters.h"
#include "sam/config.h"
#include "sam/db.h"
#include "sam/fs.h"
#include "sam/lora.h"
#include "sam/lora_train.h"
#include "sam/resource.h"
#include "sam/train.h"

static volatile sig_atomic_t stop_flag, pause_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_pause(int sig)
{
	(void)sig;
	pause_flag = !pause_flag;
}

struct job {
	char *model;
	struct sam_lora_train_opts o;
	struct sam_lora_train_hooks hk;
	double min_improvement; /* relative: 0.01 = the adapter's loss at least 1% below the base's */
	bool deploy;
	bool auto_deploy; /* deploy without asking ([train] auto_deploy, --auto-deploy) */
	bool tty;
	double last_line;
	int64_t max_mem_mb;
	char control[4096];
	char note[512]; /* what became of the adapter */
};

static void fmt_time(char *buf, size_t cap, double s)
{
	if (!(s >= 0) || s > 359999) snprintf(buf, cap, "--");
	else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
	else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else snprintf(buf, cap, "%ds", (int)s);
}

/* A bar redrawn in place on a terminal; otherwise a line at most every 2 s (and the last). */
static void progress(void *ctx, const struct sam_lora_train_progress *p)
{
	struct job *j = ctx;
	double now = sam_now();
	bool last = p->step == p->steps;
	if (strcmp(p->phase, "train") && strcmp(p->phase, "paused")) {
		if (j->tty) fputc('\n', stdout);
		printf("evaluating %s on the validation set...\n", !strcmp(p->phase, "eval-base") ? "the base model" : "the adapter");
		fflush(stdout);
		return;
	}
	if (!j->tty && !last && !p->paused && now - j->last_line < 2.0) return;
	j->last_line = now;
	char eta[16];
	fmt_time(eta, sizeof eta, p->eta_s);
	char line[256];
	int n = snprintf(line, sizeof line, "step %lld/%lld  epoch %d  loss %.4f  lr %.2e  %.0f tok/s  ETA %s%s",
			 (long long)p->step, (long long)p->steps, p->epoch, p->loss, p->lr, p->tok_per_s, eta,
			 p->paused ? "  [paused]" : "");
	(void)n;
	if (j->tty) {
		enum { W = 24 };
		int fill = p->steps > 0 ? (int)(W * p->step / p->steps) : 0;
		char bar[W + 1];
		for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
		bar[W] = '\0';
		printf("\r[%s] %s\033[K", bar, line);
	} else {
		printf("%s\n", line);
	}
	fflush(stdout);
}

/* Deploy the adapter when it beats the base by the margin; say what became of it in out->note. */
static void decide(struct job *j, const char *run_id, const char *adapter, const struct sam_lora_train_result *r,
		   struct sam_train_outcome *out)
{
	if (isnan(r->valid_loss)) {
		snprintf(out->note, sizeof out->note,
			 "not deployed: no validation examples to judge it by (the adapter is %.300s)", adapter);
		return;
	}
	double need = r->valid_loss_base * (1.0 - j->min_improvement);
	double change = (r->valid_loss / r->valid_loss_base - 1.0) * 100.0;
	if (r->valid_loss > need) {
		snprintf(out->note, sizeof out->note,
			 "not deployed: validation loss %.4f -> %.4f (%+.1f%%), needs %.1f%% better (the adapter is %.300s)",
			 r->valid_loss_base, r->valid_loss, change, j->min_improvement * 100.0, adapter);
		return;
	}
	if (!j->deploy) {
		snprintf(out->note, sizeof out->note, "not deployed (--no-deploy): validation loss %.4f -> %.4f (%+.1f%%)",
			 r->valid_loss_base, r->valid_loss, change);
		return;
	}
	if (!j->auto_deploy) { /* the scheduler proposes it once the run is recorded */
		out->propose_deploy = true;
		snprintf(out->note, sizeof out->note, "awaiting approval: validation loss %.4f -> %.4f (%+.1f%%)",
			 r->valid_loss_base, r->valid_loss, change);
		return;
	}
	struct sam_error err = { 0 };
	char said[128];
	if (sam_train_install(run_id, adapter, out->adapter, sizeof out->adapter, said, sizeof said, &err) &&
	    !out->adapter[0]) {
		snprintf(out->note, sizeof out->note, "not deployed: %.300s%s%.100s", err.msg, said[0] ? "; " : "", said);
		return;
	}
	snprintf(out->note, sizeof out->note, "deployed: validation loss %.4f -> %.4f (%+.1f%%); %s", r->valid_loss_base,
		 r->valid_loss, change, said);
}

/*
 * A run's options are kept beside its data (options.json), so --resume
 * continues with exactly those, whatever the command line says now.
 */
static int save_opts(const struct job *j, const char *data_dir, struct sam_error *err)
{
	const struct sam_lora_train_opts *o = &j->o;
	json_t *v = json_pack("{s:s, s:i, s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:I, s:i, s:i, s:i,"
			      " s:I, s:f, s:b}",
			      "model", j->model, "rank", o->rank, "alpha", (double)o->alpha, "targets", (int)o->targets,
			      "lr", o->lr, "min_lr_frac", o->min_lr_frac, "warmup_frac", o->warmup_frac, "weight_decay",
			      o->weight_decay, "beta1", o->beta1, "beta2", o->beta2, "eps", o->eps, "clip", o->clip,
			      "epochs", o->epochs, "steps", (json_int_t)o->steps, "batch", o->batch, "ctx", o->ctx,
			      "checkpoint_every", o->checkpoint_every, "seed", (json_int_t)o->seed, "min_improvement",
			      j->min_improvement, "deploy", j->deploy);
	char *text = v ? json_dumps(v, JSON_SORT_KEYS) : NULL;
	json_decref(v);
	if (!text) return sam_errorf(err, SAM_ENOMEM, "out of memory");
	char path[4200];
	snprintf(path, sizeof path, "%s/options.json", data_dir);
	int rc = sam_write_file_atomic(path, text, strlen(text), err);
	free(text);
	return rc;
}

static int load_opts(struct job *j, const char *data_dir, struct sam_error *err)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/options.json", data_dir);
	json_error_t je;
	json_t *v = json_load_file(path, 0, &je);
	if (!v) return sam_errorf(err, SAM_EFORMAT, "%s: %s", path, je.text);
	struct sam_lora_train_opts *o = &j->o;
	const char *model = NULL;
	json_int_t steps = 0, seed = 0;
	double alpha = 0;
	int targets = 0, deploy = 1;
	if (json_unpack_ex(v, &je, 0,
			   "{s:s, s:i, s:F, s:i, s:F, s:F, s:F, s:F, s:F, s:F, s:F, s:F, s:i, s:I, s:i, s:i, s:i, s:I, s:F, s:b}",
			   "model", &model, "rank", &o->rank, "alpha", &alpha, "targets", &targets, "lr", &o->lr,
			   "min_lr_frac", &o->min_lr_frac, "warmup_frac", &o->warmup_frac, "weight_decay", &o->weight_decay,
			   "beta1", &o->beta1, "beta2", &o->beta2, "eps", &o->eps, "clip", &o->clip, "epochs", &o->epochs,
			   "steps", &steps, "batch", &o->batch, "ctx", &o->ctx, "checkpoint_every", &o->checkpoint_every,
			   "seed", &seed, "min_improvement", &j->min_improvement, "deploy", &deploy)) {
		json_decref(v);
		return sam_errorf(err, SAM_EFORMAT, "%s: %s", path, je.text);
	}
	o->alpha = (float)alpha;
	o->targets = (unsigned)targets;
	o->steps = steps;
	o->seed = (uint64_t)seed;
	j->deploy = deploy;
	free(j->model);
	j->model = xstrdup(model);
	json_decref(v);
	return 0;
}

static int lora_step(void *ctx, const char *run_id, const char *data_dir, bool resume, struct sam_train_outcome *out,
		     struct sam_error *err)
{
	struct job *j = ctx;
	char adapter[4200];
	snprintf(adapter, sizeof adapter, "%s/adapter.gguf", data_dir);
	int rc = resume ? load_opts(j, data_dir, err) : save_opts(j, data_dir, err);
	if (rc) return rc;
	printf("run %s: %s %s, model %s\n", run_id, resume ? "resuming" : "training on", data_dir, j->model);
	fflush(stdout);
	struct sam_lora_train_result r;
	rc = sam_lora_train(j->model, data_dir, adapter, &j->o, resume, &j->hk, &r, err);
	if (j->tty) fputc('\n', stdout);
	out->steps = r.steps_done;
	out->valid_loss_base = r.valid_loss_base;
	out->valid_loss = r.valid_loss;
	if (rc) return rc;
	printf("trained %lld steps on %d sequences: %lld tokens in %.1f s (%.0f tok/s)\n", (long long)r.steps_done,
	       r.n_train, (long long)r.train_tokens, r.seconds, r.seconds > 0 ? (double)r.train_tokens / r.seconds : 0.0);
	if (!isnan(r.valid_loss))
		printf("validation (%d sequences): loss %.4f -> %.4f, perplexity %.2f -> %.2f\n", r.n_valid, r.valid_loss_base,
		       r.valid_loss, exp(r.valid_loss_base), exp(r.valid_loss));
	decide(j, run_id, adapter, &r, out);
	snprintf(j->note, sizeof j->note, "%s", out->note);
	return 0;
}

/* Refuse a run that would not fit: over --max-mem, or more than memory has, or memory not OK. */
static int check_memory(struct job *j, const struct sam_conf *conf, struct sam_error *err)
{
	size_t need;
	int rc = sam_lora_train_estimate(j->model, &j->o, 0, &need, err);
	if (rc) return rc;
	double need_mb = (double)need / (1 << 20);
	printf("memory estimate: %.0f MiB (weights mapped, adapter, activations for %d tokens)\n", need_mb, j->o.ctx);
	if (j->max_mem_mb > 0 && need_mb > (double)j->max_mem_mb)
		return sam_errorf(err, SAM_ENOMEM,
				  "this run needs about %.0f MiB, more than --max-mem %lld MiB (lower --ctx or --rank)", need_mb,
				  (long long)j->max_mem_mb);
	struct sam_resource res;
	if ((rc = sam_resource_init(&res, conf, err))) return rc;
	int level = sam_resource_poll(&res, NULL);
	double avail = 0;
	bool known = sam_mem_available_mb(&avail, NULL) == 0;
	sam_resource_free(&res);
	if (level != SAM_LEVEL_OK)
		return sam_errorf(err, SAM_ENOMEM, "memory is %s (%.0f MiB available): not starting a training now",
				  sam_level_name(level), avail);
	if (known && need_mb > avail)
		return sam_errorf(err, SAM_ENOMEM, "this run needs about %.0f MiB and only %.0f MiB are available", need_mb,
				  avail);
	return 0;
}

/* [train] settings from sam.conf as the defaults the options then override. */
static int load_conf(struct job *j, const struct sam_conf *c, struct sam_error *err)
{
	long long rank, batch, ctx, every, max_mem, epochs;
	double alpha, lr, minimp;
	bool deploy, auto_deploy;
	double total = sam_mem_total_mb();
	long long def_max = total > 0 ? (long long)(total * 0.75) : 6144;
	int rc = sam_conf_int(c, "train", "rank", j->o.rank, 1, 1024, &rank, err);
	if (!rc) rc = sam_conf_int(c, "train", "batch", j->o.batch, 1, 4096, &batch, err);
	if (!rc) rc = sam_conf_int(c, "train", "ctx", j->o.ctx, 2, 32768, &ctx, err);
	if (!rc) rc = sam_conf_int(c, "train", "epochs", j->o.epochs, 1, 1000, &epochs, err);
	if (!rc) rc = sam_conf_int(c, "train", "checkpoint_every", j->o.checkpoint_every, 0, 1 << 30, &every, err);
	if (!rc) rc = sam_conf_int(c, "train", "max_mem_mb", def_max, 0, 1 << 30, &max_mem, err);
	if (!rc) rc = sam_conf_float(c, "train", "alpha", j->o.alpha, &alpha, err);
	if (!rc) rc = sam_conf_float(c, "train", "lr", j->o.lr, &lr, err);
	if (!rc) rc = sam_conf_float(c, "train", "min_improvement", 0.01, &minimp, err);
	if (!rc) rc = sam_conf_bool(c, "train", "deploy", true, &deploy, err);
	if (!rc) rc = sam_conf_bool(c, "train", "auto_deploy", false, &auto_deploy, err);
	if (rc) return rc;
	const char *targets = sam_conf_str(c, "train", "targets", NULL);
	if (targets && (rc = sam_lora_parse_targets(targets, &j->o.targets, err))) return rc;
	j->o.rank = (int)rank;
	j->o.batch = (int)batch;
	j->o.ctx = (int)ctx;
	j->o.epochs = (int)epochs;
	j->o.checkpoint_every = (int)every;
	j->o.alpha = (float)alpha;
	j->o.lr = lr;
	j->min_improvement = minimp;
	j->deploy = deploy;
	j->auto_deploy = auto_deploy;
	j->max_mem_mb = max_mem;
	return 0;
}

enum {
	O_VALID = 256, O_DATA, O_MODEL, O_RANK, O_ALPHA, O_TARGETS, O_LR, O_EPOCHS, O_STEPS, O_BATCH, O_CTX,
	O_THREADS, O_EVERY, O_MAXMEM, O_RESUME, O_SEED, O_MINIMP, O_NODEPLOY, O_AUTODEPLOY, O_EXPORT
};

static const struct option long_opts[] = {
	{ "valid-fraction", required_argument, NULL, O_VALID },
	{ "data", required_argument, NULL, O_DATA },
	{ "model", required_argument, NULL, O_MODEL },
	{ "rank", required_argument, NULL, O_RANK },
	{ "alpha", required_argument, NULL, O_ALPHA },
	{ "targets", required_argument, NULL, O_TARGETS },
	{ "lr", required_argument, NULL, O_LR },
	{ "epochs", required_argument, NULL, O_EPOCHS },
	{ "steps", required_argument, NULL, O_STEPS },
	{ "batch", required_argument, NULL, O_BATCH },
	{ "ctx", required_argument, NULL, O_CTX },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "checkpoint-every", required_argument, NULL, O_EVERY },
	{ "max-mem", required_argument, NULL, O_MAXMEM },
	{ "resume", optional_argument, NULL, O_RESUME },
	{ "seed", required_argument, NULL, O_SEED },
	{ "min-improvement", required_argument, NULL, O_MINIMP },
	{ "no-deploy", no_argument, NULL, O_NODEPLOY },
	{ "auto-deploy", no_argument, NULL, O_AUTODEPLOY },
	{ "export-only", no_argument, NULL, O_EXPORT },
	{ 0 },
};

struct args {
	struct sam_train_spec spec;
	const char *model;
	bool export_only;
};

/* One option into j/a; 0, or a usage message in err. */
static int parse_opt(int c, const char *v, struct job *j, struct args *a, struct sam_error *err)
{
	long long n;
	double f;
	switch (c) {
	case O_VALID:
		if (!cli_parse_float(v, 0, 1, &a->spec.valid_fraction)) return sam_errorf(err, SAM_EINVAL, "--valid-fraction: expected 0..1");
		return 0;
	case O_DATA: a->spec.data_dir = v; return 0;
	case O_MODEL: a->model = v; return 0;
	case O_RESUME: a->spec.resume = v ? v : ""; return 0;
	case O_TARGETS: return sam_lora_parse_targets(v, &j->o.targets, err);
	case O_NODEPLOY: j->deploy = false; return 0;
	case O_AUTODEPLOY: j->auto_deploy = true; return 0;
	case O_EXPORT: a->export_only = true; return 0;
	case O_ALPHA:
	case O_LR:
	case O_MINIMP:
		if (!cli_parse_float(v, c == O_LR ? 1e-12 : 0, c == O_MINIMP ? 1 : c == O_LR ? 1 : 1e6, &f))
			return sam_errorf(err, SAM_EINVAL, "--%s: '%s' is not a number in range",
					  c == O_ALPHA ? "alpha" : c == O_LR ? "lr" : "min-improvement", v);
		if (c == O_ALPHA) j->o.alpha = (float)f;
		else if (c == O_LR) j->o.lr = f;
		else j->min_improvement = f;
		return 0;
	}
	static const struct {
		int c;
		const char *name;
		long long min, max;
	} ints[] = {
		{ O_RANK, "rank", 1, 1024 },	{ O_EPOCHS, "epochs", 1, 1000 },   { O_STEPS, "steps", 1, 1LL << 40 },
		{ O_BATCH, "batch", 1, 4096 },	{ O_CTX, "ctx", 2, 32768 },	   { O_THREADS, "threads", 1, 1024 },
		{ O_EVERY, "checkpoint-every", 0, 1 << 30 }, { O_MAXMEM, "max-mem", 0, 1 << 30 },
		{ O_SEED, "seed", 0, (1LL << 62) },
	};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		if (ints[i].c != c) continue;
		if (!cli_parse_int(v, ints[i].min, ints[i].max, &n))
			return sam_errorf(err, SAM_EINVAL, "--%s: expected an integer in [%lld, %lld]", ints[i].name, ints[i].min,
					  ints[i].max);
		switch (c) {
		case O_RANK: j->o.rank = (int)n; break;
		case O_EPOCHS: j->o.epochs = (int)n; break;
		case O_STEPS: j->o.steps = n; break;
		case O_BATCH: j->o.batch = (int)n; break;
		case O_CTX: j->o.ctx = (int)n; break;
		case O_THREADS: j->o.n_threads = (int)n; break;
		case O_EVERY: j->o.checkpoint_every = (int)n; break;
		case O_MAXMEM: j->max_mem_mb = n; break;
		case O_SEED: j->o.seed = (uint64_t)n; break;
		}
		return 0;
	}
	return sam_errorf(err, SAM_EINVAL, "unknown option");
}

static void install_signals(void)
{
	struct sigaction sa = { 0 };
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_pause;
	sigaction(SIGUSR1, &sa, NULL);
}

static int report_end(int rc, const struct sam_train_result *res, const struct sam_error *err)
{
	if (rc == SAM_ESTOPPED) {
		printf("run %s stopped: %s\nresume it with `sam train --resume %s`\n", res->run_id, err->msg, res->run_id);
		return 4;
	}
	if (rc) {
		if (res->run_id[0]) fprintf(stderr, "sam train: run %s failed: %s\n", res->run_id, err->msg);
		else fprintf(stderr, "sam train: %s\n", err->msg);
		return 1;
	}
	printf("run %s: %s; %lld training and %lld validation examples in %s\n", res->run_id, res->status,
	       (long long)res->n_train, (long long)res->n_valid, res->data_dir);
	return 0;
}

int cmd_train(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("train");
	struct job j = { 0 };
	struct sam_conf conf = { 0 };
	struct args a = { .spec = { .valid_fraction = 0.1, .conf = &conf } };
	struct sam_error err = { 0 };
	sam_lora_train_defaults(&j.o);
	if (sam_home_init(&err) || sam_conf_load(&conf, NULL, &err) || load_conf(&j, &conf, &err)) {
		fprintf(stderr, "sam train: %s\n", err.msg);
		sam_conf_free(&conf);
		return 1;
	}
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		if (c == ':' || c == '?') {
			sam_conf_free(&conf);
			return cli_usage_error(cmd, c == ':' ? "option '%s' needs a value" : "unknown option '%s'", argv[optind - 1]);
		}
		if (parse_opt(c, optarg, &j, &a, &err)) {
			sam_conf_free(&conf);
			return cli_usage_error(cmd, "%s", err.msg);
		}
	}
	if (optind < argc) {
		sam_conf_free(&conf);
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	}
	int status = 1;
	struct sam_trainer trainer = { "sam-lora", lora_step, &j };
	if (!a.export_only) {
		j.model = sam_conf_model_path(&conf, a.model);
		if (!j.model) {
			fprintf(stderr, "sam train: no model to train: run `sam pull`, or pass --model FILE.gguf\n");
			goto out;
		}
		if (check_memory(&j, &conf, &err)) {
			fprintf(stderr, "sam train: %s\n", err.msg);
			goto out;
		}
	}
	int lock = -1;
	int rc = sam_train_lock(&lock, &err);
	if (rc) {
		fprintf(stderr, "sam train: %s%s\n", err.msg, rc == SAM_EBUSY ? "; not starting another" : "");
		status = rc == SAM_EBUSY ? 3 : 1;
		goto out;
	}
	struct sam_db *db;
	if ((rc = sam_db_open(&db, NULL, &err))) {
		fprintf(stderr, "sam train: %s\n", err.msg);
		sam_train_unlock(lock);
		goto out;
	}
	if (sam_home_path(j.control, sizeof j.control, "run/train.control")) j.control[0] = '\0';
	unlink(j.control); /* a stale "stop" must not end this run at once */
	j.tty = isatty(STDOUT_FILENO);
	j.hk = (struct sam_lora_train_hooks){ .progress = progress, .ctx = &j, .stop = &stop_flag, .pause = &pause_flag,
					      .control_file = j.control[0] ? j.control : NULL };
	install_signals();
	struct sam_train_result res;
	rc = sam_train_run(db, a.export_only ? NULL : &trainer, &a.spec, &res, &err);
	if (!rc && j.note[0]) printf("%s\n", j.note);
	if (!rc && res.approval > 0)
		printf("deploying it needs your approval: `sam approve %lld` (or `sam reject %lld`)\n",
		       (long long)res.approval, (long long)res.approval);
	sam_db_close(db);
	sam_train_unlock(lock);
	status = report_end(rc, &res, &err);
	if (!rc && a.export_only) printf("(--export-only: the data is ready for a training run)\n");
out:
	free(j.model);
	sam_conf_free(&conf);
	return status;
}
