/*
 * cmd_learn.c - `sam learn add FILE|DIR...` (ingest by hand, directories
 * recursively), `sam learn stats`, and `sam dataset export`.
 *
 * Exit status: 0 every file ingested cleanly (or skipped as already seen);
 * 1 some file or line was rejected (each reason on stderr; the good parts
 * are kept), or the store failed; 2 usage.
 */
#include <getopt.h>
#include <sqlite3.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "sam/db.h"
#include "sam/fs.h"
#include "sam/learn.h"

struct add_totals {
	struct sam_db *db;
	int chunk;
	int64_t files, added, duplicates, skipped, bad;
	bool failed;
};

static void add_one(struct add_totals *t, const char *path)
{
	struct sam_ingest_result r;
	struct sam_error err = { 0 };
	int rc = sam_ingest_file(t->db, path, t->chunk, &r, &err);
	t->files++;
	if (r.skipped) {
		t->skipped++;
		printf("%s: already ingested\n", path);
		return;
	}
	t->added += r.added;
	t->duplicates += r.duplicates;
	t->bad += r.bad;
	if (rc) {
		t->failed = true;
		fprintf(stderr, "sam learn: %s\n", err.msg);
		return;
	}
	printf("%s: %lld new, %lld already known", path, (long long)r.added, (long long)r.duplicates);
	if (r.bad) {
		t->failed = true;
		printf(", %lld rejected\n", (long long)r.bad);
		fprintf(stderr, "sam learn: %s: %s\n", path, r.errors);
	} else {
		printf("\n");
	}
}

static int walk_file(void *ctx, const char *path)
{
	add_one(ctx, path);
	return 0;
}

static int walk_error(void *ctx, const char *path, int errnum)
{
	fprintf(stderr, "sam learn: %s: %s\n", path, strerror(errnum));
	((struct add_totals *)ctx)->failed = true;
	return 0;
}

/* SAM_HOME's database; 1 with the reason on stderr (prefixed "sam WHO: ") when it cannot be opened. */
static int open_db(const char *who, struct sam_db **db)
{
	struct sam_error err = { 0 };
	if (sam_home_init(&err) || sam_db_open(db, NULL, &err)) {
		fprintf(stderr, "sam %s: %s\n", who, err.msg);
		return 1;
	}
	return 0;
}

static int learn_add(const struct sam_cmd *cmd, int argc, char **argv)
{
	long long chunk = 0;
	static const struct option lo[] = { { "chunk-chars", required_argument, NULL, 'c' }, { 0 } };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:", lo, NULL)) != -1) {
		if (c == 'c') {
			if (!cli_parse_int(optarg, 64, 1 << 20, &chunk))
				return cli_usage_error(cmd, "--chunk-chars: expected 64..1048576");
		} else if (c == ':') {
			return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		} else {
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) return cli_usage_error(cmd, "learn add: no FILE given");
	struct add_totals t = { .chunk = (int)chunk };
	if (open_db("learn", &t.db)) return 1;
	for (int i = optind; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb)) {
			fprintf(stderr, "sam learn: %s: no such file or directory\n", argv[i]);
			t.failed = true;
		} else if (S_ISDIR(sb.st_mode)) {
			sam_learn_walk(argv[i], &(struct sam_walk_cb){ .on_file = walk_file, .on_error = walk_error }, &t);
		} else {
			add_one(&t, argv[i]);
		}
	}
	sam_db_close(t.db);
	printf("%lld files (%lld already ingested): %lld new examples, %lld already known, %lld rejected\n",
	       (long long)t.files, (long long)t.skipped, (long long)t.added, (long long)t.duplicates, (long long)t.bad);
	return t.failed ? 1 : 0;
}

static void print_by(void *ctx, const char *source, const char *category, int64_t n)
{
	(void)ctx;
	printf("  %-12s %-20s %lld\n", source, *category ? category : "-", (long long)n);
}

static void print_last_run(struct sam_db *db)
{
	sqlite3_stmt *st;
	if (sam_db_prepare(db, &st,
			   "SELECT id, status, n_train, n_valid, coalesce(error, '') FROM training_runs"
			   " ORDER BY started DESC LIMIT 1",
			   NULL)) {
		printf("last training run: unknown\n");
		return;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		printf("last training run: %s, %s (%lld training, %lld validation examples)%s%s\n",
		       (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		       (long long)sqlite3_column_int64(st, 2), (long long)sqlite3_column_int64(st, 3),
		       *sqlite3_column_text(st, 4) ? ": " : "", (const char *)sqlite3_column_text(st, 4));
	else
		printf("last training run: none\n");
	sqlite3_finalize(st);
}

static int learn_stats(const struct sam_cmd *cmd, int argc, char **argv)
{
	if (argc > 1) return cli_usage_error(cmd, "learn stats: unexpected argument '%s'", argv[1]);
	struct sam_db *db;
	if (open_db("learn", &db)) return 1;
	struct sam_learn_stats st;
	struct sam_error err = { 0 };
	int rc = sam_learn_stats(db, &st, &err);
	if (!rc) {
		printf("examples: %lld (%lld chat, %lld text), %lld waiting for training\n", (long long)st.examples,
		       (long long)st.chat, (long long)st.text, (long long)st.pending);
		printf("files: %lld ok, %lld partly rejected, %lld rejected\n", (long long)st.files_ok,
		       (long long)st.files_partial, (long long)st.files_error);
		if (st.examples) {
			printf("by source and category:\n");
			rc = sam_learn_stats_by(db, print_by, NULL, &err);
		}
		if (!rc) print_last_run(db);
	}
	sam_db_close(db);
	if (rc) fprintf(stderr, "sam learn: %s\n", err.msg);
	return rc ? 1 : 0;
}

int cmd_learn(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("learn");
	if (argc < 2) return cli_usage_error(cmd, "learn: which one? add, stats, watch or curriculum");
	if (!strcmp(argv[1], "add")) return learn_add(cmd, argc - 1, argv + 1);
	if (!strcmp(argv[1], "stats")) return learn_stats(cmd, argc - 1, argv + 1);
	if (!strcmp(argv[1], "watch")) return learn_watch(cmd, argc - 1, argv + 1);
	if (!strcmp(argv[1], "curriculum")) return learn_curriculum(cmd, argc - 1, argv + 1);
	return cli_usage_error(cmd, "learn: unknown subcommand '%s'", argv[1]);
}

int cmd_dataset(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("dataset");
	if (argc < 2 || strcmp(argv[1], "export")) return cli_usage_error(cmd, "dataset: expected 'export'");
	const char *out = NULL;
	double frac = 0.1;
	static const struct option lo[] = { { "out", required_argument, NULL, 'o' },
					    { "valid-fraction", required_argument, NULL, 'v' },
					    { 0 } };
	int c;
	optind = 1;
	opterr = 0;
	argc--, argv++;
	while ((c = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'v':
			if (!cli_parse_float(optarg, 0, 1, &frac)) return cli_usage_error(cmd, "--valid-fraction: expected 0..1");
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!out) return cli_usage_error(cmd, "dataset export: --out DIR is required");
	struct sam_db *db;
	if (open_db("dataset", &db)) return 1;
	struct sam_error err = { 0 };
	int64_t nt = 0, nv = 0;
	int rc = sam_dataset_export(db, out, frac, &nt, &nv, &err);
	sam_db_close(db);
	if (rc) {
		fprintf(stderr, "sam dataset: %s\n", err.msg);
		return 1;
	}
	printf("%s/train.jsonl: %lld examples\n%s/valid.jsonl: %lld examples\n", out, (long long)nt, out, (long long)nv);
	return 0;
}
