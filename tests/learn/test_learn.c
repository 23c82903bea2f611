/*
 * test_learn.c - the example store: normalisation and hashing, dedup,
 * ingesting JSONL/JSON/text files with their outcome recorded, and the
 * deterministic export; `sam learn add|stats` and `sam dataset export`
 * through the real binary, including concurrent adds of the same files.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sam/db.h"
#include "sam/learn.h"
#include "learn/learn_util.h"
#include "test.h"


static struct sam_db *open_db(void)
{
	struct sam_db *db;
	struct sam_error err = { 0 };
	char path[4200];
	snprintf(path, sizeof path, "%s/sam.db", test_tmpdir());
	CHECKF(sam_db_open(&db, path, &err) == 0, "%s", err.msg);
	return db;
}


static int from_str(const char *js, struct sam_example *ex, struct sam_error *err)
{
	json_error_t je;
	json_t *j = json_loads(js, 0, &je);
	CHECKF(j != NULL, "bad test JSON: %s", je.text);
	int rc = sam_example_from_json(j, ex, err);
	json_decref(j);
	return rc;
}

TEST(learn_example_normalisation_and_hash)
{
	struct sam_example a, b, c;
	struct sam_error err = { 0 };
	/* OpenAI form, with CRLF, padding and a content array */
	CHECK_INT(from_str("{\"messages\":[{\"role\":\"User\",\"content\":\"  Hi\\r\\nthere \"},"
			   "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hello!\"}]}]}",
			   &a, &err),
		  0);
	CHECK(a.kind == SAM_EXAMPLE_CHAT);
	CHECK_STR(a.json, "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\\nthere\"},"
			  "{\"role\":\"assistant\",\"content\":\"Hello!\"}]}");
	/* the same conversation in ShareGPT form is the same example */
	CHECK_INT(from_str("{\"conversations\":[{\"from\":\"human\",\"value\":\"Hi\\nthere\"},"
			   "{\"from\":\"gpt\",\"value\":\"Hello!\\n\"}]}",
			   &b, &err),
		  0);
	CHECK_STR(b.json, a.json);
	CHECK_STR(b.hash, a.hash);
	CHECK(strlen(a.hash) == 64);
	/* a different answer, a different hash */
	CHECK_INT(from_str("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\\nthere\"},"
			   "{\"role\":\"assistant\",\"content\":\"Hello.\"}]}",
			   &c, &err),
		  0);
	CHECK(strcmp(c.hash, a.hash) != 0);
	sam_example_free(&a), sam_example_free(&b), sam_example_free(&c);
	CHECK_INT(sam_example_from_text("\r\n  A story.\r\n", 14, &a, &err), 0);
	CHECK(a.kind == SAM_EXAMPLE_TEXT);
	CHECK_STR(a.json, "{\"text\":\"A story.\"}");
	sam_example_free(&a);
}

TEST(learn_example_rejections)
{
	static const char *bad[] = {
		"{\"messages\":[{\"role\":\"user\",\"content\":\"only a question\"}]}",
		"{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
		"{\"messages\":[{\"role\":\"user\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
		"{\"messages\":[]}",
		"{\"conversations\":[{\"from\":\"human\",\"value\":\"x\"},{\"from\":\"gpt\",\"value\":\"   \"}]}",
		"{\"text\":\"   \"}",
		"{\"text\":5}",
		"{\"prompt\":\"x\",\"completion\":\"y\"}",
		"[1,2]",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sam_example ex;
		struct sam_error err = { 0 };
		CHECKF(from_str(bad[i], &ex, &err) == SAM_EINVAL, "accepted: %s", bad[i]);
		CHECKF(err.msg[0] != '\0', "no reason for %s", bad[i]);
	}
	struct sam_example ex;
	struct sam_error err = { 0 };
	CHECK_INT(sam_example_from_text("\xff\xfe", 2, &ex, &err), SAM_EINVAL);
}

TEST(learn_add_deduplicates)
{
	learn_test_home();
	struct sam_db *db = open_db();
	struct sam_example ex;
	struct sam_error err = { 0 };
	CHECK_INT(sam_example_from_text("one", 3, &ex, &err), 0);
	bool added = false;
	CHECK_INT(sam_example_add(db, &ex, "manual", "notes", 0.5, NULL, &added, &err), 0);
	CHECK(added);
	CHECK_INT(sam_example_add(db, &ex, "file", "", -1, "x:1", &added, &err), 0);
	CHECK(!added);
	CHECK(learn_q_int(db, "SELECT count(*) FROM examples") == 1);
	/* the first writer's attribution stays */
	CHECK(learn_q_int(db, "SELECT count(*) FROM examples WHERE source = 'manual' AND category = 'notes'") == 1);
	sam_example_free(&ex);
	sam_db_close(db);
}

TEST(learn_ingest_jsonl_keeps_good_lines_and_reports_bad_ones)
{
	learn_test_home();
	struct sam_db *db = open_db();
	char path[4200];
	snprintf(path, sizeof path, "%s/export.jsonl", test_tmpdir());
	const char *jsonl =
		"{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"assistant\",\"content\":\"4\"}]}\n"
		"\n"
		"{not json\n"
		"{\"conversations\":[{\"from\":\"human\",\"value\":\"Capital of France?\"},{\"from\":\"gpt\",\"value\":\"Paris\"}]}\r\n"
		"{\"messages\":[{\"role\":\"user\",\"content\":\"no answer\"}]}\n"
		"{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"assistant\",\"content\":\"4\"}]}\n";
	test_write_file(path, jsonl, strlen(jsonl));
	struct sam_ingest_result r;
	struct sam_error err = { 0 };
	CHECK_INT(sam_ingest_file(db, path, 0, &r, &err), 0);
	CHECK(r.added == 2);
	CHECK(r.duplicates == 1); /* line 6 repeats line 1 */
	CHECK(r.bad == 2);
	CHECKF(strstr(r.errors, "line 3: not JSON") != NULL, "errors: %s", r.errors);
	CHECKF(strstr(r.errors, "line 5: no assistant answer") != NULL, "errors: %s", r.errors);
	CHECK(learn_q_int(db, "SELECT count(*) FROM files WHERE status = 'partial' AND examples = 2") == 1);
	CHECK(learn_q_int(db, "SELECT count(*) FROM files WHERE error LIKE '%line 3%'") == 1);
	/* unchanged: skipped, nothing repeated */
	CHECK_INT(sam_ingest_file(db, path, 0, &r, &err), 0);
	CHECK(r.skipped);
	CHECK(learn_q_int(db, "SELECT count(*) FROM examples") == 2);
	/* a file of nothing but bad lines is an error, recorded */
	snprintf(path, sizeof path, "%s/bad.jsonl", test_tmpdir());
	test_write_file(path, "nope\n[]\n", 8);
	CHECK_INT(sam_ingest_file(db, path, 0, &r, &err), SAM_EINVAL);
	CHECK(learn_q_int(db, "SELECT count(*) FROM files WHERE status = 'error'") == 1);
	sam_db_close(db);
}

TEST(learn_ingest_text_chunks_and_binary)
{
	learn_test_home();
	struct sam_db *db = open_db();
	char path[4200];
	snprintf(path, sizeof path, "%s/notes.md", test_tmpdir());
	/* 40 paragraphs of ~100 bytes with multi-byte characters: chunks of <= 500 bytes, cut between paragraphs */
	char text[8192] = "";
	for (int i = 0; i < 40; i++) {
		char para[160];
		snprintf(para, sizeof para, "Paragraph %02d: caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 text that goes on for a while here.\n\n", i);
		strcat(text, para);
	}
	test_write_file(path, text, strlen(text));
	struct sam_ingest_result r;
	struct sam_error err = { 0 };
	CHECK_INT(sam_ingest_file(db, path, 500, &r, &err), 0);
	/* chunks are at most 500 bytes and, but for the last, more than half of that */
	long long len = (long long)strlen(text), lo = (len + 499) / 500, hi = len / 250 + 1;
	CHECKF(r.added >= lo && r.added <= hi, "%lld chunks of %lld bytes", (long long)r.added, len);
	/* every chunk is whole paragraphs: starts with "Paragraph", ends with "here." */
	sqlite3_stmt *st;
	CHECK(sam_db_prepare(db, &st, "SELECT content FROM examples", NULL) == 0);
	int rows = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *j = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		const char *t = json_string_value(json_object_get(j, "text"));
		CHECK(t && !strncmp(t, "Paragraph", 9));
		CHECK(t && strlen(t) <= 500 && !strcmp(t + strlen(t) - 5, "here."));
		json_decref(j);
		rows++;
	}
	sqlite3_finalize(st);
	CHECK(rows == r.added);
	/* a binary file is recorded as an error and stores nothing */
	snprintf(path, sizeof path, "%s/blob.bin", test_tmpdir());
	test_write_file(path, "\x7f" "ELF\0\0\1", 7);
	CHECK_INT(sam_ingest_file(db, path, 0, &r, &err), SAM_EINVAL);
	CHECK(strstr(err.msg, "not a UTF-8 text file") != NULL);
	CHECK(learn_q_int(db, "SELECT count(*) FROM files WHERE status = 'error' AND path LIKE '%blob.bin'") == 1);
	sam_db_close(db);
}

/* `sam learn add` twice at once on the same files, plus once more by hand: each example stored once. */
TEST(learn_cli_concurrent_adds_store_each_example_once)
{
	const char *home = learn_test_home();
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/drop", test_tmpdir());
	CHECK(mkdir(dir, 0755) == 0);
	for (int f = 0; f < 20; f++) {
		char path[4300], body[4096] = "";
		snprintf(path, sizeof path, "%s/chat%02d.jsonl", dir, f);
		for (int i = 0; i < 10; i++) {
			char line[256];
			/* files overlap: example (f + i) % 25 */
			int k = (f + i) % 25;
			snprintf(line, sizeof line,
				 "{\"messages\":[{\"role\":\"user\",\"content\":\"q%d\"},{\"role\":\"assistant\",\"content\":\"a%d\"}]}\n", k, k);
			strcat(body, line);
		}
		test_write_file(path, body, strlen(body));
	}
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			struct test_proc p;
			test_run_sam(&p, 60, "learn", "add", dir, NULL);
			_exit(p.status);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st;
		CHECK(waitpid(kids[k], &st, 0) == kids[k]);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "learn add exited %d", WEXITSTATUS(st));
	}
	struct test_proc p;
	test_run_sam(&p, 60, "learn", "add", dir, NULL);
	CHECK_INT(p.status, 0);
	CHECKF(strstr(p.out, "20 files (20 already ingested)") != NULL, "%s", p.out);
	test_proc_free(&p);
	char dbpath[4200];
	snprintf(dbpath, sizeof dbpath, "%s/sam.db", home);
	struct sam_db *db;
	struct sam_error err = { 0 };
	CHECK(sam_db_open(&db, dbpath, &err) == 0);
	CHECK(learn_q_int(db, "SELECT count(*) FROM examples") == 25);
	CHECK(learn_q_int(db, "SELECT count(*) FROM files WHERE status = 'ok'") == 20);
	sam_db_close(db);

	test_run_sam(&p, 30, "learn", "stats", NULL);
	CHECK_INT(p.status, 0);
	CHECKF(strstr(p.out, "examples: 25 (25 chat, 0 text)") != NULL, "%s", p.out);
	CHECK(strstr(p.out, "file") != NULL);
	test_proc_free(&p);
}

TEST(learn_cli_errors)
{
	learn_test_home();
	struct test_proc p;
	test_run_sam(&p, 30, "learn", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 30, "learn", "add", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 30, "learn", "add", "/nonexistent/file.jsonl", NULL);
	CHECK_INT(p.status, 1);
	CHECK(strstr(p.err, "no such file") != NULL);
	test_proc_free(&p);
	char path[4200];
	snprintf(path, sizeof path, "%s/half.jsonl", test_tmpdir());
	const char *s = "{\"text\":\"good\"}\n{bad\n";
	test_write_file(path, s, strlen(s));
	test_run_sam(&p, 30, "learn", "add", path, NULL);
	CHECK_INT(p.status, 1); /* something was rejected */
	CHECK(strstr(p.out, "1 new") != NULL);
	CHECK(strstr(p.err, "line 2") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 30, "dataset", "export", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 30, "dataset", "export", "--out", test_tmpdir(), "--valid-fraction", "1.5", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
}

TEST(learn_dataset_export_is_deterministic)
{
	learn_test_home();
	struct sam_db *db = open_db();
	struct sam_error err = { 0 };
	for (int i = 0; i < 300; i++) {
		char t[64];
		snprintf(t, sizeof t, "example number %d", i);
		struct sam_example ex;
		CHECK_INT(sam_example_from_text(t, strlen(t), &ex, &err), 0);
		CHECK_INT(sam_example_add(db, &ex, "manual", "", -1, NULL, NULL, &err), 0);
		sam_example_free(&ex);
	}
	char d1[4200], d2[4200];
	snprintf(d1, sizeof d1, "%s/x1", test_tmpdir());
	snprintf(d2, sizeof d2, "%s/x2/nested", test_tmpdir());
	int64_t nt, nv, nt2, nv2;
	CHECK_INT(sam_dataset_export(db, d1, 0.1, &nt, &nv, &err), 0);
	CHECK_INT(sam_dataset_export(db, d2, 0.1, &nt2, &nv2, &err), 0);
	CHECK(nt + nv == 300 && nt == nt2 && nv == nv2);
	CHECKF(nv >= 15 && nv <= 50, "valid %lld of 300 at 0.1", (long long)nv);
	const char *names[2] = { "train.jsonl", "valid.jsonl" };
	for (int k = 0; k < 2; k++) {
		char p1[4300], p2[4300];
		snprintf(p1, sizeof p1, "%s/%s", d1, names[k]);
		snprintf(p2, sizeof p2, "%s/%s", d2, names[k]);
		size_t l1, l2;
		char *a = test_read_file(p1, &l1), *b = test_read_file(p2, &l2);
		CHECK(a && b && l1 == l2 && !memcmp(a, b, l1));
		/* one example per line, every line JSON */
		size_t lines = 0;
		for (size_t i = 0; a && i < l1; i++) lines += a[i] == '\n';
		CHECK((int64_t)lines == (k ? nv : nt));
		free(a), free(b);
	}
	/* adding examples does not move the old ones between the sets */
	struct sam_example ex;
	CHECK_INT(sam_example_from_text("one more", 8, &ex, &err), 0);
	CHECK_INT(sam_example_add(db, &ex, "manual", "", -1, NULL, NULL, &err), 0);
	sam_example_free(&ex);
	CHECK_INT(sam_dataset_export(db, d2, 0.1, &nt2, &nv2, &err), 0);
	CHECK(nt2 + nv2 == 301 && nt2 >= nt && nv2 >= nv);
	CHECK_INT(sam_dataset_export(db, d2, 0.0, &nt2, &nv2, &err), 0);
	CHECK(nv2 == 0 && nt2 == 301);
	sam_db_close(db);
}
