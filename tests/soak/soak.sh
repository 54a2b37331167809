#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/soak/soak.sh: mixed load against one authserver for SOAK_SECONDS, with the server's
# resident memory, open descriptors and database size sampled; fails if any of them keeps
# growing, or if a good device cannot authenticate at the end. Not part of `make check` nor
# of CI (docs/soak.md). Run it from a build tree, e.g. `make soak SOAK_SECONDS=1800`, or
#   top_builddir=BUILD top_srcdir=SRC tests/soak/soak.sh
#
# Load (each a loop of its own until the time is up):
#   good     SOAK_GOOD enrolled devices (sv-client), batches of 10 handshakes, over IPv6
#            loopback ([::1]) when there is one, so that the attackers' failures, counted per
#            address by the back-off, do not slow them down
#   decoys   unknown ids (vaults enrolled in another database), from 127.0.0.1
#   drops    a device enrolled for it, and a decoy, that drop the connection after M1, after
#            M3, or never send M5 (sv-client --fault), from 127.0.0.1
#   junk     random bytes and half headers (sv-flood --mode random|partial), from 127.0.0.1
#   idle     SOAK_FLOOD_SOURCES addresses (127.0.1.1, 127.0.2.1, ...: distinct /24s), each
#            holding SOAK_FLOOD_COUNT silent connections for 5 s, again and again
#
# Every SOAK_INTERVAL seconds one CSV row into SOAK_OUT/samples.csv (SOAK_OUT defaults to
# $top_builddir/soak-results/<UTC time>/; the server's log is copied there at the end):
#   seconds,rss_kb,fds,db_bytes,wal_bytes,good_ok,good_failed
# db_bytes is the database file, wal_bytes its -wal file; good_* count the good devices'
# handshakes so far. At the end, for each of rss_kb, fds and db_bytes+wal_bytes, the maximum
# over the last third of the samples must not exceed the maximum over the first third by more
# than a tolerance (SOAK_RSS_TOL percent + SOAK_RSS_SLACK_KB, SOAK_FD_SLACK descriptors,
# SOAK_DB_TOL percent + SOAK_DB_SLACK_KB): a bounded quantity levels off after the first third,
# a leak keeps climbing. Extra server options: SOAK_SERVER_ARGS (e.g. an audit retention).
# Exit 0 pass, 1 fail, 2 usage or setup error.
set -u
export LC_ALL=C

: "${top_builddir:=.}" "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
SOAK_SECONDS=${SOAK_SECONDS:-1800}
SOAK_INTERVAL=${SOAK_INTERVAL:-10}
SOAK_GOOD=${SOAK_GOOD:-4}
SOAK_FLOOD_SOURCES=${SOAK_FLOOD_SOURCES:-4}
SOAK_FLOOD_COUNT=${SOAK_FLOOD_COUNT:-32}
SOAK_PAUSE=${SOAK_PAUSE:-0.2}
SOAK_RSS_TOL=${SOAK_RSS_TOL:-25}
SOAK_RSS_SLACK_KB=${SOAK_RSS_SLACK_KB:-2048}
SOAK_FD_SLACK=${SOAK_FD_SLACK:-16}
SOAK_DB_TOL=${SOAK_DB_TOL:-25}
SOAK_DB_SLACK_KB=${SOAK_DB_SLACK_KB:-1024}
SOAK_SERVER_ARGS=${SOAK_SERVER_ARGS:-}

AUTHSERVER=$top_builddir/authserver/authserver
CLIENT=$top_builddir/tests/authserver/sv-client
FLOOD=$top_builddir/tests/authserver/sv-flood

usage() { echo "soak: $*" >&2; exit 2; }
for v in SOAK_SECONDS SOAK_INTERVAL SOAK_GOOD SOAK_FLOOD_SOURCES SOAK_FLOOD_COUNT SOAK_RSS_TOL \
         SOAK_RSS_SLACK_KB SOAK_FD_SLACK SOAK_DB_TOL SOAK_DB_SLACK_KB; do
        case ${!v} in ''|*[!0-9]*) usage "$v must be a whole number, not '${!v}'" ;; esac
done
[ "$SOAK_INTERVAL" -ge 1 ] || usage "SOAK_INTERVAL must be at least 1"
[ $((SOAK_SECONDS / SOAK_INTERVAL)) -ge 6 ] ||
        usage "SOAK_SECONDS must allow at least 6 samples (SOAK_INTERVAL=$SOAK_INTERVAL)"
[ "$SOAK_GOOD" -ge 1 ] && [ "$SOAK_FLOOD_SOURCES" -le 250 ] || usage "SOAK_GOOD >= 1, SOAK_FLOOD_SOURCES <= 250"
for b in "$AUTHSERVER" "$CLIENT" "$FLOOD"; do
        [ -x "$b" ] || usage "$b is not built (make check TESTS= builds the test tools)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-soak.XXXXXX")
: "${SOAK_OUT:=$top_builddir/soak-results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$SOAK_OUT" || usage "cannot create $SOAK_OUT"
CSV=$SOAK_OUT/samples.csv
SERVER_PID= LOAD_PIDS=

stop_load() {
        local p
        touch "$T/stop"
        for _ in $(seq 300); do                 # every loop ends within its current round
                alive=
                for p in $LOAD_PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
                [ -z "$alive" ] && break
                sleep 0.1
        done
        for p in $LOAD_PIDS; do kill -TERM "$p" 2>/dev/null; done
        for p in $LOAD_PIDS; do wait "$p" 2>/dev/null; done
        LOAD_PIDS=
}
cleanup() {
        stop_load
        [ -n "$SERVER_PID" ] && { kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }
        [ -f "$T/server.log" ] && cp "$T/server.log" "$SOAK_OUT/server.log" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

fail() { echo "FAIL: $*"; [ -f "$T/server.log" ] && { echo "--- server log (tail)"; tail -n 20 "$T/server.log"; }; exit 1; }
stopped() { [ -e "$T/stop" ]; }

# --- set-up: the server's database, and the decoys' own (their ids are unknown to the server)
admin() { "$AUTHSERVER" "$1" --db "$2" --master-key "$3" "${@:4}"; }
admin init "$T/db" "$T/key" >/dev/null || usage "authserver init failed"
admin init "$T/decoy.db" "$T/decoy.key" >/dev/null || usage "authserver init (decoys) failed"
for i in $(seq "$SOAK_GOOD"); do
        admin enroll "$T/db" "$T/key" --device "good$i" --out "$T/good$i.vault" >/dev/null || usage "enroll good$i"
done
admin enroll "$T/db" "$T/key" --device dropper --out "$T/dropper.vault" >/dev/null || usage "enroll dropper"
for i in 1 2 3 4; do
        admin enroll "$T/decoy.db" "$T/decoy.key" --device "decoy$i" --out "$T/decoy$i.vault" >/dev/null ||
                usage "enroll decoy$i"
done

V6=
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && V6=1
listen=(--listen 127.0.0.1:0)
[ -n "$V6" ] && listen+=(--listen '[::1]:0')
# shellcheck disable=SC2086  # SOAK_SERVER_ARGS is a list of options
"$AUTHSERVER" serve --db "$T/db" --master-key "$T/key" --config /dev/null "${listen[@]}" \
        $SOAK_SERVER_ARGS 2>"$T/server.log" &
SERVER_PID=$!
PORT4= PORT6=
for _ in $(seq 200); do
        PORT4=$(sed -n 's/^<6>listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/server.log")
        PORT6=$(sed -n 's/^<6>listening on \[::1\]:\([0-9]*\)$/\1/p' "$T/server.log")
        [ -n "$PORT4" ] && { [ -z "$V6" ] || [ -n "$PORT6" ]; } && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.log"; usage "authserver exited at start"; }
        sleep 0.05
done
[ -n "$PORT4" ] || usage "authserver did not listen"
ATTACK=127.0.0.1:$PORT4
if [ -n "$V6" ] && [ -n "$PORT6" ]; then
        GOOD_SERVER="[::1]:$PORT6"
else
        GOOD_SERVER=$ATTACK
        echo "# no IPv6 loopback: the good devices share 127.0.0.1 with the attackers (and their back-off)"
fi
for i in $(seq "$SOAK_GOOD"); do
        "$CLIENT" --server "$GOOD_SERVER" --vault "$T/good$i.vault" --count 1 >/dev/null ||
                fail "good$i cannot authenticate before the load starts"
done

# --- the load
good_loop() {
        while ! stopped; do
                "$CLIENT" --server "$GOOD_SERVER" --vault "$T/good$1.vault" --count 10 --timeout 10 \
                        >>"$T/good$1.count" 2>>"$T/good$1.err"
                sleep "$SOAK_PAUSE"
        done
}
decoy_loop() {
        local i=0
        while ! stopped; do
                i=$((i % 4 + 1))
                "$CLIENT" --server "$ATTACK" --vault "$T/decoy$i.vault" --count 1 --timeout 10 >/dev/null 2>&1
                echo >>"$T/decoys.count"
                sleep "$SOAK_PAUSE"
        done
}
drop_loop() {
        local f
        while ! stopped; do
                for f in close-m1 close-m3 drop-m5; do
                        "$CLIENT" --server "$ATTACK" --vault "$T/dropper.vault" --fault "$f" --timeout 10 >/dev/null 2>&1
                done
                "$CLIENT" --server "$ATTACK" --vault "$T/decoy1.vault" --fault close-m1 --timeout 10 >/dev/null 2>&1
                echo >>"$T/drops.count"
                sleep "$SOAK_PAUSE"
        done
}
junk_loop() {
        while ! stopped; do
                "$FLOOD" --server "$ATTACK" --count 10 --mode random >/dev/null 2>&1
                "$FLOOD" --server "$ATTACK" --count 5 --mode partial --hold 1 >/dev/null 2>&1
                echo >>"$T/junk.count"
                sleep 1
        done
}
idle_loop() {
        while ! stopped; do
                "$FLOOD" --server "$ATTACK" --count "$SOAK_FLOOD_COUNT" --mode idle --hold 5 \
                        --source "127.0.$1.1" >/dev/null 2>>"$T/flood.err"
                echo >>"$T/idle.count"
                sleep 1
        done
}
for i in $(seq "$SOAK_GOOD"); do good_loop "$i" & LOAD_PIDS="$LOAD_PIDS $!"; done
decoy_loop & LOAD_PIDS="$LOAD_PIDS $!"
drop_loop & LOAD_PIDS="$LOAD_PIDS $!"
junk_loop & LOAD_PIDS="$LOAD_PIDS $!"
for s in $(seq "$SOAK_FLOOD_SOURCES"); do idle_loop "$s" & LOAD_PIDS="$LOAD_PIDS $!"; done

# --- sampling
good_counts() {         # "ok failed" over every good device's batches so far
        cat "$T"/good*.count 2>/dev/null | awk '/passed/ { ok += $1; bad += $3 } END { print ok + 0, bad + 0 }'
}
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
echo "seconds,rss_kb,fds,db_bytes,wal_bytes,good_ok,good_failed" >"$CSV"
echo "# soak: ${SOAK_SECONDS}s, a sample every ${SOAK_INTERVAL}s into $CSV; server pid $SERVER_PID"
start=$(date +%s)
next=$start
while :; do
        now=$(date +%s)
        [ $((now - start)) -ge "$SOAK_SECONDS" ] && break
        if [ "$now" -lt "$next" ]; then sleep 0.5; continue; fi
        next=$((next + SOAK_INTERVAL))
        kill -0 "$SERVER_PID" 2>/dev/null || fail "authserver died after $((now - start)) s"
        rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$SERVER_PID/status")
        fds=$(ls "/proc/$SERVER_PID/fd" | wc -l)
        read -r gok gbad <<<"$(good_counts)"
        echo "$((now - start)),$rss,$fds,$(fsize "$T/db"),$(fsize "$T/db-wal"),$gok,$gbad" | tee -a "$CSV"
done
stop_load

# --- the end: every good device still authenticates; the server stops cleanly
for i in $(seq "$SOAK_GOOD"); do
        "$CLIENT" --server "$GOOD_SERVER" --vault "$T/good$i.vault" --count 3 >"$T/final" 2>&1 ||
                fail "good$i cannot authenticate after the soak: $(cat "$T/final")"
done
echo "ok - all $SOAK_GOOD good devices authenticate after the soak"
kill -0 "$SERVER_PID" 2>/dev/null || fail "authserver died"
kill -TERM "$SERVER_PID"
rc=0; wait "$SERVER_PID" || rc=$?
SERVER_PID=
[ "$rc" = 0 ] || fail "authserver exited $rc on SIGTERM"
grep 'stopped:' "$T/server.log" | tail -n 1

# --- summary and verdict
count() { cat "$T/$1.count" 2>/dev/null | wc -l; }
read -r gok gbad <<<"$(good_counts)"
echo "# load: good handshakes $gok ok / $gbad failed; decoy runs $(count decoys); drop rounds $(count drops);" \
     "junk rounds $(count junk); idle flood rounds $(count idle)"
echo "# server log: $(wc -l <"$T/server.log") lines, $(fsize "$T/server.log") bytes"
awk -F, -v rtol="$SOAK_RSS_TOL" -v rslack="$SOAK_RSS_SLACK_KB" -v fslack="$SOAK_FD_SLACK" \
    -v dtol="$SOAK_DB_TOL" -v dslack="$SOAK_DB_SLACK_KB" '
NR == 1 { next }
{ n++; rss[n] = $2; fds[n] = $3; db[n] = $4 + $5 }
function max(a, from, to,   m, i) { m = a[from]; for (i = from + 1; i <= to; i++) if (a[i] > m) m = a[i]; return m }
function min(a, from, to,   m, i) { m = a[from]; for (i = from + 1; i <= to; i++) if (a[i] < m) m = a[i]; return m }
function judge(name, a, limit_pct, slack,   first, last, limit, verdict) {
        first = max(a, 1, third); last = max(a, n - third + 1, n)
        limit = first * (1 + limit_pct / 100) + slack
        verdict = last <= limit ? "ok" : "GROWS"
        if (last > limit) bad++
        printf "%-9s min %12d  max %12d  first-third max %12d  last-third max %12d  limit %12d  %s\n",
               name, min(a, 1, n), max(a, 1, n), first, last, limit, verdict
}
END {
        third = int(n / 3)
        printf "# %d samples, thirds of %d\n", n, third
        judge("rss_kb", rss, rtol, rslack)
        judge("fds", fds, 0, fslack)
        judge("db+wal_B", db, dtol, dslack * 1024)
        exit bad ? 1 : 0
}' "$CSV" || fail "a resource grows over the soak (samples: $CSV)"
echo "PASS: soak of ${SOAK_SECONDS}s (samples: $CSV)"
