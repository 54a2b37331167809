# The TCP framing is shared with the test clients.
noinst_LIBRARIES += devicectl/libdevnet.a
devicectl_libdevnet_a_SOURCES = devicectl/net.c devicectl/devicectl.h
devicectl_libdevnet_a_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS)

bin_PROGRAMS += devicectl/devicectl
devicectl_devicectl_SOURCES = \
	devicectl/devicectl.h \
	devicectl/keyring.c \
	devicectl/handshake.c \
	devicectl/main.c \
	devicectl/vaultd-client.c \
	devicectl/verb-authenticate.c \
	devicectl/verb-provision.c \
	devicectl/verb-send.c \
	devicectl/verb-status.c
devicectl_devicectl_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS) $(KEYUTILS_CFLAGS)
# No $(SVJOURNAL_LIBS): devicectl logs to the console only, and so links no libsystemd
# (tests/layers.test checks).
# $(DEVICECTL_CRYPTO_LIBS): $(CRYPTO_LIBS), or libcrypto.a with --enable-static-libcrypto.
devicectl_devicectl_LDADD = devicectl/libdevnet.a $(SVIO_LIBS) common/libsvcommon.a $(DEVICECTL_CRYPTO_LIBS) \
	$(PTHREAD_LIBS) $(KEYUTILS_LIBS)
