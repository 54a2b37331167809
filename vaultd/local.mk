sbin_PROGRAMS += vaultd/vaultd
vaultd_vaultd_SOURCES = vaultd/main.c
vaultd_vaultd_LDADD = $(SVCOMMON_LIBS)
