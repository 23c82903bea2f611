/*
 * approvals.h - the approval queue: what SAM proposes to do on the machine,
 * kept in sam.db until a person says yes or no. Nothing a proposal
 * describes is done before it is approved, and only the kinds below can be
 * done at all.
 *
 * Life cycle (every transition is one UPDATE ... WHERE status = <from> in
 * one transaction with its audit row and its event, so two deciders can
 * never both win):
 *
 *   pending --approve--> approved --execute--> executed | failed
 *   pending --reject---> rejected
 *   pending --(expires passes)--> expired
 *
 * Any other transition is SAM_ECONFLICT ("approval 7 is already approved"),
 * which the api answers 409. A pending proposal whose expiry has passed is
 * marked expired on the first look at it (list, get, decide), so approving
 * it is a conflict too.
 *
 * Kinds and their payloads (JSON objects; checked when proposed, and the
 * policy checked again when executed, as the configuration may have changed):
 *   note             {"text": "..."}: nothing to do; executing records it read
 *   file_write       {"path": "/abs/or/relative", "content": "...", "append": false}
 *                    path inside one of [approvals] allowed_dirs (default
 *                    $SAM_HOME/files), no "..", no symlink leading out;
 *                    written atomically (temporary file, fsync, rename);
 *                    a relative path is relative to the first allowed dir,
 *                    made absolute when proposed (the stored payload shows
 *                    where it will write); a symlink at the file's own name
 *                    is replaced, never followed; with append the old
 *                    content (a regular file of at most 64 MiB) comes first
 *   command          {"argv": ["prog", "arg", ...], "cwd"?: "...", "timeout"?: seconds}
 *                    argv[0] exactly one of [approvals] commands (an
 *                    allowlist; empty by default: no command may run), run
 *                    without a shell, stdin /dev/null, killed (its process
 *                    group) after the timeout ([approvals] command_timeout,
 *                    default 30 s); exit status and the first 64 KiB of
 *                    stdout/stderr go into the result and the audit trail
 *   training_deploy  {"run": "RUN_ID"}: deploys that run's adapter
 *                    (sam_train_deploy in train.h) and tells the api
 * Any other kind is refused when proposed (SAM_EUNSUPPORTED, 400).
 *
 * Events (source "approvals"), each published on the caller's connection
 * inside the transaction of its transition, so both commit or neither:
 *   approval.pending   {"id", "kind", "title", "proposer", "expires"}
 *   approval.decided   {"id", "kind", "decision": "approved"|"rejected"|"expired", "actor", "reason"}
 *   approval.executed  {"id", "kind", "status": "executed"|"failed", "summary"}
 * More in docs/approvals.md.
 *
 * Every result (struct sam_approval.result) is a JSON object with at least
 * "summary" (one line for people); a failed one also has "error".
 */
#ifndef SAM_APPROVALS_H
#define SAM_APPROVALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sam/config.h"
#include "sam/core.h"
#include "sam/db.h"
#include "sam/events.h"

#define SAM_APPROVAL_KIND_MAX 32
#define SAM_APPROVAL_ACTOR_MAX 64
#define SAM_APPROVAL_TITLE_MAX 500
#define SAM_APPROVAL_PAYLOAD_MAX (1u << 20)   /* bytes of payload JSON */
#define SAM_APPROVAL_OUTPUT_MAX (64u << 10)   /* bytes of a command's output kept (each of stdout, stderr) */
#define SAM_APPROVAL_REASON_MAX 4096          /* bytes of a reason */
#define SAM_APPROVAL_TTL_DEFAULT 604800       /* [approvals] ttl: 7 days */
#define SAM_APPROVAL_TIMEOUT_DEFAULT 30       /* [approvals] command_timeout, seconds */

enum sam_approval_status {
	SAM_APPROVAL_PENDING,
	SAM_APPROVAL_APPROVED,
	SAM_APPROVAL_REJECTED,
	SAM_APPROVAL_EXPIRED,
	SAM_APPROVAL_EXECUTED,
	SAM_APPROVAL_FAILED,
	SAM_APPROVAL_NSTATUS
};

/* "pending", "approved", ... ; and back (-1 for an unknown name). */
const char *sam_approval_status_name(int status);
int sam_approval_status_parse(const char *name);

struct sam_approval {
	int64_t id;
	char kind[SAM_APPROVAL_KIND_MAX + 1];
	char proposer[SAM_APPROVAL_ACTOR_MAX + 1];
	char *title;      /* malloc'd */
	char *payload;    /* compact JSON object, malloc'd */
	int status;       /* enum sam_approval_status */
	double created;   /* seconds since the epoch */
	double expires;   /* 0: never */
	double updated;   /* time of the last transition */
	char *result;     /* compact JSON of the execution's outcome, or NULL before */
};

struct sam_approval_audit {
	int64_t seq;
	double time;
	int from, to;     /* statuses; from is -1 for the proposal itself */
	char actor[SAM_APPROVAL_ACTOR_MAX + 1];
	char *reason;     /* malloc'd; "" when none */
	char *detail;     /* compact JSON (a command's output, an error), malloc'd, or NULL */
};

/* Release the strings of one approval / n audit rows (and the arrays with _array). */
void sam_approval_clear(struct sam_approval *a);
void sam_approvals_free(struct sam_approval *a, size_t n);
void sam_approval_audit_free(struct sam_approval_audit *rows, size_t n);

/*
 * Propose. kind/payload as above (payload: JSON text of an object), title
 * 1..SAM_APPROVAL_TITLE_MAX bytes, proposer a short name ("api",
 * "train", "user"). ttl_s > 0 sets expires = now + ttl_s; 0 takes
 * [approvals] ttl (default 7 days; 0 there: never expires); negative is
 * SAM_EINVAL. conf may be NULL (built-in defaults). The proposal, its
 * audit row and approval.pending are one transaction.
 * SAM_EINVAL for a bad payload or title, SAM_EUNSUPPORTED for an unknown
 * kind, SAM_EINVAL for a file_write / command the policy refuses now.
 * *id gets the new proposal's id.
 */
int sam_approval_propose(struct sam_db *db, const struct sam_conf *conf, const char *kind, const char *title,
			 const char *payload, const char *proposer, double ttl_s, int64_t *id, struct sam_error *err);

/* One proposal (expired first if due). SAM_ENOTFOUND when there is none. out is the caller's (clear it). */
int sam_approval_get(struct sam_db *db, int64_t id, struct sam_approval *out, struct sam_error *err);

/*
 * Proposals with the given status (-1: all), newest first, at most limit
 * (0: 1000). Due expiries are applied first. *out (NULL when none) and *n
 * are the caller's, freed with sam_approvals_free.
 */
int sam_approval_list(struct sam_db *db, int status, size_t limit, struct sam_approval **out, size_t *n,
		      struct sam_error *err);

/* The audit trail of one proposal, oldest first. SAM_ENOTFOUND when there is no such proposal. */
int sam_approval_audit(struct sam_db *db, int64_t id, struct sam_approval_audit **out, size_t *n,
		       struct sam_error *err);

/*
 * Reject a pending proposal (reason may be NULL). SAM_ECONFLICT when it is
 * not pending (the message says what it is), SAM_ENOTFOUND when absent.
 */
int sam_approval_reject(struct sam_db *db, int64_t id, const char *actor, const char *reason, struct sam_error *err);

/*
 * Approve a pending proposal and execute it at once, in the calling
 * thread (a command may take up to its timeout). Returns 0 when the
 * approval was recorded, whatever the execution's outcome: out (may be
 * NULL) is the proposal afterwards, status executed or failed with the
 * result. SAM_ECONFLICT / SAM_ENOTFOUND as for reject; the winner of two
 * concurrent approvals executes, the other gets SAM_ECONFLICT.
 *
 * The approval commits before the execution starts and the outcome in a
 * transaction of its own afterwards, so no write lock is held while a
 * command runs. A configuration that cannot be read refuses the approval
 * (nothing is recorded); one that refuses the payload now ends it
 * 'failed' with the reason, and nothing is run. If the outcome cannot be
 * recorded, that error is returned (the proposal stays 'approved' until
 * sam_approvals_sweep marks it failed).
 *
 * actor and reason: 1..SAM_APPROVAL_ACTOR_MAX bytes of printable UTF-8;
 * reason NULL or at most SAM_APPROVAL_REASON_MAX bytes.
 */
int sam_approval_approve(struct sam_db *db, const struct sam_conf *conf, int64_t id, const char *actor,
			 const char *reason, struct sam_approval *out, struct sam_error *err);

/*
 * Mark due pending proposals expired, and approved ones whose execution
 * was interrupted (their executor died: approved longer ago than the
 * longest command timeout + 60 s with no outcome) failed. *n (may be NULL)
 * gets how many changed.
 */
int sam_approvals_sweep(struct sam_db *db, const struct sam_conf *conf, int64_t *n, struct sam_error *err);

/* How many proposals are pending now (after the sweep of expiries). */
int sam_approvals_pending(struct sam_db *db, int64_t *n, struct sam_error *err);

/*
 * JSON for the api and the CLI (new references; the caller decrefs):
 * a proposal as {"id", "kind", "title", "payload" (object), "proposer",
 * "status", "created", "expires" (null: never), "updated", "result"
 * (object or null)}; an audit row as {"seq", "time", "from" (null for the
 * proposal), "to", "actor", "reason", "detail" (object or null)}.
 */
json_t *sam_approval_to_json(const struct sam_approval *a);
json_t *sam_approval_audit_to_json(const struct sam_approval_audit *r);

#endif
