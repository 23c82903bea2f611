/*
 * data.c - examples into token sequences with loss masks (see data.h).
 *
 * The assistant turns of a chat are found by rendering the conversation
 * a turn at a time: the prompt up to turn i (with the generation prompt)
 * and the conversation through turn i. For every template family this
 * engine renders, each is a prefix of the next, so the text between them
 * is exactly what the model would generate for turn i, end-of-turn
 * marker included. Each piece is tokenized on its own, which is also how
 * the api tokenizes a prompt that a generation then continues.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sam/chat.h"
#include "sam/learn.h"
#include "train/data.h"

struct seq_buf {
	int32_t *tok;
	uint8_t *loss;
	int n, cap;
};

static int push(struct seq_buf *b, const int32_t *ids, size_t n, uint8_t loss, struct sam_error *err)
{
	if (n > (size_t)(1 << 28) || (size_t)b->n + n > (size_t)(1 << 28))
		return sam_errorf(err, SAM_ERANGE, "example of more than 2^28 tokens");
	if (b->n + (int)n > b->cap) {
		int cap = (b->n + (int)n) * 2;
		int32_t *t = realloc(b->tok, (size_t)cap * sizeof *t);
		if (t) b->tok = t;
		uint8_t *l = realloc(b->loss, (size_t)cap);
		if (l) b->loss = l;
		if (!t || !l) return sam_errorf(err, SAM_ENOMEM, "out of memory");
		b->cap = cap;
	}
	memcpy(b->tok + b->n, ids, n * sizeof *ids);
	memset(b->loss + b->n, loss, n);
	b->n += (int)n;
	return 0;
}

/* Tokenize text[0..len) and append it with the given loss flag. */
static int push_text(struct seq_buf *b, const struct sam_model *m, const char *text, size_t len, bool add_special,
		     bool parse_special, uint8_t loss, struct sam_error *err)
{
	int32_t *ids;
	size_t n;
	int rc = tok_encode(&m->vocab, text, len, add_special, parse_special, &ids, &n, err);
	if (rc) return rc;
	rc = push(b, ids, n, loss, err);
	free(ids);
	return rc;
}

static int text_example(struct seq_buf *b, const struct sam_model *m, const char *text, struct sam_error *err)
{
	int rc = push_text(b, m, text, strlen(text), true, false, 1, err);
	int32_t eos = m->vocab.eos;
	if (!rc && eos >= 0 && (b->n == 0 || b->tok[b->n - 1] != eos)) rc = push(b, &eos, 1, 1, err);
	return rc;
}

static bool is_prefix(const char *p, size_t np, const char *s, size_t ns)
{
	return np <= ns && !memcmp(p, s, np);
}

static int chat_example(struct seq_buf *b, const struct sam_model *m, json_t *messages, struct sam_error *err)
{
	size_t n = json_array_size(messages);
	struct chat_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
	if (!msgs) return sam_errorf(err, SAM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		msgs[i].role = json_string_value(json_object_get(json_array_get(messages, i), "role"));
		msgs[i].content = json_string_value(json_object_get(json_array_get(messages, i), "content"));
	}
	enum chat_template t = chat_template_for_model(m, NULL);
	char *done = strdup(""), *prompt = NULL, *through = NULL;
	size_t n_done = 0, n_prompt, n_through;
	int rc = done ? 0 : sam_errorf(err, SAM_ENOMEM, "out of memory");
	bool first = true;
	for (size_t i = 0; !rc && i < n; i++) {
		if (!msgs[i].role || strcmp(msgs[i].role, "assistant")) continue;
		if ((rc = chat_format(t, msgs, i, true, &prompt, &n_prompt, err)) ||
		    (rc = chat_format(t, msgs, i + 1, false, &through, &n_through, err)))
			break;
		if (!is_prefix(done, n_done, prompt, n_prompt) || !is_prefix(prompt, n_prompt, through, n_through)) {
			rc = sam_errorf(err, SAM_EUNSUPPORTED, "the %s template does not render this conversation a turn at a time",
					chat_template_name(t));
			break;
		}
		if (first && chat_template_adds_bos(t) && !m->vocab.add_bos && m->vocab.bos >= 0)
			rc = push(b, &m->vocab.bos, 1, 0, err);
		if (!rc) rc = push_text(b, m, prompt + n_done, n_prompt - n_done, first, true, 0, err);
		if (!rc) rc = push_text(b, m, through + n_prompt, n_through - n_prompt, false, true, 1, err);
		first = false;
		free(done);
		free(prompt);
		prompt = NULL;
		done = through;
		n_done = n_through;
		through = NULL;
	}
	free(done);
	free(prompt);
	free(through);
	free(msgs);
	return rc;
}

int train_tokenize_line(const struct sam_model *m, const char *line, size_t len, int max_len, struct train_seq *out,
			struct sam_error *err)
{
	memset(out, 0, sizeof *out);
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, 0, &jerr);
	if (!obj) return sam_errorf(err, SAM_EINVAL, "not JSON: %s", jerr.text);
	struct sam_example ex = { 0 };
	int rc = sam_example_from_json(obj, &ex, err);
	json_decref(obj);
	if (rc) return rc;
	json_t *canon = json_loads(ex.json, 0, &jerr);
	sam_example_free(&ex);
	if (!canon) return sam_errorf(err, SAM_EINVAL, "not JSON: %s", jerr.text);
	struct seq_buf b = { 0 };
	json_t *messages = json_object_get(canon, "messages");
	if (messages) rc = chat_example(&b, m, messages, err);
	else rc = text_example(&b, m, json_string_value(json_object_get(canon, "text")), err);
	json_decref(canon);
	if (!rc && b.n > max_len) b.n = max_len;
	if (b.n > 0) b.loss[0] = 0; /* the first token is never a target */
	if (rc) {
		free(b.tok);
		free(b.loss);
		return rc;
	}
	out->tok = b.tok;
	out->loss = b.loss;
	out->n = b.n;
	return 0;
}

static int count_loss(const struct train_seq *s)
{
	int n = 0;
	for (int i = 1; i < s->n; i++) n += s->loss[i];
	return n;
}

int train_set_load(struct train_set *set, const struct sam_model *m, const char *path, int max_len,
		   struct sam_error *err)
{
	memset(set, 0, sizeof *set);
	FILE *f = fopen(path, "r");
	if (!f) return sam_errorf(err, SAM_ENOTFOUND, "%s: cannot open", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int cap_seq = 0, rc = 0, lineno = 0;
	while (!rc && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
		if (len == 0) continue;
		struct train_seq s;
		struct sam_error e = { 0 };
		int full = 0;
		if (train_tokenize_line(m, line, (size_t)len, max_len + 1, &s, &e)) {
			if (!set->n_bad++) snprintf(set->first_bad, sizeof set->first_bad, "line %d: %.200s", lineno, e.msg);
			continue;
		}
		full = s.n > max_len;
		if (full) s.n = max_len; /* tokenized one past: cut, and say so */
		if (s.n < 2 || !count_loss(&s)) {
			set->n_skipped++;
			free(s.tok);
			free(s.loss);
			continue;
		}
		set->n_truncated += full;
		if (set->n == cap_seq) {
			cap_seq = cap_seq ? cap_seq * 2 : 64;
			struct train_seq *grown = realloc(set->seq, (size_t)cap_seq * sizeof *grown);
			if (!grown) {
				free(s.tok);
				free(s.loss);
				rc = sam_errorf(err, SAM_ENOMEM, "out of memory");
				break;
			}
			set->seq = grown;
		}
		set->seq[set->n++] = s;
		set->n_tokens += s.n;
		set->n_loss += count_loss(&s);
	}
	free(line);
	fclose(f);
	if (!rc && !set->n)
		rc = sam_errorf(err, SAM_EINVAL, "%s: no usable example (%d lines refused%s%s)", path, set->n_bad,
				set->n_bad ? ", " : "", set->first_bad);
	if (rc) train_set_free(set);
	return rc;
}

void train_set_free(struct train_set *set)
{
	for (int i = 0; i < set->n; i++) {
		free(set->seq[i].tok);
		free(set->seq[i].loss);
	}
	free(set->seq);
	memset(set, 0, sizeof *set);
}
