# tests/tpm: vaultd's TPM layer (vaultd/libvaulttpm.a, defined in vaultd/local.mk) and its tests
# against a private swtpm per test case ($SWTPM, else swtpm in PATH; the test prints "1..0 # SKIP"
# and exits 77 without one). tpm2-tools are needed at test time. The test-only helpers
# (tpm-test.c: loaded handles, PCR extend, lockout counter) are linked into check_tpm only.
check_PROGRAMS += tests/tpm/check_tpm
TESTS += tests/tpm/check_tpm
tests_tpm_check_tpm_SOURCES = \
	tests/tpm/check_tpm.c \
	tests/tpm/tpm-test.c \
	tests/tpm/tpm-test.h \
	tests/tpm/swtpm-helper.c \
	tests/tpm/swtpm-helper.h
tests_tpm_check_tpm_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vaultd $(TSS2_CFLAGS) $(CHECK_CFLAGS)
tests_tpm_check_tpm_LDADD = vaultd/libvaulttpm.a $(TSS2_LIBS) $(CRYPTO_LIBS) $(CHECK_LIBS)
