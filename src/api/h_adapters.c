/*
 * h_adapters.c - the deployed LoRA adapter in the running api: loading
 * adapters/current into the main engine (at start, and on POST
 * /api/adapters/reload), and GET /api/adapters.
 *
 * Loading (file I/O, checks against the model) happens in the calling
 * thread; the engine then swaps its pointer under its mutex, so the
 * scheduler never waits for a file. Only the main model gets the adapter:
 * it was trained for that model, and the small model served at LOW memory
 * has other shapes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "sam/adapters.h"

/* The engine's adapter (a reference) when it is id loaded from the very file now at path, else NULL. */
static struct api_adapter *unchanged(struct api_engine *e, const char *id, const char *path)
{
	struct api_adapter *cur = engine_adapter(e);
	struct stat st;
	if (cur && !strcmp(cur->id, id) && stat(path, &st) == 0 && st.st_dev == cur->st.st_dev &&
	    st.st_ino == cur->st.st_ino && st.st_size == cur->st.st_size && st.st_mtim.tv_sec == cur->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == cur->st.st_mtim.tv_nsec)
		return cur;
	api_adapter_unref(cur);
	return NULL;
}

int api_adapter_reload(struct api *a, struct api_engine *e, struct api_adapter **loaded, struct sam_error *err)
{
	char id[SAM_ADAPTER_ID_MAX + 1], path[4096];
	struct api_adapter *ad = NULL;
	*loaded = NULL;
	int rc = sam_adapters_current(id, sizeof id, path, sizeof path, err);
	if (rc == SAM_ENOTFOUND) rc = 0; /* no link: serve without adapter */
	else if (!rc && (ad = unchanged(e, id, path))) {
		*loaded = ad; /* the same file again: keep it, and the caches made with it */
		a->adapter_error[0] = '\0';
		return 0;
	} else if (!rc) rc = api_adapter_load(&ad, engine_model(e), id, path, a->lora_scale, err);
	if (rc) {
		snprintf(a->adapter_error, sizeof a->adapter_error, "%s", err->msg);
		return rc;
	}
	a->adapter_error[0] = '\0';
	engine_set_adapter(e, ad);
	*loaded = ad;
	return 0;
}

void api_adapter_startup(struct api *a, struct api_engine *e)
{
	struct api_adapter *ad;
	struct sam_error err;
	if (api_adapter_reload(a, e, &ad, &err))
		sam_log(SAM_LOG_ERROR, "api: serving without adapter: the current one cannot be used: %s", err.msg);
	else if (ad)
		sam_log(SAM_LOG_INFO, "api: adapter %s (rank %d) loaded in %.1f ms", ad->id, ad->lora.rank, ad->load_ms);
	api_adapter_unref(ad);
}

/* path, rank, alpha and scale of ad (all null when ad is NULL), and its id under id_key. */
static json_t *describe(const struct api_adapter *ad, const char *id_key)
{
	if (!ad)
		return json_pack("{s:n, s:n, s:n, s:n, s:n}", id_key, "path", "rank", "alpha", "scale");
	return json_pack("{s:s, s:s, s:i, s:f, s:f}", id_key, ad->id, "path", ad->path, "rank", ad->lora.rank, "alpha",
			 (double)ad->lora.alpha, "scale", (double)ad->scale);
}

json_t *api_adapter_json(struct api *a)
{
	struct api_engine *e = atomic_load(&a->main);
	struct api_adapter *ad = e ? engine_adapter(e) : NULL;
	json_t *j = ad ? describe(ad, "id") : json_null();
	api_adapter_unref(ad);
	return j;
}

void h_adapters_reload(struct http_req *r, void *ud)
{
	struct api *a = ud;
	struct api_adapter *ad = NULL;
	struct sam_error err;
	int rc = 0;
	pthread_mutex_lock(&a->adapter_mu);
	struct api_engine *e = api_main_engine(a, r); /* loading: it reads the link once the model is in */
	struct api_adapter *before = e ? engine_adapter(e) : NULL;
	if (e) rc = api_adapter_reload(a, e, &ad, &err);
	pthread_mutex_unlock(&a->adapter_mu);
	bool same = ad && ad == before;
	api_adapter_unref(before);
	if (!e) return;
	atomic_fetch_add(rc ? &a->reloads_failed : &a->reloads_ok, 1);
	if (rc) {
		sam_log(SAM_LOG_WARN, "api: adapter reload failed, the previous one stays: %s", err.msg);
		if (rc == SAM_ENOMEM) api_busy(r, 10, "there is not enough memory to load the adapter");
		else http_error(r, 409, "%s", err.msg);
		return;
	}
	sam_log(SAM_LOG_INFO, "api: adapter reloaded: %s", ad ? ad->id : "none");
	json_t *j = describe(ad, "adapter");
	json_object_set_new(j, "load_ms", ad ? json_real(ad->load_ms) : json_null());
	json_object_set_new(j, "unchanged", json_boolean(same)); /* the same file: the loaded copy stays */
	api_adapter_unref(ad);
	http_respond_json(r, 200, j);
}

static json_t *list_json(const struct sam_adapter_info *list, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I, s:f, s:b}", "id", list[i].id, "size",
						     (json_int_t)list[i].size, "mtime", list[i].mtime, "current",
						     list[i].current));
	return arr;
}

void h_adapters_list(struct http_req *r, void *ud)
{
	struct api *a = ud;
	struct sam_adapter_info *list;
	size_t n;
	struct sam_error err;
	if (sam_adapters_list(&list, &n, &err)) {
		http_error(r, 500, "%s", err.msg);
		return;
	}
	json_t *j = json_pack("{s:o, s:o}", "loaded", api_adapter_json(a), "adapters", list_json(list, n));
	free(list);
	char id[SAM_ADAPTER_ID_MAX + 1];
	int rc = sam_adapters_current(id, sizeof id, NULL, 0, &err);
	json_object_set_new(j, "current", rc ? json_null() : json_string(id));
	if (rc && rc != SAM_ENOTFOUND) json_object_set_new(j, "current_error", json_string(err.msg));
	pthread_mutex_lock(&a->adapter_mu);
	if (a->adapter_error[0]) json_object_set_new(j, "error", json_string(a->adapter_error));
	pthread_mutex_unlock(&a->adapter_mu);
	http_respond_json(r, 200, j);
}
