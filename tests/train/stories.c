/* stories.c - the training tests' story sets (see stories.h). */
#include <stdio.h>

#include "test.h"
#include "train/stories.h"

void stories_write(const char *path, int n, int offset, int n_names)
{
	static const char *names[] = { "Zorp", "Mila", "Quen", "Tobi", "Rax" };
	static const char *things[] = { "purple kite", "silver boat", "tiny drum", "green hat" };
	FILE *f = fopen(path, "w");
	CHECK(f != NULL && n_names >= 1 && n_names <= 5);
	for (int i = 0; i < n; i++) {
		int a = (i + offset) % n_names, b = (i * 3 + offset) % 4;
		fprintf(f,
			"{\"text\":\"%s had a %s. Every day %s took the %s to the river and sang. "
			"The %s was happy and %s was happy too.\"}\n",
			names[a], things[b], names[a], things[b], things[b], names[a]);
	}
	fclose(f);
}
