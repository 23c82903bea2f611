#!/bin/sh
# bench/learn.sh [BUILD_DIR] - the learning issue's two numbers:
#
#  1. ingest throughput: `sam learn add` of one JSONL chat export of SIZE_MB
#     (default 100) MB - OpenAI and ShareGPT lines of varied length, 2 % of
#     them repeated - in examples/s and MB/s. Baselines from the same run
#     and file: `sha256sum` (reading and hashing it, the floor of any
#     dedup) and the sqlite3 shell loading its lines into a table with a
#     UNIQUE column (storing them, without parsing or normalising).
#  2. watcher RSS at idle (VmRSS, after its first scan): watching an empty
#     inbox, and watching FILES (default 5000) files in 50 directories.
#
# Needs: a built tree (make), sqlite3, awk, Linux /proc.
set -eu
. "$(dirname "$0")/lib.sh"
BUILD="${1:-build}"
BUILD=$(cd "$BUILD" && pwd)
SAM="$BUILD/sam"
SIZE_MB="${SIZE_MB:-100}"
FILES="${FILES:-5000}"
[ -x "$SAM" ] || { echo "bench/learn.sh: $SAM is missing (run make)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench/learn.sh: needs the sqlite3 shell" >&2; exit 1; }
TMP=$(mktemp -d)
WPID=
cleanup() {
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
secs() { calc "$2 - $1"; }

# ---- 1. ingest ----------------------------------------------------------------------
awk -v target=$((SIZE_MB * 1024 * 1024)) 'BEGIN {
	srand(7); n = 0; bytes = 0
	split("the a model answer question small machine memory file engine quick brown fox data user", w, " ")
	while (bytes < target) {
		k = (rand() < 0.02 && n > 100) ? int(rand() * n) : n   # a few repeats, as real exports have
		q = ""; a = ""
		ql = 5 + (k * 7) % 40; al = 20 + (k * 13) % 300
		for (i = 0; i < ql; i++) q = q w[1 + (k + i * 3) % 15] " "
		for (i = 0; i < al; i++) a = a w[1 + (k * 5 + i) % 15] " "
		if (k % 2) line = sprintf("{\"messages\":[{\"role\":\"user\",\"content\":\"%s#%d\"},{\"role\":\"assistant\",\"content\":\"%s\"}]}", q, k, a)
		else line = sprintf("{\"conversations\":[{\"from\":\"human\",\"value\":\"%s#%d\"},{\"from\":\"gpt\",\"value\":\"%s\"}]}", q, k, a)
		print line; bytes += length(line) + 1; n++
	}
}' > "$TMP/export.jsonl"
LINES=$(wc -l < "$TMP/export.jsonl")
MB=$(calc "$(stat -c %s "$TMP/export.jsonl") / 1048576")

t0=$(now); sha256sum "$TMP/export.jsonl" > /dev/null; t1=$(now)
T_SHA=$(secs "$t0" "$t1")

t0=$(now)
sqlite3 "$TMP/plain.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(line TEXT UNIQUE ON CONFLICT IGNORE);" > /dev/null
sqlite3 -cmd ".mode ascii" -cmd '.separator "\037" "\n"' "$TMP/plain.db" ".import $TMP/export.jsonl t"
t1=$(now)
T_SQL=$(secs "$t0" "$t1")

mkdir -p "$TMP/home"
t0=$(now)
SAM_HOME="$TMP/home" "$SAM" learn add "$TMP/export.jsonl" > "$TMP/add.out"
t1=$(now)
T_SAM=$(secs "$t0" "$t1")
STORED=$(sqlite3 "$TMP/home/sam.db" "SELECT count(*) FROM examples")

echo "ingest: $LINES lines, $(printf %.1f "$MB") MB, $STORED examples stored"
printf '  sam learn add   %7.2f s  %9.0f examples/s  %6.1f MB/s\n' "$T_SAM" "$(calc "$LINES / $T_SAM")" "$(calc "$MB / $T_SAM")"
printf '  sqlite3 .import %7.2f s  (storing lines only)   ratio sam/sqlite3 time %.2f\n' "$T_SQL" "$(calc "$T_SAM / $T_SQL")"
printf '  sha256sum       %7.2f s  (reading + hashing)    ratio sam/sha256sum time %.1f\n' "$T_SHA" "$(calc "$T_SAM / $T_SHA")"

# ---- 2. watcher RSS at idle -----------------------------------------------------------
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
idle_rss() { # DIR: start a watcher on DIR, wait for its first scan to end, print its VmRSS in kB
	SAM_HOME="$TMP/home2" SAM_TRAIN_AUTO=false SAM_LEARN_WATCH_DEBOUNCE_MS=0 \
		"$SAM" learn watch --port 0 --port-file "$TMP/port" "$1" 2> "$TMP/watch.log" &
	WPID=$!
	while [ ! -s "$TMP/port" ]; do sleep 0.05; done
	port=$(cat "$TMP/port")
	want=$2
	while :; do
		h=$(curl -s "http://127.0.0.1:$port/health")
		seen=$(echo "$h" | sed -n 's/.*"ingested":\([0-9]*\),"unchanged":\([0-9]*\).*/\1 \2/p' | awk '{ print $1 + $2 }')
		pend=$(echo "$h" | sed -n 's/.*"pending":\([0-9]*\).*/\1/p')
		[ "${seen:-0}" -ge "$want" ] && [ "${pend:-1}" -eq 0 ] && break
		sleep 0.1
	done
	sleep 1
	rss_kb "$WPID"
	kill "$WPID"; wait "$WPID" 2>/dev/null || true; WPID=
	rm -f "$TMP/port"
}
mkdir -p "$TMP/home2" "$TMP/empty" "$TMP/full"
i=0
while [ $i -lt 50 ]; do mkdir -p "$TMP/full/d$i"; i=$((i + 1)); done
awk -v n="$FILES" -v dir="$TMP/full" 'BEGIN { for (i = 0; i < n; i++) {
	f = sprintf("%s/d%d/f%d.jsonl", dir, i % 50, i)
	printf "{\"text\":\"file %d\"}\n", i > f; close(f) } }'
R0=$(idle_rss "$TMP/empty" 0)
R1=$(idle_rss "$TMP/full" "$FILES")
printf 'watcher RSS at idle: empty inbox %.1f MiB; %d files in 51 directories %.1f MiB (ratio %.2f)\n' \
	"$(calc "$R0 / 1024")" "$FILES" "$(calc "$R1 / 1024")" "$(calc "$R1 / $R0")"
