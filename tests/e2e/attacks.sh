# SPDX-License-Identifier: MIT
# One attack scenario per test file: tests/e2e/attack-NAME.test sources this with NAME.
# Every scenario ends with the device and the server able to authenticate, in step.
. "${top_srcdir:-.}/tests/e2e/lib.sh"
SVCLIENT=$top_builddir/tests/authserver/sv-client
FLOOD=$top_builddir/tests/authserver/sv-flood
ATTACK=$1

expect_rc() {   # expect_rc "CODES" COMMAND...: run, require the exit code to be one of CODES
        local want=$1 rc=0; shift
        "$@" >"$T/out" 2>"$T/err" || rc=$?
        case " $want " in *" $rc "*) ;; *) fail "$ATTACK: '$*' exited $rc, want one of $want: $(cat "$T/err")";; esac
}
proxied() { ctl authenticate --server "$PROXY" --keyring none --timeout 5; }
unchanged() { [ "$(device_epoch)" = "$1" ] || fail "$ATTACK: the device's vault moved from epoch $1 to $(device_epoch)"; }

setup_system
assert_in_step "baseline"
e=$(device_epoch)

case $ATTACK in
replay-m3)
        start_proxy --replay M3
        proxied >/dev/null 2>&1 || true             # a session for the proxy to record
        e=$(device_epoch)
        expect_rc "4" proxied
        unchanged "$e" ;;
replay-m4)
        start_proxy --replay M4
        proxied >/dev/null 2>&1 || true
        e=$(device_epoch)
        expect_rc "5" proxied                       # the device catches the old M4
        unchanged "$e" ;;
replay-m5)
        start_proxy --replay M5
        proxied >/dev/null 2>&1 || true
        expect_rc "0" proxied                       # the device is done before M5; the server refuses it
        # The server judges M5 after devicectl has gone: wait for its verdict.
        for _ in $(seq 100); do
                grep -q "result=auth-failed reason='M5 did not verify'" "$T/server.log" && break
                sleep 0.02
        done
        grep -q "result=auth-failed reason='M5 did not verify'" "$T/server.log" || fail "the server accepted a replayed M5" ;;
m3-other-device)
        admin enroll --device other --out "$T/other" >/dev/null
        start_proxy --replay M3
        "$SVCLIENT" --server "$PROXY" --vault "$T/other" --count 1 >/dev/null 2>&1 || true
        e=$(device_epoch)
        expect_rc "4" proxied                       # M3 of "other" in a session of "dev"
        unchanged "$e" ;;
reflection)
        start_proxy --reflect M2
        expect_rc "4 8" proxied
        unchanged "$e"
        stop_proxy
        start_proxy --reflect M4
        expect_rc "4 8" proxied
        unchanged "$e" ;;
wrong-epoch)
        admin enroll --device tmp --out "$T/stale" >/dev/null
        sed -i 's/^device_id: .*/device_id: dev/; s/^epoch: .*/epoch: 77/' "$T/stale"
        out=$("$SVCLIENT" --server "$SERVER" --vault "$T/stale" --fault none)
        [ "$out" = "refused 2" ] || fail "wrong epoch: $out"
        grep -q "reason='epoch desynchronised'" "$T/server.log" || fail "no decoy for the wrong epoch" ;;
unknown-device)
        admin enroll --device ghost --out "$T/ghost" >/dev/null
        admin revoke ghost >/dev/null
        sed -i 's/^device_id: ghost$/device_id: never-enrolled/' "$T/ghost"
        out=$("$SVCLIENT" --server "$SERVER" --vault "$T/ghost" --fault none)
        [ "$out" = "refused 2" ] || fail "unknown device: $out"
        grep -q "reason='unknown device'" "$T/server.log" || fail "no decoy for the unknown device" ;;
revoked-device)
        admin revoke dev >/dev/null
        expect_rc "4" auth
        unchanged "$e"
        grep -q "reason='revoked device'" "$T/server.log" || fail "no decoy for the revoked device"
        echo "ok - revoked device refused at M3 (decoy), vault unchanged"
        exit 0 ;;
tampered-vault-file)
        reap VAULTD_PID
        printf '\x01' | dd of="$T/state/vault" bs=1 seek=40 conv=notrunc 2>/dev/null
        start_vaultd
        expect_rc "9 1" auth
        ctl status --json | grep -q '"provisioned":false' || fail "vaultd serves a tampered vault"
        grep -qi "refus" "$T/vaultd.log" || fail "vaultd logged no refusal"
        echo "ok - a tampered vault file is refused at start"
        exit 0 ;;
rolled-back-vault-file)
        cp -p "$T/state/vault" "$T/old-vault"
        assert_in_step "before rollback"
        reap VAULTD_PID
        cp -p "$T/old-vault" "$T/state/vault"
        start_vaultd
        expect_rc "9 1" auth
        grep -qi "rollback\|older" "$T/vaultd.log" || fail "vaultd did not report a rollback"
        echo "ok - a rolled-back vault file is refused at start"
        exit 0 ;;
swapped-vault-files)
        admin enroll --device dev2 --out "$T/bundle2" >/dev/null
        mkdir -p "$T/tpm2" "$T/state2"
        "$SWTPM_BIN" socket --tpm2 --daemon --server type=unixio,path="$T/tpm2/sock" --ctrl type=unixio,path="$T/tpm2/sock.ctrl" \
                --tpmstate dir="$T/tpm2" --flags not-need-init,startup-clear --pid file="$T/tpm2/pid"
        for _ in $(seq 200); do [ -S "$T/tpm2/sock" ] && break; sleep 0.01; done
        "$VAULTD" --tcti "swtpm:path=$T/tpm2/sock" --state-dir "$T/state2" --socket "$T/v2.sock" --config /dev/null --max-auth-rate 0 --key-file "$T/vaultd-key2/vaultd.key" 2>>"$T/vaultd2.log" & v2=$!
        for _ in $(seq 500); do [ -S "$T/v2.sock" ] && break; sleep 0.01; done
        "$DEVICECTL" --socket "$T/v2.sock" provision "$T/bundle2" >/dev/null || fail "provision dev2"
        kill -TERM $v2; wait $v2 || true
        reap VAULTD_PID
        mv "$T/state/vault" "$T/swap"; mv "$T/state2/vault" "$T/state/vault"; mv "$T/swap" "$T/state2/vault"
        start_vaultd
        expect_rc "9 1" auth
        ctl status --json | grep -q '"provisioned":false' || fail "vaultd serves another device's vault"
        kill -TERM "$(cat "$T/tpm2/pid")"
        echo "ok - swapped vault files are refused by both TPMs"
        exit 0 ;;
unauthorised-user)
        [ "$(id -u)" = 0 ] || { echo "SKIP: needs root to switch users"; exit 77; }
        command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
        # Let nobody reach the socket, so that vaultd's own peer check is what refuses it.
        chmod 755 "$T"; chmod 666 "$T/vaultd.sock"
        rc=0; setpriv --reuid=nobody --regid=nogroup --clear-groups "$DEVICECTL" --socket "$T/vaultd.sock" status >/dev/null 2>"$T/err" || rc=$?
        [ $rc = 6 ] || fail "nobody got exit $rc from vaultd, want 6 (denied): $(cat "$T/err")"
        grep -q "refused connection from uid=$(id -u nobody)" "$T/vaultd.log" || fail "no refusal in vaultd's log"
        # A member of the allowed group tries to take the device over: a vault of its own,
        # enrolled at a server of its own, put in place with provision --force. Had it worked,
        # root's next authenticate would talk to that server and get a key the attacker knows.
        users=svu$$ admins=sva$$
        groupadd -r $users && groupadd -r $admins || { groupdel $users 2>/dev/null; echo "SKIP: groupadd failed"; exit 77; }
        trap 'groupdel $users; groupdel $admins; cleanup' EXIT
        VAULTD_ARGS="--allow-group $users --admin-group $admins"
        restart_vaultd
        chmod 666 "$T/vaultd.sock"
        as_member() { g=$1; shift; setpriv --reuid=nobody --regid=nogroup --groups="$(getent group "$g" | cut -d: -f3)" "$DEVICECTL" --socket "$T/vaultd.sock" "$@"; }
        "$AUTHSERVER" init --db "$T/evil.db" --master-key "$T/evil.key" >/dev/null &&
                "$AUTHSERVER" enroll --db "$T/evil.db" --master-key "$T/evil.key" --device dev --server 127.0.0.1:9 --out "$T/evil" >/dev/null &&
                chmod 644 "$T/evil" || fail "the attacker's bundle"
        before=$(ctl status --json)
        expect_rc "10" as_member $users provision --force --keep-bundle "$T/evil"
        grep -q "not permitted" "$T/err" || fail "no clear refusal: $(cat "$T/err")"
        [ "$(ctl status --json)" = "$before" ] || fail "the vault changed: $before -> $(ctl status --json)"
        unchanged "$e"
        assert_in_step "after the refused take-over"
        # An administrator may: the real server enrolls the device again, a member of the admin
        # group puts the new vault in place, and root authenticates with it below.
        admin revoke dev >/dev/null && admin enroll --device dev --server "$SERVER" --out "$T/again" >/dev/null &&
                chmod 644 "$T/again" || fail "enroll again"
        expect_rc "0" as_member $admins provision --force --keep-bundle "$T/again"
        [ "$(device_epoch)" = 0 ] || fail "the administrator's vault is not in place" ;;
two-devicectl)
        busy=0
        for _ in $(seq 20); do
                auth >/dev/null 2>&1 & a=$!
                rc=0; auth >/dev/null 2>&1 || rc=$?
                ra=0; wait $a || ra=$?
                case "$rc $ra" in "0 0"|"7 0"|"0 7") ;; *) fail "two devicectl: exit codes $rc and $ra";; esac
                [ "$rc $ra" != "0 0" ] && busy=$((busy + 1))
        done
        [ $busy -gt 0 ] || fail "never saw 'vault busy' in 20 concurrent pairs"
        echo "# $busy of 20 pairs overlapped and one got 'vault busy'" ;;
oversized-frames)
        start_proxy --oversize M2
        expect_rc "8" proxied
        unchanged "$e"
        stop_proxy
        start_proxy --oversize M3
        expect_rc "4 3 8" proxied
        unchanged "$e"
        grep -q "reason='bad frame header'" "$T/server.log" || fail "the server did not refuse the oversized M3 from its header" ;;
truncated-frames)
        for m in M1 M2 M3 M4 M5; do
                start_proxy --truncate $m
                expect_rc "0 3 4 8" proxied
                stop_proxy
                assert_in_step "truncated $m"
        done ;;
slowloris)
        # 200 half-open handshakes from another network (127.1.0.0/24; 127.0.0.2 would share
        # the device's /24): it gets its 64 (the default per-network cap), the rest are turned
        # away, and the device on 127.0.0.1 is still served. The M1 time-out (2 s) closes the
        # 64 before the flood lets go of them.
        "$FLOOD" --server "$SERVER" --source 127.1.0.2 --count 200 --mode partial --hold 4 >"$T/flood" & f=$!
        sleep 1
        for _ in $(seq 5); do auth >/dev/null 2>"$T/err" || fail "no service under slowloris: $(cat "$T/err")"; done
        wait $f
        grep -q '^opened 200,' "$T/flood" || fail "the flood did not connect: $(cat "$T/flood")"
        restart_authserver                          # its stop line counts the connections turned away
        away=$(sed -n 's/.*stopped: .* \([0-9]*\) connections turned away;.*/\1/p' "$T/server.log")
        [ "${away:-0}" -eq 136 ] || fail "the flooding network was not held to 64 connections: ${away:-no} turned away"
        grep -q "peer=127\.1\.0\.2:[0-9]* result=timeout reason='no M1 in time'" "$T/server.log" ||
                fail "the half-open handshakes were not closed by the M1 time-out" ;;
wrong-server)
        "$AUTHSERVER" init --db "$T/fdb" --master-key "$T/fkey" >/dev/null
        "$AUTHSERVER" enroll --db "$T/fdb" --master-key "$T/fkey" --device dev --out "$T/fbundle" >/dev/null
        "$AUTHSERVER" serve --db "$T/fdb" --master-key "$T/fkey" --listen 127.0.0.1:0 --config /dev/null 2>"$T/fake.log" & f=$!
        for _ in $(seq 200); do fport=$(sed -n 's/^<6>listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/fake.log"); [ -n "$fport" ] && break; sleep 0.02; done
        # The impostor knows the id but not the vault: it answers with a decoy and the
        # device's M3 fails there. Give it the device's epoch so it really tries.
        expect_rc "4 5" ctl authenticate --server "127.0.0.1:$fport" --keyring none --timeout 5
        unchanged "$e"
        kill -TERM $f; wait $f || true
        # A server that answers M3 with an M4 it cannot make: the device catches it at M4.
        start_proxy --flip M4
        expect_rc "5" proxied
        unchanged "$e" ;;
*)
        fail "unknown attack '$ATTACK'" ;;
esac
stop_proxy
assert_in_step "after $ATTACK"
echo "ok - $ATTACK: refused cleanly, the device is unchanged and authenticates afterwards"
