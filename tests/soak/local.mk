# tests/soak: `make soak` (never part of `make check` nor of CI): mixed load against one
# authserver for SOAK_SECONDS (default 1800), its memory, descriptors and database sampled;
# see docs/soak.md. SOAK_* settings are read from the environment or the make command line.
EXTRA_DIST += tests/soak/soak.sh

soak: authserver/authserver tests/authserver/sv-client tests/authserver/sv-flood
	top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)' bash $(srcdir)/tests/soak/soak.sh
.PHONY: soak
