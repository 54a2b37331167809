# tests/vectors: the known-answer vectors of protocol §9 (public.txt) and their checker,
# which runs every case through both handshake state machines of common/ (docs/protocol.md §9).
EXTRA_DIST += tests/vectors/public.txt
# Revision 1.1 (§10, §11), copied from the normative PROTOCOL.md set; read by vectors-check
# (the handshake, with and without the key share), check_kex and check_record.
EXTRA_DIST += tests/vectors/extensions.txt tests/vectors/extensions.json

check_PROGRAMS += tests/vectors/vectors-check
tests_vectors_vectors_check_SOURCES = tests/vectors/vectors-check.c
tests_vectors_vectors_check_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/lib
tests_vectors_vectors_check_LDADD = $(TESTKAT_LIBS) $(SVCOMMON_LIBS)

TESTS += tests/vectors/vectors.test tests/vectors/vectors-mutate.test
EXTRA_DIST += tests/vectors/vectors.test tests/vectors/vectors-mutate.test
