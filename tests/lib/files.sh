# SPDX-License-Identifier: MIT
# File helpers shared by the shell test libraries (sourced; the caller defines fail).

# XOR one byte of FILE at OFFSET with 0x01 (in place): always a change, whatever was there.
flip_byte() {
        local b
        b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
        [ -n "$b" ] || fail "offset $2 is past the end of $1"
        printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
