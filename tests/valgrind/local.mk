# tests/valgrind: `make check-valgrind` re-runs `make check` under valgrind memcheck
# (docs/memcheck.md): the Check suites and the fuzz replays through LOG_COMPILER, the daemons
# and devicectl of the shell tests through SV_VALGRIND, which their lib.sh honour. Then
# tests/valgrind/summary adds up every process's report and fails on any error or definite
# leak. TESTS='...' picks a subset; VALGRIND_SCALE stretches Check's and the scripts' time-outs.
# Not part of `make check` nor of CI: see docs/memcheck.md for the times.
EXTRA_DIST += tests/valgrind/vg tests/valgrind/summary tests/valgrind/sv.supp

VALGRIND_LOGDIR = $(abs_top_builddir)/valgrind-logs
VALGRIND_SCALE = 20

check-valgrind:
	@command -v valgrind >/dev/null || { echo "check-valgrind: valgrind is not installed" >&2; exit 1; }
	rm -rf '$(VALGRIND_LOGDIR)'
	@rc=0; SV_VALGRIND=1 SV_VALGRIND_LOGDIR='$(VALGRIND_LOGDIR)' \
	  SV_TIMEOUT_SCALE=$(VALGRIND_SCALE) CK_TIMEOUT_MULTIPLIER=$(VALGRIND_SCALE) \
	  $(MAKE) $(AM_MAKEFLAGS) check LOG_COMPILER='$(abs_top_srcdir)/tests/valgrind/vg' || rc=$$?; \
	$(SHELL) $(srcdir)/tests/valgrind/summary '$(VALGRIND_LOGDIR)' || rc=1; exit $$rc
.PHONY: check-valgrind
