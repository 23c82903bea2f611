/*
 * chat.h - chat templates without a jinja interpreter.
 *
 * A model's GGUF carries its prompt format as a jinja program
 * ("tokenizer.chat_template"). Instead of interpreting jinja we recognise
 * the template's family by its markers (as llama.cpp's
 * llm_chat_detect_template does) and render that family in C. For plain
 * conversations (system / user / assistant text) the output is byte for
 * byte what the family's reference template renders with HF transformers'
 * settings (trim_blocks, lstrip_blocks) and its default variables; the
 * references are the templates in shared/models/templates/ (and, for the
 * families without a file there, the official templates quoted in
 * llama.cpp's tests/test-chat-template.cpp). Where llama.cpp's built-in
 * formatter (llm_chat_apply_template) differs from the jinja we follow
 * the jinja; see each family below.
 *
 * BOS: templates that begin with {{ bos_token }} are rendered WITHOUT that
 * leading BOS text. Tokenize the result with add_special = true so the BOS
 * comes from the tokenizer's add_bos flag, and add it by id yourself only
 * when chat_template_adds_bos() says the template wants one and the
 * tokenizer will not (see cmd_run.c). A BOS inside the history (Llama 2's
 * "<s>[INST]" on later turns) stays as text: tokenize with
 * parse_special = true. Other special tokens the templates write as text
 * ("<|im_end|>", "[INST]", ...) need parse_special too.
 *
 * Leniency: templates raise an exception on conversations they do not
 * accept (roles that do not alternate, a system message where none is
 * allowed). We do not check alternation, we render what we are given;
 * a system message that is not the first message is SAM_EINVAL for the
 * families that have no place for one (noted below). Gemma has no system
 * role at all: a leading system message is merged into the first user turn
 * as llama.cpp does (see CHAT_GEMMA).
 *
 * Tool calling is not rendered: the *tool_use templates (Hermes, Command-R,
 * functionary, firefunction) are recognised as their base family and
 * rendered as a plain conversation, without their tool preambles.
 */
#ifndef SAM_CHAT_H
#define SAM_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sam/core.h"
#include "sam/gguf.h"

struct sam_model;

/*
 * Families. In the examples S, U, A are the contents of a system, user and
 * assistant message, trim() is jinja's |trim (Python str.strip(): Unicode
 * whitespace at both ends), EOS is the family's end-of-sequence text.
 */
enum chat_template {
	/* "<|im_start|>ROLE\nC<|im_end|>\n" per message; "<|im_start|>assistant\n". The default. */
	CHAT_CHATML,
	/* Qwen2.5: ChatML, and with no leading system message the template's default
	 * "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." */
	CHAT_QWEN25,
	/* Llama 2 (meta-llama/Llama-2-*-chat): "[INST] <<SYS>>\nS\n<</SYS>>\n\ntrim(U) [/INST] trim(A) </s>"
	 * and later turns "<s>[INST] trim(U) [/INST]". System only first. (llama.cpp's built-in
	 * "llama2-sys*" variants differ in the spaces around the answer; we follow the template.) */
	CHAT_LLAMA2,
	/* Llama 3(.0): "<|start_header_id|>ROLE<|end_header_id|>\n\ntrim(C)<|eot_id|>". */
	CHAT_LLAMA3,
	/* Llama 3.1 / 3.3: a system header is always written, "Cutting Knowledge Date: December
	 * 2023\nToday Date: 26 Jul 2024\n\n" + trim(S) (the template's default date_string). */
	CHAT_LLAMA31,
	/* Llama 3.2: as 3.1, but the template takes the date from strftime_now("%d %b %Y"),
	 * which HF transformers and llama.cpp define: today's local date. */
	CHAT_LLAMA32,
	/* Zephyr / TinyLlama-Chat: "<|ROLE|>\nC</s>\n"; "<|assistant|>\n" (after the last message
	 * only: nothing for an empty conversation). EOS is taken to be "</s>". Other templates with
	 * bare <|user|>/<|assistant|> markers (Falcon 3) are taken for Zephyr too. */
	CHAT_ZEPHYR,
	/* Phi-3.5: "<|ROLE|>\nC<|end|>\n" (an empty system message is dropped); "<|assistant|>\n",
	 * or without the generation prompt EOS "<|endoftext|>". Phi-3-mini's older template (no
	 * system role, "<|assistant|>\n" after every user turn) is rendered the Phi-3.5 way. */
	CHAT_PHI3,
	/* Phi-4: "<|im_start|>ROLE<|im_sep|>C<|im_end|>"; "<|im_start|>assistant<|im_sep|>".
	 * (Phi-4's first template wrote the assistant header after every user turn and had no
	 * add_generation_prompt: the same text whenever user and assistant alternate.) */
	CHAT_PHI4,
	/* Gemma / Gemma 2: "<start_of_turn>ROLE\ntrim(C)<end_of_turn>\n", assistant is "model".
	 * The template refuses a system role; like llama.cpp's built-in we merge a leading system
	 * message into the first user turn as trim(S) + "\n\n" + U. System only first. */
	CHAT_GEMMA,
	/* Old Mistral-7B-Instruct-v0.1/v0.2 / Mixtral template (no system role):
	 * "[INST] U [/INST]A</s>"; a leading system message is prepended as S + "\n" + U
	 * (what llama.cpp does, built-in and jinja alike). System only first. */
	CHAT_MISTRAL_LEGACY,
	/* Mistral "v1" (mistralai cookbook): " [INST] S\n\nU [/INST] A</s>", system in the first
	 * user turn. System only first. */
	CHAT_MISTRAL_V1,
	/* Mistral "v3" (7B v0.3, Large 2407): "[INST] U[/INST] trim(A)</s>"; the system message goes
	 * into the LAST user turn as the template does ("S\n\nU"), and is dropped when the last
	 * message is not a user message. (llama.cpp's built-in puts it in the first turn.) */
	CHAT_MISTRAL_V3,
	/* Mistral "v3-tekken" (Nemo 2407): "[INST]U[/INST]A</s>", system as in v3. */
	CHAT_MISTRAL_V3_TEKKEN,
	/* Mistral "v7" (Large 2411): "[SYSTEM_PROMPT] S[/SYSTEM_PROMPT][INST] U[/INST] A</s>". */
	CHAT_MISTRAL_V7,
	/* Mistral "v7-tekken" (Small 3.x): "[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]U[/INST]A</s>".
	 * Simplification: Mistral Small's default system prompt (which embeds today's date) is
	 * not written when the conversation has none. */
	CHAT_MISTRAL_V7_TEKKEN,
	/* DeepSeek-R1 distills: the last system message's text first, then "<｜User｜>U",
	 * "<｜Assistant｜>A<｜end▁of▁sentence｜>" (A after its last "</think>"),
	 * "<｜Assistant｜><think>\n". (llama.cpp's rewrite, llama-cpp-deepseek-r1.jinja, also
	 * ends user turns with <｜end▁of▁sentence｜>; we render the models' own template.) */
	CHAT_DEEPSEEK_R1,
	/* Command-R: "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>S<|END_OF_TURN_TOKEN|>", user and
	 * CHATBOT turns with trim(C); "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>". System only first. */
	CHAT_COMMAND_R,
	CHAT_TEMPLATE_COUNT
};

/* One message. role is "system", "user" or "assistant"; both strings NUL-terminated. */
struct chat_msg {
	const char *role;
	const char *content;
};

/*
 * The family of a jinja chat template tmpl[0..len). NULL or empty: CHAT_CHATML
 * with *known = true (llama.cpp's default too). A family name as returned by
 * chat_template_name() selects that family. Unrecognised: CHAT_CHATML with
 * *known = false, so the caller can warn. known may be NULL.
 */
enum chat_template chat_template_detect(const char *tmpl, size_t len, bool *known);

/* Short name of a family ("chatml", "llama3.1", "mistral-v3-tekken", ...); "?" if out of range. */
const char *chat_template_name(enum chat_template t);

/* The family of the template in a GGUF's "tokenizer.chat_template" (absent: ChatML, known). */
enum chat_template chat_template_for_gguf(const struct gguf_file *f, bool *known);
/* The same for a loaded model. */
enum chat_template chat_template_for_model(const struct sam_model *m, bool *known);

/* True when the family's template begins with {{ bos_token }} (text we leave out). */
bool chat_template_adds_bos(enum chat_template t);

/*
 * End-of-turn texts of the family, a NULL-terminated static list, so a
 * generator can stop on them even when the tokenizer does not mark them as
 * end-of-generation (e.g. "<|im_end|>", "<|eot_id|>", "<end_of_turn>").
 */
const char *const *chat_template_stops(enum chat_template t);

/* Upper bound of a formatted prompt (SAM_ERANGE beyond it). */
#define CHAT_MAX_OUTPUT (256u << 20)

/*
 * Render msgs[0..n) with template family t; with add_generation_prompt the
 * prompt ends where the assistant's answer begins. On success *out is a
 * malloc'd NUL-terminated string (caller frees) of *out_len bytes (out_len
 * may be NULL). Errors: SAM_EINVAL for a bad role, a NULL string, a family
 * out of range or a system message where the family has none; SAM_ENOMEM;
 * SAM_ERANGE past CHAT_MAX_OUTPUT. On failure *out is NULL.
 */
int chat_format(enum chat_template t, const struct chat_msg *msgs, size_t n, bool add_generation_prompt,
		char **out, size_t *out_len, struct sam_error *err);

/*
 * A conversation as the model's input: format msgs with the model's
 * template (add_generation_prompt), tokenize with special tokens parsed,
 * and add BOS when the template starts with it but the tokenizer will not
 * (unless !add_special). stop_ids (capacity CHAT_MAX_STOP_IDS) receives the
 * template's end-of-turn tokens that exist in the vocabulary, which a
 * generator must treat as end of generation. *ids is malloc'd (caller frees).
 * *known is false when the model's template was not recognised.
 */
#define CHAT_MAX_STOP_IDS 8
int chat_tokenize(const struct sam_model *m, const struct chat_msg *msgs, size_t n, bool add_special, int32_t **ids,
		  size_t *n_ids, int32_t *stop_ids, int *n_stop, bool *known, struct sam_error *err);

#endif
