/*
 * cmd_voice.c - `sam voice`: the text-to-speech service (voice.h).
 *   GET /health   liveness and counters (synths, cache hits and misses)
 *   GET /voices   the installed espeak-ng voices
 *   POST /speak   {"text", "voice"?, "speed"?, "pitch"?} -> audio/wav,
 *                 with X-Cache: hit|miss and X-Audio-Seconds
 * The main thread waits for SIGINT/SIGTERM; the HTTP threads share the
 * library, which serialises espeak-ng itself.
 */
#include <pthread.h>
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
#include "sam/voice.h"

struct voicesvc {
	struct sam_voice_conf vc;
	double t_start;
	int rate;
	atomic_llong synths, hits, misses, errors;
};

static void health(struct http_req *r, void *ud)
{
	struct voicesvc *v = ud;
	http_respond_json(r, 200,
			  json_pack("{s:s, s:s, s:I, s:f, s:i, s:s, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:s}}", "status", "ok",
				    "service", "voice", "pid", (json_int_t)getpid(), "uptime_s", sam_now() - v->t_start,
				    "sample_rate", v->rate, "default_voice", v->vc.voice, "counts", "requests",
				    (json_int_t)(atomic_load(&v->hits) + atomic_load(&v->misses)), "synths",
				    (json_int_t)atomic_load(&v->synths), "cache_hits", (json_int_t)atomic_load(&v->hits),
				    "errors", (json_int_t)atomic_load(&v->errors), "cache", "max_bytes",
				    (json_int_t)v->vc.cache_bytes, "dir", v->vc.cache_dir));
}

static void voices(struct http_req *r, void *ud)
{
	struct voicesvc *v = ud;
	struct sam_error err = { 0 };
	json_t *list = sam_voice_list(&err);
	if (!list) {
		http_error(r, 500, "%s", err.msg);
		return;
	}
	http_respond_json(r, 200, json_pack("{s:o, s:s}", "voices", list, "default", v->vc.voice));
}

static void speak(struct http_req *r, void *ud)
{
	struct voicesvc *v = ud;
	json_t *body = http_body_json(r);
	if (!body) return;
	struct sam_voice_req q;
	struct sam_error err = { 0 };
	uint8_t *wav = NULL;
	size_t len = 0;
	bool hit = false;
	int rc = sam_voice_req_parse(body, &v->vc, &q, &err);
	if (!rc) rc = sam_voice_speak(&v->vc, &q, &wav, &len, &hit, &err);
	json_decref(body);
	if (rc) {
		atomic_fetch_add(&v->errors, 1);
		int status = rc == SAM_ERANGE ? 413 : rc == SAM_EINVAL || rc == SAM_ENOTFOUND ? 400 : 500;
		http_error(r, status, "%s", err.msg);
		return;
	}
	atomic_fetch_add(hit ? &v->hits : &v->misses, 1);
	if (!hit) atomic_fetch_add(&v->synths, 1);
	char secs[32];
	snprintf(secs, sizeof secs, "%.3f", sam_voice_wav_seconds(wav, len));
	http_set_header(r, "X-Cache", hit ? "hit" : "miss");
	http_set_header(r, "X-Audio-Seconds", secs);
	http_respond(r, 200, "audio/wav", (const char *)wav, len);
	free(wav);
}

int cmd_voice(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("voice");
	if (cli_wants_help(cmd, argc, argv)) return 0;
	long long port;
	const char *port_file;
	int usage = cli_service_args(cmd, argc, argv, &port, &port_file);
	if (usage) return usage;
	struct voicesvc v = { .t_start = sam_now() };
	struct sam_conf conf = { 0 };
	struct sam_error err = { 0 };
	struct http_server *http = NULL;
	int rc = 1;
	if (sam_home_init(&err) || sam_conf_load(&conf, NULL, &err) || sam_voice_conf_load(&v.vc, &conf, &err)) {
		fprintf(stderr, "sam voice: %s\n", err.msg);
		goto out;
	}
	if (port < 0 && sam_conf_int(&conf, "voice", "port", SAM_VOICE_DEFAULT_PORT, 0, 65535, &port, &err)) {
		fprintf(stderr, "sam voice: %s\n", err.msg);
		goto out;
	}
	if ((v.rate = sam_voice_sample_rate(&err)) < 0) {
		fprintf(stderr, "sam voice: %s\n", err.msg);
		goto out;
	}
	sigset_t set;
	sam_service_signals(&set, 0);
	static const struct http_route routes[] = { { "GET", "/health", health },
						    { "GET", "/voices", voices },
						    { "POST", "/speak", speak },
						    { NULL, NULL, NULL } };
	struct http_opts ho = { .max_body = 1 << 20 };
	if (http_start(&http, "127.0.0.1", (int)port, routes, &v, &ho, &err) ||
	    (port_file && http_write_port_file(http, port_file, &err))) {
		fprintf(stderr, "sam voice: %s\n", err.msg);
		goto out;
	}
	sam_log(SAM_LOG_INFO, "voice: listening on http://127.0.0.1:%d (espeak-ng at %d Hz, voice %s)", http_port(http),
		v.rate, v.vc.voice);
	int sig;
	sigwait(&set, &sig);
	sam_log(SAM_LOG_INFO, "voice: stopping");
	rc = 0;
out:
	http_stop(http);
	sam_conf_free(&conf);
	return rc;
}
