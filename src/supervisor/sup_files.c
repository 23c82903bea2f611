/*
 * sup_files.c - what the supervisor tells the world: the status reply of
 * the control socket, run/services.json (rewritten atomically on every
 * change; clients find services by its "url") and run/NAME.pid.
 * Formats: include/sam/supervise.h. Fields beyond the contract's are
 * additions ("error", "last_exit_text", "since", "enabled").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "sam/fs.h"
#include "sam/resource.h"
#include "supervisor/sup.h"

int sup_guard_level(const struct sup *d)
{
	if (d->class_paused[SUP_HIGH]) return SAM_LEVEL_CRITICAL;
	if (d->class_paused[SUP_NORMAL]) return SAM_LEVEL_LOW;
	if (d->class_paused[SUP_LOW] || d->class_paused[SUP_BACKGROUND]) return SAM_LEVEL_MEDIUM;
	return SAM_LEVEL_OK;
}

bool sup_all_settled(const struct sup *d)
{
	for (int i = 0; i < d->n; i++) {
		const struct sup_service *s = &d->svc[i];
		if (!s->enabled || s->one_shot || !s->autostart) continue;
		switch (s->state) {
		case SUP_READY:
		case SUP_FAILED:
		case SUP_STOPPED: /* held down by `stop NAME` */
		case SUP_DONE: break;
		case SUP_PAUSED:
			if (s->paused_from == SUP_READY) break;
			return false;
		default: return false;
		}
	}
	return true;
}

static json_t *service_json(const struct sup_service *s, bool status)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "state", json_string(sup_state_name(s->state)));
	json_object_set_new(o, "pid", json_integer(s->pid));
	json_object_set_new(o, "port", json_integer(s->port));
	json_object_set_new(o, "url", json_string(s->url));
	json_object_set_new(o, "restarts", json_integer(s->restarts));
	char text[64] = "";
	if (s->has_exited) {
		int st = s->last_status;
		json_object_set_new(o, "last_exit",
				    json_integer(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)));
		sup_describe_status(st, text, sizeof text);
	} else {
		json_object_set_new(o, "last_exit", json_null());
	}
	json_object_set_new(o, "last_exit_text", json_string(text));
	json_object_set_new(o, "priority", json_string(sup_priority_name(s->priority)));
	json_object_set_new(o, "since", json_real(s->since));
	json_object_set_new(o, "error", json_string(s->error));
	json_object_set_new(o, "enabled", json_boolean(s->enabled));
	if (status) {
		json_object_set_new(o, "paused", json_boolean(s->state == SUP_PAUSED));
		json_object_set_new(o, "one_shot", json_boolean(s->one_shot));
	}
	return o;
}

char *sup_status_json(struct sup *d)
{
	json_t *r = json_object();
	json_object_set_new(r, "ok", json_true());
	json_object_set_new(r, "pid", json_integer(getpid()));
	json_object_set_new(r, "version", json_string(SAM_VERSION));
	json_object_set_new(r, "uptime_s", json_real(sam_now() - d->started_mono));
	json_object_set_new(r, "ready", json_boolean(sup_all_settled(d)));
	json_object_set_new(r, "shutting_down", json_boolean(d->shutting_down));
	json_t *m = json_object();
	json_object_set_new(m, "available_mb", d->mem_mb >= 0 ? json_real(d->mem_mb) : json_null());
	json_object_set_new(m, "level", json_string(sam_level_name(sup_guard_level(d))));
	json_object_set_new(r, "memory", m);
	json_t *a = json_array();
	for (int i = 0; i < d->n; i++) json_array_append_new(a, service_json(&d->svc[i], true));
	json_object_set_new(r, "services", a);
	char *text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	if (!text) return xstrdup("{\"ok\":false,\"error\":\"out of memory\"}\n");
	size_t l = strlen(text);
	char *out = xmalloc(l + 2);
	memcpy(out, text, l);
	out[l] = '\n';
	out[l + 1] = 0;
	free(text);
	return out;
}

void sup_write_services_json(struct sup *d)
{
	json_t *r = json_object();
	for (int i = 0; i < d->n; i++) json_object_set_new(r, d->svc[i].name, service_json(&d->svc[i], false));
	char *text = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(r);
	if (!text) return;
	char path[1200];
	snprintf(path, sizeof path, "%s/services.json", d->run_dir);
	size_t l = strlen(text);
	text = xrealloc(text, l + 2);
	text[l++] = '\n';
	struct sam_error err;
	if (sam_write_file_atomic(path, text, l, &err)) sup_log(SAM_LOG_ERROR, "%s", err.msg);
	free(text);
	d->dirty = false;
}

void sup_write_pidfile(struct sup *d, const struct sup_service *s)
{
	char path[1200], text[32];
	snprintf(path, sizeof path, "%s/%s.pid", d->run_dir, s->name);
	int n = snprintf(text, sizeof text, "%ld\n", (long)s->pid);
	struct sam_error err;
	if (sam_write_file_atomic(path, text, (size_t)n, &err)) sup_log(SAM_LOG_ERROR, "%s", err.msg);
}

void sup_remove_pidfile(struct sup *d, const struct sup_service *s)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/%s.pid", d->run_dir, s->name);
	unlink(path);
}
