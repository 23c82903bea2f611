/*
 * adapters.h - the deployed LoRA adapters: $SAM_HOME/adapters/<id>.gguf,
 * one per deployed training run (or installed by hand), and the symbolic
 * link adapters/current -> <id>.gguf naming the one the api applies.
 *
 * Switching is atomic: a new link is made under a temporary name and
 * renamed over "current", so a reader sees the old adapter or the new
 * one, never neither. "No current link" means "no adapter". An id is a
 * file name without ".gguf": letters, digits, '-', '_' and '.', not
 * starting with '.', at most SAM_ADAPTER_ID_MAX bytes.
 */
#ifndef SAM_ADAPTERS_H
#define SAM_ADAPTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"

#define SAM_ADAPTER_ID_MAX 64

/* True for a well-formed id. */
bool sam_adapter_id_ok(const char *id);

/* $SAM_HOME/adapters/<id>.gguf into buf. SAM_EINVAL for a bad id, SAM_ERANGE if it does not fit. */
int sam_adapter_path(const char *id, char *buf, size_t cap, struct sam_error *err);

/*
 * Copy the adapter file src into adapters/<id>.gguf (atomically, fsynced)
 * and make it current. The file is not checked against a model here: the
 * caller has just written or loaded it.
 */
int sam_adapters_deploy(const char *src, const char *id, struct sam_error *err);

/* Make adapters/<id>.gguf current. SAM_ENOTFOUND when there is no such adapter. */
int sam_adapters_use(const char *id, struct sam_error *err);

/* Remove the current link (no adapter). Not an error when there is none. */
int sam_adapters_off(struct sam_error *err);

/*
 * The current adapter's id (cap >= SAM_ADAPTER_ID_MAX + 1) and, if path is
 * not NULL, its full path. SAM_ENOTFOUND when none is current (no link);
 * SAM_EFORMAT when the link is broken: it points at a file that is gone or
 * at something other than an adapter of the directory (the message says
 * which). A reader never sees "none" while the link is being switched.
 */
int sam_adapters_current(char *id, size_t cap, char *path, size_t pcap, struct sam_error *err);

struct sam_adapter_info {
	char id[SAM_ADAPTER_ID_MAX + 1];
	int64_t size;   /* bytes */
	double mtime;   /* seconds since the epoch */
	bool current;
};

/*
 * The adapters in adapters/, sorted by id (run ids sort by time). *out is
 * malloc'd (caller frees), *n entries. An absent directory is an empty list.
 */
int sam_adapters_list(struct sam_adapter_info **out, size_t *n, struct sam_error *err);

/* What a running api answered to a reload (sam_adapters_reload_api). */
struct sam_api_reload {
	bool reached; /* an api answered */
	long status;  /* its HTTP status (409: it refused the adapter) */
	bool later;   /* it answered 503 (its model is not loaded yet, or no memory now): it
			 loads the current adapter when its model is ready, or at the next reload */
	char adapter[SAM_ADAPTER_ID_MAX + 1]; /* reloaded: the adapter it serves with now; "" none */
	char message[512];                    /* later, or refused (409): the api's reason */
	bool reverted;                        /* sam_adapters_reload_or_revert put the link back */
};

/*
 * Ask a running api to reload the current adapter (POST
 * /api/adapters/reload) and say what came of it in *out. An api that is
 * not running is not an error (it loads the current adapter when it
 * starts), nor is one that answers 503 (out->later). Other answers are
 * (SAM_EINVAL for a 4xx, with the api's message): 409 when the api refused
 * the adapter (made for another model, damaged), keeping the one it had;
 * 401 when it wants an API key ($SAM_API_KEY).
 */
int sam_adapters_reload_api(struct sam_api_reload *out, struct sam_error *err);
/*
 * sam_adapters_reload_api after the current link was switched away from
 * prev (an id, or NULL for none). When the api refuses the new adapter
 * (409) the link is put back to prev, so that it names what the api still
 * serves: out->reverted says so, out->message has the api's reason, and
 * the refusal is returned; a link that cannot be put back is that error.
 */
int sam_adapters_reload_or_revert(const char *prev, struct sam_api_reload *out, struct sam_error *err);

/* The same for callers that only need to know whether an api answered (*reached). */
int sam_adapters_notify_api(bool *reached, struct sam_error *err);

#endif
