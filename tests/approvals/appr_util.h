/* appr_util.h - what the approval tests share: a SAM_HOME of their own, a config from text, quick proposals. */
#ifndef SAM_TESTS_APPR_UTIL_H
#define SAM_TESTS_APPR_UTIL_H

#include <jansson.h>

#include "sam/approvals.h"
#include "sam/config.h"
#include "sam/db.h"

/* Point SAM_HOME at <the test's temporary directory>/home (created) with no [approvals] overrides in the environment; returns it (static). */
const char *appr_home(void);
/* $SAM_HOME/files, the default allowed directory, resolved (static). */
const char *appr_files(void);
/* Open sam.db in that home. */
struct sam_db *appr_db(void);
/* Replace *c with the config text (c is freed first when loaded is set). */
void appr_conf(struct sam_conf *c, const char *text);
/* Propose, failing the test on error; returns the id. */
int64_t appr_propose(struct sam_db *db, const struct sam_conf *c, const char *kind, const char *payload);
/* The proposal's result as JSON (caller decrefs); fails the test when it has none. */
json_t *appr_result(const struct sam_approval *a);
/* The approval.* events so far as [{"type", "data"}] (caller decrefs). */
json_t *appr_events(struct sam_db *db);
/* The number in the first column of sql's first row, -1 when none. */
long long appr_q_int(struct sam_db *db, const char *sql);

#endif
