/* learn_util.h - what the learning tests share: a SAM_HOME of their own and one-number queries. */
#ifndef SAM_TESTS_LEARN_UTIL_H
#define SAM_TESTS_LEARN_UTIL_H

#include "sam/db.h"

/* Point SAM_HOME at <the test's temporary directory>/home; returns that path (static). */
const char *learn_test_home(void);
/* The integer in the first column of the first row of sql, -1 when there is no row. */
long long learn_q_int(struct sam_db *db, const char *sql);

#endif
