/*
 * test_api_suggestions.c - GET /api/suggestions on the real `sam api`:
 * each source of attention (a pending approval, a crashed or failed
 * service, a file the learner could not read, low memory) appears when its
 * state is there and goes when it is gone; ingest errors are events too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_helpers.h"
#include "sam/approvals.h"
#include "sam/db.h"
#include "sam/events.h"
#include "sam/learn.h"
#include "test.h"

/* The suggestion of this kind whose title contains `in` (NULL: any), or NULL. */
static json_t *find(json_t *all, const char *kind, const char *in)
{
	json_t *list = json_object_get(all, "suggestions"), *s;
	size_t i;
	json_array_foreach(list, i, s)
	{
		if (strcmp(jstr(s, "kind"), kind)) continue;
		if (!in || strstr(jstr(s, "title"), in)) return s;
	}
	return NULL;
}

static long long count_rows(struct sam_db *db, const char *sql)
{
	int64_t n = -1;
	struct sam_error err;
	CHECKF(sam_db_query_int(db, sql, &n, &err) == 0, "%s", err.msg);
	return n;
}

static void publish(const char *type, const char *data)
{
	struct sam_db *db;
	struct sam_error err;
	CHECK(sam_db_thread(&db, NULL, &err) == 0);
	CHECKF(sam_event_publish(db, "test", type, data, NULL, &err) == 0, "%s", err.msg);
}

TEST(api_suggestions_follow_the_state)
{
	struct api_server s;
	char memfile[600];
	snprintf(memfile, sizeof memfile, "%s/mem", test_tmpdir());
	write_file_atomic(memfile, "8000\n");
	char env_mem[700];
	snprintf(env_mem, sizeof env_mem, "SAM_FAKE_MEMAVAILABLE_FILE=%s", memfile);
	api_start(&s, NULL, NULL, (const char *[]){ env_mem, NULL });
	json_t *j = api_get_json(&s, "/api/suggestions");
	CHECK(!find(j, "service", NULL) && !find(j, "approval", NULL) && !find(j, "memory", NULL));
	CHECK(!find(j, "learning", NULL) && !find(j, "training", NULL));
	json_decref(j);

	/* a crash is a warning; a failure that will not be retried is critical, listed first */
	publish("service.crashed", "{\"service\":\"voice\",\"pid\":42,\"status\":137,\"reason\":\"killed by signal 9\"}");
	publish("service.failed", "{\"service\":\"vision\",\"error\":\"crash loop\"}");
	j = api_get_json(&s, "/api/suggestions");
	json_t *v = find(j, "service", "voice"), *f = find(j, "service", "vision");
	CHECK(v && f);
	CHECK_STR(jstr(v, "severity"), "warning");
	CHECK_STR(jstr(f, "severity"), "critical");
	CHECK(strstr(jstr(f, "title"), "crash loop") != NULL);
	CHECK_STR(jstr(f, "action"), "sam logs vision");
	CHECK(json_array_get(json_object_get(j, "suggestions"), 0) == f);
	json_decref(j);
	/* back: gone */
	publish("service.restarted", "{\"service\":\"voice\",\"pid\":43}");
	publish("service.ready", "{\"service\":\"vision\",\"pid\":44}");
	j = api_get_json(&s, "/api/suggestions");
	CHECK(!find(j, "service", NULL));
	json_decref(j);

	/* a pending approval, until it is decided */
	struct sam_db *db;
	struct sam_error err;
	CHECK(sam_db_thread(&db, NULL, &err) == 0);
	int64_t id;
	CHECKF(sam_approval_propose(db, NULL, "note", "Remember the milk", "{\"text\":\"milk\"}", "test", 0, &id, &err) == 0,
	       "%s", err.msg);
	j = api_get_json(&s, "/api/suggestions");
	json_t *a = find(j, "approval", "Remember the milk");
	CHECK(a != NULL);
	char action[64];
	snprintf(action, sizeof action, "sam approve %lld", (long long)id);
	CHECK_STR(jstr(a, "action"), action);
	CHECK_INT(jint(a, "ref.approval"), id);
	json_decref(j);
	CHECK(sam_approval_reject(db, id, "test", "no", &err) == 0);
	j = api_get_json(&s, "/api/suggestions");
	CHECK(!find(j, "approval", NULL));
	json_decref(j);

	/* a file the learner cannot read: an ingest.error event and a suggestion */
	char bin[600];
	snprintf(bin, sizeof bin, "%s/blob.txt", test_tmpdir());
	FILE *fp = fopen(bin, "wb");
	CHECK(fp);
	for (int i = 0; i < 256; i++) fputc(i, fp);
	fclose(fp);
	int64_t before;
	CHECK(sam_events_last_seq(db, &before, &err) == 0);
	struct sam_ingest_result res;
	CHECK(sam_ingest_file(db, bin, 0, &res, &err) != 0);
	struct sam_event *ev;
	size_t n;
	CHECK(sam_events_since(db, before, 0, &ev, &n, &err) == 0);
	CHECKF(n == 1 && !strcmp(ev[0].type, "ingest.error"), "%zu events after the bad file", n);
	json_t *d = json_loads(ev[0].data, 0, NULL);
	CHECK(d && strstr(jstr(d, "path"), "blob.txt") && !strcmp(jstr(d, "status"), "error"));
	CHECK(strstr(jstr(d, "error"), "UTF-8") != NULL);
	json_decref(d);
	sam_events_free(ev, n);
	j = api_get_json(&s, "/api/suggestions");
	CHECK(find(j, "learning", "1 file could not be learned from") != NULL);
	json_decref(j);

	/* low memory, once the api's poller has seen it */
	write_file_atomic(memfile, "1200\n");
	CHECK(api_wait_status_str(&s, "resource.level", "low", 10));
	j = api_get_json(&s, "/api/suggestions");
	json_t *m = find(j, "memory", "low");
	CHECK(m && !strcmp(jstr(m, "severity"), "warning"));
	json_decref(j);
	/* the change is an event that says where the level came from */
	CHECK(count_rows(db, "SELECT count(*) FROM events WHERE type = 'resource.level'"
				   " AND json_extract(data, '$.level') = 'low' AND json_extract(data, '$.previous') = 'ok'"
				   " AND json_extract(data, '$.available_mb') = 1200") == 1);
	sam_db_thread_release();
	api_stop(&s);
}
