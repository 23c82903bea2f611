/*
 * cmd_install_service.c - `sam install-service [--print] [--dry-run]
 * [--force]`: run SAM's supervisor under the system's service manager.
 *
 * Linux: a systemd user unit, ~/.config/systemd/user/sam.service (or under
 * $XDG_CONFIG_HOME), Type=notify: `sam supervise --foreground` says READY=1
 * and pings the watchdog. macOS: a launchd agent,
 * ~/Library/LaunchAgents/ai.sam.supervisor.plist. Both run this very sam
 * binary (its absolute path) with the current SAM_HOME when it is set.
 * The file is written atomically; an existing one is replaced only with
 * --force.
 *
 * Exit status: 0 written (or printed); 1 an error, or the file exists; 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sam/core.h"
#include "sam/fs.h"

/* A growable string. */
struct sbuf {
	char *s;
	size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		while (b->n + len + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->n, s, len);
	b->n += len;
	b->s[b->n] = 0;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

#ifdef __APPLE__
/* s with XML's special characters escaped. */
static void sb_xml(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': sb_puts(b, "&amp;"); break;
		case '<': sb_puts(b, "&lt;"); break;
		case '>': sb_puts(b, "&gt;"); break;
		case '"': sb_puts(b, "&quot;"); break;
		default: sb_add(b, s, 1);
		}
	}
}
#else
/*
 * One word of a systemd unit line, double-quoted when it needs it, with
 * '\\' and '"' escaped, '%' doubled (specifiers) and, in command lines
 * (exec), '$' doubled (variable expansion).
 */
static void sb_unit_word(struct sbuf *b, const char *s, bool exec)
{
	bool quote = !*s || strpbrk(s, " \t\"'\\;") != NULL;
	if (quote) sb_puts(b, "\"");
	for (; *s; s++) {
		if (*s == '\\' || *s == '"') sb_puts(b, "\\");
		if (*s == '%') sb_puts(b, "%");
		if (exec && *s == '$') sb_puts(b, "$");
		sb_add(b, s, 1);
	}
	if (quote) sb_puts(b, "\"");
}
#endif

/* $SAM_HOME made absolute, or NULL when it is not set. */
static const char *sam_home_env(char *buf, size_t cap)
{
	const char *h = getenv("SAM_HOME");
	if (!h || !*h) return NULL;
	if (h[0] == '/') {
		snprintf(buf, cap, "%s", h);
		return buf;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd)) return h;
	snprintf(buf, cap, "%s/%s", cwd, h);
	return buf;
}

/* The unit (or agent) text for exe into b, and its path into path. 0, or 1 with a message printed. */
static int make_unit(struct sbuf *b, char *path, size_t cap, const char *exe)
{
	char homebuf[PATH_MAX + 16];
	const char *sam_home_abs = sam_home_env(homebuf, sizeof homebuf);
	const char *home = getenv("HOME");
	if (!home || home[0] != '/') {
		fprintf(stderr, "sam install-service: HOME is not set (or not absolute)\n");
		return 1;
	}
#ifdef __APPLE__
	snprintf(path, cap, "%s/Library/LaunchAgents/ai.sam.supervisor.plist", home);
	char log[PATH_MAX + 64];
	snprintf(log, sizeof log, "%s/logs/supervisor.log", sam_home_abs ? sam_home_abs : sam_home());
	sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		   "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		   "<plist version=\"1.0\">\n<dict>\n"
		   "\t<key>Label</key>\n\t<string>ai.sam.supervisor</string>\n"
		   "\t<key>ProgramArguments</key>\n\t<array>\n\t\t<string>");
	sb_xml(b, exe);
	sb_puts(b, "</string>\n\t\t<string>supervise</string>\n\t\t<string>--foreground</string>\n\t</array>\n");
	if (sam_home_abs) {
		sb_puts(b, "\t<key>EnvironmentVariables</key>\n\t<dict>\n\t\t<key>SAM_HOME</key>\n\t\t<string>");
		sb_xml(b, sam_home_abs);
		sb_puts(b, "</string>\n\t</dict>\n");
	}
	sb_puts(b, "\t<key>RunAtLoad</key>\n\t<true/>\n"
		   /* restart it when it fails, not after `sam down` */
		   "\t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n"
		   "\t<key>ThrottleInterval</key>\n\t<integer>1</integer>\n"
		   "\t<key>ExitTimeOut</key>\n\t<integer>60</integer>\n"
		   "\t<key>ProcessType</key>\n\t<string>Background</string>\n"
		   "\t<key>StandardOutPath</key>\n\t<string>");
	sb_xml(b, log);
	sb_puts(b, "</string>\n\t<key>StandardErrorPath</key>\n\t<string>");
	sb_xml(b, log);
	sb_puts(b, "</string>\n</dict>\n</plist>\n");
	return 0;
#elif defined(__linux__)
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && xdg[0] == '/') snprintf(path, cap, "%s/systemd/user/sam.service", xdg);
	else snprintf(path, cap, "%s/.config/systemd/user/sam.service", home);
	sb_puts(b, "# Written by `sam install-service`. SAM's supervisor and its services.\n"
		   "[Unit]\n"
		   "Description=SAM, a private AI assistant (supervisor)\n"
		   "\n"
		   "[Service]\n"
		   "Type=notify\n"
		   "ExecStart=");
	sb_unit_word(b, exe, true);
	sb_puts(b, " supervise --foreground\n");
	if (sam_home_abs) {
		struct sbuf env = { 0 };
		sb_puts(&env, "SAM_HOME=");
		sb_puts(&env, sam_home_abs);
		sb_puts(b, "Environment=");
		sb_unit_word(b, env.s, false);
		sb_puts(b, "\n");
		free(env.s);
	}
	sb_puts(b, "Restart=on-failure\n"
		   "RestartSec=1\n"
		   "WatchdogSec=30\n"
		   "TimeoutStopSec=60\n"
		   "KillMode=mixed\n"
		   "\n"
		   "[Install]\n"
		   "WantedBy=default.target\n");
	return 0;
#else
	(void)b, (void)path, (void)cap, (void)exe, (void)sam_home_abs;
	fprintf(stderr, "sam install-service: only systemd (Linux) and launchd (macOS) are supported\n");
	return 1;
#endif
}

static void print_next_steps(const char *path)
{
#ifdef __APPLE__
	printf("To start SAM now and at every login:\n"
	       "  launchctl load -w %s\n"
	       "To stop it and keep it from starting:\n"
	       "  launchctl unload -w %s\n",
	       path, path);
#else
	(void)path;
	printf("To start SAM now and at every login:\n"
	       "  systemctl --user daemon-reload && systemctl --user enable --now sam.service\n"
	       "To keep it running without a login session (and start it at boot):\n"
	       "  loginctl enable-linger $USER\n"
	       "Then: systemctl --user status sam, sam status, journalctl --user -u sam\n");
	if (access("/run/systemd/system", F_OK) != 0)
		fprintf(stderr, "note: systemd does not seem to be running on this machine\n");
#endif
}

static const struct option inst_opts[] = {
	{ "print", no_argument, NULL, 'p' },
	{ "dry-run", no_argument, NULL, 'd' },
	{ "force", no_argument, NULL, 'f' },
	{ 0 },
};

int cmd_install_service(int argc, char **argv)
{
	const struct sam_cmd *cmd = cli_find("install-service");
	bool print = false, dry = false, force = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", inst_opts, NULL)) != -1) {
		switch (c) {
		case 'p': print = true; break;
		case 'd': dry = true; break;
		case 'f': force = true; break;
		default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);

	char exe[PATH_MAX];
	if (!cli_self_exe(exe, sizeof exe)) {
		fprintf(stderr, "sam install-service: cannot find the path of the sam binary\n");
		return 1;
	}
	struct sbuf unit = { 0 };
	char path[PATH_MAX + 64];
	if (make_unit(&unit, path, sizeof path, exe)) {
		free(unit.s);
		return 1;
	}
	int status = 1;
	if (print) {
		fputs(unit.s, stdout);
		status = fflush(stdout) || ferror(stdout) ? 1 : 0;
		goto out;
	}
	struct stat st;
	bool exists = stat(path, &st) == 0;
	if (exists && !force) {
		fprintf(stderr, "sam install-service: %s already exists (use --force to replace it)\n", path);
		goto out;
	}
	if (dry) {
		printf("would %s %s with:\n%s", exists ? "replace" : "write", path, unit.s);
		status = 0;
		goto out;
	}
	char dir[sizeof path];
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = 0;
	struct sam_error err;
	if (sam_mkdirs(dir, &err) || sam_write_file_atomic(path, unit.s, unit.n, &err)) {
		fprintf(stderr, "sam install-service: %s\n", err.msg);
		goto out;
	}
	chmod(path, 0644);
#ifdef __APPLE__
	{ /* launchd does not create the directory of the log it writes */
		char logs[1100];
		if (!sam_home_path(logs, sizeof logs, "logs")) (void)sam_mkdirs(logs, NULL);
	}
#endif
	printf("%s %s\n", exists ? "Replaced" : "Wrote", path);
	print_next_steps(path);
	status = 0;
out:
	free(unit.s);
	return status;
}
