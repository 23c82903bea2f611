/*
 * cmd_pull.c - `sam pull`: download a GGUF model of the catalogue (or any
 * URL) into $SAM_HOME/models, resumable and verified (see download.h).
 * Results go to stdout; progress and diagnostics to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/download.h"
#include "sam/fs.h"
#include "sam/sha256.h"

#define MB(x) ((double)(x) / 1e6)

struct pull_opts {
	const char *what; /* NAME or URL, NULL = the default model */
	const char *output;
	const char *sha256; /* lowercase, in sha_buf */
	char sha_buf[SAM_SHA256_HEX_LEN + 1];
	bool force, list;
};

enum { OPT_SHA256 = 256, OPT_FORCE, OPT_LIST };

static const struct option long_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "sha256", required_argument, NULL, OPT_SHA256 },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "list", no_argument, NULL, OPT_LIST },
	{ 0 },
};

static void catalogue_names(char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = 0;
	for (const struct sam_catalogue_entry *e = sam_catalogue; e->name && n < cap; e++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", e->name);
}

static bool is_url(const char *s)
{
	return strstr(s, "://") != NULL;
}

/*
 * The file name a URL names: the last component of its path, without query
 * or fragment. False when there is none that is safe as a file name.
 */
static bool url_file_name(const char *url, char *buf, size_t cap)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t plen = strcspn(p, "?#");
	const char *path = memchr(p, '/', plen);
	if (!path) return false;
	const char *end = p + plen, *name = end;
	while (name > path && name[-1] != '/') name--;
	size_t n = (size_t)(end - name);
	if (n == 0 || n >= cap) return false;
	memcpy(buf, name, n);
	buf[n] = 0;
	return strcmp(buf, ".") && strcmp(buf, "..");
}

static int parse_opts(const struct sam_cmd *cmd, int argc, char **argv, struct pull_opts *o)
{
	int c;
	memset(o, 0, sizeof *o);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (!*optarg || optarg[strlen(optarg) - 1] == '/')
				return cli_usage_error(cmd, "-o: expected a file name, got '%s'", optarg);
			o->output = optarg;
			break;
		case OPT_SHA256:
			if (!sam_sha256_hex_valid(optarg, o->sha_buf))
				return cli_usage_error(cmd, "--sha256: expected 64 hex digits, got '%s'", optarg);
			o->sha256 = o->sha_buf;
			break;
		case OPT_FORCE: o->force = true; break;
		case OPT_LIST: o->list = true; break;
		case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) o->what = argv[optind++];
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (o->list && (o->what || o->output || o->sha256 || o->force))
		return cli_usage_error(cmd, "--list takes no other arguments");
	return 0;
}

/* ---- progress ---- */

struct progress {
	bool tty, drawn;
	double t_start, t_last;
	uint64_t base, last_done, next_mark;
	int last_decile;
};

static void fmt_eta(char *buf, size_t cap, double s)
{
	if (s < 0 || s > 99 * 3600) snprintf(buf, cap, "--");
	else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
	else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else snprintf(buf, cap, "%ds", (int)s);
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	double now = sam_now();
	if (p->t_start == 0 || done < p->last_done) { /* first call, or the server made us start over */
		p->t_start = now;
		p->base = done;
		p->last_decile = total ? (int)(done * 10 / total) : 0;
		p->next_mark = done + 100000000;
	}
	p->last_done = done;
	double dt = now - p->t_start;
	double speed = dt > 0.01 ? (double)(done - p->base) / dt : 0;
	bool finished = total && done >= total;
	if (p->tty) {
		if (!finished && now - p->t_last < 0.2 && p->drawn) return;
		p->t_last = now;
		char line[160];
		if (total) {
			int pct = (int)(done * 100 / total);
			int fill = (int)(done * 24 / total);
			char bar[25], eta[32];
			for (int i = 0; i < 24; i++) bar[i] = i < fill ? '#' : '.';
			bar[24] = 0;
			fmt_eta(eta, sizeof eta,
				finished ? 0 : speed > 0 && dt > 1 ? (double)(total - done) / speed : -1);
			snprintf(line, sizeof line, "%3d%% [%s] %.1f/%.1f MB  %.1f MB/s  ETA %s", pct, bar, MB(done),
				 MB(total), MB(speed), eta);
		} else {
			snprintf(line, sizeof line, "%.1f MB  %.1f MB/s", MB(done), MB(speed));
		}
		fprintf(stderr, "\r%-78s", line);
		p->drawn = true;
	} else if (total) {
		int decile = (int)(done * 10 / total);
		if (decile > p->last_decile) {
			p->last_decile = decile;
			fprintf(stderr, "sam pull: %3d%% (%.1f of %.1f MB, %.1f MB/s)\n", decile * 10, MB(done), MB(total),
				MB(speed));
		}
	} else if (done >= p->next_mark) {
		p->next_mark = done + 100000000;
		fprintf(stderr, "sam pull: %.1f MB (%.1f MB/s)\n", MB(done), MB(speed));
	}
	fflush(stderr);
}

/* ---- --list ---- */

static int list_catalogue(const char *models)
{
	printf("%-14s %-36s %-10s %s\n", "NAME", "FILE", "SIZE", "PRESENT");
	for (const struct sam_catalogue_entry *e = sam_catalogue; e->name; e++) {
		char path[2048], size[32], here[64];
		struct stat st;
		if (e->size) snprintf(size, sizeof size, "%.1f MB", MB(e->size));
		else snprintf(size, sizeof size, "unknown");
		snprintf(path, sizeof path, "%s/%s", models, e->file);
		if (stat(path, &st) == 0) {
			snprintf(here, sizeof here, "yes (%.1f MB)", MB(st.st_size));
		} else {
			snprintf(path, sizeof path, "%s/%s.part", models, e->file);
			if (stat(path, &st) == 0) snprintf(here, sizeof here, "partial (%.1f MB)", MB(st.st_size));
			else snprintf(here, sizeof here, "no");
		}
		printf("%-14s %-36s %-10s %s\n", e->name, e->file, size, here);
		printf("%-14s %s\n", "", e->description);
		if (e->notes) printf("%-14s note: %s\n", "", e->notes);
	}
	printf("\nmodels directory: %s\n", models);
	printf("sam pull NAME downloads one (default: %s); sam pull URL any other GGUF file.\n",
	       sam_catalogue_default()->name);
	return 0;
}

static void local_file_hint(const char *models)
{
	fprintf(stderr,
		"If you have a GGUF file already, use it directly: SAM_MODEL=/path/model.gguf, "
		"or `sam run -m /path/model.gguf`, or copy it into %s/.\n",
		models);
}

int cmd_pull(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("pull");
	struct pull_opts o;
	int rc = parse_opts(cmd, argc, argv, &o);
	if (rc) return rc;

	char models[1100];
	if (sam_home_path(models, sizeof models, "models")) {
		fprintf(stderr, "sam pull: SAM_HOME is too long\n");
		return 1;
	}
	if (o.list) return list_catalogue(models);

	const struct sam_catalogue_entry *entry = NULL;
	const char *url, *label;
	char url_name[256];
	const char *file;
	if (!o.what) {
		entry = sam_catalogue_default();
	} else if (is_url(o.what)) {
		if (strncasecmp(o.what, "http://", 7) && strncasecmp(o.what, "https://", 8))
			return cli_usage_error(cmd, "only http:// and https:// URLs can be pulled, got '%s'", o.what);
		if (!url_file_name(o.what, url_name, sizeof url_name) && !o.output)
			return cli_usage_error(cmd, "cannot tell a file name from '%s': give -o FILE", o.what);
	} else if (!(entry = sam_catalogue_find(o.what))) {
		char names[512];
		catalogue_names(names, sizeof names);
		return cli_usage_error(cmd, "unknown model '%s' (known: %s; or give an http(s) URL)", o.what, names);
	}
	if (entry) {
		url = entry->url;
		label = entry->name;
		file = entry->file;
	} else {
		url = o.what;
		label = o.output ? o.output : url_name;
		file = url_name;
	}
	uint64_t want_size = entry ? entry->size : 0;
	const char *want_sha = o.sha256 ? o.sha256 : entry ? entry->sha256 : NULL;

	/* where to */
	char dest[2300], part[2310];
	struct sam_error err = { 0 };
	if (o.output && strchr(o.output, '/')) {
		snprintf(dest, sizeof dest, "%s", o.output);
	} else {
		if (sam_mkdirs(models, &err)) {
			fprintf(stderr, "sam pull: %s\n", err.msg);
			return 1;
		}
		snprintf(dest, sizeof dest, "%s/%s", models, o.output ? o.output : file);
	}
	snprintf(part, sizeof part, "%s.part", dest);

	struct stat st;
	if (stat(dest, &st) == 0 && !o.force) {
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "sam pull: %s exists and is not a file\n", dest);
			return 1;
		}
		if (want_size && (uint64_t)st.st_size != want_size) {
			fprintf(stderr, "sam pull: %s exists but has %lld bytes, expected %llu: use --force to replace it\n",
				dest, (long long)st.st_size, (unsigned long long)want_size);
			return 1;
		}
		if (want_sha) {
			char have[SAM_SHA256_HEX_LEN + 1];
			if (sam_sha256_file(dest, have, &err)) {
				fprintf(stderr, "sam pull: %s\n", err.msg);
				return 1;
			}
			if (strcmp(have, want_sha)) {
				fprintf(stderr,
					"sam pull: %s exists but its sha256 is %s, expected %s: use --force to replace "
					"it\n",
					dest, have, want_sha);
				return 1;
			}
		}
		printf("already have %s: %s (%.1f MB%s); use --force to download it again\n", label, dest,
		       MB(st.st_size), want_sha ? ", sha256 verified" : "");
		return 0;
	}
	if (o.force && unlink(part) == 0) fprintf(stderr, "sam pull: --force: removed %s\n", part);

	char real_url[4096];
	if (sam_catalogue_url(url, real_url, sizeof real_url)) {
		fprintf(stderr, "sam pull: URL too long\n");
		return 1;
	}
	fprintf(stderr, "sam pull: %s\n  from %s\n  to   %s\n", label, real_url, dest);
	if (entry && entry->notes) fprintf(stderr, "sam pull: note: %s %s\n", entry->name, entry->notes);
	if (stat(part, &st) == 0 && st.st_size > 0)
		fprintf(stderr, "sam pull: resuming after the %.1f MB already in %s\n", MB(st.st_size), part);

	struct progress prog = { .tty = isatty(STDERR_FILENO) == 1 };
	struct sam_download_info info;
	rc = sam_download(url, dest, want_size, want_sha, on_progress, &prog, &info, &err);
	if (prog.drawn) fputc('\n', stderr);
	if (rc) {
		if (info.unreachable) {
			fprintf(stderr, "sam pull: %s. ", err.msg);
			local_file_hint(models);
		} else {
			fprintf(stderr, "sam pull: %s\n", err.msg);
		}
		return 1;
	}
	printf("saved %s: %s (%.1f MB)\n", label, dest, MB(info.size));
	if (want_sha) printf("sha256 %s (verified)\n", info.sha256);
	else printf("sha256 %s (not verified: no checksum known; pass --sha256 HEX to check one)\n", info.sha256);
	if (entry && entry->notes) printf("note: %s %s\n", entry->name, entry->notes);
	else printf("run it: sam run -m %s -p \"Hello\"\n", dest);
	return 0;
}
