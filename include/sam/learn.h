/*
 * learn.h - the example store: training examples in sam.db, deduplicated
 * by a SHA-256 of their normalised content (a UNIQUE column, so two
 * processes adding the same example at once store it once), the files the
 * learners have ingested, and the deterministic train/valid export.
 *
 * An example is either a chat example, {"messages":[{"role","content"}...]}
 * with roles system/user/assistant and at least one non-empty assistant
 * turn (training puts the loss on assistant turns), or a text example,
 * {"text":"..."} (loss on every token). Normalisation: CRLF and CR become
 * LF, leading and trailing white space of every content/text is dropped,
 * roles are lower-case, OpenAI content arrays are joined text parts and
 * ShareGPT speakers are mapped (human -> user, gpt -> assistant). The
 * stored content is the canonical compact JSON of the normalised example
 * (keys in the order above), and its SHA-256 in hex is the hash.
 *
 * All functions take a connection the caller owns (db.h).
 */
#ifndef SAM_LEARN_H
#define SAM_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/db.h"
#include "sam/sha256.h"

struct json_t;

#define SAM_EXAMPLE_MAX (4u << 20)       /* bytes of one normalised example */
#define SAM_LEARN_FILE_MAX (256u << 20)  /* bytes of one ingested file */
#define SAM_LEARN_CHUNK_DEFAULT 2000     /* characters of a text chunk (~500 tokens) */

enum sam_example_kind { SAM_EXAMPLE_CHAT, SAM_EXAMPLE_TEXT };

/* A normalised example, ready to store. */
struct sam_example {
	enum sam_example_kind kind;
	char *json;                          /* canonical JSON, malloc'd; freed by sam_example_free */
	char hash[SAM_SHA256_HEX_LEN + 1];
};

/*
 * Normalise one example given as JSON: an object with "messages" (OpenAI
 * form; content a string or an array of {"type":"text","text"} parts),
 * "conversations" (ShareGPT form: {"from","value"}) or "text". SAM_EINVAL
 * with the reason in err when it is none of these or has no usable
 * content (no assistant answer, an unknown role, an empty text).
 */
int sam_example_from_json(const struct json_t *obj, struct sam_example *ex, struct sam_error *err);
/* A text example from len bytes of UTF-8 (SAM_EINVAL if empty after trimming or not UTF-8). */
int sam_example_from_text(const char *text, size_t len, struct sam_example *ex, struct sam_error *err);
void sam_example_free(struct sam_example *ex);

/*
 * Store ex with its source ("file", "feedback", "curriculum", "manual"...),
 * category (may be "" ) and quality (< 0: none), and origin (where it came
 * from, e.g. "path:line"; may be NULL). *added (may be NULL) says whether
 * it was new: an example already stored (same hash) is left as it was.
 */
int sam_example_add(struct sam_db *db, const struct sam_example *ex, const char *source, const char *category,
		    double quality, const char *origin, bool *added, struct sam_error *err);

/* ---- ingesting files --------------------------------------------------------- */

/* What happened to one file. */
struct sam_ingest_result {
	int64_t added;       /* new examples */
	int64_t duplicates;  /* examples already stored */
	int64_t bad;         /* lines/records rejected (their reasons in errors) */
	bool skipped;        /* already ingested with the same size, mtime and content */
	char errors[1024];   /* the first rejections, "line N: reason; ..." */
};

/*
 * Ingest one file and record its outcome in the files table (path, size,
 * mtime, hash, status ok|partial|error, error text), all in one
 * transaction with its examples, so a crash neither half-records a file
 * nor loses it. Kinds by extension: .jsonl (one example per line), .json
 * (one example or an array of them); anything else that is UTF-8 text
 * without NUL bytes becomes text examples of about chunk_chars characters
 * (0: SAM_LEARN_CHUNK_DEFAULT), cut at paragraph, then line, then word
 * boundaries. A file already recorded with the same size and mtime is
 * skipped without being read (as is one recorded with the same size, mtime
 * and hash by another process while this one read it). A file that cannot be used at all (unreadable, binary,
 * every line bad) is recorded with status "error" and returns SAM_EINVAL
 * or SAM_EIO with the reason; bad lines among good ones give "partial"
 * and 0.
 */
int sam_ingest_file(struct sam_db *db, const char *path, int chunk_chars, struct sam_ingest_result *res,
		    struct sam_error *err);

/* ---- walking directories ------------------------------------------------------ */

/*
 * Whether a file or directory name is left out when ingesting a
 * directory: hidden names (".git", ".#draft"), editor backups ("notes~")
 * and files still being written by their tools (.part, .partial, .tmp,
 * .swp, .swx, .crdownload). Writers that rename a finished file into
 * place are picked up under its final name.
 */
bool sam_learn_ignored(const char *name);

/* Callbacks of sam_learn_walk; each may be NULL. A non-zero return stops the walk. */
struct sam_walk_cb {
	int (*on_dir)(void *ctx, const char *dir);                /* before its entries */
	int (*on_file)(void *ctx, const char *path);
	int (*on_error)(void *ctx, const char *path, int errnum); /* unreadable dir; the walk goes on if it returns 0 */
};

/*
 * Walk dir recursively: on_dir for dir and each subdirectory, on_file for
 * each regular file or symlink to one. Ignored names are left out with
 * their whole subtree; symlinked directories are not followed (no loops).
 * Returns the first non-zero callback result, else 0.
 */
int sam_learn_walk(const char *dir, const struct sam_walk_cb *cb, void *ctx);

/* ---- statistics and export --------------------------------------------------- */

/* Counts for `sam learn stats`, as printable lines appended to a caller-owned buffer. */
struct sam_learn_stats {
	int64_t examples, chat, text;
	int64_t files_ok, files_partial, files_error;
	int64_t pending;     /* examples added after the last training run that exported them (all when none) */
};
int sam_learn_stats(struct sam_db *db, struct sam_learn_stats *st, struct sam_error *err);
/* Just the pending count of sam_learn_stats (what the training trigger looks at). */
int sam_learn_pending(struct sam_db *db, int64_t *n, struct sam_error *err);
/* Call fn for each (source, category, count), ordered by source then category. */
int sam_learn_stats_by(struct sam_db *db, void (*fn)(void *ctx, const char *source, const char *category, int64_t n),
		       void *ctx, struct sam_error *err);

/*
 * Write dir/train.jsonl and dir/valid.jsonl (dir is created), each
 * replaced atomically: every stored example, one JSON line each, ordered
 * by hash; an example goes to valid when the first 8 hex digits of its
 * hash, as a fraction of 2^32, are below valid_fraction (0..1). The split
 * depends only on the examples, so two exports of the same store are
 * byte-identical. n_train and n_valid (may be NULL) get the counts.
 */
int sam_dataset_export(struct sam_db *db, const char *dir, double valid_fraction, int64_t *n_train, int64_t *n_valid,
		       struct sam_error *err);

#endif
