#!/bin/sh
# bench/notify.sh [BUILD_DIR] - the notifier's numbers (docs/notify.md):
#
#  1. latency: a supervisor runs `sam api` (stories260K), `sam notify` with
#     backend = command (a script that writes a wall-clock timestamp) and a
#     fake service; the fake service is killed with kill -9 REPS times and we
#     time kill -> the service.crashed row in sam.db (the supervisor's
#     publish) and kill -> the notification program running (the whole path:
#     SIGCHLD, the event row, the api's stream, the notifier, its child).
#     Median and max; the goal is < 1 s.
#  2. footprint: the notifier's CPU over IDLE seconds connected to a silent
#     stream, and its VmRSS before and after two floods of FLOOD matching
#     events (rate-limited: a few shown, the rest logged and summed up): a
#     long-running service must not grow.
#
#   REPS (default 9), FLOOD (default 20000), IDLE (default 10),
#   SAM_MODELS (default ../shared/models)
# Needs: curl, sqlite3, a built tree (make), Linux /proc.
set -eu
. "$(dirname "$0")/lib.sh"
BUILD="${1:-build}"
BUILD=$(cd "$BUILD" && pwd)
SAM="$BUILD/sam"
SUP="$BUILD/sam-supervise"
FAKE="$BUILD/test-helpers/fake_service"
MODEL="$(cd "${SAM_MODELS:-../shared/models}" && pwd)/stories260K.gguf"
REPS="${REPS:-9}"
FLOOD="${FLOOD:-20000}"
IDLE="${IDLE:-10}"
for f in "$SAM" "$SUP" "$FAKE" "$MODEL"; do
	[ -e "$f" ] || { echo "bench/notify.sh: $f is missing (run make)" >&2; exit 1; }
done
command -v sqlite3 > /dev/null || { echo "bench/notify.sh: needs the sqlite3 shell" >&2; exit 1; }
TMP=$(mktemp -d)
SUPPID=
cleanup() {
	[ -n "$SUPPID" ] && kill "$SUPPID" 2>/dev/null && wait "$SUPPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f\n", (a - b) * 1000}'; }
elapsed_over() { awk -v a="$(now)" -v b="$1" -v l="$2" 'BEGIN {exit !(a - b > l)}'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
health() { curl -s --max-time 2 "http://127.0.0.1:$PN/health" || true; }
received() { health | grep -o '"received": *[0-9]*' | grep -o '[0-9]*$' || echo 0; }
sql() { sqlite3 -cmd '.timeout 10000' "$H/sam.db" "$1"; }

H="$TMP/home"; mkdir -p "$H"
PA=$(free_port); PN=$(free_port); PV=$(free_port)
cat > "$TMP/stamp.sh" <<EOF
#!/bin/sh
printf '%s %s\n' "\$(date +%s.%N)" "\$1" >> "$TMP/notified"
EOF
chmod +x "$TMP/stamp.sh"
# crash_loop_window 1 s: each kill (1.2 s apart) is a first failure, restarted at once;
# dedup_window 0: the same crash repeated is shown each time, so each is timed
cat > "$H/sam.conf" <<EOF
[supervisor]
crash_loop_window = 1
[api]
model = $MODEL
[service.api]
port = $PA
command = sam api --port $PA -c 256 -t 1
[service.notifier]
port = $PN
[service.learn-watch]
enabled = false
[service.learn-curriculum]
enabled = false
[service.voice]
enabled = false
[service.vision]
enabled = false
[service.victim]
command = $FAKE --port $PV
port = $PV
ready = http://127.0.0.1:$PV/
[notify]
backend = command
command = $TMP/stamp.sh
events = service.crashed, bench.*
rate = 20
rate_window = 60
dedup_window = 0
EOF
SAM_HOME="$H" SAM_FAKE_MEMAVAILABLE_MB=8000 "$SUP" --foreground 2>"$TMP/supervisor.err" &
SUPPID=$!
t0=$(now)
until health | grep -q '"connected": *true' && [ -s "$H/run/victim.pid" ]; do
	elapsed_over "$t0" 60 && { echo "the notifier never connected" >&2; tail -n 30 "$TMP/supervisor.err" >&2; exit 1; }
	sleep 0.05
done
: > "$TMP/notified"

# ---- 1. kill -9 -> event row -> notification ----------------------------------------------
: > "$TMP/lat_ev"; : > "$TMP/lat_note"
r=0
while [ $r -lt "$REPS" ]; do
	old=$(cat "$H/run/victim.pid")
	t0=$(now)
	kill -9 "$old"
	r=$((r + 1))
	until [ "$(grep -c 'victim crashed' "$TMP/notified")" -ge $r ]; do
		elapsed_over "$t0" 30 && { echo "no notification within 30 s" >&2; tail -n 30 "$H/logs/notifier.log" >&2; exit 1; }
		sleep 0.002
	done
	t_note=$(grep 'victim crashed' "$TMP/notified" | tail -n 1 | cut -d' ' -f1)
	t_ev=$(sql "SELECT printf('%.6f', time) FROM events WHERE type = 'service.crashed' AND json_extract(data, '\$.pid') = $old;")
	ms "$t_ev" "$t0" >> "$TMP/lat_ev"
	ms "$t_note" "$t0" >> "$TMP/lat_note"
	sleep 1.2 # > crash_loop_window, and the victim is back
done

# ---- 2. the notifier at idle and across floods ------------------------------------------
NPID=$(cat "$H/run/notifier.pid")
ticks() { awk '{print $14 + $15}' "/proc/$NPID/stat"; }
c0=$(ticks); t0=$(now)
sleep "$IDLE"
c1=$(ticks); t1=$(now)
HZ=$(getconf CLK_TCK)
cpu=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v a="$t1" -v b="$t0" 'BEGIN {printf "%.3f", 100 * c / hz / (a - b)}')
cpu_ms=$(awk -v c="$((c1 - c0))" -v hz="$HZ" 'BEGIN {printf "%.0f", 1000 * c / hz}')
rss0=$(rss_kb "$NPID")
flood() {
	base=$(received)
	sql "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $FLOOD)
	     INSERT INTO events(time, source, type, data)
	     SELECT (julianday('now') - 2440587.5) * 86400.0, 'bench', 'bench.flood', json_object('n', x, 'text', 'a flood of events') FROM c;"
	t0=$(now)
	until [ "$(received)" -ge $((base + FLOOD)) ]; do
		elapsed_over "$t0" 120 && { echo "the notifier did not take the flood in 120 s" >&2; exit 1; }
		sleep 0.1
	done
	awk -v a="$(now)" -v b="$t0" -v n="$FLOOD" 'BEGIN {printf "%.0f\n", n / (a - b)}'
}
rate1=$(flood)
rss1=$(rss_kb "$NPID")
rate2=$(flood)
rss2=$(rss_kb "$NPID")
h=$(health)
suppressed=$(echo "$h" | grep -o '"suppressed": *[0-9]*' | grep -o '[0-9]*$')
sent=$(echo "$h" | grep -o '"sent": *[0-9]*' | grep -o '[0-9]*$')
kill "$SUPPID"; wait "$SUPPID" 2>/dev/null || true; SUPPID=

mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
echo
echo "| measurement | result | goal |"
echo "|---|---:|---|"
echo "| kill -9 of a supervised service -> service.crashed row in sam.db, median of $REPS | $(median < "$TMP/lat_ev") ms | |"
echo "| kill -9 -> the notification program runs (via /api/events), median of $REPS | $(median < "$TMP/lat_note") ms | < 1 s |"
echo "| same, max | $(sort -n "$TMP/lat_note" | tail -n 1) ms | < 1 s |"
echo "| notifier CPU at idle, connected to the api's stream, over ${IDLE} s | $cpu % ($cpu_ms ms of CPU) | ~0 % |"
echo "| notifier VmRSS: connected / after $FLOOD events / after $((2 * FLOOD)) | $(mib "$rss0") / $(mib "$rss1") / $(mib "$rss2") MiB | flat |"
echo "| events taken per second in a flood (rate-limited: $sent shown, $suppressed held back) | $rate1, $rate2 | |"
echo
echo "kill -> row (ms): $(tr '\n' ' ' < "$TMP/lat_ev")"
echo "kill -> notification (ms): $(tr '\n' ' ' < "$TMP/lat_note")"
