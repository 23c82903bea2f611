/*
 * approvals_int.h - what the parts of the approval queue share: the policy
 * read from [approvals] (policy.c), the payload checks (policy.c), the
 * executors (exec.c) and the command runner (command.c). The store itself
 * is queue.c (approvals.h).
 */
#ifndef SAM_APPROVALS_INT_H
#define SAM_APPROVALS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sam/approvals.h"
#include "sam/confine.h"

#define APPR_MAX_DIRS 32
#define APPR_MAX_COMMANDS 64
#define APPR_MAX_ARGS 256
#define APPR_APPEND_MAX (64u << 20) /* bytes a file_write with append may add to */

/* [approvals] as it is now. Owns its strings; release with appr_policy_free. */
struct appr_policy {
	char (*dirs)[SAM_CONFINE_DIR_CAP]; /* allowed_dirs, resolved; malloc'd rows */
	int n_dirs;
	char **commands;                   /* the allowlist, exact argv[0] values */
	int n_commands;
	double command_timeout;            /* seconds: the default and the maximum */
	double ttl;                        /* seconds a proposal waits; 0: for ever */
};

/*
 * Read [approvals] allowed_dirs (default $SAM_HOME/files, created here),
 * commands, command_timeout and ttl from conf (NULL: defaults).
 * SAM_EFORMAT naming the key when a value is malformed.
 */
int appr_policy_load(struct appr_policy *p, const struct sam_conf *conf, struct sam_error *err);
void appr_policy_free(struct appr_policy *p);
/* The allowed directories in the form confine.h takes. */
const char (*appr_dirs(const struct appr_policy *p))[SAM_CONFINE_DIR_CAP];

/* Whether kind is one the queue can execute. */
bool appr_kind_known(const char *kind);

/*
 * Check payload (a JSON object) for kind against the policy now: the
 * fields and their types, then what the policy allows (the file's place,
 * the command's name). SAM_EUNSUPPORTED for an unknown kind, SAM_EINVAL
 * naming the field otherwise.
 */
int appr_check(const struct appr_policy *p, const char *kind, json_t *payload, struct sam_error *err);

/*
 * Make a checked payload say exactly what will be done, before it is
 * stored and shown for approval: a relative file_write path becomes the
 * absolute one in the first allowed directory (so a later change of
 * allowed_dirs cannot move the file elsewhere).
 */
int appr_canonical(const struct appr_policy *p, const char *kind, json_t *payload, struct sam_error *err);

/*
 * file_write's path as written: a relative one is taken relative to the
 * first allowed directory. out has SAM_CONFINE_DIR_CAP bytes.
 */
int appr_file_path(const struct appr_policy *p, const char *path, char *out, struct sam_error *err);

/*
 * Do what an approved proposal says, checking the policy again first.
 * *result is a new JSON object with at least "summary" (and "error" when
 * it failed); returns true when it was done, false when it failed.
 */
bool appr_execute(const struct appr_policy *p, const char *kind, const char *payload, json_t **result);

/* What a command did. out/err hold the first `keep` bytes of each stream (malloc'd). */
struct appr_cmd_result {
	int exit_status;          /* when it exited; -1 when killed */
	int signal;               /* the signal that killed it, 0 when it exited */
	bool timed_out;           /* killed (its whole process group) at the timeout */
	char *out, *err;
	size_t out_len, err_len;  /* bytes kept */
	size_t out_total, err_total; /* bytes it wrote */
	double seconds;
};

/*
 * Run argv (NULL-terminated; argv[0] a path or a name looked up in PATH)
 * without a shell, in cwd, in a new session and process group, stdin
 * /dev/null, stdout and stderr captured. After timeout_s the group is
 * killed (SIGKILL); when the command itself exits, what it left running
 * with the pipes still open is killed 1 s later. 0 with *r filled (free
 * with appr_cmd_result_free) once it ran, whatever its exit status;
 * SAM_ENOTFOUND / SAM_EIO when it could not be started (r is empty then).
 */
int appr_run_command(char *const *argv, const char *cwd, double timeout_s, size_t keep, struct appr_cmd_result *r,
		     struct sam_error *err);
void appr_cmd_result_free(struct appr_cmd_result *r);

#endif
