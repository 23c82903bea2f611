/*
 * curriculum.h - self-practice (`sam learn curriculum`): the curriculum
 * tasks in sam.db, how streams claim them, how answers are graded, and how
 * graded attempts are recorded. See docs/learning.md.
 *
 * Tasks are seeded from JSONL, one {"question", "reference"?, "category"?}
 * per line: the built-in curriculum (share/curriculum.jsonl, compiled in)
 * and the user's files. The question is the key: seeding again inserts
 * only new questions, and a known question takes the reference and the
 * category its line states (a null reference removes it; an absent one
 * or an absent category leaves the stored one), so seeding is idempotent,
 * a corrected reference reaches existing stores, and a user's file
 * seeded after the built-in curriculum overrides it.
 *
 * Claims are leases. A stream claims a task by setting claimed_by (its
 * stream number) and claimed_until (now + lease) in one UPDATE, which only
 * matches a task whose lease has run out, so two streams, in one process
 * or two, never hold the same task. A live stream renews its lease while
 * it works on (or backs off with) a task; a stream that stops cleanly
 * releases it and keeps the task in its curriculum_streams row so a
 * restart resumes it; a crashed stream's lease runs out and the task comes
 * back to everyone.
 *
 * Grading (pure functions, no I/O):
 *  - Normalisation: ASCII letters lower-cased; every character that is not
 *    a letter or digit separates words, and so do U+00A0..U+00BF (Latin-1
 *    punctuation), U+2000..U+206F (general punctuation) and U+3000..U+303F
 *    (CJK punctuation); other non-ASCII characters count as letters. Inside
 *    numbers a '.' or ',' between digits is kept as '.' or dropped ("3.14",
 *    "1,000" -> "1000"), and a '-' before a digit at the start of a word is
 *    a sign ("-8"); a ':' between digits joins them ("15:30"). The articles
 *    a, an, the are dropped, and the number words zero..twenty, thirty,
 *    forty ... ninety become digits. Text beyond SAM_GRADE_TEXT_MAX bytes
 *    is ignored.
 *  - An answer matches a reference when the reference's words appear in
 *    the answer's words as a contiguous run (whole words: "4" does not
 *    match "14"), or, for references of 3 or more words, when the token F1
 *    of answer against reference is >= SAM_GRADE_F1 and every number of
 *    the reference is among the answer's words ("boils at 90 degrees" does
 *    not match "boils at 100 degrees"). An empty reference or answer
 *    matches nothing. The score is 1 for a contained reference, else F1.
 *  - Without a reference, K samples (asked with temperature > 0) are
 *    graded by agreement: two samples agree when either matches the other
 *    by the rule above. The sample that agrees with the most others (the
 *    first on ties) is the answer; it is accepted when it and the samples
 *    agreeing with it are a strict majority of K. The score is that
 *    fraction of K.
 *
 * All functions that take a struct sam_db use a connection the caller
 * owns (db.h); none keeps a pointer to its arguments.
 */
#ifndef SAM_CURRICULUM_H
#define SAM_CURRICULUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/db.h"

#define SAM_GRADE_F1 0.8                    /* token F1 for a match without containment */
#define SAM_GRADE_TEXT_MAX (64u << 10)      /* bytes of a text that grading looks at */
#define SAM_CURRICULUM_TEXT_MAX 4096        /* bytes of a question, reference or category */
#define SAM_CURRICULUM_FILE_MAX (16u << 20) /* bytes of a curriculum file */

/* The built-in curriculum, compiled in: _len bytes of JSONL followed by a NUL. */
extern const char sam_curriculum_builtin[];
extern const size_t sam_curriculum_builtin_len;

/* ---- grading (pure) ----------------------------------------------------------- */

/* The normalised words of s joined by single spaces (malloc'd; caller frees). */
char *sam_grade_normalise(const char *s);
/* Token F1 of a's words against b's (multiset overlap); 0 when either has none. */
double sam_grade_f1(const char *a, const char *b);

struct sam_grade {
	bool correct;
	double score; /* 0..1 */
	int pick;     /* agreement: the index of the chosen sample; reference: 0 */
};

/* Grade answer against reference by the rule above. */
void sam_grade_reference(const char *answer, const char *reference, struct sam_grade *g);
/* Grade k (>= 1) samples by agreement; NULL samples count as empty. */
void sam_grade_agreement(const char *const *samples, int k, struct sam_grade *g);

/* ---- tasks -------------------------------------------------------------------- */

struct sam_curriculum_task {
	int64_t id;
	char *question;  /* malloc'd, like the two below; freed by sam_curriculum_task_free */
	char *reference; /* NULL: graded by agreement */
	char *category;
};
/* Free the strings and zero t. Safe on a zeroed task. */
void sam_curriculum_task_free(struct sam_curriculum_task *t);

/*
 * Seed tasks from len bytes of JSONL; name ("built-in", a path) prefixes
 * error messages. Blank lines are skipped. Every line is checked before
 * anything is written: a line that is not a JSON object, lacks a
 * non-empty string "question", has a "reference" or "category" that is
 * not a string (a null reference is none), has any other key, or has a
 * field longer than SAM_CURRICULUM_TEXT_MAX is SAM_EFORMAT,
 * "NAME:LINE: reason", and nothing is stored. A missing or empty category
 * is "general" for a new task. Then all lines go in one transaction.
 * *added and *updated (may be NULL) count new tasks and known ones whose
 * reference or category changed.
 */
int sam_curriculum_seed(struct sam_db *db, const char *text, size_t len, const char *name, int64_t *added,
			int64_t *updated, struct sam_error *err);
/* The same from a file (at most SAM_CURRICULUM_FILE_MAX bytes): SAM_ENOTFOUND if missing, SAM_EIO if unreadable. */
int sam_curriculum_seed_file(struct sam_db *db, const char *path, int64_t *added, int64_t *updated,
			     struct sam_error *err);

/*
 * Claim a task for stream until now + lease_s: task want when want > 0
 * (a stream resuming its task), else the free task with the fewest
 * attempts, least recently tried first. Only a task whose lease has run
 * out can be claimed. On 0, t holds the task (release with
 * sam_curriculum_task_free) and the stream's row names it; SAM_ENOTFOUND
 * when no task (or not want) is free.
 */
int sam_curriculum_claim(struct sam_db *db, int stream, int64_t want, double lease_s,
			 struct sam_curriculum_task *t, struct sam_error *err);
/* Extend stream's lease on task_id to now + lease_s; SAM_ENOTFOUND when stream no longer holds it. */
int sam_curriculum_renew(struct sam_db *db, int stream, int64_t task_id, double lease_s, struct sam_error *err);
/* End stream's lease on task_id (if it holds it), so anyone may claim the task. */
int sam_curriculum_release(struct sam_db *db, int stream, int64_t task_id, struct sam_error *err);

/* ---- streams ------------------------------------------------------------------ */

/* A stream's persistent state: its row of curriculum_streams. */
struct sam_curriculum_stream {
	int stream;
	int64_t task_id; /* 0: none */
	int failures;    /* consecutive failed requests (the back-off exponent) */
	double next_try; /* wall-clock time of its next request */
};
/* Read stream's row into st; a stream without a row gets zeros (not an error). */
int sam_curriculum_stream_load(struct sam_db *db, int stream, struct sam_curriculum_stream *st,
			       struct sam_error *err);
/* Write st as the stream's row (inserted or replaced). */
int sam_curriculum_stream_save(struct sam_db *db, const struct sam_curriculum_stream *st, struct sam_error *err);

/* ---- attempts ----------------------------------------------------------------- */

struct sam_curriculum_attempt {
	int stream;
	const struct sam_curriculum_task *task;
	const char *answer; /* NULL: the api refused the request */
	double score;
	bool correct;
	double next_try;    /* when the stream asks next (stored in its row) */
};

/*
 * Record a graded attempt in one transaction: a curriculum_attempts row;
 * the task's attempts, correct and last_attempt, and its lease released;
 * when correct, the chat example {user: question, assistant: answer}
 * stored with source "curriculum", the task's category and the score as
 * quality (*example_added, may be NULL, says whether it was new); and the
 * stream's row reset (no task, no failures, next_try).
 */
int sam_curriculum_record(struct sam_db *db, const struct sam_curriculum_attempt *a, bool *example_added,
			  struct sam_error *err);

/* Call fn for each category: its tasks' attempts and correct answers, ordered by category. */
int sam_curriculum_stats(struct sam_db *db,
			 void (*fn)(void *ctx, const char *category, int64_t tasks, int64_t attempts, int64_t correct),
			 void *ctx, struct sam_error *err);

#endif
