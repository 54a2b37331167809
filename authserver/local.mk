sbin_PROGRAMS += authserver/authserver
authserver_authserver_SOURCES = \
	authserver/admin.c \
	authserver/authserver.h \
	authserver/backoff.c \
	authserver/config.c \
	authserver/conn.c \
	authserver/decoy.c \
	authserver/generation.c \
	authserver/json.c \
	authserver/listen.c \
	authserver/main.c \
	authserver/queue.c \
	authserver/serve.c \
	authserver/upkeep.c
authserver_authserver_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS) $(SQLITE_CFLAGS)
authserver_authserver_LDADD = authserver/libstore.a $(SVIO_LIBS) $(SVCOMMON_LIBS) $(SYSTEMD_LIBS) $(SQLITE_LIBS)
