#!/bin/bash
# SPDX-License-Identifier: MIT
#
# make check-system: the installed product on a booted Debian 12 system, two tiers.
#
#   container  a minimal Debian 12 root (mmdebstrap) + `make install DESTDIR=`, booted with
#              systemd-nspawn; vaultd reaches a host swtpm through a bind-mounted socket
#   vm         the same root plus linux-image-amd64 as an ext4 image, booted with QEMU (TCG)
#              and a TPM 2.0 (tpm-crb backed by swtpm): /dev/tpmrm0, udev, the shipped units
#
# Inside each, tests/system/guest/checks.sh runs as a systemd service and prints
# "TIER: N passed, M failed" and "@@sv-check-exit RC@@". This script prints one such line per
# tier and "check-system: N passed, M failed", and exits non-zero on any failure.
#
# Usage (root; network to the Debian mirror):
#   check-system.sh STAGE       STAGE = a `make install DESTDIR=STAGE` tree
#   check-system.sh --debs DIR  the packages of `make deb` in DIR instead: installed into each
#                               root with dpkg -i (their maintainer scripts run as on a real
#                               install); the checker then also checks what they did
# Environment:
#   top_srcdir, top_builddir    as in make check (set by tests/system/local.mk)
#   SV_SYSTEM_TIERS             "container vm" (default), or one of them
#   SV_SYSTEM_CACHE             cached roots (default $top_builddir/tests/system/cache)
#   SV_SYSTEM_REFRESH=1         rebuild the cached roots (e.g. to pick up security updates)
#   SV_SYSTEM_MIRROR            default http://deb.debian.org/debian
#   SV_SYSTEM_SECURITY_MIRROR   default http://deb.debian.org/debian-security
#   SV_SYSTEM_VM_TIMEOUT        seconds for the whole VM boot + checks (default 420)
#   SWTPM                       the swtpm binary (default: from PATH)
set -uo pipefail
: "${top_srcdir:?}" "${top_builddir:?}"
DEBS= STAGE=
if [ "${1:-}" = --debs ]; then
        DEBS=${2:?usage: check-system.sh --debs DIR}
        DEBS=$(cd "$DEBS" && pwd) || exit 1
else
        STAGE=${1:?usage: check-system.sh STAGE | --debs DIR}
fi
TIERS=${SV_SYSTEM_TIERS:-container vm}
CACHE=${SV_SYSTEM_CACHE:-$top_builddir/tests/system/cache}
LOGS=$top_builddir/tests/system/logs
GUEST=$top_srcdir/tests/system/guest
MIRROR=${SV_SYSTEM_MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${SV_SYSTEM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
VM_TIMEOUT=${SV_SYSTEM_VM_TIMEOUT:-420}
CT_TIMEOUT=240
# Bump when the way a root is built changes: it is part of the cache key.
ROOT_RECIPE=1

# The runtime libraries of vaultd, authserver and devicectl (ldd), keyutils for keyctl in the
# checks; systemd as PID 1. Debian 12 names (apt-cache policy).
PKGS_CT="systemd systemd-sysv dbus libssl3 libsystemd0 libtss2-esys-3.0.2-0 libtss2-tctildr0
libtss2-mu0 libtss2-rc0 libtss2-tcti-swtpm0 libtss2-tcti-device0 libsqlite3-0 libpq5 libkeyutils1 keyutils"
# The VM boots a kernel; udev applies the rule to /dev/tpmrm0.
PKGS_VM="$PKGS_CT udev linux-image-amd64"

WORK=
SWTPM_PIDFILES=()
CHILD_PIDS=()
declare -A PASS FAIL NOTE

log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------------------------ cleanup
# Every process this script starts is a child it waits for (nspawn, qemu, under timeout) or
# a daemonised swtpm with a pid file; it mounts nothing itself (nspawn's mounts live and die
# in nspawn's own mount namespace; the VM image is written by mke2fs -d, not mounted).
cleanup() {
        local p f
        for p in "${CHILD_PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null && { sleep 1; kill -KILL "$p" 2>/dev/null; }
                wait "$p" 2>/dev/null
        done
        for f in "${SWTPM_PIDFILES[@]}"; do
                [ -s "$f" ] || continue
                p=$(cat "$f")
                # only if it is still the swtpm we started (pid reuse)
                if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = swtpm ]; then
                        kill -TERM "$p" 2>/dev/null
                        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
                        kill -KILL "$p" 2>/dev/null
                fi
        done
        [ -n "$WORK" ] && rm -rf "$WORK"
        [ -z "$STAGE" ] || rm -rf "$STAGE"
}
trap cleanup EXIT
trap 'log "check-system: interrupted"; exit 130' INT TERM HUP

# -------------------------------------------------------------------------- host setup
need_root() {
        [ "$(id -u)" = 0 ] && return
        log "check-system: must run as root (mmdebstrap, systemd-nspawn, swtpm, qemu)"
        exit 1
}

# command:package pairs; installs whatever is missing with apt-get.
host_deps() {
        local missing=() pair
        for pair in mmdebstrap:mmdebstrap systemd-nspawn:systemd-container \
                    qemu-system-x86_64:qemu-system-x86 swtpm:swtpm mke2fs:e2fsprogs \
                    flock:util-linux timeout:coreutils sha256sum:coreutils; do
                command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
        done
        [ ${#missing[@]} = 0 ] && return 0
        log "check-system: installing host packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
                || { log "check-system: apt-get install ${missing[*]} failed"; return 1; }
}

# --------------------------------------------------------------------------- the roots
# cached_root TIER "PKGS": prints the path of a minbase root with PKGS, built with mmdebstrap
# unless a complete one with the same key (suite, mirrors, packages, recipe) is cached.
cached_root() {
        local tier=$1 pkgs key dir t0 lock
        pkgs=$(printf '%s\n' $2 | sort -u | paste -sd, -)
        key=$(printf '%s\n' "$SUITE" "$MIRROR" "$SECMIRROR" minbase "$pkgs" "$ROOT_RECIPE" | sha256sum | cut -c1-16)
        dir=$CACHE/$tier-$key
        mkdir -p "$CACHE" || return 1
        exec {lock}>"$CACHE/.lock"
        flock "$lock"           # concurrent runs share the cache: build each root once
        if [ -n "${SV_SYSTEM_REFRESH:-}" ] && [ -z "${REFRESHED[$tier]:-}" ]; then
                rm -rf "$dir"; REFRESHED[$tier]=1
        fi
        if [ ! -e "$dir/.complete" ]; then
                t0=$(now)
                log "check-system: building the $tier root ($pkgs) into $dir"
                rm -rf "$dir" "$dir.tmp"; mkdir -p "$dir.tmp"
                if ! mmdebstrap --variant=minbase --include="$pkgs" \
                        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
                        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
                        "$SUITE" "$dir.tmp/root" \
                        "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
                        "deb $SECMIRROR $SUITE-security main" >"$LOGS/mmdebstrap-$tier.log" 2>&1; then
                        log "check-system: mmdebstrap failed for the $tier root:"; tail -n 20 "$LOGS/mmdebstrap-$tier.log" >&2
                        rm -rf "$dir.tmp"; exec {lock}>&-; return 1
                fi
                printf '%s\n' "$pkgs" >"$dir.tmp/packages"
                touch "$dir.tmp/.complete"
                mv "$dir.tmp" "$dir" || { exec {lock}>&-; return 1; }
                # older roots of this tier (another package list) are of no more use
                find "$CACHE" -mindepth 1 -maxdepth 1 -name "$tier-*" ! -name "$tier-$key" -exec rm -rf {} +
                log "check-system: $tier root built in $(elapsed "$t0") s"
        else
                log "check-system: $tier root from the cache ($dir)"
        fi
        exec {lock}>&-
        printf '%s\n' "$dir/root"
}
declare -A REFRESHED

# install_debs ROOT TIER: dpkg -i the packages of $DEBS in ROOT, in a container that is not
# booted (no systemd running: the scripts enable units but start none, as in a chroot).
install_debs() {
        local root=$1 tier=$2
        # (not /tmp: nspawn mounts a tmpfs there.) The roots exclude /usr/share/doc (dpkg.cfg.d):
        # our documents are included again, since the man pages cite them. After dpkg, the same container records the
        # accounts: the checker compares them with the boot's (systemd-sysusers.service at boot
        # would otherwise hide a postinst that made none).
        mkdir -p "$root/var/tmp/sv-debs" && cp "$DEBS"/secure-vault-device_*.deb "$DEBS"/secure-vault-server_*.deb "$root/var/tmp/sv-debs/" || return 1
        if ! systemd-nspawn --quiet --register=no --keep-unit -D "$root" -E DEBIAN_FRONTEND=noninteractive \
                sh -c 'dpkg --path-include="/usr/share/doc/secure-vault-*" -i /var/tmp/sv-debs/*.deb && mkdir -p /var/lib/sv-check &&
                       { getent passwd vaultd authserver; getent group vault vault-admin tss; true; } >/var/lib/sv-check/after-dpkg' </dev/null >"$LOGS/dpkg-$tier.log" 2>&1; then
                log "check-system: dpkg -i failed in the $tier root:"; tail -n 20 "$LOGS/dpkg-$tier.log" >&2
                return 1
        fi
        rm -rf "$root/var/tmp/sv-debs"
        # the checker checks what the packages did before it runs the steps of install.md
        mkdir -p "$root/etc/systemd/system/secure-vault-check.service.d"
        printf '[Service]\nEnvironment=SV_INSTALL=deb\n' >"$root/etc/systemd/system/secure-vault-check.service.d/deb.conf"
}

# prepare_root CACHED DEST TIER: a private copy of a cached root with the product installed.
prepare_root() {
        local cached=$1 root=$2 tier=$3
        cp -a "$cached" "$root" || return 1
        if [ -n "$DEBS" ]; then
                install_debs "$root" "$tier" || return 1
        else
                # /lib etc. are symlinks into /usr in the root (merged /usr): keep them
                tar -C "$STAGE" -cf - . | tar -C "$root" -xf - --keep-directory-symlink --no-same-owner || return 1
        fi
        install -D -m 0755 "$GUEST/checks.sh" "$root/usr/local/libexec/sv-check/checks.sh" || return 1
        install -D -m 0644 "$GUEST/secure-vault-check.service" "$root/etc/systemd/system/secure-vault-check.service" || return 1
        mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
        ln -sf /etc/systemd/system/secure-vault-check.service "$root/etc/systemd/system/multi-user.target.wants/"
        # nobody logs in: no getty on the console
        ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
        ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
        ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
        echo sv-test >"$root/etc/hostname"
}

# The shipped unit's ExecStart= line, installed under ROOT (the binary's path follows --prefix).
vaultd_exec() { sed -n 's/^ExecStart=//p' "$1"/usr/lib/systemd/system/vaultd.service "$1"/lib/systemd/system/vaultd.service 2>/dev/null | head -n 1; }

start_swtpm() {         # start_swtpm DIR ARGS...: a daemonised swtpm with DIR/pid
        local dir=$1; shift
        mkdir -p "$dir/state" || return 1
        SWTPM_PIDFILES+=("$dir/pid")
        "$SWTPM_BIN" socket --tpm2 --daemon --tpmstate dir="$dir/state" --pid file="$dir/pid" "$@" || return 1
        for _ in $(seq 200); do [ -s "$dir/pid" ] && return 0; sleep 0.01; done
        return 1
}

# result TIER LOG [EXTRA_FAILURES NOTE]: parse the checker's lines out of LOG.
result() {
        local tier=$1 logf=$2 line rc
        line=$(tr -d '\r' <"$logf" | sed -n "s/.*\($tier: [0-9]* passed, [0-9]* failed\).*/\1/p" | tail -n 1)
        rc=$(tr -d '\r' <"$logf" | sed -n 's/.*@@sv-check-exit \([0-9]*\)@@.*/\1/p' | tail -n 1)
        if [ -z "$line" ] || [ -z "$rc" ]; then
                PASS[$tier]=0 FAIL[$tier]=1
                NOTE[$tier]="no result from the checker (${NOTE[$tier]:-boot failed or timed out}); log: $logf"
                return
        fi
        PASS[$tier]=$(sed 's/.*: \([0-9]*\) passed.*/\1/' <<<"$line")
        FAIL[$tier]=$(sed 's/.* \([0-9]*\) failed/\1/' <<<"$line")
        if [ "$rc" != 0 ] && [ "${FAIL[$tier]}" = 0 ]; then
                FAIL[$tier]=1 NOTE[$tier]="checker exit marker $rc"
        fi
}

# ------------------------------------------------------------------------ container tier
tier_container() {
        local t0 root w=$WORK/container rc=0 drop
        t0=$(now)
        root=$(cached_root container "$PKGS_CT") || { NOTE[container]="could not build the root"; return 1; }
        mkdir -p "$w"
        prepare_root "$root" "$w/root" container || { NOTE[container]="could not prepare the root"; return 1; }
        drop=$(vaultd_exec "$w/root")
        [ -n "$drop" ] || { NOTE[container]="no ExecStart= in the installed vaultd.service"; return 1; }
        mkdir -p "$w/root/etc/systemd/system/vaultd.service.d"
        sed "s|@VAULTD@|$drop|" "$GUEST/vaultd-swtpm.conf" >"$w/root/etc/systemd/system/vaultd.service.d/test.conf" || return 1
        # swtpm on the host; only its socket directory goes into the container
        install -d -m 0755 "$w/tpm" "$w/tpm/sock.d"
        start_swtpm "$w/tpm" --server type=unixio,path="$w/tpm/sock.d/sock" \
                --ctrl type=unixio,path="$w/tpm/sock.d/sock.ctrl" --flags not-need-init,startup-clear \
                || { NOTE[container]="swtpm did not start"; return 1; }
        for _ in $(seq 200); do [ -S "$w/tpm/sock.d/sock" ] && [ -S "$w/tpm/sock.d/sock.ctrl" ] && break; sleep 0.01; done
        chmod 0666 "$w/tpm/sock.d/sock" "$w/tpm/sock.d/sock.ctrl"     # vaultd is not root
        log "check-system: container root ready in $(elapsed "$t0") s; booting"
        # --private-network: authserver's port 7410 stays inside. nspawn's own seccomp filter
        # refuses the keyring calls (devicectl's session key), mlock (@memlock, unless the
        # container has CAP_IPC_LOCK) and memfd_secret: without the last two vaultd has no
        # secret memory and refuses to run, so they are allowed here by name.
        timeout -k 10 "$CT_TIMEOUT" systemd-nspawn -b --quiet --register=no --keep-unit --volatile=overlay \
                --console=read-only --private-network \
                --system-call-filter='@keyring @memlock memfd_secret' \
                --bind="$w/tpm/sock.d:/run/swtpm" -D "$w/root" </dev/null >"$LOGS/container.log" 2>&1 &
        CHILD_PIDS+=($!)
        wait $! || rc=$?
        CHILD_PIDS=()
        [ $rc = 124 ] && NOTE[container]="timed out after $CT_TIMEOUT s"
        result container "$LOGS/container.log"
        # systemd-nspawn returns the checker's exit status (exit-force): it must agree
        if [ "${FAIL[container]}" = 0 ] && [ $rc != 0 ]; then
                FAIL[container]=1 NOTE[container]="systemd-nspawn exited $rc"
        elif [ "${FAIL[container]}" != 0 ] && [ $rc = 0 ]; then
                FAIL[container]=$((FAIL[container] + 1)) NOTE[container]="systemd-nspawn exited 0 despite failures"
        fi
        log "check-system: container tier took $(elapsed "$t0") s"
}

# ------------------------------------------------------------------------------ VM tier
tier_vm() {
        local t0 root w=$WORK/vm rc=0 kernel initrd
        t0=$(now)
        root=$(cached_root vm "$PKGS_VM") || { NOTE[vm]="could not build the root"; return 1; }
        kernel=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
        initrd=$(ls "$root"/boot/initrd.img-* 2>/dev/null | sort -V | tail -n 1)
        [ -f "$kernel" ] && [ -f "$initrd" ] || { NOTE[vm]="no kernel/initrd in $root/boot"; return 1; }
        mkdir -p "$w"
        prepare_root "$root" "$w/root" vm || { NOTE[vm]="could not prepare the root"; return 1; }
        install -D -m 0644 "$GUEST/vm.conf" "$w/root/etc/systemd/system/secure-vault-check.service.d/vm.conf"
        # Debian's tpm-udev (pulled in by libtss2) sets the same group and mode: mask it so
        # that /dev/tpmrm0's group and mode prove that our rule works alone.
        mkdir -p "$w/root/etc/udev/rules.d"
        ln -sf /dev/null "$w/root/etc/udev/rules.d/60-tpm-udev.rules"
        mke2fs -q -F -t ext4 -L sv-root -d "$w/root" "$w/root.img" 2G >/dev/null || { NOTE[vm]="mke2fs failed"; return 1; }
        rm -rf "$w/root"
        # the TPM: swtpm with a control channel only; QEMU initialises it (no not-need-init)
        start_swtpm "$w/tpm" --ctrl type=unixio,path="$w/tpm/ctrl" --terminate \
                || { NOTE[vm]="swtpm did not start"; return 1; }
        for _ in $(seq 200); do [ -S "$w/tpm/ctrl" ] && break; sleep 0.01; done
        log "check-system: VM image ready in $(elapsed "$t0") s; booting (TCG)"
        # /dev/kvm here cannot boot a stock kernel: TCG. secretmem.enable=1: Debian's 6.1
        # kernel has memfd_secret(2) but off by default.
        timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1024 \
                -nodefaults -no-user-config -display none -no-reboot \
                -serial file:"$LOGS/vm.log" \
                -kernel "$kernel" -initrd "$initrd" \
                -append "console=ttyS0 root=/dev/vda rw fsck.mode=skip panic=-1 quiet secretmem.enable=1" \
                -drive file="$w/root.img",if=virtio,format=raw,snapshot=on \
                -chardev socket,id=chrtpm,path="$w/tpm/ctrl" \
                -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0 \
                </dev/null >"$LOGS/vm-qemu.log" 2>&1 &
        CHILD_PIDS+=($!)
        wait $! || rc=$?
        CHILD_PIDS=()
        case $rc in
        0) ;;
        124|137) NOTE[vm]="timed out after $VM_TIMEOUT s" ;;
        *) NOTE[vm]="qemu exited $rc: $(tail -n 3 "$LOGS/vm-qemu.log" | tr '\n' ' ')" ;;
        esac
        result vm "$LOGS/vm.log"
        if [ "${FAIL[vm]}" = 0 ] && [ $rc != 0 ]; then FAIL[vm]=1; fi
        log "check-system: VM tier took $(elapsed "$t0") s"
}

# -------------------------------------------------------------------------------- main
need_root
T_ALL=$(now)
mkdir -p "$LOGS" "$top_builddir/tests/system"
WORK=$(mktemp -d "$top_builddir/tests/system/work.XXXXXX") || exit 1
if [ -n "$DEBS" ]; then
        ls "$DEBS"/secure-vault-device_*.deb "$DEBS"/secure-vault-server_*.deb >/dev/null 2>&1 \
                || { log "check-system: no secure-vault-device/-server .deb in $DEBS (make deb)"; exit 1; }
else
        [ -d "$STAGE" ] || { log "check-system: no staged install at $STAGE"; exit 1; }
fi
host_deps || exit 1
SWTPM_BIN=${SWTPM:-}
[ -n "$SWTPM_BIN" ] && [ -x "$SWTPM_BIN" ] || SWTPM_BIN=$(command -v swtpm)

for tier in $TIERS; do
        case $tier in
        container|vm) PASS[$tier]=0 FAIL[$tier]=0 NOTE[$tier]=
                      "tier_$tier" || { [ "${FAIL[$tier]}" != 0 ] || FAIL[$tier]=1; }
                      [ "${PASS[$tier]}${FAIL[$tier]}" != 00 ] || FAIL[$tier]=1 ;;
        *) log "check-system: unknown tier '$tier'"; exit 2 ;;
        esac
done

# The checkers' own lines, for the make log; the whole console output is in $LOGS.
for tier in $TIERS; do
        f=$LOGS/$tier.log
        [ -f "$f" ] && tr -d '\r' <"$f" | sed -n 's/^.*checks\.sh\[[0-9]*\]: //p' | grep -v '^@@' | grep -v "^$tier: [0-9]* passed"
done
np=0 nf=0
for tier in $TIERS; do
        printf '%s: %s passed, %s failed%s\n' "$tier" "${PASS[$tier]}" "${FAIL[$tier]}" "${NOTE[$tier]:+ ($(printf '%s' "${NOTE[$tier]}"))}"
        np=$((np + PASS[$tier])) nf=$((nf + FAIL[$tier]))
done
echo "check-system: $np passed, $nf failed ($(elapsed "$T_ALL") s; logs in $LOGS)"
[ $nf = 0 ] && [ $np -gt 0 ]
