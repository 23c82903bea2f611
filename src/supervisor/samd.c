/*
 * samd.c - main() of build/sam-supervise, the supervisor behind
 * `sam supervise`. A separate, lean binary: it links only the parts of
 * libsam it uses (config, files, events over SQLite) and none of the
 * engine, HTTP server or libcurl, so it stays small and an engine crash can
 * never take it down. Everything is in src/supervisor/sup_*.c (sup.h).
 */
#include "supervisor/sup.h"

int main(int argc, char **argv)
{
	return sup_main(argc, argv);
}
