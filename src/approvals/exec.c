/*
 * exec.c - doing what an approved proposal says. The policy is checked
 * again first: the configuration may have changed since the proposal was
 * made, and what it refuses now is not done at all (the proposal fails
 * with the reason). Every outcome is a JSON object with a "summary".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/approvals_int.h"
#include "sam/fs.h"
#include "sam/train.h"
#include "sam/utf8.h"

static json_t *failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *failure(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t n;
	char *clean = utf8_sanitize(msg, strlen(msg), &n); /* a truncated message may end mid-character */
	json_t *j = json_pack("{s:s, s:s}", "error", clean, "summary", clean);
	free(clean);
	return j;
}

static bool do_note(json_t *payload, json_t **result)
{
	(void)payload;
	*result = json_pack("{s:s}", "summary", "noted");
	return true;
}

static bool do_file_write(const struct appr_policy *p, json_t *payload, json_t **result)
{
	struct sam_error err = { 0 };
	json_t *content = json_object_get(payload, "content");
	bool append = json_is_true(json_object_get(payload, "append"));
	char full[SAM_CONFINE_DIR_CAP], real[SAM_CONFINE_DIR_CAP];
	if (appr_file_path(p, json_string_value(json_object_get(payload, "path")), full, &err) ||
	    sam_confine_write(appr_dirs(p), p->n_dirs, full, "payload field 'path'", json_string_value(content),
			      json_string_length(content), append, APPR_APPEND_MAX, real, &err)) {
		*result = failure("%s", err.msg);
		return false;
	}
	char summary[SAM_CONFINE_DIR_CAP + 64];
	snprintf(summary, sizeof summary, "%s %zu bytes to %s", append ? "appended" : "wrote", json_string_length(content),
		 real);
	*result = json_pack("{s:s, s:I, s:b, s:s}", "path", real, "bytes", (json_int_t)json_string_length(content),
			    "append", append, "summary", summary);
	return true;
}

/* Output as a JSON string: what the command wrote need not be UTF-8. */
static json_t *output_json(const char *s, size_t n)
{
	size_t len;
	char *clean = utf8_sanitize(s, n, &len);
	json_t *j = json_stringn(clean, len);
	free(clean);
	return j ? j : json_string("");
}

static bool do_command(const struct appr_policy *p, json_t *payload, json_t **result)
{
	json_t *argv_j = json_object_get(payload, "argv"), *t = json_object_get(payload, "timeout");
	size_t n = json_array_size(argv_j);
	char **argv = xcalloc(n + 1, sizeof *argv);
	for (size_t i = 0; i < n; i++) argv[i] = (char *)json_string_value(json_array_get(argv_j, i));
	const char *cwd = json_string_value(json_object_get(payload, "cwd"));
	double timeout = p->command_timeout;
	/* a shorter timeout asked for stands; a longer one (the limit lowered since) is cut to the limit */
	if (json_is_number(t) && json_number_value(t) < timeout) timeout = json_number_value(t);
	struct appr_cmd_result r;
	struct sam_error err = { 0 };
	int rc = appr_run_command(argv, cwd ? cwd : sam_home(), timeout, SAM_APPROVAL_OUTPUT_MAX, &r, &err);
	free(argv);
	if (rc) {
		*result = failure("%s", err.msg);
		return false;
	}
	char summary[160];
	if (r.timed_out) snprintf(summary, sizeof summary, "killed after the timeout of %g s", timeout);
	else if (r.signal) snprintf(summary, sizeof summary, "killed by signal %d (%s)", r.signal, strsignal(r.signal));
	else snprintf(summary, sizeof summary, "exit status %d", r.exit_status);
	bool ok = !r.timed_out && !r.signal && r.exit_status == 0;
	json_t *j = json_pack("{s:o, s:o, s:b, s:I, s:I, s:f, s:b, s:s}", "stdout", output_json(r.out, r.out_len), "stderr",
			      output_json(r.err, r.err_len), "truncated",
			      r.out_total > r.out_len || r.err_total > r.err_len, "stdout_bytes", (json_int_t)r.out_total,
			      "stderr_bytes", (json_int_t)r.err_total, "seconds", r.seconds, "timed_out", r.timed_out,
			      "summary", summary);
	if (r.signal) json_object_set_new(j, "signal", json_integer(r.signal));
	else json_object_set_new(j, "exit_status", json_integer(r.exit_status));
	if (!ok) json_object_set_new(j, "error", json_string(summary));
	appr_cmd_result_free(&r);
	*result = j;
	return ok;
}

static bool do_training_deploy(json_t *payload, json_t **result)
{
	const char *run = json_string_value(json_object_get(payload, "run"));
	char note[512] = "";
	struct sam_error err = { 0 };
	if (sam_train_deploy(run, note, sizeof note, &err)) {
		*result = failure("%s", err.msg);
		return false;
	}
	size_t n;
	char *clean = utf8_sanitize(note, strlen(note), &n);
	*result = json_pack("{s:s, s:s, s:s}", "run", run, "note", clean, "summary", *clean ? clean : "deployed");
	free(clean);
	return true;
}

bool appr_execute(const struct appr_policy *p, const char *kind, const char *payload, json_t **result)
{
	json_error_t je;
	json_t *pl = json_loads(payload, 0, &je);
	struct sam_error err = { 0 };
	bool ok = false;
	if (!pl) *result = failure("the stored payload is not JSON: %s", je.text);
	else if (appr_check(p, kind, pl, &err)) *result = failure("refused: %s", err.msg);
	else if (!strcmp(kind, "note")) ok = do_note(pl, result);
	else if (!strcmp(kind, "file_write")) ok = do_file_write(p, pl, result);
	else if (!strcmp(kind, "command")) ok = do_command(p, pl, result);
	else if (!strcmp(kind, "training_deploy")) ok = do_training_deploy(pl, result);
	else *result = failure("unknown kind '%s'", kind); /* appr_check refused it already */
	json_decref(pl);
	return ok;
}
