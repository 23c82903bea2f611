/*
 * generate.h - what the generating endpoints share: option parsing, chat
 * prompt building with history trimming, submission, collecting a whole
 * answer, and streaming it as server-sent events in SAM's or OpenAI's shape.
 */
#ifndef SAM_API_GENERATE_H
#define SAM_API_GENERATE_H

#include "api/api.h"
#include "sam/chat.h"

struct gen_opts {
	int max_tokens;
	struct sam_sampler_params sp;
	const char *stop[GEN_MAX_STOP]; /* point into the request's JSON */
	int n_stop;
	bool stream;
	bool include_usage; /* OpenAI stream_options.include_usage */
	int32_t stop_ids[CHAT_MAX_STOP_IDS]; /* the chat template's end-of-turn tokens */
	int n_stop_ids;
};

/*
 * Fill o from the request body: max_tokens (or max_completion_tokens),
 * temperature, top_p, top_k, min_p, repeat_penalty, seed, stop, stream.
 * A field of the wrong type or range gets a 400 naming it (and false).
 */
bool gen_parse_opts(struct http_req *r, json_t *body, struct gen_opts *o, float default_temp, int default_max);

/*
 * Tokenize messages with the engine's chat template (setting o's stop ids)
 * and drop the oldest messages after a leading system message until the
 * prompt leaves room for o->max_tokens (lowered to fit when nothing can go).
 * Responds 400 and returns NULL when even the last message does not fit.
 */
int32_t *gen_chat_prompt(struct api *a, struct http_req *r, struct api_engine *e, struct chat_msg *msgs, size_t *n_msgs,
			 struct gen_opts *o, int *n_out);
/* Tokenize plain text (BOS as the model says, special tokens parsed). NULL and 400 when it does not fit. */
int32_t *gen_text_prompt(struct api *a, struct http_req *r, struct api_engine *e, const char *text, int *max_tokens,
			 int *n_out);

/*
 * Submit without responding (for a stream already under way): 0 with *out,
 * or the HTTP status of the failure with the reason in err; *retry_after
 * is non-zero when the api is busy (then err holds api_busy's reason).
 */
int gen_try_submit(struct api *a, struct api_engine *e, const int32_t *prompt, int n, const struct gen_opts *o,
		   struct gen_req **out, int *retry_after, struct sam_error *err);
/* Submit; on failure responds (503 queue full, 400 too long) and returns NULL. */
struct gen_req *gen_submit(struct api *a, struct http_req *r, struct api_engine *e, const int32_t *prompt, int n,
			   const struct gen_opts *o);

/*
 * Wait for the whole answer; cancels when the client goes away (*gone).
 * Returns the text (valid UTF-8, malloc'd).
 */
char *gen_collect(struct api_engine *e, struct gen_req *g, struct http_req *r, bool *gone);

/*
 * The non-streaming end of a request: collect the whole answer, drop g's
 * reference, and either return the text (malloc'd; *fin, *np, *ng set) or,
 * when there is no answer to give (client gone or cancelled: 503; engine
 * error: 500; timed out before any token: 503 busy), respond and return NULL.
 */
char *gen_finish(struct api_engine *e, struct gen_req *g, struct http_req *r, int *fin, int *np, int *ng);

enum sse_kind { SSE_COGNITIVE, SSE_THINK, SSE_OPENAI_CHAT, SSE_OPENAI_COMPLETION };

struct sse_stream;
/* Called once when a stream ends normally (not when the client left): text is the whole answer. */
typedef void (*sse_finish_fn)(struct api *a, void *user, const char *text, int finish, int n_prompt, int n_gen);

/*
 * Respond with an SSE stream of g's text. meta (stolen) carries fields for
 * the events: OpenAI "id", "model", "created"; SAM "session_id", "model".
 * g's reference passes to the stream.
 */
void gen_stream(struct api *a, struct http_req *r, struct api_engine *e, struct gen_req *g, enum sse_kind kind,
		json_t *meta, bool include_usage, sse_finish_fn on_finish, void *user, void (*free_user)(void *));

/*
 * The same stream, without responding: for a handler whose own stream goes
 * on with the answer (h_vision.c). gen_stream_read is its http_stream_fn
 * and gen_stream_close its done callback (called exactly once).
 */
struct sse_stream *gen_stream_open(struct api *a, struct api_engine *e, struct gen_req *g, enum sse_kind kind,
				   json_t *meta, bool include_usage, sse_finish_fn on_finish, void *user,
				   void (*free_user)(void *));
ssize_t gen_stream_read(struct sse_stream *s, char *buf, size_t max);
void gen_stream_close(struct sse_stream *s, bool client_gone);

/* The model's public id (file name without directory and .gguf). Static storage in e. */
const char *gen_model_id(struct api_engine *e, char *buf, size_t cap);

/* OpenAI's finish_reason for ours. */
const char *gen_openai_finish(int finish);

#endif
