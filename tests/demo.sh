#!/usr/bin/env bash
# The whole product end to end, in a temporary directory, stopped and removed at the end:
# swtpm (a software TPM 2.0) + authserver + vaultd + devicectl authenticate, twice.
set -euo pipefail
build=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/secure-vault-demo.XXXXXX")
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        [ -s "$T/tpm/pid" ] && kill -TERM "$(cat "$T/tpm/pid")" 2>/dev/null || true
        rm -rf "$T"
        echo "== stopped everything and removed $T"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "a software TPM (swtpm) on a Unix socket"
mkdir -p "$T/tpm"
swtpm socket --tpm2 --daemon --server type=unixio,path="$T/tpm/sock" --ctrl type=unixio,path="$T/tpm/sock.ctrl" \
        --tpmstate dir="$T/tpm" --flags not-need-init,startup-clear --pid file="$T/tpm/pid"
for _ in $(seq 200); do [ -S "$T/tpm/sock" ] && break; sleep 0.01; done
echo "TCTI swtpm:path=$T/tpm/sock"

say "the server: a master key, a database, one enrolled device"
AS="$build/authserver/authserver"
run "$AS" init --db "$T/devices.db" --master-key "$T/master.key"
"$AS" serve --db "$T/devices.db" --master-key "$T/master.key" --listen 127.0.0.1:0 --config /dev/null 2>"$T/server.log" &
pids+=($!)
for _ in $(seq 200); do port=$(sed -n 's/^<6>listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/server.log"); [ -n "$port" ] && break; sleep 0.02; done
[ -n "$port" ] || { echo "authserver did not start"; cat "$T/server.log"; exit 1; }
echo "authserver listening on 127.0.0.1:$port"
run "$AS" enroll --db "$T/devices.db" --master-key "$T/master.key" --device demo-sensor --server "127.0.0.1:$port" --out "$T/demo-sensor.bundle"

say "the device: vaultd seals the vault with the TPM"
"$build/vaultd/vaultd" --tcti "swtpm:path=$T/tpm/sock" --state-dir "$T/state" --socket "$T/vaultd.sock" \
        --config /dev/null --key-file "$T/vaultd-key/vaultd.key" 2>"$T/vaultd.log" &
pids+=($!)
for _ in $(seq 500); do [ -S "$T/vaultd.sock" ] && break; sleep 0.01; done
DC=("$build/devicectl/devicectl" --socket "$T/vaultd.sock")
run "${DC[@]}" provision "$T/demo-sensor.bundle"
run "${DC[@]}" status

# The keys go to a session keyring of the demo's own, which it reads back with keyctl.
auth_twice='
for i in 1 2; do
        printf "\n== authentication %s\n$ devicectl authenticate --keyring @s --lifetime 300\n" "$i"
        "$0" --socket "$1" authenticate --keyring @s --lifetime 300 || exit 1
done
printf "\n== the session key in the kernel keyring\n"
id=$(keyctl search @s user secure-vault:demo-sensor) || exit 1
keyctl describe "$id"
echo "(32 bytes; read them with: keyctl pipe $id)"
'
if keyctl session - true >/dev/null 2>&1; then
        keyctl session - bash -c "$auth_twice" "${DC[0]}" "$T/vaultd.sock" | grep -v '^Joined session keyring'
else
        for i in 1 2; do
                say "authentication $i (no kernel keyring here: --keyring none)"
                run "${DC[@]}" authenticate --keyring none
        done
fi

say "the server's view"
run "$AS" show demo-sensor --db "$T/devices.db" --master-key "$T/master.key"
echo
echo "server log:"; sed 's/^/  /' "$T/server.log"
echo "vaultd log:"; sed 's/^/  /' "$T/vaultd.log"
