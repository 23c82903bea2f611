/* server.h - entry point of `sam api` (src/api/server.c). */
#ifndef SAM_API_SERVER_H
#define SAM_API_SERVER_H

struct api_options {
	const char *host;        /* NULL: config, else 127.0.0.1 */
	int port;                /* < 0: config, else 8765; 0 = any free port */
	const char *model, *small_model, *api_key;
	int slots, ctx, threads, queue; /* <= 0: config/defaults */
	const char *port_file;   /* write the bound port here once listening (tests) */
};

/* Serve until SIGINT/SIGTERM. Returns the process exit status. */
int api_main(const struct api_options *o);

#endif
