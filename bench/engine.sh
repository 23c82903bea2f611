#!/bin/sh
# bench/engine.sh - `sam bench` vs llama.cpp's llama-bench, side by side in
# the same run on the same files (issue 5's speed goals):
#
#   synthetic smollm2-135m and qwen2.5-0.5b (random weights, real shapes) in
#   Q8_0, Q4_0 and Q4_K_M, made by `sam synth` (smollm2 with the gpt-2 BPE
#   vocabulary, 50257 tokens, the closest in size to its real 49152;
#   qwen2.5 with the qwen2 vocabulary); for each file
#     sam bench -t T -p 128 -n 64 -r R [--bandwidth]
#     $LLAMA_BENCH -m FILE -t T -p 128 -n 64 -r R -o csv   (when LLAMA_BENCH is set)
#   one after the other, and one markdown table: pp and tg tokens/s of both,
#   their ratios (goals: pp >= 0.8, tg >= 1.0) and, for the qwen2.5-0.5b Q8_0
#   and Q4_0 rows, tg as a fraction of the memory-bandwidth limit (goal >= 0.8)
#   with the bandwidth measured by `sam bench --bandwidth` (a T-thread STREAM
#   triad over 3 x 256 MiB arrays, run just before that file's tests).
#
# Environment: SAM_BIN (build/sam), LLAMA_BENCH (path to llama-bench; never
# built by this script), BENCH_MODELS (a directory to keep the synthesized
# models in between runs; default a temporary directory), VOCABS
# (../shared/models/vocab), THREADS (2), REPS (3), SHAPES, TYPES.
set -eu
SAM="${SAM_BIN:-build/sam}"
VOCABS="${VOCABS:-../shared/models/vocab}"
THREADS="${THREADS:-2}"
REPS="${REPS:-3}"
SHAPES="${SHAPES:-smollm2-135m qwen2.5-0.5b}"
TYPES="${TYPES:-q8_0 q4_0 q4_k_m}"
[ -x "$SAM" ] || { echo "bench/engine.sh: $SAM is not built (make)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
MODELS="${BENCH_MODELS:-$TMP}"
mkdir -p "$MODELS"

vocab_of() {
	case "$1" in
	qwen*) echo "$VOCABS/ggml-vocab-qwen2.gguf" ;;
	*) echo "$VOCABS/ggml-vocab-gpt-2.gguf" ;;
	esac
}

# "mean sd" of one test row of sam bench's table (pp or tg)
sam_ts() { awk -F'|' -v t="$1" '$7 ~ "^ *"t"[0-9]+ *$" {split($8, a, "±"); gsub(/ /, "", a[1]); gsub(/ /, "", a[2]); print a[1], a[2]}' "$2"; }
# avg_ts stddev_ts of llama-bench's csv row with n_prompt $1, n_gen $2
llama_ts() {
	# (no field of these rows holds a comma: drop the quotes and split on commas)
	sed 's/"//g' "$3" | awk -F, -v p="$1" -v g="$2" 'NR == 1 {for (i = 1; i <= NF; i++) col[$i] = i; next}
		$col["n_prompt"] == p && $col["n_gen"] == g {print $col["avg_ts"], $col["stddev_ts"]; exit}'
}
llama_build() { sed 's/"//g' "$1" | awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) col[$i] = i; next} {print $col["build_commit"] " (" $col["build_number"] ")"; exit}';
}
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {if (a != "" && b > 0) printf "%.2f", a / b; else print "—"}'; }
pm() { [ -n "${1:-}" ] && printf '%.1f ± %.1f' "$1" "$2" || printf '—'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $THREADS threads, -p 128 -n 64 -r $REPS"
echo "$("$SAM" version)${LLAMA_BENCH:+; llama-bench: $LLAMA_BENCH}"
echo
printf '| file | size MiB | sam pp128 | llama.cpp pp128 | pp ratio (≥ 0.8) | sam tg64 | llama.cpp tg64 | tg ratio (≥ 1.0) | triad GB/s | tg limit t/s | tg / limit (≥ 0.8) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for shape in $SHAPES; do
	for type in $TYPES; do
		f="$MODELS/$shape-$type.gguf"
		if [ ! -f "$f" ]; then
			"$SAM" synth --preset "$shape" --type "$type" --vocab-from "$(vocab_of "$shape")" --seed 1 -o "$f" \
				> /dev/null 2> "$TMP/synth.err" || { cat "$TMP/synth.err" >&2; exit 1; }
		fi
		bw=""
		case "$shape-$type" in qwen2.5-0.5b-q8_0 | qwen2.5-0.5b-q4_0) bw="--bandwidth" ;; esac
		# shellcheck disable=SC2086
		"$SAM" bench -m "$f" -t "$THREADS" -p 128 -n 64 -r "$REPS" $bw > "$TMP/sam.out" 2> "$TMP/sam.err" ||
			{ cat "$TMP/sam.err" >&2; exit 1; }
		set -- $(sam_ts pp "$TMP/sam.out"); spp=${1:-}; sppsd=${2:-}
		set -- $(sam_ts tg "$TMP/sam.out"); stg=${1:-}; stgsd=${2:-}
		gbs=$(sed -n 's/^bandwidth: triad \([0-9.]*\) GB\/s.*/\1/p' "$TMP/sam.out")
		lim=$(sed -n 's/.*-> limit \([0-9.]*\) t\/s.*/\1/p' "$TMP/sam.out")
		frac=$(sed -n 's/.* = \([0-9.]*\) of the limit/\1/p' "$TMP/sam.out")
		lpp="" lppsd="" ltg="" ltgsd=""
		if [ -n "${LLAMA_BENCH:-}" ]; then
			"$LLAMA_BENCH" -m "$f" -t "$THREADS" -p 128 -n 64 -r "$REPS" -o csv > "$TMP/llama.csv" 2> "$TMP/llama.err" ||
				{ cat "$TMP/llama.err" >&2; exit 1; }
			set -- $(llama_ts 128 0 "$TMP/llama.csv"); lpp=${1:-}; lppsd=${2:-}
			set -- $(llama_ts 0 64 "$TMP/llama.csv"); ltg=${1:-}; ltgsd=${2:-}
		fi
		size=$(awk -F'|' '$7 ~ /(pp|tg)[0-9]/ {s = $3; sub(/ MiB/, "", s); gsub(/ /, "", s); print s; exit}' "$TMP/sam.out")
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$shape-$type.gguf" "$size" \
			"$(pm "$spp" "$sppsd")" "$(pm "$lpp" "$lppsd")" "$(ratio "$spp" "$lpp")" \
			"$(pm "$stg" "$stgsd")" "$(pm "$ltg" "$ltgsd")" "$(ratio "$stg" "$ltg")" \
			"${gbs:-—}" "${lim:-—}" "${frac:-—}"
	done
done
echo
[ -s "$TMP/llama.csv" ] && echo "llama.cpp build: $(llama_build "$TMP/llama.csv")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
