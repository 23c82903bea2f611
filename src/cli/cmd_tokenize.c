/*
 * cmd_tokenize.c - `sam tokenize`: print the token ids of a text, as
 * llama.cpp's llama_tokenize would produce them, space-separated on one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/gguf.h"
#include "sam/tokenizer.h"

/* Largest -f FILE we read. */
#define TOKENIZE_MAX_FILE ((size_t)64 << 20)

/* Read all of path (at most TOKENIZE_MAX_FILE bytes) into *out (malloc'd). */
static int read_text_file(const char *path, char **out, size_t *len, struct sam_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	int rc = 0;
	if (!buf) {
		rc = sam_errorf(err, SAM_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		if (n == cap) {
			/* room for one byte past the limit tells "too big" from "exactly the limit" */
			if (cap > TOKENIZE_MAX_FILE) {
				rc = sam_errorf(err, SAM_ERANGE, "%s: larger than the %zu MiB limit", path,
				                TOKENIZE_MAX_FILE >> 20);
				goto out;
			}
			size_t ncap = cap * 2 > TOKENIZE_MAX_FILE ? TOKENIZE_MAX_FILE + 1 : cap * 2;
			char *b = realloc(buf, ncap);
			if (!b) {
				rc = sam_errorf(err, SAM_ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = b;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			rc = sam_errorf(err, SAM_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0) break;
		n += (size_t)r;
	}
out:
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

int cmd_tokenize(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("tokenize");
	static const struct option opts[] = {
	    {"model", required_argument, NULL, 'm'},
	    {"file", required_argument, NULL, 'f'},
	    {"no-bos", no_argument, NULL, 'B'},
	    {"parse-special", no_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	const char *model = NULL, *file = NULL;
	bool no_bos = false, parse_special = false;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":m:f:", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'f': file = optarg; break;
		case 'B': no_bos = true; break;
		case 'S': parse_special = true; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt) return cli_usage_error(cmd, "unknown option '-%c'", optopt);
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!model) return cli_usage_error(cmd, "a model is required (-m MODEL.gguf)");
	int n_text = argc - optind;
	if (file && n_text > 0) return cli_usage_error(cmd, "give either TEXT or -f FILE, not both");
	if (!file && n_text == 0) return cli_usage_error(cmd, "nothing to tokenize: give TEXT or -f FILE");
	if (n_text > 1) return cli_usage_error(cmd, "expected one TEXT argument, got %d (quote the text)", n_text);

	struct sam_error err = {0};
	struct gguf_file f;
	struct tok_vocab v;
	char *text = NULL;
	size_t len = 0;
	int32_t *ids = NULL;
	size_t n = 0;
	int status = 1;
	bool have_file = false, have_vocab = false;

	if (file) {
		if (read_text_file(file, &text, &len, &err)) goto fail;
	}
	if (gguf_open(&f, model, &err)) goto fail;
	have_file = true;
	if (tok_load(&v, &f, &err)) {
		sam_error_prefix(&err, model);
		goto fail;
	}
	have_vocab = true;
	const char *t = file ? text : argv[optind];
	if (!file) len = strlen(t);
	if (tok_encode(&v, t, len, !no_bos, parse_special, &ids, &n, &err)) goto fail;

	for (size_t i = 0; i < n; i++)
		printf(i ? " %d" : "%d", (int)ids[i]);
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout)) {
		sam_errorf(&err, SAM_EIO, "writing the output: %s", strerror(errno));
		goto fail;
	}
	status = 0;
	goto out;
fail:
	fprintf(stderr, "sam tokenize: %s\n", err.msg);
out:
	free(ids);
	free(text);
	if (have_vocab) tok_free(&v);
	if (have_file) gguf_close(&f);
	return status;
}
