# tests/fuzz: one libFuzzer target per decoder of protocol §3, §4, §8 and §11, of the
# devicectl–vaultd packets (docs/ipc.md) and of vaultd's vault file (docs/vault-file.md).
#
# With --enable-fuzzing (CC=clang) the targets link libFuzzer's main and are built by
# `make`; `make fuzz` runs the campaign of docs/fuzzing.md (tests/fuzz/run): every target
# in turn for FUZZ_RUNS executions and/or FUZZ_TIME seconds (default: 60 s each), then
# `-merge=1` of the new inputs that reach new coverage into the committed corpora, e.g.
#   make fuzz FUZZ_RUNS=10000000
#   make fuzz FUZZ_TIME=60 FUZZ_TARGETS=tests/fuzz/fuzz-ipc
# Otherwise they link tests/fuzz/replay.c and `make check` replays each target's committed
# corpus, $(top_srcdir)/tests/fuzz/corpus/<target>/, as a TAP test.
FUZZ_TARGETS = \
	tests/fuzz/fuzz-frame \
	tests/fuzz/fuzz-hello \
	tests/fuzz/fuzz-challenge \
	tests/fuzz/fuzz-response \
	tests/fuzz/fuzz-confirm \
	tests/fuzz/fuzz-commit \
	tests/fuzz/fuzz-error \
	tests/fuzz/fuzz-bundle \
	tests/fuzz/fuzz-ipc \
	tests/fuzz/fuzz-vaultfile \
	tests/fuzz/fuzz-record

if ENABLE_FUZZING
noinst_PROGRAMS += $(FUZZ_TARGETS)
FUZZ_MAIN =
FUZZ_LINK_FLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += $(FUZZ_TARGETS)
TESTS += $(FUZZ_TARGETS)
FUZZ_MAIN = tests/fuzz/replay.c
FUZZ_LINK_FLAGS = $(AM_LDFLAGS)
endif

FUZZ_COMMON = tests/fuzz/fuzz.h $(FUZZ_MAIN)
FUZZ_HS = tests/fuzz/hs-fixture.c tests/fuzz/hs-fixture.h

tests_fuzz_fuzz_frame_SOURCES = tests/fuzz/fuzz-frame.c $(FUZZ_COMMON)
tests_fuzz_fuzz_frame_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_frame_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_hello_SOURCES = tests/fuzz/fuzz-hello.c $(FUZZ_COMMON)
tests_fuzz_fuzz_hello_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_hello_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_challenge_SOURCES = tests/fuzz/fuzz-challenge.c $(FUZZ_COMMON)
tests_fuzz_fuzz_challenge_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_challenge_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_response_SOURCES = tests/fuzz/fuzz-response.c $(FUZZ_HS) $(FUZZ_COMMON)
tests_fuzz_fuzz_response_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_response_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_confirm_SOURCES = tests/fuzz/fuzz-confirm.c $(FUZZ_HS) $(FUZZ_COMMON)
tests_fuzz_fuzz_confirm_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_confirm_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_commit_SOURCES = tests/fuzz/fuzz-commit.c $(FUZZ_HS) $(FUZZ_COMMON)
tests_fuzz_fuzz_commit_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_commit_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_error_SOURCES = tests/fuzz/fuzz-error.c $(FUZZ_COMMON)
tests_fuzz_fuzz_error_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_error_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_bundle_SOURCES = tests/fuzz/fuzz-bundle.c $(FUZZ_COMMON)
tests_fuzz_fuzz_bundle_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_bundle_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_ipc_SOURCES = tests/fuzz/fuzz-ipc.c $(FUZZ_COMMON)
tests_fuzz_fuzz_ipc_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_ipc_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_vaultfile_SOURCES = tests/fuzz/fuzz-vaultfile.c $(FUZZ_COMMON)
tests_fuzz_fuzz_vaultfile_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_vaultfile_LDADD = $(SVCOMMON_LIBS)

tests_fuzz_fuzz_record_SOURCES = tests/fuzz/fuzz-record.c $(FUZZ_COMMON)
tests_fuzz_fuzz_record_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_record_LDADD = $(SVCOMMON_LIBS)

# `make fuzz`: the campaign (docs/fuzzing.md). FUZZ_NICE is the campaign's niceness.
FUZZ_NICE = 15
if ENABLE_FUZZING
fuzz: $(FUZZ_TARGETS)
	bash $(srcdir)/tests/fuzz/run --corpus '$(abs_top_srcdir)/tests/fuzz/corpus' \
		--work '$(abs_top_builddir)/fuzz-work' --runs '$(FUZZ_RUNS)' --time '$(FUZZ_TIME)' \
		--nice '$(FUZZ_NICE)' $(FUZZ_TARGETS)
else
fuzz:
	@echo "make fuzz: configure with CC=clang ../configure --enable-fuzzing (docs/fuzzing.md)" >&2; exit 1
endif
.PHONY: fuzz

# The corpora (one directory per target); automake copies directories recursively.
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/run
