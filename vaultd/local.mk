# vaultd: the device daemon. Its TPM layer (vaultd/tpm.c) is built as vaultd/libvaulttpm.a in
# tests/tpm/local.mk, so that the TPM tests link the same code.
sbin_PROGRAMS += vaultd/vaultd
vaultd_vaultd_SOURCES = \
	vaultd/vaultd.h \
	vaultd/main.c \
	vaultd/config.c \
	vaultd/log.c \
	vaultd/secmem.c \
	vaultd/storage.c \
	vaultd/keyfile.c \
	vaultd/vstate.c \
	vaultd/peercred.c \
	vaultd/ipc-server.c \
	vaultd/ops.c \
	vaultd/session.c
vaultd_vaultd_CPPFLAGS = $(AM_CPPFLAGS) $(SYSTEMD_CFLAGS) $(CRYPTO_CFLAGS)
vaultd_vaultd_LDADD = vaultd/libvaulttpm.a $(TSS2_LIBS) $(SVIO_LIBS) $(SVCOMMON_LIBS) $(SYSTEMD_LIBS)
