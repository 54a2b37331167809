# SPDX-License-Identifier: MIT
# Shared by tests/e2e/*.test: the whole product as real processes on loopback and Unix
# sockets in a private temp dir: swtpm, vaultd, authserver, devicectl, and sv-proxy.
#
#   setup_system [ENROLL ARGS...]  swtpm + authserver + vaultd; device "dev" enrolled and
#                                  provisioned; $SERVER is authserver's address
#   auth [ARGS...]                 devicectl authenticate against $SERVER (keyring: none)
#   start_proxy RULES...           sv-proxy in front of authserver; its address in $PROXY
#   server_epoch / device_epoch    the two sides' epochs
#   restart_vaultd / restart_authserver [ENV=VALUE...]
#                                  e.g. restart_vaultd SV_FAULT=after-file (docs/vault-file.md §7)
#   need_vaultd_faults             skips the test (77) if vaultd was built without SV_FAULT
#   $SERVE_ARGS                    more options for authserver serve (start_authserver)
#   $SV_E2E_POSTGRESQL             if set (non-empty), authserver's store is PostgreSQL: a
#                                  private cluster (tests/lib/pg.sh) started here, its URI in
#                                  $DB (else $DB is the SQLite file $T/db); skip (77) without
#                                  the PostgreSQL binaries
#   $AUTHSERVER_WORKERS            serve --workers N (start_authserver); unset: the server's default
#   $VAULTD_ARGS                   more options for vaultd (start_vaultd); authentications
#                                  are not rate-limited here (--max-auth-rate 0): tests
#                                  authenticate far faster than the default allows
set -u
: "${top_builddir:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib/files.sh"
AUTHSERVER=$top_builddir/authserver/authserver
VAULTD=$top_builddir/vaultd/vaultd
DEVICECTL=$top_builddir/devicectl/devicectl
PROXY_BIN=$top_builddir/tests/e2e/sv-proxy
SWTPM_BIN=${SWTPM:-}
[ -n "$SWTPM_BIN" ] || SWTPM_BIN=$(command -v swtpm || true)
[ -x "$SWTPM_BIN" ] || { echo "SKIP: no swtpm"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/sv-e2e.XXXXXX")
NAME=$(basename "$0" .test)
SERVER_PID= VAULTD_PID= PROXY_PID= SERVER= PROXY=
# Under `make check-valgrind` (SV_VALGRIND set, docs/memcheck.md) authserver, vaultd and
# devicectl run under tests/valgrind/vg, which exits 97 on any memcheck error (vg_reaped
# notes it for the daemons, whatever else the test expected); time-outs are SV_TIMEOUT_SCALE
# times longer.
VG=
[ -z "${SV_VALGRIND:-}" ] || VG="$top_srcdir/tests/valgrind/vg"
SCALE=${SV_TIMEOUT_SCALE:-1}
VG_FAILED=
vg_reaped() {
        [ -n "$VG" ] && [ "$2" = 97 ] || return 0
        VG_FAILED=1
        echo "FAIL ($NAME): valgrind found errors in $1 (see ${SV_VALGRIND_LOGDIR:-the valgrind logs})"
}

cleanup() {
        local rc
        for p in $PROXY_PID $VAULTD_PID $SERVER_PID; do kill -TERM "$p" 2>/dev/null || true; done
        for p in $PROXY_PID $VAULTD_PID $SERVER_PID; do rc=0; wait "$p" 2>/dev/null || rc=$?; vg_reaped "pid $p" "$rc"; done
        [ -s "$T/tpm/pid" ] && kill -TERM "$(cat "$T/tpm/pid")" 2>/dev/null
        [ -z "${SV_E2E_POSTGRESQL:-}" ] || pg_stop
        rm -rf "$T"
        [ -z "$VG_FAILED" ] || exit 1
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
        echo "FAIL ($NAME): $*"
        for f in server.log vaultd.log proxy.log; do
                [ -s "$T/$f" ] && { echo "--- $f"; tail -n 15 "$T/$f"; }
        done
        exit 1
}
ok() { echo "ok - $*"; }

DB=$T/db
if [ -n "${SV_E2E_POSTGRESQL:-}" ]; then
        . "$top_srcdir/tests/lib/pg.sh"
        grep -q '^#define HAVE_LIBPQ 1' "$top_builddir/config.h" || { echo "SKIP: built without PostgreSQL (libpq)"; exit 77; }
        pg_need
        pg_start sv || fail "PostgreSQL did not start"
        DB=$PG_URI
        echo "# authserver's store: PostgreSQL, a private cluster in $T"
fi

start_swtpm() {
        mkdir -p "$T/tpm"
        "$SWTPM_BIN" socket --tpm2 --daemon --server type=unixio,path="$T/tpm/sock" \
                --ctrl type=unixio,path="$T/tpm/sock.ctrl" --tpmstate dir="$T/tpm" \
                --flags not-need-init,startup-clear --pid file="$T/tpm/pid" || fail "swtpm"
        for _ in $(seq 200); do [ -S "$T/tpm/sock" ] && [ -s "$T/tpm/pid" ] && return; sleep 0.01; done
        fail "swtpm did not start"
}

admin() { verb=$1; shift; $VG "$AUTHSERVER" "$verb" --db "$DB" --master-key "$T/key" "$@"; }

# A binary built with --disable-fault-injection refuses SV_FAULT at start: the test that
# needs the fault is skipped, not failed (and not passed). LINES: log lines to pass over.
skip_without_faults() {
        if tail -n +"$(($1 + 1))" "$T/server.log" | grep -q 'built with --disable-fault-injection'; then
                echo "SKIP: authserver was built without fault injection (SV_FAULT)"
                exit 77
        fi
}

start_authserver() {
        local skip
        touch "$T/server.log"
        skip=$(wc -l <"$T/server.log")          # the log is kept across restarts: read only what follows
        env "$@" $VG "$AUTHSERVER" serve --db "$DB" --master-key "$T/key" --listen 127.0.0.1:0 \
                --config /dev/null ${AUTHSERVER_WORKERS:+--workers "$AUTHSERVER_WORKERS"} ${SERVE_ARGS:-} \
                2>>"$T/server.log" &
        SERVER_PID=$!
        for _ in $(seq $((200 * SCALE))); do
                port=$(tail -n +"$((skip + 1))" "$T/server.log" | sed -n 's/^<6>listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p')
                [ -n "$port" ] && { SERVER=127.0.0.1:$port; return; }
                kill -0 "$SERVER_PID" 2>/dev/null || { skip_without_faults "$skip"; fail "authserver exited at start"; }
                sleep 0.02
        done
        fail "authserver did not listen"
}

start_vaultd() {
        rm -f "$T/vaultd.sock"
        mkdir -p "$T/state"
        env "$@" $VG "$VAULTD" --tcti "swtpm:path=$T/tpm/sock" --state-dir "$T/state" --socket "$T/vaultd.sock" \
                --config /dev/null --max-auth-rate 0 --key-file "$T/vaultd-key/vaultd.key" ${VAULTD_ARGS:-} 2>>"$T/vaultd.log" &
        VAULTD_PID=$!
        for _ in $(seq $((500 * SCALE))); do
                [ -S "$T/vaultd.sock" ] && return
                kill -0 "$VAULTD_PID" 2>/dev/null || fail "vaultd exited at start"
                sleep 0.01
        done
        fail "vaultd did not listen"
}

# A process that is to die at a crash point: wait for it, whatever its status.
reap() { local rc=0; eval "pid=\$$1"; [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || rc=$?; vg_reaped "$1" "$rc"; }; eval "$1="; }
restart_vaultd() { reap VAULTD_PID; start_vaultd "$@"; }
# vaultd built with ./configure --disable-fault-injection refuses SV_FAULT (exit 2, naming it).
need_vaultd_faults() {
        local out rc=0
        out=$(SV_FAULT=after-file "$VAULTD" --version 2>&1) || rc=$?
        [ "$rc" = 0 ] && return 0
        case $out in *"--disable-fault-injection"*) echo "SKIP: vaultd was built with --disable-fault-injection"; exit 77 ;; esac
        fail "vaultd --version with SV_FAULT set: exit $rc: $out"
}
restart_authserver() { reap SERVER_PID; start_authserver "$@"; }

ctl() { $VG "$DEVICECTL" --socket "$T/vaultd.sock" "$@"; }
auth() { ctl authenticate --server "$SERVER" --keyring none --timeout $((5 * SCALE)) "$@"; }

setup_system() {
        start_swtpm
        admin init >/dev/null || fail "authserver init"
        admin enroll --device dev --out "$T/bundle" "$@" >/dev/null || fail "enroll"
        start_authserver
        start_vaultd
        ctl provision "$T/bundle" >/dev/null || fail "provision"
}

server_epoch() { admin show dev --json | sed -n 's/.*"epoch":\([0-9]*\).*/\1/p'; }
device_epoch() { ctl status --json | sed -n 's/.*"epoch":\([0-9]*\).*/\1/p'; }

start_proxy() {
        rm -f "$T/proxy.port"
        "$PROXY_BIN" --upstream "$SERVER" --port-file "$T/proxy.port" "$@" 2>>"$T/proxy.log" &
        PROXY_PID=$!
        for _ in $(seq 200); do [ -s "$T/proxy.port" ] && { PROXY=127.0.0.1:$(cat "$T/proxy.port"); return; }; sleep 0.01; done
        fail "sv-proxy did not start"
}
stop_proxy() { reap PROXY_PID; }

# A clean handshake must succeed and leave both sides at the same epoch (the server commits
# on M5, which devicectl sends last: give it a moment).
assert_in_step() {
        auth >/dev/null 2>"$T/err" || fail "$1: a clean handshake failed: $(cat "$T/err")"
        for _ in $(seq $((50 * SCALE))); do
                [ "$(server_epoch)" = "$(device_epoch)" ] && return
                sleep 0.02
        done
        fail "$1: server epoch $(server_epoch), device $(device_epoch)"
}
