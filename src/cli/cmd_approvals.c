/*
 * cmd_approvals.c - `sam approvals`, `sam approve ID`, `sam reject ID`:
 * the approval queue (approvals.h) read and decided directly in sam.db,
 * so they work whether or not the api runs. The decider is $USER (else
 * "user").
 *
 * Exit status: 0 done (approve: executed); 1 an error, a conflict (not
 * pending any more) or an approved execution that failed; 2 usage.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/approvals.h"
#include "sam/config.h"
#include "sam/db.h"
#include "sam/fs.h"
#include "sam/utf8.h"

#define TITLE_COLS 60 /* bytes of a title shown in the table */

/* The state the commands work on: config and a connection, or a message on stderr. */
struct appr_cli {
	struct sam_conf conf;
	struct sam_db *db;
};

static int open_store(const char *name, struct appr_cli *c)
{
	struct sam_error err = { 0 };
	memset(c, 0, sizeof *c);
	if (sam_home_init(&err) || sam_conf_load(&c->conf, NULL, &err) || sam_db_open(&c->db, NULL, &err)) {
		fprintf(stderr, "sam %s: %s\n", name, err.msg);
		sam_conf_free(&c->conf);
		return 1;
	}
	return 0;
}

static void close_store(struct appr_cli *c)
{
	sam_db_close(c->db);
	sam_conf_free(&c->conf);
}

static const char *fmt_age(char *buf, size_t cap, double secs)
{
	if (secs < 0) secs = 0;
	if (secs < 120) snprintf(buf, cap, "%.0fs", secs);
	else if (secs < 7200) snprintf(buf, cap, "%.0fm", secs / 60);
	else if (secs < 2 * 86400) snprintf(buf, cap, "%.0fh", secs / 3600);
	else snprintf(buf, cap, "%.0fd", secs / 86400);
	return buf;
}

static void print_table(const struct sam_approval *list, size_t n, int status)
{
	if (!n) {
		if (status < 0) printf("(no approvals)\n");
		else printf("(no %s approvals)\n", sam_approval_status_name(status));
		return;
	}
	double now = sam_db_time();
	printf("%6s  %-8s  %-15s  %5s  %s\n", "ID", "STATUS", "KIND", "AGE", "TITLE");
	for (size_t i = 0; i < n; i++) {
		const struct sam_approval *a = &list[i];
		char age[16];
		size_t len = strlen(a->title), shown = len > TITLE_COLS ? utf8_safe_end(a->title, TITLE_COLS) : len;
		printf("%6lld  %-8s  %-15s  %5s  %.*s%s\n", (long long)a->id, sam_approval_status_name(a->status), a->kind,
		       fmt_age(age, sizeof age, now - a->created), (int)shown, a->title, shown < len ? "..." : "");
	}
}

static const struct option list_opts[] = {
	{ "all", no_argument, NULL, 'a' },
	{ "status", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, 'j' },
	{ 0 },
};

int cmd_approvals(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("approvals");
	int status = SAM_APPROVAL_PENDING, c;
	bool json = false;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", list_opts, NULL)) != -1) {
		switch (c) {
		case 'a': status = -1; break;
		case 's':
			if (!strcmp(optarg, "all")) status = -1;
			else if ((status = sam_approval_status_parse(optarg)) < 0)
				return cli_usage_error(cmd, "unknown status '%s'", optarg);
			break;
		case 'j': json = true; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	struct appr_cli st;
	if (open_store(cmd->name, &st)) return 1;
	struct sam_error err = { 0 };
	struct sam_approval *list = NULL;
	size_t n = 0;
	int rc = sam_approvals_sweep(st.db, &st.conf, NULL, &err);
	if (!rc) rc = sam_approval_list(st.db, status, 0, &list, &n, &err);
	if (rc) {
		fprintf(stderr, "sam approvals: %s\n", err.msg);
	} else if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) json_array_append_new(arr, sam_approval_to_json(&list[i]));
		json_dumpf(arr, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(arr);
	} else {
		print_table(list, n, status);
	}
	sam_approvals_free(list, n);
	close_store(&st);
	return rc ? 1 : 0;
}

/* `sam approve|reject ID [--reason TEXT]`: the id and reason from argv; 0 or the usage error's status. */
static int decide_args(const struct sam_cmd *cmd, int argc, char **argv, int64_t *id, const char **reason)
{
	static const struct option opts[] = { { "reason", required_argument, NULL, 'r' }, { 0 } };
	int c;
	*reason = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'r': *reason = optarg; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc) return cli_usage_error(cmd, "which approval? (its ID, from `sam approvals`)");
	if (argc - optind > 1) return cli_usage_error(cmd, "one approval at a time");
	long long v;
	if (!cli_parse_int(argv[optind], 1, INT64_MAX, &v))
		return cli_usage_error(cmd, "'%s' is not an approval id", argv[optind]);
	*id = v;
	return 0;
}

/* Who decides: $USER when it makes a valid actor, else "user". */
static const char *actor(void)
{
	const char *u = getenv("USER");
	size_t n = u ? strlen(u) : 0;
	if (!n || n > SAM_APPROVAL_ACTOR_MAX || !utf8_valid(u, n)) return "user";
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) return "user";
	return u;
}

/* A command's output, as it wrote it, after the summary line. */
static void print_output(json_t *result)
{
	const char *out = json_string_value(json_object_get(result, "stdout"));
	const char *err = json_string_value(json_object_get(result, "stderr"));
	if (out && *out) fputs(out, stdout);
	if (out && *out && out[strlen(out) - 1] != '\n') putchar('\n');
	if (err && *err) fputs(err, stderr);
	if (json_is_true(json_object_get(result, "truncated"))) printf("(output truncated)\n");
}

int cmd_approve(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("approve");
	int64_t id;
	const char *reason;
	int rc = decide_args(cmd, argc, argv, &id, &reason);
	if (rc) return rc;
	struct appr_cli st;
	if (open_store(cmd->name, &st)) return 1;
	struct sam_error err = { 0 };
	struct sam_approval a;
	if ((rc = sam_approval_approve(st.db, &st.conf, id, actor(), reason, &a, &err))) {
		fprintf(stderr, "sam approve: %s\n", err.msg);
		close_store(&st);
		return 1;
	}
	json_t *result = a.result ? json_loads(a.result, 0, NULL) : NULL;
	const char *summary = json_string_value(json_object_get(result, "summary"));
	bool ok = a.status == SAM_APPROVAL_EXECUTED;
	printf("approval %lld %s (%s): %s\n", (long long)id, sam_approval_status_name(a.status), a.kind,
	       summary ? summary : "");
	print_output(result);
	json_decref(result);
	sam_approval_clear(&a);
	close_store(&st);
	return ok ? 0 : 1;
}

int cmd_reject(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("reject");
	int64_t id;
	const char *reason;
	int rc = decide_args(cmd, argc, argv, &id, &reason);
	if (rc) return rc;
	struct appr_cli st;
	if (open_store(cmd->name, &st)) return 1;
	struct sam_error err = { 0 };
	if ((rc = sam_approval_reject(st.db, id, actor(), reason, &err))) fprintf(stderr, "sam reject: %s\n", err.msg);
	else printf("approval %lld rejected\n", (long long)id);
	close_store(&st);
	return rc ? 1 : 0;
}
