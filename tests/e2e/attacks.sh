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
        echo "$rc" >"$T/rc"
        case " $want " in *" $rc "*) ;; *) fail "$ATTACK: '$*' exited $rc, want one of $want: $(cat "$T/err")";; esac
}
proxied() { ctl authenticate --server "$PROXY" --keyring none --timeout 5; }
proxied_send() { ctl send --server "$PROXY" --timeout $((5 * SCALE)) "$@"; }
unchanged() { [ "$(device_epoch)" = "$1" ] || fail "$ATTACK: the device's vault moved from epoch $1 to $(device_epoch)"; }
# Neither side moved: the device's epoch, the server's, and no pending vault on the server.
nothing_committed() {
        unchanged "$1"
        [ "$(server_epoch)" = "$1" ] || fail "$ATTACK: the server moved from epoch $1 to $(server_epoch)"
        admin show dev --json | grep -q '"pending":false' || fail "$ATTACK: the server stored a pending vault"
}
# What the server logs from now on: mark, then logged PATTERN (waits for it: the server
# judges after devicectl may have gone).
mark() { MARK=$(wc -l <"$T/server.log"); }
logged() {
        for _ in $(seq $((150 * SCALE))); do
                tail -n +$((MARK + 1)) "$T/server.log" | grep -q "$1" && return 0
                sleep 0.02
        done
        fail "$ATTACK: the server did not log '$1'"
}
# The proxy's line for the last connection (written when it ends) matches PATTERN.
proxy_said() {
        for _ in $(seq $((150 * SCALE))); do
                tail -n 1 "$T/proxy.log" | grep -q "^sv-proxy: #1 .*$1" && return 0
                sleep 0.02
        done
        fail "$ATTACK: the proxy did not see '$1': $(tail -n 1 "$T/proxy.log")"
}
# "COUNT SUM" of the aggregate NAME, or nothing if no record of NAME was ever folded.
aggregate() {
        admin stats --json | grep -o "{\"name\":\"$1\",\"count\":[0-9]*,\"sum\":[^,]*" |
                sed 's/.*"count":\([0-9]*\),"sum":\(.*\)/\1 \2/'
}
# Records through the proxy: devicectl send NAME=1 NAME=2 NAME=4 must exit with one of CODES,
# the server must end the channel with RESULT, and NAME's aggregate must be one of AGGS
# ("-" for none): the sums 1, 3, 7 of the genuine prefixes tell any replayed or reordered
# record apart. Afterwards a clean handshake, in step.
records() {
        local name=$1 codes=$2 result=$3 aggs=$4 got; shift 4
        start_proxy "$@"
        mark
        expect_rc "$codes" proxied_send "$name=1" "$name=2" "$name=4"
        logged "channel device='dev' peer=127\.0\.0\.1:[0-9]* result=$result "
        got=$(aggregate "$name"); got=${got:--}
        case " $aggs " in *" ${got// /:} "*) ;; *) fail "$ATTACK ($*): aggregate of $name is '$got', want one of $aggs";; esac
        stop_proxy
        assert_in_step "after $*"
        echo "# $*: devicectl exit $(cat "$T/rc"), channel $result, aggregate $name ${got// /:}"
}

# The attacks on protocol 1.1 (key share, data channel) need a device enrolled with the
# share; the others run on the enrollment default.
case $ATTACK in
kex-*|small-order-*|record-*|data-*) setup_system --kex x25519 ;;
*) setup_system ;;
esac
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
        flip_byte "$T/state/vault" 40
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
kex-downgrade)
        # The share stripped from M1: the server answers with M1's shape (no share) and a
        # decoy, the proxy grafts a share back on for the device, the M3 it gets is refused.
        start_proxy --strip-share M1
        mark
        expect_rc "4" proxied
        proxy_said "strip M1 share graft M2 share M4=ERROR"
        logged "result=auth-failed reason='M3 did not verify'"
        nothing_committed "$e"
        stop_proxy
        assert_in_step "after the share stripped from M1"
        e=$(device_epoch)
        # The share stripped from M2: the device refuses M2 by its length, sends no M3.
        start_proxy --strip-share M2
        expect_rc "8" proxied
        grep -q "wrong length" "$T/err" || fail "no clear refusal of the share-less M2: $(cat "$T/err")"
        proxy_said "strip M2 share no M3"
        nothing_committed "$e"
        # What the proxy cannot show (it holds no vault): a device that does hold it, its
        # bundle without the kex line, runs the handshake without the share, right for the
        # M1 it sent; and a device enrolled without the share runs it with one. The server
        # must answer both with a decoy and refuse M3 (ERROR 2); neither epoch moves.
        for kex in x25519 none; do
                admin enroll --device "dg-$kex" --kex $kex --out "$T/dg-$kex" >/dev/null || fail "enroll dg-$kex"
                if [ $kex = x25519 ]; then sed -i '/^kex: /d; /^check: /d' "$T/dg-$kex"
                else sed -i 's/^vault: /kex: x25519\nvault: /; /^check: /d' "$T/dg-$kex"; fi
                out=$("$SVCLIENT" --server "$SERVER" --vault "$T/dg-$kex" --fault none 2>&1)
                [ "$out" = "refused 2" ] || fail "device dg-$kex enrolled with kex $kex, the share $([ $kex = none ] && echo added || echo stripped): $out"
                admin show "dg-$kex" --json | grep -q '"epoch":0,"pending":false' || fail "dg-$kex moved: $(admin show "dg-$kex" --json)"
        done ;;
small-order-share)
        # Each of RFC 7748's small-order points as the device's share: the server must give
        # no Z and refuse like a decoy, at M3 (ERROR where M4 goes: a well-formed M2 came
        # first); as the server's share: vaultd must refuse M2 and send no M3 (exit 8).
        # (Both at once gains an attacker without the vault nothing more: the transcript
        # hashes differ on the two sides of a proxy that rewrote M1 and M2.)
        for i in $(seq 0 13); do
                start_proxy --small-order M1:$i
                expect_rc "4" proxied
                proxy_said "small-order M1 point $i M4=ERROR"
                nothing_committed "$e"
                stop_proxy
                assert_in_step "after small-order point $i in M1"
                e=$(device_epoch)
                start_proxy --small-order M2:$i
                expect_rc "8" proxied
                grep -q "malformed message from the server" "$T/err" || fail "point $i in M2: $(cat "$T/err")"
                proxy_said "small-order M2 point $i no M3"
                nothing_committed "$e"
                stop_proxy
                assert_in_step "after small-order point $i in M2"
                e=$(device_epoch)
        done ;;
record-replay)
        # A DATA record of the device delivered twice: the server folds it once, then the
        # copy does not open (the counter moved): the channel ends with no reply, exit 14.
        records rpa 14 bad-record "2:3" --dup c2s:1
        # The server's record delivered twice: the device refuses the copy (exit 8). The
        # server ends as the device did: cut, or closed if its CLOSE was out before it read.
        records rpb 8 "\(cut\|closed\)" "1:1 2:3 3:7" --dup s2c:0 ;;
record-reorder)
        records roa 14 bad-record "-" --swap c2s:0
        records rob 8 "\(cut\|closed\)" "2:3 3:7" --swap s2c:0 ;;
record-reflection)
        # The server's answer sent back to the server (it opens with the other direction's
        # chain: it does not), and the device's record sent back to the device.
        records rfa 14 bad-record "1:1" --reflect s2c:0
        records rfb 8 cut "1:1" --reflect c2s:1 ;;
record-truncation)
        # The device's CLOSE lost: a cut, not a clean end, at both sides.
        records tra 14 cut "3:7" --drop c2s:close
        # The server's CLOSE lost: the server closed cleanly, the device must say cut.
        records trb 14 closed "3:7" --drop s2c:close
        # A record cut in half, then the connection: a cut at the receiver.
        records trc 14 cut "1:1" --truncate c2s:1
        records trd 14 cut "1:1 2:3 3:7" --truncate s2c:1 ;;
data-before-m5)
        # M5 held back, the device's first DATA record (sealed right for this session) sent
        # before it: the server must not open it, let alone fold it: ERROR 1, no commit.
        start_proxy --early-data
        mark
        expect_rc "8" proxied_send early=1 early=2
        grep -q "early c2s:0 (type 6) before M5 (server answered type 15)" "$T/proxy.log" || fail "proxy: $(tail -n 1 "$T/proxy.log")"
        logged "result=protocol reason='bad frame header'"
        [ -z "$(aggregate early)" ] || fail "DATA before M5 was folded: $(admin stats)"
        # The device committed before M5; the server holds that vault as pending (§6).
        [ "$(device_epoch)" = $((e + 1)) ] || fail "the device did not commit before M5"
        [ "$(server_epoch)" = "$e" ] || fail "the server committed without a verified M5"
        admin show dev --json | grep -q '"pending":true' || fail "the server has no pending vault" ;;
*)
        fail "unknown attack '$ATTACK'" ;;
esac
stop_proxy
assert_in_step "after $ATTACK"
echo "ok - $ATTACK: refused cleanly, the device is unchanged and authenticates afterwards"
