#!/bin/sh
# Text-to-speech real-time factor: seconds of audio produced per second of
# synthesis, over a few paragraphs, cache off (`sam speak` end to end,
# process start included). Usage: bench/voice.sh [path/to/sam] [reps]
set -eu
SAM=${1:-build/sam}
REPS=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SAM_HOME="$tmp/home" SAM_VOICE_CACHE_MB=0
TEXT="The quick brown fox jumps over the lazy dog. SAM is a local assistant written in C; it runs every service as its own process on this machine, and nothing leaves it.
Text to speech uses espeak-ng, a formant synthesiser: it needs no model weights, starts in milliseconds, and speaks dozens of languages. The voice service caches what it said, so a repeated sentence costs one file read.
When the voice service is down, the api speaks in its own process with the same library, so an answer can always be heard. This paragraph is here to make the sample long enough that the measurement is dominated by synthesis rather than by starting the process."
best=""
for i in $(seq "$REPS"); do
	t0=$(date +%s.%N)
	"$SAM" speak "$TEXT" -o "$tmp/out.wav" 2>"$tmp/err"
	t1=$(date +%s.%N)
	secs=$(sed -n 's/.*(\([0-9.]*\) s of audio.*/\1/p' "$tmp/err")
	rtf=$(echo "$secs / ($t1 - $t0)" | bc -l)
	printf 'run %d: %.2f s of audio in %.3f s: %.1fx real time\n' "$i" "$secs" "$(echo "$t1 - $t0" | bc -l)" "$rtf"
	best=$(printf '%s\n%s\n' "$best" "$rtf" | sort -g | tail -n 1)
done
printf 'voice: best real-time factor %.1fx (%d chars, cache off)\n' "$best" "$(printf %s "$TEXT" | wc -m)"
