# vaultd: the device daemon. Its TPM layer (vaultd/tpm.c, the only vaultd code that includes
# tss2 headers) is a library of its own, so that the TPM tests (tests/tpm) link the same code.
noinst_LIBRARIES += vaultd/libvaulttpm.a
vaultd_libvaulttpm_a_SOURCES = vaultd/tpm.c vaultd/tpm.h vaultd/tpm-internal.h
vaultd_libvaulttpm_a_CPPFLAGS = $(AM_CPPFLAGS) $(TSS2_CFLAGS) $(CRYPTO_CFLAGS)

sbin_PROGRAMS += vaultd/vaultd
vaultd_vaultd_SOURCES = \
	vaultd/vaultd.h \
	vaultd/main.c \
	vaultd/config.c \
	vaultd/storage.c \
	vaultd/keyfile.c \
	vaultd/vstate.c \
	vaultd/peercred.c \
	vaultd/ipc-server.c \
	vaultd/ops.c \
	vaultd/session.c \
	vaultd/tcti-hint.c
vaultd_vaultd_CPPFLAGS = $(AM_CPPFLAGS) $(SYSTEMD_CFLAGS) $(CRYPTO_CFLAGS)
vaultd_vaultd_LDADD = vaultd/libvaulttpm.a $(TSS2_LIBS) $(SVJOURNAL_LIBS) $(SVIO_LIBS) $(SVCOMMON_LIBS) $(SYSTEMD_LIBS)
