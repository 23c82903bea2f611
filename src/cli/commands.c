/* commands.c - the subcommand table and the helpers every command uses. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/core.h"

const struct sam_cmd sam_commands[] = {
	{ "run", cmd_run, "generate text from a GGUF model",
	  "usage: sam run -m MODEL.gguf -p PROMPT [options]\n"
	  "\n"
	  "Generate a continuation of PROMPT. The continuation goes to stdout,\n"
	  "timings to stderr.\n"
	  "\n"
	  "  -m, --model FILE        GGUF model (required)\n"
	  "  -p, --prompt TEXT       prompt text (or -f FILE)\n"
	  "  -f, --file FILE         read the prompt from FILE\n"
	  "      --chat              make the prompt a user message in the model's chat template\n"
	  "                          (ChatML when the model has none) and answer it\n"
	  "      --system TEXT       with --chat: a system message before the prompt\n"
	  "  -n, --n-predict N       tokens to generate (default 128; -1 = until EOS or context end)\n"
	  "  -c, --ctx-size N        context length (default: max(model context, prompt + N))\n"
	  "      --temp T            temperature (default 0.8; 0 = greedy)\n"
	  "      --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"
	  "      --top-p P           nucleus sampling (default 0.95; 1 = off)\n"
	  "      --min-p P           drop tokens below P x the top probability (default 0.05; 0 = off)\n"
	  "      --repeat-penalty R  penalise recent tokens (default 1.0 = off)\n"
	  "      --repeat-last-n N   window of the penalty (default 64)\n"
	  "      --seed S            random seed (default: from the clock)\n"
	  "  -t, --threads N         threads (default: number of cores)\n"
	  "      --no-bos            do not add BOS even if the model asks for it\n"
	  "      --ignore-eos        keep generating after end-of-sequence\n"
	  "      --lora FILE         apply a LoRA adapter (llama.cpp GGUF format) made for this model\n"
	  "      --lora-scale S      its scale (default 1; 0 = off; alpha/rank is applied on top)\n"
	  "  -v, --verbose           print the prompt tokens and model details to stderr\n" },
	{ "api", cmd_api, "serve chat, streaming and OpenAI-compatible endpoints (the hub)",
	  "usage: sam api [--host ADDR] [--port N] [-m MODEL.gguf] [--small-model MODEL.gguf] [--api-key KEY]\n"
	  "               [--slots N] [-c CTX] [-t THREADS] [--queue N]\n"
	  "\n"
	  "Serve the api hub on http://127.0.0.1:8765 (see docs/api.md).\n"
	  "\n"
	  "  --host ADDR          listen address (default 127.0.0.1; config [api] host)\n"
	  "  --port N             port (default 8765; 0 = any free port)\n"
	  "  -m, --model FILE     model (else $SAM_MODEL, [api] model, the first *.gguf in $SAM_HOME/models)\n"
	  "  --small-model FILE   model used when memory is LOW ([api] small_model)\n"
	  "  --api-key KEY        require 'Authorization: Bearer KEY' (or $SAM_API_KEY, [api] api_key)\n"
	  "  --slots N            requests decoded together (default 4)\n"
	  "  -c, --ctx-size N     context per request (default: the model's, at most 4096)\n"
	  "  -t, --threads N      engine threads (default: all cores)\n"
	  "  --queue N            waiting requests before 503 (default 16)\n"
	  "  --port-file FILE     write the port here once listening\n" },
	{ "chat", cmd_chat, "chat with SAM in the terminal (through the api)",
	  "usage: sam chat [--session ID] [--max-tokens N] [--temperature T]\n"
	  "\n"
	  "Talk with SAM: each line you type is a message, and the answer streams\n"
	  "back as it is generated. The conversation is one session of the api, so\n"
	  "SAM remembers it; the session id is printed to stderr when it starts.\n"
	  "With stdin not a terminal, each input line is a message, no prompt is\n"
	  "shown and stdout holds only the answers.\n"
	  "\n"
	  "  --session ID        continue the session ID (default: a new one)\n"
	  "  --max-tokens N      longest answer in tokens (default: the api's)\n"
	  "  --temperature T     0 = greedy .. 2 (default: the api's, 0.7)\n"
	  "\n"
	  "Commands: /reset starts a new session, /help, /quit (or Ctrl-D).\n"
	  "Ctrl-C stops an answer; at the prompt it leaves.\n"
	  "The api is found at $SAM_API_URL, else $SAM_HOME/run/services.json,\n"
	  "else http://127.0.0.1:8765; $SAM_API_KEY is sent as a Bearer token.\n" },
	{ "ask", cmd_ask, "ask SAM one question and print the answer",
	  "usage: sam ask [--session ID] [--max-tokens N] [--temperature T] [--no-stream] [--] QUESTION...\n"
	  "       sam ask [options] [-] < FILE\n"
	  "\n"
	  "Print SAM's answer to QUESTION (the words joined by spaces; read from\n"
	  "stdin when QUESTION is - or absent and stdin is not a terminal). The\n"
	  "answer streams to stdout as it is generated and ends with a newline;\n"
	  "errors go to stderr with status 1.\n"
	  "\n"
	  "  --session ID        ask within the session ID (default: a new one)\n"
	  "  --max-tokens N      longest answer in tokens (default: the api's)\n"
	  "  --temperature T     0 = greedy .. 2 (default: the api's, 0.7)\n"
	  "  --no-stream         wait for the whole answer (POST /api/chat)\n"
	  "\n"
	  "The api is found at $SAM_API_URL, else $SAM_HOME/run/services.json,\n"
	  "else http://127.0.0.1:8765; $SAM_API_KEY is sent as a Bearer token.\n" },
	{ "perplexity", cmd_perplexity, "measure a model's perplexity on a text (like llama-perplexity)",
	  "usage: sam perplexity -m MODEL.gguf -f TEXT [-c CTX] [-b BATCH] [-t THREADS] [--chunks N]\n"
	  "                      [--lora FILE [--lora-scale S]]\n"
	  "\n"
	  "Tokenize TEXT once, cut it into whole chunks of CTX tokens (default 512; the\n"
	  "first token of each replaced by BOS when the model adds one), evaluate each\n"
	  "from an empty cache and score the second half of each chunk, as\n"
	  "llama-perplexity does. Prints the running estimate per chunk and the final\n"
	  "PPL with its standard error. --lora FILE applies a LoRA adapter (scale S,\n"
	  "default 1), to measure its effect.\n" },
	{ "bench", cmd_bench, "measure prompt and generation tokens/s (like llama-bench)",
	  "usage: sam bench -m MODEL.gguf [-p N] [-n N] [-r REPS] [-t THREADS] [--seqs S] [--json] [--bandwidth]\n"
	  "\n"
	  "Measure prompt processing (pp: N prompt tokens from an empty cache, in\n"
	  "batches of up to 512) and generation (tg: N tokens decoded one at a time\n"
	  "after BOS) in tokens/s, like llama-bench: random valid token ids from a\n"
	  "fixed seed, one warm-up run, then REPS runs; mean +/- standard deviation.\n"
	  "Prints a markdown table like llama-bench's and the peak RSS.\n"
	  "\n"
	  "  -m, --model FILE        GGUF model (required)\n"
	  "  -p, --n-prompt N        prompt tokens (default 128; 0 = no pp test)\n"
	  "  -n, --n-gen N           generated tokens (default 64; 0 = no tg test)\n"
	  "  -r, --repetitions N     runs of each test (default 3)\n"
	  "  -t, --threads N         threads (default: number of cores)\n"
	  "      --seqs S            tg decodes S sequences together, one token each per\n"
	  "                          step (continuous batching, as the api; default 1);\n"
	  "                          tokens/s counts the tokens of all S\n"
	  "      --json              print a JSON array (llama-bench's field names) instead\n"
	  "      --bandwidth         first measure memory bandwidth with a STREAM triad on as\n"
	  "                          many threads, and report tg against the bandwidth limit\n"
	  "                          (bandwidth / bytes of weights read per token)\n"
	  "      --bandwidth-mib N   size of each triad array (default 256; implies --bandwidth)\n" },
	{ "synth", cmd_synth, "write a random-weight model of a real shape (for speed work)",
	  "usage: sam synth --preset NAME [--arch llama|qwen2] [--type TYPE] [--vocab-from VOCAB.gguf] [--seed S] -o OUT.gguf\n"
	  "       sam synth --list\n"
	  "\n"
	  "Write a deterministic random-weight GGUF of a real model's shape. TYPE is\n"
	  "f32, f16 (default), q8_0, q4_0, q4_k_m or q6_k, with llama-quantize's rules\n"
	  "for which tensor gets which type. --vocab-from copies the tokenizer of a\n"
	  "vocabulary GGUF (its size wins over the preset's); without it a\n"
	  "SentencePiece-type vocabulary of the preset's size is made up. Memory use\n"
	  "stays small whatever the model size.\n" },
	{ "tokenize", cmd_tokenize, "print the token ids of a text",
	  "usage: sam tokenize -m MODEL.gguf [--no-bos] [--parse-special] [-f FILE | TEXT]\n"
	  "\n"
	  "Print the token ids of TEXT (or of FILE's contents), space-separated on\n"
	  "one line. BOS is added when the model's metadata asks for it, unless\n"
	  "--no-bos. Special-token text such as <s> is only recognised with\n"
	  "--parse-special.\n" },
	{ "gguf", cmd_gguf, "print a GGUF file's metadata and tensor table",
	  "usage: sam gguf [--all] FILE.gguf\n"
	  "\n"
	  "Print the header, every metadata key with its type and value, and the\n"
	  "tensor table. Long arrays and strings are abbreviated unless --all.\n" },
	{ "pull", cmd_pull, "download a GGUF model into $SAM_HOME/models",
	  "usage: sam pull [NAME | URL] [--sha256 HEX] [-o FILE] [--force]\n"
	  "       sam pull --list\n"
	  "\n"
	  "Download a GGUF model into $SAM_HOME/models (default ~/.local/share/sam/models).\n"
	  "NAME is a model of the built-in catalogue (see --list; default: tinyllama);\n"
	  "URL is the http(s) URL of any GGUF file. The download goes to FILE.part and\n"
	  "is resumed by running the same command again; size and sha256 are checked\n"
	  "when known, and a file that fails the check is deleted.\n"
	  "\n"
	  "  -o, --output FILE   save as FILE (a name without '/' goes into $SAM_HOME/models)\n"
	  "      --sha256 HEX    check the file's SHA-256 (instead of the catalogue's)\n"
	  "      --force         download again even if the file is already there\n"
	  "      --list          list the catalogue and which models are present\n"
	  "\n"
	  "Offline? Use a GGUF file you have directly: sam run -m FILE, SAM_MODEL=FILE,\n"
	  "or copy it into $SAM_HOME/models/. See docs/models.md.\n" },
	{ "learn", cmd_learn, "turn files into training examples; show what the store holds",
	  "usage: sam learn add [--chunk-chars N] FILE|DIR...\n"
	  "       sam learn stats\n"
	  "       sam learn watch [--port P] [--port-file F] [--chunk-chars N] [DIR...]\n"
	  "       sam learn curriculum [--streams N] [--port P] [--port-file F] [--file FILE]\n"
	  "                            [--interval S] [--samples K] [--backoff-max S]\n"
	  "\n"
	  "add: ingest files into the example store ($SAM_HOME/sam.db), directories\n"
	  "recursively (names starting with '.' are left out). .jsonl files hold one\n"
	  "chat example per line, in OpenAI {\"messages\":[...]} or ShareGPT\n"
	  "{\"conversations\":[...]} form, or {\"text\":...}; .json files one example\n"
	  "or an array; any other UTF-8 text file becomes text examples of about N\n"
	  "characters (default 2000), cut between paragraphs. Every example is stored\n"
	  "once, however often it is added; a file already ingested unchanged is\n"
	  "skipped. Rejected lines are reported with their line numbers and the good\n"
	  "ones kept; the exit status is 1 when anything was rejected.\n"
	  "\n"
	  "stats: examples by kind, source and category; files ingested; examples\n"
	  "waiting for training; the last training run.\n"
	  "\n"
	  "watch: ingest what appears in DIRs (default $SAM_HOME/inbox and the [learn]\n"
	  "watch_dirs of sam.conf, a colon-separated list), subdirectories included,\n"
	  "as `learn add` would, once a file has been quiet for a moment. Files are\n"
	  "remembered in sam.db, so a restart neither loses nor repeats work. After a\n"
	  "batch, when [train] min_new_examples (default 200) wait and memory allows,\n"
	  "it starts a training (through the supervisor when one runs). GET /health on\n"
	  "127.0.0.1:P (default 8768) reports its counters.\n"
	  "\n"
	  "curriculum: N self-practice streams (default 2) ask the api the questions of\n"
	  "the curriculum (built in, plus FILE: JSONL of {\"question\", \"reference\"?,\n"
	  "\"category\"?}), grade the answers against the reference, or by agreement of\n"
	  "K samples (default 3) where there is none, and keep the good ones as\n"
	  "examples; S seconds between tasks per stream (default 30). While the api is\n"
	  "down each stream backs off (up to --backoff-max, default 300 s) and keeps its\n"
	  "task; progress is kept in sam.db across restarts. GET /health on\n"
	  "127.0.0.1:P (default 8769) reports per-category success.\n" },
	{ "dataset", cmd_dataset, "export the training examples as train/valid JSONL",
	  "usage: sam dataset export --out DIR [--valid-fraction F]\n"
	  "\n"
	  "Write DIR/train.jsonl and DIR/valid.jsonl (each replaced atomically): every\n"
	  "stored example on one line, chat examples as {\"messages\":[...]}, text\n"
	  "examples as {\"text\":...}, ordered by hash. An example goes to valid.jsonl\n"
	  "when its hash falls in the first F of the hash space (default 0.1), so the\n"
	  "split depends only on the example: two exports of the same store are\n"
	  "byte-identical, and new examples never move old ones between the files.\n" },
	{ "train", cmd_train, "fine-tune a LoRA adapter on the stored examples and deploy it if it is better",
	  "usage: sam train [--model FILE] [--data DIR] [--rank R] [--alpha A] [--targets LIST]\n"
	  "                 [--lr LR] [--epochs E | --steps N] [--batch B] [--ctx C] [--threads T]\n"
	  "                 [--checkpoint-every K] [--max-mem MB] [--seed S] [--valid-fraction F]\n"
	  "                 [--min-improvement M] [--no-deploy | --auto-deploy] [--resume[=RUN]]\n"
	  "                 [--export-only]\n"
	  "\n"
	  "Take the machine-wide training lock ($SAM_HOME/run/training.lock; if another\n"
	  "training holds it, say so and exit 3), record a run in sam.db, export the\n"
	  "examples into $SAM_HOME/data/runs/<id>/ (train.jsonl, valid.jsonl; F of them\n"
	  "for validation, default 0.1) - or use DIR's train.jsonl/valid.jsonl - and\n"
	  "train a LoRA adapter of the model the api serves (or FILE) on them.\n"
	  "\n"
	  "  --rank R, --alpha A   adapter rank (8) and alpha (16): the update is alpha/R * B.A\n"
	  "  --targets LIST        projections to adapt: q,k,v,o,gate,up,down, attn, mlp, all (all)\n"
	  "  --lr LR               peak learning rate (2e-4): warm-up, then cosine decay to LR/10\n"
	  "  --epochs E, --steps N passes over the data (1), or optimiser steps\n"
	  "  --batch B, --ctx C    sequences per step (4); tokens per sequence (256, longer are cut)\n"
	  "  --checkpoint-every K  save the state every K steps (50); resume with --resume\n"
	  "  --max-mem MB          refuse to start when the run would need more (75% of RAM)\n"
	  "  --min-improvement M   deploy only when the validation loss is at least M lower,\n"
	  "                        relative (0.01 = 1%); --no-deploy never deploys\n"
	  "  --auto-deploy         deploy without asking (else deploying is an approval)\n"
	  "  --resume[=RUN]        continue the newest stopped or interrupted run (or RUN) from\n"
	  "                        its checkpoint, with the options it was started with\n"
	  "  --export-only         only export the data (the run ends 'exported')\n"
	  "\n"
	  "Defaults come from [train] in sam.conf (rank, alpha, lr, batch, ctx, epochs,\n"
	  "targets, checkpoint_every, max_mem_mb, min_improvement, deploy, auto_deploy).\n"
	  "A run refuses to start when memory is not at level OK. Progress (step, loss,\n"
	  "tokens/s, ETA) is a bar on a terminal, a line every 2 s otherwise. SIGTERM or\n"
	  "Ctrl-C stops after saving a checkpoint (exit 4); SIGUSR1 pauses and resumes;\n"
	  "so does writing 'pause' (or 'stop', or anything else to go on) into\n"
	  "$SAM_HOME/run/train.control. An adapter that beats the base model on the\n"
	  "validation set becomes a training_deploy proposal (`sam approvals`); once\n"
	  "approved - or at once with auto_deploy - it is copied to\n"
	  "$SAM_HOME/adapters/<run>.gguf, made current and the running api reloads it.\n" },
	{ "adapters", cmd_adapters, "list the LoRA adapters; choose the one the api applies",
	  "usage: sam adapters [list]\n"
	  "       sam adapters use ID\n"
	  "       sam adapters off\n"
	  "\n"
	  "The adapters are $SAM_HOME/adapters/ID.gguf (one per deployed training run);\n"
	  "$SAM_HOME/adapters/current names the one the api applies to its main model.\n"
	  "\n"
	  "  list     ID, size and date of each adapter; '*' marks the current one\n"
	  "  use ID   make adapter ID current\n"
	  "  off      no adapter: the api serves the base model\n"
	  "\n"
	  "use and off switch the link atomically, then ask a running api to reload\n"
	  "(POST /api/adapters/reload); with no api running, it loads the current\n"
	  "adapter when it starts. If the api refuses the adapter (made for another\n"
	  "model, a damaged file), it keeps the one it has, the link is put back as it\n"
	  "was, and the exit status is 1. $SAM_API_URL and $SAM_API_KEY work as for\n"
	  "`sam ask`.\n" },
	{ "voice", cmd_voice, "run the text-to-speech service (espeak-ng, WAV out)",
	  "usage: sam voice [--port N] [--port-file FILE]\n"
	  "\n"
	  "Serve text to speech on 127.0.0.1:N (default [voice] port, 8767; 0 = any free\n"
	  "port, written to FILE):\n"
	  "  GET  /health   liveness, sample rate and counters (synths, cache hits)\n"
	  "  GET  /voices   the installed espeak-ng voices\n"
	  "  POST /speak    {\"text\", \"voice\"?, \"speed\"?, \"pitch\"?} -> audio/wav (16-bit mono)\n"
	  "\n"
	  "Results are cached in $SAM_HOME/cache/voice (LRU, [voice] cache_mb, default 64).\n"
	  "[voice] voice (en), speed (175 wpm, 80-450), pitch (50, 0-99) and max_chars\n"
	  "(5000) set the defaults and the limit. The api's /api/speak forwards here.\n" },
	{ "speak", cmd_speak, "say TEXT: write it as a WAV file (text to speech)",
	  "usage: sam speak TEXT [-o OUT.wav] [--voice V] [--speed WPM] [--pitch P]\n"
	  "       sam speak --voices\n"
	  "\n"
	  "Synthesise TEXT in this process (espeak-ng, sharing the voice service's disk\n"
	  "cache) and write a 16-bit mono WAV to OUT.wav, or to stdout when it is not a\n"
	  "terminal. Defaults from [voice] in sam.conf (voice en, speed 175, pitch 50);\n"
	  "TEXT may have up to [voice] max_chars (5000) characters.\n"
	  "\n"
	  "  -o, --output FILE  write the WAV here\n"
	  "  --voice V          an espeak-ng voice (a language such as en, de, fr-fr)\n"
	  "  --speed WPM        words per minute, 80-450\n"
	  "  --pitch P          0-99\n"
	  "  --voices           list the installed voices and exit\n"
	  "\n"
	  "Exit status: 0 written, 1 an error (unknown voice, unwritable file), 2 usage.\n" },
	{ "vision", cmd_vision, "run the vision service (image analysis and OCR)",
	  "usage: sam vision [--port N] [--port-file FILE]\n"
	  "\n"
	  "Serve image analysis and OCR on 127.0.0.1:N (default [vision] port, 8766;\n"
	  "0 = any free port, written to FILE):\n"
	  "  GET  /health    liveness, limits and counters\n"
	  "  POST /process   {\"image\": BASE64 | \"path\": FILE, \"task\"?, \"lang\"?} or the raw\n"
	  "                  image (Content-Type image/... or application/octet-stream,\n"
	  "                  ?task=&lang=); task ocr (default), analyze, describe\n"
	  "\n"
	  "Images: PNG, JPEG, GIF, BMP, WebP, TIFF, PNM (leptonica); OCR: libtesseract.\n"
	  "[vision] max_bytes (20 MiB) and max_pixels (40000000) are checked before\n"
	  "decoding; lang (eng) is the default OCR language; \"path\" must lie inside\n"
	  "allowed_dirs (colon-separated; default none). Jobs pass the heavy-work gate\n"
	  "([resource] heavy_slots). The api's /api/vision/process forwards here.\n" },
	{ "see", cmd_see, "read or describe an image: OCR text, analysis, or an answer about it",
	  "usage: sam see IMAGE [--ask QUESTION] [--analyze] [--lang L] [--json]\n"
	  "\n"
	  "Send IMAGE to the api (POST /api/vision/process) and print the text read\n"
	  "from it (OCR). With --ask, print the model's answer to QUESTION about the\n"
	  "image; with --analyze, its size, format, brightness and colours; with\n"
	  "--json, the whole reply. When no api runs, OCR and --analyze run in this\n"
	  "process (--ask needs the api). $SAM_API_URL and $SAM_API_KEY work as for\n"
	  "`sam ask`.\n"
	  "\n"
	  "  --lang L   OCR language(s), tesseract names joined by + (default [vision]\n"
	  "             lang, eng)\n"
	  "\n"
	  "With --ask, the text read from the image is cut to what the model's context\n"
	  "holds, and a note on stderr says so. Images: PNG, JPEG, GIF, BMP, WebP,\n"
	  "TIFF, PNM, at most [vision] max_bytes (20 MiB).\n"
	  "\n"
	  "Exit status: 0 done, 1 an error (unreadable image, the api refused), 2 usage.\n" },
	{ "notify", cmd_notify, "run the notifier: SAM's events as desktop notifications",
	  "usage: sam notify [--port N] [--port-file FILE]\n"
	  "\n"
	  "Follow the api's events (GET /api/events, reconnecting with backoff, reading\n"
	  "sam.db while the api is away) and turn the ones that matter into desktop\n"
	  "notifications: notify-send on a Linux desktop, osascript on macOS, else log\n"
	  "lines. Health and counters on http://127.0.0.1:N/health (default [notify]\n"
	  "port, 8770; 0 = any free port, written to FILE).\n"
	  "\n"
	  "[notify] keys in sam.conf (see docs/notify.md):\n"
	  "  events        which event types notify: types, prefixes (service.*), *, and\n"
	  "                -pattern to exclude (default: service.crashed, service.failed,\n"
	  "                resource.level (low and critical only), train.finished,\n"
	  "                train.failed, approval.pending, ingest.error)\n"
	  "  rate, rate_window   at most RATE notifications per RATE_WINDOW s (5 per 60);\n"
	  "                the rest are logged and summed up in one notification later\n"
	  "  dedup_window  the same notification within this many seconds shows once (300)\n"
	  "  max_age       at start, events older than this many seconds are skipped (600)\n"
	  "  backend       auto | notify-send | osascript | log | command (auto)\n"
	  "  command       with backend = command: an absolute program run as PROG TITLE BODY\n"
	  "  timeout       seconds a notification program may take before it is killed (10)\n"
	  "  db_fallback   read events from sam.db while the api is unreachable (true)\n"
	  "\n"
	  "It remembers the last event it handled in $SAM_HOME/run/notify.state, so a\n"
	  "restart misses nothing newer than max_age and repeats nothing.\n" },
	{ "approvals", cmd_approvals, "list what SAM asks permission to do (the approval queue)",
	  "usage: sam approvals [--all | --status S] [--json]\n"
	  "\n"
	  "List the proposals of the approval queue in $SAM_HOME/sam.db, newest first:\n"
	  "ID, STATUS, KIND, AGE and TITLE (default: the pending ones). Needs no api.\n"
	  "Decide them with `sam approve ID` or `sam reject ID` (see docs/approvals.md).\n"
	  "\n"
	  "  --all         every proposal, whatever its status\n"
	  "  --status S    only those with status S: pending, approved, rejected, expired,\n"
	  "                executed, failed (or all)\n"
	  "  --json        print a JSON array of the proposals (as GET /api/approvals)\n" },
	{ "approve", cmd_approve, "approve a pending proposal and carry it out now",
	  "usage: sam approve ID [--reason TEXT]\n"
	  "\n"
	  "Approve proposal ID (as $USER) and execute it at once: write the file, run\n"
	  "the command (at most [approvals] command_timeout), deploy the adapter. The\n"
	  "policy in sam.conf is checked again first. Prints the outcome and its\n"
	  "summary (and a command's output).\n"
	  "\n"
	  "Exit status: 0 executed; 1 the execution failed, the proposal is not\n"
	  "pending any more (approved, rejected, expired...), or an error.\n" },
	{ "reject", cmd_reject, "reject a pending proposal",
	  "usage: sam reject ID [--reason TEXT]\n"
	  "\n"
	  "Reject proposal ID (as $USER); nothing it describes is done.\n"
	  "Exit status: 0 rejected; 1 it is not pending any more, or an error.\n" },
	{ "up", cmd_up, "start SAM (the supervisor and its services) in the background",
	  "usage: sam up [--timeout S]\n"
	  "\n"
	  "Start the supervisor (`sam supervise`) in the background, or attach to the\n"
	  "one already running, and return once the system is ready: every enabled\n"
	  "service is ready or has definitively failed. Then print `sam status`.\n"
	  "The supervisor's own output goes to $SAM_HOME/logs/supervisor.log.\n"
	  "\n"
	  "  --timeout S   wait at most S seconds for readiness (default 300: a model\n"
	  "                may load slowly); the supervisor keeps running after it\n"
	  "\n"
	  "Exit status: 0 every enabled service is ready, 1 some failed (they are\n"
	  "listed with their last exit) or SAM did not become ready in time.\n" },
	{ "down", cmd_down, "stop SAM: every service, then the supervisor",
	  "usage: sam down [--timeout S]\n"
	  "\n"
	  "Ask the supervisor to stop every service (in reverse dependency order,\n"
	  "SIGTERM then SIGKILL) and exit, and wait until it is gone.\n"
	  "When SAM is not running this says so and exits 0.\n"
	  "\n"
	  "  --timeout S   wait at most S seconds (default 60), else exit 1\n" },
	{ "status", cmd_status, "show SAM's services: state, pid, port, restarts",
	  "usage: sam status [--json]\n"
	  "\n"
	  "Print each service's NAME STATE PID PORT RESTARTS UPTIME LAST-EXIT as the\n"
	  "supervisor sees it. States: stopped, waiting (for a dependency), starting,\n"
	  "ready, backoff (restart pending), paused (memory guard), stopping, failed,\n"
	  "done (a one-shot job that finished), disabled.\n"
	  "\n"
	  "  --json   print the supervisor's raw status object instead\n"
	  "\n"
	  "Exit status: 0 running, 1 error, 3 SAM is not running.\n" },
	{ "start", cmd_start, "start a service and wait until it is ready",
	  "usage: sam start [--timeout S] [--no-wait] NAME\n"
	  "\n"
	  "Ask the supervisor to start service NAME (e.g. `sam start train`) and wait\n"
	  "until it is ready (a one-shot job: until it runs); print its new state.\n"
	  "\n"
	  "  --timeout S   wait at most S seconds (default 120), else exit 1\n"
	  "  --no-wait     return once the supervisor accepted the command\n" },
	{ "stop", cmd_stop, "stop a service (until `sam start` or `sam up`)",
	  "usage: sam stop [--timeout S] [--no-wait] NAME\n"
	  "\n"
	  "Ask the supervisor to stop service NAME (SIGTERM, SIGKILL after its\n"
	  "stop_timeout) and wait until it is stopped; print its new state.\n"
	  "\n"
	  "  --timeout S   wait at most S seconds (default 120), else exit 1\n"
	  "  --no-wait     return once the supervisor accepted the command\n" },
	{ "restart", cmd_restart, "restart a service and wait until it is ready again",
	  "usage: sam restart [--timeout S] [--no-wait] NAME\n"
	  "\n"
	  "Ask the supervisor to stop and start service NAME, and wait until a new\n"
	  "process of it is ready; print its new state.\n"
	  "\n"
	  "  --timeout S   wait at most S seconds (default 120), else exit 1\n"
	  "  --no-wait     return once the supervisor accepted the command\n" },
	{ "logs", cmd_logs, "print (or follow) a service's log",
	  "usage: sam logs [-n LINES] [-f] NAME\n"
	  "\n"
	  "Print the last lines of $SAM_HOME/logs/NAME.log (`supervisor` is the\n"
	  "supervisor's own log). Needs no running supervisor.\n"
	  "\n"
	  "  -n, --lines N   how many lines (default 50; 0 = none, with -f only new ones)\n"
	  "  -f, --follow    keep printing lines as they are written, across log\n"
	  "                  rotation (like tail -F), until Ctrl-C\n" },
	{ "install-service", cmd_install_service, "run SAM at login: write a systemd user unit or a launchd agent",
	  "usage: sam install-service [--print] [--dry-run] [--force]\n"
	  "\n"
	  "Linux: write ~/.config/systemd/user/sam.service, a systemd user unit that\n"
	  "runs `sam supervise --foreground` (Type=notify, watchdog, restart on failure),\n"
	  "and print how to enable it. macOS: write the launchd agent\n"
	  "~/Library/LaunchAgents/ai.sam.supervisor.plist and print how to load it.\n"
	  "The unit runs this sam binary, with the current SAM_HOME when it is set.\n"
	  "\n"
	  "  --print     write the unit to stdout instead of the file\n"
	  "  --dry-run   say what would be written where, and write nothing\n"
	  "  --force     replace an existing file (else exit 1)\n" },
	{ "supervise", cmd_supervise, "run the supervisor in this process (what `sam up` starts)",
	  "usage: sam supervise [--foreground]\n"
	  "\n"
	  "Run the supervisor for $SAM_HOME (the lean sam-supervise binary next to sam):\n"
	  "start the services of the service table (built-in defaults + [service.NAME]\n"
	  "sections of $SAM_HOME/sam.conf) in dependency order once their dependencies\n"
	  "are ready, restart them with backoff, pause them by priority when memory runs\n"
	  "low, and answer on $SAM_HOME/run/samd.sock. It stays in the foreground of its\n"
	  "process; SIGTERM or `sam down` stops every service, then the supervisor.\n"
	  "A second supervisor for the same SAM_HOME refuses to start (exit 1).\n"
	  "See docs/supervisor.md.\n"
	  "\n"
	  "  -f, --foreground   log to stderr instead of $SAM_HOME/logs/supervisor.log\n" },
	{ "help", cmd_help, "show the commands, or one command's help",
	  "usage: sam help [COMMAND]\n" },
	{ "version", cmd_version, "print the version", "usage: sam version\n" },
	{ 0 },
};

const struct sam_cmd *cli_find(const char *name)
{
	for (const struct sam_cmd *c = sam_commands; c->name; c++)
		if (!strcmp(c->name, name)) return c;
	return NULL;
}

int cli_usage_error(const struct sam_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sam %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fputs(cmd->usage, stderr);
	return EXIT_USAGE;
}

bool cli_wants_help(const struct sam_cmd *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(cmd->usage, stdout);
			return true;
		}
	}
	return false;
}

bool cli_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) return false;
	*out = v;
	return true;
}

bool cli_parse_float(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max) return false;
	*out = v;
	return true;
}

int cmd_help(int argc, char **argv)
{
	if (argc > 1) {
		const struct sam_cmd *c = cli_find(argv[1]);
		if (!c) {
			fprintf(stderr, "sam help: unknown command '%s'\n", argv[1]);
			return EXIT_USAGE;
		}
		fputs(c->usage, stdout);
		return 0;
	}
	printf("usage: sam [--version] [--help] COMMAND [ARGS]\n\nCommands:\n");
	for (const struct sam_cmd *c = sam_commands; c->name; c++) printf("  %-16s %s\n", c->name, c->summary);
	printf("\nRun 'sam COMMAND --help' for a command's options.\n");
	return 0;
}

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("sam %s\n", SAM_VERSION);
	return 0;
}
