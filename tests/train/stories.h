/* stories.h - the training tests' data: stories of one odd pattern stories260K has never seen. */
#ifndef SAM_TESTS_TRAIN_STORIES_H
#define SAM_TESTS_TRAIN_STORIES_H

/*
 * Write n {"text": ...} lines to path: "<name> had a <thing>. Every day
 * <name> took the <thing> to the river and sang. ...", the names cycling
 * through the first n_names (at most 5) of Zorp, Mila, Quen, Tobi, Rax
 * from offset, the things through four.
 */
void stories_write(const char *path, int n, int offset, int n_names);

#endif
