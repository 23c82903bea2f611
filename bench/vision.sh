#!/bin/sh
# bench/vision.sh [BUILD_DIR] - OCR throughput: images/s for a rendered page
# (ImageMagick, DejaVu Sans 24 pt, 12 lines of text, about 630x350 px),
#  1. in-process: `sam see` with no api (decode + analysis + OCR in one
#     process; the first image pays tesseract's start-up, so N runs are timed
#     as one loop of N separate processes: a floor, start-up included);
#  2. via the service: N sequential POST /process to `sam vision` (the
#     tesseract handle is warm and reused), with curl.
# Needs: a built tree (make), convert (imagemagick), curl.
set -eu
. "$(dirname "$0")/lib.sh"
BUILD="${1:-build}"
BUILD=$(cd "$BUILD" && pwd)
SAM="$BUILD/sam"
N="${N:-20}"
[ -x "$SAM" ] || { echo "bench/vision.sh: $SAM is missing (run make)" >&2; exit 1; }
TMP=$(mktemp -d)
VPID=
cleanup() {
	[ -n "$VPID" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
export SAM_HOME="$TMP/home" SAM_API_URL="http://127.0.0.1:1" SAM_LOG=warn
mkdir -p "$SAM_HOME"
text="Line 1 the quick brown fox jumps over the lazy dog"
for i in $(seq 2 12); do text="${text}
Line $i the quick brown fox jumps over the lazy dog"; done
convert -font /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf -pointsize 24 label:"$text" -bordercolor white -border 20 "$TMP/page.png"
echo "page: $(identify -format '%wx%h' "$TMP/page.png"), $(wc -c < "$TMP/page.png") bytes, $N runs"
t0=$(now)
for i in $(seq 1 "$N"); do "$SAM" see "$TMP/page.png" > /dev/null; done
t1=$(now)
echo "in-process (sam see, a process per image): $(calc "$N / ($t1 - $t0)") images/s"
"$SAM" vision --port 0 --port-file "$TMP/port" 2> "$TMP/vision.log" &
VPID=$!
for i in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")
curl -s -o /dev/null --data-binary @"$TMP/page.png" -H 'Content-Type: image/png' "http://127.0.0.1:$PORT/process"  # warm-up
t0=$(now)
for i in $(seq 1 "$N"); do
	curl -sf -o /dev/null --data-binary @"$TMP/page.png" -H 'Content-Type: image/png' "http://127.0.0.1:$PORT/process"
done
t1=$(now)
echo "service (POST /process, raw PNG, warm handle): $(calc "$N / ($t1 - $t0)") images/s"
