# Three libraries. libsvcommon.a is the pure protocol core: no file, socket, clock or environment
# (tests/layers.test checks its undefined symbols). libsvio.a is the little I/O the three
# programs share: the logger, the fault-injection hook and the settings-file reader.
# libsvjournal.a is the logger's journal writer, the one piece that needs libsystemd: only the
# programs that pass it to log_open() (vaultd, authserver) link it.
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
	common/hmac.c \
	common/hs-device.c \
	common/hs-server.c \
	common/ipc.c \
	common/ipc.h \
	common/kex.c \
	common/kex.h \
	common/keysched.c \
	common/keysched.h \
	common/netprefix.c \
	common/netprefix.h \
	common/profile.c \
	common/profile.h \
	common/proto.h \
	common/ratelimit.c \
	common/ratelimit.h \
	common/sinkmsg.c \
	common/sinkmsg.h \
	common/record.c \
	common/record.h \
	common/text.c \
	common/text.h \
	common/vault.c \
	common/vault.h \
	common/vaultfile.c \
	common/vaultfile.h \
	common/wire.c \
	common/wire.h

SVCOMMON_LIBS = common/libsvcommon.a $(CRYPTO_LIBS) $(PTHREAD_LIBS)

noinst_LIBRARIES += common/libsvio.a
common_libsvio_a_SOURCES = \
	common/cleanup.h \
	common/fault.c \
	common/fault.h \
	common/list.h \
	common/log.c \
	common/log.h \
	common/secmem.c \
	common/secmem.h \
	common/settings.c \
	common/settings.h \
	common/unix-connect.c \
	common/unix-connect.h

SVIO_LIBS = common/libsvio.a

noinst_LIBRARIES += common/libsvjournal.a
common_libsvjournal_a_CPPFLAGS = $(AM_CPPFLAGS) $(SYSTEMD_CFLAGS)
common_libsvjournal_a_SOURCES = \
	common/log-journal.c \
	common/log-journal.h

SVJOURNAL_LIBS = common/libsvjournal.a $(SYSTEMD_LIBS)
