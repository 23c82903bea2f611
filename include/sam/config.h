/*
 * config.h - sam.conf, an INI file: [section] headers, `key = value`
 * lines, `#` or `;` comments. Every key has a built-in default in the code
 * that reads it, so a missing file is an empty config, not an error.
 *
 * Environment overrides win over the file: SAM_<SECTION>_<KEY> in upper
 * case with dots and dashes as underscores (e.g. SAM_API_PORT).
 */
#ifndef SAM_CONFIG_H
#define SAM_CONFIG_H

#include <stdbool.h>

#include "sam/core.h"

struct sam_conf_entry {
	char *section, *key, *value;
	int line;
};

struct sam_conf {
	struct sam_conf_entry *e;
	int n, cap;
	char path[1024];
};

/* Parse path (NULL = $SAM_HOME/sam.conf). A missing file is fine; a malformed line is SAM_EFORMAT naming it. */
int sam_conf_load(struct sam_conf *c, const char *path, struct sam_error *err);
/* Parse text (for tests). */
int sam_conf_parse(struct sam_conf *c, const char *text, struct sam_error *err);
void sam_conf_free(struct sam_conf *c);

/* Value of section.key (env override first), or def. The string lives as long as c (or the environment). */
const char *sam_conf_str(const struct sam_conf *c, const char *section, const char *key, const char *def);
/* Integer / float / bool values; a malformed value is SAM_EFORMAT naming section.key. */
int sam_conf_int(const struct sam_conf *c, const char *section, const char *key, long long def, long long min,
		 long long max, long long *out, struct sam_error *err);
int sam_conf_float(const struct sam_conf *c, const char *section, const char *key, double def, double *out,
		   struct sam_error *err);
int sam_conf_bool(const struct sam_conf *c, const char *section, const char *key, bool def, bool *out,
		  struct sam_error *err);

/* Sections whose name starts with prefix (e.g. "service."), each once, in file order; returns the count. */
int sam_conf_sections(const struct sam_conf *c, const char *prefix, const char **out, int max);

/*
 * The model SAM serves (and trains adapters for): explicit if given, else
 * $SAM_MODEL, else [api] model, else the alphabetically first *.gguf in
 * $SAM_HOME/models. A malloc'd path, or NULL when there is none.
 */
char *sam_conf_model_path(const struct sam_conf *c, const char *explicit_path);

#endif
