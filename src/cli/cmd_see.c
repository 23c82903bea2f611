/*
 * cmd_see.c - `sam see IMAGE [--ask QUESTION]`: the image goes to the api
 * (POST /api/vision/process) as base64; without an api, OCR and analysis
 * run in this process (vision.h). Prints the OCR text, the analysis, the
 * answer, or (--json) the whole reply.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/client.h"
#include "sam/config.h"
#include "sam/fs.h"
#include "sam/vision.h"

static void print_analysis(json_t *im)
{
	printf("%lld x %lld %s, %lld channel(s), mean brightness %.1f\n",
	       json_integer_value(json_object_get(im, "width")), json_integer_value(json_object_get(im, "height")),
	       json_string_value(json_object_get(im, "format")), json_integer_value(json_object_get(im, "channels")),
	       json_number_value(json_object_get(im, "mean_brightness")));
	json_t *c;
	size_t i;
	json_array_foreach(json_object_get(im, "dominant_colours"), i, c)
	printf("  colour %s  %.1f%%\n", json_string_value(json_object_get(c, "hex")),
	       json_number_value(json_object_get(c, "share")) * 100);
	printf("looks like a screenshot: %s; looks like text: %s\n",
	       json_is_true(json_object_get(im, "looks_like_screenshot")) ? "yes" : "no",
	       json_is_true(json_object_get(im, "looks_like_text")) ? "yes" : "no");
}

int cmd_see(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("see");
	if (cli_wants_help(cmd, argc, argv)) return 0;
	const char *ask = NULL, *lang = NULL;
	bool analyze = false, as_json = false;
	static const struct option lo[] = { { "ask", required_argument, NULL, 'a' },
					    { "lang", required_argument, NULL, 'l' },
					    { "analyze", no_argument, NULL, 'A' },
					    { "json", no_argument, NULL, 'j' },
					    { 0 } };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (c) {
		case 'a': ask = optarg; break;
		case 'l': lang = optarg; break;
		case 'A': analyze = true; break;
		case 'j': as_json = true; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 1) return cli_usage_error(cmd, "expected one IMAGE");
	if (ask && analyze) return cli_usage_error(cmd, "--ask and --analyze do not go together");
	const char *file = argv[optind];
	struct sam_conf conf = { 0 };
	struct sam_vision_conf vc;
	struct sam_error err = { 0 };
	struct sam_client cl = { 0 };
	bool client = false;
	char *data = NULL, *b64 = NULL;
	size_t len = 0;
	json_t *req = NULL, *res = NULL;
	int rc = 1;
	if (sam_home_init(&err) || sam_conf_load(&conf, NULL, &err) || sam_vision_conf_load(&vc, &conf, &err) ||
	    sam_read_file(file, vc.max_bytes, &data, &len, &err)) {
		fprintf(stderr, "sam see: %s\n", err.msg);
		goto out;
	}
	const char *task = ask ? "ask" : analyze ? "analyze" : "ocr";
	b64 = sam_base64_encode(data, len);
	req = json_pack("{s:s, s:s}", "image", b64, "task", task);
	if (ask) json_object_set_new(req, "prompt", json_string(ask));
	if (lang) json_object_set_new(req, "lang", json_string(lang));
	if (sam_client_init(&cl, NULL, &err)) {
		fprintf(stderr, "sam see: %s\n", err.msg);
		goto out;
	}
	client = true;
	int crc = sam_client_json(&cl, "/api/vision/process", req, &res, &err);
	if (crc && cl.unreachable && !ask) {
		/* no api: the same library, here */
		crc = sam_vision_process(&vc, data, len, true, task, lang, &res, &err);
		if (!crc) json_object_set_new(res, "served_by", json_string("sam see"));
	}
	if (crc) {
		if (ask && cl.unreachable)
			fprintf(stderr, "sam see: --ask needs the api (its model answers): %s\n", err.msg);
		else
			fprintf(stderr, "sam see: %s: %s\n", file, err.msg);
		goto out;
	}
	if (as_json) {
		char *s = json_dumps(res, JSON_INDENT(2));
		if (s) puts(s);
		free(s);
	} else if (ask) {
		const char *a = json_string_value(json_object_get(res, "answer"));
		printf("%s\n", a ? a : "");
		if (json_is_true(json_object_get(res, "ocr_truncated")))
			fprintf(stderr,
				"sam see: the image holds more text than the model's context: it read %lld of %zu words\n",
				json_integer_value(json_object_get(res, "ocr_words_in_prompt")), sam_vision_ocr_words(res));
	} else if (analyze) {
		print_analysis(json_object_get(res, "image"));
	} else {
		const char *t = json_string_value(json_object_get(json_object_get(res, "ocr"), "text"));
		fputs(t ? t : "", stdout);
		if (t && *t && t[strlen(t) - 1] != '\n') putchar('\n');
	}
	rc = 0;
out:
	if (client) sam_client_free(&cl);
	sam_vision_shutdown();
	json_decref(req);
	json_decref(res);
	free(b64);
	free(data);
	sam_conf_free(&conf);
	return rc;
}
