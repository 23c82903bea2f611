#!/bin/sh
# bench/train.sh - the LoRA trainer's speed and memory (issue: LoRA):
#
#   for synthetic smollm2-135m Q8_0, qwen2.5-0.5b Q4_K_M and qwen2.5-1.5b
#   Q4_K_M models (random weights, real shapes, made by `sam synth`), rank 8,
#   all seven projections, ctx 256, batch 1: `sam train` over STEPS steps of
#   full 256-token sequences, reporting training tokens/s (forward, recompute
#   and backward of every token) and peak RSS (/usr/bin/time), with two
#   baselines from the same run and file: `sam bench -p 256 -n 0` prompt
#   tokens/s (one forward pass: a training token costs about four), and the
#   model file's size (weights stay mapped: RSS above it is the trainer's own).
#   The memory estimate `sam train` checks against --max-mem is printed too.
#
# Env: SAM_BIN (build/sam), VOCABS (../shared/models/vocab), BENCH_MODELS (a
# directory to keep the synthesized files), THREADS (2), STEPS (3), SHAPES.
set -eu
SAM="${SAM_BIN:-build/sam}"
VOCABS="${VOCABS:-../shared/models/vocab}"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-3}"
SHAPES="${SHAPES:-smollm2-135m:q8_0 qwen2.5-0.5b:q4_k_m qwen2.5-1.5b:q4_k_m}"
[ -x "$SAM" ] || { echo "bench/train.sh: $SAM is not built (make)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/train.sh: needs GNU time (apt-get install time)" >&2; exit 2; }
SAM=$(cd "$(dirname "$SAM")" && pwd)/$(basename "$SAM")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
MODELS="${BENCH_MODELS:-$TMP}"
mkdir -p "$MODELS"
export SAM_HOME="$TMP/home"

vocab_of() {
	case "$1" in
	qwen*) echo "$VOCABS/ggml-vocab-qwen2.gguf" ;;
	*) echo "$VOCABS/ggml-vocab-gpt-2.gguf" ;;
	esac
}

# training data: long text examples (every sequence fills the 256 positions)
mkdir -p "$TMP/data"
awk 'BEGIN { srand(5); split("the a model answer question small machine memory file engine river song happy day night light tree stone water", w, " ")
	for (f = 0; f < 2; f++) { out = f ? "'"$TMP"'/data/valid.jsonl" : "'"$TMP"'/data/train.jsonl"
		for (i = 0; i < (f ? 2 : 16); i++) { s = ""; for (k = 0; k < 600; k++) s = s " " w[1 + int(rand() * 19)]
			printf "{\"text\":\"%s\"}\n", s > out } } }'

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $THREADS threads; rank 8, ctx 256, batch 1, $STEPS steps"
echo "$("$SAM" version)"
echo
printf '| model | file MiB | estimate MiB | peak RSS MiB | RSS - file MiB | train tok/s | pp256 tok/s | train / pp |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for st in $SHAPES; do
	shape=${st%%:*} type=${st#*:}
	f="$MODELS/$shape-$type.gguf"
	if [ ! -f "$f" ]; then
		"$SAM" synth --preset "$shape" --type "$type" --vocab-from "$(vocab_of "$shape")" --seed 1 -o "$f" \
			> /dev/null 2> "$TMP/synth.err" || { cat "$TMP/synth.err" >&2; exit 1; }
	fi
	size=$(awk -v b="$(stat -c %s "$f")" 'BEGIN { printf "%.0f", b / 1048576 }')
	"$SAM" bench -m "$f" -t "$THREADS" -p 256 -n 0 -r 1 > "$TMP/pp.out" 2>&1 || { cat "$TMP/pp.out" >&2; exit 1; }
	pp=$(awk -F'|' '$7 ~ /pp256/ {split($8, a, "±"); gsub(/ /, "", a[1]); print a[1]}' "$TMP/pp.out")
	/usr/bin/time -v "$SAM" train --model "$f" --data "$TMP/data" --rank 8 --ctx 256 --batch 1 --steps "$STEPS" \
		--threads "$THREADS" --checkpoint-every 0 --no-deploy --max-mem 0 > "$TMP/train.out" 2> "$TMP/time.out" ||
		{ cat "$TMP/train.out" "$TMP/time.out" >&2; exit 1; }
	tps=$(sed -n 's/^trained .*(\([0-9.]*\) tok\/s)$/\1/p' "$TMP/train.out")
	est=$(sed -n 's/^memory estimate: \([0-9]*\) MiB.*/\1/p' "$TMP/train.out")
	rss=$(awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$TMP/time.out")
	printf '| %s %s | %s | %s | %s | %s | %s | %s | %s |\n' "$shape" "$type" "$size" "${est:-—}" "$rss" \
		"$((rss - size))" "$tps" "$pp" "$(awk -v a="$tps" -v b="$pp" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "—" }')"
done
