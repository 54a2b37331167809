# Shared by the systemd tests: a temporary directory and copies of the units that name the
# binaries of this build tree, so that systemd-analyze can check ExecStart= for real.
set -eu
: "${top_builddir:=.}" "${top_srcdir:=.}"
T=$(mktemp -d "${TMPDIR:-/tmp}/sv-systemd.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok - $*"; }
skip() { echo "SKIP: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "'$1' is not installed"; }

# The template authserver@.service, and an instance of it as systemctl would load it.
UNITS="vaultd.socket vaultd.service authserver.socket authserver.service authserver@.service authserver@east.service"

# $T/units/: the .socket files from the source tree and the .service files as built (so
# with configure's paths substituted), with ExecStart= pointed at $top_builddir.
make_test_units() {
        mkdir -p "$T/units"
        for u in vaultd.socket authserver.socket; do
                cp "$top_srcdir/systemd/$u" "$T/units/$u"
        done
        for p in vaultd authserver; do
                f="$top_builddir/systemd/$p.service"
                [ -f "$f" ] || fail "'$f' was not built"
                if grep -n '@[A-Za-z_]*@' "$f"; then fail "'$f' has unsubstituted placeholders"; fi
                grep -q "^ExecStart=/[^ ]*/$p\\( \\|\$\\)" "$f" || fail "'$f': ExecStart= does not name $p by absolute path"
                sed -e "s#^ExecStart=/[^ ]*/$p\\( \\|\$\\)#ExecStart=$top_builddir/$p/$p\\1#" "$f" >"$T/units/$p.service"
                grep -qF "ExecStart=$top_builddir/$p/$p" "$T/units/$p.service" || fail "cannot rewrite ExecStart= of '$f'"
                [ -x "$top_builddir/$p/$p" ] || fail "'$top_builddir/$p/$p' is not built"
        done
        f="$top_builddir/systemd/authserver@.service"
        [ -f "$f" ] || fail "'$f' was not built"
        if grep -n '@[A-Za-z_]*@' "$f"; then fail "'$f' has unsubstituted placeholders"; fi
        grep -qx 'ExecStart=/[^ ]*/authserver serve --config /etc/secure-vault/authserver-%i.conf --control /run/authserver-%i/control' "$f" ||
                fail "'$f': ExecStart= does not run 'authserver serve' with the instance's settings"
        sed -e "s#^ExecStart=/[^ ]*/authserver #ExecStart=$top_builddir/authserver/authserver #" "$f" >"$T/units/authserver@.service"
        cp "$T/units/authserver@.service" "$T/units/authserver@east.service"
}
