/*
 * test_chat.c - chat templates: every template file in
 * shared/models/templates/ is recognised as its family, each family
 * renders a conversation exactly as its jinja template does (expected
 * strings derived by hand from the templates, and checked against jinja2
 * with HF's settings), and `sam run --chat` on a real model.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sam/chat.h"
#include "sam/gguf.h"
#include "sam/gguf_write.h"
#include "sam/model.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------ */

/* chat_format that must succeed; the result is malloc'd. */
static char *fmt(enum chat_template t, const struct chat_msg *m, size_t n, bool gen)
{
	struct sam_error err = { 0 };
	char *out = NULL;
	size_t len = 0;
	int rc = chat_format(t, m, n, gen, &out, &len, &err);
	CHECKF(rc == 0, "chat_format(%s): %s", chat_template_name(t), err.msg);
	CHECK(out != NULL);
	CHECK_INT(len, strlen(out));
	return out;
}

static void check_fmt(enum chat_template t, const struct chat_msg *m, size_t n, bool gen, const char *want)
{
	char *got = fmt(t, m, n, gen);
	CHECKF(!strcmp(got, want), "%s:\n got: \"%s\"\nwant: \"%s\"", chat_template_name(t), got, want);
	free(got);
}

/* The conversation every family renders: system + user + assistant + user. The
 * whitespace around the system text and the answer shows which templates trim. */
static const struct chat_msg conv[] = {
	{ "system", "You are terse.\n" },
	{ "user", "Hello" },
	{ "assistant", " Hi there " },
	{ "user", "Who are you?" },
};
#define N_CONV (sizeof conv / sizeof conv[0])

#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

/* A copy of stories260K.gguf with extra metadata: a chat template (NULL: none)
 * and, when add_bos >= 0, tokenizer.ggml.add_bos_token. */
static void write_model(const char *path, const char *tmpl, int add_bos)
{
	struct sam_error err = { 0 };
	struct gguf_file f;
	struct gguf_writer w;
	CHECKF(gguf_open(&f, test_model("stories260K.gguf"), &err) == 0, "%s", err.msg);
	gguf_writer_init(&w);
	for (uint64_t i = 0; i < f.n_kv; i++) gguf_writer_copy_kv(&w, &f.kv[i]);
	if (tmpl) gguf_writer_set_str(&w, "tokenizer.chat_template", tmpl);
	if (add_bos >= 0) gguf_writer_set_bool(&w, "tokenizer.ggml.add_bos_token", add_bos != 0);
	for (uint64_t i = 0; i < f.n_tensors; i++) gguf_writer_copy_tensor(&w, &f.tensors[i]);
	CHECKF(gguf_writer_write(&w, path, &err) == 0, "%s", err.msg);
	gguf_writer_free(&w);
	gguf_close(&f);
}

/* `sam run -m MODEL --chat -p PROMPT -n N --temp 0 -t 1 -v [EXTRA]` (extra may be NULL). */
static void run_chat(struct test_proc *p, const char *model, const char *prompt, const char *n, const char *extra)
{
	const char *argv[] = { test_sam_bin(), "run", "-m", model, "--chat", "-p", prompt, "-n", n,
			       "--temp", "0", "-t", "1", "-v", extra, NULL };
	test_run(p, argv, 60);
}

/* The ids of `sam run -v`'s "prompt tokens:" line, as " 1 2 3 " (malloc'd). */
static char *prompt_tokens(const char *err)
{
	const char *s = strstr(err, "prompt tokens:");
	CHECKF(s != NULL, "no prompt tokens in: %s", err);
	s += strlen("prompt tokens:");
	size_t n = strcspn(s, "\n");
	char *line = malloc(n + 2);
	CHECK(line != NULL);
	memcpy(line, s, n);
	line[n] = ' ';
	line[n + 1] = '\0';
	return line;
}

/* ---- detection ---------------------------------------------------------- */

TEST(chat_detects_every_template_file)
{
	static const struct {
		const char *file;
		enum chat_template want;
	} files[] = {
		{ "CohereForAI-c4ai-command-r-plus-tool_use.jinja", CHAT_COMMAND_R },
		{ "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", CHAT_COMMAND_R },
		{ "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", CHAT_CHATML },
		{ "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", CHAT_CHATML },
		{ "Qwen-Qwen2.5-7B-Instruct.jinja", CHAT_QWEN25 },
		{ "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", CHAT_DEEPSEEK_R1 },
		{ "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", CHAT_DEEPSEEK_R1 },
		{ "fireworks-ai-llama-3-firefunction-v2.jinja", CHAT_LLAMA3 },
		{ "google-gemma-2-2b-it.jinja", CHAT_GEMMA },
		{ "llama-cpp-deepseek-r1.jinja", CHAT_DEEPSEEK_R1 },
		{ "meetkai-functionary-medium-v3.1.jinja", CHAT_LLAMA3 },
		{ "meetkai-functionary-medium-v3.2.jinja", CHAT_LLAMA3 },
		{ "meta-llama-Llama-3.1-8B-Instruct.jinja", CHAT_LLAMA31 },
		{ "meta-llama-Llama-3.2-3B-Instruct.jinja", CHAT_LLAMA32 },
		{ "meta-llama-Llama-3.3-70B-Instruct.jinja", CHAT_LLAMA31 },
		{ "microsoft-Phi-3.5-mini-instruct.jinja", CHAT_PHI3 },
		{ "mistralai-Mistral-Nemo-Instruct-2407.jinja", CHAT_MISTRAL_V3_TEKKEN },
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char name[256];
		snprintf(name, sizeof name, "templates/%s", files[i].file);
		size_t len;
		char *text = test_read_file(test_model(name), &len);
		CHECKF(text != NULL, "cannot read %s", name);
		bool known = false;
		enum chat_template t = chat_template_detect(text, len, &known);
		CHECKF(known && t == files[i].want, "%s: detected %s (known %d), expected %s", files[i].file,
		       chat_template_name(t), known, chat_template_name(files[i].want));
		free(text);
	}
}

/* Official templates that have no file in shared/models/templates (quoted from the models'
 * tokenizer_config.json, as in llama.cpp's tests/test-chat-template.cpp). */
TEST(chat_detects_inline_templates)
{
	static const struct {
		const char *tmpl;
		enum chat_template want;
	} cases[] = {
		/* teknium/OpenHermes-2.5-Mistral-7B */
		{ "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
		  "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
		  "{% endif %}",
		  CHAT_CHATML },
		/* meta-llama/Llama-2-7b-chat-hf */
		{ "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message "
		  "= messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
		  "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
		  "{% if loop.index0 == 0 and system_message != false %}"
		  "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else "
		  "%}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + "
		  "'[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + "
		  "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
		  CHAT_LLAMA2 },
		/* mistralai/Mixtral-8x7B-Instruct-v0.1 (no system role) */
		{ "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
		  "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
		  "eos_token}}{% endif %}{% endfor %}",
		  CHAT_MISTRAL_LEGACY },
		/* mistralai cookbook "v1" */
		{ "{%- if loop.first and system_message is defined %}{{- ' [INST] ' + system_message + '\\n\\n' + "
		  "message['content'] + ' [/INST]' }}{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}",
		  CHAT_MISTRAL_V1 },
		/* Mistral-7B-Instruct-v0.3 / Large 2407 ("v3") */
		{ "{{- \"[AVAILABLE_TOOLS] [\" }}{{- \"[INST] \" + system_message + \"\\n\\n\" + "
		  "message[\"content\"] + \"[/INST]\" }}{{- \" \" + message[\"content\"]|trim + eos_token}}",
		  CHAT_MISTRAL_V3 },
		/* Mistral-Large-Instruct-2411 ("v7") */
		{ "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
		  "message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + "
		  "message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
		  "message['content'] + eos_token }}{% endif %}{% endfor %}",
		  CHAT_MISTRAL_V7 },
		/* Mistral-Small-3.1 ("v7-tekken") */
		{ "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}{{- '[INST]' + message['content'] + "
		  "'[/INST]' }}",
		  CHAT_MISTRAL_V7_TEKKEN },
		/* HuggingFaceH4/zephyr-7b-beta, TinyLlama-1.1B-Chat */
		{ "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
		  "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + "
		  "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
		  "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
		  "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
		  CHAT_ZEPHYR },
		/* Phi-3-mini (no system role) */
		{ "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}"
		  "{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}"
		  "{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\\n'}}{% endif %}"
		  "{% endfor %}",
		  CHAT_PHI3 },
		/* microsoft/phi-4 */
		{ "{% for message in messages %}{% if (message['role'] == 'system') %}"
		  "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}",
		  CHAT_PHI4 },
		/* google/gemma-7b-it */
		{ "{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
		  "'<end_of_turn>\\n' }}{% endfor %}",
		  CHAT_GEMMA },
		/* Meta-Llama-3-8B-Instruct */
		{ "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
		  "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
		  "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
		  "{{ content }}{% endfor %}{% if add_generation_prompt %}"
		  "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
		  CHAT_LLAMA3 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool known = false;
		enum chat_template t = chat_template_detect(cases[i].tmpl, strlen(cases[i].tmpl), &known);
		CHECKF(known && t == cases[i].want, "case %zu: detected %s (known %d), expected %s", i,
		       chat_template_name(t), known, chat_template_name(cases[i].want));
	}
}

TEST(chat_detect_defaults_and_names)
{
	bool known = false;
	CHECK(chat_template_detect(NULL, 0, &known) == CHAT_CHATML);
	CHECK(known);
	known = false;
	CHECK(chat_template_detect("", 0, &known) == CHAT_CHATML);
	CHECK(known);
	const char *odd = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
	known = true;
	CHECK(chat_template_detect(odd, strlen(odd), &known) == CHAT_CHATML);
	CHECK(!known);
	CHECK(chat_template_detect(odd, strlen(odd), NULL) == CHAT_CHATML); /* known may be NULL */
	/* only len bytes are looked at */
	const char *cut = "<|im_start|>";
	CHECK(chat_template_detect(cut, 5, &known) == CHAT_CHATML);
	CHECK(!known);
	/* every family by its name, and a stop list that ends */
	for (int i = 0; i < CHAT_TEMPLATE_COUNT; i++) {
		const char *name = chat_template_name((enum chat_template)i);
		CHECK(strcmp(name, "?") != 0);
		known = false;
		CHECKF(chat_template_detect(name, strlen(name), &known) == (enum chat_template)i && known, "%s", name);
		const char *const *stops = chat_template_stops((enum chat_template)i);
		CHECKF(stops && stops[0], "%s has no end-of-turn text", name);
	}
	CHECK_STR(chat_template_name(CHAT_TEMPLATE_COUNT), "?");
	CHECK_STR(chat_template_name(CHAT_LLAMA31), "llama3.1");
	CHECK_STR(chat_template_stops(CHAT_CHATML)[0], "<|im_end|>");
	CHECK_STR(chat_template_stops(CHAT_LLAMA3)[0], "<|eot_id|>");
	CHECK_STR(chat_template_stops(CHAT_PHI3)[0], "<|end|>");
	CHECK_STR(chat_template_stops(CHAT_GEMMA)[0], "<end_of_turn>");
	CHECK_STR(chat_template_stops(CHAT_ZEPHYR)[0], "</s>");
	CHECK_STR(chat_template_stops(CHAT_DEEPSEEK_R1)[0], DS_EOS);
	CHECK(chat_template_stops(CHAT_TEMPLATE_COUNT)[0] == NULL);
	CHECK(chat_template_adds_bos(CHAT_LLAMA3));
	CHECK(chat_template_adds_bos(CHAT_GEMMA));
	CHECK(!chat_template_adds_bos(CHAT_CHATML));
	CHECK(!chat_template_adds_bos(CHAT_PHI3));
}

TEST(chat_template_from_gguf_metadata)
{
	struct sam_error err = { 0 };
	struct gguf_file f;
	bool known = false;
	/* the phi-3 vocabulary carries Phi-3-mini's template */
	CHECKF(gguf_open(&f, test_model("vocab/ggml-vocab-phi-3.gguf"), &err) == 0, "%s", err.msg);
	CHECK(chat_template_for_gguf(&f, &known) == CHAT_PHI3);
	CHECK(known);
	gguf_close(&f);
	/* no template: ChatML */
	CHECKF(gguf_open(&f, test_model("vocab/ggml-vocab-llama-spm.gguf"), &err) == 0, "%s", err.msg);
	known = false;
	CHECK(chat_template_for_gguf(&f, &known) == CHAT_CHATML);
	CHECK(known);
	gguf_close(&f);
	/* a template that is not a string: unknown */
	struct gguf_writer w;
	void *buf;
	size_t size;
	gguf_writer_init(&w);
	gguf_writer_set_u32(&w, "tokenizer.chat_template", 7);
	CHECK(gguf_writer_to_mem(&w, &buf, &size, &err) == 0);
	CHECKF(gguf_open_mem(&f, buf, size, &err) == 0, "%s", err.msg);
	known = true;
	CHECK(chat_template_for_gguf(&f, &known) == CHAT_CHATML);
	CHECK(!known);
	gguf_close(&f);
	gguf_writer_free(&w);
	free(buf);
}

TEST(chat_template_for_a_loaded_model)
{
	struct sam_error err = { 0 };
	struct sam_model m;
	bool known = false;
	CHECKF(sam_model_load(&m, test_model("stories260K.gguf"), &err) == 0, "%s", err.msg);
	CHECK(chat_template_for_model(&m, &known) == CHAT_CHATML);
	CHECK(known);
	sam_model_free(&m);

	char path[512];
	snprintf(path, sizeof path, "%s/gemma.gguf", test_tmpdir());
	size_t len;
	char *tmpl = test_read_file(test_model("templates/google-gemma-2-2b-it.jinja"), &len);
	CHECK(tmpl != NULL);
	write_model(path, tmpl, -1);
	free(tmpl);
	CHECKF(sam_model_load(&m, path, &err) == 0, "%s", err.msg);
	known = false;
	CHECK(chat_template_for_model(&m, &known) == CHAT_GEMMA);
	CHECK(known);
	sam_model_free(&m);
}

/* ---- formatting: one conversation per family ---------------------------- */

TEST(chat_format_chatml_and_qwen)
{
	check_fmt(CHAT_CHATML, conv, N_CONV, true,
		  "<|im_start|>system\nYou are terse.\n<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
		  "<|im_start|>assistant\n Hi there <|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
		  "<|im_start|>assistant\n");
	check_fmt(CHAT_CHATML, conv + 1, 1, false, "<|im_start|>user\nHello<|im_end|>\n");
	check_fmt(CHAT_CHATML, NULL, 0, true, "<|im_start|>assistant\n");
	check_fmt(CHAT_CHATML, NULL, 0, false, "");
	/* Qwen2.5: the system message as given, or the template's default */
	check_fmt(CHAT_QWEN25, conv, N_CONV, true,
		  "<|im_start|>system\nYou are terse.\n<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
		  "<|im_start|>assistant\n Hi there <|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
		  "<|im_start|>assistant\n");
	check_fmt(CHAT_QWEN25, conv + 1, 3, true,
		  "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
		  "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n Hi there <|im_end|>\n"
		  "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n");
	/* a later system message is an ordinary turn in Qwen's template */
	const struct chat_msg late[] = { { "user", "a" }, { "system", "b" } };
	check_fmt(CHAT_QWEN25, late, 2, false,
		  "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
		  "<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n");
	/* Phi-4 */
	check_fmt(CHAT_PHI4, conv, N_CONV, true,
		  "<|im_start|>system<|im_sep|>You are terse.\n<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|>"
		  "<|im_start|>assistant<|im_sep|> Hi there <|im_end|><|im_start|>user<|im_sep|>Who are you?<|im_end|>"
		  "<|im_start|>assistant<|im_sep|>");
}

TEST(chat_format_llama)
{
	/* Llama 2: <<SYS>> in the first turn, strip(), BOS text on later turns only */
	check_fmt(CHAT_LLAMA2, conv, N_CONV, true,
		  "[INST] <<SYS>>\nYou are terse.\n\n<</SYS>>\n\nHello [/INST] Hi there </s>"
		  "<s>[INST] Who are you? [/INST]");
	check_fmt(CHAT_LLAMA2, conv + 1, 1, true, "[INST] Hello [/INST]");
	/* Llama 3: every content trimmed */
	check_fmt(CHAT_LLAMA3, conv, N_CONV, true,
		  "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
		  "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
		  "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
		  "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
		  "<|start_header_id|>assistant<|end_header_id|>\n\n");
	/* Llama 3.1 / 3.3: the system header with the template's default date */
	check_fmt(CHAT_LLAMA31, conv, N_CONV, true,
		  "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
		  "Today Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>"
		  "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
		  "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
		  "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
		  "<|start_header_id|>assistant<|end_header_id|>\n\n");
	/* ... written even without a system message */
	check_fmt(CHAT_LLAMA31, conv + 1, 1, false,
		  "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
		  "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
	/* Llama 3.2: today's date (strftime_now("%d %b %Y")); read the clock around the call */
	char before[32], after[32], want[2][512];
	time_t now = time(NULL);
	struct tm tm;
	strftime(before, sizeof before, "%d %b %Y", localtime_r(&now, &tm));
	char *got = fmt(CHAT_LLAMA32, conv, 2, true);
	now = time(NULL);
	strftime(after, sizeof after, "%d %b %Y", localtime_r(&now, &tm));
	for (int i = 0; i < 2; i++)
		snprintf(want[i], sizeof want[i],
			 "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
			 "Today Date: %s\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
			 "Hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
			 i ? after : before);
	CHECKF(!strcmp(got, want[0]) || !strcmp(got, want[1]), "got \"%s\"", got);
	free(got);
}

TEST(chat_format_phi3_zephyr_gemma)
{
	check_fmt(CHAT_PHI3, conv, N_CONV, true,
		  "<|system|>\nYou are terse.\n<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\n Hi there <|end|>\n"
		  "<|user|>\nWho are you?<|end|>\n<|assistant|>\n");
	/* without the generation prompt Phi-3.5 ends with its EOS; an empty system message is dropped */
	const struct chat_msg empty_sys[] = { { "system", "" }, { "user", "Hi" } };
	check_fmt(CHAT_PHI3, empty_sys, 2, false, "<|user|>\nHi<|end|>\n<|endoftext|>");

	check_fmt(CHAT_ZEPHYR, conv, N_CONV, true,
		  "<|system|>\nYou are terse.\n</s>\n<|user|>\nHello</s>\n<|assistant|>\n Hi there </s>\n"
		  "<|user|>\nWho are you?</s>\n<|assistant|>\n");
	check_fmt(CHAT_ZEPHYR, NULL, 0, true, "");

	/* Gemma: no system role; it joins the first user turn (llama.cpp's way), assistant is "model" */
	check_fmt(CHAT_GEMMA, conv, N_CONV, true,
		  "<start_of_turn>user\nYou are terse.\n\nHello<end_of_turn>\n"
		  "<start_of_turn>model\nHi there<end_of_turn>\n"
		  "<start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model\n");
	check_fmt(CHAT_GEMMA, conv, 1, false, "<start_of_turn>user\nYou are terse.<end_of_turn>\n");
}

TEST(chat_format_mistral)
{
	/* old Mistral/Mixtral template: no system role, so the system text leads the first turn */
	check_fmt(CHAT_MISTRAL_LEGACY, conv, N_CONV, true,
		  "[INST] You are terse.\n\nHello [/INST] Hi there </s>[INST] Who are you? [/INST]");
	/* v1: system in the first user turn */
	check_fmt(CHAT_MISTRAL_V1, conv, N_CONV, true,
		  " [INST] You are terse.\n\n\nHello [/INST]  Hi there </s> [INST] Who are you? [/INST]");
	/* v3 and v3-tekken (Nemo): system in the last user turn; v3 trims the answer */
	check_fmt(CHAT_MISTRAL_V3, conv, N_CONV, true,
		  "[INST] Hello[/INST] Hi there</s>[INST] You are terse.\n\n\nWho are you?[/INST]");
	check_fmt(CHAT_MISTRAL_V3_TEKKEN, conv, N_CONV, true,
		  "[INST]Hello[/INST] Hi there </s>[INST]You are terse.\n\n\nWho are you?[/INST]");
	/* ... and dropped when the conversation ends with an answer, as the template does */
	check_fmt(CHAT_MISTRAL_V3_TEKKEN, conv, 3, false, "[INST]Hello[/INST] Hi there </s>");
	/* v7 and v7-tekken: a system prompt of its own */
	check_fmt(CHAT_MISTRAL_V7, conv, N_CONV, true,
		  "[SYSTEM_PROMPT] You are terse.\n[/SYSTEM_PROMPT][INST] Hello[/INST]  Hi there </s>"
		  "[INST] Who are you?[/INST]");
	check_fmt(CHAT_MISTRAL_V7_TEKKEN, conv, N_CONV, true,
		  "[SYSTEM_PROMPT]You are terse.\n[/SYSTEM_PROMPT][INST]Hello[/INST] Hi there </s>"
		  "[INST]Who are you?[/INST]");
}

TEST(chat_format_deepseek_and_command_r)
{
	check_fmt(CHAT_DEEPSEEK_R1, conv, N_CONV, true,
		  "You are terse.\n" DS_USER "Hello" DS_ASSISTANT " Hi there " DS_EOS DS_USER "Who are you?"
		  DS_ASSISTANT "<think>\n");
	/* an answer keeps only what follows its last </think> */
	const struct chat_msg think[] = { { "user", "q" }, { "assistant", "<think>a</think>b</think> ok" } };
	check_fmt(CHAT_DEEPSEEK_R1, think, 2, false, DS_USER "q" DS_ASSISTANT " ok" DS_EOS);

	check_fmt(CHAT_COMMAND_R, conv, N_CONV, true,
		  "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are terse.\n<|END_OF_TURN_TOKEN|>"
		  "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|>"
		  "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|>"
		  "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you?<|END_OF_TURN_TOKEN|>"
		  "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
}

/* jinja's |trim is Python's str.strip(): Unicode whitespace goes too, other bytes stay */
TEST(chat_format_trims_like_python)
{
	const struct chat_msg m[] = {
		{ "user", "\xe3\x80\x80\xc2\xa0 hi\xe2\x80\x83\n\x1c" }, /* U+3000 U+00A0 ' ' hi U+2003 \n \x1c */
		{ "assistant", "\xc2\x85q\xe2\x81\x9f\xe2\x80\xa8" },    /* U+0085 q U+205F U+2028 */
		{ "user", "\xe2\x80\x8bz\xc2" },                         /* U+200B (not space) z, a lone byte */
	};
	check_fmt(CHAT_LLAMA3, m, 3, false,
		  "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
		  "<|start_header_id|>assistant<|end_header_id|>\n\nq<|eot_id|>"
		  "<|start_header_id|>user<|end_header_id|>\n\n\xe2\x80\x8bz\xc2<|eot_id|>");
	const struct chat_msg blank[] = { { "user", " \t\n" } };
	check_fmt(CHAT_GEMMA, blank, 1, false, "<start_of_turn>user\n<end_of_turn>\n");
}

TEST(chat_format_rejects_bad_input)
{
	struct sam_error err = { 0 };
	char *out = (char *)"untouched";
	const struct chat_msg tool[] = { { "user", "a" }, { "tool", "b" } };
	CHECK_INT(chat_format(CHAT_CHATML, tool, 2, true, &out, NULL, &err), SAM_EINVAL);
	CHECK(out == NULL);
	CHECK(strstr(err.msg, "tool") != NULL);
	const struct chat_msg null_content[] = { { "user", NULL } };
	CHECK_INT(chat_format(CHAT_CHATML, null_content, 1, true, &out, NULL, &err), SAM_EINVAL);
	const struct chat_msg null_role[] = { { NULL, "x" } };
	CHECK_INT(chat_format(CHAT_CHATML, null_role, 1, true, &out, NULL, &err), SAM_EINVAL);
	CHECK_INT(chat_format(CHAT_TEMPLATE_COUNT, conv, N_CONV, true, &out, NULL, &err), SAM_EINVAL);
	CHECK_INT(chat_format(CHAT_CHATML, NULL, 2, true, &out, NULL, &err), SAM_EINVAL);
	/* a system message after the first, where the template has no place for one */
	const struct chat_msg late[] = { { "user", "a" }, { "system", "b" }, { "user", "c" } };
	static const enum chat_template strict[] = { CHAT_LLAMA2, CHAT_GEMMA, CHAT_MISTRAL_LEGACY, CHAT_MISTRAL_V1,
						     CHAT_MISTRAL_V3, CHAT_MISTRAL_V3_TEKKEN, CHAT_COMMAND_R };
	for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) {
		CHECKF(chat_format(strict[i], late, 3, true, &out, NULL, &err) == SAM_EINVAL, "%s",
		       chat_template_name(strict[i]));
		CHECK(strstr(err.msg, "system") != NULL);
	}
	/* the others render it */
	for (int t = 0; t < CHAT_TEMPLATE_COUNT; t++) {
		bool is_strict = false;
		for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) is_strict |= (int)strict[i] == t;
		if (is_strict) continue;
		free(fmt((enum chat_template)t, late, 3, true));
	}
}

/* Many long messages: the buffer grows, the role table is allocated, nothing leaks (ASan). */
TEST(chat_format_long_conversations)
{
	enum { N = 101, LEN = 5000 };
	static struct chat_msg m[N];
	char *text = malloc(LEN + 1);
	CHECK(text != NULL);
	memset(text, 'x', LEN);
	text[LEN] = 0;
	m[0] = (struct chat_msg){ "system", "s" };
	for (int i = 1; i < N; i++) m[i] = (struct chat_msg){ i % 2 ? "user" : "assistant", text };
	for (int t = 0; t < CHAT_TEMPLATE_COUNT; t++) {
		char *out = fmt((enum chat_template)t, m, N, true);
		CHECKF(strlen(out) >= (size_t)(N - 1) * LEN, "%s: %zu bytes", chat_template_name(t), strlen(out));
		free(out);
	}
	free(text);
}

/* ---- sam run --chat ----------------------------------------------------- */

TEST(chat_run_stories_chatml_is_deterministic)
{
	struct test_proc a, b;
	const char *m = test_model("stories260K.gguf");
	test_run_sam(&a, 60, "run", "-m", m, "--chat", "-p", "Tell me a story.", "-n", "24", "--temp", "0", "-v", NULL);
	CHECKF(a.status == 0, "status %d, stderr: %s", a.status, a.err);
	CHECKF(a.out_len > 0, "no text; stderr: %s", a.err);
	CHECKF(strstr(a.err, "chat template chatml") != NULL, "stderr: %s", a.err);
	CHECK(strstr(a.err, "unrecognised") == NULL); /* no template is not an unknown one */
	run_chat(&b, m, "Tell me a story.", "24", NULL);
	CHECKF(b.status == 0, "status %d, stderr: %s", b.status, b.err);
	CHECK_STR(a.out, b.out);
	test_proc_free(&b);

	/* the prompt really is wrapped: more prompt tokens than without --chat, and --system adds more */
	struct test_proc plain, sys;
	test_run_sam(&plain, 60, "run", "-m", m, "-p", "Tell me a story.", "-n", "1", "--temp", "0", "-t", "1", "-v",
		     NULL);
	run_chat(&sys, m, "Tell me a story.", "1", "--system=Be kind.");
	CHECK_INT(plain.status, 0);
	CHECK_INT(sys.status, 0);
	const char *ta = strstr(a.err, "prompt tokens:"), *tp = strstr(plain.err, "prompt tokens:"),
		   *ts = strstr(sys.err, "prompt tokens:");
	CHECK(ta && tp && ts);
	CHECKF(strcspn(ta, "\n") > strcspn(tp, "\n") && strcspn(ts, "\n") > strcspn(ta, "\n"), "%s\n%s\n%s", tp, ta,
	       ts);
	test_proc_free(&a), test_proc_free(&plain), test_proc_free(&sys);

	/* the prompt from a file works the same */
	char path[512];
	snprintf(path, sizeof path, "%s/prompt.txt", test_tmpdir());
	test_write_file(path, "Tell me a story.", 16);
	test_run_sam(&a, 60, "run", "-m", m, "--chat", "-f", path, "-n", "24", "--temp", "0", "-t", "1", NULL);
	CHECKF(a.status == 0, "status %d, stderr: %s", a.status, a.err);
	test_run_sam(&b, 60, "run", "-m", m, "--chat", "-p", "Tell me a story.", "-n", "24", "--temp", "0", "-t", "1",
		     NULL);
	CHECK_STR(a.out, b.out);
	test_proc_free(&a), test_proc_free(&b);
}

TEST(chat_run_usage_and_templates)
{
	struct test_proc p;
	const char *m = test_model("stories260K.gguf");
	test_run_sam(&p, 10, "run", "-m", m, "-p", "hi", "--system", "x", NULL);
	CHECK_INT(p.status, 2);
	CHECK(strstr(p.err, "--chat") != NULL);
	test_proc_free(&p);
	test_run_sam(&p, 10, "run", "-m", m, "-p", "hi", "--chat", "--system", NULL);
	CHECK_INT(p.status, 2);
	test_proc_free(&p);
	test_run_sam(&p, 10, "run", "--help", NULL);
	CHECK_INT(p.status, 0);
	CHECK(strstr(p.out, "--chat") && strstr(p.out, "--system"));
	test_proc_free(&p);

	/* a Zephyr/TinyLlama template: its "</s>" text must become the EOS token (id 2) */
	char path[512];
	snprintf(path, sizeof path, "%s/zephyr.gguf", test_tmpdir());
	write_model(path,
		    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
		    "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ "
		    "'<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and "
		    "add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
		    -1);
	run_chat(&p, path, "Lily", "8", NULL);
	CHECKF(p.status == 0, "status %d, stderr: %s", p.status, p.err);
	CHECKF(strstr(p.err, "chat template zephyr") != NULL, "stderr: %s", p.err);
	char *ids = prompt_tokens(p.err);
	CHECKF(!strncmp(ids, " 1 ", 3) && strstr(ids + 2, " 2 ") != NULL, "prompt tokens:%s", ids);
	free(ids);
	test_proc_free(&p);

	/* an unknown template: a warning, ChatML, and still an answer */
	snprintf(path, sizeof path, "%s/odd.gguf", test_tmpdir());
	write_model(path, "{% for m in messages %}### {{ m['content'] }}\n{% endfor %}", -1);
	run_chat(&p, path, "Lily", "8", NULL);
	CHECKF(p.status == 0, "status %d, stderr: %s", p.status, p.err);
	CHECKF(strstr(p.err, "unrecognised chat template") != NULL, "stderr: %s", p.err);
	CHECK(strstr(p.err, "chat template chatml") != NULL);
	test_proc_free(&p);
}

/* The prompt starts with exactly one BOS (id 1), or with none. */
static void check_first_ids(const char *err, bool bos)
{
	char *ids = prompt_tokens(err);
	if (bos)
		CHECKF(!strncmp(ids, " 1 ", 3) && strncmp(ids, " 1 1 ", 5), "prompt tokens:%s", ids);
	else
		CHECKF(strncmp(ids, " 1 ", 3), "prompt tokens:%s", ids);
	free(ids);
}

/* BOS comes from the tokenizer; when it adds none, a template that starts with BOS gets it by id. */
TEST(chat_run_bos_once)
{
	struct test_proc p;
	char path[512];
	const char *llama3 = "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}";
	/* add_bos on: exactly one BOS at the start */
	snprintf(path, sizeof path, "%s/bos.gguf", test_tmpdir());
	write_model(path, llama3, 1);
	run_chat(&p, path, "Lily", "1", NULL);
	CHECKF(p.status == 0, "status %d, stderr: %s", p.status, p.err);
	check_first_ids(p.err, true);
	test_proc_free(&p);
	/* add_bos off: the Llama 3 template still gets its BOS */
	snprintf(path, sizeof path, "%s/nobos.gguf", test_tmpdir());
	write_model(path, llama3, 0);
	run_chat(&p, path, "Lily", "1", NULL);
	CHECKF(p.status == 0, "status %d, stderr: %s", p.status, p.err);
	check_first_ids(p.err, true);
	test_proc_free(&p);
	/* ... unless --no-bos */
	run_chat(&p, path, "Lily", "1", "--no-bos");
	CHECKF(p.status == 0, "status %d, stderr: %s", p.status, p.err);
	check_first_ids(p.err, false);
	test_proc_free(&p);
	/* ChatML has no BOS of its own: none is added */
	snprintf(path, sizeof path, "%s/chatml.gguf", test_tmpdir());
	write_model(path, "<|im_start|>", 0);
	run_chat(&p, path, "Lily", "1", NULL);
	CHECKF(p.status == 0, "status %d, stderr: %s", p.status, p.err);
	check_first_ids(p.err, false);
	test_proc_free(&p);
}
