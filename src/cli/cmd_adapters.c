/*
 * cmd_adapters.c - `sam adapters [list]`, `sam adapters use ID`, `sam
 * adapters off`: the LoRA adapters in $SAM_HOME/adapters and which one is
 * current (sam/adapters.h), and telling a running api to reload.
 *
 * Exit status: 0 done (also when no api runs: it loads the current
 * adapter when it starts); 1 an error, or the api refused the adapter (the
 * link is then put back as it was, so the api and the link agree); 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "sam/adapters.h"

static int fail(const struct sam_error *err)
{
	fprintf(stderr, "sam adapters: %s\n", err->msg);
	return 1;
}

static const char *fmt_size(char *buf, size_t cap, int64_t bytes)
{
	if (bytes >= 1 << 20) snprintf(buf, cap, "%.1f MB", (double)bytes / (1 << 20));
	else if (bytes >= 1 << 10) snprintf(buf, cap, "%.1f KB", (double)bytes / (1 << 10));
	else snprintf(buf, cap, "%lld B", (long long)bytes);
	return buf;
}

static const char *fmt_date(char *buf, size_t cap, double t)
{
	time_t s = (time_t)t;
	struct tm tm;
	if (!localtime_r(&s, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M", &tm)) snprintf(buf, cap, "-");
	return buf;
}

static int adapters_list(const struct sam_cmd *cmd, int argc, char **argv)
{
	if (argc > 1) return cli_usage_error(cmd, "list: unexpected argument '%s'", argv[1]);
	struct sam_adapter_info *list;
	size_t n;
	struct sam_error err = { 0 };
	if (sam_adapters_list(&list, &n, &err)) return fail(&err);
	int w = 2;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(list[i].id) > w) w = (int)strlen(list[i].id);
	if (!n) printf("(none)\n");
	else printf("  %-*s %10s  %s\n", w, "ID", "SIZE", "DATE");
	for (size_t i = 0; i < n; i++) {
		char size[32], date[32];
		printf("%c %-*s %10s  %s\n", list[i].current ? '*' : ' ', w, list[i].id,
		       fmt_size(size, sizeof size, list[i].size), fmt_date(date, sizeof date, list[i].mtime));
	}
	free(list);
	/* a broken link is worth a word: the api cannot load it */
	char id[SAM_ADAPTER_ID_MAX + 1];
	int rc = sam_adapters_current(id, sizeof id, NULL, 0, &err);
	if (rc && rc != SAM_ENOTFOUND) fprintf(stderr, "sam adapters: warning: %s\n", err.msg);
	return 0;
}

/*
 * Ask the running api to reload the link just switched to `now` (an id, or
 * NULL for none) and say what came of it. When the api refuses the
 * adapter (409), the link goes back to prev (NULL: none) so that it names
 * what the api serves with, and this fails.
 */
static int tell_api(const char *now, const char *prev)
{
	char what[SAM_ADAPTER_ID_MAX + 32];
	if (now) snprintf(what, sizeof what, "adapter %s is current", now);
	else snprintf(what, sizeof what, "no adapter is current");
	struct sam_api_reload r;
	struct sam_error err = { 0 };
	if (sam_adapters_reload_or_revert(prev, &r, &err) == 0) {
		if (!r.reached) printf("%s; no api is running (it loads the current adapter when it starts)\n", what);
		else if (r.later) printf("%s; the api did not reload now: %s\n", what, r.message);
		else if (r.adapter[0]) printf("%s; the running api reloaded and serves with %s\n", what, r.adapter);
		else printf("%s; the running api reloaded and serves without adapter\n", what);
		return 0;
	}
	if (r.status != 409) { /* the api was not told (no key, ...): the link stays as asked */
		fprintf(stderr, "sam adapters: %s, but the api could not be told: %s\n", what, err.msg);
		return 1;
	}
	fprintf(stderr, "sam adapters: the api refused it: %s\n", r.message);
	if (!r.reverted) return fail(&err);
	fprintf(stderr, "sam adapters: the api keeps its adapter; the current link is back to %s\n",
		prev ? prev : "none");
	return 1;
}

/* The id now current into buf, or NULL when none (or the link is broken). */
static const char *current_id(char *buf, size_t cap)
{
	struct sam_error ignore;
	return sam_adapters_current(buf, cap, NULL, 0, &ignore) ? NULL : buf;
}

static int adapters_use(const struct sam_cmd *cmd, int argc, char **argv)
{
	if (argc != 2) return cli_usage_error(cmd, "use: expected one adapter ID");
	if (!sam_adapter_id_ok(argv[1]))
		return cli_usage_error(cmd, "use: '%s' is not an adapter id (letters, digits, '-', '_', '.')", argv[1]);
	char buf[SAM_ADAPTER_ID_MAX + 1];
	const char *prev = current_id(buf, sizeof buf);
	struct sam_error err = { 0 };
	if (sam_adapters_use(argv[1], &err)) return fail(&err);
	return tell_api(argv[1], prev);
}

static int adapters_off(const struct sam_cmd *cmd, int argc, char **argv)
{
	if (argc > 1) return cli_usage_error(cmd, "off: unexpected argument '%s'", argv[1]);
	char buf[SAM_ADAPTER_ID_MAX + 1];
	const char *prev = current_id(buf, sizeof buf);
	struct sam_error err = { 0 };
	if (sam_adapters_off(&err)) return fail(&err);
	return tell_api(NULL, prev);
}

int cmd_adapters(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("adapters");
	if (argc < 2 || !strcmp(argv[1], "list")) return adapters_list(cmd, argc < 2 ? 1 : argc - 1, argv + 1);
	if (!strcmp(argv[1], "use")) return adapters_use(cmd, argc - 1, argv + 1);
	if (!strcmp(argv[1], "off")) return adapters_off(cmd, argc - 1, argv + 1);
	return cli_usage_error(cmd, "unknown subcommand '%s' (list, use or off)", argv[1]);
}
