/*
 * cmd_vision.c - `sam vision`: the vision service (vision.h).
 *   GET  /health    liveness and counters
 *   POST /process   {"image": base64 | "path", "task"?, "lang"?, "prompt"?}
 *                   or a raw image body (?task=&lang=) -> analysis and/or OCR
 * Every job passes this process's heavy-work gate (resource.h), so at most
 * [resource] heavy_slots images are decoded and recognised at once; a job
 * that waits longer than [vision] queue_timeout_s gets 503 with Retry-After.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/config.h"
#include "sam/fs.h"
#include "sam/http.h"
#include "sam/resource.h"
#include "sam/vision.h"

struct visionsvc {
	struct sam_vision_conf vc;
	struct sam_resource res;
	double queue_timeout_s;
	double t_start;
	atomic_uint_least64_t requests, errors, busy;
};

static void health(struct http_req *r, void *ud)
{
	struct visionsvc *v = ud;
	http_respond_json(r, 200,
			  json_pack("{s:s, s:s, s:I, s:f, s:s, s:I, s:I, s:{s:I, s:I, s:I}}", "status", "ok", "service",
				    "vision", "pid", (json_int_t)getpid(), "uptime_s", sam_now() - v->t_start, "lang",
				    v->vc.lang, "max_bytes", (json_int_t)v->vc.max_bytes, "max_pixels",
				    (json_int_t)v->vc.max_pixels, "counts", "requests", (json_int_t)atomic_load(&v->requests),
				    "errors", (json_int_t)atomic_load(&v->errors), "busy", (json_int_t)atomic_load(&v->busy)));
}

static void process(struct http_req *r, void *ud)
{
	struct visionsvc *v = ud;
	atomic_fetch_add(&v->requests, 1);
	size_t len;
	const char *body = http_body(r, &len);
	if (!sam_gate_acquire(&v->res, v->queue_timeout_s)) {
		atomic_fetch_add(&v->busy, 1);
		http_set_header(r, "Retry-After", "5");
		http_error(r, 503, "I need a moment - the vision service is busy. Try again shortly.");
		return;
	}
	json_t *res = NULL;
	struct sam_error err = { 0 };
	int rc = sam_vision_process(&v->vc, body, len, !sam_vision_body_is_json(http_header(r, "Content-Type"), body, len),
				    http_query(r, "task"), http_query(r, "lang"), &res, &err);
	sam_gate_release(&v->res);
	if (rc) {
		atomic_fetch_add(&v->errors, 1);
		http_error(r, sam_vision_status(rc), "%s", err.msg);
		return;
	}
	json_object_set_new(res, "service", json_string("vision"));
	http_respond_json(r, 200, res);
}

int cmd_vision(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("vision");
	if (cli_wants_help(cmd, argc, argv)) return 0;
	long long port;
	const char *port_file;
	int usage = cli_service_args(cmd, argc, argv, &port, &port_file);
	if (usage) return usage;
	struct visionsvc v = { .t_start = sam_now() };
	struct sam_conf conf = { 0 };
	struct sam_error err = { 0 };
	struct http_server *http = NULL;
	bool res_ok = false;
	int rc = 1;
	if (sam_home_init(&err) || sam_conf_load(&conf, NULL, &err) || sam_vision_conf_load(&v.vc, &conf, &err) ||
	    sam_conf_float(&conf, "vision", "queue_timeout_s", 30, &v.queue_timeout_s, &err) ||
	    (port < 0 && sam_conf_int(&conf, "vision", "port", SAM_VISION_DEFAULT_PORT, 0, 65535, &port, &err)) ||
	    sam_resource_init(&v.res, &conf, &err)) {
		fprintf(stderr, "sam vision: %s\n", err.msg);
		goto out;
	}
	res_ok = true;
	sigset_t set;
	sam_service_signals(&set, 0);
	static const struct http_route routes[] = { { "GET", "/health", health },
						    { "POST", "/process", process },
						    { NULL, NULL, NULL } };
	struct http_opts ho = { .max_body = sam_vision_max_body(&v.vc) };
	if (http_start(&http, "127.0.0.1", (int)port, routes, &v, &ho, &err) ||
	    (port_file && http_write_port_file(http, port_file, &err))) {
		fprintf(stderr, "sam vision: %s\n", err.msg);
		goto out;
	}
	sam_log(SAM_LOG_INFO, "vision: listening on http://127.0.0.1:%d (OCR language %s)", http_port(http), v.vc.lang);
	int sig;
	sigwait(&set, &sig);
	sam_log(SAM_LOG_INFO, "vision: stopping");
	rc = 0;
out:
	http_stop(http);
	sam_vision_shutdown();
	if (res_ok) sam_resource_free(&v.res);
	sam_conf_free(&conf);
	return rc;
}
