/* json.c - proposals and audit rows as the JSON the api and `sam approvals --json` give (see approvals.h). */
#include <jansson.h>

#include "sam/approvals.h"

/* Stored JSON text as a value; what cannot be parsed (never written by this code) is kept as a string. */
static json_t *stored(const char *text)
{
	if (!text) return json_null();
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	return j ? j : json_string(text);
}

static json_t *status_json(int status)
{
	return status < 0 ? json_null() : json_string(sam_approval_status_name(status));
}

json_t *sam_approval_to_json(const struct sam_approval *a)
{
	return json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:f, s:o, s:f, s:o}", "id", (json_int_t)a->id, "kind", a->kind,
			 "title", a->title, "payload", stored(a->payload), "proposer", a->proposer, "status",
			 status_json(a->status), "created", a->created, "expires",
			 a->expires > 0 ? json_real(a->expires) : json_null(), "updated", a->updated, "result",
			 stored(a->result));
}

json_t *sam_approval_audit_to_json(const struct sam_approval_audit *r)
{
	return json_pack("{s:I, s:f, s:o, s:o, s:s, s:s, s:o}", "seq", (json_int_t)r->seq, "time", r->time, "from",
			 status_json(r->from), "to", status_json(r->to), "actor", r->actor, "reason", r->reason, "detail",
			 stored(r->detail));
}
