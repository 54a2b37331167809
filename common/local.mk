noinst_LIBRARIES += common/libsvcommon.a
common_libsvcommon_a_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS)
common_libsvcommon_a_SOURCES = \
	common/base64.c \
	common/buf.c \
	common/buf.h \
	common/bundle.c \
	common/bundle.h \
	common/crypto.c \
	common/crypto.h \
	common/handshake.c \
	common/handshake.h \
	common/hs-device.c \
	common/hs-server.c \
	common/ipc.c \
	common/ipc.h \
	common/keysched.c \
	common/keysched.h \
	common/netprefix.c \
	common/netprefix.h \
	common/proto.h \
	common/ratelimit.c \
	common/ratelimit.h \
	common/settings.c \
	common/settings.h \
	common/text.c \
	common/text.h \
	common/vault.c \
	common/vault.h \
	common/vaultfile.c \
	common/vaultfile.h \
	common/wire.c \
	common/wire.h

SVCOMMON_LIBS = common/libsvcommon.a $(CRYPTO_LIBS) $(PTHREAD_LIBS)
