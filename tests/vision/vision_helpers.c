/* vision_helpers.c - see vision_helpers.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sam/fs.h"
#include "sam/vision.h"
#include "test.h"
#include "vision/vision_helpers.h"

static const char *const lines[] = {
	"The quick brown fox jumps over the lazy dog",
	"Pack my box with five dozen liquor jugs",
	"Vision tests measure word accuracy here",
	"Seven cheerful wizards juggled orange lanterns",
};
#define N_LINES (sizeof lines / sizeof lines[0])

/* convert LABEL... -append: each label is one block of text, stacked. */
static void render(const char *path, char **labels, int n)
{
	const char *av[96];
	int k = 0;
	av[k++] = "/usr/bin/convert";
	av[k++] = "-font";
	av[k++] = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
	av[k++] = "-pointsize";
	av[k++] = "32";
	for (int i = 0; i < n && k < 80; i++) av[k++] = labels[i];
	/* -border applies to the image read before it: put the labels first */
	const char *tail[] = { "-append", "+repage", "-bordercolor", "white", "-border", "20", path, NULL };
	memcpy(av + k, tail, sizeof tail);
	CHECKF(access(av[0], X_OK) == 0, "ImageMagick's convert is missing: run scripts/deps.sh");
	struct test_proc p;
	test_run(&p, av, 60);
	CHECKF(p.status == 0, "convert failed: %s", p.err);
	test_proc_free(&p);
}

void vt_render_text(const char *path)
{
	char text[1100] = "label:";
	for (size_t i = 0; i < N_LINES; i++) {
		strcat(text, lines[i]);
		if (i + 1 < N_LINES) strcat(text, "\n");
	}
	char *label = text;
	render(path, &label, 1);
}

void vt_render_page(const char *path, int n)
{
	static const char *const words[] = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
					      "hotel", "india", "juliet", "kilo", "lima", "mike", "november" };
	char *labels[64];
	unsigned x = 12345;
	if (n > 64) n = 64;
	for (int i = 0; i < n; i++) {
		labels[i] = calloc(1, 256);
		strcpy(labels[i], "label:");
		for (int w = 0; w < 10; w++) {
			x = x * 1103515245u + 12345u;
			strcat(strcat(labels[i], w ? " " : ""), words[(x >> 16) % (sizeof words / sizeof words[0])]);
		}
	}
	render(path, labels, n);
	for (int i = 0; i < n; i++) free(labels[i]);
}

/* Words of s (lower-cased, letters only) into out; returns the count. */
static int words_of(const char *s, char out[][32], int max)
{
	int n = 0;
	while (*s && n < max) {
		while (*s && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) s++;
		if (!*s) break;
		int k = 0;
		while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) {
			if (k < 31) out[n][k++] = (char)(*s | 0x20);
			s++;
		}
		out[n++][k] = 0;
	}
	return n;
}

double vt_word_accuracy(const char *ocr)
{
	static char want[64][32], got[256][32];
	char all[1024] = "";
	for (size_t i = 0; i < N_LINES; i++) strcat(strcat(all, lines[i]), " ");
	int nw = words_of(all, want, 64), ng = words_of(ocr ? ocr : "", got, 256), hit = 0, j = 0;
	for (int i = 0; i < nw; i++)
		for (int k = j; k < ng; k++)
			if (!strcmp(want[i], got[k])) {
				hit++;
				j = k + 1;
				break;
			}
	return (double)hit / nw;
}

char *vt_image_body(const char *file, const char *task)
{
	char *data;
	size_t len;
	struct sam_error err;
	CHECK(sam_read_file(file, 1 << 26, &data, &len, &err) == 0);
	char *b64 = sam_base64_encode(data, len);
	json_t *j = json_pack("{s:s, s:s}", "image", b64, "task", task);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(b64);
	free(data);
	return s;
}

json_t *vt_post(const struct api_server *s, const char *path, const char *body, long status)
{
	struct api_resp r;
	api_request(s, "POST", path, body, (const char *const[]){ "Content-Type: application/json", NULL }, 120, &r);
	CHECKF(r.status == status, "%s: HTTP %ld, expected %ld: %.500s", path, r.status, status, r.body);
	json_t *j = api_json(&r);
	if (status != 200) CHECKF(jstr(j, "error.message"), "%s: no error message", path);
	api_resp_free(&r);
	return j;
}

/* Append to a NUL-terminated growing string. */
static void add(char **s, size_t *len, const char *p, size_t n)
{
	*s = realloc(*s, *len + n + 1);
	CHECK(*s != NULL);
	memcpy(*s + *len, p, n);
	*len += n;
	(*s)[*len] = 0;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	struct api_resp *r = ud;
	add(&r->body, &r->len, p, size * n);
	return size * n;
}

static size_t collect_head(char *p, size_t size, size_t n, void *ud)
{
	struct api_resp *r = ud;
	size_t len = r->head ? strlen(r->head) : 0;
	add(&r->head, &len, p, size * n);
	return size * n;
}

void vt_post_raw(const struct api_server *s, const char *path, const char *ctype, const void *data, size_t len,
		 const char *const *headers, struct api_resp *r)
{
	memset(r, 0, sizeof *r);
	r->body = calloc(1, 1);
	CURL *c = curl_easy_init();
	CHECK(c != NULL);
	char url[1024], ct[128];
	snprintf(url, sizeof url, "%s%s", s->url, path);
	snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
	struct curl_slist *h = curl_slist_append(curl_slist_append(NULL, "Expect:"), ct);
	for (int i = 0; headers && headers[i]; i++) h = curl_slist_append(h, headers[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_head);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
}
