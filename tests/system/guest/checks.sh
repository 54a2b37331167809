#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The checker of `make check-system`, run INSIDE the booted test system as root by
# secure-vault-check.service (systemd is PID 1). SV_TIER=container (systemd-nspawn, vaultd
# reaches a host swtpm through a bind-mounted socket and a test drop-in) or SV_TIER=vm (QEMU,
# the kernel's /dev/tpmrm0 backed by swtpm, the shipped units untouched).
#
# It follows docs/install.md on an installed system: sysusers, tmpfiles, socket activation,
# authserver with its credential, enroll + provision as a member of 'vault-admin', authenticate
# as a member of 'vault', a member of 'vault' alone refused to provision, a user outside it refused, restart keeps the vault, clean stops, journal lines, a
# rolled-back vault file refused. Every check prints "ok - NAME" or "not ok - NAME" with
# the reason, then one line "TIER: N passed, M failed" and the exit marker
# "@@sv-check-exit RC@@" that the host looks for. Exit status 0 only if nothing failed.
set -u
TIER=${SV_TIER:?SV_TIER=container|vm}
DEV=$TIER-device                       # the enrolled device id
W=/run/sv-check                        # tmpfs: bundles and scratch files
SERVER=127.0.0.1:7410
DB=/var/lib/authserver/devices.db
KEY=/etc/secure-vault/authserver.key
T0=$(date '+%Y-%m-%d %H:%M:%S')        # journal lines of this run only
CHECK_TIMEOUT=120
npass=0 nfail=0
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 LC_ALL=C.UTF-8 TIER DEV W SERVER DB KEY T0

say() { printf '%s\n' "$*"; }
# check NAME FUNCTION [ARGS...]: FUNCTION fails with a message on stdout/stderr.
check() {
        local name=$1 out rc=0
        shift
        # in a child bash with a time limit: a hung systemctl or devicectl fails this check only
        out=$(timeout -k 5 "$CHECK_TIMEOUT" bash -c '"$@"' check "$@" 2>&1) || rc=$?
        [ $rc = 124 ] && out="$out
timed out after $CHECK_TIMEOUT s"
        if [ $rc = 0 ]; then
                npass=$((npass + 1)); say "ok - $name"
        else
                nfail=$((nfail + 1)); say "not ok - $name"
                printf '%s\n' "$out" | tail -n 25 | sed 's/^/#   /'
                journalctl --no-pager -o short-monotonic --since "$T0" -u vaultd.service -u vaultd.socket \
                        -u authserver.service -u authserver.socket 2>&1 | tail -n 12 | sed 's/^/#   journal: /'
        fi
}
die() { printf '%s\n' "$*"; return 1; }

# As a plain user (no capabilities, its own groups from /etc/group).
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups --reset-env -- "$@"; }
# devicectl as USER with a fresh session keyring of its own (the session key goes there).
ctl() { local u=$1; shift; as "$u" timeout 30 devicectl "$@"; }
admin() { local verb=$1; shift; timeout 60 authserver "$verb" --db "$DB" --master-key "$KEY" "$@"; }
json_field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
device_epoch() { ctl alice status --json | json_field epoch; }
server_epoch() { admin show "$DEV" --json | json_field epoch; }
prop() { systemctl show -P "$2" "$1"; }
journal() { journalctl --no-pager -o cat --since "$T0" "$@"; }
pid_user() { getent passwd "$(awk '/^Uid:/ { print $2 }' /proc/"$1"/status)" | cut -d: -f1; }
pid_group() { getent group "$(awk '/^Gid:/ { print $2 }' /proc/"$1"/status)" | cut -d: -f1; }
mainpid() { local p; p=$(prop "$1" MainPID); [ "$p" != 0 ] && echo "$p"; }
wait_for() {    # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
        local t=$(($1 * 10)); shift
        while [ $t -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; t=$((t - 1)); done
        "$@"
}
is_state() { [ "$(systemctl is-active "$1")" = "$2" ]; }

# devicectl authenticate as USER into a new session keyring; prints the epoch, checks the
# key: 32 bytes, named secure-vault:DEVICE, in that keyring.
auth_with_key() {
        local u=$1 out
        out=$(as "$u" keyctl session - bash -c '
                devicectl authenticate --keyring @s --lifetime 300 --timeout 20 --json || exit $?
                id=$(keyctl search @s user "secure-vault:$0") || { echo "no key secure-vault:$0 in @s"; exit 1; }
                echo "key-bytes=$(keyctl pipe "$id" | wc -c)"' "$DEV" 2>&1) || die "authenticate as $u: $out" || return
        case $out in *key-bytes=32*) ;; *) die "session key not 32 bytes in the keyring: $out"; return;; esac
        printf '%s\n' "$out" | json_field epoch
}

# ---------------------------------------------------------------------------------------
# SV_INSTALL=deb (check-system.sh --debs): what dpkg -i of the two packages did, before this
# checker runs any step of install.md itself.
c_deb_installed() {
        local p st
        for p in secure-vault-device secure-vault-server; do
                st=$(dpkg-query -W -f='${Status}' "$p" 2>&1)
                [ "$st" = "install ok installed" ] || die "$p: $st" || return
        done
        [ -x /usr/sbin/vaultd ] && [ -x /usr/bin/devicectl ] && [ -x /usr/sbin/authserver ] || die "binaries missing" || return
        [ "$(dpkg -S /usr/sbin/vaultd | cut -d: -f1)" = secure-vault-device ] || die "vaultd: $(dpkg -S /usr/sbin/vaultd)" || return
        [ "$(dpkg -S /usr/sbin/authserver | cut -d: -f1)" = secure-vault-server ] || die "authserver: $(dpkg -S /usr/sbin/authserver)" || return
        [ -f /usr/share/doc/secure-vault-device/vault-file.md ] || die "vaultd(8) cites /usr/share/doc/secure-vault-device/vault-file.md: not there" || return
        [ -f /usr/share/doc/secure-vault-server/protocol.md ] || die "authserver(8) cites /usr/share/doc/secure-vault-server/protocol.md: not there"
}
c_deb_postinst() {
        local a
        # the accounts as dpkg -i left them, before this boot's systemd-sysusers.service
        for a in passwd:vaultd passwd:authserver group:vault group:vault-admin group:tss; do
                grep -q "^${a#*:}:" /var/lib/sv-check/after-dpkg || die "postinst made no ${a%%:*} entry ${a#*:}: $(cat /var/lib/sv-check/after-dpkg 2>&1)" || return
        done
        getent passwd vaultd >/dev/null || die "postinst made no user vaultd" || return
        getent passwd authserver >/dev/null || die "postinst made no user authserver" || return
        getent group vault >/dev/null && getent group vault-admin >/dev/null || die "postinst made no group vault/vault-admin" || return
        id -nG vaultd | tr ' ' '\n' | grep -qx tss || die "vaultd is not in tss: $(id vaultd)" || return
        [ "$(stat -c '%F %a %U' /etc/secure-vault)" = "directory 755 root" ] || die "/etc/secure-vault: $(stat -c '%F %a %U' /etc/secure-vault 2>&1)" || return
        [ "$(systemctl is-enabled vaultd.socket)" = enabled ] || die "vaultd.socket is $(systemctl is-enabled vaultd.socket)" || return
        is_state vaultd.socket active || die "vaultd.socket not active at boot: $(systemctl is-active vaultd.socket)" || return
        is_state vaultd.service inactive || die "vaultd.service runs before any use: $(systemctl is-active vaultd.service)" || return
        # enabled, and skipped at boot because no master key exists yet (README.Debian)
        [ "$(systemctl is-enabled authserver.service)" = enabled ] || die "authserver.service is $(systemctl is-enabled authserver.service)" || return
        is_state authserver.service inactive || die "authserver.service: $(systemctl is-active authserver.service)" || return
        [ "$(prop authserver.service ConditionResult)" = no ] || die "authserver.service ConditionResult=$(prop authserver.service ConditionResult): not skipped at boot" || return
        [ "$(systemctl is-enabled authserver.socket)" = disabled ] || die "authserver.socket is $(systemctl is-enabled authserver.socket)"
}
c_deb_start_vaultd() {
        # `systemctl start vaultd` on the packaged unit (container: the swtpm TCTI drop-in)
        systemctl start vaultd.service || die "systemctl start vaultd failed: $(journal -u vaultd | tail -n 5)" || return
        wait_for 10 is_state vaultd.service active || die "vaultd.service: $(systemctl is-active vaultd.service)" || return
        [ "$(prop vaultd.service StatusText)" = "no vault provisioned" ] || die "STATUS=$(prop vaultd.service StatusText)" || return
        [ "$(pid_user "$(mainpid vaultd.service)")" = vaultd ] || die "vaultd does not run as vaultd" || return
        systemctl stop vaultd.service || return
        is_state vaultd.socket active || die "vaultd.socket stopped with the service"
}

c_sysusers() {
        systemd-sysusers || die "systemd-sysusers failed" || return
        getent passwd vaultd >/dev/null || die "no user vaultd" || return
        getent passwd authserver >/dev/null || die "no user authserver" || return
        getent group vault >/dev/null || die "no group vault" || return
        getent group vault-admin >/dev/null || die "no group vault-admin" || return
        getent group tss >/dev/null || die "no group tss" || return
        id -nG vaultd | tr ' ' '\n' | grep -qx tss || die "vaultd is not in group tss: $(id vaultd)" || return
        [ "$(getent passwd vaultd | cut -d: -f7)" = /usr/sbin/nologin ] || [ "$(getent passwd vaultd | cut -d: -f7)" = /sbin/nologin ] \
                || die "vaultd has a login shell: $(getent passwd vaultd)"
}

c_tmpfiles() {
        rm -rf /etc/secure-vault
        systemd-tmpfiles --create secure-vault.conf authserver.conf || die "systemd-tmpfiles failed" || return
        [ "$(stat -c '%F %a %U %G' /etc/secure-vault)" = "directory 755 root root" ] \
                || die "/etc/secure-vault: $(stat -c '%F %a %U %G' /etc/secure-vault 2>&1)"
}

c_test_users() {
        useradd --create-home --groups vault,vault-admin alice || return
        useradd --create-home --groups vault carol || return
        useradd --create-home bob || return
        id -nG alice | tr ' ' '\n' | grep -qx vault || die "alice not in vault"
        id -nG alice | tr ' ' '\n' | grep -qx vault-admin || die "alice not in vault-admin"
        ! id -nG carol | tr ' ' '\n' | grep -qx vault-admin || die "carol in vault-admin"
        ! id -nG bob | tr ' ' '\n' | grep -qx vault || die "bob in vault"
        install -d -m 0700 -o alice -g alice "$W/alice"
}

c_socket_enabled() {
        systemctl daemon-reload || return
        systemctl enable --now vaultd.socket || die "systemctl enable --now vaultd.socket failed" || return
        [ "$(systemctl is-enabled vaultd.socket)" = enabled ] || die "vaultd.socket is $(systemctl is-enabled vaultd.socket)" || return
        is_state vaultd.socket active || die "vaultd.socket: $(systemctl is-active vaultd.socket)" || return
        [ "$(stat -c '%F %a %U %G' /run/vaultd.sock)" = "socket 660 root vault" ] \
                || die "/run/vaultd.sock: $(stat -c '%F %a %U %G' /run/vaultd.sock 2>&1)" || return
        is_state vaultd.service inactive || die "vaultd.service started before any connection: $(systemctl is-active vaultd.service)"
}

c_socket_activation() {
        local out rc=0
        out=$(ctl alice status) || rc=$?
        [ $rc = 9 ] || die "devicectl status as alice (no vault yet) exited $rc, want 9: $out" || return
        case $out in "vault: none usable (not provisioned"*) ;; *) die "unexpected status: $out"; return ;; esac
        wait_for 10 is_state vaultd.service active || die "vaultd.service: $(systemctl is-active vaultd.service); $(journal -u vaultd | tail -n 5)" || return
        [ "$(prop vaultd.service TriggeredBy)" = vaultd.socket ] || die "TriggeredBy=$(prop vaultd.service TriggeredBy)" || return
        [ "$(prop vaultd.service StatusText)" = "no vault provisioned" ] || die "STATUS=$(prop vaultd.service StatusText)"
}

c_vaultd_identity() {
        local pid st
        pid=$(mainpid vaultd.service) || die "no MainPID" || return
        st=$(cat /proc/"$pid"/status) || return
        [ "$(pid_user "$pid")" = vaultd ] || die "vaultd runs as $(pid_user "$pid")" || return
        [ "$(pid_group "$pid")" = vaultd ] || die "vaultd's group is $(pid_group "$pid")" || return
        local tss; tss=$(getent group tss | cut -d: -f3)
        printf '%s\n' "$st" | grep '^Groups:' | tr ' \t' '\n\n' | grep -qx "$tss" || die "tss ($tss) not among $(grep ^Groups: <<<"$st")" || return
        grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$st" || die "NoNewPrivs not set" || return
        grep -q '^CapEff:[[:space:]]*0*$' <<<"$st" || die "effective capabilities: $(grep ^CapEff <<<"$st")" || return
        grep -q '^CapBnd:[[:space:]]*0*$' <<<"$st" || die "bounding set: $(grep ^CapBnd <<<"$st")" || return
        grep -q '^Seccomp:[[:space:]]*2$' <<<"$st" || die "no seccomp filter: $(grep ^Seccomp <<<"$st")" || return
        [ "$(stat -c '%a %U' /var/lib/vaultd)" = "700 vaultd" ] || die "/var/lib/vaultd: $(stat -c '%a %U' /var/lib/vaultd)"
}

c_secret_memory() {
        local want=$1 line
        line=$(journal -u vaultd.service | grep -m1 '^Secrets are kept in ') || die "vaultd did not log its secret memory" || return
        say "# $line"
        case $want in
        memfd_secret) [ "$line" = "Secrets are kept in memfd_secret memory" ] || die "want memfd_secret: $line" ;;
        any) case $line in *"memfd_secret memory"|*"mlock+MADV_DONTDUMP memory") ;; *) die "unexpected: $line";; esac ;;
        esac
}

# Before init: no master key, so `systemctl start` skips the unit (condition failed): it
# neither fails nor restarts.
c_authserver_skipped_without_key() {
        [ ! -e "$KEY" ] || die "$KEY exists before init" || return
        systemctl start authserver.service || die "systemctl start failed instead of skipping: $(journal -u authserver | tail -n 5)" || return
        is_state authserver.service inactive || die "authserver.service: $(systemctl is-active authserver.service)" || return
        [ "$(prop authserver.service ConditionResult)" = no ] || die "ConditionResult=$(prop authserver.service ConditionResult)" || return
        [ "$(prop authserver.service Result)" = success ] || die "Result=$(prop authserver.service Result)" || return
        [ "$(prop authserver.service NRestarts)" = 0 ] || die "NRestarts=$(prop authserver.service NRestarts)"
}

c_authserver_setup() {
        install -d -m 0700 -o authserver -g authserver /var/lib/authserver || return
        admin init >/dev/null || die "authserver init failed" || return
        chown -R authserver:authserver /var/lib/authserver || return
        [ "$(stat -c '%a %U' "$KEY")" = "600 root" ] || die "$KEY: $(stat -c '%a %U' "$KEY")" || return
        # tmpfiles.d's 'z' line puts the key back to 0600 root
        chmod 0644 "$KEY"
        systemd-tmpfiles --create secure-vault.conf authserver.conf || { chmod 0600 "$KEY"; return 1; }
        local st; st=$(stat -c '%a %U %G' "$KEY")
        chmod 0600 "$KEY"               # whatever happened: the checks after this need a good key
        [ "$st" = "600 root root" ] || die "tmpfiles left $KEY at $st"
}

c_authserver_start() {
        systemctl start authserver.service || die "start failed: $(journal -u authserver | tail -n 5)" || return
        is_state authserver.service active || die "authserver: $(systemctl is-active authserver)" || return
        local pid; pid=$(mainpid authserver.service) || die "no MainPID" || return
        [ "$(pid_user "$pid")" = authserver ] || die "authserver runs as $(pid_user "$pid")" || return
        wait_for 5 bash -c 'journalctl -o cat -u authserver --since "$0" | grep -q "^listening on "' "$T0" \
                || die "no 'listening on' in the journal: $(journal -u authserver)"
}

c_enroll() {
        admin enroll --device "$DEV" --server "$SERVER" --out "$W/alice/bundle" >/dev/null || die "enroll failed" || return
        chown alice:alice "$W/alice/bundle"
        admin list | grep -q "$DEV" || die "$DEV not listed: $(admin list)"
}

# The shipped drop-in admits the group authserver-admin to the control socket: dave (in it)
# lists the devices through the running server without any access to the master key or the
# database; bob (outside it) is refused. Then back to the shipped unit alone.
c_control_group_dropin() {
        local ex out rc=0 d=/etc/systemd/system/authserver.service.d
        ex=$(ls /usr/share/doc/secure-vault*/examples/authserver-control-group.conf /usr/local/share/doc/secure-vault*/examples/authserver-control-group.conf 2>/dev/null | head -n1)
        [ -n "$ex" ] || die "no examples/authserver-control-group.conf installed" || return
        getent passwd dave >/dev/null || useradd --create-home --groups authserver-admin dave || return
        install -D -m 0644 "$ex" "$d/control-group.conf" || return
        systemctl daemon-reload && systemctl restart authserver.service || die "restart with the drop-in failed: $(journal -u authserver | tail -n 5)" || return
        wait_for 10 test -S /run/authserver/control || die "no control socket" || return
        [ "$(stat -c '%a %G' /run/authserver/control)" = "660 authserver-admin" ] || die "control socket is $(stat -c '%a %G' /run/authserver/control)" || return
        out=$(as dave timeout 30 "$(command -v authserver)" list 2>&1) || die "authserver list as dave (authserver-admin): $out" || return
        grep -q "$DEV" <<<"$out" || die "dave's list lacks $DEV: $out" || return
        out=$(as bob timeout 30 "$(command -v authserver)" list 2>&1) && rc=0 || rc=$?
        [ $rc != 0 ] && ! grep -q "$DEV" <<<"$out" || die "bob (not in authserver-admin) listed the devices: rc=$rc $out" || return
        # bob is stopped at connect() by the socket's mode (0660, group authserver-admin), and
        # the database behind /var/lib/authserver (0700) is no way round it
        say "# bob: $out"
        rm -f "$d/control-group.conf" && rmdir "$d" 2>/dev/null
        systemctl daemon-reload && systemctl restart authserver.service || die "restart without the drop-in failed" || return
        [ -z "$(prop authserver.service DropInPaths)" ] || die "drop-ins left: $(prop authserver.service DropInPaths)"
}

c_provision() {
        local out
        out=$(ctl alice provision "$W/alice/bundle") || die "provision as alice: $out" || return
        [ ! -e "$W/alice/bundle" ] || die "the bundle was not destroyed" || return
        out=$(ctl alice status --json) || return
        grep -q "\"provisioned\":true" <<<"$out" || die "status: $out" || return
        grep -q "\"device_id\":\"$DEV\"" <<<"$out" || die "status: $out" || return
        [ "$(json_field epoch <<<"$out")" = 0 ] || die "epoch not 0: $out" || return
        [ "$(stat -c '%a %U' /var/lib/vaultd/vault)" = "600 vaultd" ] || die "vault file: $(stat -c '%a %U' /var/lib/vaultd/vault 2>&1)" || return
        [ "$(prop vaultd.service StatusText)" = "vault $DEV epoch 0 ready" ] || die "STATUS=$(prop vaultd.service StatusText)"
}

c_authenticate_twice() {
        local e1 e2
        e1=$(auth_with_key alice) || die "first: $e1" || return
        e2=$(auth_with_key alice) || die "second: $e2" || return
        [ "$e1" = 1 ] && [ "$e2" = 2 ] || die "epochs after two authentications: '$e1' '$e2', want 1 2" || return
        wait_for 5 test "$(server_epoch)" = 2 || die "server epoch $(server_epoch), want 2" || return
        [ "$(device_epoch)" = 2 ] || die "device epoch $(device_epoch)"
}

c_outsider_refused() {
        local e rc=0 out
        e=$(device_epoch) && [ -n "$e" ] || die "no epoch from alice's devicectl status" || return
        out=$(as bob timeout 30 devicectl status 2>&1) || rc=$?
        [ $rc = 6 ] || die "bob: devicectl status exited $rc, want 6: $out" || return
        rc=0; out=$(as bob timeout 30 devicectl authenticate --keyring none 2>&1) || rc=$?
        [ $rc = 6 ] || die "bob: devicectl authenticate exited $rc, want 6: $out" || return
        install -m 0600 -o bob -g bob /dev/null "$W/bob-bundle"
        # --keep-bundle: bob may not delete files in $W, and devicectl checks that before it asks vaultd.
        rc=0; out=$(as bob timeout 30 devicectl provision --keep-bundle "$W/bob-bundle" 2>&1) || rc=$?
        [ $rc = 6 ] || die "bob: devicectl provision exited $rc, want 6: $out" || return
        [ "$(device_epoch)" = "$e" ] || die "epoch moved from $e to $(device_epoch)"
}

# carol may authenticate, but not replace the vault with one of her own (issue #10, finding 1).
c_member_cannot_provision() {
        local before after rc=0 out
        admin enroll --device intruder --server 127.0.0.1:9 --out "$W/carol-bundle" >/dev/null || die "enroll failed" || return
        chown carol:carol "$W/carol-bundle"
        before=$(ctl alice status --json) || return
        # --keep-bundle: carol may not delete files in $W, and devicectl checks that before it asks vaultd.
        out=$(ctl carol provision --force --keep-bundle "$W/carol-bundle" 2>&1) || rc=$?
        [ $rc = 10 ] || die "carol: devicectl provision --force exited $rc, want 10: $out" || return
        case $out in *"not permitted"*) ;; *) die "unclear refusal: $out"; return ;; esac
        after=$(ctl alice status --json) || return
        [ "$before" = "$after" ] || die "the vault changed: $before -> $after" || return
        journal -u vaultd.service | grep -q "^refused provision from uid=$(id -u carol) " || die "no 'refused provision' in vaultd's journal"
}

c_restart_keeps_vault() {
        local before after p1 p2 e
        before=$(ctl alice status --json) || return
        p1=$(mainpid vaultd.service) || die "vaultd not running" || return
        systemctl restart vaultd.service || die "restart failed: $(journal -u vaultd | tail -n 5)" || return
        is_state vaultd.service active || die "vaultd: $(systemctl is-active vaultd)" || return
        p2=$(mainpid vaultd.service) || return
        [ "$p1" != "$p2" ] || die "MainPID unchanged ($p1): not restarted" || return
        after=$(ctl alice status --json) || return
        [ "$(sed 's/"tpm_commands":[0-9]*//' <<<"$before")" = "$(sed 's/"tpm_commands":[0-9]*//' <<<"$after")" ] \
                || die "status changed: $before -> $after" || return
        e=$(auth_with_key alice) || die "authenticate after restart: $e" || return
        [ "$e" = 3 ] || die "epoch $e after restart + authenticate, want 3"
}

# clean_stop UNIT...: stopped, and its journal from here on says so, without a kill, a
# timeout or a failure. (systemctl show is no use after the stop: an unreferenced unit is
# unloaded at once, and its properties read as defaults.)
clean_stop() {
        local cur u log
        cur=$(journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
        [ -n "$cur" ] || die "no journal cursor" || return
        systemctl stop "$@" 2>/dev/null || die "systemctl stop $* failed" || return
        for u in "$@"; do
                is_state "$u" inactive || die "$u: $(systemctl is-active "$u")" || return
                case $u in *.service) ;; *) continue;; esac
                wait_for 5 bash -c 'journalctl --no-pager -o cat --after-cursor "$1" -u "$0" | grep -q "Deactivated successfully"' "$u" "$cur" \
                        || die "no 'Deactivated successfully' for $u: $(journalctl --no-pager -o cat --after-cursor "$cur" -u "$u")" || return
                log=$(journalctl --no-pager -o cat --after-cursor "$cur" -u "$u")
                ! grep -Ei 'Failed with result|code=killed|code=dumped|status=[1-9]|SIGKILL|Killing|timed out' <<<"$log" \
                        || die "$u did not stop cleanly: $log" || return
        done
}

c_vaultd_stop_clean() {
        clean_stop vaultd.service || return
        journal -u vaultd.service | grep -q '^Stopping on signal 15$' || die "no 'Stopping on signal 15' in vaultd's journal" || return
        is_state vaultd.socket active || die "vaultd.socket went down with the service" || return
        # the next connection activates vaultd again, with the same vault
        local e; e=$(device_epoch) || return
        [ "$e" = 3 ] || die "epoch after re-activation: '$e', want 3" || return
        is_state vaultd.service active || die "not re-activated"
}

c_start_service_pulls_socket() {
        systemctl stop vaultd.socket vaultd.service || return
        [ ! -e /run/vaultd.sock ] || die "/run/vaultd.sock left behind (RemoveOnStop=yes)" || return
        systemctl start vaultd.service || die "systemctl start vaultd failed: $(journal -u vaultd | tail -n 5)" || return
        is_state vaultd.socket active || die "vaultd.socket not pulled in" || return
        is_state vaultd.service active || die "vaultd: $(systemctl is-active vaultd)" || return
        [ -S /run/vaultd.sock ] || die "no socket" || return
        [ "$(prop vaultd.service StatusText)" = "vault $DEV epoch 3 ready" ] || die "STATUS=$(prop vaultd.service StatusText)"
}

c_authserver_socket() {
        clean_stop authserver.service || return
        journal -u authserver.service | grep -q '^received Terminated: no new connections' || die "no 'received Terminated' in authserver's journal" || return
        journal -u authserver.service | grep -q '^stopped: 3 authenticated, 0 failed' || die "no 'stopped: 3 authenticated, 0 failed' in authserver's journal" || return
        systemctl start authserver.socket || return
        is_state authserver.service inactive || die "authserver.service already active" || return
        local e; e=$(auth_with_key alice) || die "authenticate through authserver.socket: $e" || return
        [ "$e" = 4 ] || die "epoch $e, want 4" || return
        is_state authserver.service active || die "authserver.service not activated" || return
        [ "$(prop authserver.service TriggeredBy)" = authserver.socket ] || die "TriggeredBy=$(prop authserver.service TriggeredBy)"
}

c_journal() {
        local v a
        v=$(journal -u vaultd.service) a=$(journal -u authserver.service)
        for l in "no vault provisioned" \
                 "provisioned vault device=$DEV epoch=0 " \
                 "handshake device=$DEV result=ok epoch=1" \
                 "handshake device=$DEV result=ok epoch=2" \
                 "vault $DEV epoch 2 ready " \
                 "handshake device=$DEV result=ok epoch=3"; do
                grep -qF -- "$l" <<<"$v" || die "vaultd's journal lacks '$l'" || return
        done
        for l in "handshake device='$DEV' peer=[::ffff:127.0.0.1]:" "result=ok epoch=1" "result=ok epoch=4"; do
                grep -qF -- "$l" <<<"$a" || die "authserver's journal lacks '$l'" || return
        done
        # the <N> prefixes became priorities, not text
        ! grep -q '^<[0-7]>' <<<"$v$a" || die "raw <N> prefixes in the journal" || return
        journalctl --no-pager -o cat --since "$T0" -u vaultd -p notice..notice | grep -q "^provisioned vault device=$DEV" \
                || die "'provisioned vault' not logged at priority notice" || return
        local errs; errs=$(journalctl --no-pager --since "$T0" -u vaultd -u authserver -p err)
        [ -z "$(grep -v '^-- ' <<<"$errs")" ] || die "errors logged: $errs" || return
        ! grep -qiE 'refused connection' <<<"$v" || die "a refusal was logged, but only bob (outside the socket's group) tried"
}

c_rollback() {
        local rc=0 out e
        cp -p /var/lib/vaultd/vault "$W/old-vault" || return
        e=$(auth_with_key alice) || die "authenticate: $e" || return
        systemctl stop vaultd.service || return
        cp -p "$W/old-vault" /var/lib/vaultd/vault || return
        systemctl start vaultd.service || die "vaultd did not start with the old file" || return
        out=$(ctl alice authenticate --keyring none --timeout 20 2>&1) || rc=$?
        [ $rc = 9 ] || [ $rc = 1 ] || die "authenticate with a rolled-back vault exited $rc: $out" || return
        case $(prop vaultd.service StatusText) in
        *"older than TPM counter (rollback?)"*) ;;
        *) die "STATUS=$(prop vaultd.service StatusText)"; return;;
        esac
        journal -u vaultd.service -p err | grep -q 'refusing: vault file older than TPM counter (rollback?)' \
                || die "no rollback error in the journal"
}

c_recover_after_rollback() {
        admin revoke "$DEV" >/dev/null || return
        admin enroll --device "$DEV" --server "$SERVER" --out "$W/alice/bundle2" >/dev/null || return
        chown alice:alice "$W/alice/bundle2"
        local out
        out=$(ctl alice provision "$W/alice/bundle2" 2>&1) && die "provision without --force replaced a vault: $out" && return
        out=$(ctl alice provision --force "$W/alice/bundle2" 2>&1) || die "provision --force: $out" || return
        local e; e=$(auth_with_key alice) || die "authenticate: $e" || return
        [ "$e" = 1 ] || die "epoch $e, want 1"
}

# The master key as an encrypted credential only (install.md): systemd-creds encrypts it with
# the host key, the plain file is gone, a drop-in loads it with LoadCredentialEncrypted=; the
# unit's second ConditionPathExists= lets it start, and the admin verbs (root, no key file)
# list, enroll and revoke through the running server. Then the plain key is put back.
c_encrypted_credential() {
        local d=/etc/systemd/system/authserver.service.d out rc=0
        install -d -m 0700 /etc/credstore.encrypted || return
        systemd-creds encrypt --with-key=host --name=authserver.key "$KEY" /etc/credstore.encrypted/authserver.key \
                || die "systemd-creds encrypt failed" || return
        mv "$KEY" "$W/plain.key" || return
        install -d "$d" && printf '[Service]\nLoadCredential=\nLoadCredentialEncrypted=authserver.key:/etc/credstore.encrypted/authserver.key\n' \
                >"$d/encrypted.conf" || return
        systemctl daemon-reload && systemctl restart authserver.service || rc=$?
        if [ $rc = 0 ] && is_state authserver.service active; then
                wait_for 10 test -S /run/authserver/control
                out=$(timeout 30 authserver list 2>&1) || rc=$?
                [ $rc = 0 ] && grep -q "$DEV" <<<"$out" || { rc=1; out="list without a key file: $out"; }
                if [ $rc = 0 ]; then
                        out=$(timeout 30 authserver enroll --device cred-check --server "$SERVER" --out "$W/cred-check.bundle" 2>&1) ||
                                { rc=1; out="enroll without a key file: $out"; }
                fi
                if [ $rc = 0 ]; then
                        out=$(timeout 30 authserver revoke cred-check 2>&1) || { rc=1; out="revoke without a key file: $out"; }
                fi
        else
                out="authserver did not start with the encrypted credential: $(journal -u authserver | tail -n 5)"
                rc=1
        fi
        # back to the plain key, whatever happened
        mv "$W/plain.key" "$KEY"; rm -f "$d/encrypted.conf" /etc/credstore.encrypted/authserver.key; rmdir "$d" 2>/dev/null
        systemctl daemon-reload; systemctl restart authserver.service
        [ $rc = 0 ] || die "$out"
}

c_final_stop() { clean_stop vaultd.socket vaultd.service authserver.socket authserver.service; }

# ------------------------------------------------------------------------- tier specific
c_container_dropin() {
        # Only the test's TCTI differs from the shipped unit.
        [ "$(prop vaultd.service DropInPaths)" = /etc/systemd/system/vaultd.service.d/test.conf ] \
                || die "drop-ins: $(prop vaultd.service DropInPaths)" || return
        prop vaultd.service ExecStart | grep -q -- '--tcti swtpm:path=/run/swtpm/sock' || die "ExecStart: $(prop vaultd.service ExecStart)" || return
        [ -S /run/swtpm/sock ] && [ -S /run/swtpm/sock.ctrl ] || die "no swtpm sockets under /run/swtpm"
}

c_vm_tpm_device() {
        [ -c /dev/tpmrm0 ] || die "no /dev/tpmrm0: $(ls -l /dev/tpm* 2>&1)" || return
        # tpm-udev's own rule is masked in this image: the group and mode come from ours alone
        [ "$(readlink /etc/udev/rules.d/60-tpm-udev.rules)" = /dev/null ] || die "tpm-udev's rule not masked" || return
        [ -e /usr/lib/udev/rules.d/60-secure-vault-tpm.rules ] || [ -e /lib/udev/rules.d/60-secure-vault-tpm.rules ] || die "our rule is not installed" || return
        [ "$(stat -c '%a %U %G' /dev/tpmrm0)" = "660 root tss" ] || die "/dev/tpmrm0 is $(stat -c '%a %U %G' /dev/tpmrm0)" || return
        [ "$(stat -c '%a %U %G' /dev/tpm0)" = "600 root root" ] || die "/dev/tpm0 is $(stat -c '%a %U %G' /dev/tpm0) (the rule must leave it alone)" || return
        udevadm info -q property -n /dev/tpmrm0 | grep -q '^CURRENT_TAGS=.*:systemd:' || die "no systemd tag: $(udevadm info -q property -n /dev/tpmrm0)" || return
        is_state dev-tpmrm0.device active || die "dev-tpmrm0.device: $(systemctl is-active dev-tpmrm0.device)"
}

c_vm_shipped_unit() {
        [ -z "$(prop vaultd.service DropInPaths)" ] || die "drop-ins: $(prop vaultd.service DropInPaths)" || return
        ! prop vaultd.service ExecStart | grep -q -- --tcti || die "ExecStart: $(prop vaultd.service ExecStart)" || return
        [ ! -e /etc/secure-vault/vaultd.conf ] || die "a vaultd.conf exists"
}

c_vm_vaultd_uses_tpmrm0() {
        local pid; pid=$(mainpid vaultd.service) || die "vaultd not running" || return
        # the default TCTI device:/dev/tpmrm0, opened by the unprivileged daemon
        ls -l /proc/"$pid"/fd 2>/dev/null | grep -q ' -> /dev/tpmrm0$' || die "vaultd has no /dev/tpmrm0 open: $(ls -l /proc/"$pid"/fd)"
}

# ------------------------------------------------------------------------------- run
export -f $(declare -F | awk '{ print $3 }')
say "== secure-vault system checks ($TIER tier) on $(uname -r), systemd $(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
install -d -m 0755 "$W"

if [ "$TIER" = vm ]; then
        check "udev rule: /dev/tpmrm0 root:tss 0660, tagged for systemd, dev-tpmrm0.device active" c_vm_tpm_device
        check "vaultd.service is the shipped unit (no drop-in, default TCTI)" c_vm_shipped_unit
else
        check "test drop-in only sets the swtpm TCTI; swtpm sockets bind-mounted" c_container_dropin
fi
if [ "${SV_INSTALL:-}" = deb ]; then
        check "dpkg: secure-vault-device and -server installed, binaries and docs in place" c_deb_installed
        check "postinst: users, groups, /etc/secure-vault; vaultd.socket enabled+active; authserver enabled, skipped without a key" c_deb_postinst
        check "systemctl start vaultd (packaged unit): active as vaultd, no vault yet; stop" c_deb_start_vaultd
fi
check "systemd-sysusers: users vaultd, authserver; groups vault, tss; vaultd in tss" c_sysusers
check "systemd-tmpfiles: /etc/secure-vault 0755 root" c_tmpfiles
check "test users alice (groups vault, vault-admin), carol (vault) and bob (neither)" c_test_users
check "systemctl enable --now vaultd.socket: /run/vaultd.sock root:vault 0660, service idle" c_socket_enabled
check "socket activation: devicectl status as alice starts vaultd.service" c_socket_activation
check "vaultd runs as vaultd:vaultd + tss, no capabilities, NoNewPrivs, seccomp" c_vaultd_identity
if [ "$TIER" = vm ]; then
        check "vaultd keeps its secrets in memfd_secret memory" c_secret_memory memfd_secret
        check "vaultd opened /dev/tpmrm0 (default TCTI)" c_vm_vaultd_uses_tpmrm0
else
        check "vaultd logs which secret memory it uses" c_secret_memory any
fi
check "before init, systemctl start authserver skips it (no master key: condition failed, no restart)" c_authserver_skipped_without_key
check "authserver init; tmpfiles keeps the master key 0600 root" c_authserver_setup
check "systemctl start authserver: active, as authserver, listening" c_authserver_start
check "authserver enroll $DEV" c_enroll
check "control socket: with the shipped drop-in dave (authserver-admin) lists, bob is refused" c_control_group_dropin
check "devicectl provision as alice: sealed, bundle destroyed, STATUS= ready" c_provision
check "devicectl authenticate twice as alice: epochs 1, 2; 32-byte key in the keyring; server in step" c_authenticate_twice
check "bob (not in vault) is refused: exit 6, nothing changes" c_outsider_refused
check "carol (vault, not vault-admin) may not provision: exit 10, nothing changes" c_member_cannot_provision
check "systemctl restart vaultd keeps the vault; authenticate again" c_restart_keeps_vault
check "systemctl stop vaultd is clean; the socket re-activates it with the vault" c_vaultd_stop_clean
check "systemctl start vaultd pulls in vaultd.socket; RemoveOnStop" c_start_service_pulls_socket
check "systemctl stop authserver is clean; authserver.socket activates it" c_authserver_socket
check "journal: expected lines, priorities, no errors, no refusals" c_journal
check "an old (rolled-back) vault file is refused at start" c_rollback
check "recovery: revoke, enroll, provision --force, authenticate" c_recover_after_rollback
check "master key as an encrypted credential only: list, enroll, revoke through the server" c_encrypted_credential
check "final systemctl stop vaultd authserver is clean" c_final_stop

say "$TIER: $npass passed, $nfail failed"
rc=0; [ $nfail = 0 ] && [ $npass -gt 0 ] || rc=1
say "@@sv-check-exit $rc@@"
exit $rc
