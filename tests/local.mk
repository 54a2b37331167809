include tests/lib/local.mk
include tests/unit/local.mk
include tests/fuzz/local.mk
include tests/tpm/local.mk
include tests/store/local.mk
include tests/vectors/local.mk

# The layer rule of docs/architecture.md: libsvcommon.a's symbols and the include graph.
TESTS += tests/layers.test
EXTRA_DIST += tests/demo.sh tests/layers.test
# The journal writer: installed by vaultd and authserver, not by devicectl (strace).
TESTS += tests/journal.test
EXTRA_DIST += tests/journal.test
TESTS += tests/completion.test
EXTRA_DIST += tests/completion.test
include tests/authserver/local.mk
include tests/e2e/local.mk
include tests/workers/local.mk
include tests/systemd/local.mk
include tests/debian/local.mk
include tests/vaultd/local.mk
include tests/bench/local.mk
include tests/valgrind/local.mk
include tests/soak/local.mk
include tests/system/local.mk
