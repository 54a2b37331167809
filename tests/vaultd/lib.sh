# SPDX-License-Identifier: MIT
# Shared by tests/vaultd/*.test (sourced). Each test gets a private temp dir; every swtpm and
# vaultd started here is stopped at exit, on failure too (trap). No ports: unix sockets only.
#
#   start_swtpm TPM                  a fresh swtpm; TCTI in $(tcti TPM)
#   start_vaultd NAME TPM [ARGS...]  vaultd with state $T/NAME/state, socket $T/NAME/sock,
#                                    key file $T/NAME/key/vaultd.key (made at the first
#                                    provisioning; ARGS may name another),
#                                    log $T/NAME/log; waits until it listens ($SV_FAULT, set
#                                    for this call only as in `SV_FAULT=after-file start_vaultd
#                                    v a`, arms vaultd's test-only fault points, docs/vault-file.md
#                                    §7; authentications are not rate-limited unless $AUTH_RATE
#                                    says so: a --max-auth-rate value, or "default")
#   need_fault_injection             skips the test (77) if vaultd was built without SV_FAULT
#   stop_vaultd NAME                 SIGTERM; fails unless it exits 0
#   expect_vaultd_exit NAME CODE     waits for vaultd to die by itself with CODE
#   ctl NAME ARGS...                 devicectl against NAME's socket
#   fake NAME ARGS...                fake-server against NAME's socket, server state $T/NAME/server
#   json_field JSON KEY              a scalar from devicectl --json output
#   fd_count NAME                    how many descriptors vaultd NAME has open
#   fail MESSAGE                     print, show logs, exit 1

set -u

: "${top_builddir:?top_builddir must be set (make check sets it)}"
: "${top_srcdir:?top_srcdir must be set}"
. "$top_srcdir/tests/lib/files.sh"

VAULTD=$top_builddir/vaultd/vaultd
DEVICECTL=$top_builddir/devicectl/devicectl
MKBUNDLE=$top_builddir/tests/vaultd/mkbundle
FAKE=$top_builddir/tests/vaultd/fake-server
SOCKPOKE=$top_builddir/tests/vaultd/sockpoke
SWTPM_BIN=${SWTPM:-}
[ -n "$SWTPM_BIN" ] || SWTPM_BIN=$(command -v swtpm || true)
if [ -z "$SWTPM_BIN" ] || [ ! -x "$SWTPM_BIN" ]; then
        echo "SKIP: no swtpm"
        exit 77
fi
for b in "$VAULTD" "$DEVICECTL" "$MKBUNDLE" "$FAKE" "$SOCKPOKE"; do
        [ -x "$b" ] || { echo "FAIL: $b not built" >&2; exit 99; }
done

# Faults are armed per vaultd, never inherited: not by devicectl, nor by every vaultd of a test.
unset SV_FAULT

T=$(mktemp -d "${TMPDIR:-/tmp}/vaultd-test.XXXXXX")
TEST_NAME=$(basename "$0" .test)
VAULTD_NAMES=""
SWTPM_NAMES=""
# Under `make check-valgrind` (SV_VALGRIND set, docs/memcheck.md) vaultd and devicectl run under
# tests/valgrind/vg, which exits 97 on any memcheck error (stop_vaultd and expect_vaultd_exit
# see it as a wrong status, cleanup notes it); waits are SV_TIMEOUT_SCALE times longer.
VG=
[ -z "${SV_VALGRIND:-}" ] || VG="$top_srcdir/tests/valgrind/vg"
SCALE=${SV_TIMEOUT_SCALE:-1}
VG_FAILED=

cleanup() {
        local n pid rc
        for n in $VAULTD_NAMES; do
                pid=$(cat "$T/$n/pid" 2>/dev/null || true)
                [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
        done
        for n in $VAULTD_NAMES; do
                pid=$(cat "$T/$n/pid" 2>/dev/null || true)
                rc=0
                [ -n "$pid" ] && { wait "$pid" 2>/dev/null || rc=$?; }
                if [ -n "$VG" ] && [ "$rc" = 97 ]; then
                        echo "FAIL ($TEST_NAME): valgrind found errors in vaultd $n (see ${SV_VALGRIND_LOGDIR:-the valgrind logs})" >&2
                        VG_FAILED=1
                fi
        done
        for n in $SWTPM_NAMES; do
                pid=$(cat "$T/tpm-$n/pid" 2>/dev/null || true)
                [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
        done
        [ -n "${EXTRA_CLEANUP:-}" ] && eval "$EXTRA_CLEANUP"
        rm -rf "$T"
        [ -z "$VG_FAILED" ] || exit 1
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
        local n
        echo "FAIL ($TEST_NAME): $*" >&2
        for n in $VAULTD_NAMES; do
                if [ -f "$T/$n/log" ]; then
                        echo "---- vaultd $n log ----" >&2
                        tail -n 30 "$T/$n/log" >&2
                fi
        done
        exit 1
}

step() {
        echo "== $*"
}

tcti() {
        echo "swtpm:path=$T/tpm-$1/sock"
}

start_swtpm() {
        local d="$T/tpm-$1" i
        mkdir -p "$d"
        "$SWTPM_BIN" socket --tpm2 --daemon \
                --server type=unixio,path="$d/sock" --ctrl type=unixio,path="$d/sock.ctrl" \
                --tpmstate dir="$d" --flags not-need-init,startup-clear --pid file="$d/pid" \
                || fail "cannot start swtpm $1"
        SWTPM_NAMES="$SWTPM_NAMES $1"
        for i in $(seq 100); do
                [ -S "$d/sock" ] && [ -s "$d/pid" ] && return 0
                sleep 0.01
        done
        fail "swtpm $1 did not come up"
}

# The socket appears only after the TPM is open and the vault file verified (or refused).
start_vaultd() {
        local name=$1 tpm=$2 d="$T/$1" pid i
        shift 2
        mkdir -p "$d/state"
        rm -f "$d/sock"
        # Tests authenticate far faster than vaultd's default rate limit allows.
        rate="--max-auth-rate=${AUTH_RATE:-0}"
        [ "${AUTH_RATE:-}" = default ] && rate=
        env "SV_FAULT=${SV_FAULT:-}" \
                $VG "$VAULTD" --tcti "$(tcti "$tpm")" --state-dir "$d/state" --socket "$d/sock" \
                --config /dev/null --key-file "$d/key/vaultd.key" $rate "$@" 2>>"$d/log" &
        pid=$!
        echo "$pid" >"$d/pid"
        case " $VAULTD_NAMES " in *" $name "*) ;; *) VAULTD_NAMES="$VAULTD_NAMES $name" ;; esac
        for i in $(seq $((500 * SCALE))); do
                [ -S "$d/sock" ] && return 0
                kill -0 "$pid" 2>/dev/null || { wait "$pid"; fail "vaultd $name exited ($?) at start"; }
                sleep 0.01
        done
        fail "vaultd $name did not start listening"
}

# A vaultd built with ./configure --disable-fault-injection refuses to start with SV_FAULT set
# (exit 2, naming the switch); a test that needs a fault then skips rather than fails.
need_fault_injection() {
        local out rc=0
        out=$(SV_FAULT=before-file "$VAULTD" --version 2>&1) || rc=$?
        [ "$rc" = 0 ] && return 0
        case $out in
        *"--disable-fault-injection"*)
                echo "SKIP: vaultd was built with --disable-fault-injection"
                exit 77 ;;
        esac
        fail "vaultd --version with SV_FAULT set: exit $rc: $out"
}

stop_vaultd() {
        local d="$T/$1" pid rc
        pid=$(cat "$d/pid")
        kill -TERM "$pid" 2>/dev/null || fail "vaultd $1 is not running"
        rc=0
        wait "$pid" || rc=$?
        rm -f "$d/pid"
        [ "$rc" = 0 ] || fail "vaultd $1 exited with $rc on SIGTERM, expected 0"
}

expect_vaultd_exit() {
        local d="$T/$1" pid rc
        pid=$(cat "$d/pid")
        rc=0
        wait "$pid" || rc=$?
        rm -f "$d/pid"
        [ "$rc" = "$2" ] || fail "vaultd $1 exited with $rc, expected $2"
}

ctl() {
        local name=$1
        shift
        $VG "$DEVICECTL" --socket "$T/$name/sock" "$@"
}

fake() {
        local name=$1
        shift
        "$FAKE" --socket "$T/$name/sock" --state "$T/$name/server" "$@"
}

# A bundle for vaultd NAME (in $T/NAME/bundle) and the same vault as the fake server's state.
make_bundle() {
        local name=$1
        shift
        mkdir -p "$T/$name"
        rm -f "$T/$name/server.pending"
        "$MKBUNDLE" "$@" "$T/$name/bundle" "$T/$name/server" || fail "mkbundle failed"
}

fd_count() {
        ls "/proc/$(cat "$T/$1/pid")/fd" | wc -l
}

json_field() {
        printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

status_field() {
        json_field "$(ctl "$1" status --json)" "$2"
}

# Expect fake-server to exit with CODE (0 ok, 10+IPC status, see fake-server.c).
expect_fake() {
        local code=$1 name=$2 rc out
        shift 2
        rc=0
        out=$(fake "$name" "$@") || rc=$?
        [ "$rc" = "$code" ] || fail "fake-server on $name: exit $rc (expected $code): $out"
        FAKE_OUT=$out
}

# While a counter is bound vaultd keeps one salted session loaded (its bumps cost one TPM command,
# vaultd/tpm.c); a clean stop flushes it, so nothing of vaultd's may be left in the TPM.
check_no_sessions() {
        local out
        out=$(TPM2TOOLS_TCTI="$(tcti "$1")" tpm2_getcap handles-loaded-session 2>&1) || fail "tpm2_getcap failed: $out"
        [ -z "$out" ] || fail "sessions left loaded in TPM $1 after vaultd stopped: $out"
        out=$(TPM2TOOLS_TCTI="$(tcti "$1")" tpm2_getcap handles-saved-session 2>&1) || fail "tpm2_getcap failed: $out"
        [ -z "$out" ] || fail "saved sessions left in TPM $1 after vaultd stopped: $out"
}

# Nothing transient left in the TPM (check after vaultd is gone: swtpm serves one client at a time).
check_no_transient() {
        local out
        out=$(TPM2TOOLS_TCTI="$(tcti "$1")" tpm2_getcap handles-transient 2>&1) || fail "tpm2_getcap failed: $out"
        [ -z "$out" ] || fail "transient handles left in TPM $1: $out"
}

file_size() {
        stat -c %s "$1"
}
