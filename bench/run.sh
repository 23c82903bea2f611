#!/bin/sh
# bench/run.sh SAM_BIN - prompt and generation speed and peak memory of
# `sam run` on the fixture models, with llama.cpp's llama-bench on the same
# files in the same run when LLAMA_BENCH points to it (ratios are what to
# compare: absolute numbers on a shared machine are noise).
#
#   THREADS (default 2), REPS (default 3), MODELS (default: the fixtures)
set -eu
. "$(dirname "$0")/lib.sh"
SAM="${1:-build/sam}"
DIR="${SAM_MODELS:-../shared/models}"
THREADS="${THREADS:-2}"
REPS="${REPS:-3}"
MODELS="${MODELS:-stories260K.gguf stories260K-q8_0.gguf stories260K-q4_0.gguf tiny-llama.gguf tiny-llama-q8_0.gguf}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# a prompt of real text, long enough to measure batched prompt processing
head -c 600 "$DIR/ref/ppl-text.txt" > "$TMP/prompt.txt"

fmt1() { awk -v a="${1:-}" 'BEGIN {if (a == "") print "?"; else printf "%.1f", a}'; }
ratio() { awk -v a="$1" -v b="${2:-0}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "?"}'; }

printf '| model | prompt tokens | sam pp t/s | sam tg t/s | sam peak RSS MiB | model MiB |'
[ -n "${LLAMA_BENCH:-}" ] && printf ' llama.cpp pp t/s | llama.cpp tg t/s | pp ratio | tg ratio |'
printf '\n|---|---:|---:|---:|---:|---:|'
[ -n "${LLAMA_BENCH:-}" ] && printf -- '---:|---:|---:|---:|'
printf '\n'
for m in $MODELS; do
	f="$DIR/$m"
	[ -f "$f" ] || { echo "skip $m (missing)" >&2; continue; }
	: > "$TMP/pp"; : > "$TMP/tg"; : > "$TMP/rss"
	i=0
	while [ $i -lt "$REPS" ]; do
		"$SAM" run -m "$f" -f "$TMP/prompt.txt" -n 128 --temp 0 --ignore-eos -c 512 -t "$THREADS" \
			2> "$TMP/err" > /dev/null
		line=$(tail -n 1 "$TMP/err")
		echo "$line" | sed -n 's/.*prompt \([0-9]*\) tokens, [0-9.]* ms, \([0-9.]*\) tok\/s.*/\2/p' >> "$TMP/pp"
		echo "$line" | sed -n 's/.*generation [0-9]* tokens, [0-9.]* ms, \([0-9.]*\) tok\/s.*/\1/p' >> "$TMP/tg"
		echo "$line" | sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' >> "$TMP/rss"
		ntok=$(echo "$line" | sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p')
		i=$((i + 1))
	done
	pp=$(median < "$TMP/pp"); tg=$(median < "$TMP/tg"); rss=$(median < "$TMP/rss")
	size=$(awk -v b="$(stat -c %s "$f")" 'BEGIN {printf "%.1f", b / 1048576}')
	printf '| %s | %s | %s | %s | %s | %s |' "$m" "$ntok" "$pp" "$tg" "$rss" "$size"
	if [ -n "${LLAMA_BENCH:-}" ]; then
		out=$("$LLAMA_BENCH" -m "$f" -t "$THREADS" -p "$ntok" -n 128 -r "$REPS" -o csv 2>/dev/null || true)
		lpp=$(echo "$out" | awk -F, 'NR>1 && $0 ~ /"'"$ntok"'","0"/ {gsub(/"/,""); print $(NF-1)}' | head -n 1)
		ltg=$(echo "$out" | awk -F, 'NR>1 && $0 ~ /"0","128"/ {gsub(/"/,""); print $(NF-1)}' | head -n 1)
		printf ' %s | %s | %s | %s |' "$(fmt1 "$lpp")" "$(fmt1 "$ltg")" "$(ratio "$pp" "$lpp")" "$(ratio "$tg" "$ltg")"
	fi
	printf '\n'
done

# The notifier: kill -9 -> desktop notification latency and its memory under
# floods of events (bench/notify.sh), when the supervisor and the test helpers
# are built next to SAM_BIN. NOTIFY=0 skips it.
SAMDIR=$(dirname "$SAM")
if [ "${NOTIFY:-1}" != 0 ] && [ -x "$SAMDIR/sam-supervise" ] && [ -x "$SAMDIR/test-helpers/fake_service" ]; then
	printf '\nnotifier (bench/notify.sh):\n'
	sh "$(dirname "$0")/notify.sh" "$SAMDIR"
fi
