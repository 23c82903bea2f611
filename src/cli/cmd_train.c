/*
 * cmd_train.c - `sam train`: one training run behind the machine-wide
 * training lock (train.h). Until the LoRA trainer exists, a run exports
 * its data into $SAM_HOME/data/runs/<id>/ and is recorded as 'exported'.
 *
 * Exit status: 0 the run finished (or exported); 1 it failed or there is
 * nothing to train on; 2 usage; 3 another training holds the lock
 * (nothing was started).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/db.h"
#include "sam/fs.h"
#include "sam/train.h"

int cmd_train(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("train");
	double frac = 0.1;
	static const struct option lo[] = { { "valid-fraction", required_argument, NULL, 'v' }, { 0 } };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (!cli_parse_float(optarg, 0, 1, &frac)) return cli_usage_error(cmd, "--valid-fraction: expected 0..1");
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	struct sam_error err = { 0 };
	if (sam_home_init(&err)) {
		fprintf(stderr, "sam train: %s\n", err.msg);
		return 1;
	}
	int lock = -1;
	int rc = sam_train_lock(&lock, &err);
	if (rc == SAM_EBUSY) {
		fprintf(stderr, "sam train: %s; not starting another\n", err.msg);
		return 3;
	}
	if (rc) {
		fprintf(stderr, "sam train: %s\n", err.msg);
		return 1;
	}
	struct sam_db *db;
	if ((rc = sam_db_open(&db, NULL, &err))) {
		fprintf(stderr, "sam train: %s\n", err.msg);
		sam_train_unlock(lock);
		return 1;
	}
	struct sam_train_result res;
	rc = sam_train_run(db, NULL, frac, &res, &err);
	sam_db_close(db);
	sam_train_unlock(lock);
	if (rc) {
		if (res.run_id[0]) fprintf(stderr, "sam train: run %s failed: %s\n", res.run_id, err.msg);
		else fprintf(stderr, "sam train: %s\n", err.msg);
		return 1;
	}
	printf("run %s: %s; %lld training and %lld validation examples in %s\n", res.run_id, res.status,
	       (long long)res.n_train, (long long)res.n_valid, res.data_dir);
	if (!strcmp(res.status, "exported")) printf("(no trainer in this build yet: the data is ready for one)\n");
	return 0;
}
