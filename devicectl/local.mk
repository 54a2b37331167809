bin_PROGRAMS += devicectl/devicectl
devicectl_devicectl_SOURCES = \
	devicectl/devicectl.h \
	devicectl/keyring.c \
	devicectl/main.c \
	devicectl/net.c \
	devicectl/vaultd-client.c \
	devicectl/verb-authenticate.c \
	devicectl/verb-provision.c \
	devicectl/verb-status.c
devicectl_devicectl_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS) $(KEYUTILS_CFLAGS)
devicectl_devicectl_LDADD = $(SVCOMMON_LIBS) $(KEYUTILS_LIBS)
