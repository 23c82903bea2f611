/* config.c - sam.conf parsing and lookups with environment overrides. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sam/config.h"
#include "sam/fs.h"

#define MAX_CONF_BYTES (1u << 20)

static char *trim(char *s)
{
	while (isspace((unsigned char)*s)) s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
	return s;
}

static void add(struct sam_conf *c, const char *sec, const char *key, const char *val, int line)
{
	for (int i = 0; i < c->n; i++) /* a later line overrides an earlier one */
		if (!strcmp(c->e[i].section, sec) && !strcmp(c->e[i].key, key)) {
			free(c->e[i].value);
			c->e[i].value = xstrdup(val);
			c->e[i].line = line;
			return;
		}
	if (c->n == c->cap) c->e = xrealloc(c->e, (size_t)(c->cap = c->cap ? c->cap * 2 : 16) * sizeof *c->e);
	c->e[c->n++] = (struct sam_conf_entry){ xstrdup(sec), xstrdup(key), xstrdup(val), line };
}

int sam_conf_parse(struct sam_conf *c, const char *text, struct sam_error *err)
{
	char *copy = xstrdup(text), *save = NULL, section[128] = "";
	int line = 0, rc = 0;
	for (char *l = copy; l; l = save) {
		save = strchr(l, '\n');
		if (save) *save++ = 0;
		line++;
		char *s = trim(l);
		if (!*s || *s == '#' || *s == ';') continue;
		if (*s == '[') {
			char *e = strchr(s, ']');
			if (!e || e[1] || e == s + 1 || (size_t)(e - s - 1) >= sizeof section) {
				rc = sam_errorf(err, SAM_EFORMAT, "%s:%d: bad section header", c->path, line);
				break;
			}
			*e = 0;
			snprintf(section, sizeof section, "%s", trim(s + 1));
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = sam_errorf(err, SAM_EFORMAT, "%s:%d: expected 'key = value'", c->path, line);
			break;
		}
		*eq = 0;
		char *k = trim(s), *v = trim(eq + 1);
		if (!*k) {
			rc = sam_errorf(err, SAM_EFORMAT, "%s:%d: empty key", c->path, line);
			break;
		}
		size_t vl = strlen(v); /* "quoted values" keep their spaces */
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
			v[vl - 1] = 0;
			v++;
		}
		add(c, section, k, v, line);
	}
	free(copy);
	return rc;
}

int sam_conf_load(struct sam_conf *c, const char *path, struct sam_error *err)
{
	memset(c, 0, sizeof *c);
	if (path) snprintf(c->path, sizeof c->path, "%s", path);
	else if (sam_home_path(c->path, sizeof c->path, "sam.conf")) return sam_errorf(err, SAM_ERANGE, "SAM_HOME too long");
	char *text;
	int rc = sam_read_file(c->path, MAX_CONF_BYTES, &text, NULL, err);
	if (rc == SAM_ENOTFOUND) return 0;
	if (rc) return rc;
	rc = sam_conf_parse(c, text, err);
	free(text);
	if (rc) sam_conf_free(c);
	return rc;
}

void sam_conf_free(struct sam_conf *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->e[i].section);
		free(c->e[i].key);
		free(c->e[i].value);
	}
	free(c->e);
	memset(c, 0, sizeof *c);
}

static const char *env_override(const char *section, const char *key)
{
	char name[256];
	int n = snprintf(name, sizeof name, "SAM_%s_%s", section, key);
	if (n < 0 || n >= (int)sizeof name) return NULL;
	for (char *p = name; *p; p++) *p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
	return getenv(name);
}

const char *sam_conf_str(const struct sam_conf *c, const char *section, const char *key, const char *def)
{
	const char *v = env_override(section, key);
	if (v) return v;
	for (int i = 0; c && i < c->n; i++)
		if (!strcmp(c->e[i].section, section) && !strcmp(c->e[i].key, key)) return c->e[i].value;
	return def;
}

int sam_conf_int(const struct sam_conf *c, const char *section, const char *key, long long def, long long min,
		 long long max, long long *out, struct sam_error *err)
{
	const char *v = sam_conf_str(c, section, key, NULL);
	if (!v) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *trim(end) || x < min || x > max)
		return sam_errorf(err, SAM_EFORMAT, "config %s.%s = '%s': expected an integer in [%lld, %lld]", section,
				  key, v, min, max);
	*out = x;
	return 0;
}

int sam_conf_float(const struct sam_conf *c, const char *section, const char *key, double def, double *out,
		   struct sam_error *err)
{
	const char *v = sam_conf_str(c, section, key, NULL);
	if (!v) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || end == v || *end || x != x)
		return sam_errorf(err, SAM_EFORMAT, "config %s.%s = '%s': expected a number", section, key, v);
	*out = x;
	return 0;
}

int sam_conf_bool(const struct sam_conf *c, const char *section, const char *key, bool def, bool *out,
		  struct sam_error *err)
{
	const char *v = sam_conf_str(c, section, key, NULL);
	if (!v) {
		*out = def;
		return 0;
	}
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1")) *out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0")) *out = false;
	else return sam_errorf(err, SAM_EFORMAT, "config %s.%s = '%s': expected true or false", section, key, v);
	return 0;
}

int sam_conf_sections(const struct sam_conf *c, const char *prefix, const char **out, int max)
{
	int n = 0;
	size_t pl = strlen(prefix);
	for (int i = 0; i < c->n; i++) {
		if (strncmp(c->e[i].section, prefix, pl)) continue;
		bool seen = false;
		for (int j = 0; j < n && !seen; j++) seen = !strcmp(out[j], c->e[i].section);
		if (!seen && n < max) out[n++] = c->e[i].section;
	}
	return n;
}
