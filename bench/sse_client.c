/*
 * sse_client.c - the benchmarks' streaming client (built by bench/api.sh and
 * bench/api_concurrency.sh, not part of SAM): POST a JSON body to an
 * OpenAI-style streaming endpoint and print, on one line,
 *   t_sent_ms t_first_ms t_last_ms content_chunks completion_tokens prompt_tokens
 * (times from CLOCK_MONOTONIC; -1 for token counts the stream did not report).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char line[1 << 16];
static size_t len;
static double t_first, t_last;
static long chunks, completion = -1, prompt = -1;

static long field(const char *s, const char *key)
{
	const char *p = strstr(s, key);
	return p ? atol(p + strlen(key)) : -1;
}

static void on_line(const char *s)
{
	if (strncmp(s, "data: ", 6) || !strcmp(s + 6, "[DONE]")) return;
	const char *c = strstr(s, "\"content\":\"");
	if (c && c[11] != '"') { /* a non-empty content delta */
		double t = now_ms();
		if (!chunks++) t_first = t;
		t_last = t;
	}
	if (strstr(s, "\"usage\":{")) {
		completion = field(s, "\"completion_tokens\":");
		prompt = field(s, "\"prompt_tokens\":");
	}
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	(void)ud;
	for (size_t i = 0; i < size * n; i++) {
		if (p[i] == '\n') {
			line[len] = 0;
			on_line(line);
			len = 0;
		} else if (len < sizeof line - 1) {
			line[len++] = p[i];
		}
	}
	return size * n;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sse_client URL JSON-BODY\n");
		return 2;
	}
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, argv[1]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, argv[2]);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	double t0 = now_ms();
	CURLcode rc = curl_easy_perform(c);
	long st = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc || st != 200 || !chunks) {
		fprintf(stderr, "sse_client: %s, HTTP %ld, %ld chunks\n", curl_easy_strerror(rc), st, chunks);
		return 1;
	}
	printf("%.3f %.3f %.3f %ld %ld %ld\n", t0, t_first, t_last, chunks, completion, prompt);
	return 0;
}
