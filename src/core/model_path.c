/*
 * model_path.c - which model SAM serves and trains for (see config.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/config.h"
#include "sam/fs.h"

/* The first *.gguf in $SAM_HOME/models by name. */
static char *default_model(void)
{
	char dir[1100];
	if (sam_home_path(dir, sizeof dir, "models")) return NULL;
	DIR *d = opendir(dir);
	if (!d) return NULL;
	char *best = NULL;
	struct dirent *ent;
	while ((ent = readdir(d))) {
		size_t n = strlen(ent->d_name);
		if (n < 6 || strcmp(ent->d_name + n - 5, ".gguf")) continue;
		if (!best || strcmp(ent->d_name, best) < 0) {
			free(best);
			best = xstrdup(ent->d_name);
		}
	}
	closedir(d);
	if (!best) return NULL;
	char *path = xmalloc(strlen(dir) + strlen(best) + 2);
	sprintf(path, "%s/%s", dir, best);
	free(best);
	return path;
}

char *sam_conf_model_path(const struct sam_conf *c, const char *explicit_path)
{
	const char *m = explicit_path && *explicit_path ? explicit_path : getenv("SAM_MODEL");
	if (!m || !*m) m = sam_conf_str(c, "api", "model", NULL);
	return m && *m ? xstrdup(m) : default_model();
}
