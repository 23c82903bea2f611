/*
 * cmd_speak.c - `sam speak TEXT [-o OUT.wav]`: text to speech in this
 * process (voice.h, with the shared disk cache). Without -o the WAV goes
 * to stdout, unless stdout is a terminal. `sam speak --voices` lists the
 * voices, so a user told a voice is unknown can find the right name.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/config.h"
#include "sam/fs.h"
#include "sam/voice.h"

static int list_voices(void)
{
	struct sam_error err = { 0 };
	json_t *list = sam_voice_list(&err), *v;
	if (!list) {
		fprintf(stderr, "sam speak: %s\n", err.msg);
		return 1;
	}
	size_t i;
	printf("%-20s %-28s %s\n", "VOICE", "NAME", "LANGUAGES");
	json_array_foreach(list, i, v)
	{
		char langs[256] = "";
		json_t *l;
		size_t k;
		json_array_foreach(json_object_get(v, "languages"), k, l)
		{
			size_t n = strlen(langs);
			snprintf(langs + n, sizeof langs - n, "%s%s", k ? " " : "", json_string_value(l));
		}
		const char *id = json_string_value(json_object_get(v, "identifier"));
		const char *name = json_string_value(json_object_get(v, "name"));
		printf("%-20s %-28s %s\n", id ? id : "-", name ? name : "-", langs);
	}
	json_decref(list);
	return 0;
}

int cmd_speak(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("speak");
	if (cli_wants_help(cmd, argc, argv)) return 0;
	const char *out = NULL, *voice = NULL;
	long long speed = -1, pitch = -1;
	static const struct option lo[] = { { "output", required_argument, NULL, 'o' },
					    { "voice", required_argument, NULL, 'v' },
					    { "speed", required_argument, NULL, 's' },
					    { "pitch", required_argument, NULL, 'P' },
					    { "voices", no_argument, NULL, 'V' },
					    { 0 } };
	bool voices = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'v': voice = optarg; break;
		case 'V': voices = true; break;
		case 's':
			if (!cli_parse_int(optarg, SAM_VOICE_SPEED_MIN, SAM_VOICE_SPEED_MAX, &speed))
				return cli_usage_error(cmd, "--speed: expected %d..%d", SAM_VOICE_SPEED_MIN,
						       SAM_VOICE_SPEED_MAX);
			break;
		case 'P':
			if (!cli_parse_int(optarg, SAM_VOICE_PITCH_MIN, SAM_VOICE_PITCH_MAX, &pitch))
				return cli_usage_error(cmd, "--pitch: expected %d..%d", SAM_VOICE_PITCH_MIN,
						       SAM_VOICE_PITCH_MAX);
			break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (voices) return argc == optind ? list_voices() : cli_usage_error(cmd, "--voices takes no TEXT");
	if (argc - optind != 1) return cli_usage_error(cmd, "expected one TEXT argument (quote it)");
	if (!out && isatty(STDOUT_FILENO))
		return cli_usage_error(cmd, "stdout is a terminal: give -o OUT.wav, or redirect stdout");
	struct sam_conf conf = { 0 };
	struct sam_voice_conf vc;
	struct sam_voice_req q;
	struct sam_error err = { 0 };
	uint8_t *wav = NULL;
	size_t len = 0;
	bool hit;
	int rc = 1;
	json_t *body = json_pack("{s:s}", "text", argv[optind]);
	if (!body) {
		fprintf(stderr, "sam speak: TEXT must be valid UTF-8\n");
		return 1;
	}
	if (voice) json_object_set_new(body, "voice", json_string(voice));
	if (speed >= 0) json_object_set_new(body, "speed", json_integer(speed));
	if (pitch >= 0) json_object_set_new(body, "pitch", json_integer(pitch));
	if (sam_home_init(&err) || sam_conf_load(&conf, NULL, &err) || sam_voice_conf_load(&vc, &conf, &err) ||
	    sam_voice_req_parse(body, &vc, &q, &err) || sam_voice_speak(&vc, &q, &wav, &len, &hit, &err)) {
		fprintf(stderr, "sam speak: %s\n", err.msg);
		goto done;
	}
	if (out) {
		if (sam_write_file_atomic(out, wav, len, &err)) {
			fprintf(stderr, "sam speak: cannot write %s (%s)\n", out, err.msg);
			goto done;
		}
		fprintf(stderr, "sam speak: wrote %s (%.2f s of audio%s)\n", out, sam_voice_wav_seconds(wav, len),
			hit ? ", from the cache" : "");
	} else if (sam_write_all(STDOUT_FILENO, wav, len)) {
		fprintf(stderr, "sam speak: writing stdout failed\n");
		goto done;
	}
	rc = 0;
done:
	free(wav);
	json_decref(body);
	sam_conf_free(&conf);
	return rc;
}
