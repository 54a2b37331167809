# The device store (store.c, the front, over its back ends of store-backend.h: SQLite in
# store-sqlite.c; vaults sealed at rest by store-crypto.c, the master key kept in locked pages
# by common/secmem.c): a library below the server, which its tests link alone.
noinst_LIBRARIES += authserver/libstore.a
authserver_libstore_a_SOURCES = \
	authserver/aggregate.c \
	authserver/aggregate.h \
	authserver/randpool.c \
	authserver/randpool.h \
	authserver/store.c \
	authserver/store.h \
	authserver/store-backend.h \
	authserver/store-copy.c \
	authserver/store-crypto.c \
	authserver/store-crypto.h \
	authserver/store-sqlite.c
authserver_libstore_a_CPPFLAGS = $(AM_CPPFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
# The PostgreSQL back end (configure --with-postgresql, on by default when libpq is found).
if WITH_POSTGRESQL
authserver_libstore_a_SOURCES += authserver/store-pg.c authserver/store-pg-schema.h
authserver_libstore_a_CPPFLAGS += $(LIBPQ_CFLAGS)
endif

sbin_PROGRAMS += authserver/authserver
authserver_authserver_SOURCES = \
	authserver/acceptor.c \
	authserver/admin.c \
	authserver/authserver.h \
	authserver/backoff.c \
	authserver/config.c \
	authserver/conn.c \
	authserver/control.c \
	authserver/control.h \
	authserver/control-client.c \
	authserver/control-wire.c \
	authserver/decoy.c \
	authserver/generation.c \
	authserver/json.c \
	authserver/listen.c \
	authserver/main.c \
	authserver/migrate.c \
	authserver/metrics.c \
	authserver/queue.c \
	authserver/serve.c \
	authserver/sink.c \
	authserver/stats.c \
	authserver/status.c \
	authserver/upkeep.c
authserver_authserver_CPPFLAGS = $(AM_CPPFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS) $(SQLITE_CFLAGS)
authserver_authserver_LDADD = authserver/libstore.a $(SVJOURNAL_LIBS) $(SVIO_LIBS) $(SVCOMMON_LIBS) $(SYSTEMD_LIBS) $(SQLITE_LIBS) $(LIBPQ_LIBS)
