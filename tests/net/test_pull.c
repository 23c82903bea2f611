/*
 * test_pull.c - SHA-256 against the standard vectors, and `sam pull` (the
 * real binary) and sam_download() against a small HTTP server that each test
 * starts on 127.0.0.1 in a thread of its own process. The server serves a
 * generated 3 MiB file under any path ending in ".gguf", honours
 * "Range: bytes=N-" (206, or 416 past the end), can ignore ranges, cut a
 * response off after K bytes, redirect /redirect/X to /files/X, and answers
 * 404 to anything else. It records the Range of every request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "sam/download.h"
#include "sam/sha256.h"
#include "test.h"

/* ---- SHA-256 ---- */

static const char *hex_of(const void *data, size_t len)
{
	static char hex[SAM_SHA256_HEX_LEN + 1];
	sam_sha256_hex(data, len, hex);
	return hex;
}

TEST(sha256_standard_vectors)
{
	/* FIPS 180-4 / NIST example vectors */
	CHECK_STR(hex_of("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_STR(hex_of("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	CHECK_STR(hex_of(m448, strlen(m448)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	const char *million_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	CHECK_STR(hex_of(a, 1000000), million_a);

	/* streaming in uneven pieces gives the same digest */
	struct sam_sha256 h;
	char hex[SAM_SHA256_HEX_LEN + 1];
	sam_sha256_init(&h);
	size_t off = 0, step = 1;
	while (off < 1000000) {
		size_t n = step < 1000000 - off ? step : 1000000 - off;
		sam_sha256_update(&h, a + off, n);
		off += n;
		step = step * 3 + 1;
		if (step > 100000) step = 7;
	}
	sam_sha256_update(&h, NULL, 0);
	sam_sha256_final_hex(&h, hex);
	CHECK_STR(hex, million_a);
	CHECK(h.md_ctx == NULL);
	sam_sha256_free(&h); /* safe after final */

	uint8_t d[SAM_SHA256_LEN];
	sam_sha256("abc", 3, d);
	CHECK(d[0] == 0xba && d[31] == 0xad);
	char back[SAM_SHA256_HEX_LEN + 1];
	sam_sha256_to_hex(d, back);
	CHECK_STR(back, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	/* a hash released without finishing */
	sam_sha256_init(&h);
	sam_sha256_update(&h, "x", 1);
	sam_sha256_free(&h);
	free(a);
}

TEST(sha256_file_and_hex_parsing)
{
	char path[512], hex[SAM_SHA256_HEX_LEN + 1];
	struct sam_error err = { 0 };
	snprintf(path, sizeof path, "%s/a.bin", test_tmpdir());
	/* larger than one read chunk, not a multiple of it */
	size_t n = (3u << 20) + 12345;
	char *a = malloc(n);
	memset(a, 'a', n);
	test_write_file(path, a, n);
	CHECK_INT(sam_sha256_file(path, hex, &err), 0);
	CHECK_STR(hex, hex_of(a, n));
	test_write_file(path, "", 0);
	CHECK_INT(sam_sha256_file(path, hex, &err), 0);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	snprintf(path, sizeof path, "%s/missing", test_tmpdir());
	CHECK_INT(sam_sha256_file(path, hex, &err), SAM_ENOTFOUND);
	CHECK(strstr(err.msg, "missing") != NULL);
	CHECK_INT(sam_sha256_file(test_tmpdir(), hex, &err), SAM_EIO); /* a directory: read fails */

	char low[SAM_SHA256_HEX_LEN + 1];
	CHECK(sam_sha256_hex_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", low));
	CHECK_STR(low, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK(!sam_sha256_hex_valid("ba7816bf", NULL));
	CHECK(!sam_sha256_hex_valid("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", NULL));
	CHECK(!sam_sha256_hex_valid("ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", NULL));
	CHECK(!sam_sha256_hex_valid("", NULL));
	CHECK(!sam_sha256_hex_valid(NULL, NULL));
	free(a);
}

/* ---- the test server ---- */

#define FILE_SIZE ((size_t)3 << 20)
#define TIMEOUT 20

static struct {
	struct MHD_Daemon *daemon;
	int port;
	uint8_t *data;
	char sha256[SAM_SHA256_HEX_LEN + 1];
	pthread_mutex_t mu;
	/* behaviour, set by the test between runs */
	int cut_requests;  /* this many more file responses are cut off ... */
	size_t cut_after;  /* ... after this many body bytes */
	bool ignore_range; /* answer 200 with the whole file to a Range request */
	/* what happened */
	int n_requests;
	long long last_range; /* N of the last "Range: bytes=N-", -1 without */
	int last_status;
	char last_path[512];
} S = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct body {
	size_t start, len, cut;
};

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct body *b = cls;
	if (pos >= b->cut) return MHD_CONTENT_READER_END_WITH_ERROR; /* drop the connection */
	size_t n = b->len - (size_t)pos;
	if (n > max) n = max;
	if (pos + n > b->cut) n = b->cut - (size_t)pos;
	memcpy(buf, S.data + b->start + pos, n);
	return (ssize_t)n;
}

static enum MHD_Result queue(struct MHD_Connection *c, struct MHD_Response *r, unsigned status)
{
	S.last_status = (int)status;
	pthread_mutex_unlock(&S.mu);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_size, void **state)
{
	static int first;
	(void)cls, (void)method, (void)version, (void)upload_data, (void)upload_size;
	if (*state != &first) { /* headers only: answer on the second call */
		*state = &first;
		return MHD_YES;
	}
	pthread_mutex_lock(&S.mu);
	S.n_requests++;
	snprintf(S.last_path, sizeof S.last_path, "%s", url);
	const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
	long long from = -1;
	if (range && !strncmp(range, "bytes=", 6)) from = strtoll(range + 6, NULL, 10);
	S.last_range = from;

	struct MHD_Response *r;
	size_t ul = strlen(url);
	if (!strncmp(url, "/redirect/", 10)) {
		char to[600];
		snprintf(to, sizeof to, "/files/%s", url + 10);
		r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, to);
		return queue(c, r, MHD_HTTP_FOUND);
	}
	if (ul < 5 || strcmp(url + ul - 5, ".gguf")) {
		r = MHD_create_response_from_buffer(9, "not found", MHD_RESPMEM_PERSISTENT);
		return queue(c, r, MHD_HTTP_NOT_FOUND);
	}
	char cr[100];
	if (from >= (long long)FILE_SIZE && !S.ignore_range) {
		r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		snprintf(cr, sizeof cr, "bytes */%zu", FILE_SIZE);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		return queue(c, r, MHD_HTTP_RANGE_NOT_SATISFIABLE);
	}
	bool partial = from >= 0 && !S.ignore_range;
	struct body *b = malloc(sizeof *b);
	b->start = partial ? (size_t)from : 0;
	b->len = FILE_SIZE - b->start;
	b->cut = SIZE_MAX;
	if (S.cut_requests > 0) {
		S.cut_requests--;
		b->cut = S.cut_after;
	}
	r = MHD_create_response_from_callback(b->len, 32 * 1024, read_body, b, free);
	if (partial) {
		snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", b->start, FILE_SIZE - 1, FILE_SIZE);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	return queue(c, r, partial ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK);
}

static void server_start(void)
{
	S.data = malloc(FILE_SIZE);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < FILE_SIZE; i++) { /* xorshift32: deterministic, not compressible */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		S.data[i] = (uint8_t)(x >> 24);
	}
	sam_sha256_hex(S.data, FILE_SIZE, S.sha256);
	S.last_range = -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	S.daemon = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, handle, NULL,
				    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	CHECK(S.daemon != NULL);
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.daemon, MHD_DAEMON_INFO_BIND_PORT);
	CHECK(info && info->port);
	S.port = info->port;
}

static void server_stop(void)
{
	MHD_stop_daemon(S.daemon);
	S.daemon = NULL;
	free(S.data);
	S.data = NULL;
}

static const char *server_url(const char *path)
{
	static char buf[4][600];
	static int slot;
	char *b = buf[slot++ & 3];
	snprintf(b, sizeof buf[0], "http://127.0.0.1:%d%s", S.port, path);
	return b;
}

/* A fresh SAM_HOME; returns its models directory (which does not exist yet). */
static const char *home_setup(void)
{
	static char models[600];
	char home[512];
	snprintf(home, sizeof home, "%s/home", test_tmpdir());
	setenv("SAM_HOME", home, 1);
	unsetenv("SAM_PULL_BASE_URL");
	snprintf(models, sizeof models, "%s/models", home);
	return models;
}

static const char *path_in(const char *dir, const char *name)
{
	static char buf[4][800];
	static int slot;
	char *b = buf[slot++ & 3];
	snprintf(b, sizeof buf[0], "%s/%s", dir, name);
	return b;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The file at path is exactly the served file. */
static void check_same(const char *path)
{
	size_t len = 0;
	char *got = test_read_file(path, &len);
	CHECKF(got != NULL, "%s is missing", path);
	CHECK_INT(len, FILE_SIZE);
	CHECKF(memcmp(got, S.data, FILE_SIZE) == 0, "%s differs from the served file", path);
	free(got);
}

static int n_requests(void)
{
	pthread_mutex_lock(&S.mu);
	int n = S.n_requests;
	pthread_mutex_unlock(&S.mu);
	return n;
}

/* ---- sam pull ---- */

TEST(pull_full_download_verified_then_already_present)
{
	struct test_proc p;
	const char *models = home_setup();
	server_start();
	const char *dest = path_in(models, "model.gguf");
	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/model.gguf"), "--sha256", S.sha256, NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	check_same(dest);
	CHECK(!exists(path_in(models, "model.gguf.part")));
	CHECKF(strstr(p.out, "verified") && strstr(p.out, S.sha256), "stdout: %s", p.out);
	CHECKF(strstr(p.err, "100%") != NULL, "no progress lines on stderr: %s", p.err); /* not a tty */
	CHECK_INT(S.last_range, -1);
	test_proc_free(&p);

	/* present and complete: nothing is fetched */
	int before = n_requests();
	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/model.gguf"), NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECKF(strstr(p.out, "already have") != NULL, "stdout: %s", p.out);
	CHECK_INT(n_requests(), before);
	test_proc_free(&p);

	/* --force fetches it again, through a redirect this time, and -o names it */
	test_run_sam(&p, TIMEOUT, "pull", "--force", "-o", "model.gguf", server_url("/redirect/other.gguf"), NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_INT(n_requests(), before + 2);
	CHECK_STR(S.last_path, "/files/other.gguf");
	check_same(dest);
	CHECK(!exists(path_in(models, "other.gguf")));
	test_proc_free(&p);

	/* -o with a directory part is a path of its own */
	const char *elsewhere = path_in(test_tmpdir(), "elsewhere.gguf");
	test_run_sam(&p, TIMEOUT, "pull", "-o", elsewhere, server_url("/files/x.gguf"), NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	check_same(elsewhere);
	test_proc_free(&p);
	server_stop();
}

TEST(pull_default_model_from_catalogue_via_base_url)
{
	struct test_proc p;
	const char *models = home_setup();
	server_start();
	setenv("SAM_PULL_BASE_URL", server_url("/"), 1); /* a trailing slash is fine */
	test_run_sam(&p, TIMEOUT, "pull", NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_STR(S.last_path, "/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/main/tinyllama-1.1b-chat-v1.0.Q8_0.gguf");
	check_same(path_in(models, "tinyllama-1.1b-chat-v1.0.Q8_0.gguf"));
	/* no checksum is known for it: the hash is printed, not claimed verified */
	CHECKF(strstr(p.out, S.sha256) && strstr(p.out, "not verified"), "stdout: %s", p.out);
	test_proc_free(&p);

	test_run_sam(&p, TIMEOUT, "pull", "tinyllama", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "already have tinyllama") != NULL);
	test_proc_free(&p);

	test_run_sam(&p, TIMEOUT, "pull", "qwen2.5-0.5b", NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_STR(S.last_path, "/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf");
	CHECK(strstr(p.err, "needs qwen2") != NULL);
	check_same(path_in(models, "qwen2.5-0.5b-instruct-q4_k_m.gguf"));
	test_proc_free(&p);
	server_stop();
}

TEST(pull_resumes_an_interrupted_download)
{
	struct test_proc p;
	const char *models = home_setup();
	server_start();
	const char *dest = path_in(models, "model.gguf"), *part = path_in(models, "model.gguf.part");
	S.cut_requests = 1;
	S.cut_after = (size_t)1 << 20;
	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/model.gguf"), "--sha256", S.sha256, NULL);
	CHECKF(p.status == 1, "exit %d, stderr: %s", p.status, p.err);
	CHECKF(strstr(p.err, "interrupted") && strstr(p.err, "resume"), "stderr: %s", p.err);
	CHECK(!exists(dest));
	long long have = file_size(part);
	CHECKF(have > 0 && have <= (long long)S.cut_after, ".part has %lld bytes", have);
	test_proc_free(&p);

	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/model.gguf"), "--sha256", S.sha256, NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_INT(S.last_range, have);
	CHECK_INT(S.last_status, 206);
	CHECK(strstr(p.err, "resuming") != NULL);
	check_same(dest);
	CHECK(!exists(part));
	test_proc_free(&p);
	server_stop();
}

TEST(pull_restarts_when_the_server_ignores_range)
{
	struct test_proc p;
	const char *models = home_setup();
	server_start();
	CHECK(mkdir(path_in(test_tmpdir(), "home"), 0755) == 0 && mkdir(models, 0755) == 0);
	const char *dest = path_in(models, "model.gguf"), *part = path_in(models, "model.gguf.part");
	size_t junk_len = (size_t)1 << 20;
	char *junk = malloc(junk_len);
	memset(junk, 0xaa, junk_len); /* would corrupt the file if it were kept */
	test_write_file(part, junk, junk_len);
	S.ignore_range = true;
	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/model.gguf"), NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_INT(S.last_range, (long long)junk_len); /* it asked to resume */
	CHECK_INT(S.last_status, 200);                /* and got the whole file */
	check_same(dest);
	CHECK(!exists(part));
	test_proc_free(&p);
	free(junk);
	server_stop();
}

TEST(pull_416_on_a_complete_part_is_complete)
{
	struct test_proc p;
	const char *models = home_setup();
	server_start();
	CHECK(mkdir(path_in(test_tmpdir(), "home"), 0755) == 0 && mkdir(models, 0755) == 0);
	const char *dest = path_in(models, "model.gguf"), *part = path_in(models, "model.gguf.part");
	test_write_file(part, S.data, FILE_SIZE); /* finished, but killed before the rename */
	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/model.gguf"), "--sha256", S.sha256, NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_INT(S.last_range, (long long)FILE_SIZE);
	CHECK_INT(S.last_status, 416);
	CHECK_INT(n_requests(), 1);
	check_same(dest);
	CHECK(!exists(part));
	test_proc_free(&p);

	/* a .part longer than the file cannot be resumed: start again */
	char *longer = malloc(FILE_SIZE + 100);
	memset(longer, 0x55, FILE_SIZE + 100);
	test_write_file(part, longer, FILE_SIZE + 100);
	test_run_sam(&p, TIMEOUT, "pull", "--force", server_url("/files/model.gguf"), NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_INT(S.last_range, -1); /* --force dropped the .part */
	check_same(dest);
	test_proc_free(&p);
	test_write_file(path_in(models, "b2.gguf.part"), longer, FILE_SIZE + 100);
	test_run_sam(&p, TIMEOUT, "pull", "-o", "b2.gguf", server_url("/files/model.gguf"), NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK_INT(S.last_range, -1);   /* the retry after 416 asked for the whole file */
	CHECK_INT(S.last_status, 200);
	check_same(path_in(models, "b2.gguf"));
	CHECK(!exists(path_in(models, "b2.gguf.part")));
	test_proc_free(&p);
	free(longer);
	server_stop();
}

TEST(pull_sha256_mismatch_deletes_everything)
{
	struct test_proc p;
	const char *models = home_setup();
	server_start();
	char wrong[SAM_SHA256_HEX_LEN + 1];
	memset(wrong, '0', SAM_SHA256_HEX_LEN);
	wrong[SAM_SHA256_HEX_LEN] = 0;
	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/model.gguf"), "--sha256", wrong, NULL);
	CHECKF(p.status == 1, "exit %d, stderr: %s", p.status, p.err);
	CHECKF(strstr(p.err, "sha256 mismatch") && strstr(p.err, "deleted"), "stderr: %s", p.err);
	CHECK(strstr(p.err, S.sha256) != NULL); /* says what it got */
	CHECK(!exists(path_in(models, "model.gguf")));
	CHECK(!exists(path_in(models, "model.gguf.part")));
	test_proc_free(&p);
	server_stop();
}

TEST(pull_http_404_names_the_status)
{
	struct test_proc p;
	const char *models = home_setup();
	server_start();
	test_run_sam(&p, TIMEOUT, "pull", server_url("/files/nope.bin"), NULL);
	CHECKF(p.status == 1, "exit %d, stderr: %s", p.status, p.err);
	CHECKF(strstr(p.err, "404") != NULL, "stderr: %s", p.err);
	CHECK(!exists(path_in(models, "nope.bin")));
	CHECK(!exists(path_in(models, "nope.bin.part")));
	test_proc_free(&p);
	server_stop();
}

TEST(pull_connection_refused_suggests_a_local_file)
{
	struct test_proc p;
	const char *models = home_setup();
	/* a bound socket that does not listen: connecting is refused, and no one else can take the port */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	char url[100];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/files/model.gguf", ntohs(sa.sin_port));
	test_run_sam(&p, TIMEOUT, "pull", url, NULL);
	CHECKF(p.status == 1, "exit %d, stderr: %s", p.status, p.err);
	CHECKF(strstr(p.err, "cannot reach 127.0.0.1") != NULL, "stderr: %s", p.err);
	CHECK(strstr(p.err, "SAM_MODEL=") != NULL);
	CHECK(strstr(p.err, "sam run -m") != NULL);
	CHECK(strstr(p.err, models) != NULL);
	CHECK(!exists(path_in(models, "model.gguf.part")));
	test_proc_free(&p);

	/* the same for a catalogue name */
	snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
	setenv("SAM_PULL_BASE_URL", url, 1);
	test_run_sam(&p, TIMEOUT, "pull", "qwen2.5-1.5b", NULL);
	CHECKF(p.status == 1, "exit %d, stderr: %s", p.status, p.err);
	CHECK(strstr(p.err, "cannot reach") != NULL && strstr(p.err, "SAM_MODEL=") != NULL);
	test_proc_free(&p);
	close(fd);
}

TEST(pull_usage_errors_exit_2)
{
	struct test_proc p;
	home_setup();
	test_run_sam(&p, TIMEOUT, "pull", "no-such-model", NULL);
	CHECK_INT(p.status, 2);
	CHECKF(strstr(p.err, "tinyllama") && strstr(p.err, "qwen2.5-0.5b"), "stderr: %s", p.err);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "tinyllama", "extra", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "--sha256", "abc", "tinyllama", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "--sha256") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "tinyllama", "--sha256", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "--bogus", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "--list", "tinyllama", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "ftp://example.com/a.gguf", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "http://127.0.0.1:9/", NULL); /* no file name */
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "-o") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "-o", "dir/", "tinyllama", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, TIMEOUT, "pull", "--help", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "usage: sam pull") != NULL);
	test_proc_free(&p);
}

TEST(pull_list_shows_the_catalogue_and_what_is_present)
{
	struct test_proc p;
	const char *models = home_setup();
	test_run_sam(&p, TIMEOUT, "pull", "--list", NULL);
	CHECKF(p.status == 0, "exit %d, stderr: %s", p.status, p.err);
	CHECK(strstr(p.out, "tinyllama-1.1b-chat-v1.0.Q8_0.gguf") != NULL);
	CHECK(strstr(p.out, "qwen2.5-1.5b-instruct-q4_k_m.gguf") != NULL);
	CHECK(strstr(p.out, "needs qwen2 + K-quant support") != NULL);
	CHECK(strstr(p.out, models) != NULL);
	CHECK(strstr(p.out, "yes") == NULL);
	test_proc_free(&p);

	CHECK(mkdir(path_in(test_tmpdir(), "home"), 0755) == 0 && mkdir(models, 0755) == 0);
	test_write_file(path_in(models, "tinyllama-1.1b-chat-v1.0.Q8_0.gguf"), "GGUF", 4);
	test_write_file(path_in(models, "qwen2.5-0.5b-instruct-q4_k_m.gguf.part"), "GG", 2);
	test_run_sam(&p, TIMEOUT, "pull", "--list", NULL);
	CHECK_INT(p.status, 0);
	const char *t = strstr(p.out, "\ntinyllama "), *q = strstr(p.out, "\nqwen2.5-0.5b ");
	CHECK(t && q);
	CHECKF(strstr(t, "yes") && strstr(t, "yes") < strchr(t + 1, '\n'), "stdout: %s", p.out);
	CHECKF(strstr(q, "partial") && strstr(q, "partial") < strchr(q + 1, '\n'), "stdout: %s", p.out);
	test_proc_free(&p);
}

/* ---- sam_download() itself ---- */

struct seen {
	int calls;
	uint64_t last_done, last_total;
};

static void record_progress(void *arg, uint64_t done, uint64_t total)
{
	struct seen *s = arg;
	s->calls++;
	s->last_done = done;
	s->last_total = total;
}

TEST(download_api_size_progress_and_resume)
{
	server_start();
	struct sam_error err = { 0 };
	struct sam_download_info info;
	struct seen seen = { 0 };
	char dest[600], part[610];
	snprintf(dest, sizeof dest, "%s/m.gguf", test_tmpdir());
	snprintf(part, sizeof part, "%s.part", dest);
	unsetenv("SAM_PULL_BASE_URL");

	/* a size that the server's Content-Length contradicts: stopped early, .part deleted */
	int rc = sam_download(server_url("/files/m.gguf"), dest, FILE_SIZE + 1, NULL, NULL, NULL, &info, &err);
	CHECK_INT(rc, SAM_EFORMAT);
	CHECKF(strstr(err.msg, "size mismatch") != NULL, "%s", err.msg);
	CHECK(info.part_removed && !exists(part) && !exists(dest));

	/* a resumed download with the right size and hash */
	test_write_file(part, S.data, 1000);
	rc = sam_download(server_url("/files/m.gguf"), dest, FILE_SIZE, S.sha256, record_progress, &seen, &info, &err);
	CHECKF(rc == 0, "%s", err.msg);
	CHECK_INT(info.resumed_from, 1000);
	CHECK_INT(info.http_status, 206);
	CHECK_INT(info.size, FILE_SIZE);
	CHECK_STR(info.sha256, S.sha256);
	CHECK_STR(info.host, server_url("") + 7);
	CHECK(seen.calls > 1 && seen.last_done == FILE_SIZE && seen.last_total == FILE_SIZE);
	check_same(dest);
	CHECK(!exists(part));

	/* an uppercase hash is accepted; a malformed one is refused before any request */
	char upper[SAM_SHA256_HEX_LEN + 1];
	for (int i = 0; i <= SAM_SHA256_HEX_LEN; i++)
		upper[i] = (char)(S.sha256[i] >= 'a' ? S.sha256[i] - 32 : S.sha256[i]);
	CHECK_INT(sam_download(server_url("/files/m.gguf"), dest, 0, upper, NULL, NULL, NULL, &err), 0);
	int before = n_requests();
	CHECK_INT(sam_download(server_url("/files/m.gguf"), dest, 0, "xyz", NULL, NULL, NULL, &err), SAM_EINVAL);
	CHECK_INT(sam_download("ftp://127.0.0.1/m.gguf", dest, 0, NULL, NULL, NULL, NULL, &err), SAM_EINVAL);
	CHECK_INT(n_requests(), before);

	/* a .part with the expected size is verified without asking the server */
	test_write_file(part, S.data, FILE_SIZE);
	CHECK_INT(sam_download(server_url("/files/m.gguf"), dest, FILE_SIZE, S.sha256, NULL, NULL, &info, &err), 0);
	CHECK_INT(n_requests(), before);

	/* one download per .part at a time */
	int lock_fd = open(part, O_RDWR | O_CREAT, 0644);
	CHECK(lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) == 0);
	CHECK_INT(sam_download(server_url("/files/m.gguf"), dest, 0, NULL, NULL, NULL, &info, &err), SAM_EIO);
	CHECKF(strstr(err.msg, "another download") != NULL, "%s", err.msg);
	CHECK_INT(n_requests(), before);
	close(lock_fd);
	unlink(part);

	/* 404 */
	CHECK_INT(sam_download(server_url("/files/none"), dest, 0, NULL, NULL, NULL, &info, &err), SAM_ENOTFOUND);
	CHECK_INT(info.http_status, 404);
	CHECK(strstr(err.msg, "HTTP 404") != NULL);
	check_same(dest); /* a failed download leaves the old file alone */
	server_stop();
}

TEST(download_base_url_override)
{
	char buf[300];
	unsetenv("SAM_PULL_BASE_URL");
	CHECK_INT(sam_catalogue_url("https://huggingface.co/a/b.gguf", buf, sizeof buf), 0);
	CHECK_STR(buf, "https://huggingface.co/a/b.gguf");
	setenv("SAM_PULL_BASE_URL", "http://127.0.0.1:8000/mirror/", 1);
	CHECK_INT(sam_catalogue_url("https://huggingface.co/a/b.gguf", buf, sizeof buf), 0);
	CHECK_STR(buf, "http://127.0.0.1:8000/mirror/a/b.gguf");
	CHECK_INT(sam_catalogue_url("https://huggingface.community/x", buf, sizeof buf), 0);
	CHECK_STR(buf, "https://huggingface.community/x");
	CHECK_INT(sam_catalogue_url("https://example.com/x", buf, sizeof buf), 0);
	CHECK_STR(buf, "https://example.com/x");
	char tiny[8];
	CHECK_INT(sam_catalogue_url("https://example.com/x", tiny, sizeof tiny), SAM_ERANGE);

	CHECK(sam_catalogue_default() != NULL);
	CHECK_STR(sam_catalogue_default()->name, "tinyllama");
	CHECK(sam_catalogue_find("qwen2.5-1.5b") != NULL);
	CHECK(sam_catalogue_find("nope") == NULL);
	for (const struct sam_catalogue_entry *e = sam_catalogue; e->name; e++) {
		CHECK(!strncmp(e->url, SAM_HF_BASE_URL "/", strlen(SAM_HF_BASE_URL) + 1));
		size_t ul = strlen(e->url), fl = strlen(e->file);
		CHECK(ul > fl && !strcmp(e->url + ul - fl, e->file)); /* the file is the URL's last component */
		CHECK(!e->sha256 || sam_sha256_hex_valid(e->sha256, NULL));
	}
}
