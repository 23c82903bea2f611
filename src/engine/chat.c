/*
 * chat.c - chat template families: detection by markers and rendering in C.
 * See include/sam/chat.h for the families and what each renders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sam/chat.h"
#include "sam/model.h"

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

static const char *const names[CHAT_TEMPLATE_COUNT] = {
	[CHAT_CHATML] = "chatml",
	[CHAT_QWEN25] = "qwen2.5",
	[CHAT_LLAMA2] = "llama2",
	[CHAT_LLAMA3] = "llama3",
	[CHAT_LLAMA31] = "llama3.1",
	[CHAT_LLAMA32] = "llama3.2",
	[CHAT_ZEPHYR] = "zephyr",
	[CHAT_PHI3] = "phi3",
	[CHAT_PHI4] = "phi4",
	[CHAT_GEMMA] = "gemma",
	[CHAT_MISTRAL_LEGACY] = "mistral-legacy",
	[CHAT_MISTRAL_V1] = "mistral-v1",
	[CHAT_MISTRAL_V3] = "mistral-v3",
	[CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
	[CHAT_MISTRAL_V7] = "mistral-v7",
	[CHAT_MISTRAL_V7_TEKKEN] = "mistral-v7-tekken",
	[CHAT_DEEPSEEK_R1] = "deepseek-r1",
	[CHAT_COMMAND_R] = "command-r",
};

#define QWEN25_DEFAULT_SYSTEM "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
#define LLAMA31_DATE "26 Jul 2024"
#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"           /* <｜User｜> */
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>" /* <｜Assistant｜> */
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>" /* <｜end▁of▁sentence｜> */

const char *chat_template_name(enum chat_template t)
{
	return (unsigned)t < CHAT_TEMPLATE_COUNT ? names[t] : "?";
}

/* ---- detection ---------------------------------------------------------- */

static bool has(const char *t, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	if (k > n) return false;
	for (size_t i = 0; i + k <= n; i++)
		if (t[i] == needle[0] && !memcmp(t + i, needle, k)) return true;
	return false;
}

/* The markers, in llama.cpp's order (llm_chat_detect_template) where they overlap. */
static bool detect(const char *t, size_t n, enum chat_template *out)
{
	if (has(t, n, "<|im_start|>")) {
		if (has(t, n, "<|im_sep|>"))
			*out = CHAT_PHI4;
		else if (has(t, n, QWEN25_DEFAULT_SYSTEM))
			*out = CHAT_QWEN25;
		else
			*out = CHAT_CHATML;
	} else if (has(t, n, "[INST]")) {
		if (has(t, n, "[SYSTEM_PROMPT]"))
			*out = has(t, n, "[INST] ") ? CHAT_MISTRAL_V7 : CHAT_MISTRAL_V7_TEKKEN;
		else if ((has(t, n, "' [INST] ' + system_message") || has(t, n, "[AVAILABLE_TOOLS]")) &&
			 has(t, n, " [INST]"))
			*out = CHAT_MISTRAL_V1;
		else if (has(t, n, "' [INST] ' + system_message") || has(t, n, "[AVAILABLE_TOOLS]"))
			*out = has(t, n, "\"[INST]\"") ? CHAT_MISTRAL_V3_TEKKEN : CHAT_MISTRAL_V3;
		else if (has(t, n, "<<SYS>>"))
			*out = CHAT_LLAMA2;
		else
			*out = CHAT_MISTRAL_LEGACY;
	} else if (has(t, n, "<|end|>") && (has(t, n, "<|assistant|>") || has(t, n, "<|user|>"))) {
		*out = CHAT_PHI3;
	} else if (has(t, n, "<|user|>") && has(t, n, "<|assistant|>") && !has(t, n, "[gMASK]") &&
		   (has(t, n, "eos_token") || has(t, n, "</s>") || has(t, n, "<|endoftext|>"))) {
		*out = CHAT_ZEPHYR;
	} else if (has(t, n, "<start_of_turn>")) {
		*out = CHAT_GEMMA;
	} else if (has(t, n, "<|START_OF_TURN_TOKEN|>") && has(t, n, "<|USER_TOKEN|>")) {
		*out = CHAT_COMMAND_R;
	} else if (has(t, n, "<|start_header_id|>") && has(t, n, "<|end_header_id|>")) {
		if (has(t, n, "Cutting Knowledge Date: December 2023") && has(t, n, "Today Date: "))
			*out = has(t, n, "strftime_now") ? CHAT_LLAMA32 : CHAT_LLAMA31;
		else
			*out = CHAT_LLAMA3;
	} else if (has(t, n, DS_USER) && has(t, n, DS_ASSISTANT) && has(t, n, "<think>")) {
		*out = CHAT_DEEPSEEK_R1;
	} else {
		return false;
	}
	return true;
}

enum chat_template chat_template_detect(const char *tmpl, size_t len, bool *known)
{
	enum chat_template t = CHAT_CHATML;
	bool ok = true;
	if (tmpl && len > 0) {
		ok = false;
		for (int i = 0; i < CHAT_TEMPLATE_COUNT; i++)
			if (strlen(names[i]) == len && !memcmp(tmpl, names[i], len)) {
				t = (enum chat_template)i;
				ok = true;
			}
		if (!ok) ok = detect(tmpl, len, &t);
		if (!ok) t = CHAT_CHATML;
	}
	if (known) *known = ok;
	return t;
}

enum chat_template chat_template_for_gguf(const struct gguf_file *f, bool *known)
{
	const struct gguf_kv *kv = gguf_find(f, "tokenizer.chat_template");
	if (!kv) {
		if (known) *known = true;
		return CHAT_CHATML;
	}
	if (kv->v.type != GGUF_T_STRING) {
		if (known) *known = false;
		return CHAT_CHATML;
	}
	return chat_template_detect(kv->v.str.s, (size_t)kv->v.str.n, known);
}

enum chat_template chat_template_for_model(const struct sam_model *m, bool *known)
{
	return chat_template_for_gguf(&m->gguf, known);
}

bool chat_template_adds_bos(enum chat_template t)
{
	switch (t) {
	case CHAT_CHATML:
	case CHAT_QWEN25:
	case CHAT_ZEPHYR:
	case CHAT_PHI3:
	case CHAT_PHI4:
	case CHAT_TEMPLATE_COUNT: return false;
	default: return true;
	}
}

const char *const *chat_template_stops(enum chat_template t)
{
	static const char *const chatml[] = { "<|im_end|>", NULL };
	static const char *const qwen[] = { "<|im_end|>", "<|endoftext|>", NULL };
	static const char *const llama3[] = { "<|eot_id|>", "<|eom_id|>", NULL };
	static const char *const eos_s[] = { "</s>", NULL };
	static const char *const phi3[] = { "<|end|>", "<|endoftext|>", NULL };
	static const char *const gemma[] = { "<end_of_turn>", NULL };
	static const char *const deepseek[] = { DS_EOS, NULL };
	static const char *const command_r[] = { "<|END_OF_TURN_TOKEN|>", NULL };
	static const char *const none[] = { NULL };
	switch (t) {
	case CHAT_CHATML: return chatml;
	case CHAT_QWEN25:
	case CHAT_PHI4: return qwen;
	case CHAT_LLAMA3:
	case CHAT_LLAMA31:
	case CHAT_LLAMA32: return llama3;
	case CHAT_LLAMA2:
	case CHAT_ZEPHYR:
	case CHAT_MISTRAL_LEGACY:
	case CHAT_MISTRAL_V1:
	case CHAT_MISTRAL_V3:
	case CHAT_MISTRAL_V3_TEKKEN:
	case CHAT_MISTRAL_V7:
	case CHAT_MISTRAL_V7_TEKKEN: return eos_s;
	case CHAT_PHI3: return phi3;
	case CHAT_GEMMA: return gemma;
	case CHAT_DEEPSEEK_R1: return deepseek;
	case CHAT_COMMAND_R: return command_r;
	case CHAT_TEMPLATE_COUNT: break;
	}
	return none;
}

/* ---- jinja's |trim: Python str.strip() ---------------------------------- */

/* Bytes of the whitespace character (str.isspace) at s[0..n), or 0. */
static size_t ws_fwd(const unsigned char *s, size_t n)
{
	if (n == 0) return 0;
	unsigned c = s[0];
	if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
	if (n >= 2 && c == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
	if (n < 3) return 0;
	unsigned b1 = s[1], b2 = s[2];
	if (c == 0xe1 && b1 == 0x9a && b2 == 0x80) return 3; /* U+1680 */
	if (c == 0xe2 && b1 == 0x80 && ((b2 >= 0x80 && b2 <= 0x8a) || b2 == 0xa8 || b2 == 0xa9 || b2 == 0xaf))
		return 3; /* U+2000..200A, U+2028, U+2029, U+202F */
	if (c == 0xe2 && b1 == 0x81 && b2 == 0x9f) return 3; /* U+205F */
	if (c == 0xe3 && b1 == 0x80 && b2 == 0x80) return 3; /* U+3000 */
	return 0;
}

/* Bytes of the whitespace character ending at s + n, or 0. */
static size_t ws_back(const unsigned char *s, size_t n)
{
	if (n >= 1 && ws_fwd(s + n - 1, 1) == 1) return 1;
	if (n >= 2 && ws_fwd(s + n - 2, 2) == 2) return 2;
	if (n >= 3 && ws_fwd(s + n - 3, 3) == 3) return 3;
	return 0;
}

/* s[*a..*e) is s[0..n) without whitespace at either end. */
static void trim_span(const char *s, size_t n, size_t *a, size_t *e)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, j = n, k;
	while ((k = ws_fwd(u + i, j - i)) > 0) i += k;
	while (j > i && (k = ws_back(u + i, j - i)) > 0) j -= k;
	*a = i;
	*e = j;
}

/* ---- output buffer (sticky error) --------------------------------------- */

struct sbuf {
	char *p;
	size_t n, cap;
	int rc;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->rc) return;
	if (n > CHAT_MAX_OUTPUT - b->n) {
		b->rc = SAM_ERANGE;
		return;
	}
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n + 1) cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->rc = SAM_ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n) memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_add_trim(struct sbuf *b, const char *s, size_t n)
{
	size_t a, e;
	trim_span(s, n, &a, &e);
	sb_addn(b, s + a, e - a);
}

static void sb_add_trims(struct sbuf *b, const char *s)
{
	sb_add_trim(b, s, strlen(s));
}

/* ---- the families ------------------------------------------------------- */

struct conv {
	const struct chat_msg *m;
	const int *role; /* enum role of each message */
	size_t n;
	bool gen; /* add_generation_prompt */
};

static const char *role_name(int r)
{
	return r == ROLE_SYSTEM ? "system" : r == ROLE_USER ? "user" : "assistant";
}

/* Index of the first message after a leading system message (0 or 1). */
static size_t skip_system(const struct conv *c)
{
	return c->n > 0 && c->role[0] == ROLE_SYSTEM ? 1 : 0;
}

static void fmt_chatml(struct sbuf *b, const struct conv *c, bool qwen)
{
	if (qwen && skip_system(c) == 0) sb_add(b, "<|im_start|>system\n" QWEN25_DEFAULT_SYSTEM "<|im_end|>\n");
	for (size_t i = 0; i < c->n; i++) {
		sb_add(b, "<|im_start|>");
		sb_add(b, role_name(c->role[i]));
		sb_add(b, "\n");
		sb_add(b, c->m[i].content);
		sb_add(b, "<|im_end|>\n");
	}
	if (c->gen) sb_add(b, "<|im_start|>assistant\n");
}

static void fmt_phi4(struct sbuf *b, const struct conv *c)
{
	for (size_t i = 0; i < c->n; i++) {
		sb_add(b, "<|im_start|>");
		sb_add(b, role_name(c->role[i]));
		sb_add(b, "<|im_sep|>");
		sb_add(b, c->m[i].content);
		sb_add(b, "<|im_end|>");
	}
	if (c->gen) sb_add(b, "<|im_start|>assistant<|im_sep|>");
}

/* date: NULL for Llama 3.0 (no system header of its own). */
static void fmt_llama3(struct sbuf *b, const struct conv *c, const char *date)
{
	size_t i = 0;
	if (date) {
		sb_add(b, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
			  "Today Date: ");
		sb_add(b, date);
		sb_add(b, "\n\n");
		i = skip_system(c);
		if (i) sb_add_trims(b, c->m[0].content);
		sb_add(b, "<|eot_id|>");
	}
	for (; i < c->n; i++) {
		sb_add(b, "<|start_header_id|>");
		sb_add(b, role_name(c->role[i]));
		sb_add(b, "<|end_header_id|>\n\n");
		sb_add_trims(b, c->m[i].content);
		sb_add(b, "<|eot_id|>");
	}
	if (c->gen) sb_add(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void fmt_zephyr(struct sbuf *b, const struct conv *c)
{
	for (size_t i = 0; i < c->n; i++) {
		sb_add(b, "<|");
		sb_add(b, role_name(c->role[i]));
		sb_add(b, "|>\n");
		sb_add(b, c->m[i].content);
		sb_add(b, "</s>\n");
		if (i + 1 == c->n && c->gen) sb_add(b, "<|assistant|>\n");
	}
}

static void fmt_phi3(struct sbuf *b, const struct conv *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->role[i] == ROLE_SYSTEM && !c->m[i].content[0]) continue;
		sb_add(b, "<|");
		sb_add(b, role_name(c->role[i]));
		sb_add(b, "|>\n");
		sb_add(b, c->m[i].content);
		sb_add(b, "<|end|>\n");
	}
	sb_add(b, c->gen ? "<|assistant|>\n" : "<|endoftext|>");
}

static void fmt_gemma(struct sbuf *b, const struct conv *c)
{
	size_t i = skip_system(c);
	const char *sys = i ? c->m[0].content : NULL;
	for (; i <= c->n; i++) {
		bool user = i < c->n && c->role[i] == ROLE_USER;
		if (sys && !user) { /* no user turn to merge into: the system text becomes one */
			sb_add(b, "<start_of_turn>user\n");
			sb_add_trims(b, sys);
			sb_add(b, "<end_of_turn>\n");
			sys = NULL;
		}
		if (i == c->n) break;
		sb_add(b, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
		if (sys) { /* trim(trim(S) + "\n\n" + U) */
			struct sbuf t = { 0 };
			sb_add_trims(&t, sys);
			sb_add(&t, "\n\n");
			sb_add(&t, c->m[i].content);
			if (t.rc) b->rc = t.rc;
			else sb_add_trim(b, t.p, t.n);
			free(t.p);
			sys = NULL;
		} else {
			sb_add_trims(b, c->m[i].content);
		}
		sb_add(b, "<end_of_turn>\n");
	}
	if (c->gen) sb_add(b, "<start_of_turn>model\n");
}

static void fmt_llama2(struct sbuf *b, const struct conv *c)
{
	size_t first = skip_system(c);
	for (size_t i = first; i < c->n; i++) {
		struct sbuf t = { 0 };
		if (i == first && first) {
			sb_add(&t, "<<SYS>>\n");
			sb_add(&t, c->m[0].content);
			sb_add(&t, "\n<</SYS>>\n\n");
		}
		sb_add(&t, c->m[i].content);
		if (t.rc) {
			b->rc = t.rc;
		} else if (c->role[i] == ROLE_USER) {
			if (i > first) sb_add(b, "<s>"); /* the leading BOS is the tokenizer's */
			sb_add(b, "[INST] ");
			sb_add_trim(b, t.p, t.n);
			sb_add(b, " [/INST]");
		} else {
			sb_add(b, " ");
			sb_add_trim(b, t.p, t.n);
			sb_add(b, " </s>");
		}
		free(t.p);
	}
}

static void fmt_mistral_legacy(struct sbuf *b, const struct conv *c)
{
	size_t i = skip_system(c);
	const char *sys = i ? c->m[0].content : NULL;
	for (; i <= c->n; i++) {
		bool user = i < c->n && c->role[i] == ROLE_USER;
		if (sys && !user) {
			sb_add(b, "[INST] ");
			sb_add(b, sys);
			sb_add(b, " [/INST]");
			sys = NULL;
		}
		if (i == c->n) break;
		if (user) {
			sb_add(b, "[INST] ");
			if (sys) {
				sb_add(b, sys);
				sb_add(b, "\n");
				sys = NULL;
			}
			sb_add(b, c->m[i].content);
			sb_add(b, " [/INST]");
		} else {
			sb_add(b, c->m[i].content);
			sb_add(b, "</s>");
		}
	}
}

/* v1, v3 and v3-tekken: the system message joins the first (v1) or last (v3) user turn. */
static void fmt_mistral_v1_v3(struct sbuf *b, const struct conv *c, enum chat_template t)
{
	size_t first = skip_system(c);
	const char *inst = t == CHAT_MISTRAL_V1 ? " [INST] " : t == CHAT_MISTRAL_V3 ? "[INST] " : "[INST]";
	const char *end = t == CHAT_MISTRAL_V1 ? " [/INST]" : "[/INST]";
	for (size_t i = first; i < c->n; i++) {
		if (c->role[i] == ROLE_USER) {
			sb_add(b, inst);
			if (first && i == (t == CHAT_MISTRAL_V1 ? first : c->n - 1)) {
				sb_add(b, c->m[0].content);
				sb_add(b, "\n\n");
			}
			sb_add(b, c->m[i].content);
			sb_add(b, end);
		} else if (t == CHAT_MISTRAL_V3) {
			sb_add(b, " ");
			sb_add_trims(b, c->m[i].content);
			sb_add(b, "</s>");
		} else {
			if (t == CHAT_MISTRAL_V1) sb_add(b, " ");
			sb_add(b, c->m[i].content);
			sb_add(b, "</s>");
		}
	}
}

static void fmt_mistral_v7(struct sbuf *b, const struct conv *c, bool tekken)
{
	const char *sp = tekken ? "" : " ";
	for (size_t i = 0; i < c->n; i++) {
		switch (c->role[i]) {
		case ROLE_SYSTEM: sb_add(b, "[SYSTEM_PROMPT]"); break;
		case ROLE_USER: sb_add(b, "[INST]"); break;
		default: break;
		}
		sb_add(b, sp);
		sb_add(b, c->m[i].content);
		switch (c->role[i]) {
		case ROLE_SYSTEM: sb_add(b, "[/SYSTEM_PROMPT]"); break;
		case ROLE_USER: sb_add(b, "[/INST]"); break;
		default: sb_add(b, "</s>"); break;
		}
	}
}

static void fmt_deepseek_r1(struct sbuf *b, const struct conv *c)
{
	for (size_t i = c->n; i-- > 0;)
		if (c->role[i] == ROLE_SYSTEM) {
			sb_add(b, c->m[i].content);
			break;
		}
	for (size_t i = 0; i < c->n; i++) {
		const char *s = c->m[i].content, *p;
		if (c->role[i] == ROLE_USER) {
			sb_add(b, DS_USER);
			sb_add(b, s);
		} else if (c->role[i] == ROLE_ASSISTANT) {
			while ((p = strstr(s, "</think>")) != NULL) s = p + strlen("</think>");
			sb_add(b, DS_ASSISTANT);
			sb_add(b, s);
			sb_add(b, DS_EOS);
		}
	}
	if (c->gen) sb_add(b, DS_ASSISTANT "<think>\n");
}

static void fmt_command_r(struct sbuf *b, const struct conv *c)
{
	size_t i = skip_system(c);
	if (i) {
		sb_add(b, "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>");
		sb_add(b, c->m[0].content);
		sb_add(b, "<|END_OF_TURN_TOKEN|>");
	}
	for (; i < c->n; i++) {
		sb_add(b, c->role[i] == ROLE_USER ? "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>"
						  : "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
		sb_add_trims(b, c->m[i].content);
		sb_add(b, "<|END_OF_TURN_TOKEN|>");
	}
	if (c->gen) sb_add(b, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
}

/* Families whose template has no place for a system message after the first. */
static bool system_only_first(enum chat_template t)
{
	switch (t) {
	case CHAT_LLAMA2:
	case CHAT_GEMMA:
	case CHAT_MISTRAL_LEGACY:
	case CHAT_MISTRAL_V1:
	case CHAT_MISTRAL_V3:
	case CHAT_MISTRAL_V3_TEKKEN:
	case CHAT_COMMAND_R: return true;
	default: return false;
	}
}

/* "26 Jul 2024" style date of today (strftime_now("%d %b %Y") in the C locale). */
static void today(char *buf, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;
	if (!localtime_r(&now, &tm) || strftime(buf, cap, "%d %b %Y", &tm) == 0)
		snprintf(buf, cap, "%s", LLAMA31_DATE);
}

int chat_format(enum chat_template t, const struct chat_msg *msgs, size_t n, bool add_generation_prompt,
		char **out, size_t *out_len, struct sam_error *err)
{
	int role_buf[16];
	int *role = role_buf;
	struct sbuf b = { 0 };
	int rc = 0;

	*out = NULL;
	if (out_len) *out_len = 0;
	if ((unsigned)t >= CHAT_TEMPLATE_COUNT) return sam_errorf(err, SAM_EINVAL, "unknown chat template %d", (int)t);
	if (n > 0 && !msgs) return sam_errorf(err, SAM_EINVAL, "no messages");
	if (n > sizeof role_buf / sizeof role_buf[0]) {
		if (n > CHAT_MAX_OUTPUT / sizeof *role) return sam_errorf(err, SAM_ERANGE, "%zu messages", n);
		role = malloc(n * sizeof *role);
		if (!role) return sam_errorf(err, SAM_ENOMEM, "out of memory for %zu messages", n);
	}
	for (size_t i = 0; i < n; i++) {
		const char *r = msgs[i].role;
		if (!r || !msgs[i].content) {
			rc = sam_errorf(err, SAM_EINVAL, "message %zu has no %s", i, r ? "content" : "role");
			goto out;
		}
		if (!strcmp(r, "system")) {
			role[i] = ROLE_SYSTEM;
		} else if (!strcmp(r, "user")) {
			role[i] = ROLE_USER;
		} else if (!strcmp(r, "assistant")) {
			role[i] = ROLE_ASSISTANT;
		} else {
			rc = sam_errorf(err, SAM_EINVAL,
					"message %zu: unknown role '%.64s' (system, user or assistant)", i, r);
			goto out;
		}
		if (i > 0 && role[i] == ROLE_SYSTEM && system_only_first(t)) {
			rc = sam_errorf(err, SAM_EINVAL,
					"message %zu: the %s chat template allows a system message only first", i,
					chat_template_name(t));
			goto out;
		}
	}

	struct conv c = { .m = msgs, .role = role, .n = n, .gen = add_generation_prompt };
	char date[32];
	sb_addn(&b, "", 0); /* an empty conversation still yields "" */
	switch (t) {
	case CHAT_CHATML: fmt_chatml(&b, &c, false); break;
	case CHAT_QWEN25: fmt_chatml(&b, &c, true); break;
	case CHAT_PHI4: fmt_phi4(&b, &c); break;
	case CHAT_LLAMA2: fmt_llama2(&b, &c); break;
	case CHAT_LLAMA3: fmt_llama3(&b, &c, NULL); break;
	case CHAT_LLAMA31: fmt_llama3(&b, &c, LLAMA31_DATE); break;
	case CHAT_LLAMA32:
		today(date, sizeof date);
		fmt_llama3(&b, &c, date);
		break;
	case CHAT_ZEPHYR: fmt_zephyr(&b, &c); break;
	case CHAT_PHI3: fmt_phi3(&b, &c); break;
	case CHAT_GEMMA: fmt_gemma(&b, &c); break;
	case CHAT_MISTRAL_LEGACY: fmt_mistral_legacy(&b, &c); break;
	case CHAT_MISTRAL_V1:
	case CHAT_MISTRAL_V3:
	case CHAT_MISTRAL_V3_TEKKEN: fmt_mistral_v1_v3(&b, &c, t); break;
	case CHAT_MISTRAL_V7: fmt_mistral_v7(&b, &c, false); break;
	case CHAT_MISTRAL_V7_TEKKEN: fmt_mistral_v7(&b, &c, true); break;
	case CHAT_DEEPSEEK_R1: fmt_deepseek_r1(&b, &c); break;
	case CHAT_COMMAND_R: fmt_command_r(&b, &c); break;
	case CHAT_TEMPLATE_COUNT: break;
	}
	if (b.rc) {
		rc = b.rc == SAM_ENOMEM ? sam_errorf(err, SAM_ENOMEM, "out of memory formatting the chat")
					: sam_errorf(err, b.rc, "the formatted chat is longer than %u bytes",
						     CHAT_MAX_OUTPUT);
		free(b.p);
		goto out;
	}
	*out = b.p;
	if (out_len) *out_len = b.n;
out:
	if (role != role_buf) free(role);
	return rc;
}

int chat_tokenize(const struct sam_model *m, const struct chat_msg *msgs, size_t n, bool add_special, int32_t **ids,
		  size_t *n_ids, int32_t *stop_ids, int *n_stop, bool *known, struct sam_error *err)
{
	enum chat_template t = chat_template_for_model(m, known);
	char *text;
	size_t len;
	int rc = chat_format(t, msgs, n, true, &text, &len, err);
	if (rc) return rc;
	rc = tok_encode(&m->vocab, text, len, add_special, true, ids, n_ids, err);
	free(text);
	if (rc) return rc;
	/* chat_format leaves the template's leading BOS to the tokenizer: add it if that did not */
	if (add_special && chat_template_adds_bos(t) && !m->vocab.add_bos && m->vocab.bos >= 0 &&
	    (*n_ids == 0 || (*ids)[0] != m->vocab.bos)) {
		int32_t *grown = realloc(*ids, (*n_ids + 1) * sizeof **ids);
		if (!grown) {
			free(*ids);
			*ids = NULL;
			return sam_errorf(err, SAM_ENOMEM, "out of memory");
		}
		memmove(grown + 1, grown, *n_ids * sizeof *grown);
		grown[0] = m->vocab.bos;
		*ids = grown;
		(*n_ids)++;
	}
	*n_stop = 0;
	for (const char *const *s = chat_template_stops(t); *s && *n_stop < CHAT_MAX_STOP_IDS; s++) {
		int32_t id = tok_find(&m->vocab, *s, strlen(*s));
		if (id >= 0) stop_ids[(*n_stop)++] = id;
	}
	return 0;
}
