# tests/tpm: vaultd's TPM layer (vaultd/tpm.c, the only code that includes tss2 headers) as a
# library, and its tests against a private swtpm per test case ($SWTPM, else swtpm in PATH; the
# test prints "1..0 # SKIP" and exits 77 without one). tpm2-tools are needed at test time.
noinst_LIBRARIES += vaultd/libvaulttpm.a
vaultd_libvaulttpm_a_SOURCES = vaultd/tpm.c vaultd/tpm.h
vaultd_libvaulttpm_a_CPPFLAGS = $(AM_CPPFLAGS) $(TSS2_CFLAGS) $(CRYPTO_CFLAGS)

check_PROGRAMS += tests/tpm/check_tpm
TESTS += tests/tpm/check_tpm
tests_tpm_check_tpm_SOURCES = \
	tests/tpm/check_tpm.c \
	tests/tpm/swtpm-helper.c \
	tests/tpm/swtpm-helper.h
tests_tpm_check_tpm_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vaultd $(CHECK_CFLAGS)
tests_tpm_check_tpm_LDADD = vaultd/libvaulttpm.a $(TSS2_LIBS) $(CRYPTO_LIBS) $(CHECK_LIBS)
