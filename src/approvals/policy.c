/*
 * policy.c - what the approval queue may do at all: [approvals] in
 * sam.conf, and the check of a proposal's payload against it. The same
 * check runs when a proposal is made and again when it is executed, since
 * the configuration may have changed in between.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/approvals_int.h"
#include "sam/fs.h"
#include "sam/train.h"

static int policy_dirs(struct appr_policy *p, const struct sam_conf *conf, struct sam_error *err)
{
	const char *list = sam_conf_str(conf, "approvals", "allowed_dirs", NULL);
	char def[SAM_CONFINE_DIR_CAP];
	if (!list) {
		/* the default workspace is created on demand, so that it resolves like any other */
		if (sam_home_path(def, sizeof def, "files")) return sam_errorf(err, SAM_ERANGE, "SAM_HOME is too long");
		int rc = sam_mkdirs(def, err);
		if (rc) return rc;
		list = def;
	}
	p->dirs = malloc(APPR_MAX_DIRS * sizeof *p->dirs);
	if (!p->dirs) return sam_errorf(err, SAM_ENOMEM, "out of memory");
	return sam_confine_parse(list, "approvals.allowed_dirs", p->dirs, APPR_MAX_DIRS, &p->n_dirs, err);
}

/* One allowlist entry: a bare name (looked up in PATH when run) or an absolute path. */
static int add_command(struct appr_policy *p, const char *s, size_t len, struct sam_error *err)
{
	while (len && (*s == ' ' || *s == '\t')) s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
	if (!len) return 0;
	if (memchr(s, '/', len) && s[0] != '/')
		return sam_errorf(err, SAM_EFORMAT, "config approvals.commands: '%.*s' is neither a name nor an absolute path",
				  (int)len, s);
	if (p->n_commands == APPR_MAX_COMMANDS)
		return sam_errorf(err, SAM_EFORMAT, "config approvals.commands: at most %d commands", APPR_MAX_COMMANDS);
	char *c = xmalloc(len + 1);
	memcpy(c, s, len);
	c[len] = 0;
	p->commands[p->n_commands++] = c;
	return 0;
}

int appr_policy_load(struct appr_policy *p, const struct sam_conf *conf, struct sam_error *err)
{
	memset(p, 0, sizeof *p);
	p->commands = xcalloc(APPR_MAX_COMMANDS, sizeof *p->commands);
	long long ttl;
	int rc;
	if ((rc = sam_conf_float(conf, "approvals", "command_timeout", SAM_APPROVAL_TIMEOUT_DEFAULT,
				 &p->command_timeout, err)))
		goto fail;
	if (!(p->command_timeout > 0 && p->command_timeout <= 86400)) {
		rc = sam_errorf(err, SAM_EFORMAT, "config approvals.command_timeout: expected seconds in (0, 86400]");
		goto fail;
	}
	if ((rc = sam_conf_int(conf, "approvals", "ttl", SAM_APPROVAL_TTL_DEFAULT, 0, 10LL * 365 * 86400, &ttl, err)))
		goto fail;
	p->ttl = (double)ttl;
	const char *cmds = sam_conf_str(conf, "approvals", "commands", "");
	for (const char *s = cmds; *s;) {
		size_t len = strcspn(s, ",:");
		if ((rc = add_command(p, s, len, err))) goto fail;
		s += len;
		if (*s) s++;
	}
	if ((rc = policy_dirs(p, conf, err))) goto fail;
	return 0;
fail:
	appr_policy_free(p);
	return rc;
}

void appr_policy_free(struct appr_policy *p)
{
	for (int i = 0; i < p->n_commands; i++) free(p->commands[i]);
	free(p->commands);
	free(p->dirs);
	memset(p, 0, sizeof *p);
}

const char (*appr_dirs(const struct appr_policy *p))[SAM_CONFINE_DIR_CAP]
{
	return (const char (*)[SAM_CONFINE_DIR_CAP])p->dirs;
}

/* ---- payloads ---- */

/* Refuse fields the kind does not know: a misspelt "apend" must not silently mean false. */
static int only_fields(json_t *payload, const char *kind, const char *const *known, struct sam_error *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(payload, key, v)
	{
		bool ok = false;
		for (int i = 0; known[i] && !ok; i++) ok = !strcmp(key, known[i]);
		if (ok) continue;
		char list[128] = "";
		for (int i = 0; known[i]; i++)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", known[i]);
		return sam_errorf(err, SAM_EINVAL, "payload field '%.60s' is not one %s takes (%s)", key, kind, list);
	}
	return 0;
}

/* A string field: required or optional (*out NULL when absent); NUL bytes refused, as paths and argv cannot hold them. */
static int str_field(json_t *payload, const char *name, bool required, bool nonempty, const char **out,
		     struct sam_error *err)
{
	json_t *v = json_object_get(payload, name);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required) return sam_errorf(err, SAM_EINVAL, "payload field '%s' is required", name);
		return 0;
	}
	if (!json_is_string(v)) return sam_errorf(err, SAM_EINVAL, "payload field '%s' must be a string", name);
	if (nonempty && !json_string_length(v))
		return sam_errorf(err, SAM_EINVAL, "payload field '%s' must not be empty", name);
	*out = json_string_value(v);
	return 0;
}

static int check_note(json_t *payload, struct sam_error *err)
{
	const char *text;
	static const char *const known[] = { "text", NULL };
	int rc = only_fields(payload, "note", known, err);
	return rc ? rc : str_field(payload, "text", true, true, &text, err);
}

int appr_file_path(const struct appr_policy *p, const char *path, char *out, struct sam_error *err)
{
	if (path[0] == '/') {
		if (strlen(path) >= SAM_CONFINE_DIR_CAP) return sam_errorf(err, SAM_EINVAL, "payload field 'path' is too long");
		snprintf(out, SAM_CONFINE_DIR_CAP, "%s", path);
		return 0;
	}
	if (!p->n_dirs)
		return sam_errorf(err, SAM_EINVAL, "writing files is off: no [approvals] allowed_dirs are configured");
	int k = snprintf(out, SAM_CONFINE_DIR_CAP, "%s/%s", p->dirs[0], path);
	if (k < 0 || k >= SAM_CONFINE_DIR_CAP) return sam_errorf(err, SAM_EINVAL, "payload field 'path' is too long");
	return 0;
}

static int check_file_write(const struct appr_policy *p, json_t *payload, struct sam_error *err)
{
	static const char *const known[] = { "path", "content", "append", NULL };
	const char *path, *content;
	int rc;
	if ((rc = only_fields(payload, "file_write", known, err)) ||
	    (rc = str_field(payload, "path", true, true, &path, err)) ||
	    (rc = str_field(payload, "content", true, false, &content, err)))
		return rc;
	if (strlen(path) != json_string_length(json_object_get(payload, "path")))
		return sam_errorf(err, SAM_EINVAL, "payload field 'path' must not contain NUL characters");
	json_t *append = json_object_get(payload, "append");
	if (append && !json_is_null(append) && !json_is_boolean(append))
		return sam_errorf(err, SAM_EINVAL, "payload field 'append' must be true or false");
	char full[SAM_CONFINE_DIR_CAP];
	if ((rc = appr_file_path(p, path, full, err))) return rc;
	if ((rc = sam_confine_write_path(appr_dirs(p), p->n_dirs, full, "payload field 'path'", NULL, err)))
		return rc == SAM_ENOTFOUND || rc == SAM_EBUSY ? SAM_EINVAL : rc;
	return 0;
}

static bool allowed_command(const struct appr_policy *p, const char *prog)
{
	for (int i = 0; i < p->n_commands; i++)
		if (!strcmp(p->commands[i], prog)) return true;
	return false;
}

static int check_command(const struct appr_policy *p, json_t *payload, struct sam_error *err)
{
	static const char *const known[] = { "argv", "cwd", "timeout", NULL };
	int rc = only_fields(payload, "command", known, err);
	if (rc) return rc;
	json_t *argv = json_object_get(payload, "argv");
	if (!json_is_array(argv) || !json_array_size(argv))
		return sam_errorf(err, SAM_EINVAL, "payload field 'argv' must be a non-empty array of strings");
	if (json_array_size(argv) > APPR_MAX_ARGS)
		return sam_errorf(err, SAM_EINVAL, "payload field 'argv' has more than %d elements", APPR_MAX_ARGS);
	size_t i;
	json_t *a;
	json_array_foreach(argv, i, a)
	{
		if (!json_is_string(a))
			return sam_errorf(err, SAM_EINVAL, "payload field 'argv[%zu]' must be a string", i);
		if (strlen(json_string_value(a)) != json_string_length(a))
			return sam_errorf(err, SAM_EINVAL, "payload field 'argv[%zu]' must not contain NUL characters", i);
	}
	const char *prog = json_string_value(json_array_get(argv, 0)), *cwd;
	if (!*prog) return sam_errorf(err, SAM_EINVAL, "payload field 'argv[0]' must not be empty");
	if ((rc = str_field(payload, "cwd", false, true, &cwd, err))) return rc;
	if (cwd && cwd[0] != '/') return sam_errorf(err, SAM_EINVAL, "payload field 'cwd' must be an absolute path");
	json_t *t = json_object_get(payload, "timeout");
	if (t && !json_is_null(t)) {
		double s = json_number_value(t);
		if (!json_is_number(t) || !(s > 0))
			return sam_errorf(err, SAM_EINVAL, "payload field 'timeout' must be a number of seconds > 0");
		if (s > p->command_timeout)
			return sam_errorf(err, SAM_EINVAL,
					  "payload field 'timeout' is %g s; [approvals] command_timeout allows at most %g",
					  s, p->command_timeout);
	}
	if (!p->n_commands)
		return sam_errorf(err, SAM_EINVAL, "command '%.200s' is not allowed: no [approvals] commands are configured",
				  prog);
	if (!allowed_command(p, prog))
		return sam_errorf(err, SAM_EINVAL, "command '%.200s' is not allowed (not in [approvals] commands)", prog);
	return 0;
}

static bool run_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SAM_TRAIN_RUN_ID_MAX) return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return false;
	return true;
}

static int check_training_deploy(json_t *payload, struct sam_error *err)
{
	static const char *const known[] = { "run", NULL };
	const char *run;
	int rc;
	if ((rc = only_fields(payload, "training_deploy", known, err)) ||
	    (rc = str_field(payload, "run", true, true, &run, err)))
		return rc;
	if (!run_id_ok(run) || !strcmp(run, ".") || !strcmp(run, ".."))
		return sam_errorf(err, SAM_EINVAL, "payload field 'run' must be a run id: 1-%d characters of A-Z a-z 0-9 - _ .",
				  SAM_TRAIN_RUN_ID_MAX);
	return 0;
}

static const char *const kinds[] = { "note", "file_write", "command", "training_deploy" };

static int kind_index(const char *kind)
{
	for (int k = 0; kind && k < (int)(sizeof kinds / sizeof kinds[0]); k++)
		if (!strcmp(kind, kinds[k])) return k;
	return -1;
}

bool appr_kind_known(const char *kind)
{
	return kind_index(kind) >= 0;
}

int appr_check(const struct appr_policy *p, const char *kind, json_t *payload, struct sam_error *err)
{
	int k = kind_index(kind);
	if (k < 0)
		return sam_errorf(err, SAM_EUNSUPPORTED,
				  "unknown kind '%.40s' (expected note, file_write, command or training_deploy)", kind);
	if (!json_is_object(payload)) return sam_errorf(err, SAM_EINVAL, "the payload must be a JSON object");
	switch (k) {
	case 0: return check_note(payload, err);
	case 1: return check_file_write(p, payload, err);
	case 2: return check_command(p, payload, err);
	default: return check_training_deploy(payload, err);
	}
}

int appr_canonical(const struct appr_policy *p, const char *kind, json_t *payload, struct sam_error *err)
{
	if (strcmp(kind, "file_write")) return 0;
	const char *path = json_string_value(json_object_get(payload, "path"));
	if (!path || path[0] == '/') return 0;
	char full[SAM_CONFINE_DIR_CAP];
	int rc = appr_file_path(p, path, full, err);
	if (!rc) json_object_set_new(payload, "path", json_string(full));
	return rc;
}
