#!/bin/sh
# bench/api.sh [MODEL.gguf] - what the api hub adds on top of the engine, in
# one run, against a `sam api` this script starts itself (free port, temporary
# SAM_HOME):
#
#  (a) engine-only generation speed: `sam run --chat -p PROMPT -n N --temp 0
#      --ignore-eos`, from its stderr timings;
#  (b) generation speed through POST /v1/chat/completions with stream=true and
#      "max_tokens": N, measured by a small libcurl client (compiled here) from
#      the first to the last content chunk: (tokens - 1) / time; and its ratio
#      to (a) (goal >= 0.97), the median over REPS pairs of runs made back to
#      back (the same prompt, the same tokens: random-weight fixtures rarely
#      end early, and the api streamed token count is printed);
#  (c) time to first token through the api minus the engine's own prompt time
#      for the same chat-formatted prompt (goal < 5 ms): HTTP, JSON, queueing,
#      tokenizing and the SSE path. Measured as the median, over TTFT_REPS
#      prompts, of the paired difference (api TTFT - `sam run` prompt time)
#      with one generated token. A fresh `sam run` process also pays
#      first-touch costs inside its prompt time (page faults on the mapped
#      model, new buffers) that the warm api does not, so on a 20 MB model the
#      difference comes out negative by a few ms. The same is measured on the
#      smallest fixture (TTFT_MODEL, default stories260K), where those costs
#      are small: that row is the better estimate of the HTTP overhead;
#  (d) GET /api/health requests/s with 64 concurrent connections (wrk);
#  (e) resident memory of `sam api` with no model (empty SAM_HOME, no -m) after
#      a few requests (goal < 15 MB).
#
# MODEL defaults to the largest GGUF among the fixtures (per-token times of the
# tiny stories260K are microseconds, too small to show overheads).
# Environment: SAM_BIN (default build/sam), SAM_MODELS (default ../shared/models),
# THREADS (2), N (256 tokens), REPS (5, medians), TTFT_REPS (21), CTX (512).
# Prints a markdown table on stdout; writes no files outside a temporary dir.
set -eu
. "$(dirname "$0")/lib.sh"
SAM="${SAM_BIN:-build/sam}"
DIR="${SAM_MODELS:-../shared/models}"
THREADS="${THREADS:-2}"
N="${N:-256}"
REPS="${REPS:-5}"
TTFT_REPS="${TTFT_REPS:-21}"
CTX="${CTX:-512}"
MODEL="${1:-$(ls -S "$DIR"/*.gguf 2>/dev/null | head -n 1)}"
[ -n "$MODEL" ] && [ -f "$MODEL" ] || { echo "bench/api.sh: no model (give MODEL.gguf)" >&2; exit 2; }
[ -x "$SAM" ] || { echo "bench/api.sh: $SAM is not built (make)" >&2; exit 2; }
command -v wrk >/dev/null 2>&1 || { echo "bench/api.sh: wrk is missing (scripts/deps.sh installs it)" >&2; exit 2; }
case "$SAM" in /*) ;; *) SAM="$PWD/$SAM" ;; esac

TMP=$(mktemp -d)
API_PID=""
SMALL_PID=""
BARE_PID=""
cleanup() {
	for p in $API_PID $SMALL_PID $BARE_PID; do kill "$p" 2>/dev/null || true; done
	for p in $API_PID $SMALL_PID $BARE_PID; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM


# ---- the streaming client (bench/sse_client.c), in this script's terms:
# "ttft_ms gen_ms content_chunks completion_tokens prompt_tokens" ----
# shellcheck disable=SC2046
${CC:-cc} -O2 -o "$TMP/sse-client" "$(dirname "$0")/sse_client.c" $(pkg-config --cflags --libs libcurl)
sse_bench() {
	out=$("$TMP/sse-client" "$@") || return 1
	echo "$out" | awk '{printf "%.3f %.3f %s %s %s\n", $2 - $1, $3 - $2, $4, $5, $6}'
}

# start_api NAME ARGS...: start `sam api` with SAM_HOME=$TMP/NAME; sets PID and URL.
start_api() {
	name=$1; shift
	mkdir -p "$TMP/$name"
	env -u SAM_MODEL -u SAM_API_MODEL SAM_HOME="$TMP/$name" SAM_LOG=warn \
		"$SAM" api --port 0 --port-file "$TMP/$name.port" "$@" > "$TMP/$name.log" 2>&1 &
	PID=$!
	i=0
	while [ ! -s "$TMP/$name.port" ]; do
		i=$((i + 1)); [ $i -lt 200 ] || { cat "$TMP/$name.log" >&2; exit 1; }
		sleep 0.05
	done
	URL="http://127.0.0.1:$(cat "$TMP/$name.port")"
}
wait_ready() {
	i=0
	until curl -sf --noproxy '*' "$1/api/ready" > /dev/null; do
		i=$((i + 1)); [ $i -lt 400 ] || { echo "bench/api.sh: the api did not become ready" >&2; exit 1; }
		sleep 0.05
	done
}

start_api home -m "$MODEL" -c "$CTX" -t "$THREADS"
API_PID=$PID
MAIN_URL=$URL
wait_ready "$URL"

# One prompt per repetition, different from its first word on, so that the
# api's prompt cache (a slot keeps its last prompt) never shortens a prompt.
prompt() { echo "Story $1: tell me a long story about a small cat who learns to fly over the sea and meets a friendly whale."; }

# warm-up: page the model in for both
"$SAM" run -m "$MODEL" --chat -p "$(prompt 0)" -n 16 --temp 0 --ignore-eos -c "$CTX" -t "$THREADS" > /dev/null 2>&1
sse_bench "$URL/v1/chat/completions" \
	"{\"messages\":[{\"role\":\"user\",\"content\":\"$(prompt 0)\"}],\"max_tokens\":16,\"temperature\":0,\"stream\":true}" > /dev/null

: > "$TMP/run_tg"; : > "$TMP/api_tg"; : > "$TMP/ratio"
k=1
while [ $k -le "$REPS" ]; do
	p=$(prompt $k)
	"$SAM" run -m "$MODEL" --chat -p "$p" -n "$N" --temp 0 --ignore-eos -c "$CTX" -t "$THREADS" 2> "$TMP/err" > /dev/null
	line=$(tail -n 1 "$TMP/err")
	run_ptok=$(echo "$line" | sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p')
	echo "$line" | sed -n 's/.*generation [0-9]* tokens, [0-9.]* ms, \([0-9.]*\) tok\/s.*/\1/p' >> "$TMP/run_tg"
	body="{\"messages\":[{\"role\":\"user\",\"content\":\"$p\"}],\"max_tokens\":$N,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
	set -- $(sse_bench "$URL/v1/chat/completions" "$body")
	ttft=$1 gen_ms=$2 chunks=$3 ctok=$4 api_ptok=$5
	a=$(awk -v n="$ctok" -v ms="$gen_ms" 'BEGIN {if (ms > 0 && n > 1) printf "%.1f", (n - 1) / (ms / 1000)}')
	echo "$a" >> "$TMP/api_tg"
	awk -v a="$a" -v b="$(tail -n 1 "$TMP/run_tg")" 'BEGIN {if (b > 0) printf "%.3f\n", a / b}' >> "$TMP/ratio"
	k=$((k + 1))
done
run_tg=$(median < "$TMP/run_tg"); api_tg=$(median < "$TMP/api_tg")
ratio=$(median < "$TMP/ratio") # of the pairs run back to back: steadier on a busy machine

# ---- (c) TTFT: pairs of (sam run prompt time, api TTFT) for the same prompt, one token each ----
# ttft MODEL URL: prints "median api TTFT, median sam run prompt time, median paired difference" (ms)
ttft() {
	: > "$TMP/run_pp"; : > "$TMP/api_ttft"; : > "$TMP/diff"
	k=1
	while [ $k -le "$TTFT_REPS" ]; do
		p=$(prompt $((k + 100)))
		"$SAM" run -m "$1" --chat -p "$p" -n 1 --temp 0 -c "$CTX" -t "$THREADS" 2> "$TMP/err" > /dev/null
		pp=$(tail -n 1 "$TMP/err" | sed -n 's/.*prompt [0-9]* tokens, \([0-9.]*\) ms.*/\1/p')
		body="{\"messages\":[{\"role\":\"user\",\"content\":\"$p\"}],\"max_tokens\":1,\"temperature\":0,\"stream\":true}"
		t=$(sse_bench "$2/v1/chat/completions" "$body" | cut -d' ' -f1)
		echo "$pp" >> "$TMP/run_pp"
		echo "$t" >> "$TMP/api_ttft"
		awk -v a="$t" -v b="$pp" 'BEGIN {printf "%.3f\n", a - b}' >> "$TMP/diff"
		k=$((k + 1))
	done
	echo "$(median < "$TMP/api_ttft") $(median < "$TMP/run_pp") $(median < "$TMP/diff")"
}
set -- $(ttft "$MODEL" "$URL")
api_ttft=$1 run_pp=$2 overhead=$3
# the same on the smallest fixture: its prompt time and first-touch page faults are small
SMALL="${TTFT_MODEL:-$DIR/stories260K.gguf}"
small_row=""
if [ -f "$SMALL" ] && [ "$SMALL" != "$MODEL" ]; then
	start_api small -m "$SMALL" -c "$CTX" -t "$THREADS"
	SMALL_PID=$PID
	wait_ready "$URL"
	sse_bench "$URL/v1/chat/completions" \
		"{\"messages\":[{\"role\":\"user\",\"content\":\"$(prompt 0)\"}],\"max_tokens\":1,\"stream\":true}" > /dev/null
	set -- $(ttft "$SMALL" "$URL")
	small_row="| (c) the same on $(basename "$SMALL"): api TTFT $1 ms − prompt $2 ms | $3 ms | < 5 ms | $(awk -v v="$3" 'BEGIN {print v < 5 ? "yes" : "**no**"}') |"
	kill "$SMALL_PID"; wait "$SMALL_PID" 2>/dev/null || true; SMALL_PID=""
fi

# ---- (d) /api/health under 64 connections ----
wrk -t2 -c64 -d5s "$MAIN_URL/api/health" > "$TMP/wrk" 2>&1
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMP/wrk")
lat=$(awk '$1 == "Latency" {print $2; exit}' "$TMP/wrk")
errs=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$TMP/wrk")

# ---- (e) RSS with no model ----
start_api bare
BARE_PID=$PID
BURL=$URL
for path in /api/health /api/status /api/ready /v1/models /metrics /api/health; do
	curl -s --noproxy '*' -o /dev/null "$BURL$path"
done
curl -s --noproxy '*' -o /dev/null -d '{"message":"hi"}' "$BURL/api/chat" # 503: no model
sleep 0.2
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$BARE_PID/status")
wrk -t2 -c64 -d2s "$BURL/api/health" > /dev/null 2>&1
sleep 0.2
rss2_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$BARE_PID/status")
rss=$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}')
rss2=$(awk -v k="$rss2_kb" 'BEGIN {printf "%.1f", k / 1024}')

ok() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN {r = (op == ">=") ? v >= g : v < g; print r ? "yes" : "**no**"}'; }
msize=$(awk -v b="$(stat -c %s "$MODEL")" 'BEGIN {printf "%.1f", b / 1048576}')
echo "model $(basename "$MODEL") ($msize MiB), $THREADS threads, $N tokens, context $CTX, median of $REPS;" \
	"prompt $run_ptok tokens (sam run --chat) / $api_ptok tokens (api); the api streamed $ctok tokens in $chunks chunks"
echo
echo "| measure | result | goal | met |"
echo "|---|---:|---:|:---:|"
echo "| (a) engine generation, \`sam run\` | $run_tg tok/s | — | |"
echo "| (b) generation through /v1/chat/completions (stream) | $api_tg tok/s | | |"
echo "| (b) ratio (b)/(a), median of paired runs | $ratio | >= 0.97 | $(ok "$ratio" 0.97 '>=') |"
echo "| (c) TTFT through the api (median of $TTFT_REPS) | $api_ttft ms | | |"
echo "| (c) engine prompt time, \`sam run\` (median of $TTFT_REPS) | $run_pp ms | | |"
echo "| (c) TTFT overhead of HTTP (median of paired differences) | $overhead ms | < 5 ms | $(ok "$overhead" 5 '<') |"
[ -n "$small_row" ] && echo "$small_row"
echo "| (d) /api/health, \`wrk -t2 -c64 -d5s\` | $rps req/s (mean latency $lat${errs:+, $errs non-2xx}) | — | |"
echo "| (e) RSS of \`sam api\`, no model, after a few requests | $rss MiB | < 15 MiB | $(ok "$rss" 15 '<') |"
echo "| (e) the same after 2 s of 64 connections | $rss2 MiB | — | |"
