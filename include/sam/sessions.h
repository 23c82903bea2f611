/*
 * sessions.h - chat memory in sam.db: sessions and their messages.
 *
 * A session id is 1..64 characters of [A-Za-z0-9_.-]; new sessions get 32
 * random hex characters. Messages belong to one session, keep their order
 * (by message id) and are deleted with it. Times are wall-clock seconds
 * since the epoch (sam_db_time()). All functions take a connection the
 * caller owns (see db.h for the one-connection-per-thread rule).
 */
#ifndef SAM_SESSIONS_H
#define SAM_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/db.h"

#define SAM_SESSION_ID_MAX 64                   /* characters, without the NUL */
#define SAM_SESSION_CONTENT_MAX (8u << 20)      /* bytes of one message */
#define SAM_SESSION_TITLE_MAX 1024              /* bytes of a title */

/* One message of a history. role is "system", "user" or "assistant". */
struct sam_message {
	int64_t id;      /* increasing within the database */
	char role[16];
	char *content;   /* malloc'd, NUL-terminated; freed by sam_messages_free */
	int tokens;
	double created;
};

/* One row of sam_session_list(). */
struct sam_session_info {
	char id[SAM_SESSION_ID_MAX + 1];
	double created, updated; /* updated: the last message (or creation) */
	char *title;             /* NULL if none; freed by sam_session_list_free */
	int64_t n_messages;
};

/* Whether id is 1..64 characters of [A-Za-z0-9_.-]. */
bool sam_session_id_valid(const char *id);

/* Create a session with a new random id (32 hex characters), written to id_out. */
int sam_session_create(struct sam_db *db, char id_out[SAM_SESSION_ID_MAX + 1], struct sam_error *err);
/*
 * Make sure session id exists, creating it if not; *created (may be NULL)
 * says which. SAM_EINVAL for an invalid id.
 */
int sam_session_ensure(struct sam_db *db, const char *id, bool *created, struct sam_error *err);
/* Set (title non-NULL, at most SAM_SESSION_TITLE_MAX bytes) or clear the title. SAM_ENOTFOUND if absent. */
int sam_session_set_title(struct sam_db *db, const char *id, const char *title, struct sam_error *err);

/*
 * Append a message and bump the session's updated time, in one
 * transaction. role must be system|user|assistant, tokens >= 0 and content
 * at most SAM_SESSION_CONTENT_MAX bytes (SAM_EINVAL / SAM_ERANGE).
 * SAM_ENOTFOUND if the session does not exist. *msg_id (may be NULL) gets
 * the new message's id.
 */
int sam_session_append(struct sam_db *db, const char *id, const char *role, const char *content, int tokens,
		       int64_t *msg_id, struct sam_error *err);

/*
 * The history of session id in order, oldest first: all messages when
 * last_n is 0, else only the last last_n. On success *msgs (NULL when
 * empty) and *n are the caller's, freed with sam_messages_free().
 * SAM_ENOTFOUND if the session does not exist.
 */
int sam_session_history(struct sam_db *db, const char *id, size_t last_n, struct sam_message **msgs, size_t *n,
			struct sam_error *err);
void sam_messages_free(struct sam_message *msgs, size_t n);

/* Delete a session and (by cascade) its messages. SAM_ENOTFOUND if absent. */
int sam_session_delete(struct sam_db *db, const char *id, struct sam_error *err);

/*
 * Sessions, most recently updated first, at most limit of them (0: all).
 * On success *list (NULL when empty) and *n are the caller's, freed with
 * sam_session_list_free().
 */
int sam_session_list(struct sam_db *db, size_t limit, struct sam_session_info **list, size_t *n,
		     struct sam_error *err);
void sam_session_list_free(struct sam_session_info *list, size_t n);

#endif
