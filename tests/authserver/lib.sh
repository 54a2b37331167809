# Shared by the authserver tests: a private database, key and server on a free loopback port.
set -eu
: "${top_builddir:=.}" "${top_srcdir:=.}"
AUTHSERVER="$top_builddir/authserver/authserver"
CLIENT="$top_builddir/tests/authserver/sv-client"
T=$(mktemp -d "${TMPDIR:-/tmp}/sv-authserver.XXXXXX")
SERVER_PID=
# Under `make check-valgrind` (SV_VALGRIND set, docs/memcheck.md) authserver runs under
# tests/valgrind/vg, which exits 97 on any memcheck error; waits are SV_TIMEOUT_SCALE times longer.
VG=
[ -z "${SV_VALGRIND:-}" ] || VG="$top_srcdir/tests/valgrind/vg"
SCALE=${SV_TIMEOUT_SCALE:-1}
VG_FAILED=

stop_authserver() {
        local rc=0
        if [ -n "$SERVER_PID" ]; then
                kill -TERM "$SERVER_PID" 2>/dev/null || true
                wait "$SERVER_PID" 2>/dev/null || rc=$?
                SERVER_PID=
                if [ -n "$VG" ] && [ "$rc" = 97 ]; then
                        VG_FAILED=1
                        echo "FAIL: valgrind found errors in authserver (see ${SV_VALGRIND_LOGDIR:-the valgrind logs})"
                        return 1
                fi
        fi
        return 0
}
cleanup() { stop_authserver || true; rm -rf "$T"; [ -z "$VG_FAILED" ] || exit 1; }
trap cleanup EXIT

fail() {
        echo "FAIL: $*"
        if [ -f "$T/server.log" ]; then echo "--- server log (tail)"; tail -n 20 "$T/server.log"; fi
        exit 1
}
ok() { echo "ok - $*"; }

db_opts() { echo --db "$T/db" --master-key "$T/key"; }
admin() { verb=$1; shift; $VG "$AUTHSERVER" "$verb" $(db_opts) "$@"; }
init_db() { admin init >/dev/null || fail "authserver init"; }
enroll() { id=$1; shift; admin enroll --device "$id" --out "$T/$id.vault" "$@" >/dev/null || fail "enroll $id"; }

# A test that sets SV_FAULT cannot run on a binary built with --disable-fault-injection,
# which refuses to start then: skipped, not failed (and not passed).
skip_without_faults() {
        if [ -n "${SV_FAULT:-}" ] && grep -q 'built with --disable-fault-injection' "$T/server.log"; then
                echo "SKIP: authserver was built without fault injection (SV_FAULT)"
                exit 77
        fi
}

start_authserver() {
        : >"$T/server.log"
        # $AUTHSERVER_WORKERS, if set: serve --workers (before "$@": a test's own option wins).
        $VG "$AUTHSERVER" serve $(db_opts) --listen 127.0.0.1:0 ${AUTHSERVER_WORKERS:+--workers "$AUTHSERVER_WORKERS"} \
                "$@" 2>>"$T/server.log" &
        SERVER_PID=$!
        for _ in $(seq 1 $((100 * SCALE))); do
                PORT=$(sed -n 's/^<6>listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/server.log")
                [ -n "$PORT" ] && break
                kill -0 "$SERVER_PID" 2>/dev/null || { skip_without_faults; fail "authserver exited at start"; }
                sleep 0.05
        done
        [ -n "$PORT" ] || fail "authserver did not start listening"
        SERVER=127.0.0.1:$PORT
}

# eventually COMMAND...: true once COMMAND succeeds within 2 s. The server commits on M5,
# which a client sends last and does not wait for: its effects show a moment later.
eventually() {
        for _ in $(seq $((100 * SCALE))); do "$@" && return 0; sleep 0.02; done
        "$@"
}
# within SECONDS COMMAND...: like eventually, for up to SECONDS.
within() {
        local end=$(( $(date +%s) + $1 * SCALE ))
        shift
        while [ "$(date +%s)" -lt "$end" ]; do "$@" && return 0; sleep 0.05; done
        "$@"
}
field_is() { [ "$(show_json "$1" "$2")" = "$3" ]; }
outcomes() { grep -c "handshake device='$1'" "$T/server.log" || true; }   # sessions the server has ended
ok_lines_are() { [ "$(grep -c 'result=ok' "$T/server.log")" = "$1" ]; }

# show_json ID FIELD: one field of `authserver show ID --json`
show_json() { admin show "$1" --json | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
client() { id=$1; shift; "$CLIENT" --server "$SERVER" --vault "$T/$id.vault" "$@"; }

# raw_exchange HEX [BYTES]: send bytes, print the reply as hex: all of it until the server
# closes, or the first BYTES bytes.
raw_exchange() {
        exec 3<>"/dev/tcp/127.0.0.1/$PORT"
        printf "$(echo "$1" | sed 's/../\\x&/g')" >&3
        if [ -n "${2:-}" ]; then
                timeout 5 head -c "$2" <&3 | od -An -tx1 -v | tr -d ' \n'
        else
                timeout 5 od -An -tx1 -v <&3 | tr -d ' \n'
        fi
        exec 3<&- 3>&-
}
