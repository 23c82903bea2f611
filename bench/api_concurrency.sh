#!/bin/sh
# bench/api_concurrency.sh [MODEL.gguf] - continuous batching through the api:
# aggregate generation tokens/s of 4 concurrent streams vs 1 stream (issue 5,
# goal: ratio >= 2.5).
#
# Starts `sam api --slots 4` on MODEL (default: a synthetic smollm2-135m Q4_0
# made by `sam synth` with the gpt-2 vocabulary, kept in $BENCH_MODELS when
# set) on a free port with a temporary SAM_HOME, then, REPS times:
#   1 stream : one POST /v1/chat/completions, stream=true, temperature 0,
#              max_tokens N;
#   4 streams: STREAMS such requests started at once (different prompts of
#              the same length, same N).
# Each request is made by a small libcurl client (compiled here, as
# bench/api.sh does) that records, on the system-wide monotonic clock, when
# it sent the request and when the last content chunk arrived, and the
# usage's completion_tokens. Aggregate tokens/s of a round = the completion
# tokens of all its streams / (last chunk of any stream - first request
# sent): end to end, prompt processing included, for 1 and 4 streams alike.
# The ratio is taken per pair of rounds run back to back, median over REPS.
#
# Environment: SAM_BIN (build/sam), THREADS (2), N (128), STREAMS (4),
# REPS (3), CTX (512), VOCABS (../shared/models/vocab), BENCH_MODELS.
set -eu
. "$(dirname "$0")/lib.sh"
SAM="${SAM_BIN:-build/sam}"
THREADS="${THREADS:-2}"
N="${N:-128}"
STREAMS="${STREAMS:-4}"
REPS="${REPS:-3}"
CTX="${CTX:-512}"
VOCABS="${VOCABS:-../shared/models/vocab}"
[ -x "$SAM" ] || { echo "bench/api_concurrency.sh: $SAM is not built (make)" >&2; exit 2; }
case "$SAM" in /*) ;; *) SAM="$PWD/$SAM" ;; esac
TMP=$(mktemp -d)
API_PID=""
cleanup() {
	[ -n "$API_PID" ] && { kill "$API_PID" 2>/dev/null || true; wait "$API_PID" 2>/dev/null || true; }
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

MODEL="${1:-}"
if [ -z "$MODEL" ]; then
	MODEL="${BENCH_MODELS:-$TMP}/smollm2-135m-q4_0.gguf"
	mkdir -p "$(dirname "$MODEL")"
	[ -f "$MODEL" ] || "$SAM" synth --preset smollm2-135m --type q4_0 --vocab-from "$VOCABS/ggml-vocab-gpt-2.gguf" \
		--seed 1 -o "$MODEL" > /dev/null
fi

# ---- the client (bench/sse_client.c): prints
# "t_sent_ms t_first_ms t_last_ms content_chunks completion_tokens prompt_tokens" ----
# shellcheck disable=SC2046
${CC:-cc} -O2 -o "$TMP/sse-stream" "$(dirname "$0")/sse_client.c" $(pkg-config --cflags --libs libcurl)

mkdir -p "$TMP/home"
env -u SAM_MODEL -u SAM_API_MODEL SAM_HOME="$TMP/home" SAM_LOG=warn \
	"$SAM" api --port 0 --port-file "$TMP/port" -m "$MODEL" --slots "$STREAMS" -c "$CTX" -t "$THREADS" \
	> "$TMP/api.log" 2>&1 &
API_PID=$!
i=0
while [ ! -s "$TMP/port" ]; do
	i=$((i + 1)); [ $i -lt 200 ] || { cat "$TMP/api.log" >&2; exit 1; }
	sleep 0.05
done
URL="http://127.0.0.1:$(cat "$TMP/port")"
i=0
until curl -sf --noproxy '*' "$URL/api/ready" > /dev/null; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "bench/api_concurrency.sh: the api did not become ready" >&2; exit 1; }
	sleep 0.05
done

# prompts of the same length, different from the first word on (no prompt-cache reuse)
prompt() { printf 'Story %03d: tell me a long story about a small cat who learns to fly over the sea.' "$1"; }
body() {
	printf '{"messages":[{"role":"user","content":"%s"}],"max_tokens":%s,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' \
		"$(prompt "$1")" "$N"
}
# round K COUNT: COUNT clients at once (it runs in a $(...) subshell: the
# clients are its children); prints "aggregate_tok_s tokens wall_s mean_per_stream_tok_s"
round() {
	pids="" files=""
	j=0
	while [ $j -lt "$2" ]; do
		"$TMP/sse-stream" "$URL/v1/chat/completions" "$(body $(($1 * 10 + j)))" > "$TMP/r.$j" &
		pids="$pids $!" files="$files $TMP/r.$j"
		j=$((j + 1))
	done
	for p in $pids; do wait "$p" || { echo "bench/api_concurrency.sh: a stream failed" >&2; exit 1; }; done
	# shellcheck disable=SC2086
	awk 'NF == 6 {if (s == "" || $1 < s) s = $1; if ($3 > e) e = $3; tok += $5; per += ($5 - 1) / (($3 - $2) / 1000); k++}
		END {if (k == 0 || e <= s) {print "0 0 0 0"; exit} printf "%.2f %d %.3f %.2f\n", tok / ((e - s) / 1000), tok, (e - s) / 1000, per / k}' $files
}

# warm-up: page the model in and let every slot run once
round 0 "$STREAMS" > /dev/null

: > "$TMP/one"; : > "$TMP/many"; : > "$TMP/ratio"
k=1
while [ $k -le "$REPS" ]; do
	set -- $(round $((k * 2)) 1); one=$1 one_tok=$2
	echo "$*" >> "$TMP/one"
	set -- $(round $((k * 2 + 1)) "$STREAMS"); many=$1 many_tok=$2
	echo "$*" >> "$TMP/many"
	awk -v a="$many" -v b="$one" 'BEGIN {if (b > 0) printf "%.3f\n", a / b}' >> "$TMP/ratio"
	k=$((k + 1))
done
one=$(cut -d' ' -f1 "$TMP/one" | median); many=$(cut -d' ' -f1 "$TMP/many" | median)
per=$(cut -d' ' -f4 "$TMP/many" | median); ratio=$(median < "$TMP/ratio")
range=$(sort -n "$TMP/ratio" | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f–%.2f", lo, hi}')
msize=$(awk -v b="$(stat -c %s "$MODEL")" 'BEGIN {printf "%.1f", b / 1048576}')
echo "model $(basename "$MODEL") ($msize MiB), sam api --slots $STREAMS -t $THREADS -c $CTX; $N tokens per stream" \
	"(completion tokens: 1 stream $one_tok, $STREAMS streams $many_tok in all); median of $REPS; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| measure | result | goal | met |"
echo "|---|---:|---:|:---:|"
echo "| 1 stream: aggregate tok/s | $one | | |"
echo "| $STREAMS streams at once: aggregate tok/s | $many | | |"
echo "| $STREAMS streams: mean per-stream generation tok/s (first to last chunk) | $per | | |"
echo "| ratio $STREAMS-stream / 1-stream (median of paired rounds; range $range) | $ratio | >= 2.5 | $(awk -v r="$ratio" 'BEGIN {print (r >= 2.5) ? "yes" : "**no**"}') |"
