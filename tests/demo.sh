#!/usr/bin/env bash
# The demo of what is built so far: a device and a server state machine authenticate
# each other over the known-answer vectors and over fresh random handshakes.
set -euo pipefail
build=$1
top=$(cd "$(dirname "$0")/.." && pwd)
echo "== known-answer vectors (protocol §9), both profiles"
"$build/tests/vectors-check" "$top/tests/vectors/public.txt"
