EXTRA_DIST += tests/vectors/public.txt
# Revision 1.1 (§10, §11), copied from the normative PROTOCOL.md set; read by check_kex and check_record.
EXTRA_DIST += tests/vectors/extensions.txt tests/vectors/extensions.json

check_PROGRAMS += tests/vectors-check
tests_vectors_check_SOURCES = tests/vectors-check.c
tests_vectors_check_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_vectors_check_LDADD = $(TESTKAT_LIBS) $(SVCOMMON_LIBS)

include tests/lib/local.mk
include tests/unit/local.mk
include tests/fuzz/local.mk
include tests/tpm/local.mk
include tests/store/local.mk

TESTS += tests/vectors.test tests/vectors-mutate.test
EXTRA_DIST += tests/vectors.test tests/vectors-mutate.test
EXTRA_DIST += tests/demo.sh
include tests/authserver/local.mk
include tests/e2e/local.mk
include tests/systemd/local.mk
include tests/vaultd/local.mk
include tests/bench/local.mk
include tests/valgrind/local.mk
include tests/soak/local.mk
include tests/system/local.mk
